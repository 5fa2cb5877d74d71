"""What a ring buffer batch says about its records (sizes, cpus, record_size, items) when
the C drain keeps no per-record arrays (every record of one size from one map) and when it
has to start them part-way through a batch (a record of another size, an empty record):
the records before that point must be filled in, also past the arrays' first capacity, and
buffers reused between batches of both kinds must not mix them up. The second half covers
tinybpf's reader of the mapped rings: discards, wrap-around, a concurrent producer, and a
tracepoint producer that runs on every kernel with ring buffers (the others need syscall
programs and bpf_loop, 5.14/5.17+).
"""

from __future__ import annotations

import ctypes
import struct

import pytest
from helpers.kernel import map_type_unavailable_reason, tracepoint_unavailable_reason
from helpers.mmap_array import mmap_array_obj, run

import tinybpf

obj = mmap_array_obj  # the loaded tests/bpf/mmap_array.bpf.o (helpers/mmap_array.py)

REC = 40  # sizeof(struct rec): checked against its BTF in the first test
N = 5000  # more records than the first capacity of the sizes/cpus arrays (4096)


def _batch(rb: tinybpf.BpfRingBuffer, expected: int) -> tinybpf.EventBatch:
    batch = rb.consume_batch()
    assert len(batch) == expected
    return batch


def _a(view: memoryview) -> int:
    return int(struct.unpack_from("=I", view)[0])


def _u64(view: memoryview) -> int:
    return int(struct.unpack_from("=Q", view)[0])


def test_uniform_batch_reports_one_size_and_map(obj):
    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True, event_type="rec", max_batch=N)
    try:
        run(obj, "emit", 100, N)
        batch = _batch(rb, N)
        assert ctypes.sizeof(obj.btf.ctype("rec")) == REC
        assert batch.record_size == REC
        assert batch.sizes == [REC] * N
        assert batch.cpus == [0] * N
        assert batch.buffer.nbytes == REC * N
        assert batch.column("a") == [100 + i for i in range(N)]
        assert [_a(v) for v in batch] == [100 + i for i in range(N)]
        assert _a(batch[-1]) == 100 + N - 1
    finally:
        rb.close()


def test_sizes_change_part_way_through_a_batch(obj):
    split = 4500  # the first other-sized record comes after 4500 records of one size
    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True, max_batch=N)
    try:
        run(obj, "emit_mixed", split, N)
        batch = _batch(rb, N)
        assert batch.record_size is None
        assert batch.sizes == [REC] * split + [8] * (N - split)
        assert batch.cpus == [0] * N
        assert batch.buffer.nbytes == REC * split + 8 * (N - split)
        items = list(batch)
        assert [_a(v) for v in items[:split]] == list(range(split))
        assert [_u64(v) for v in items[split:]] == list(range(split, N))
        assert _u64(batch[N - 1]) == N - 1 and _a(batch[split - 1]) == split - 1
    finally:
        rb.close()


def test_empty_records_are_counted_and_kept_in_order(obj):
    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True)
    try:
        run(obj, "emit_empty", 0, 10)  # ten empty records only
        batch = _batch(rb, 10)
        assert batch.sizes == [0] * 10 and batch.buffer.nbytes == 0
        assert [v.nbytes for v in batch] == [0] * 10
        run(obj, "emit_empty", 3, 2)  # two empty records, then three of 8 bytes
        batch = _batch(rb, 5)
        assert batch.sizes == [0, 0, 8, 8, 8] and batch.record_size is None
        assert [bytes(v) for v in batch[:2]] == [b"", b""]
        assert [_u64(v) for v in batch[2:]] == [2, 3, 4]
    finally:
        rb.close()


def test_reused_buffers_alternate_between_kinds_of_batches(obj):
    """Batches with and without per-record arrays, one after another, some kept alive:
    each keeps its own records, sizes and cpus while the buffers of dropped ones are
    reused by later drains."""
    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True, max_batch=N)
    kept = []
    try:
        for round_ in range(8):
            if round_ % 2:
                run(obj, "emit_mixed", 10 * round_, 200)
                sizes = [REC] * (10 * round_) + [8] * (200 - 10 * round_)
            else:
                run(obj, "emit", 1000 * round_, 300)
                sizes = [REC] * 300
            batch = _batch(rb, len(sizes))
            assert batch.sizes == sizes and batch.cpus == [0] * len(sizes)
            if round_ % 4 < 2:
                kept.append((round_, sizes, batch))
            del batch
        for round_, sizes, batch in kept:
            assert batch.sizes == sizes
            if round_ % 2:
                split = 10 * round_
                assert [_a(v) for v in batch[:split]] == list(range(split))
                assert [_u64(v) for v in batch[split:]] == list(range(split, 200))
            else:
                assert batch.column("a", obj.btf.ctype("rec")) == [
                    1000 * round_ + i for i in range(300)
                ]
    finally:
        rb.close()


# --- the C reader of the rings (ffi_build/shim_events.c, tinybpf_ring_reader) ----------
def test_discarded_records_are_skipped(obj):
    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True, event_type="rec")
    try:
        run(obj, "emit_discard", 500, 30)
        batch = _batch(rb, 20)
        assert batch.column("a") == [500 + i for i in range(30) if i % 3 != 1]
        assert batch.record_size == REC
        assert rb.consume_batch().buffer.nbytes == 0  # nothing left over
    finally:
        rb.close()


def test_records_that_wrap_around_the_ring_arrive_whole(obj):
    """1.4 MB of 48-byte slots through a 256 KiB ring: the ring wraps five times and
    records straddle its end (the reader relies on the kernel mapping it twice in a
    row)."""
    assert obj.maps["evs"].max_entries == 256 * 1024
    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True, event_type="rec")
    try:
        for round_ in range(30):
            run(obj, "emit", 10_000 * round_, 1000)
            got: list[int] = []
            while len(batch := rb.consume_batch()):
                got += batch.column("a")
                assert batch.column("c") == [-(a - 10_000 * round_) for a in batch.column("a")]
            assert got == [10_000 * round_ + i for i in range(1000)]
    finally:
        rb.close()


def test_callback_mode_and_poll_read_through_the_same_reader(obj):
    got: list[int] = []
    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], lambda e: got.append(e.a), event_type="rec")
    try:
        assert rb.poll(0) == 0  # nothing yet: the epoll wait times out
        run(obj, "emit", 7, 3)
        assert rb.poll(1000) == 3
        run(obj, "emit_discard", 20, 6)
        assert rb.consume() == 4
        assert got == [7, 8, 9, 20, 22, 23, 25]
    finally:
        rb.close()


def test_concurrent_producer_records_are_never_torn_or_reordered(obj):
    """A thread runs the producer (its test_run releases the GIL: it writes while the
    reader reads, on the other CPU) until 200 rounds are done; every record read is whole
    (its fields agree with each other) and they come in the order they were written.
    Rounds that found the ring full stop early: those records were never written."""
    import threading

    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True, event_type="rec", max_batch=512)
    done = threading.Event()

    def produce() -> None:
        try:
            for round_ in range(200):
                run(obj, "emit", 1000 * round_, 500)
        finally:
            done.set()

    t = threading.Thread(target=produce)
    t.start()
    seen: list[tuple[int, int]] = []
    try:
        while True:
            finished = done.is_set()
            batch = rb.consume_batch()
            for r in batch.array():
                i = r.b
                assert (r.a - i) % 1000 == 0 and r.c == -i and list(r.pair) == [i, 2 * i]
                assert r.inner.y == 10 * i and r.inner.x == 3 and r.tag == b"ev"
                seen.append((r.a // 1000, i))
            if finished and not len(batch):
                break
    finally:
        t.join()
        rb.close()
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert len(seen) >= 5000  # at least the first rounds (the ring holds ~5400)


def test_tracepoint_records_through_the_reader_on_any_kernel(obj_path):
    """The reader on every kernel with ring buffers (no bpf_loop, no syscall programs): a
    tracepoint emits one 20-byte record per getppid() of this process into a 64 KiB ring,
    20,000 of them (the ring wraps about ten times), read in batches and by callbacks."""
    import os
    from pathlib import Path

    reason = map_type_unavailable_reason("RINGBUF") or tracepoint_unavailable_reason(
        "syscalls", "sys_enter_getppid"
    )
    if reason:
        pytest.skip(reason)
    comm = Path(f"/proc/{os.getpid()}/comm").read_bytes().strip()[:15]
    with tinybpf.load(obj_path("firstgen_ring")) as o:
        o.maps["target"][0] = os.getpid()
        with o.program("emit").attach():
            rb = tinybpf.BpfRingBuffer(o.maps["events"], batch=True, event_type="event")
            try:
                pids: list[int] = []
                for _ in range(20):
                    for _ in range(1000):
                        os.getppid()
                    while len(batch := rb.consume_batch()):
                        assert batch.record_size == 20
                        pids += batch.column("pid")
                        assert {bytes(e.comm).split(b"\0")[0] for e in batch.array()} == {comm}
            finally:
                rb.close()
            assert pids == [os.getpid()] * 20_000
            got: list[int] = []
            cb = tinybpf.BpfRingBuffer(
                o.maps["events"], lambda e: got.append(e.pid), event_type="event"
            )
            try:
                for _ in range(3):  # (the ring holds 2047 of these records)
                    for _ in range(1000):
                        os.getppid()
                    assert cb.poll(0) == 1000
            finally:
                cb.close()
            assert got == [os.getpid()] * 3000


_UNMAPPABLE = r"""
import resource, tinybpf
m = tinybpf.create_map(tinybpf.BpfMapType.RINGBUF, 0, 0, 64 << 20)
vm_kib = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:"))
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (vm_kib * 1024 + (32 << 20), hard))
try:
    tinybpf.BpfRingBuffer(m, lambda d: 0)
except tinybpf.BpfError as e:
    print("refused", e.errno, e)
rb = tinybpf.BpfRingBuffer(batch=True)
try:
    rb.add(m)
except tinybpf.BpfError as e:
    print("refused", e.errno, e)
try:
    rb.poll_batch(0)
except tinybpf.BpfError as e:
    print("then", e)
rb.close()
"""


def test_a_ring_that_cannot_be_mapped_is_refused_and_leaves_no_reader():
    """A 64 MiB ring (128 MiB of address space to map) under an address-space limit 32 MiB
    above what the process uses: adding it fails with ENOMEM naming the map, and the
    buffer is left without maps (not with a reader of none)."""
    import errno
    import subprocess
    import sys

    reason = map_type_unavailable_reason("RINGBUF")
    if reason:
        pytest.skip(reason)
    out = subprocess.run(
        [sys.executable, "-c", _UNMAPPABLE], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stdout
    for line in lines[:2]:
        assert line.startswith(f"refused {errno.ENOMEM} ") and "cannot read ring buffer map" in line
    assert lines[2].startswith("then No maps added to ring buffer"), lines[2]
