"""Threads, fork and interpreter exit.

* A poll in one thread ends promptly (bounded wait) when another thread closes the buffer,
  or closes the object that owns the buffer's map.
* Several threads using distinct maps (and one map by key ranges) at once get exact results.
* Racing close() against poll() with events flowing, many times, in a subprocess: no crash.
* fork(): the child can use the inherited object (maps, programs, ring buffer) or gets a
  clear error; the parent is unaffected.
* Exit without closing anything (or closing in odd orders) never double-frees: a subprocess
  exits 0 and glibc reports nothing on stderr.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import tinybpf
from tinybpf import BpfClosedError, BpfPerfBuffer, BpfRingBuffer

pytestmark = pytest.mark.root


def produce_ring(obj, n: int, start: int = 0, which: int = 0) -> None:
    obj.program("produce_ring").test_run(
        ctx=struct.pack("<IIQ", n, which, start), repeat=0, ctx_out_size=0
    )


def seq_of(data) -> int:
    return struct.unpack_from("<Q", bytes(data))[0]


@pytest.fixture
def ev(obj_path):
    o = tinybpf.load(obj_path("rel_events"))
    yield o
    o.close()


def _poll_in_thread(buf, timeout_ms=-1):
    result: list = []

    def run():
        t0 = time.monotonic()
        try:
            result.append(("returned", buf.poll(timeout_ms)))
        except BaseException as e:
            result.append(("raised", e))
        result.append(time.monotonic() - t0)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


BAD_EXIT = ("double free", "corrupted", "Segmentation fault", "Fatal Python error", "free():")


def _run_child(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for bad in BAD_EXIT:
        assert bad not in p.stderr, p.stderr
    return p


# --------------------------------------------------------------------------- close vs poll


@pytest.mark.parametrize("kind", ["ring", "perf"])
def test_close_buffer_from_another_thread_ends_a_blocking_poll(ev, kind):
    buf = (
        BpfRingBuffer(ev.maps["rb"], lambda d: None)
        if kind == "ring"
        else BpfPerfBuffer(ev.maps["pb"], lambda c, d: None)
    )
    t, result = _poll_in_thread(buf)
    time.sleep(0.3)
    t0 = time.monotonic()
    buf.close()
    t.join(5)
    waited = time.monotonic() - t0
    print(f"\n{kind}: poll ended {waited:.3f} s after close(): {result}")
    assert not t.is_alive(), "poll(-1) still running 5 s after close()"
    assert result[0] == ("returned", 0)
    assert waited < 1.0
    with pytest.raises(BpfClosedError):
        buf.poll(0)


@pytest.mark.parametrize("kind", ["ring", "perf"])
def test_close_object_from_another_thread_ends_a_blocking_poll(obj_path, kind):
    obj = tinybpf.load(obj_path("rel_events"))
    buf = (
        BpfRingBuffer(obj.maps["rb"], lambda d: None)
        if kind == "ring"
        else BpfPerfBuffer(obj.maps["pb"], lambda c, d: None)
    )
    t, result = _poll_in_thread(buf)
    time.sleep(0.3)
    obj.close()
    t.join(5)
    alive = t.is_alive()
    buf.close()  # lets a still-running poll end (close() from another thread)
    t.join(5)
    print(f"\n{kind}: after obj.close(): {result}")
    assert not alive, "poll(-1) kept waiting after the object owning its map was closed"
    assert result[0][0] == "returned" or isinstance(result[0][1], BpfClosedError)


def test_close_object_from_another_thread_with_a_finite_timeout(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    rb = BpfRingBuffer(obj.maps["rb"], lambda d: None)
    t, result = _poll_in_thread(rb, timeout_ms=1000)
    time.sleep(0.2)
    obj.close()
    t.join(5)
    assert not t.is_alive()
    assert result[0] == ("returned", 0) or isinstance(result[0][1], BpfClosedError)
    with pytest.raises(BpfClosedError):
        rb.poll(0)
    rb.close()


def test_close_races_poll_with_events_flowing():
    """Many rounds of: producer thread + polling thread + close() from a third thread at a
    random moment (buffer close, or object close). In a subprocess: a use-after-free would
    kill it, not pytest."""
    from conftest import bpf_obj

    code = f"""
    import random, struct, threading, time, tinybpf
    path = {str(bpf_obj("rel_events"))!r}
    rounds, delivered = 60, 0
    for i in range(rounds):
        obj = tinybpf.load(path)
        prog = obj.program("produce_ring")
        got = []
        rb = tinybpf.BpfRingBuffer(obj.maps["rb"], lambda d: got.append(len(d)))
        stop = threading.Event()
        def produce():
            while not stop.is_set():
                try:
                    prog.test_run(ctx=struct.pack("<IIQ", 500, 0, 0), repeat=0, ctx_out_size=0)
                except tinybpf.BpfError:
                    return
        def poll():
            while True:
                try:
                    rb.poll(50)
                except tinybpf.BpfClosedError:
                    return
        threads = [threading.Thread(target=produce), threading.Thread(target=poll)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.0, 0.03))
        if i % 3 == 0:
            obj.close()
            rb.close()
        else:
            rb.close()
        stop.set()
        for t in threads:
            t.join(10)
            assert not t.is_alive(), "thread stuck"
        obj.close()
        delivered += len(got)
    print("ok", rounds, delivered)
    """
    p = _run_child(code, timeout=120)
    print(p.stdout.strip())
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ok")


def test_concurrent_polls_of_one_buffer_are_serialized(ev):
    """Two threads polling the same buffer: events delivered once each, no crash."""
    got = []
    lock = threading.Lock()

    def cb(d):
        with lock:
            got.append(seq_of(d))

    rb = BpfRingBuffer(ev.maps["rb"], cb)
    N = 50_000
    produce_ring(ev, N)
    stop = threading.Event()

    def poller():
        while not stop.is_set():
            rb.poll(20)

    threads = [threading.Thread(target=poller) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(got) < N and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join(5)
    rb.close()
    assert sorted(got) == list(range(N))


# --------------------------------------------------------------------------- maps in threads


def test_threads_on_distinct_maps(ev):
    """One thread per map (two hashes, an array, a per-CPU array) plus a ring buffer
    producer/consumer thread: each ends with exactly what it wrote."""
    errors: list = []
    N = 3000

    def hash_worker(m, base):
        try:
            for i in range(N):
                m[i % 1000] = base + i
                assert m[i % 1000] == base + i
            for i in range(1000):
                assert m[i] == base + N - 1000 + i
                if i % 2:
                    del m[i]
            assert sorted(m.keys()) == list(range(0, 1000, 2))
        except BaseException as e:
            errors.append(e)

    def array_worker(m):
        try:
            for r in range(50):
                for i in range(64):
                    m[i] = r * 100 + i
                assert [m[i] for i in range(64)] == [r * 100 + i for i in range(64)]
        except BaseException as e:
            errors.append(e)

    def percpu_worker(m):
        try:
            n = tinybpf.possible_cpus()
            for r in range(500):
                m[0] = [r + c for c in range(n)]
                assert m.lookup_percpu(0) == [r + c for c in range(n)]
        except BaseException as e:
            errors.append(e)

    ring_got = []

    def ring_worker():
        try:
            rb = BpfRingBuffer(ev.maps["rb"], lambda d: ring_got.append(seq_of(d)))
            for start in range(0, 100_000, 10_000):
                produce_ring(ev, 10_000, start)
                while len(ring_got) < start + 10_000:
                    rb.poll(100)
            rb.close()
        except BaseException as e:
            errors.append(e)

    threads = [
        threading.Thread(target=hash_worker, args=(ev.maps["h1"], 1 << 40)),
        threading.Thread(target=hash_worker, args=(ev.maps["h2"], 1 << 41)),
        threading.Thread(target=array_worker, args=(ev.maps["a1"],)),
        threading.Thread(target=percpu_worker, args=(ev.maps["perf_drops"],)),
        threading.Thread(target=ring_worker),
    ]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print(f"\n5 threads in {time.monotonic() - t0:.2f} s")
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert ring_got == list(range(100_000))


def test_threads_on_one_map_by_key_range(ev):
    """The lookup path reuses value buffers: several threads on one map must not see each
    other's values."""
    m = ev.maps["h1"]
    errors: list = []

    def worker(k0):
        try:
            for r in range(2000):
                k = k0 + r % 100
                m[k] = (k << 20) | r
                v = m[k]
                assert v == (k << 20) | r, (k, r, v)
                assert m.get(k) == v
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i * 100,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(list(m.keys())) == 800


def test_iteration_while_another_thread_deletes(ev):
    m = ev.maps["h1"]
    for i in range(1000):
        m[i] = i
    stop = threading.Event()
    errors: list = []

    def deleter():
        i = 0
        while not stop.is_set():
            m.delete(i % 1000)
            m[i % 1000] = i % 1000
            i += 1

    t = threading.Thread(target=deleter)
    t.start()
    try:
        for _ in range(50):
            items = dict(m.items())
            assert all(k == v for k, v in items.items())
            assert len(items) <= 1000
    except BaseException as e:
        errors.append(e)
    finally:
        stop.set()
        t.join(10)
    assert errors == []


# --------------------------------------------------------------------------- fork


def test_fork_child_uses_inherited_object_or_fails_clearly():
    from conftest import bpf_obj

    code = f"""
    import os, struct, sys, tinybpf
    obj = tinybpf.load({str(bpf_obj("rel_events"))!r})
    h1 = obj.maps["h1"]
    h1[1] = 100
    got = []
    rb = tinybpf.BpfRingBuffer(obj.maps["rb"], lambda d: got.append(d))
    prog = obj.program("produce_ring")
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            assert h1[1] == 100            # inherited fds: same kernel map
            h1[2] = 200
            prog.test_run(ctx=struct.pack("<IIQ", 10, 0, 0), repeat=0, ctx_out_size=0)
            n = 0
            while n < 10:
                n += rb.poll(1000)           # inherited epoll fd and mapping
            print("child ok", n, flush=True)
            rb.close()
            obj.close()                    # closes the child's copies only
        except tinybpf.BpfError as e:
            print("child clear error:", type(e).__name__, e, flush=True)
        except BaseException as e:
            print("child unclear error:", type(e).__name__, e, flush=True)
            status = 1
        os._exit(status)
    _, st = os.waitpid(pid, 0)
    assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, st
    assert h1[2] == 200 or h1.get(2) is None
    # the parent is unaffected by the child's close
    h1[3] = 300
    assert h1[3] == 300
    prog.test_run(ctx=struct.pack("<IIQ", 5, 0, 100), repeat=0, ctx_out_size=0)
    n = 0
    while n < 5:
        n += rb.poll(1000)
    print("parent ok", h1.get(2), n)
    rb.close()
    obj.close()
    """
    p = _run_child(code)
    print(p.stdout.strip())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "child ok 10" in p.stdout or "child clear error" in p.stdout
    assert "parent ok 200 5" in p.stdout or "parent ok None 5" in p.stdout


def test_fork_while_another_thread_polls():
    """fork() while a thread sits in a poll: the child (one thread) can still use the
    buffer's maps and exits cleanly."""
    from conftest import bpf_obj

    code = f"""
    import os, struct, threading, time, tinybpf
    obj = tinybpf.load({str(bpf_obj("rel_events"))!r})
    rb = tinybpf.BpfRingBuffer(obj.maps["rb"], lambda d: None)
    t = threading.Thread(target=lambda: rb.poll(2000))
    t.start()
    time.sleep(0.2)
    pid = os.fork()
    if pid == 0:
        import faulthandler
        faulthandler.dump_traceback_later(3, exit=True)  # a deadlock ends the child (exit 1)
        code = 0
        try:
            obj.maps["h1"][7] = 7
            try:
                rb.poll(0)   # the poll lock was held by a thread that does not exist here
                print("child poll ok", flush=True)
            except tinybpf.BpfError as e:
                print("child poll clear error:", e, flush=True)
        except BaseException as e:
            print("child unclear error:", repr(e), flush=True)
            code = 1
        os._exit(code)
    _, st = os.waitpid(pid, 0)
    t.join()
    rb.close()
    print("parent", os.WEXITSTATUS(st), obj.maps["h1"][7])
    obj.close()
    """
    p = _run_child(code, timeout=60)
    print(p.stdout.strip())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "parent 0 7" in p.stdout


# --------------------------------------------------------------------------- exit


EXIT_SCENARIOS = {
    "nothing closed": "",
    "objects closed, children kept": "obj.close(); tiny.close()",
    "buffers closed, object kept": "rb.close(); pb.close()",
    "links destroyed, object closed first": "obj.close(); tiny.close(); link.destroy()",
    "sys.exit inside a callback": "produce(); rb.callback_exit = True; rb.poll(1000)",
    "everything closed twice": "for x in (rb, pb, view, standalone, vm, obj, tiny) * 2: x.close()",
}


@pytest.mark.parametrize("scenario", list(EXIT_SCENARIOS))
def test_exit_never_double_frees(scenario):
    from conftest import bpf_obj

    action = EXIT_SCENARIOS[scenario]
    code = f"""
    import ctypes, struct, sys, warnings, tinybpf
    warnings.simplefilter("ignore", ResourceWarning)
    obj = tinybpf.load({str(bpf_obj("rel_events"))!r})
    tiny = tinybpf.load({str(bpf_obj("rel_tiny"))!r})
    prog = obj.program("produce_ring")
    def produce():
        prog.test_run(ctx=struct.pack("<IIQ", 10, 0, 0), repeat=0, ctx_out_size=0)
    def cb(d):
        if getattr(rb, "callback_exit", False):
            sys.exit(0)
        raise ValueError("kept in the buffer")
    rb = tinybpf.BpfRingBuffer(obj.maps["rb"], cb)
    pb = tinybpf.BpfPerfBuffer(obj.maps["pb"], lambda c, d: None)
    link = tiny.program("raw_rename").attach()
    btf = obj.btf
    vm = tinybpf.Btf.from_vmlinux()
    g = obj.globals
    view = obj.maps["h1"].typed(key=ctypes.c_uint32)
    standalone = tinybpf.create_map(tinybpf.BpfMapType.ARRAY, 4, 8, 4)
    cycle = [obj, rb, pb, link]; cycle.append(cycle)   # reference cycles for the GC
    produce()
    try:
        rb.poll(1000)                                 # a stored exception: ValueError
    except ValueError:
        pass
    {action}
    print("exiting", flush=True)
    """
    p = _run_child(code)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "exiting" in p.stdout or "sys.exit" in scenario
