"""Map iteration with read-ahead: when a map needs more than one batch, a thread makes the
next BPF_MAP_LOOKUP_BATCH calls while Python decodes the batch it has.

What a caller sees must not change: every entry once, values decoded as before, a close()
in the middle raises, an iterator abandoned or exhausted leaves no thread, a child forked
in the middle is told, signals still reach Python, and lookup-and-delete never reads
ahead. The thread is seen as an extra task in /proc/self/task.
"""

from __future__ import annotations

import ctypes
import os
import platform
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.kernel import map_batch_unavailable_reason, unprivileged_fd_use_unavailable_reason

import tinybpf
from tinybpf import BpfMapType

pytestmark = pytest.mark.root

N = 20000  # five batches of 4096


def _needs_batches(name: str = "HASH") -> None:
    reason = map_batch_unavailable_reason(name)
    if reason:
        pytest.skip(reason)


def _tasks() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


def _settle(baseline: set[int], timeout: float = 5.0) -> set[int]:
    """The tasks beyond ``baseline`` once joined threads have left /proc."""
    deadline = time.monotonic() + timeout
    while True:
        extra = _tasks() - baseline
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.01)


def _wait_parked(tid: int, timeout: float = 30.0) -> None:
    """Until thread ``tid`` sleeps outside any syscall but futex (its slots are full)."""
    futex = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
    if futex is None:
        time.sleep(0.5)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = Path(f"/proc/self/task/{tid}/syscall").read_text().split()
        if call and call[0] == str(futex):
            return
        time.sleep(0.005)
    pytest.fail(f"the read-ahead thread never waited for its slots to be taken: {call}")


@pytest.fixture
def big_hash():
    _needs_batches()
    m = tinybpf.create_map(
        BpfMapType.HASH, 4, 8, N, key_type=ctypes.c_uint32, value_type=ctypes.c_uint64
    )
    m.update_batch({k: k * 7 for k in range(N)})
    yield m
    m.close()


def test_items_keys_values_of_a_map_of_several_batches(big_hash):
    baseline = _tasks()
    assert dict(big_hash.items()) == {k: k * 7 for k in range(N)}
    keys = list(big_hash.keys())
    assert sorted(keys) == list(range(N))
    assert sorted(big_hash.values()) == [k * 7 for k in range(N)]
    assert sorted(big_hash.lookup_batch()) == [(k, k * 7) for k in range(N)]
    assert not _settle(baseline)


def test_a_thread_reads_ahead_and_leaves_when_the_iteration_ends(big_hash):
    baseline = _tasks()
    it = big_hash.items()
    next(it)
    extra = _tasks() - baseline
    assert len(extra) == 1, f"expected one read-ahead thread, saw tasks {extra}"
    (tid,) = extra
    status = Path(f"/proc/self/task/{tid}/status").read_text().splitlines()
    blocked = int(next(ln for ln in status if ln.startswith("SigBlk:")).split()[1], 16)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGCHLD):
        assert blocked & (1 << (sig - 1)), f"the read-ahead thread does not block {sig.name}"
    rest = list(it)
    assert len(rest) == N - 1
    assert not _settle(baseline), "the read-ahead thread outlived the iteration"


def test_an_abandoned_iterator_stops_its_thread(big_hash):
    baseline = _tasks()
    it = big_hash.items()
    for _ in range(5000):  # into the second batch
        next(it)
    assert len(_tasks() - baseline) == 1
    del it  # the generator inside is closed as it is freed
    assert not _settle(baseline)
    it2 = iter(big_hash.keys())
    next(it2)
    del it2
    assert not _settle(baseline)


@pytest.mark.parametrize("kind", ["HASH", "ARRAY"])
def test_a_map_of_one_batch_is_read_without_a_thread(kind):
    """4096 entries fill the first batch exactly (an array's batch then returns 0, not
    ENOENT): nothing is left to read ahead."""
    _needs_batches(kind)
    m = tinybpf.create_map(BpfMapType[kind], 4, 8, 4096)
    try:
        for k in range(4096):
            m[k] = k
        baseline = _tasks()
        it = m.items()
        next(it)
        assert not _tasks() - baseline
        assert len(list(it)) == 4095
    finally:
        m.close()


def test_close_during_the_iteration_raises_even_with_batches_read_ahead(big_hash):
    baseline = _tasks()
    it = big_hash.items()
    seen = [next(it) for _ in range(10)]
    (tid,) = _tasks() - baseline
    _wait_parked(tid)  # its three slots are full: batches read ahead wait to be taken
    big_hash.close()
    with pytest.raises(tinybpf.BpfClosedError, match="closed"):
        for kv in it:
            seen.append(kv)
    assert len(seen) <= 4096, "entries read ahead were given out after close()"


def test_other_value_types_percpu_and_arrays_read_ahead_correctly():
    _needs_batches("PERCPU_HASH")
    _needs_batches("ARRAY")

    class Pair(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_int16)]

    structs = tinybpf.create_map(
        BpfMapType.HASH, 4, ctypes.sizeof(Pair), N, key_type=ctypes.c_uint32, value_type=Pair
    )
    percpu = tinybpf.create_map(
        BpfMapType.PERCPU_HASH, 4, 8, N, key_type=ctypes.c_uint32, value_type=ctypes.c_uint64
    )
    array = tinybpf.create_map(
        BpfMapType.ARRAY, 4, 8, N, key_type=ctypes.c_uint32, value_type=ctypes.c_int64
    )
    try:
        ncpu = tinybpf.possible_cpus()
        for k in range(N):
            structs[k] = Pair(k, -(k % 1000))
            percpu[k] = [k + c for c in range(ncpu)]
            array[k] = -k
        got = {k: (v.a, v.b) for k, v in structs.items()}
        assert got == {k: (k, -(k % 1000)) for k in range(N)}
        assert dict(percpu.items()) == {k: [k + c for c in range(ncpu)] for k in range(N)}
        assert list(array.items()) == [(k, -k) for k in range(N)]
    finally:
        structs.close()
        percpu.close()
        array.close()


def test_to_numpy_of_a_map_of_several_batches(big_hash):
    np = pytest.importorskip("numpy")
    keys, values = big_hash.to_numpy()
    assert keys.dtype == np.uint32 and values.dtype == np.uint64
    assert len(keys) == len(values) == N
    # (compared in Python: under qemu's TCG numpy's argsort of these keys gave a wrong
    # order, with every key present once)
    assert dict(zip(keys.tolist(), values.tolist(), strict=True)) == {k: k * 7 for k in range(N)}


def test_values_written_during_the_iteration_are_old_or_new_never_torn(big_hash):
    """A writer thread rewrites every value while items() runs: each key is seen once,
    with its old or its new value."""
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            big_hash.update_batch({k: k * 7 + 1_000_000_007 for k in range(N)})

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(5):
            seen = {}
            for k, v in big_hash.items():
                assert k not in seen, f"key {k} seen twice"
                assert v in (k * 7, k * 7 + 1_000_000_007), (k, v)
                seen[k] = v
            assert len(seen) == N
    finally:
        stop.set()
        t.join()


def test_lookup_and_delete_batch_is_never_read_ahead(big_hash):
    """The thread would delete entries for batches the caller never takes."""
    got = big_hash.lookup_and_delete_batch()
    assert sorted(got) == [(k, k * 7) for k in range(N)]
    assert len(big_hash) == 0
    # stopped after one batch: no thread was started, and what was not given out is
    # still in the map
    big_hash.update_batch({k: k for k in range(N)})
    baseline = _tasks()
    batches = big_hash._iter_batch(big_hash._handle(), delete=True)
    keys, _ = next(batches)
    assert not _tasks() - baseline, "lookup_and_delete started a read-ahead thread"
    batches.close()
    assert len(big_hash) == N - len(keys)


def test_signals_reach_python_during_the_iteration(big_hash):
    """The caller's signal mask is left as it was, and SIGALRM every 0.5 ms while the
    thread runs reaches Python's handler (not the thread, which blocks it)."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    baseline = _tasks()
    hits = []
    old = signal.signal(signal.SIGALRM, lambda *a: hits.append(1))
    try:
        for _ in range(5):
            it = big_hash.items()
            next(it)
            assert len(_tasks() - baseline) == 1
            assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
            hits.clear()
            signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
            assert sum(1 for _ in it) == N - 1
            signal.setitimer(signal.ITIMER_REAL, 0)
            assert hits, "SIGALRM never reached Python's handler during the iteration"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _in_child(work: Callable[[], str], timeout: float = 60.0) -> str:
    """Fork, run ``work`` in the child, return what it returned (or the exception it
    raised); fail if the child does not finish within ``timeout``."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            os.close(r)
            try:
                msg = work()
            except BaseException as e:
                msg = f"{type(e).__name__}: {e}"
            os.write(w, msg.encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child did not finish within {timeout} s")
        with os.fdopen(r, "rb", closefd=False) as f:
            msg = f.read().decode()
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return msg


def test_a_child_forked_during_the_iteration_is_told_and_the_parent_goes_on(big_hash):
    it = big_hash.items()
    first = [next(it) for _ in range(10)]

    def child() -> str:
        list(it)
        return "no error"

    msg = _in_child(child)
    assert "BpfError" in msg and "fork()" in msg and "iterate again" in msg, msg
    rest = list(it)
    assert dict(first + rest) == {k: k * 7 for k in range(N)}


def test_a_child_forked_while_the_thread_is_in_a_lookup_can_close_the_map(big_hash):
    """A fork while the read-ahead thread is inside a batch lookup: in the child that
    lookup never finishes, and close() must not wait for it (it waited forever)."""
    stop = threading.Event()

    def iterate() -> None:
        while not stop.is_set():
            for _ in big_hash:
                pass

    t = threading.Thread(target=iterate)
    t.start()
    try:
        for _ in range(30):
            time.sleep(0.003)

            def child() -> str:
                big_hash.close()
                return "closed"

            assert _in_child(child, timeout=30) == "closed"
    finally:
        stop.set()
        t.join()


def test_without_a_thread_the_iteration_reads_on_its_own():
    """The thread cannot be created (the process dropped to a user at its RLIMIT_NPROC,
    so clone() fails with EAGAIN): items() still gives every entry, reading each batch
    on the caller's thread."""
    _needs_batches()
    reason = unprivileged_fd_use_unavailable_reason()
    if reason:
        pytest.skip(reason)
    code = f"""
import ctypes, os, resource, tinybpf
m = tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, {N}, key_type=ctypes.c_uint32,
                       value_type=ctypes.c_uint64)
m.update_batch({{k: k for k in range({N})}})
resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))
os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
tasks = len(os.listdir("/proc/self/task"))
it = m.items()
first = next(it)
print("tasks", len(os.listdir("/proc/self/task")) - tasks)
print("entries", len(dict([first, *it])))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tasks", "0", "entries", str(N)], out.stdout
