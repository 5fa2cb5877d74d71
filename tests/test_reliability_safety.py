"""Memory safety under races, signals, re-entrancy and crafted input (issue 22).

One regression test per defect. Anything that crashed the interpreter runs in a child
interpreter, so a crash is a failed test (with the signal named), not a dead pytest. The
broader randomized load is tests/test_reliability_stress.py.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from conftest import bpf_obj
from helpers.kernel import bpffs

import tinybpf
from tinybpf import BpfClosedError, BpfError, Btf

TESTS = Path(__file__).resolve().parent


def run_child(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (the test's own tinybpf); fail on a signal."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), *sys.path]))
    try:
        p = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child did not finish within {timeout} s (a hang)")
    if p.returncode < 0:
        pytest.fail(
            f"the child died of {signal.Signals(-p.returncode).name}\n"
            f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-3000:]}"
        )
    assert p.returncode == 0, f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-3000:]}"
    return p


@pytest.fixture
def pindir():
    fs = bpffs()
    if fs is None:
        pytest.skip("no bpf filesystem mounted at /sys/fs/bpf (run 'make mounts')")
    d = fs / f"tinybpf-safety-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    yield d
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


# --- 1. const volatile globals after a load the verifier rejected -----------------------


@pytest.mark.root
def test_write_const_global_after_a_failed_load_raises():
    p = run_child(
        """
        import sys, tinybpf
        obj = tinybpf.open(sys.argv[1])
        obj.globals["limit"] = 5
        try:
            obj.load()
        except tinybpf.BpfError as e:
            print("load failed", type(e).__name__)
        print("read", obj.globals["limit"])
        for name in ("limit", "hits"):
            try:
                obj.globals[name] = 7
                print("wrote", name)
            except tinybpf.BpfPhaseError as e:
                print("refused", name)
        try:
            obj.load()
        except tinybpf.BpfPhaseError:
            print("second load refused")
        obj.close()
        """,
        str(bpf_obj("rel_rodata_reject")),
    )
    assert p.stdout.split("\n")[:5] == [
        "load failed BpfVerifierError",  # a verifier rejection (not a permission problem)
        "read 5",
        "refused limit",
        "refused hits",
        "second load refused",
    ], p.stdout


# --- 2. Btf.close() from another thread while a standalone Btf is read -------------------


def test_close_standalone_btf_while_another_thread_reads():
    p = run_child(
        """
        import threading, time, tinybpf
        outcomes = {"closed": 0, "ok": 0}
        for round in range(6):
            btf = tinybpf.Btf.from_vmlinux()
            started = threading.Event()
            def reader():
                started.set()
                try:
                    while True:
                        btf.to_c() if round % 2 else [btf.resolve(i) for i in range(1, 4000)]
                        outcomes["ok"] += 1
                except tinybpf.BpfClosedError:
                    outcomes["closed"] += 1
            t = threading.Thread(target=reader)
            t.start()
            started.wait()
            time.sleep(0.02 * (round % 3))
            btf.close()
            t.join(60)
            assert not t.is_alive()
        print(outcomes)
        assert outcomes["closed"] == 6
        """,
        timeout=120,
    )
    print(p.stdout)


# --- 3. BpfLink.pin()/detach() racing destroy() ----------------------------------------


@pytest.mark.root
def test_link_operations_race_destroy(pindir):
    p = run_child(
        """
        import os, sys, threading, tinybpf
        obj = tinybpf.load(sys.argv[1])
        prog = obj.program("raw_rename")
        pin = os.path.join(sys.argv[2], "l")
        errors = {}
        for i in range(150):
            link = prog.attach()
            barrier = threading.Barrier(2)
            def user(op=i % 3):
                barrier.wait()
                try:
                    if op == 0:
                        link.pin(pin)
                        link.unpin()
                    elif op == 1:
                        link.detach()
                    else:
                        link.info, link.fd, link.pin_path
                except tinybpf.BpfError as e:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            t = threading.Thread(target=user)
            t.start()
            barrier.wait()
            link.destroy()
            t.join()
            if os.path.exists(pin):
                os.unlink(pin)
        print(errors)
        obj.close()
        """,
        str(bpf_obj("rel_tiny")),
        str(pindir),
        timeout=120,
    )
    print(p.stdout)


# --- 4. BpfRingBuffer.add() while another thread polls ---------------------------------


@pytest.mark.root
def test_ring_add_while_polling_is_refused():
    obj = tinybpf.load(bpf_obj("rel_events"))
    try:
        rb = tinybpf.BpfRingBuffer(obj.maps["rb"], lambda e: 0)
        import threading

        polling = threading.Event()
        stop = threading.Event()

        def poller() -> None:
            while not stop.is_set():
                polling.set()
                rb.poll(50)

        t = threading.Thread(target=poller)
        t.start()
        polling.wait()
        refused = 0
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not refused:
            try:
                rb.add(obj.maps["tiny"], lambda e: 0)
            except BpfError as e:
                assert e.errno == errno.EBUSY
                assert "being polled" in str(e)
                refused += 1
            else:  # added between two polls: fine, but then try no more
                break
        stop.set()
        t.join()
        # from a callback of the buffer's own poll: always refused
        seen: list[BaseException] = []

        def cb(e):
            try:
                rb2.add(obj.maps["tiny"], lambda e: 0)
            except BpfError as exc:
                seen.append(exc)

        rb2 = tinybpf.BpfRingBuffer(obj.maps["rb"], cb)
        obj.program("produce_ring").test_run(
            ctx=struct.pack("<IIQ", 1, 0, 0), repeat=0, ctx_out_size=0
        )
        assert rb2.poll(1000) == 1
        assert len(seen) == 1 and seen[0].errno == errno.EBUSY
        rb.close()
        rb2.close()
    finally:
        obj.close()


# --- 5. a global written with a ctypes subclass that has more fields --------------------


@pytest.mark.root
def test_global_written_with_a_bigger_subclass_is_refused():
    p = run_child(
        """
        import ctypes, sys, tinybpf
        for loaded in (False, True):
            obj = tinybpf.open(sys.argv[1])
            if loaded:
                obj.load()
            g = obj.globals
            before = {n: g[n] for n in g if n != "last_task"}
            base = type(g["last_task"])
            class Bigger(base):
                _fields_ = [("extra", ctypes.c_char * 65536)]
            big = Bigger()
            ctypes.memset(ctypes.addressof(big), 0x41, ctypes.sizeof(big))
            try:
                g["last_task"] = big
                print("written")
            except ValueError as e:
                print("refused:", e)
            after = {n: g[n] for n in g if n != "last_task"}
            assert repr(before) == repr(after), (before, after)
            obj.close()
        """,
        str(bpf_obj("types_events")),
    )
    assert p.stdout.count("refused:") == 2, p.stdout


# --- 6. re-entrancy: close from a conversion hook or a signal handler -------------------


@pytest.mark.root
def test_close_from_fspath_during_pin(pindir):
    class ClosingPath:
        def __init__(self, target, close):
            self.target = target
            self.close = close
            self.calls = 0

        def __fspath__(self):
            self.calls += 1
            self.close()
            return self.target

    obj = tinybpf.load(bpf_obj("rel_tiny"))
    m = obj.maps["cnt"]
    path = ClosingPath(str(pindir / "m"), obj.close)
    try:
        m.pin(path)  # type: ignore[arg-type]
    except BpfClosedError:
        pass  # refused, or the pin was made and the object freed after it: both are fine
    assert path.calls >= 1
    assert obj.closed
    with pytest.raises(BpfClosedError):
        m.pin(str(pindir / "m2"))
    # the same for a link, destroyed from the hook of its own pin()
    obj = tinybpf.load(bpf_obj("rel_tiny"))
    link = obj.program("raw_rename").attach()
    lpath = ClosingPath(str(pindir / "l"), link.destroy)
    try:
        link.pin(lpath)  # type: ignore[arg-type]
    except BpfError:
        pass
    assert link.destroyed
    with pytest.raises(BpfClosedError):
        link.pin(str(pindir / "l2"))
    obj.close()


@pytest.mark.root
def test_close_from_index_of_a_setter_argument():
    class ClosingInt:
        def __init__(self, obj, value):
            self.obj = obj
            self.value = value

        def __index__(self):
            self.obj.close()
            return self.value

        __int__ = __index__

    for what in ("max_entries", "log_level"):
        obj = tinybpf.open(bpf_obj("rel_events"))
        target = obj.maps["h1"] if what == "max_entries" else obj.program("produce_ring")
        try:
            setattr(target, what, ClosingInt(obj, 64))
        except (BpfClosedError, TypeError):
            pass
        assert obj.closed
        with pytest.raises(BpfClosedError):
            setattr(target, what, 64)


@pytest.mark.root
def test_close_from_a_signal_handler_during_guarded_calls():
    """A handler that closes the object runs between bytecodes of a guarded call: the
    object is freed after that call, never under it."""
    p = run_child(
        """
        import signal, sys, tinybpf
        path = sys.argv[1]
        rounds = closed = 0
        state = {}
        def handler(sig, frame):
            o = state.get("obj")
            if o is not None:
                o.close()
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
        try:
            while rounds < 300:
                rounds += 1
                obj = state["obj"] = tinybpf.open(path)
                try:
                    g = obj.globals
                    for _ in range(20):
                        g["limit"] = 3
                        g["limit"]
                        obj.maps["values"].max_entries
                        obj.program("out_of_bounds").log_level = 1
                except tinybpf.BpfClosedError:
                    closed += 1
                finally:
                    state["obj"] = None
                    obj.close()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
        print(rounds, closed)
        """,
        str(bpf_obj("rel_rodata_reject")),
        timeout=120,
    )
    rounds, closed = map(int, p.stdout.split())
    assert rounds == 300 and closed > 0, p.stdout


# --- 7. crafted BTF: depth and cost limits -------------------------------------------------


def _btf_blob(types: bytes, strings: bytes) -> bytes:
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


def _ptr_chain(n: int) -> bytes:
    """[1] int, [2] typedef deep -> [3], [3] PTR -> [4], ... [n + 2] PTR -> [1]: n pointers
    deep, outermost first (btf_dump, which walks ids in order, recurses n deep: a
    SIGSEGV at 150,000 before the depth limit)."""
    types = [struct.pack("<IIII", 1, 1 << 24, 4, 32), struct.pack("<III", 5, 8 << 24, 3)]
    types += [struct.pack("<III", 0, 2 << 24, i + 4 if i < n - 1 else 1) for i in range(n)]
    return _btf_blob(b"".join(types), b"\0int\0deep\0")


def _struct_chain(n: int, innermost_first: bool) -> bytes:
    """n structs, each containing the next by value through a typedef, the innermost an
    int: outermost first (ids grow inwards) or innermost first."""
    strings = b"\0int\0s\0t\0m\0"
    off = {w: strings.index(w.encode() + b"\0") for w in ("int", "s", "t", "m")}
    types = [struct.pack("<IIII", off["int"], 1 << 24, 4, 32)]  # [1] int
    # struct k = id 2 + 2k, its typedef id 3 + 2k
    for k in range(n):
        sid, tid = 2 + 2 * k, 3 + 2 * k
        previous_typedef = 1 if k == 0 else sid - 1
        next_struct = tid + 1 if k < n - 1 else 1
        inner = previous_typedef if innermost_first else next_struct
        types.append(struct.pack("<III", off["s"], (4 << 24) | 1, 4))
        types.append(struct.pack("<III", off["m"], inner, 0))
        types.append(struct.pack("<III", off["t"], 8 << 24, sid))
    return _btf_blob(b"".join(types), strings)


def _union_lattice(levels: int) -> bytes:
    """union u_k { u_{k-1} a; u_{k-1} b; }: btf__align_of() visits 2**levels members."""
    strings = b"\0int\0u\0a\0b\0"
    off = {w: strings.index(w.encode() + b"\0") for w in ("int", "u", "a", "b")}
    types = struct.pack("<IIII", off["int"], 1 << 24, 4, 32)
    for k in range(levels):
        inner = k + 1
        types += struct.pack("<III", off["u"], (5 << 24) | 2, 4)
        types += struct.pack("<III", off["a"], inner, 0)
        types += struct.pack("<III", off["b"], inner, 0)
    return _btf_blob(types, strings)


def _far_member(bit_offset: int) -> bytes:
    """struct s { int a; int b; } (8 bytes) with b at ``bit_offset``: btf_dump prints the
    hole as one ``long: 64;`` line per 64 bits (fuzz case btf:1:44: 184 MB of C)."""
    strings = b"\0int\0s\0a\0b\0"
    off = {w: strings.index(w.encode() + b"\0") for w in ("int", "s", "a", "b")}
    types = struct.pack("<IIII", off["int"], 1 << 24, 4, 32)
    types += struct.pack("<III", off["s"], (4 << 24) | 2, 8)
    types += struct.pack("<III", off["a"], 1, 0) + struct.pack("<III", off["b"], 1, bit_offset)
    return _btf_blob(types, strings)


_BTF_CHILD = """
import sys, time, tinybpf
t0 = time.monotonic()
try:
    btf = tinybpf.Btf.from_file(sys.argv[1])
except tinybpf.BpfError as e:
    print("refused", round(time.monotonic() - t0, 2), e)
    sys.exit(0)
btf.to_c()
print("dumped", round(time.monotonic() - t0, 2))
"""


@pytest.mark.parametrize(
    ("name", "make", "limit"),
    [
        ("ptr_chain_150k", lambda: _ptr_chain(150_000), "depth limit"),
        ("struct_chain_outermost_first", lambda: _struct_chain(50_000, False), "depth limit"),
        ("struct_chain_innermost_first", lambda: _struct_chain(50_000, True), "depth limit"),
        ("union_lattice", lambda: _union_lattice(40), "cost limit"),
        ("member_at_bit_2_to_the_30", lambda: _far_member(1 << 30), "cost limit"),
    ],
)
def test_deep_or_costly_btf_is_refused(name, make, limit, tmp_path):
    path = tmp_path / f"{name}.btf"
    path.write_bytes(make())
    p = run_child(_BTF_CHILD, str(path), timeout=60)
    print(p.stdout)
    assert p.stdout.startswith("refused"), p.stdout
    assert limit in p.stdout
    assert float(p.stdout.split()[1]) < 5


def test_btf_just_under_the_depth_limit_dumps(tmp_path):
    path = tmp_path / "ok.btf"
    path.write_bytes(_ptr_chain(int(tinybpf._core.lib.TINYBPF_BTF_MAX_DEPTH) - 3))
    with Btf.from_file(path) as btf:
        assert "typedef int ****" in btf.to_c()


@pytest.mark.parametrize("command", [["btf", "dump"], ["vmlinux"]])
def test_cli_refuses_deep_btf(command, tmp_path):
    path = tmp_path / "deep.btf"
    path.write_bytes(_ptr_chain(150_000))
    argv = [sys.executable, "-m", "tinybpf", *command, str(path)]
    if command == ["vmlinux"]:
        argv += ["-o", str(tmp_path / "vmlinux.h")]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert p.returncode > 0, (p.returncode, p.stderr[-2000:])
    assert "depth limit" in p.stderr, p.stderr[-2000:]


def test_vmlinux_passes_the_limits():
    with Btf.from_vmlinux() as btf:
        assert len(btf) > 1000


# --- 8. btf_custom_path goes through the same check ------------------------------------


def _custom_task_btf(defect: str) -> bytes:
    """A 'kernel' BTF whose task_struct.tgid has a defect: a typedef that refers to itself,
    or a 0-byte INT as a bitfield."""
    strings = b"\0task_struct\0tgid\0pid_t\0int\0"
    off = {w: strings.index(w.encode() + b"\0") for w in ("task_struct", "tgid", "pid_t", "int")}
    if defect == "typedef_cycle":
        types = struct.pack("<III", off["task_struct"], (4 << 24) | 1, 8)
        types += struct.pack("<III", off["tgid"], 2, 0)
        types += struct.pack("<III", off["pid_t"], 8 << 24, 2)  # [2] typedef pid_t -> [2]
    else:
        # kind_flag set: the member offset holds (bitfield size << 24) | bit offset
        types = struct.pack("<III", off["task_struct"], (1 << 31) | (4 << 24) | 1, 8)
        types += struct.pack("<III", off["tgid"], 2, (3 << 24) | 0)
        types += struct.pack("<IIII", off["int"], 1 << 24, 0, 0)  # [2] a 0-byte int
    return _btf_blob(types, strings)


@pytest.mark.root
@pytest.mark.parametrize("defect", ["typedef_cycle", "zero_byte_int_bitfield"])
def test_btf_custom_path_is_checked(defect, tmp_path):
    path = tmp_path / f"{defect}.btf"
    path.write_bytes(_custom_task_btf(defect))
    p = run_child(
        """
        import sys, tinybpf
        try:
            obj = tinybpf.open(sys.argv[1], btf_custom_path=sys.argv[2])
            obj.load()
            print("loaded")
        except tinybpf.BpfError as e:
            print("refused", e.errno, e)
        """,
        str(bpf_obj("rel_core")),
        str(path),
        timeout=30,
    )
    print(p.stdout)
    assert p.stdout.startswith("refused"), p.stdout
    assert "btf_custom_path" in p.stdout and "malformed BTF" in p.stdout


# --- 10. element operations after a close never reach a map with the reused fd ----------


@pytest.mark.root
def test_operations_after_close_never_reach_the_new_map_with_the_same_fd():
    obj = tinybpf.load(bpf_obj("rel_events"))
    old = obj.maps["h1"]
    old[1] = 1  # fast paths built
    fd = old.fd
    made: list[tinybpf.BpfMap] = []

    def items():
        # runs inside update_batch(), after it took what it needs of the map: close the
        # object, then make maps until one gets the old map's fd number
        obj.close()
        for _ in range(64):
            made.append(tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, 16, name="other"))
            if made[-1].fd == fd:
                break
        yield 5, 5

    try:
        with pytest.raises(BpfClosedError):
            old.update_batch(items())
        new = made[-1]
        assert new.fd == fd  # the number was reused
        nt = new.typed(key=ctypes.c_uint32, value=ctypes.c_uint64)
        for op in (
            lambda: old.__setitem__(2, 2),
            lambda: old.update(3, 3),
            lambda: old.__getitem__(1),
            lambda: old.delete(1),
            lambda: list(old.items()),
            lambda: old.delete_batch([1]),
            lambda: old.lookup_and_delete(1),
        ):
            with pytest.raises(BpfClosedError):
                op()
        assert dict(nt.items()) == {}  # nothing landed on the other map
    finally:
        for m in made:
            m.close()


@pytest.mark.root
def test_fast_path_handle_is_revoked_by_close():
    """A thread that already holds the map's fast-path callables (read before the close)
    gets BpfClosedError from them, not an answer from whatever has the fd number now."""
    obj = tinybpf.load(bpf_obj("rel_events"))
    m = obj.maps["h1"]
    m[7] = 70
    iget, iset = m._iget, m._iset
    assert iget is not None and iset is not None
    obj.close()
    other = tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, 16, name="other")
    try:
        assert iset(7, 1) == tinybpf._core.lib.TINYBPF_CLOSED
        assert iget(7) == tinybpf._core.lib.TINYBPF_LOOKUP_AGAIN
        with pytest.raises(BpfClosedError):
            m[7]
        with pytest.raises(BpfClosedError):
            m[7] = 1
        assert list(other.typed(key=ctypes.c_uint32, value=ctypes.c_uint64).items()) == []
    finally:
        other.close()


# --- 11. a lookup from a signal handler does not change another lookup's answer ----------


@pytest.mark.root
def test_lookup_from_a_signal_handler_does_not_corrupt_a_miss():
    p = run_child(
        """
        import signal, sys, time, tinybpf
        obj = tinybpf.load(sys.argv[1])
        m = obj.maps["h1"]
        m[1] = 11
        def handler(sig, frame):
            m[1]  # a hit: the C side's outcome for this thread is "found"
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
        wrong = misses = 0
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 3:
                for _ in range(1000):
                    try:
                        v = m[2]
                        wrong += 1
                    except KeyError:
                        misses += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
        print(wrong, misses)
        obj.close()
        """,
        str(bpf_obj("rel_events")),
        timeout=60,
    )
    wrong, misses = map(int, p.stdout.split())
    assert misses > 1000
    assert wrong == 0, f"{wrong} of {wrong + misses} missing-key lookups returned a value"
