"""tinybpf side of the benchmark (run by bench/run.py with the project's .venv python).

    python bench/tinybpf_bench.py WORKLOAD OBJ REPS [ARGS...]

Each repetition prints one JSON object on its own line, like bench/c/bench_c.c. Only the
public API is timed for the "tinybpf" figures; rows marked "raw" use the extension module
directly (tinybpf._core) to show the floor a cffi binding can reach on the same machine.
"""

from __future__ import annotations

import ctypes
import gc
import inspect
import json
import struct
import sys
import time
import tracemalloc
from typing import Any

import tinybpf

now = time.perf_counter


def emit(**kw: Any) -> None:
    print(json.dumps(kw), flush=True)


class Event(ctypes.Structure):
    """struct event of bench/bpf/bench.bpf.c (32 bytes)."""

    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("seq", ctypes.c_uint32),
        ("ts", ctypes.c_uint64),
        ("a", ctypes.c_uint64),
        ("b", ctypes.c_uint64),
    ]


def _ctx(n: int) -> bytes:
    return struct.pack("<Q", n)


def _produce(prog: Any, n: int) -> None:
    # syscall and raw_tp programs refuse repeat and ctx_out (EINVAL)
    prog.test_run(ctx=_ctx(n), repeat=0, ctx_out_size=0)


def _drops(obj: Any) -> int:
    return int(obj.maps["drops"][0])


# --- (1) single lookups and updates through the dict API ---------------------------------
def wl_map(path: str, reps: int, passes: int) -> None:
    with tinybpf.load(path) as obj:
        m = obj.maps["h10k"]
        n = 10000
        keys = list(range(n))
        for k in keys:
            m[k] = k * 3
        for _ in range(reps):
            total = 0
            t0 = now()
            for _p in range(passes):
                for k in keys:
                    total += m[k]
            t1 = now()
            for p in range(passes):
                for k in keys:
                    m[k] = k + p
            t2 = now()
            ops = n * passes
            emit(lookup_per_s=ops / (t1 - t0), update_per_s=ops / (t2 - t1))


def wl_mmap(path: str, reps: int, passes: int) -> None:
    """An mmap-able array (marr): m[k] and m[k] = v through the mapping; the same on an
    ordinary array (parr: one syscall per element, the int fast path); to_numpy() view."""
    with tinybpf.load(path) as obj:
        m, p = obj.maps["marr"], obj.maps["parr"]
        n = 10000
        keys = list(range(n))
        for k in keys:
            m[k] = k * 3
            p[k] = k * 3
        mapped = getattr(m, "_mapped", None) is not None
        for _ in range(reps):
            total = 0
            t0 = now()
            for _p in range(passes):
                for k in keys:
                    total += m[k]
            t1 = now()
            for q in range(passes):
                for k in keys:
                    m[k] = k + q
            t2 = now()
            for _p in range(passes):
                for k in keys:
                    total += p[k]
            t3 = now()
            for q in range(passes):
                for k in keys:
                    p[k] = k + q
            t4 = now()
            ops = n * passes
            emit(
                read_per_s=ops / (t1 - t0),
                write_per_s=ops / (t2 - t1),
                syscall_lookup_per_s=ops / (t3 - t2),
                syscall_update_per_s=ops / (t4 - t3),
                mapped=mapped,
            )


def wl_numpy(path: str, reps: int) -> None:
    """to_numpy(): the 100k hash (batch reads into two arrays) and the marr live view."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        emit(unsupported="numpy is not installed")
        return
    with tinybpf.load(path) as obj:
        m = obj.maps["h100k"]
        n = _fill_100k(m)
        marr = obj.maps["marr"]
        for _ in range(reps):
            t0 = now()
            keys, values = m.to_numpy()
            s = int(values.sum())
            t1 = now()
            _, live = marr.to_numpy()
            s += int(live.sum())
            t2 = now()
            if len(keys) != n:
                raise SystemExit(f"to_numpy: {len(keys)} keys, expected {n}")
            emit(hash_s=t1 - t0, hash_per_s=n / (t1 - t0), view_s=t2 - t1, sum=s)


def wl_map_raw(path: str, reps: int, passes: int) -> None:
    """The floor: the extension's bpf_map_lookup_elem with preallocated cdata buffers."""
    from tinybpf._core import ffi, lib

    with tinybpf.load(path) as obj:
        m = obj.maps["h10k"]
        fd = m.fd
        n = 10000
        kb = ffi.new("__u32 *")
        vb = ffi.new("__u64 *")
        kp = ffi.cast("void *", kb)  # whatever pointer type the cdef declares
        vp = ffi.cast("void *", vb)
        lookup, update = lib.bpf_map_lookup_elem, lib.bpf_map_update_elem
        for k in range(n):
            m[k] = k * 3
        for _ in range(reps):
            total = 0
            t0 = now()
            for _p in range(passes):
                for k in range(n):
                    kb[0] = k
                    if lookup(fd, kp, vp) < 0:
                        raise KeyError(k)
                    total += vb[0]
            t1 = now()
            for p in range(passes):
                for k in range(n):
                    kb[0] = k
                    vb[0] = k + p
                    if update(fd, kp, vp, 0) < 0:
                        raise OSError("update")
            t2 = now()
            ops = n * passes
            emit(lookup_per_s=ops / (t1 - t0), update_per_s=ops / (t2 - t1))


# --- (2) iteration of a 100k-entry hash -----------------------------------------------------
def _fill_100k(m: Any) -> int:
    n = 100000
    for k in range(n):
        m[k] = k * 7
    return n


def wl_iter(path: str, reps: int) -> None:
    with tinybpf.load(path) as obj:
        m = obj.maps["h100k"]
        n = _fill_100k(m)
        for _ in range(reps):
            gc.collect()
            t0 = now()
            cnt = 0
            s = 0
            for _k, v in m.items():
                cnt += 1
                s += v
            t1 = now()
            kc = 0
            for _k in m.keys():  # noqa: SIM118 (keys() is what is measured)
                kc += 1
            t2 = now()
            if cnt != n or kc != n or s != 7 * n * (n - 1) // 2:
                raise SystemExit(f"iteration saw {cnt}/{kc} of {n} entries")
            emit(items_s=t1 - t0, keys_s=t2 - t1, entries=n)
        # memory: retained blocks per entry when the results are kept (a tuple and two ints
        # is the minimum) and the peak while iterating without keeping anything
        gc.collect()
        gc.disable()
        b0 = sys.getallocatedblocks()
        kept = list(m.items())
        blocks = (sys.getallocatedblocks() - b0) / len(kept)
        del kept
        gc.enable()
        gc.collect()
        tracemalloc.start()
        for _ in m.items():
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tracemalloc.start()
        kept = list(m.items())
        kept_bytes, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del kept
        emit(
            mem=True, retained_blocks_per_entry=blocks, iter_peak_bytes=peak, kept_bytes=kept_bytes
        )


def wl_iter_raw(path: str, reps: int) -> None:
    """The one-thread floor: lookup_batch into cdata buffers, ints decoded in bulk with
    memoryview, one batch after the other (tinybpf's items() reads the next batches ahead on
    a thread while it decodes, so it can be faster than this)."""
    from tinybpf._core import NULL, ffi, lib

    with tinybpf.load(path) as obj:
        m = obj.maps["h100k"]
        n = _fill_100k(m)
        fd = m.fd
        chunk = 4096
        keys = ffi.new("__u32[]", chunk)
        vals = ffi.new("__u64[]", chunk)
        inb = ffi.new("__u32 *")
        outb = ffi.new("__u32 *")
        cnt = ffi.new("__u32 *")
        kp, vp = ffi.cast("void *", keys), ffi.cast("void *", vals)
        inp, outp = ffi.cast("void *", inb), ffi.cast("void *", outb)
        for _ in range(reps):
            t0 = now()
            out: list[tuple[int, int]] = []
            first = True
            while True:
                cnt[0] = chunk
                ret = lib.bpf_map_lookup_batch(fd, NULL if first else inp, outp, kp, vp, cnt, NULL)
                c = cnt[0]
                ks = memoryview(ffi.buffer(keys, 4 * c)).cast("I").tolist()
                vs = memoryview(ffi.buffer(vals, 8 * c)).cast("Q").tolist()
                out.extend(zip(ks, vs, strict=True))
                if ret < 0:
                    break
                inb[0] = outb[0]
                first = False
            t1 = now()
            if len(out) != n:
                raise SystemExit(f"raw iteration saw {len(out)} of {n}")
            emit(items_s=t1 - t0, entries=n)


# --- (3) ring buffer -----------------------------------------------------------------------------
def _has_batch(cls: Any) -> bool:
    """The library's batch mode: ``cls(map, batch=True, event_type=...)`` + ``consume_batch()``
    returning an EventBatch (tinybpf >= 05093ff)."""
    params = inspect.signature(cls.__init__).parameters
    return "batch" in params and hasattr(cls, "consume_batch")


def _batch_consumer(buf: Any, state: list[int]) -> Any:
    """consume(): drain with consume_batch() until empty, reading seq of every event with
    the batch's own column access (one C-speed pass per batch)."""
    take = buf.consume_batch
    reader = _batch_reader(state)

    def consume() -> None:
        while True:
            batch = take()
            n = len(batch)
            if not n:
                return
            view = getattr(batch, "column_view", None)  # zero-copy, as the raw floor reads
            column = view or getattr(batch, "column", None)
            if column is not None:
                state[0] += sum(column("seq"))
                state[1] += n
            else:
                reader(batch)

    return consume


def _batch_reader(state: list[int]) -> Any:
    """A batch callback reading seq of every event; accepts a bytes-like batch of 32-byte
    records or a sequence of typed events."""

    def on_batch(batch: Any) -> None:
        try:
            mv = memoryview(batch)
        except TypeError:
            mv = None
        if mv is not None:
            u32 = mv.cast("B").cast("I")
            state[0] += sum(u32[1::8])
            state[1] += len(u32) // 8
        else:
            s = 0
            for e in batch:
                s += e.seq
            state[0] += s
            state[1] += len(batch)

    return on_batch


def _ring_loop(
    obj: Any, rb: Any, total: int, chunk: int, consume: Any = None
) -> tuple[float, float]:
    prog = obj.programs["produce_ring"]
    consume = consume or rb.consume
    produce_t = consume_t = 0.0
    done = 0
    while done < total:
        n = min(chunk, total - done)
        t0 = now()
        _produce(prog, n)
        t1 = now()
        consume()
        t2 = now()
        produce_t += t1 - t0
        consume_t += t2 - t1
        done += n
    return produce_t, consume_t


def wl_ring(
    path: str, reps: int, total: int, chunk: int, mode: str = "typed", max_batch: int = 0
) -> None:
    with tinybpf.load(path) as obj:
        state = [0, 0]  # sum of seq, events
        consume = None
        if mode == "typed":

            def on_event(e: Any) -> None:
                state[0] += e.seq
                state[1] += 1

            rb = tinybpf.BpfRingBuffer(obj.maps["rb"], on_event, event_type="event")
        elif mode == "batch":
            if not _has_batch(tinybpf.BpfRingBuffer):
                emit(unsupported="tinybpf.BpfRingBuffer has no batch mode")
                return
            kw = {"max_batch": max_batch} if max_batch else {}
            rb = tinybpf.BpfRingBuffer(obj.maps["rb"], batch=True, event_type="event", **kw)
            consume = _batch_consumer(rb, state)
        else:
            raise SystemExit(f"unknown ring mode {mode}")
        with rb:
            _ring_loop(obj, rb, 2 * chunk, chunk, consume)  # warm-up: touch the whole ring
            for _ in range(reps):
                state[0] = state[1] = 0
                produce_t, consume_t = _ring_loop(obj, rb, total, chunk, consume)
                emit(
                    events=state[1],
                    expected=total,
                    dropped=_drops(obj),
                    produce_per_s=total / produce_t,
                    consume_per_s=state[1] / consume_t,
                )


def _per_event_reader(state: list[int]) -> Any:
    """What a library per-event mode could do on top of a C drain: one typed event per
    sample (a copy: events stay valid after the callback) and one Python call."""

    def on_event(e: Any) -> None:
        state[0] += e.seq
        state[1] += 1

    from_copy = Event.from_buffer_copy

    def on_batch(batch: Any) -> None:
        data = batch[:]  # one bytes copy per batch
        for off in range(0, len(data), 32):
            on_event(from_copy(data, off))

    return on_batch


def wl_ring_raw(path: str, reps: int, total: int, chunk: int, per_event: int = 0) -> None:
    """Prototype: samples copied in C (bench/proto) and handed to Python as one buffer;
    per_event=1: then one typed event and one callback per sample."""
    sys.path.insert(0, str(_proto_dir()))
    from _bench_proto import ffi as pffi  # type: ignore[import-not-found]
    from _bench_proto import lib as plib

    with tinybpf.load(path) as obj:
        # events per batch: 2 MiB stays in cache; 128 KiB for per-event delivery
        cap = 4096 if per_event else 65536
        d = pffi.new("struct proto_drain *")
        d.cap, d.esize = cap * 32, 32
        h = plib.proto_ring_new(obj.maps["rb"].fd, d)
        if h == pffi.NULL:
            raise OSError("proto_ring_new failed")
        state = [0, 0]
        reader = _per_event_reader(state) if per_event else _batch_reader(state)

        def consume() -> None:
            while True:
                n = plib.proto_ring_drain(h, d)
                if n < 0:
                    raise OSError(-n, "proto_ring_drain")
                if d.bad:
                    raise SystemExit("unexpected sample size")
                if n:
                    reader(pffi.buffer(d.buf, d.len))
                if n < cap:
                    return

        try:
            _ring_loop(obj, None, 2 * chunk, chunk, consume)  # warm-up
            for _ in range(reps):
                state[0] = state[1] = 0
                produce_t, consume_t = _ring_loop(obj, None, total, chunk, consume)
                emit(
                    events=state[1],
                    expected=total,
                    dropped=_drops(obj),
                    produce_per_s=total / produce_t,
                    consume_per_s=state[1] / consume_t,
                )
        finally:
            plib.proto_ring_free(h)


def wl_ring_produce(path: str, reps: int, total: int, chunk: int) -> None:
    """Producer alone: test_run of produce_ring, the ring drained without a callback."""
    sys.path.insert(0, str(_proto_dir()))
    with tinybpf.load(path) as obj:
        prog = obj.programs["produce_ring"]
        # drain by moving the consumer position: a ring buffer with a C no-op is the cheapest
        from _bench_proto import lib as plib

        h = plib.proto_ring_new_noop(obj.maps["rb"].fd)
        try:
            for _ in range(2):  # warm-up
                _produce(prog, chunk)
                plib.proto_ring_skip(h)
            for _ in range(reps):
                done = 0
                t = 0.0
                while done < total:
                    n = min(chunk, total - done)
                    t0 = now()
                    _produce(prog, n)
                    t += now() - t0
                    plib.proto_ring_skip(h)
                    done += n
                emit(produce_per_s=total / t, dropped=_drops(obj))
        finally:
            plib.proto_ring_free(h)


# --- (4) perf buffer -----------------------------------------------------------------------------
def _perf_loop(obj: Any, consume: Any, total: int, chunk: int) -> tuple[float, float]:
    prog = obj.programs["produce_perf"]
    produce_t = consume_t = 0.0
    done = 0
    while done < total:
        n = min(chunk, total - done)
        t0 = now()
        _produce(prog, n)
        t1 = now()
        consume()
        t2 = now()
        produce_t += t1 - t0
        consume_t += t2 - t1
        done += n
    return produce_t, consume_t


def wl_perf(
    path: str, reps: int, total: int, chunk: int, period: int, pages: int, mode: str = "typed"
) -> None:
    with tinybpf.load(path) as obj:
        state = [0, 0]
        consume: Any = None
        if mode == "typed":

            def on_event(cpu: int, e: Any) -> None:
                state[0] += e.seq
                state[1] += 1

            pb = tinybpf.BpfPerfBuffer(
                obj.maps["pb"],
                on_event,
                page_count=pages,
                event_type="event",
                sample_period=period,
            )
        elif mode == "batch":
            if not _has_batch(tinybpf.BpfPerfBuffer):
                emit(unsupported="tinybpf.BpfPerfBuffer has no batch mode")
                return
            pb = tinybpf.BpfPerfBuffer(
                obj.maps["pb"],
                page_count=pages,
                event_type="event",
                sample_period=period,
                batch=True,
            )
            consume = _batch_consumer(pb, state)
        else:
            raise SystemExit(f"unknown perf mode {mode}")
        consume = consume or pb.consume
        with pb:
            _perf_loop(obj, consume, 4 * chunk, chunk)  # warm-up
            for _ in range(reps):
                state[0] = state[1] = 0
                produce_t, consume_t = _perf_loop(obj, consume, total, chunk)
                emit(
                    events=state[1],
                    expected=total,
                    dropped=_drops(obj),
                    lost=pb.lost,
                    produce_per_s=total / produce_t,
                    consume_per_s=state[1] / consume_t,
                )


def wl_perf_raw(
    path: str, reps: int, total: int, chunk: int, period: int, pages: int, per_event: int = 0
) -> None:
    """Prototype: perf samples copied in C (bench/proto), handed to Python as one buffer;
    per_event=1: then one typed event and one callback per sample."""
    sys.path.insert(0, str(_proto_dir()))
    from _bench_proto import ffi as pffi
    from _bench_proto import lib as plib

    with tinybpf.load(path) as obj:
        d = pffi.new("struct proto_drain *")
        d.esize = 32
        h = plib.proto_perf_new(obj.maps["pb"].fd, pages, period, d)
        if h == pffi.NULL:
            raise OSError("proto_perf_new failed")
        state = [0, 0]
        reader = _per_event_reader(state) if per_event else _batch_reader(state)

        def consume() -> None:
            # perf_buffer__consume has no "at most n": the batch holds what is there
            n = plib.proto_perf_drain(h, d)
            if n < 0:
                raise OSError(-n, "proto_perf_drain")
            if d.bad:
                raise SystemExit("unexpected sample size")
            if n:
                reader(pffi.buffer(d.buf, d.len))

        try:
            _perf_loop(obj, consume, 4 * chunk, chunk)  # warm-up
            for _ in range(reps):
                state[0] = state[1] = 0
                produce_t, consume_t = _perf_loop(obj, consume, total, chunk)
                emit(
                    events=state[1],
                    expected=total,
                    dropped=_drops(obj),
                    lost=int(d.lost),
                    produce_per_s=total / produce_t,
                    consume_per_s=state[1] / consume_t,
                )
        finally:
            plib.proto_perf_free(h)


# --- (5) open + load + close -------------------------------------------------------------------
def wl_openload(path: str, reps: int, iters: int) -> None:
    for _ in range(5):
        tinybpf.load(path).close()
    for _ in range(reps):
        t0 = now()
        for _i in range(iters):
            tinybpf.load(path).close()
        emit(per_iter_s=(now() - t0) / iters)


def wl_openload_raw(path: str, reps: int, iters: int) -> None:
    """The floor: libbpf's open/load/close called straight through the extension."""
    from tinybpf._core import ffi, lib

    cpath = path.encode()

    def cycle() -> None:
        o = lib.bpf_object__open_file(cpath, ffi.NULL)
        if o == ffi.NULL or lib.bpf_object__load(o) != 0:
            raise OSError("open/load failed")
        lib.bpf_object__close(o)

    for _ in range(5):
        cycle()
    for _ in range(reps):
        t0 = now()
        for _i in range(iters):
            cycle()
        emit(per_iter_s=(now() - t0) / iters)


# --- (7) RSS over many ring buffer events ------------------------------------------------------
def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0])
    return out


def wl_rss(path: str, reps: int, total: int, chunk: int) -> None:
    with tinybpf.load(path) as obj:
        state = [0, 0]

        def on_event(e: Any) -> None:
            state[0] += e.seq
            state[1] += 1

        with tinybpf.BpfRingBuffer(obj.maps["rb"], on_event, event_type="event") as rb:
            # warm-up: 2M events wrap the 64 MiB ring once, so every page is mapped
            _ring_loop(obj, rb, 2_000_000, chunk)
            gc.collect()
            before = _status()
            state[1] = 0
            _ring_loop(obj, rb, total, chunk)
            gc.collect()
            after = _status()
            emit(
                events=state[1],
                expected=total,
                rss_before_kb=before["VmRSS"],
                rss_after_kb=after["VmRSS"],
                anon_before_kb=before["RssAnon"],
                anon_after_kb=after["RssAnon"],
            )


def _proto_dir() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent / "build"


WORKLOADS = {
    "map": (wl_map, [int]),
    "map_raw": (wl_map_raw, [int]),
    "iter": (wl_iter, []),
    "iter_raw": (wl_iter_raw, []),
    "ring": (wl_ring, [int, int]),
    "ring_batch": (lambda p, r, t, c: wl_ring(p, r, t, c, "batch"), [int, int]),
    "ring_batch_max": (lambda p, r, t, c, m: wl_ring(p, r, t, c, "batch", m), [int, int, int]),
    "ring_raw": (wl_ring_raw, [int, int]),
    "ring_raw_events": (lambda p, r, t, c: wl_ring_raw(p, r, t, c, 1), [int, int]),
    "ring_produce": (wl_ring_produce, [int, int]),
    "perf": (wl_perf, [int, int, int, int]),
    "perf_batch": (lambda p, r, t, c, s, g: wl_perf(p, r, t, c, s, g, "batch"), [int] * 4),
    "perf_raw": (wl_perf_raw, [int, int, int, int]),
    "perf_raw_events": (lambda p, r, t, c, s, g: wl_perf_raw(p, r, t, c, s, g, 1), [int] * 4),
    "mmap": (wl_mmap, [int]),
    "numpy": (wl_numpy, []),
    "openload": (wl_openload, [int]),
    "openload_raw": (wl_openload_raw, [int]),
    "rss": (wl_rss, [int, int]),
}


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in WORKLOADS:
        print(__doc__, file=sys.stderr)
        print("workloads:", ", ".join(WORKLOADS), file=sys.stderr)
        return 2
    fn, types = WORKLOADS[argv[0]]
    extra = argv[3:]
    if len(extra) != len(types):
        print(f"{argv[0]}: expected {len(types)} extra arguments", file=sys.stderr)
        return 2
    fn(argv[1], int(argv[2]), *(t(a) for t, a in zip(types, extra, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
