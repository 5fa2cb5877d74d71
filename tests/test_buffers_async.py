"""asyncio integration of the ring and perf buffers on a real kernel: poll_async, async iteration,
tagged events, cancellation, and close() ending an iteration that waits (W8).

Triggers are getppid(2) calls made by this process (see tests/bpf/ringbuf_events.bpf.c and
tests/bpf/perfbuf_events.bpf.c). Every wait is bounded by asyncio.wait_for, so a hang fails the
test instead of blocking the suite.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import struct
import time

import pytest
from helpers.kernel import helper_unavailable_reason

import tinybpf
from tinybpf import BpfError, BpfPerfBuffer, BpfRingBuffer, RingBufferEvent

pytestmark = pytest.mark.root

T_EVENTS = 1
T_EVENTS2 = 2
GUARD = 10.0  # seconds: only reached when something hangs


class Event(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("seq", ctypes.c_uint32),
        ("ts", ctypes.c_uint64),
        ("comm", ctypes.c_char * 16),
    ]


def rb_trigger(
    obj: tinybpf.BpfObject, burst: int = 1, targets: int = T_EVENTS, tag: int = 0
) -> None:
    obj.map("cfg")[0] = struct.pack("<IIII", os.getpid(), burst, targets, tag)
    os.getppid()


def pb_trigger(obj: tinybpf.BpfObject, burst: int = 1) -> None:
    obj.map("cfg")[0] = struct.pack("<II", os.getpid(), burst)
    os.getppid()


def _skip_unless_bpf_loop() -> None:
    # the fixtures emit their bursts with bpf_loop (Linux 5.17+)
    reason = helper_unavailable_reason(tinybpf.BpfProgType.TRACEPOINT, "bpf_loop")
    if reason:
        pytest.skip(reason)


@pytest.fixture
def rbobj(obj_path):
    _skip_unless_bpf_loop()
    o = tinybpf.load(obj_path("ringbuf_events"))
    link = o.program("on_getppid").attach()
    yield o
    link.destroy()
    o.close()


@pytest.fixture
def pbobj(obj_path):
    _skip_unless_bpf_loop()
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})  # one per-CPU ring gets every sample
    o = tinybpf.load(obj_path("perfbuf_events"))
    link = o.program("on_getppid").attach()
    try:
        yield o
    finally:
        link.destroy()
        o.close()
        os.sched_setaffinity(0, affinity)


async def collect(aiter, n: int) -> list:
    out = []
    async for item in aiter:
        out.append(item)
        if len(out) >= n:
            break
    return out


# --------------------------------------------------------------------------- ring: poll_async


async def test_ring_poll_async_returns_count(rbobj):
    got: list[int] = []
    rb = BpfRingBuffer(rbobj.map("events"), lambda e: got.append(e.seq), event_type=Event)
    rb_trigger(rbobj, burst=3)
    n = await asyncio.wait_for(rb.poll_async(2000), GUARD)
    assert n == 3
    assert got == [0, 1, 2]
    rb.close()


async def test_ring_poll_async_wakes_up_for_a_later_event(rbobj):
    got: list[int] = []
    rb = BpfRingBuffer(rbobj.map("events"), lambda e: got.append(e.seq), event_type=Event)
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, rb_trigger, rbobj, 2)
    t0 = time.monotonic()
    n = await asyncio.wait_for(rb.poll_async(5000), GUARD)
    assert n == 2 and got == [0, 1]
    assert time.monotonic() - t0 < 4.0
    rb.close()


async def test_ring_poll_async_times_out_with_zero(rbobj):
    rb = BpfRingBuffer(rbobj.map("events"), lambda d: 0)
    t0 = time.monotonic()
    assert await asyncio.wait_for(rb.poll_async(50), GUARD) == 0
    assert 0.03 <= time.monotonic() - t0 < 2.0
    rb.close()


async def test_ring_poll_async_zero_timeout_consumes(rbobj):
    rb = BpfRingBuffer(rbobj.map("events"), lambda d: 0)
    assert await rb.poll_async(0) == 0
    rb_trigger(rbobj, burst=4)
    assert await rb.poll_async(0) == 4
    rb.close()


async def test_ring_poll_async_reraises_callback_exception_and_keeps_the_rest(rbobj):
    exc = ValueError("async boom")
    got: list[int] = []

    def cb(e):
        got.append(e.seq)
        if e.seq == 0:
            raise exc

    rb = BpfRingBuffer(rbobj.map("events"), cb, event_type=Event)
    rb_trigger(rbobj, burst=3)
    with pytest.raises(ValueError) as info:
        await asyncio.wait_for(rb.poll_async(2000), GUARD)
    assert info.value is exc
    assert await asyncio.wait_for(rb.poll_async(2000), GUARD) == 2
    assert got == [0, 1, 2]
    rb.close()


async def test_ring_poll_async_is_cancel_safe(rbobj):
    got = []
    rb = BpfRingBuffer(rbobj.map("events"), got.append)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(rb.poll_async(-1), 0.05)
    # The cancelled wait left no reader behind: waiting again works.
    rb_trigger(rbobj, burst=1)
    assert await asyncio.wait_for(rb.poll_async(2000), GUARD) == 1
    assert len(got) == 1
    rb.close()


async def test_ring_concurrent_poll_async_calls_deliver_each_event_once(rbobj):
    got: list[int] = []
    rb = BpfRingBuffer(rbobj.map("events"), lambda e: got.append(e.seq), event_type=Event)
    tasks = [asyncio.create_task(rb.poll_async(500)) for _ in range(3)]
    await asyncio.sleep(0.02)
    rb_trigger(rbobj, burst=5)
    counts = await asyncio.wait_for(asyncio.gather(*tasks), GUARD)
    assert sum(counts) == 5
    assert got == [0, 1, 2, 3, 4]
    rb.close()


async def test_ring_poll_async_after_close_raises(rbobj):
    rb = BpfRingBuffer(rbobj.map("events"), lambda d: 0)
    rb.close()
    with pytest.raises(BpfError, match="Ring buffer is closed"):
        await rb.poll_async(10)


# --------------------------------------------------------------------------- ring: async iteration


async def test_async_for_receives_typed_events(rbobj):
    rb = BpfRingBuffer(rbobj.map("events"), event_type=Event)
    rb_trigger(rbobj, burst=3)
    events = await asyncio.wait_for(collect(rb, 3), GUARD)
    assert [type(e) for e in events] == [Event] * 3
    assert [e.seq for e in events] == [0, 1, 2]
    assert {e.pid for e in events} == {os.getpid()}
    rb.close()


async def test_async_for_waits_for_events_triggered_later(rbobj):
    rb = BpfRingBuffer(rbobj.map("events"))
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, rb_trigger, rbobj, 2)
    loop.call_later(0.15, rb_trigger, rbobj, 1)
    data = await asyncio.wait_for(collect(rb, 3), GUARD)
    assert [struct.unpack_from("<I", d, 4)[0] for d in data] == [0, 1, 2]
    rb.close()


async def test_events_are_tagged_with_the_map_name(rbobj):
    rb = BpfRingBuffer()
    rb.add(rbobj.map("events"))
    rb.add(rbobj.map("events2"))
    rb_trigger(rbobj, burst=2, targets=T_EVENTS | T_EVENTS2, tag=7)
    tagged = await asyncio.wait_for(collect(rb.events(), 4), GUARD)
    assert all(isinstance(t, RingBufferEvent) for t in tagged)
    by_map: dict[str, list[bytes]] = {}
    for t in tagged:
        by_map.setdefault(t.map_name, []).append(t.data)
    assert sorted(by_map) == ["events", "events2"]
    assert [len(d) for d in by_map["events"]] == [32, 32]
    assert [struct.unpack_from("<IIQ", d)[1:] for d in by_map["events2"]] == [(1, 7), (3, 8)]
    assert [struct.unpack_from("<I", d, 4)[0] for d in by_map["events"]] == [0, 2]
    assert hash(tagged[0]) == hash(RingBufferEvent(tagged[0].map_name, tagged[0].data))
    rb.close()


async def test_async_iteration_refused_in_callback_mode_or_without_maps(rbobj):
    rb = BpfRingBuffer(rbobj.map("events"), lambda d: 0)
    with pytest.raises(BpfError, match="Cannot iterate on callback-mode ring buffer"):
        rb.__aiter__()
    with pytest.raises(BpfError, match="Cannot iterate on callback-mode ring buffer"):
        rb.events()
    rb.close()
    empty = BpfRingBuffer()
    with pytest.raises(BpfError, match="No maps added to ring buffer"):
        empty.__aiter__()
    with pytest.raises(BpfError, match="No maps added to ring buffer"):
        empty.events()
    empty.close()


async def test_close_while_async_for_waits_ends_the_iteration(rbobj):
    """W8: the first generation hung forever here."""
    rb = BpfRingBuffer(rbobj.map("events"))
    received = []

    async def consume():
        async for item in rb:
            received.append(item)
        return "ended"

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    assert not task.done()
    rb.close()
    assert await asyncio.wait_for(task, GUARD) == "ended"
    assert received == []


async def test_close_while_events_iteration_waits_ends_it(rbobj):
    rb = BpfRingBuffer()
    rb.add(rbobj.map("events"))
    rb.add(rbobj.map("events2"))
    received = []

    async def consume():
        async for item in rb.events():
            received.append(item)
        return "ended"

    task = asyncio.create_task(consume())
    rb_trigger(rbobj, burst=1)
    await asyncio.sleep(0.05)
    rb.close()
    assert await asyncio.wait_for(task, GUARD) == "ended"
    assert [r.map_name for r in received] == ["events"]


async def test_close_from_another_task_after_some_events(rbobj):
    rb = BpfRingBuffer(rbobj.map("events"), event_type=Event)
    seen: list[int] = []

    async def consume():
        async for e in rb:
            seen.append(e.seq)
            if len(seen) == 2:
                asyncio.get_running_loop().call_soon(rb.close)

    rb_trigger(rbobj, burst=2)
    await asyncio.wait_for(consume(), GUARD)
    assert seen == [0, 1]


async def test_async_context_manager_closes(rbobj):
    async with BpfRingBuffer(rbobj.map("events"), event_type=Event) as rb:
        rb_trigger(rbobj, burst=1)
        events = await asyncio.wait_for(collect(rb, 1), GUARD)
        assert events[0].seq == 0
    assert repr(rb).endswith(" closed>")


async def test_bounded_queue_with_async_iteration(rbobj):
    rb = BpfRingBuffer(rbobj.map("events"), event_type=Event, max_queue=2)
    rb_trigger(rbobj, burst=5)
    first = await asyncio.wait_for(collect(rb, 2), GUARD)
    assert len(first) == 2
    assert rb.dropped == 3
    rb_trigger(rbobj, burst=1)
    nxt = await asyncio.wait_for(collect(rb, 1), GUARD)
    assert nxt[0].seq == 5
    rb.close()


async def test_object_close_fails_a_waiting_async_iteration_at_its_next_wakeup(rbobj):
    """The link outlives obj.close(), so the program still writes into the ring; the waiting
    iteration wakes up and reports the closed object instead of reading on (or hanging)."""
    rb = BpfRingBuffer(rbobj.map("events"))
    rbobj.map("cfg")[0] = struct.pack("<IIII", os.getpid(), 1, T_EVENTS, 0)

    async def consume():
        async for _ in rb:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    rbobj.close()
    os.getppid()
    with pytest.raises(BpfError, match="closed"):
        await asyncio.wait_for(task, GUARD)
    rb.close()


# --------------------------------------------------------------------------- perf buffer


async def test_perf_poll_async_returns_samples(pbobj):
    got: list[int] = []
    pb = BpfPerfBuffer(pbobj.map("events"), lambda cpu, e: got.append(e.seq), event_type=Event)
    pb_trigger(pbobj, burst=3)
    n = await asyncio.wait_for(pb.poll_async(2000), GUARD)
    assert n == 3 and got == [0, 1, 2]
    pb.close()


async def test_perf_poll_async_wakes_up_for_a_later_sample(pbobj):
    got: list[int] = []
    pb = BpfPerfBuffer(pbobj.map("events"), lambda cpu, e: got.append(e.seq), event_type=Event)
    asyncio.get_running_loop().call_later(0.05, pb_trigger, pbobj, 1)
    assert await asyncio.wait_for(pb.poll_async(5000), GUARD) == 1
    assert got == [0]
    pb.close()


async def test_perf_poll_async_times_out_with_zero(pbobj):
    pb = BpfPerfBuffer(pbobj.map("events"), lambda cpu, d: None)
    t0 = time.monotonic()
    assert await asyncio.wait_for(pb.poll_async(50), GUARD) == 0
    assert 0.03 <= time.monotonic() - t0 < 2.0
    assert await pb.poll_async(0) == 0
    pb.close()


async def test_perf_poll_async_reraises_and_keeps_the_rest(pbobj):
    exc = KeyError("perf")
    got: list[int] = []

    def cb(cpu, e):
        got.append(e.seq)
        if e.seq == 1:
            raise exc

    pb = BpfPerfBuffer(pbobj.map("events"), cb, event_type=Event)
    pb_trigger(pbobj, burst=4)
    with pytest.raises(KeyError) as info:
        await asyncio.wait_for(pb.poll_async(2000), GUARD)
    assert info.value is exc
    assert await asyncio.wait_for(pb.poll_async(2000), GUARD) == 2
    assert got == [0, 1, 2, 3]
    pb.close()


async def test_perf_poll_async_is_cancel_safe(pbobj):
    got = []
    pb = BpfPerfBuffer(pbobj.map("events"), lambda cpu, d: got.append(d))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pb.poll_async(-1), 0.05)
    pb_trigger(pbobj, burst=1)
    assert await asyncio.wait_for(pb.poll_async(2000), GUARD) == 1
    pb.close()
    with pytest.raises(BpfError, match="Perf buffer is closed"):
        await pb.poll_async(10)


async def test_ring_poll_batch_async_waits_then_returns_the_batch(rbobj):
    rb = BpfRingBuffer(rbobj.map("events"), batch=True, event_type=Event)
    assert len(await asyncio.wait_for(rb.poll_batch_async(0), GUARD)) == 0
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, rb_trigger, rbobj, 4)
    batch = await asyncio.wait_for(rb.poll_batch_async(5000), GUARD)
    assert batch.column("seq") == [0, 1, 2, 3]
    assert len(await asyncio.wait_for(rb.poll_batch_async(50), GUARD)) == 0  # timeout
    rb.close()
