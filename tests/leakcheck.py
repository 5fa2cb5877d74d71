"""Exercise the extension's allocation paths, for LeakSanitizer (`make asan`).

Opens, loads, attaches, reads and closes objects many times, walks BTF, drives maps and a
ring buffer, then drops everything; LSan reports any block the extension or libbpf leaked.
Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import gc
import os
import struct
import sys
from pathlib import Path

import tinybpf

BUILD = Path(__file__).resolve().parent / "bpf" / "build"


def batch_mode() -> None:
    """Ring buffer batches: records copied by the C reader into pooled buffers (batches of
    one record size without per-record arrays, mixed ones with them), batches kept past
    later drains and past close(), a buffer reading two maps."""
    with tinybpf.load(BUILD / "mmap_array.bpf.o") as obj:

        def run(prog: str, base: int, n: int) -> None:
            obj.programs[prog].test_run(ctx=struct.pack("=QI4x", base, n))

        kept = []
        for i in range(30):
            rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True, max_batch=300)
            for r in range(6):
                run("emit_mixed" if r % 2 else "emit", 100, 500)
                run("emit_discard", 0, 20)
                while len(b := rb.consume_batch()):
                    assert len(b.sizes) == len(b.cpus) == len(b)
                    if r == 3 and i % 3 == 0:
                        kept.append(b)
            rb.close()
        assert all(len(b.sizes) for b in kept)
        del kept
        rb = tinybpf.BpfRingBuffer(batch=True)
        rb.add(obj.maps["evs"])
        other = tinybpf.create_map(tinybpf.BpfMapType.RINGBUF, 0, 0, 4096)
        rb.add(other)
        run("emit", 0, 50)
        assert len(rb.consume_batch()) == 50
        rb.close()
        other.close()


def read_ahead() -> None:
    """Map iteration of several batches (the read-ahead thread and its slots): finished,
    abandoned in the middle, and cut short by close()."""
    n = 20000
    m = tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, n, key_type=int, value_type=int)
    m.update_batch({i: i for i in range(n)})
    for _ in range(20):
        assert len(dict(m.items())) == n
        it = m.keys()
        for _ in range(6000):
            next(it)
        del it
    it = m.items()
    next(it)
    m.close()
    try:
        list(it)
    except tinybpf.BpfClosedError:
        pass


def main() -> int:
    minimal = BUILD / "minimal.bpf.o"
    maps = BUILD / "maps.bpf.o"
    for _ in range(50):
        with tinybpf.load(minimal) as obj:
            prog = next(iter(obj.programs.values()))
            with prog.attach():
                os.getpid()
            for m in obj.maps.values():
                if m.key_size and m.type in (tinybpf.BpfMapType.HASH, tinybpf.BpfMapType.ARRAY):
                    list(m.items())
            dict(obj.globals.items())
    data = maps.read_bytes()
    for _ in range(20):
        obj = tinybpf.open(data, object_name="maps")
        obj.load()
        for m in obj.maps.values():
            _ = m.btf_key, m.btf_value
        obj.close()
    with tinybpf.Btf.from_vmlinux() as btf:
        btf.ctype("task_struct")
        len(btf.to_c())
    m = tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, 4096, key_type=int, value_type=int)
    m.update_batch({i: i for i in range(4096)})
    assert len(m.lookup_batch()) == 4096
    m.close()
    rb_map = tinybpf.create_map(tinybpf.BpfMapType.RINGBUF, 0, 0, 4096)
    rb = tinybpf.BpfRingBuffer(rb_map, lambda d: 0)
    rb.poll(0)
    rb.close()
    rb_map.close()
    batch_mode()
    read_ahead()
    for bad in (b"", b"\x7fELF" + b"\0" * 60, os.urandom(4096)):
        try:
            tinybpf.open(bad)
        except (tinybpf.BpfError, ValueError):
            pass
    # the one-call open path: libbpf's messages kept in C (debug level: many), a load the
    # verifier rejects, a missing file; integer map element paths
    tinybpf.set_libbpf_log_level("debug")
    for _ in range(5):
        tinybpf.load(minimal).close()
        for path in (BUILD / "prog_invalid.bpf.o", BUILD / "no_such.bpf.o"):
            try:
                tinybpf.load(path)
            except tinybpf.BpfError:
                pass
    tinybpf.set_libbpf_log_level("info")
    with tinybpf.load(maps) as obj:
        counts = obj.maps["counts"]
        for k in range(1000):
            counts[k] = k
            assert counts[k] == k
        try:
            counts[5000]
        except KeyError:
            pass
    gc.collect()
    print("leakcheck: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
