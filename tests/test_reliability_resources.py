"""Resources over time: fds and memory stay flat.

* open/load/attach/detach/close cycles of a tiny tracepoint object (tests/bpf/rel_tiny.bpf.c)
  keep the fd count equal and RSS flat. Detaching a perf-event tracepoint waits for an RCU
  grace period in the kernel (~75 ms here), so the default run does as many cycles as fit
  in about 40 s; the 10,000-cycle run is ``@pytest.mark.slow`` (TINYBPF_SLOW=1).
* 10 million ring-buffer events through a Python callback (a SEC("syscall") producer with
  bpf_loop, run through test_run in chunks) keep RSS flat; same for the perf buffer.
* Objects dropped without close() are reclaimed by the GC, with a ResourceWarning.

Figures are printed (run with -s) and recorded in docs/reliability.md.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import struct
import time
import warnings

import pytest

import tinybpf
from tinybpf import BpfPerfBuffer, BpfRingBuffer

pytestmark = pytest.mark.root

SLOW = os.environ.get("TINYBPF_SLOW") == "1"
slow = pytest.mark.skipif(not SLOW, reason="slow test: set TINYBPF_SLOW=1 to run it")

PAGE = os.sysconf("SC_PAGE_SIZE")
RSS_BOUND = 20 << 20  # bytes of RSS growth tolerated over a whole run
CYCLE_BUDGET_S = float(os.environ.get("TINYBPF_CYCLE_BUDGET", "40"))


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def produce_ring(prog, n: int, start: int = 0) -> None:
    prog.test_run(ctx=struct.pack("<IIQ", n, 0, start), repeat=0, ctx_out_size=0)


# --------------------------------------------------------------------------- cycles


@pytest.fixture
def quiet_libbpf_log():
    """pytest keeps every log record of a test in memory: a verifier log per failed load
    would look like a leak. The libbpf text still reaches BpfError.libbpf_log."""
    logger = logging.getLogger("tinybpf")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    yield
    logger.setLevel(level)


def _cycle(path, prog_name: str, check: bool) -> None:
    obj = tinybpf.open(path)
    for p in obj.programs.values():
        p.autoload = p.name == prog_name
    obj.load()
    cnt = obj.maps["cnt"]
    cnt[0] = os.getpid()
    link = obj.program(prog_name).attach()
    if check:  # the attachment works: one getpid() is counted
        before = cnt[1]
        if prog_name == "tp_getpid":
            os.getpid()
            os.getpid()  # glibc does not cache getpid, but be sure one syscall happens
        else:
            _rename_thread()
        assert cnt[1] > before
    link.destroy()
    obj.close()


def _rename_thread() -> None:
    """Trigger the task_rename tracepoint, then give the thread its name back (other
    tests compare event comm fields with this process's name)."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/comm", "rb") as f:
        old = f.read().strip()
    libc.prctl(15, b"tinybpf-rel", 0, 0, 0)  # PR_SET_NAME: the task_rename tracepoint
    libc.prctl(15, old, 0, 0, 0)


def _run_cycles(obj_path, prog_name: str, n: int | None, budget_s: float) -> dict:
    path = obj_path("rel_tiny")
    for _ in range(20):  # warm-up: libbpf feature probes, caches, allocator arenas
        _cycle(path, prog_name, True)
    gc.collect()
    fds0, rss0 = fd_count(), rss()
    t0 = time.monotonic()
    # calibrate: how many cycles fit in the budget
    for _ in range(10):
        _cycle(path, prog_name, False)
    per = (time.monotonic() - t0) / 10
    if n is None:
        n = max(50, min(10_000, int(budget_s / per)))
    for i in range(10, n):
        _cycle(path, prog_name, i % 100 == 0)
    elapsed = time.monotonic() - t0
    gc.collect()
    fds1, rss1 = fd_count(), rss()
    return {
        "cycles": n,
        "seconds": elapsed,
        "ms_per_cycle": 1000 * elapsed / n,
        "fds": (fds0, fds1),
        "rss_mb": (rss0 / 2**20, rss1 / 2**20),
    }


def _print_cycles(label: str, r: dict) -> None:
    print(
        f"\n{label}: {r['cycles']} open/load/attach/detach/close cycles in {r['seconds']:.1f} s "
        f"({r['ms_per_cycle']:.2f} ms/cycle); fds {r['fds'][0]} -> {r['fds'][1]}; "
        f"RSS {r['rss_mb'][0]:.1f} -> {r['rss_mb'][1]:.1f} MiB"
    )


def test_cycles_keep_fds_and_rss_flat(obj_path, quiet_libbpf_log):
    r = _run_cycles(obj_path, "tp_getpid", None, CYCLE_BUDGET_S)
    _print_cycles("tracepoint", r)
    assert r["fds"][1] == r["fds"][0]
    assert (r["rss_mb"][1] - r["rss_mb"][0]) * 2**20 < RSS_BOUND


def test_raw_tracepoint_cycles_keep_fds_and_rss_flat(obj_path, quiet_libbpf_log):
    """The raw tracepoint detaches without the RCU wait: more cycles in less time."""
    r = _run_cycles(obj_path, "raw_rename", None, 10)
    _print_cycles("raw tracepoint", r)
    assert r["fds"][1] == r["fds"][0]
    assert (r["rss_mb"][1] - r["rss_mb"][0]) * 2**20 < RSS_BOUND


@slow
@pytest.mark.slow
def test_10000_cycles_keep_fds_and_rss_flat(obj_path, quiet_libbpf_log):
    r = _run_cycles(obj_path, "tp_getpid", 10_000, 0)
    _print_cycles("tracepoint (slow run)", r)
    assert r["fds"][1] == r["fds"][0]
    assert (r["rss_mb"][1] - r["rss_mb"][0]) * 2**20 < RSS_BOUND


def test_failed_loads_leak_nothing(obj_path, quiet_libbpf_log):
    """A load that fails in the verifier, repeated: no fd or memory left behind."""
    path = obj_path("prog_invalid")

    def once():
        try:
            tinybpf.load(path)
        except tinybpf.BpfError as e:
            assert e.libbpf_log
        else:
            raise AssertionError("prog_invalid loaded")

    for _ in range(20):
        once()
    gc.collect()
    fds0, rss0 = fd_count(), rss()
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 3 or n < 200:
        once()
        n += 1
    gc.collect()
    print(f"\n{n} failed loads: fds {fds0} -> {fd_count()}, RSS +{(rss() - rss0) / 2**20:.2f} MiB")
    assert fd_count() == fds0
    assert rss() - rss0 < RSS_BOUND


# --------------------------------------------------------------------------- events


def _ring_events(obj_path, total: int, chunk: int = 100_000) -> dict:
    obj = tinybpf.load(obj_path("rel_events"))
    prog = obj.program("produce_ring")
    state = {"n": 0, "next": 0, "bad": 0}

    def cb(data):
        seq = int.from_bytes(data[:8], "little")
        if seq != state["next"]:
            state["bad"] += 1
        state["next"] = seq + 1
        state["n"] += 1

    rb = BpfRingBuffer(obj.maps["rb"], cb)
    try:
        # warm-up, then measure
        produce_ring(prog, chunk, 0)
        rb.consume()
        state["next"] = 0
        state["n"] = 0
        gc.collect()
        fds0, rss0 = fd_count(), rss()
        t0 = time.monotonic()
        peak = rss0
        for start in range(0, total, chunk):
            produce_ring(prog, min(chunk, total - start), start)
            rb.consume()
            if start % (10 * chunk) == 0:
                peak = max(peak, rss())
        elapsed = time.monotonic() - t0
        gc.collect()
        drops = obj.maps["ring_drops"].lookup_percpu_sum(0)
        return {
            "events": state["n"],
            "out_of_order": state["bad"],
            "drops": drops,
            "seconds": elapsed,
            "fds": (fds0, fd_count()),
            "rss_mb": (rss0 / 2**20, rss() / 2**20, peak / 2**20),
        }
    finally:
        rb.close()
        obj.close()


def _print_events(label: str, r: dict) -> None:
    print(
        f"\n{label}: {r['events']:,} events in {r['seconds']:.1f} s "
        f"({r['events'] / r['seconds'] / 1e6:.2f} M/s), drops {r['drops']}, "
        f"out of order {r['out_of_order']}; fds {r['fds'][0]} -> {r['fds'][1]}; RSS "
        f"{r['rss_mb'][0]:.1f} -> {r['rss_mb'][1]:.1f} MiB (peak {r['rss_mb'][2]:.1f})"
    )


RING_EVENTS = int(os.environ.get("TINYBPF_RING_EVENTS", str(10_000_000)))


@pytest.mark.asan_incompatible  # ASan reserves terabytes of address space / quarantines frees
def test_ring_buffer_events_keep_rss_flat(obj_path):
    r = _ring_events(obj_path, RING_EVENTS)
    _print_events("ring buffer", r)
    assert r["events"] == RING_EVENTS
    assert r["drops"] == 0 and r["out_of_order"] == 0
    assert r["fds"][1] == r["fds"][0]
    assert (r["rss_mb"][1] - r["rss_mb"][0]) * 2**20 < RSS_BOUND


@slow
@pytest.mark.slow
def test_ring_buffer_50m_events_keep_rss_flat(obj_path):
    r = _ring_events(obj_path, 50_000_000)
    _print_events("ring buffer (slow run)", r)
    assert r["events"] == 50_000_000
    assert r["drops"] == 0 and r["out_of_order"] == 0
    assert (r["rss_mb"][1] - r["rss_mb"][0]) * 2**20 < RSS_BOUND


@pytest.mark.asan_incompatible  # ASan reserves terabytes of address space / quarantines frees
def test_perf_buffer_events_keep_rss_flat(obj_path):
    aff = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(aff)})
    obj = tinybpf.load(obj_path("rel_events"))
    prog = obj.program("produce_perf")
    n = [0]

    def cb(cpu, data):
        n[0] += 1

    pb = BpfPerfBuffer(obj.maps["pb"], cb, page_count=64)
    try:
        total, chunk = 200_000, 2_000  # 2000 * 32 bytes fits the 256 KiB per-CPU ring

        def produce(start):
            prog.test_run(ctx=struct.pack("<QQ", chunk, start), repeat=0, ctx_out_size=0)

        produce(0)
        pb.consume()
        n[0] = 0
        gc.collect()
        fds0, rss0 = fd_count(), rss()
        t0 = time.monotonic()
        for start in range(0, total, chunk):
            produce(start)
            pb.consume()
        elapsed = time.monotonic() - t0
        gc.collect()
        print(
            f"\nperf buffer: {n[0]:,} samples in {elapsed:.1f} s, lost {pb.lost}; fds {fds0} -> "
            f"{fd_count()}; RSS {rss0 / 2**20:.1f} -> {rss() / 2**20:.1f} MiB"
        )
        assert n[0] == total and pb.lost == 0
        assert fd_count() == fds0
        assert rss() - rss0 < RSS_BOUND
    finally:
        pb.close()
        obj.close()
        os.sched_setaffinity(0, aff)


@pytest.mark.asan_incompatible  # ASan reserves terabytes of address space / quarantines frees
def test_iterator_mode_queue_keeps_rss_flat(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    prog = obj.program("produce_ring")
    rb = BpfRingBuffer(obj.maps["rb"])
    try:
        produce_ring(prog, 100_000)
        rb.consume()
        list(rb)
        gc.collect()
        rss0 = rss()
        total = 0
        for start in range(0, 2_000_000, 100_000):
            produce_ring(prog, 100_000, start)
            rb.consume()
            total += sum(1 for _ in rb)
        gc.collect()
        print(
            f"\niterator mode: {total:,} events; RSS {rss0 / 2**20:.1f} -> {rss() / 2**20:.1f} MiB"
        )
        assert total == 2_000_000 and rb.dropped == 0
        assert rss() - rss0 < RSS_BOUND
    finally:
        rb.close()
        obj.close()


# --------------------------------------------------------------------------- GC


def _resource_warnings(w) -> list[str]:
    return [str(x.message) for x in w if issubclass(x.category, ResourceWarning)]


def test_dropped_object_is_reclaimed_with_resource_warning(obj_path):
    gc.collect()
    fds0 = fd_count()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        obj = tinybpf.load(obj_path("rel_events"))
        _ = obj.maps["h1"], obj.program("produce_ring"), obj.btf, obj.globals
        assert fd_count() > fds0
        del obj, _
        gc.collect()
    msgs = _resource_warnings(w)
    print(f"\n{msgs}")
    assert any("BpfObject" in m and "not closed" in m for m in msgs)
    assert fd_count() == fds0


def test_dropped_object_in_a_reference_cycle_is_reclaimed(obj_path):
    gc.collect()
    fds0 = fd_count()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        obj = tinybpf.load(obj_path("rel_events"))
        holder: list = []
        rb = BpfRingBuffer(obj.maps["rb"], holder.append)
        holder.append(rb)  # the buffer's callback refers to the buffer
        obj.cycle = [obj, rb, holder]
        del obj, rb, holder
        gc.collect()
    assert any("BpfObject" in m for m in _resource_warnings(w))
    assert fd_count() == fds0


def test_dropped_attached_link_detaches_with_a_warning(obj_path):
    obj = tinybpf.load(obj_path("rel_tiny"))
    cnt = obj.maps["cnt"]
    cnt[0] = os.getpid()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        link = obj.program("tp_getpid").attach()
        os.getpid()
        assert cnt[1] >= 1
        del link
        gc.collect()
    assert any(
        issubclass(x.category, tinybpf.LinkDetachedWarning)
        and "garbage collected while attached" in str(x.message)
        for x in w
    )
    before = cnt[1]
    os.getpid()
    assert cnt[1] == before  # detached
    obj.close()


def _gc_reclaims(make) -> tuple[list[str], int, int]:
    gc.collect()
    fds0 = fd_count()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        x = make()
        fds_open = fd_count()
        del x
        gc.collect()
    return _resource_warnings(w), fds0, fds_open


GC_CASES = {
    "BpfRingBuffer": lambda ev: BpfRingBuffer(ev.maps["rb"], lambda d: None),
    "BpfPerfBuffer": lambda ev: BpfPerfBuffer(ev.maps["pb"], lambda c, d: None),
    "standalone BpfMap": lambda ev: tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 4, 8),
    "typed view of a standalone map": lambda ev: tinybpf.create_map(
        tinybpf.BpfMapType.HASH, 4, 4, 8
    ).typed(key=ctypes.c_uint32),
    "Btf": lambda ev: tinybpf.Btf.from_vmlinux(),
}


@pytest.mark.parametrize("what", list(GC_CASES))
def test_dropped_resources_are_reclaimed(obj_path, what):
    ev = tinybpf.load(obj_path("rel_events"))
    try:
        msgs, fds0, fds_open = _gc_reclaims(lambda: GC_CASES[what](ev))
        gc.collect()
        print(f"\n{what}: fds {fds0} -> {fds_open} -> {fd_count()}; warnings: {msgs}")
        assert fd_count() == fds0
    finally:
        ev.close()


@pytest.mark.parametrize(
    "what",
    ["BpfRingBuffer", "BpfPerfBuffer", "standalone BpfMap"],
)
def test_dropped_resources_warn(obj_path, what):
    ev = tinybpf.load(obj_path("rel_events"))
    try:
        msgs, _, _ = _gc_reclaims(lambda: GC_CASES[what](ev))
        assert msgs, f"no ResourceWarning for an unclosed {what}"
    finally:
        ev.close()
