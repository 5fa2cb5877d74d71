"""Lost events are never silent.

* Perf buffer: samples the kernel drops reach the user through ``lost_callback`` and the
  ``lost`` total, and match the count the BPF side sees (bpf_perf_event_output failures).
* Ring buffer: a failed bpf_ringbuf_reserve() is invisible to user space unless the program
  counts it. The pattern (docs/reliability.md): a per-CPU array incremented on failure, read
  with ``lookup_percpu_sum``. Produced == delivered + counted drops, exactly.
* Iterator mode (no callback): a full queue drops events and counts them in ``dropped``.

Producers: tests/bpf/rel_events.bpf.c, run through BPF_PROG_TEST_RUN.
"""

from __future__ import annotations

import os
import struct
import time

import pytest

import tinybpf
from tinybpf import BpfPerfBuffer, BpfRingBuffer

pytestmark = pytest.mark.root

RECORD = 8 + 16  # ring buffer record: 8-byte header + struct rel_event
TINY_RING = 4096


def produce_ring(obj, n: int, start: int = 0, which: int = 0) -> None:
    obj.program("produce_ring").test_run(
        ctx=struct.pack("<IIQ", n, which, start), repeat=0, ctx_out_size=0
    )


def produce_perf(obj, n: int, start: int = 0) -> None:
    obj.program("produce_perf").test_run(ctx=struct.pack("<QQ", n, start), repeat=0, ctx_out_size=0)


def seq_of(data) -> int:
    return struct.unpack_from("<Q", bytes(data))[0]


@pytest.fixture
def ev(obj_path):
    o = tinybpf.load(obj_path("rel_events"))
    yield o
    o.close()


@pytest.fixture
def pinned_cpu():
    aff = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(aff)})
    yield min(aff)
    os.sched_setaffinity(0, aff)


def poll_for(buf, cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        buf.poll(50)


# --------------------------------------------------------------------------- perf buffer


def test_perf_lost_samples_reach_the_lost_callback(ev, pinned_cpu):
    got, lost = [], []
    pb = BpfPerfBuffer(
        ev.maps["pb"],
        lambda cpu, d: got.append(seq_of(d)),
        lambda cpu, n: lost.append((cpu, n)),
        page_count=1,
    )
    total = 0
    for _ in range(5):
        produce_perf(ev, 1000, start=total)  # one 4 KiB page holds ~120 of them
        total += 1000
        poll_for(pb, lambda: False, 0.1)
    produce_perf(ev, 1, start=total)  # the last LOST record rides in front of this one
    total += 1
    poll_for(pb, lambda: got and got[-1] == total - 1)
    bpf_side = ev.maps["perf_drops"].lookup_percpu_sum(0)
    lost_total = sum(n for _, n in lost)
    print(
        f"\nperf: produced {total}, delivered {len(got)}, lost_callback {lost_total} in "
        f"{len(lost)} reports, pb.lost {pb.lost}, BPF-side failures {bpf_side}"
    )
    assert lost, "no lost report reached the user"
    assert all(cpu == pinned_cpu for cpu, _ in lost)
    assert pb.lost == lost_total == bpf_side
    assert len(got) + lost_total == total
    assert got == sorted(got)  # what arrives is in order
    pb.close()


def test_perf_lost_total_without_lost_callback(ev, pinned_cpu):
    got = []
    pb = BpfPerfBuffer(ev.maps["pb"], lambda cpu, d: got.append(seq_of(d)), page_count=1)
    produce_perf(ev, 1000)
    poll_for(pb, lambda: False, 0.1)
    produce_perf(ev, 1, start=1000)
    poll_for(pb, lambda: got and got[-1] == 1000)
    assert pb.lost > 0
    assert pb.lost == ev.maps["perf_drops"].lookup_percpu_sum(0)
    assert len(got) + pb.lost == 1001
    pb.close()


def test_perf_lost_reports_survive_a_stopped_poll(ev, pinned_cpu):
    """A callback that stops the poll right before a LOST record: the report is kept for
    the next poll, not dropped."""
    got, lost = [], []

    def cb(cpu, d):
        got.append(seq_of(d))
        return -1  # stop after every sample

    pb = BpfPerfBuffer(ev.maps["pb"], cb, lambda cpu, n: lost.append(n), page_count=1)
    produce_perf(ev, 1000)
    for _ in range(300):
        pb.poll(10)
    produce_perf(ev, 3, start=1000)
    for _ in range(50):
        pb.poll(10)
    assert sum(lost) == pb.lost == ev.maps["perf_drops"].lookup_percpu_sum(0) > 0
    assert len(got) + pb.lost == 1003
    pb.close()


# --------------------------------------------------------------------------- ring buffer


def test_ring_reserve_failures_are_countable(ev):
    """The documented pattern: count failed reserves in a per-CPU array."""
    got = []
    rb = BpfRingBuffer(ev.maps["tiny"], lambda d: got.append(seq_of(d)))
    drops = ev.maps["ring_drops"]
    produced = 0
    for _ in range(10):
        produce_ring(ev, 1000, start=produced, which=1)  # 4 KiB ring: ~170 records fit
        produced += 1000
        rb.consume()
    counted = drops.lookup_percpu_sum(0)
    per_cpu = drops.lookup_percpu(0)
    print(
        f"\nring: produced {produced}, delivered {len(got)}, counted reserve failures "
        f"{counted} (per CPU {per_cpu}); ring holds {TINY_RING // RECORD} records"
    )
    assert counted > 0
    assert len(got) + counted == produced
    assert got == sorted(got)
    assert len(got) <= 10 * (TINY_RING // RECORD)
    rb.close()


def test_ring_no_drops_when_consumer_keeps_up(ev):
    got = []
    rb = BpfRingBuffer(ev.maps["rb"], lambda d: got.append(seq_of(d)))
    for start in range(0, 500_000, 100_000):
        produce_ring(ev, 100_000, start)
        rb.consume()
    assert ev.maps["ring_drops"].lookup_percpu_sum(0) == 0
    assert got == list(range(500_000))
    rb.close()


def test_ring_drop_counter_can_be_reset_and_read_per_interval(ev):
    """Read-and-reset per interval, as a monitoring loop would (per-CPU values to 0)."""
    drops = ev.maps["ring_drops"]
    rb = BpfRingBuffer(ev.maps["tiny"], lambda d: None)
    seen = []
    for _ in range(3):
        produce_ring(ev, 500, which=1)
        rb.consume()
        seen.append(drops.lookup_percpu_sum(0))
        drops[0] = 0  # one value for every CPU
    assert all(n > 0 for n in seen)
    assert drops.lookup_percpu_sum(0) == 0
    rb.close()


# --------------------------------------------------------------------------- iterator mode


def test_iterator_queue_reports_drops(ev):
    rb = BpfRingBuffer(ev.maps["rb"], max_queue=100)
    produce_ring(ev, 500)
    n = rb.poll(1000)
    queued = rb.queued
    dropped = rb.dropped
    seqs = [seq_of(d) for d in rb]
    print(f"\niterator: produced 500, poll returned {n}, queued {queued}, dropped {dropped}")
    assert queued == 100
    assert dropped == 400
    assert seqs == list(range(100))  # the oldest are kept
    assert rb.queued == 0
    # drops keep adding up; nothing else changes
    produce_ring(ev, 150, start=500)
    rb.poll(1000)
    assert rb.dropped == 450
    assert [seq_of(d) for d in rb] == list(range(500, 600))
    rb.close()


def test_iterator_queue_drains_without_drops_when_read(ev):
    rb = BpfRingBuffer(ev.maps["rb"], max_queue=1000)
    out = []
    for start in range(0, 10_000, 1000):
        produce_ring(ev, 1000, start)
        rb.poll(1000)
        out.extend(seq_of(d) for d in rb)
    assert rb.dropped == 0
    assert out == list(range(10_000))
    rb.close()
