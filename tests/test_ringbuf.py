"""BpfRingBuffer on a real kernel: callback and iterator modes, typed events, multi-map buffers,
the stop contract, the bounded queue, errors and lifetime.

Events come only from this process: the fixture's program (tests/bpf/ringbuf_events.bpf.c) runs
on getppid(2) and emits only when the caller's tgid is the pid written into cfg[0]; each call
emits cfg.burst events into the ring buffers selected by cfg.targets. Every event carries the
pid, a sequence number counted by the program from 0 in each freshly loaded object, a
bpf_ktime_get_ns() timestamp and the thread's comm.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
import struct
import threading
import time
from pathlib import Path

import pytest
from helpers.kernel import helper_unavailable_reason

import tinybpf
from tinybpf import BpfError, BpfRingBuffer, BtfValidationError

pytestmark = pytest.mark.root

T_EVENTS = 1
T_EVENTS2 = 2
T_SMALL = 4
T_DISCARD = 8

STAT_SMALL_FAIL = 0
STAT_EVENTS_FAIL = 1
STAT_TRIGGERS = 3

COMM = Path("/proc/self/comm").read_bytes().strip()[:15]


class Event(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("seq", ctypes.c_uint32),
        ("ts", ctypes.c_uint64),
        ("comm", ctypes.c_char * 16),
    ]


class Event2(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("seq", ctypes.c_uint32),
        ("value", ctypes.c_uint64),
    ]


class ShortEvent(ctypes.Structure):  # 24 bytes: smaller than the 32-byte struct event
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("seq", ctypes.c_uint32),
        ("ts", ctypes.c_uint64),
        ("comm8", ctypes.c_char * 8),
    ]


class LongEvent(ctypes.Structure):  # 40 bytes: larger than struct event
    _fields_ = [*Event._fields_, ("extra", ctypes.c_uint64)]


class RenamedEvent(ctypes.Structure):  # same layout as struct event, other field names
    _fields_ = [
        ("tgid", ctypes.c_uint32),
        ("n", ctypes.c_uint32),
        ("when", ctypes.c_uint64),
        ("name", ctypes.c_char * 16),
    ]


def unpack_event(data: bytes) -> tuple[int, int, int, bytes]:
    pid, seq, ts = struct.unpack_from("<IIQ", data)
    comm = bytes(data[16:32]).split(b"\0", 1)[0]
    return pid, seq, ts, comm


def configure(
    obj: tinybpf.BpfObject,
    burst: int = 1,
    targets: int = T_EVENTS,
    tag: int = 0,
    pid: int | None = None,
) -> None:
    obj.map("cfg")[0] = struct.pack(
        "<IIII", os.getpid() if pid is None else pid, burst, targets, tag
    )


def trigger(
    obj: tinybpf.BpfObject, burst: int = 1, targets: int = T_EVENTS, tag: int = 0, calls: int = 1
) -> None:
    """Make the program emit calls * burst events per selected ring buffer, now."""
    configure(obj, burst, targets, tag)
    for _ in range(calls):
        os.getppid()


def stat(obj: tinybpf.BpfObject, slot: int) -> int:
    return obj.map("stats")[slot]


def poll_until(buf: BpfRingBuffer, done, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        buf.poll(int(min(left, 1.0) * 1000) + 1)


def _skip_unless_bpf_loop() -> None:
    # the fixture emits its bursts with bpf_loop (Linux 5.17+)
    reason = helper_unavailable_reason(tinybpf.BpfProgType.TRACEPOINT, "bpf_loop")
    if reason:
        pytest.skip(reason)


@pytest.fixture
def obj(obj_path):
    _skip_unless_bpf_loop()
    o = tinybpf.load(obj_path("ringbuf_events"))
    link = o.program("on_getppid").attach()
    yield o
    link.destroy()
    o.close()


# --------------------------------------------------------------------------- callback mode


def test_callback_bytes_carries_the_events_fields(obj):
    got: list[bytes] = []
    rb = BpfRingBuffer(obj.map("events"), lambda d: got.append(d))
    t0 = time.monotonic_ns()
    trigger(obj, burst=3)
    t1 = time.monotonic_ns()
    assert rb.poll(1000) == 3
    assert all(type(d) is bytes and len(d) == 32 for d in got)
    fields = [unpack_event(d) for d in got]
    assert [f[0] for f in fields] == [os.getpid()] * 3
    assert [f[1] for f in fields] == [0, 1, 2]
    assert all(t0 <= f[2] <= t1 for f in fields)
    assert [f[3] for f in fields] == [COMM] * 3
    rb.close()


def test_callback_typed_event(obj):
    got: list[Event] = []
    rb = BpfRingBuffer(obj.map("events"), got.append, event_type=Event)
    t0 = time.monotonic_ns()
    trigger(obj, burst=4)
    t1 = time.monotonic_ns()
    assert rb.poll(1000) == 4
    assert all(type(e) is Event for e in got)
    assert [e.pid for e in got] == [os.getpid()] * 4
    assert [e.seq for e in got] == [0, 1, 2, 3]
    assert all(t0 <= e.ts <= t1 for e in got)
    assert {e.comm for e in got} == {COMM}
    rb.close()


def test_callback_typed_validated_against_btf(obj):
    got: list[Event] = []
    rb = BpfRingBuffer(obj.map("events"), got.append, event_type=Event, validate_btf_struct="event")
    trigger(obj, burst=2)
    assert rb.poll(1000) == 2
    assert [e.seq for e in got] == [0, 1]
    rb.close()


def test_callback_memoryview_is_zero_copy_view_released_after_callback(obj):
    seen: list[tuple[int, int, bytes]] = []
    kept: list[memoryview] = []

    def cb(mv):
        assert isinstance(mv, memoryview)
        seen.append((len(mv), mv[4], bytes(mv[16:22])))
        kept.append(mv)
        return 0

    rb = BpfRingBuffer(obj.map("events"), cb, as_memoryview=True)
    trigger(obj, burst=2)
    assert rb.poll(1000) == 2
    assert [s[0] for s in seen] == [32, 32]
    assert [s[1] for s in seen] == [0, 1]  # low byte of seq, read as an int
    assert all(s[2] == COMM[:6] for s in seen)
    # W21: the view into the ring's memory does not outlive the callback.
    for mv in kept:
        with pytest.raises(ValueError):
            mv.tobytes()
    rb.close()


@pytest.mark.parametrize("bad_type, size", [(ShortEvent, 24), (LongEvent, 40)])
def test_typed_event_of_wrong_size_raises(obj, bad_type, size):
    assert ctypes.sizeof(bad_type) == size
    got = []
    rb = BpfRingBuffer(obj.map("events"), got.append, event_type=bad_type)
    trigger(obj)
    with pytest.raises(
        BpfError, match=rf"Event size mismatch: received 32 bytes, expected .*{size}"
    ):
        rb.poll(1000)
    assert got == []
    rb.close()


def test_callback_returning_none_zero_or_positive_continues(obj):
    returns = iter([None, 0, 1, 5, None])
    got = []

    def cb(data):
        got.append(unpack_event(data)[1])
        return next(returns)

    rb = BpfRingBuffer(obj.map("events"), cb)
    trigger(obj, burst=5)
    assert rb.poll(1000) == 5
    assert got == [0, 1, 2, 3, 4]
    rb.close()


def test_poll_returns_the_number_of_events(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    trigger(obj, burst=7)
    assert rb.poll(1000) == 7
    trigger(obj, burst=1, calls=3)
    assert rb.poll(1000) == 3
    rb.close()


def test_poll_without_events_times_out_with_zero(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    t0 = time.monotonic()
    assert rb.poll(50) == 0
    elapsed = time.monotonic() - t0
    assert 0.03 <= elapsed < 1.0
    t0 = time.monotonic()
    assert rb.poll(0) == 0
    assert time.monotonic() - t0 < 0.5
    rb.close()


def test_consume_drains_without_waiting(obj):
    got = []
    rb = BpfRingBuffer(obj.map("events"), got.append)
    assert rb.consume() == 0
    trigger(obj, burst=4)
    assert rb.consume() == 4
    assert rb.consume() == 0
    assert [unpack_event(d)[1] for d in got] == [0, 1, 2, 3]
    rb.close()


def test_large_burst_delivered_complete_and_in_order(obj):
    seqs: list[int] = []
    rb = BpfRingBuffer(obj.map("events"), lambda e: seqs.append(e.seq), event_type=Event)
    trigger(obj, burst=4000)  # 4000 * 40 bytes fits the 256 KiB ring
    poll_until(rb, lambda: len(seqs) >= 4000)
    assert seqs == list(range(4000))
    assert stat(obj, STAT_EVENTS_FAIL) == 0
    assert rb.poll(0) == 0
    rb.close()


def test_discarded_records_are_not_delivered(obj):
    got = []
    rb = BpfRingBuffer(obj.map("events"), lambda e: got.append(e.seq), event_type=Event)
    trigger(obj, burst=6, targets=T_DISCARD)  # odd loop indexes are discarded
    assert rb.poll(1000) == 3
    assert got == [0, 2, 4]
    rb.close()


def test_small_ring_overflow_loses_only_what_the_kernel_refused(obj):
    seqs: list[int] = []
    rb = BpfRingBuffer(obj.map("small"), lambda e: seqs.append(e.seq), event_type=Event)
    trigger(obj, burst=200, targets=T_SMALL)  # 200 * 40 bytes > 4096
    while rb.poll(100) > 0:
        pass
    failures = stat(obj, STAT_SMALL_FAIL)
    assert failures > 0
    assert len(seqs) + failures == 200
    assert seqs == list(range(len(seqs)))  # the first ones fit, in order
    # Once drained, the ring takes events again.
    fit = len(seqs)
    seqs.clear()
    trigger(obj, burst=10, targets=T_SMALL)
    assert rb.poll(1000) == 10
    assert seqs == list(range(fit, fit + 10))  # a refused reserve took no sequence number
    assert stat(obj, STAT_SMALL_FAIL) == failures
    rb.close()


def test_events_from_other_processes_are_filtered_out(obj):
    """The fixture's filter works: a pid that is not ours gives no events (sanity)."""
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    configure(obj, burst=3, pid=1)
    os.getppid()
    assert rb.poll(50) == 0
    assert stat(obj, STAT_TRIGGERS) == 0
    rb.close()


# --------------------------------------------------------------------------- stop contract


@pytest.mark.parametrize("exc_type", [ValueError, KeyboardInterrupt, SystemExit])
def test_callback_exception_reraised_unchanged_and_later_events_kept(obj, exc_type):
    exc = exc_type("boom on seq 1")
    got: list[int] = []

    def cb(e):
        got.append(e.seq)
        if e.seq == 1:
            raise exc
        return 0

    rb = BpfRingBuffer(obj.map("events"), cb, event_type=Event)
    trigger(obj, burst=5)
    with pytest.raises(exc_type) as info:
        rb.poll(1000)
    assert info.value is exc
    assert got == [0, 1]  # the poll stopped right after the failing event
    assert rb.poll(1000) == 3  # the rest were not lost
    assert got == [0, 1, 2, 3, 4]
    assert rb.poll(0) == 0
    rb.close()


def test_callback_exception_from_consume(obj):
    got: list[int] = []

    def cb(e):
        got.append(e.seq)
        if e.seq == 0:
            raise RuntimeError("first")

    rb = BpfRingBuffer(obj.map("events"), cb, event_type=Event)
    trigger(obj, burst=3)
    with pytest.raises(RuntimeError, match="first"):
        rb.consume()
    assert rb.consume() == 2
    assert got == [0, 1, 2]
    rb.close()


def test_negative_return_stops_poll_after_that_event_and_counts_it(obj):
    got: list[int] = []

    def cb(e):
        got.append(e.seq)
        return -1 if e.seq == 1 else 0

    rb = BpfRingBuffer(obj.map("events"), cb, event_type=Event)
    trigger(obj, burst=5)
    assert rb.poll(1000) == 2  # W22: the count of delivered events, not 0
    assert got == [0, 1]
    assert rb.poll(1000) == 3
    assert got == [0, 1, 2, 3, 4]
    rb.close()


def test_negative_return_on_every_event_delivers_one_per_poll(obj):
    got: list[int] = []
    rb = BpfRingBuffer(obj.map("events"), lambda e: got.append(e.seq) or -1, event_type=Event)
    trigger(obj, burst=3)
    assert [rb.poll(1000), rb.poll(1000), rb.poll(1000), rb.poll(0)] == [1, 1, 1, 0]
    assert got == [0, 1, 2]
    rb.close()


def _poll_under_signals(poll):
    """Run ``poll()`` while another thread sends SIGALRM to this one every 10 ms until it
    returns: a signal that arrives before poll() blocks (the thread was descheduled, the
    machine is busy) only runs the handler, and a later one interrupts the wait. Returns
    poll's result (or raises its exception) and the number of handler runs."""
    fired = []
    done = threading.Event()
    target = threading.get_ident()

    def sender():
        while not done.wait(0.01):
            signal.pthread_kill(target, signal.SIGALRM)

    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    thread = threading.Thread(target=sender)
    try:
        thread.start()
        return poll(), fired
    finally:
        done.set()
        thread.join()
        signal.signal(signal.SIGALRM, old)


def test_poll_interrupted_by_signal_returns_zero(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    # the timeout is far beyond what the signals need: returning before it means EINTR ended
    # the poll (ignore_eintr=True by default: 0, no error)
    t0 = time.monotonic()
    n, fired = _poll_under_signals(lambda: rb.poll(60_000))
    assert n == 0 and fired
    assert time.monotonic() - t0 < 30
    with pytest.raises(BpfError) as info:
        _poll_under_signals(lambda: rb.poll(60_000, ignore_eintr=False))
    assert info.value.errno == errno.EINTR
    # events that came before the signal are still delivered by the next poll
    trigger(obj, burst=2)
    assert rb.poll(1000) == 2
    rb.close()


# --------------------------------------------------------------------------- iterator mode


def test_iterator_mode_typed(obj):
    rb = BpfRingBuffer(obj.map("events"), event_type=Event)
    trigger(obj, burst=4)
    assert rb.poll(1000) == 4
    events = list(rb)
    assert [type(e) for e in events] == [Event] * 4
    assert [e.seq for e in events] == [0, 1, 2, 3]
    assert {e.pid for e in events} == {os.getpid()}
    assert list(rb) == []  # drained
    rb.close()


def test_iterator_mode_bytes(obj):
    rb = BpfRingBuffer(obj.map("events"))
    trigger(obj, burst=2)
    assert rb.poll(1000) == 2
    data = list(rb)
    assert [type(d) for d in data] == [bytes, bytes]
    assert [unpack_event(d)[1] for d in data] == [0, 1]
    rb.close()


def test_iterator_mode_accumulates_across_polls(obj):
    rb = BpfRingBuffer(obj.map("events"), event_type=Event)
    trigger(obj, burst=2)
    assert rb.poll(1000) == 2
    trigger(obj, burst=3)
    assert rb.poll(1000) == 3
    assert [e.seq for e in rb] == [0, 1, 2, 3, 4]
    rb.close()


def test_iterator_mode_wrong_size_type_raises(obj):
    rb = BpfRingBuffer(obj.map("events"), event_type=ShortEvent)
    trigger(obj)
    with pytest.raises(BpfError, match="Event size mismatch: received 32 bytes"):
        rb.poll(1000)
        list(rb)
    rb.close()


def test_iterating_a_callback_mode_buffer_raises(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    with pytest.raises(BpfError, match="Cannot iterate on callback-mode ring buffer"):
        next(iter(rb))
    rb.close()


def test_bounded_queue_counts_dropped_events(obj):
    rb = BpfRingBuffer(obj.map("events"), event_type=Event, max_queue=4)
    assert rb.dropped == 0
    trigger(obj, burst=10)
    while rb.poll(100) > 0:
        pass
    assert rb.dropped == 6
    events = list(rb)
    assert len(events) == 4
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and set(seqs) <= set(range(10))
    # Room again once iterated; dropped is a running total.
    trigger(obj, burst=3)
    rb.poll(1000)
    assert [e.seq for e in rb] == [10, 11, 12]
    assert rb.dropped == 6
    rb.close()


def test_default_queue_does_not_drop(obj):
    rb = BpfRingBuffer(obj.map("events"))
    trigger(obj, burst=3000)
    poll_until(rb, lambda: False, timeout=0.2)
    assert rb.dropped == 0
    assert len(list(rb)) == 3000
    rb.close()


# --------------------------------------------------------------------------- multi-map


def test_multi_map_callbacks_per_map_with_their_own_types(obj):
    ev: list[Event] = []
    ev2: list[Event2] = []
    rb = BpfRingBuffer()
    rb.add(obj.map("events"), ev.append, event_type=Event)
    rb.add(obj.map("events2"), ev2.append, event_type=Event2)
    trigger(obj, burst=3, targets=T_EVENTS | T_EVENTS2, tag=100)
    poll_until(rb, lambda: len(ev) + len(ev2) >= 6)
    assert [type(e) for e in ev] == [Event] * 3
    assert [type(e) for e in ev2] == [Event2] * 3
    # The program alternates: events gets 0, 2, 4 and events2 gets 1, 3, 5.
    assert [e.seq for e in ev] == [0, 2, 4]
    assert [e.seq for e in ev2] == [1, 3, 5]
    assert [e.value for e in ev2] == [100, 101, 102]
    assert {e.pid for e in ev2} == {os.getpid()}
    rb.close()


def test_multi_map_only_the_selected_map_delivers(obj):
    a, b = [], []
    rb = BpfRingBuffer(obj.map("events"), a.append)
    rb.add(obj.map("events2"), b.append)
    trigger(obj, burst=2, targets=T_EVENTS2)
    assert rb.poll(1000) == 2
    assert a == [] and [len(x) for x in b] == [16, 16]
    rb.close()


def test_multi_map_iterator_mode(obj):
    rb = BpfRingBuffer()
    rb.add(obj.map("events"))
    rb.add(obj.map("events2"))
    trigger(obj, burst=2, targets=T_EVENTS | T_EVENTS2)
    poll_until(rb, lambda: False, timeout=0.2)
    data = list(rb)
    assert sorted(len(d) for d in data) == [16, 16, 32, 32]
    assert sorted(struct.unpack_from("<I", d, 4)[0] for d in data) == [0, 1, 2, 3]
    rb.close()


def test_epoll_fd_of_multi_map_buffer_sees_the_second_map(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    rb.add(obj.map("events2"), lambda d: 0)
    trigger(obj, burst=1, targets=T_EVENTS2)
    r, _, _ = select.select([rb], [], [], 2.0)
    assert r == [rb]
    assert rb.consume() == 1
    rb.close()


# --------------------------------------------------------------------------- epoll fd


def test_epoll_fd_and_fileno_become_readable_after_a_trigger(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    fd = rb.epoll_fd()
    assert isinstance(fd, int) and fd >= 0
    assert rb.fileno() == fd
    assert select.select([fd], [], [], 0) == ([], [], [])
    trigger(obj, burst=2)
    r, _, _ = select.select([rb], [], [], 2.0)  # select() uses fileno()
    assert r == [rb]
    assert rb.poll(0) == 2
    rb.close()


def test_epoll_fd_without_maps_raises():
    rb = BpfRingBuffer()
    with pytest.raises(BpfError, match="No maps added to ring buffer"):
        rb.epoll_fd()
    with pytest.raises(BpfError, match="No maps added to ring buffer"):
        rb.fileno()
    with pytest.raises(BpfError, match="No maps added to ring buffer"):
        rb.poll(0)
    rb.close()


# --------------------------------------------------------------------------- constructor / add()


def test_ctor_callback_without_map_is_value_error():
    with pytest.raises(ValueError, match="callback requires map"):
        BpfRingBuffer(callback=lambda d: 0)


def test_ctor_memoryview_errors(obj):
    with pytest.raises(BpfError, match=r"as_memoryview=True requires a callback"):
        BpfRingBuffer(obj.map("events"), as_memoryview=True)
    with pytest.raises(BpfError, match=r"Cannot use as_memoryview=True with event_type"):
        BpfRingBuffer(obj.map("events"), lambda d: 0, as_memoryview=True, event_type=Event)


def test_add_wrong_map_type(obj):
    rb = BpfRingBuffer()
    with pytest.raises(BpfError, match=r"^Map 'cfg' is type ARRAY, expected RINGBUF"):
        rb.add(obj.map("cfg"), lambda d: 0)
    with pytest.raises(BpfError, match=r"^Map 'cfg' is type ARRAY, expected RINGBUF"):
        BpfRingBuffer(obj.map("cfg"))
    rb.close()


def test_add_same_map_twice(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    with pytest.raises(BpfError, match=r"^Map 'events' already added to this ring buffer"):
        rb.add(obj.map("events"), lambda d: 0)
    rb.close()


def test_add_mixing_callback_and_iterator_modes(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    with pytest.raises(
        BpfError,
        match=r"^Cannot mix callback and iterator modes; ring buffer is "
        r"in callback mode",
    ):
        rb.add(obj.map("events2"))
    rb.close()
    rb = BpfRingBuffer(obj.map("events"))
    with pytest.raises(
        BpfError,
        match=r"^Cannot mix callback and iterator modes; ring buffer is "
        r"in iterator mode",
    ):
        rb.add(obj.map("events2"), lambda d: 0)
    rb.close()


def test_add_mixing_memoryview_and_bytes_modes(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0, as_memoryview=True)
    with pytest.raises(BpfError, match=r"^Cannot mix memoryview and bytes modes"):
        rb.add(obj.map("events2"), lambda d: 0, as_memoryview=False)
    rb.close()
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    with pytest.raises(BpfError, match=r"^Cannot mix memoryview and bytes modes"):
        rb.add(obj.map("events2"), lambda d: 0, as_memoryview=True)
    rb.close()


def test_add_memoryview_errors(obj):
    rb = BpfRingBuffer()
    with pytest.raises(BpfError, match=r"as_memoryview=True requires a callback"):
        rb.add(obj.map("events"), as_memoryview=True)
    with pytest.raises(BpfError, match=r"Cannot use as_memoryview=True with event_type"):
        rb.add(obj.map("events"), lambda d: 0, as_memoryview=True, event_type=Event)
    rb.close()


def test_add_inherits_memoryview_default_from_ctor(obj):
    views = []
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0, as_memoryview=True)
    rb.add(obj.map("events2"), lambda mv: views.append(type(mv)))  # as_memoryview=None inherits
    trigger(obj, targets=T_EVENTS2)
    assert rb.poll(1000) == 1
    assert views == [memoryview]
    rb.close()


def test_add_mixing_event_types_in_iterator_mode(obj):
    rb = BpfRingBuffer(obj.map("events"), event_type=Event)
    with pytest.raises(BpfError, match=r"^Cannot mix event types in iterator mode"):
        rb.add(obj.map("events2"), event_type=Event2)
    rb.close()


def test_add_error_precedence(obj):
    """The reference's order: closed, map type, duplicate, memoryview rules, modes."""
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    # type before duplicate/memoryview checks
    with pytest.raises(BpfError, match="expected RINGBUF"):
        rb.add(obj.map("cfg"), as_memoryview=True)
    # duplicate before the mode check
    with pytest.raises(BpfError, match="already added"):
        rb.add(obj.map("events"))
    # memoryview-without-callback before the mode check
    with pytest.raises(BpfError, match="as_memoryview=True requires a callback"):
        rb.add(obj.map("events2"), as_memoryview=True)
    rb.close()
    # closed before everything
    with pytest.raises(BpfError, match="Ring buffer is closed"):
        rb.add(obj.map("cfg"))


def test_failed_add_leaves_the_buffer_working(obj):
    got = []
    rb = BpfRingBuffer(obj.map("events"), got.append)
    for bad in (
        lambda: rb.add(obj.map("cfg"), got.append),
        lambda: rb.add(obj.map("events"), got.append),
        lambda: rb.add(obj.map("events2")),
    ):
        with pytest.raises(BpfError):
            bad()
    assert "events2" not in repr(rb)
    trigger(obj, burst=2, targets=T_EVENTS | T_EVENTS2)
    assert rb.poll(1000) == 2
    assert [len(d) for d in got] == [32, 32]
    rb.close()


def test_btf_validation_on_add(obj):
    # explicit struct: size mismatch against struct event2
    with pytest.raises(BtfValidationError):
        BpfRingBuffer(
            obj.map("events"), lambda e: 0, event_type=Event, validate_btf_struct="event2"
        )
    # explicit struct missing from BTF
    with pytest.raises(BpfError, match="not found in BTF"):
        BpfRingBuffer(
            obj.map("events"), lambda e: 0, event_type=Event, validate_btf_struct="no_such_struct"
        )
    # field names are compared unless told otherwise
    with pytest.raises(BtfValidationError):
        BpfRingBuffer(
            obj.map("events"), lambda e: 0, event_type=RenamedEvent, validate_btf_struct="event"
        )
    rb = BpfRingBuffer(
        obj.map("events"),
        lambda e: 0,
        event_type=RenamedEvent,
        validate_btf_struct="event",
        validate_field_names=False,
    )
    rb.close()


def test_registered_type_is_validated_and_used(obj):
    obj.register_type("event", Event)
    # registered under another name than validate_btf_struct: refused
    with pytest.raises(
        BpfError,
        match=r"Type 'Event' is registered as BTF struct 'event', "
        r"but validate_btf_struct='event2'",
    ):
        BpfRingBuffer(
            obj.map("events"), lambda e: 0, event_type=Event, validate_btf_struct="event2"
        )
    got: list[Event] = []
    rb = BpfRingBuffer(obj.map("events"), got.append, event_type=Event)  # validated via registry
    trigger(obj, burst=2)
    assert rb.poll(1000) == 2
    assert [e.seq for e in got] == [0, 1]
    rb.close()


def test_unvalidated_type_of_right_size_is_accepted(obj):
    """No registry entry and no validate_btf_struct: only the runtime size check applies."""
    got = []
    rb = BpfRingBuffer(obj.map("events"), got.append, event_type=RenamedEvent)
    trigger(obj)
    assert rb.poll(1000) == 1
    assert got[0].tgid == os.getpid() and got[0].name == COMM
    rb.close()


# --------------------------------------------------------------------------- lifetime


def test_close_is_idempotent_and_use_after_close_raises(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    rb.close()
    rb.close()
    for op in (
        lambda: rb.poll(0),
        rb.consume,
        rb.epoll_fd,
        rb.fileno,
        lambda: rb.add(obj.map("events2"), lambda d: 0),
    ):
        with pytest.raises(tinybpf.BpfClosedError, match="Ring buffer is closed"):
            op()


def test_close_of_a_buffer_without_maps(obj):
    rb = BpfRingBuffer()
    rb.close()
    rb.close()
    with pytest.raises(BpfError, match="Ring buffer is closed"):
        rb.add(obj.map("events"))


def test_object_close_makes_poll_raise(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    trigger(obj)
    obj.close()
    with pytest.raises(tinybpf.BpfClosedError, match="after BpfObject is closed"):
        rb.poll(0)
    with pytest.raises(BpfError, match="closed"):
        rb.consume()
    with pytest.raises(BpfError, match="closed"):
        rb.epoll_fd()
    rb.close()
    rb.close()


def test_context_manager_closes(obj):
    with BpfRingBuffer(obj.map("events"), lambda d: 0) as rb:
        assert "open" in repr(rb)
    assert repr(rb).endswith(" closed>")
    with pytest.raises(BpfError, match="Ring buffer is closed"):
        rb.poll(0)


def test_buffer_keeps_working_after_map_wrapper_is_dropped(obj_path):
    """The buffer keeps what it needs alive: drop every other reference, then poll."""
    _skip_unless_bpf_loop()
    o = tinybpf.load(obj_path("ringbuf_events"))
    link = o.program("on_getppid").attach()
    got = []
    rb = BpfRingBuffer(o.map("events"), got.append)
    configure(o, burst=2)
    del o
    os.getppid()
    assert rb.poll(1000) == 2
    rb.close()
    link.destroy()


def test_repr_formats(obj):
    rb = BpfRingBuffer()
    assert repr(rb) == "<BpfRingBuffer (no maps) open>"
    rb.add(obj.map("events"), lambda d: 0)
    assert repr(rb) == "<BpfRingBuffer map='events' callback open>"
    rb.add(obj.map("events2"), lambda d: 0)
    assert repr(rb) == "<BpfRingBuffer maps=['events', 'events2'] callback open>"
    rb.close()
    assert repr(rb) == "<BpfRingBuffer maps=['events', 'events2'] callback closed>"
    it = BpfRingBuffer(obj.map("events"))
    assert repr(it) == "<BpfRingBuffer map='events' iterator open>"
    it.close()
    assert repr(it) == "<BpfRingBuffer map='events' iterator closed>"


def test_close_from_inside_a_callback_ends_the_poll(obj):
    got: list[int] = []

    def cb(e):
        got.append(e.seq)
        rb.close()

    rb = BpfRingBuffer(obj.map("events"), cb, event_type=Event)
    trigger(obj, burst=3)
    rb.poll(1000)
    assert got == [0]
    assert repr(rb).endswith(" closed>")
    with pytest.raises(BpfError, match="Ring buffer is closed"):
        rb.poll(0)


def test_close_from_another_thread_ends_a_blocking_poll(obj):
    rb = BpfRingBuffer(obj.map("events"), lambda d: 0)
    result: list[object] = []

    def run():
        try:
            result.append(rb.poll(-1))
        except BaseException as e:  # pragma: no cover - reported below
            result.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.05)
    rb.close()
    t.join(5.0)
    assert not t.is_alive(), "poll(-1) kept blocking after close()"
    assert result == [0]
    with pytest.raises(BpfError, match="Ring buffer is closed"):
        rb.poll(0)


def test_poll_from_inside_a_callback_is_refused(obj):
    errors: list[BaseException] = []

    def cb(data):
        try:
            rb.poll(0)
        except BpfError as e:
            errors.append(e)

    rb = BpfRingBuffer(obj.map("events"), cb)
    trigger(obj)
    assert rb.poll(1000) == 1
    assert len(errors) == 1
    rb.close()


def test_ring_buffer_over_a_pinned_map(obj):
    """A standalone map (open_pinned_map) feeds a ring buffer too; no BTF validation applies."""
    path = f"/sys/fs/bpf/tinybpf_test_rb_{os.getpid()}"
    obj.map("events").pin(path)
    try:
        m = tinybpf.open_pinned_map(path)
        assert m.is_standalone and m.type == tinybpf.BpfMapType.RINGBUF
        got: list[Event] = []
        rb = BpfRingBuffer(m, got.append, event_type=Event)
        trigger(obj, burst=2)
        assert rb.poll(1000) == 2
        assert [e.seq for e in got] == [0, 1]
        rb.close()
        m.close()
    finally:
        os.unlink(path)


def test_batch_cpus_of_a_ring_buffer_name_the_map_each_record_came_from(obj):
    rb = BpfRingBuffer(batch=True)
    rb.add(obj.map("events"))
    rb.add(obj.map("events2"))
    trigger(obj, burst=2, targets=T_EVENTS | T_EVENTS2)
    batch = rb.poll_batch(1000)
    assert isinstance(batch, tinybpf.EventBatch)
    # two records to each map: events has 32-byte records, events2 16-byte ones
    pairs = sorted(zip(batch.cpus, batch.sizes, strict=True))
    assert pairs == [(0, 32), (0, 32), (1, 16), (1, 16)]
    rb.close()
