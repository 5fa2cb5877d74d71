"""BpfPerfBuffer on a real kernel: samples, lost samples, typed events over wrapped rings (W4),
the stop contract, epoll integration, errors and lifetime.

The fixture (tests/bpf/perfbuf_events.bpf.c) emits cfg.burst samples per getppid(2) call of
this process into the per-CPU perf rings. A sample is the 32-byte struct event; the kernel
stores it with 4 bytes of alignment padding that it skips without zeroing, in records of 48
bytes, so a one-page ring (4096 bytes, not a multiple of 48) puts stale bytes of earlier
samples into the padding as soon as it has wrapped.
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
import time
from pathlib import Path

import pytest
from helpers.kernel import helper_unavailable_reason

import tinybpf
from tinybpf import BpfError, BpfPerfBuffer, BtfValidationError

pytestmark = pytest.mark.root

COMM = Path("/proc/self/comm").read_bytes().strip()[:15]
NCPU = os.cpu_count() or 1
SAMPLE_LEN = 36  # 32-byte event + 4 bytes of kernel alignment padding
RECORD = 48  # perf_event_header (8) + u32 size (4) + 36


class Event(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("seq", ctypes.c_uint32),
        ("ts", ctypes.c_uint64),
        ("comm", ctypes.c_char * 16),
    ]


class LongEvent(ctypes.Structure):  # 40 bytes: longer than any sample (36)
    _fields_ = [*Event._fields_, ("extra", ctypes.c_uint64)]


def trigger(obj: tinybpf.BpfObject, burst: int = 1, calls: int = 1) -> None:
    obj.map("cfg")[0] = struct.pack("<II", os.getpid(), burst)
    for _ in range(calls):
        os.getppid()


def poll_until(pb: BpfPerfBuffer, done, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        pb.poll(int(min(left, 1.0) * 1000) + 1)


def _skip_unless_bpf_loop() -> None:
    # the fixture emits its bursts with bpf_loop (Linux 5.17+)
    reason = helper_unavailable_reason(tinybpf.BpfProgType.TRACEPOINT, "bpf_loop")
    if reason:
        pytest.skip(reason)


@pytest.fixture
def obj(obj_path):
    _skip_unless_bpf_loop()
    # Pinned to one CPU: a burst and the LOST record the kernel writes in front of the next
    # sample must land in the same per-CPU ring, whatever the scheduler does between calls.
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    o = tinybpf.load(obj_path("perfbuf_events"))
    link = o.program("on_getppid").attach()
    try:
        yield o
    finally:
        link.destroy()
        o.close()
        os.sched_setaffinity(0, affinity)


# --------------------------------------------------------------------------- samples


def test_sample_callback_bytes(obj):
    got: list[tuple[int, bytes]] = []
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, data: got.append((cpu, data)))
    t0 = time.monotonic_ns()
    trigger(obj, burst=3)
    t1 = time.monotonic_ns()
    poll_until(pb, lambda: len(got) >= 3)
    assert len(got) == 3
    cpus = {cpu for cpu, _ in got}
    assert len(cpus) == 1 and 0 <= cpus.pop() < NCPU  # one burst runs on one CPU
    for i, (_, data) in enumerate(got):
        assert type(data) is bytes
        assert 32 <= len(data) <= 39
        pid, seq, ts = struct.unpack_from("<IIQ", data)
        assert (pid, seq) == (os.getpid(), i)
        assert t0 <= ts <= t1
        assert data[16:32].split(b"\0", 1)[0] == COMM
    pb.close()


def test_sample_callback_typed(obj):
    got: list[tuple[int, Event]] = []
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, e: got.append((cpu, e)), event_type=Event)
    t0 = time.monotonic_ns()
    trigger(obj, burst=4)
    t1 = time.monotonic_ns()
    poll_until(pb, lambda: len(got) >= 4)
    events = [e for _, e in got]
    assert [type(e) for e in events] == [Event] * 4
    assert [e.seq for e in events] == [0, 1, 2, 3]
    assert {e.pid for e in events} == {os.getpid()}
    assert {e.comm for e in events} == {COMM}
    assert all(t0 <= e.ts <= t1 for e in events)
    pb.close()


def test_typed_with_btf_validation(obj):
    got = []
    pb = BpfPerfBuffer(
        obj.map("events"),
        lambda cpu, e: got.append(e),
        event_type=Event,
        validate_btf_struct="event",
    )
    trigger(obj)
    poll_until(pb, lambda: got)
    assert got[0].seq == 0
    pb.close()
    with pytest.raises(BpfError, match="not found in BTF"):
        BpfPerfBuffer(
            obj.map("events"),
            lambda cpu, e: None,
            event_type=Event,
            validate_btf_struct="no_such_struct",
        )
    with pytest.raises(BtfValidationError):
        BpfPerfBuffer(
            obj.map("events"),
            lambda cpu, e: None,
            event_type=LongEvent,
            validate_btf_struct="event",
        )


def test_registered_type_is_validated(obj):
    obj.register_type("event", Event)
    with pytest.raises(
        BpfError,
        match=r"Type 'Event' is registered as BTF struct 'event', "
        r"but validate_btf_struct='pb_config'",
    ):
        BpfPerfBuffer(
            obj.map("events"),
            lambda cpu, e: None,
            event_type=Event,
            validate_btf_struct="pb_config",
        )
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, e: None, event_type=Event)
    pb.close()


def test_sample_shorter_than_type_is_an_error(obj):
    got = []
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, e: got.append(e), event_type=LongEvent)
    trigger(obj)
    with pytest.raises(BpfError, match="Event size mismatch: received 36 bytes"):
        poll_until(pb, lambda: False, timeout=1.0)
    assert got == []
    pb.close()


def test_poll_returns_count_and_times_out_with_zero(obj):
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, d: None)
    t0 = time.monotonic()
    assert pb.poll(50) == 0
    assert 0.03 <= time.monotonic() - t0 < 1.0
    trigger(obj, burst=5)
    assert pb.poll(1000) == 5
    assert pb.poll(0) == 0
    pb.close()


def test_consume_drains_without_waiting(obj):
    got = []
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, e: got.append(e.seq), event_type=Event)
    assert pb.consume() == 0
    trigger(obj, burst=4)
    assert pb.consume() == 4
    assert got == [0, 1, 2, 3]
    assert pb.consume() == 0
    pb.close()


def test_sample_callback_return_value_is_ignored(obj):
    got = []

    def cb(cpu, e):
        got.append(e.seq)
        return 7  # not a stop request: only exceptions stop a perf poll

    pb = BpfPerfBuffer(obj.map("events"), cb, event_type=Event)
    trigger(obj, burst=3)
    poll_until(pb, lambda: len(got) >= 3)
    assert got == [0, 1, 2]
    pb.close()


# --------------------------------------------------------------------------- lost samples


def test_lost_callback_reports_overflow(obj):
    got: list[int] = []
    lost: list[tuple[int, int]] = []
    pb = BpfPerfBuffer(
        obj.map("events"),
        lambda cpu, e: got.append(e.seq),
        lambda cpu, n: lost.append((cpu, n)),
        page_count=1,
        event_type=Event,
    )
    assert pb.lost == 0
    trigger(obj, burst=256)  # 256 * 48 bytes into a 4096-byte ring
    poll_until(pb, lambda: False, timeout=0.3)
    fit = len(got)
    assert 0 < fit < 256
    assert got == list(range(fit))
    # The kernel writes the LOST record in front of the next sample that fits.
    trigger(obj, burst=1)
    poll_until(pb, lambda: lost and len(got) > fit)
    assert len(lost) == 1
    cpu, n = lost[0]
    assert 0 <= cpu < NCPU
    assert n == 256 - fit
    assert got[-1] == 256  # the next sample (seq 256) arrives, after the loss
    assert pb.lost == n
    pb.close()


def test_lost_total_without_lost_callback(obj):
    got = []
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, d: got.append(d), page_count=1)
    total_lost = 0
    for _ in range(3):
        trigger(obj, burst=200)
        poll_until(pb, lambda: False, timeout=0.2)
        trigger(obj, burst=1)
        before = len(got)
        poll_until(pb, lambda b=before: len(got) > b)
    total_lost = 3 * 201 - len(got)
    assert total_lost > 0
    assert pb.lost == total_lost
    pb.close()


def test_lost_callback_exception_is_raised_by_poll(obj):
    class Boom(Exception):
        pass

    def lost_cb(cpu, n):
        raise Boom(n)

    got = []
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, d: got.append(d), lost_cb, page_count=1)
    trigger(obj, burst=200)
    poll_until(pb, lambda: False, timeout=0.2)
    fit = len(got)
    trigger(obj, burst=1)
    with pytest.raises(Boom) as info:
        poll_until(pb, lambda: False, timeout=2.0)
    assert info.value.args == (200 - fit,)
    assert pb.lost == 200 - fit
    # The sample after the LOST record is not lost either.
    poll_until(pb, lambda: len(got) > fit)
    assert len(got) == fit + 1
    pb.close()


# --------------------------------------------------------------------------- W4: padding


def test_padding_of_samples_holds_stale_bytes_once_the_ring_wraps(obj):
    """Proves the condition of the next test: the pad is not zero after wrapping (bytes mode)."""
    got: list[bytes] = []
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, d: got.append(d), page_count=1)
    for i in range(1, 21):
        trigger(obj, burst=60)  # 60 * 48 = 2880 bytes: fits, drained before the next burst
        poll_until(pb, lambda i=i: len(got) >= 60 * i)
    assert len(got) == 1200
    assert {len(d) for d in got} == {SAMPLE_LEN}
    assert any(d[32:] != b"\0" * 4 for d in got)
    assert [struct.unpack_from("<I", d, 4)[0] for d in got] == list(range(1200))
    pb.close()


def test_typed_events_decode_after_the_ring_wrapped_many_times(obj):
    """W4: typed samples are accepted whatever their alignment padding holds."""
    seqs: list[int] = []
    lost: list[int] = []
    pid = os.getpid()

    def cb(cpu, e):
        assert e.pid == pid
        seqs.append(e.seq)

    pb = BpfPerfBuffer(
        obj.map("events"), cb, lambda cpu, n: lost.append(n), page_count=1, event_type=Event
    )
    rounds = 60
    for i in range(1, rounds + 1):
        trigger(obj, burst=60)
        poll_until(pb, lambda i=i: len(seqs) >= 60 * i)
    # 3600 samples * 48 bytes = about 42 trips around the 4096-byte ring
    assert seqs == list(range(60 * rounds))
    assert lost == [] and pb.lost == 0
    pb.close()


def test_typed_events_decode_after_overflow_shifted_the_records(obj):
    """A LOST record (24 bytes) shifts later records, so pads land on old sample data."""
    seqs: list[int] = []
    pb = BpfPerfBuffer(
        obj.map("events"), lambda cpu, e: seqs.append(e.seq), page_count=1, event_type=Event
    )
    expected = 0
    for _ in range(5):
        trigger(obj, burst=150)  # overflows
        poll_until(pb, lambda: False, timeout=0.1)
        trigger(obj, burst=40)
        poll_until(pb, lambda last=expected + 189: bool(seqs) and seqs[-1] == last)
        expected += 190
    assert seqs[-1] == 5 * 190 - 1
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len(seqs) + pb.lost == 5 * 190
    pb.close()


# --------------------------------------------------------------------------- stop contract


@pytest.mark.parametrize("exc_type", [ValueError, KeyboardInterrupt, SystemExit])
def test_callback_exception_stops_poll_and_next_poll_delivers_the_rest(obj, exc_type):
    exc = exc_type("stop at 1")
    got: list[int] = []

    def cb(cpu, e):
        got.append(e.seq)
        if e.seq == 1:
            raise exc

    pb = BpfPerfBuffer(obj.map("events"), cb, event_type=Event)
    trigger(obj, burst=5)
    with pytest.raises(exc_type) as info:
        poll_until(pb, lambda: False, timeout=2.0)
    assert info.value is exc
    assert got == [0, 1]
    assert pb.poll(1000) == 3
    assert got == [0, 1, 2, 3, 4]
    pb.close()


def test_callback_exception_from_consume_then_rest_delivered(obj):
    got: list[int] = []

    def cb(cpu, e):
        got.append(e.seq)
        if e.seq == 0:
            raise RuntimeError("first")

    pb = BpfPerfBuffer(obj.map("events"), cb, event_type=Event)
    trigger(obj, burst=3)
    with pytest.raises(RuntimeError, match="first"):
        pb.consume()
    assert pb.consume() == 2
    assert got == [0, 1, 2]
    pb.close()


def test_negative_return_stops_poll_after_that_sample(obj):
    got: list[int] = []

    def cb(cpu, e):
        got.append(e.seq)
        return -1 if e.seq == 2 else None

    pb = BpfPerfBuffer(obj.map("events"), cb, event_type=Event)
    trigger(obj, burst=5)
    assert pb.poll(1000) == 3
    assert got == [0, 1, 2]
    assert pb.poll(1000) == 2
    assert got == [0, 1, 2, 3, 4]
    pb.close()


def test_cpu_argument_is_the_cpu_that_emitted(obj):
    cpus = sorted(os.sched_getaffinity(0) | set(range(NCPU)))
    got: list[tuple[int, int]] = []
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, e: got.append((cpu, e.seq)), event_type=Event)
    for i, cpu in enumerate(cpus):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            continue
        trigger(obj)
        poll_until(pb, lambda i=i: len(got) > i)
        assert got[-1][0] == cpu
    assert len(got) >= 1
    pb.close()


# --------------------------------------------------------------------------- epoll fd


def test_epoll_fd_and_fileno(obj):
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, d: None)
    fd = pb.epoll_fd()
    assert isinstance(fd, int) and fd >= 0
    assert pb.fileno() == fd
    assert select.select([pb], [], [], 0)[0] == []
    trigger(obj, burst=2)
    assert select.select([pb], [], [], 2.0)[0] == [pb]
    assert pb.consume() == 2
    pb.close()


def test_poll_after_select_delivers_the_ready_samples(obj):
    """select() reported the epoll fd readable: a non-blocking poll() must deliver."""
    got = []
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, d: got.append(d))
    trigger(obj, burst=2)
    assert select.select([pb], [], [], 2.0)[0] == [pb]
    assert pb.poll(0) == 2
    assert len(got) == 2
    pb.close()


# --------------------------------------------------------------------------- construction errors


@pytest.mark.parametrize("page_count", [0, -1, -8, 3, 6, 12, 100])
def test_page_count_must_be_a_power_of_two(obj, page_count):
    with pytest.raises(ValueError, match=rf"^page_count must be a power of 2, got {page_count}$"):
        BpfPerfBuffer(obj.map("events"), lambda cpu, d: None, page_count=page_count)


@pytest.mark.parametrize("page_count", [1, 2, 16])
def test_page_counts_that_are_powers_of_two(obj, page_count):
    got = []
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, d: got.append(d), page_count=page_count)
    trigger(obj)
    poll_until(pb, lambda: got)
    assert len(got) == 1
    pb.close()


def test_wrong_map_type(obj):
    with pytest.raises(
        BpfError, match=r"^Map 'not_perf' is type RINGBUF, expected PERF_EVENT_ARRAY"
    ):
        BpfPerfBuffer(obj.map("not_perf"), lambda cpu, d: None)
    with pytest.raises(BpfError, match=r"^Map 'cfg' is type ARRAY, expected PERF_EVENT_ARRAY"):
        BpfPerfBuffer(obj.map("cfg"), lambda cpu, d: None)
    # the map type is checked before page_count
    with pytest.raises(BpfError, match="expected PERF_EVENT_ARRAY"):
        BpfPerfBuffer(obj.map("cfg"), lambda cpu, d: None, page_count=3)


def test_page_count_checked_before_btf_validation(obj):
    with pytest.raises(ValueError, match="page_count must be a power of 2"):
        BpfPerfBuffer(
            obj.map("events"),
            lambda cpu, d: None,
            page_count=3,
            event_type=Event,
            validate_btf_struct="no_such_struct",
        )


# --------------------------------------------------------------------------- lifetime


def test_close_is_idempotent_and_use_after_close_raises(obj):
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, d: None)
    pb.close()
    pb.close()
    for op in (lambda: pb.poll(0), pb.consume, pb.epoll_fd, pb.fileno):
        with pytest.raises(tinybpf.BpfClosedError, match="Perf buffer is closed"):
            op()


def test_object_close_makes_poll_raise(obj):
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, d: None)
    obj.close()
    with pytest.raises(BpfError, match="Cannot use perf buffer after BpfObject is closed"):
        pb.poll(0)
    with pytest.raises(BpfError, match="Cannot use perf buffer after BpfObject is closed"):
        pb.consume()
    pb.close()
    pb.close()


def test_context_manager_and_repr(obj):
    with BpfPerfBuffer(obj.map("events"), lambda cpu, d: None) as pb:
        assert repr(pb) == "<BpfPerfBuffer map='events' open>"
    assert repr(pb) == "<BpfPerfBuffer map='events' closed>"
    with pytest.raises(BpfError, match="Perf buffer is closed"):
        pb.poll(0)


def test_second_perf_buffer_on_a_map_takes_it_over(obj):
    """One PERF_EVENT_ARRAY slot points at one ring: the last buffer created gets the samples."""
    a, b = [], []
    pa = BpfPerfBuffer(obj.map("events"), lambda cpu, d: a.append(d))
    pb = BpfPerfBuffer(obj.map("events"), lambda cpu, d: b.append(d))
    trigger(obj, burst=2)
    poll_until(pb, lambda: len(b) >= 2, timeout=2.0)
    assert len(b) == 2
    assert pa.poll(0) == 0 and a == []
    pb.close()
    pa.close()


def test_batch_cpus_give_each_samples_cpu_and_lost_samples_are_only_counted(obj):
    pb = BpfPerfBuffer(obj.map("events"), page_count=1, batch=True)
    assert type(pb.poll_batch(0)) is tinybpf.EventBatch
    trigger(obj, burst=256)  # overflows the one-page ring of this CPU
    first = pb.poll_batch(1000)
    fit = len(first)
    assert 0 < fit < 256
    cpu = first.cpus[0]
    assert first.cpus == [cpu] * fit and 0 <= cpu < NCPU
    trigger(obj, burst=1)  # the kernel writes the LOST record in front of this sample
    second = pb.poll_batch(1000)
    assert second.cpus == [cpu]  # the sample; the loss is counted, not delivered
    assert pb.lost == 256 - fit
    pb.close()


# --------------------------------------------------------------------------- ring reading


@pytest.fixture
def two_cpus(obj_path):
    """(loaded object with its program attached, two CPUs this process may run on)."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip(f"needs two CPUs to run on, this process may use {allowed}")
    o = tinybpf.load(obj_path("perfbuf_events"))
    link = o.program("on_getppid").attach()
    try:
        yield o, allowed[:2]
    finally:
        link.destroy()
        o.close()
        os.sched_setaffinity(0, allowed)


def trigger_on(obj: tinybpf.BpfObject, cpu: int, burst: int) -> None:
    os.sched_setaffinity(0, {cpu})
    trigger(obj, burst)


def test_poll_reads_reported_rings_and_scans_only_when_none_is(two_cpus):
    """Issue 14 item 13: every poll also read every CPU's ring. Now a poll reads the rings
    epoll reports; the others are read when it reports none."""
    obj, (a, b) = two_cpus
    with BpfPerfBuffer(obj.map("events"), batch=True, sample_period=2) as pb:
        trigger_on(obj, a, 2)  # reaches the wakeup mark (2): ring a is reported
        trigger_on(obj, b, 1)  # below it: ring b is not
        first = pb.poll_batch(timeout_ms=2000)
        assert first.cpus == [a, a]
        second = pb.poll_batch(timeout_ms=2000)  # nothing reported: every ring is read
        assert second.cpus == [b]
        assert len(pb.poll_batch(timeout_ms=0)) == 0


def test_batch_scan_stops_at_max_batch_between_rings(two_cpus):
    """Issue 14 item 13: a batch had no bound (max_events 1 << 30); reading the rings now
    stops between rings once a batch holds max_batch samples."""
    obj, (a, b) = two_cpus
    with BpfPerfBuffer(
        obj.map("events"), batch=True, sample_period=1000, max_batch=5, event_type=Event
    ) as pb:
        trigger_on(obj, a, 8)
        trigger_on(obj, b, 8)  # no wakeups (mark 1000): the rings are read by the scan
        first = pb.poll_batch(timeout_ms=2000)
        second = pb.poll_batch(timeout_ms=2000)
        assert len(first) == 8 and len(second) == 8  # a ring is read whole
        assert {first.cpus[0], second.cpus[0]} == {a, b}
        assert len(set(first.cpus)) == 1 and len(set(second.cpus)) == 1
        assert {e.pid for e in first.decode() + second.decode()} == {os.getpid()}
        assert len(pb.poll_batch(timeout_ms=0)) == 0
