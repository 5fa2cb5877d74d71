"""Callbacks: exceptions, stops, signals.

* Any exception a callback raises (KeyboardInterrupt and SystemExit included) comes out of
  the poll()/consume() that ran it, unchanged: the same object.
* Stopping (an exception, or a negative return) loses nothing: every event produced is
  delivered exactly once, in order, by the following polls.
* A signal during a blocking poll is handled (EINTR): the Python handler runs and the poll
  returns (or raises what the handler raised); the buffer stays usable.
* Ctrl-C (SIGINT from a timer thread) stops poll(timeout_ms=-1) promptly with
  KeyboardInterrupt (checked in a subprocess).

Events come from tests/bpf/rel_events.bpf.c through BPF_PROG_TEST_RUN: produce_ring (syscall
program) writes n records {seq, tag} into a ring buffer, produce_perf (raw_tp) n samples into
the perf event array on the CPU it runs on.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time

import pytest

import tinybpf
from tinybpf import BpfError, BpfPerfBuffer, BpfRingBuffer

pytestmark = pytest.mark.root


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


class CustomError(Exception):
    def __init__(self, payload):
        super().__init__(payload)
        self.payload = payload


class CustomBase(BaseException):
    pass


def _exceptions():
    e_chained = ValueError("outer")
    e_chained.__cause__ = KeyError("inner")
    return [
        ValueError("v"),
        RuntimeError("r"),
        KeyError("k"),
        ZeroDivisionError("z"),
        MemoryError(),
        RecursionError("deep"),
        StopIteration(5),
        OSError(5, "io"),
        BpfError("our own error", 22),
        CustomError({"x": 1}),
        e_chained,
        KeyboardInterrupt(),
        SystemExit(3),
        GeneratorExit(),
        CustomBase("base"),
    ]


EXC_IDS = [type(e).__name__ + ("-chained" if e.__cause__ else "") for e in _exceptions()]


@pytest.mark.parametrize("index", range(len(EXC_IDS)), ids=EXC_IDS)
@pytest.mark.parametrize("how", ["poll", "consume"])
def test_ring_callback_exception_reraised_unchanged(ev, index, how):
    exc = _exceptions()[index]
    got = []

    def cb(data):
        got.append(seq_of(data))
        if len(got) == 2:
            raise exc

    rb = BpfRingBuffer(ev.maps["rb"], cb)
    produce_ring(ev, 5)
    with pytest.raises(BaseException) as ei:
        rb.poll(1000) if how == "poll" else rb.consume()
    assert ei.value is exc
    if exc.__cause__ is not None:
        assert isinstance(ei.value.__cause__, KeyError)
    # nothing lost after the stop: the rest comes with the next call
    while len(got) < 5:
        assert rb.poll(1000) > 0
    assert got == [0, 1, 2, 3, 4]
    rb.close()


@pytest.mark.parametrize("index", range(len(EXC_IDS)), ids=EXC_IDS)
@pytest.mark.parametrize("how", ["poll", "consume"])
def test_perf_callback_exception_reraised_unchanged(ev, pinned_cpu, index, how):
    exc = _exceptions()[index]
    got = []

    def cb(cpu, data):
        got.append(seq_of(data))
        if len(got) == 2:
            raise exc

    pb = BpfPerfBuffer(ev.maps["pb"], cb)
    produce_perf(ev, 5)
    with pytest.raises(BaseException) as ei:
        pb.poll(1000) if how == "poll" else pb.consume()
    assert ei.value is exc
    deadline = time.monotonic() + 5
    while len(got) < 5 and time.monotonic() < deadline:
        pb.poll(100)
    assert got == [0, 1, 2, 3, 4]
    pb.close()


@pytest.mark.parametrize("exc_type", [ValueError, KeyboardInterrupt, SystemExit])
def test_perf_lost_callback_exception_reraised_unchanged(ev, pinned_cpu, exc_type):
    exc = exc_type("lost!")
    lost = []

    def lost_cb(cpu, n):
        lost.append(n)
        raise exc

    pb = BpfPerfBuffer(ev.maps["pb"], lambda c, d: None, lost_cb, page_count=1)
    produce_perf(ev, 1000)  # overflows a one-page ring
    pb.poll(200)
    produce_perf(ev, 1, start=1000)  # the LOST record comes in front of this sample
    with pytest.raises(exc_type) as ei:
        for _ in range(20):
            pb.poll(100)
    assert ei.value is exc
    assert lost and pb.lost == sum(lost)
    pb.close()


# --------------------------------------------------------------------------- stops lose nothing


@pytest.mark.parametrize("stop", ["exception", "negative-return"])
@pytest.mark.parametrize("how", ["poll", "consume"])
def test_ring_many_stops_lose_nothing(ev, stop, how):
    N = 20000
    got = []
    stops = 0

    def cb(data):
        got.append(seq_of(data))
        if len(got) % 97 == 0:
            if stop == "exception":
                raise CustomError(len(got))
            return -1
        return None

    rb = BpfRingBuffer(ev.maps["rb"], cb)
    produce_ring(ev, N)
    while len(got) < N:
        try:
            n = rb.poll(1000) if how == "poll" else rb.consume()
            assert n > 0 or how == "consume"
        except CustomError:
            pass
        stops += 1
        assert stops < 10 * N
    print(f"\nring: {N} events, {stops} polls/consumes, pending now {rb.pending}")
    assert got == list(range(N))
    assert rb.consume() == 0  # and nothing extra
    rb.close()


@pytest.mark.parametrize("stop", ["exception", "negative-return"])
def test_perf_many_stops_lose_nothing(ev, pinned_cpu, stop):
    N = 3000
    got = []

    def cb(cpu, data):
        got.append(seq_of(data))
        if len(got) % 53 == 0:
            if stop == "exception":
                raise CustomError(len(got))
            return -1
        return None

    pb = BpfPerfBuffer(ev.maps["pb"], cb, page_count=256)
    for start in range(0, N, 500):
        produce_perf(ev, 500, start)
    deadline = time.monotonic() + 20
    while len(got) < N and time.monotonic() < deadline:
        try:
            pb.poll(100)
        except CustomError:
            pass
    assert pb.lost == 0
    assert got == list(range(N))
    pb.close()


def test_iterator_mode_stop_by_exception_is_not_possible_but_poll_is_exact(ev):
    """Iterator mode (no callback): the queue keeps every event in order."""
    rb = BpfRingBuffer(ev.maps["rb"])
    produce_ring(ev, 1000)
    total = []
    while len(total) < 1000:
        rb.poll(1000)
        total.extend(seq_of(d) for d in rb)
    assert total == list(range(1000))
    assert rb.dropped == 0
    rb.close()


# --------------------------------------------------------------------------- signals


def _blocking_poll_with_signal(rb, send, timeout_ms=5000, **kw):
    """Run rb.poll(timeout_ms) with a signal sent by ``send`` after 0.25 s (between two of
    the 100 ms waits the poll is made of: a signal landing between two waits runs its
    handler but does not end the poll, like PEP 475 retries)."""
    hits = []
    old = signal.signal(signal.SIGUSR1, lambda s, f: hits.append(time.monotonic()))
    try:
        t0 = time.monotonic()
        send()
        result = rb.poll(timeout_ms, **kw)
        return result, hits, time.monotonic() - t0
    finally:
        signal.signal(signal.SIGUSR1, old)


def _from_thread(delay=0.25):
    main = threading.main_thread().ident

    def send():
        threading.Timer(delay, signal.pthread_kill, (main, signal.SIGUSR1)).start()

    return send


def _process_directed(delay=0.25):
    def send():
        threading.Timer(delay, os.kill, (os.getpid(), signal.SIGUSR1)).start()

    return send


def _itimer(delay=0.25):
    def send():
        signal.setitimer(signal.ITIMER_REAL, delay)

    return send


@pytest.mark.parametrize("sender", ["thread", "process", "itimer"])
@pytest.mark.parametrize("kind", ["ring", "perf"])
def test_signal_during_blocking_poll_is_handled(ev, kind, sender):
    rb = (
        BpfRingBuffer(ev.maps["rb"], lambda d: None)
        if kind == "ring"
        else BpfPerfBuffer(ev.maps["pb"], lambda c, d: None)
    )
    old_alrm = signal.signal(signal.SIGALRM, lambda s, f: os.kill(os.getpid(), signal.SIGUSR1))
    try:
        send = {"thread": _from_thread(), "process": _process_directed(), "itimer": _itimer()}[
            sender
        ]
        result, hits, elapsed = _blocking_poll_with_signal(rb, send)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_alrm)
    print(
        f"\n{kind}/{sender}: poll returned {result} after {elapsed:.3f} s, handler ran {len(hits)}"
    )
    assert hits, "the Python signal handler did not run"
    assert result == 0
    assert elapsed < 2.0, "the poll did not return at the signal (EINTR)"
    # still usable
    if kind == "ring":
        produce_ring(ev, 3)
        assert rb.poll(1000) == 3
    rb.close()


def test_signal_with_ignore_eintr_false_raises_eintr(ev):
    rb = BpfRingBuffer(ev.maps["rb"], lambda d: None)
    with pytest.raises(BpfError) as ei:
        _blocking_poll_with_signal(rb, _from_thread(), ignore_eintr=False)
    assert ei.value.errno == 4  # EINTR
    produce_ring(ev, 2)
    assert rb.poll(1000) == 2
    rb.close()


@pytest.mark.parametrize("kind", ["ring", "perf"])
def test_exception_from_signal_handler_propagates_from_poll(ev, kind):
    rb = (
        BpfRingBuffer(ev.maps["rb"], lambda d: None)
        if kind == "ring"
        else BpfPerfBuffer(ev.maps["pb"], lambda c, d: None)
    )

    def handler(s, f):
        raise CustomError("from handler")

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        _from_thread()()
        t0 = time.monotonic()
        with pytest.raises(CustomError):
            rb.poll(5000)
        assert time.monotonic() - t0 < 2.0
    finally:
        signal.signal(signal.SIGUSR1, old)
    # the poll lock was released: the buffer still works
    assert rb.poll(0) == 0
    rb.close()


def test_signals_while_events_flow_lose_nothing(ev):
    """A storm of signals while a callback consumes events: every event delivered once."""
    got = []
    rb = BpfRingBuffer(ev.maps["rb"], lambda d: got.append(seq_of(d)))
    hits = []
    old = signal.signal(signal.SIGUSR1, lambda s, f: hits.append(1))
    stop = threading.Event()
    main = threading.main_thread().ident

    def storm():
        while not stop.is_set():
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.0005)

    t = threading.Thread(target=storm)
    t.start()
    try:
        N = 1_000_000
        for start in range(0, N, 50_000):
            produce_ring(ev, 50_000, start)
            while len(got) < start + 50_000:
                rb.poll(100)
    finally:
        stop.set()
        t.join()
        signal.signal(signal.SIGUSR1, old)
    print(f"\n{len(hits)} signals during {N} events")
    assert len(hits) > 10
    assert got == list(range(N))
    rb.close()


_CTRL_C_CHILD = """
import faulthandler, os, signal, struct, sys, threading, time, tinybpf
faulthandler.dump_traceback_later(20, exit=True)  # a hang shows where, in stderr
# Python's own Ctrl-C handler, whatever the parent left: a background job of a shell
# without job control starts with SIGINT ignored, and so would this child
signal.signal(signal.SIGINT, signal.default_int_handler)
kind, path = sys.argv[1], sys.argv[2]
obj = tinybpf.load(path)
if kind == "ring":
    buf = tinybpf.BpfRingBuffer(obj.maps["rb"], lambda d: None)
elif kind == "ring-iter":
    buf = tinybpf.BpfRingBuffer(obj.maps["rb"])
else:
    buf = tinybpf.BpfPerfBuffer(obj.maps["pb"], lambda c, d: None)
if kind == "ring-busy":
    pass
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    buf.poll(timeout_ms=-1)
    print("RETURNED", time.monotonic() - t0)
except KeyboardInterrupt:
    print("KeyboardInterrupt", round(time.monotonic() - t0, 3))
buf.close()
obj.close()
"""

_CTRL_C_BUSY_CHILD = """
import faulthandler, os, signal, struct, sys, threading, time, tinybpf
faulthandler.dump_traceback_later(50, exit=True)  # a hang shows where, in stderr
# Python's own Ctrl-C handler, whatever the parent left: a background job of a shell
# without job control starts with SIGINT ignored, and so would this child
signal.signal(signal.SIGINT, signal.default_int_handler)
obj = tinybpf.load(sys.argv[2])
prog = obj.program("produce_ring")
n = [0]
def cb(d):
    n[0] += 1
    time.sleep(0.0001)  # a slow consumer: Ctrl-C lands inside the callback
rb = tinybpf.BpfRingBuffer(obj.maps["rb"], cb)
prog.test_run(ctx=struct.pack("<IIQ", 20000, 0, 0), repeat=0, ctx_out_size=0)
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    while True:
        rb.poll(timeout_ms=-1)
except KeyboardInterrupt:
    print("KeyboardInterrupt", round(time.monotonic() - t0, 3), n[0])
# the events after the interrupted one are still there
before = n[0]
while rb.consume():
    pass
print("rest", n[0] - before, "total", n[0])
rb.close()
obj.close()
"""


@pytest.mark.parametrize("kind", ["ring", "ring-iter", "perf"])
def test_ctrl_c_stops_a_blocking_poll_promptly(obj_path, kind):
    p = subprocess.run(
        [sys.executable, "-c", _CTRL_C_CHILD, kind, str(obj_path("rel_events"))],
        capture_output=True,
        text=True,
        timeout=30,
    )
    print(f"\n{kind}: {p.stdout.strip()}")
    assert p.returncode == 0, p.stderr
    word, secs = p.stdout.split()[:2]
    assert word == "KeyboardInterrupt"
    assert float(secs) < 1.5


def test_ctrl_c_inside_a_callback_loses_no_event(obj_path):
    p = subprocess.run(
        [sys.executable, "-c", _CTRL_C_BUSY_CHILD, "ring", str(obj_path("rel_events"))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(f"\n{p.stdout.strip()}")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("KeyboardInterrupt")
    assert float(lines[0].split()[1]) < 1.5
    assert lines[1].endswith("total 20000")
