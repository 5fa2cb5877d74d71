"""Misuse never crashes and always raises the documented exception.

* Every operation of a closed object, map, program, link, ring/perf buffer, BTF and globals
  view raises BpfClosedError (a BpfError); metadata snapshots (names, types, sizes) stay
  readable, which the library documents.
* Wrong key/value types raise TypeError, wrong sizes and out-of-range ints ValueError,
  unknown names KeyError, the wrong map type for an operation TypeError/BpfError, the wrong
  phase BpfPhaseError.
* Double close, close from inside a callback, re-entrant poll (BpfError), and fds closed
  behind the library's back (os.close) end in exceptions, never in a crash; the later
  libbpf close of such an fd (EBADF) is harmless too.

Fixture: tests/bpf/rel_events.bpf.c (hash/array/per-CPU/ring/perf maps, a syscall and a
raw_tp producer run with test_run) and tests/bpf/rel_tiny.bpf.c (a raw tracepoint to attach).
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import socket
import struct
import subprocess
import sys
import textwrap

import pytest

import tinybpf
from tinybpf import (
    BpfClosedError,
    BpfError,
    BpfPerfBuffer,
    BpfPhaseError,
    BpfRingBuffer,
    Btf,
)

pytestmark = pytest.mark.root


def produce_ring(obj, n: int, start: int = 0, which: int = 0) -> None:
    obj.program("produce_ring").test_run(
        ctx=struct.pack("<IIQ", n, which, start), repeat=0, ctx_out_size=0
    )


def produce_perf(obj, n: int, start: int = 0) -> None:
    obj.program("produce_perf").test_run(ctx=struct.pack("<QQ", n, start), repeat=0, ctx_out_size=0)


@pytest.fixture
def ev(obj_path):
    o = tinybpf.load(obj_path("rel_events"))
    yield o
    o.close()


@pytest.fixture
def pinned_cpu():
    """Perf samples land in the ring of the CPU the producer ran on: stay on one CPU."""
    aff = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(aff)})
    yield min(aff)
    os.sched_setaffinity(0, aff)


def _check_raises(cases, exc=BpfClosedError):
    """Run every (label, thunk); collect the ones that do not raise ``exc``."""
    wrong = []
    for label, fn in cases:
        try:
            result = fn()
            if hasattr(result, "__next__"):  # generators run on first next()
                next(result, None)
        except exc:
            continue
        except Exception as e:
            wrong.append(f"{label}: raised {type(e).__name__}: {e}")
            continue
        wrong.append(f"{label}: returned {result!r}"[:200])
    return wrong


# --------------------------------------------------------------------------- after close


def test_object_after_close(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    obj.close()
    cases = [
        ("load()", lambda: obj.load()),
        ("globals", lambda: obj.globals),
        ("btf", lambda: obj.btf),
        ("register_type()", lambda: obj.register_type("rel_event", ctypes.c_uint64 * 2)),
    ]
    assert _check_raises(cases) == []
    # pure-Python metadata stays readable
    assert obj.closed and obj.name == "rel_events" and "h1" in obj.maps
    assert "closed" in repr(obj)


def test_map_after_object_close(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    h1, pc, a1 = obj.maps["h1"], obj.maps["ring_drops"], obj.maps["a1"]
    h1[1] = 10  # codecs and fd are cached now: the checks must not be skipped because of it
    h1.lookup(1)
    obj.close()
    cases = [
        ("lookup", lambda: h1.lookup(1)),
        ("[]", lambda: h1[1]),
        ("get", lambda: h1.get(1)),
        ("in", lambda: 1 in h1),
        ("update", lambda: h1.update(1, 2)),
        ("[]=", lambda: h1.__setitem__(1, 2)),
        ("delete", lambda: h1.delete(1)),
        ("del", lambda: h1.__delitem__(1)),
        ("keys", lambda: list(h1.keys())),
        ("values", lambda: list(h1.values())),
        ("items", lambda: list(h1.items())),
        ("iter", lambda: list(h1)),
        ("lookup_batch", lambda: h1.lookup_batch()),
        ("lookup_and_delete_batch", lambda: h1.lookup_and_delete_batch()),
        ("update_batch", lambda: h1.update_batch([(1, 2)])),
        ("delete_batch", lambda: h1.delete_batch([1])),
        ("lookup_and_delete", lambda: h1.lookup_and_delete(1)),
        ("freeze", lambda: h1.freeze()),
        ("fd", lambda: h1.fd),
        ("typed", lambda: h1.typed(key=ctypes.c_uint32)),
        ("btf_key", lambda: h1.btf_key),
        ("btf_value", lambda: h1.btf_value),
        ("pin", lambda: h1.pin("/sys/fs/bpf/tinybpf-never")),
        ("unpin", lambda: h1.unpin("/sys/fs/bpf/tinybpf-never")),
        ("pin_path", lambda: h1.pin_path),
        ("autocreate", lambda: h1.autocreate),
        ("is_internal", lambda: h1.is_internal),
        ("max_entries=", lambda: setattr(h1, "max_entries", 5)),
        ("reuse_fd", lambda: h1.reuse_fd(0)),
        ("lookup_percpu", lambda: pc.lookup_percpu(0)),
        ("lookup_percpu_sum", lambda: pc.lookup_percpu_sum(0)),
        ("items_percpu", lambda: list(pc.items_percpu())),
        ("push", lambda: a1.push(1)),
        ("pop", lambda: a1.pop()),
        ("peek", lambda: a1.peek()),
    ]
    assert _check_raises(cases) == []
    # documented: metadata is a snapshot that stays readable
    assert (h1.name, h1.key_size, h1.value_size, h1.max_entries) == ("h1", 4, 8, 1024)
    assert h1.type == tinybpf.BpfMapType.HASH
    assert h1.info.name == "h1"
    assert "h1" in repr(h1)


def test_standalone_map_after_close():
    standalone = tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, 16, name="rel_sa")
    view = standalone.typed(key=ctypes.c_uint32, value=ctypes.c_uint64)  # owns a dup'd fd
    standalone[3] = 4
    standalone.close()
    standalone.close()  # idempotent
    cases = [
        ("lookup", lambda: standalone.lookup(3)),
        ("update", lambda: standalone.update(3, 5)),
        ("delete", lambda: standalone.delete(3)),
        ("items", lambda: list(standalone.items())),
        ("fd", lambda: standalone.fd),
        ("typed", lambda: standalone.typed(key=ctypes.c_uint32)),
        ("pin", lambda: standalone.pin("/sys/fs/bpf/tinybpf-never")),
    ]
    assert _check_raises(cases, BpfError) == []
    assert _check_raises(cases[:6]) == []  # BpfClosedError, precisely
    assert view[3] == 4  # the view's own fd keeps the map
    view.close()


def test_program_after_object_close(obj_path, tmp_path):
    obj = tinybpf.load(obj_path("rel_events"))
    prog = obj.program("produce_ring")
    _ = prog.fd
    obj.close()
    s = socket.socket()
    try:
        cases = [
            ("fd", lambda: prog.fd),
            ("test_run", lambda: prog.test_run(ctx=bytes(16), repeat=0, ctx_out_size=0)),
            ("attach", lambda: prog.attach()),
            ("attach_kprobe", lambda: prog.attach_kprobe("do_nanosleep")),
            ("attach_tracepoint", lambda: prog.attach_tracepoint("syscalls", "sys_enter_getpid")),
            ("attach_raw_tracepoint", lambda: prog.attach_raw_tracepoint("task_rename")),
            ("attach_uprobe", lambda: prog.attach_uprobe("/bin/true", symbol="main")),
            ("attach_perf_event", lambda: prog.attach_perf_event(-1)),
            ("attach_cgroup", lambda: prog.attach_cgroup("/sys/fs/cgroup")),
            ("attach_netns", lambda: prog.attach_netns("/proc/self/ns/net")),
            ("attach_xdp", lambda: prog.attach_xdp("lo")),
            ("attach_tc", lambda: prog.attach_tc("lo")),
            ("attach_socket", lambda: prog.attach_socket(s)),
            ("attach_trace", lambda: prog.attach_trace()),
            ("attach_lsm", lambda: prog.attach_lsm()),
            ("attach_iter", lambda: prog.attach_iter()),
            ("pin", lambda: prog.pin("/sys/fs/bpf/tinybpf-never")),
            ("unpin", lambda: prog.unpin("/sys/fs/bpf/tinybpf-never")),
            ("autoload", lambda: prog.autoload),
            ("autoload=", lambda: setattr(prog, "autoload", False)),
            ("log_level", lambda: prog.log_level),
            ("insn_count", lambda: prog.insn_count),
            ("expected_attach_type", lambda: prog.expected_attach_type),
            ("set_attach_target", lambda: prog.set_attach_target("x")),
            ("kernel_info", lambda: prog.kernel_info()),
            ("verifier_log", lambda: prog.verifier_log),
            ("request_verifier_log", lambda: prog.request_verifier_log()),
        ]
        assert _check_raises(cases) == []
    finally:
        s.close()
    assert prog.name == "produce_ring" and prog.section == "syscall"
    assert prog.type == tinybpf.BpfProgType.SYSCALL  # snapshot
    assert "produce_ring" in repr(prog)


def test_link_after_destroy(obj_path):
    obj = tinybpf.load(obj_path("rel_tiny"))
    other = obj.program("raw_rename")
    link = other.attach()
    link.destroy()
    link.destroy()  # idempotent
    cases = [
        ("pin", lambda: link.pin("/sys/fs/bpf/tinybpf-never")),
        ("unpin", lambda: link.unpin()),
        ("detach", lambda: link.detach()),
        ("update_program", lambda: link.update_program(other)),
        ("info", lambda: link.info),
    ]
    assert _check_raises(cases, BpfError) == []
    assert link.destroyed and link.fd == -1 and link.pin_path is None
    assert "destroyed" in repr(link)
    obj.close()


def test_ring_buffer_after_close(ev):
    rb = BpfRingBuffer(ev.maps["rb"], lambda d: None)
    rb.close()
    rb.close()
    cases = [
        ("poll", lambda: rb.poll(0)),
        ("consume", lambda: rb.consume()),
        ("epoll_fd", lambda: rb.epoll_fd()),
        ("fileno", lambda: rb.fileno()),
        ("add", lambda: rb.add(ev.maps["tiny"], lambda d: None)),
    ]
    assert _check_raises(cases) == []
    assert "closed" in repr(rb)


async def test_ring_buffer_async_after_close(ev):
    rb = BpfRingBuffer(ev.maps["rb"], lambda d: None)
    rb.close()
    with pytest.raises(BpfClosedError):
        await rb.poll_async(10)


def test_ring_buffer_after_object_close(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    rb = BpfRingBuffer(obj.maps["rb"], lambda d: None)
    it = BpfRingBuffer(obj.maps["tiny"])
    obj.close()
    cases = [
        ("poll", lambda: rb.poll(0)),
        ("consume", lambda: rb.consume()),
        ("epoll_fd", lambda: rb.epoll_fd()),
        ("iterator poll", lambda: it.poll(0)),
    ]
    assert _check_raises(cases) == []
    rb.close()
    it.close()


def test_perf_buffer_after_close(ev):
    pb = BpfPerfBuffer(ev.maps["pb"], lambda cpu, d: None)
    pb.close()
    pb.close()
    cases = [
        ("poll", lambda: pb.poll(0)),
        ("consume", lambda: pb.consume()),
        ("epoll_fd", lambda: pb.epoll_fd()),
        ("fileno", lambda: pb.fileno()),
        ("buffer_count", lambda: pb.buffer_count),
    ]
    assert _check_raises(cases) == []
    assert pb.lost == 0 and pb.page_count == 8


def test_perf_buffer_after_object_close(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    pb = BpfPerfBuffer(obj.maps["pb"], lambda cpu, d: None)
    obj.close()
    assert _check_raises([("poll", lambda: pb.poll(0)), ("consume", lambda: pb.consume())]) == []
    pb.close()


def test_object_btf_after_object_close(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    btf = obj.btf
    tid = btf.find("rel_event")
    obj.close()
    cases = [
        ("len", lambda: len(btf)),
        ("find", lambda: btf.find("rel_event")),
        ("type (not cached)", lambda: btf.type(tid)),
        ("resolve (not cached)", lambda: btf.resolve(tid)),
        ("find_struct", lambda: btf.find_struct("rel_event")),
        ("ctype", lambda: btf.ctype("rel_event")),
        ("struct_names", lambda: btf.struct_names()),
        ("to_c", lambda: btf.to_c()),
        ("iter", lambda: list(btf)),
    ]
    assert _check_raises(cases) == []
    assert btf.closed


def test_standalone_btf_after_close(obj_path):
    btf = Btf.from_file(obj_path("rel_events"))
    btf.close()
    btf.close()
    cases = [
        ("len", lambda: len(btf)),
        ("find", lambda: btf.find("rel_event")),
        ("type", lambda: btf.type(1)),
        ("resolve", lambda: btf.resolve(1)),
        ("find_struct", lambda: btf.find_struct("rel_event")),
        ("ctype", lambda: btf.ctype("rel_event")),
        ("enum", lambda: btf.enum("nope")),
        ("struct_names", lambda: btf.struct_names()),
        ("to_c", lambda: btf.to_c()),
    ]
    assert _check_raises(cases) == []
    assert "closed" in repr(btf)


def test_closed_btf_raises_for_types_read_before_close(obj_path):
    btf = Btf.from_file(obj_path("rel_events"))
    tid = btf.find("rel_event")
    btf.type(tid), btf.resolve(tid), btf.ctype("rel_event")  # now cached
    btf.close()
    cases = [
        ("type", lambda: btf.type(tid)),
        ("resolve", lambda: btf.resolve(tid)),
        ("ctype", lambda: btf.ctype("rel_event")),
    ]
    assert _check_raises(cases) == []


def test_globals_after_object_close(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    g = obj.globals
    bss = g[".bss"]
    assert g["produced_total"] == 0
    obj.close()
    cases = [
        ("globals[name]", lambda: g["produced_total"]),
        ("globals[name]=", lambda: g.__setitem__("produced_total", 1)),
        ("attribute", lambda: g.produced_total),
        ("section[name]", lambda: bss["produced_total"]),
        ("section[name]=", lambda: bss.__setitem__("produced_total", 1)),
        ("type_of", lambda: g.type_of("produced_total")),
        ("section.type_of", lambda: bss.type_of("produced_total")),
        ("obj.globals", lambda: obj.globals),
    ]
    wrong = _check_raises(cases)
    # attribute access goes through __getattr__, which may turn errors into AttributeError
    assert wrong == []
    assert "produced_total" in list(g)  # names stay listable


# --------------------------------------------------------------------------- types and sizes


def test_wrong_key_and_value_types(ev):
    h1 = ev.maps["h1"]  # u32 -> u64
    type_errors = [
        ("str key", lambda: h1["x"]),
        ("None key", lambda: h1[None]),
        ("list key", lambda: h1[[1]]),
        ("float key", lambda: h1[1.5]),
        ("str value", lambda: h1.update(1, "x")),
        ("float value", lambda: h1.update(1, 1.5)),
        ("dict value", lambda: h1.update(1, {"a": 1})),
        ("object key", lambda: h1.update(object(), 1)),
    ]
    assert _check_raises(type_errors, TypeError) == []
    value_errors = [
        ("short key", lambda: h1[b"\0\0"]),
        ("long key", lambda: h1[b"\0" * 8]),
        ("short value", lambda: h1.update(1, b"\0" * 4)),
        ("long value", lambda: h1.update(1, b"\0" * 9)),
        ("key 2**32", lambda: h1[2**32]),
        ("key -1 (unsigned)", lambda: h1[-1]),
        ("value 2**64", lambda: h1.update(1, 2**64)),
        ("value -1 (unsigned)", lambda: h1.update(1, -1)),
        ("huge int", lambda: h1.update(1, 10**100)),
        ("ctypes of wrong size", lambda: h1.update(1, ctypes.c_uint32(1))),
    ]
    assert _check_raises(value_errors, ValueError) == []
    assert list(h1.items()) == []  # nothing was written


def test_typed_view_rejects_wrong_types(ev):
    h1 = ev.maps["h1"]
    with pytest.raises((TypeError, BpfError)):
        h1.typed(key=ctypes.c_uint64)  # 8 bytes for a 4-byte key
    with pytest.raises(TypeError):
        h1.typed(value=str)
    v = h1.typed(key=ctypes.c_uint32, value=ctypes.c_uint64)
    with pytest.raises((TypeError, ValueError)):
        v[1] = "x"


def test_percpu_value_list_of_wrong_length(ev):
    pc = ev.maps["ring_drops"]  # PERCPU_ARRAY u32 -> u64
    n = tinybpf.possible_cpus()
    with pytest.raises(ValueError):
        pc[0] = [1] * (n + 1)
    with pytest.raises(ValueError):
        pc[0] = []
    pc[0] = [7] * n
    assert pc.lookup_percpu_sum(0) == 7 * n


def test_array_index_out_of_range(ev):
    a1 = ev.maps["a1"]  # 64 entries
    assert a1.get(64) is None
    with pytest.raises(KeyError):
        a1[64]
    with pytest.raises(BpfError) as ei:
        a1[64] = 1
    assert ei.value.errno == errno.E2BIG


def test_globals_wrong_types_and_ranges(obj_path):
    obj = tinybpf.open(obj_path("rel_events"))
    try:
        g = obj.globals
        with pytest.raises(TypeError):
            g["rel_magic"] = "seven"
        with pytest.raises(TypeError):
            g["rel_magic"] = 7.0
        with pytest.raises(ValueError):
            g["rel_magic"] = 2**32
        with pytest.raises(ValueError):
            g["rel_magic"] = -1
        with pytest.raises(ValueError):
            g["produced_total"] = b"\0" * 7
        g["rel_magic"] = 2**32 - 1
        obj.load()
        assert g["rel_magic"] == 2**32 - 1
        with pytest.raises(BpfPhaseError):
            g["rel_magic"] = 1  # .rodata is frozen after load
    finally:
        obj.close()


def test_unknown_names_raise_key_error(ev):
    g = ev.globals
    cases = [
        ("obj.map", lambda: ev.map("nope")),
        ("obj.maps[]", lambda: ev.maps["nope"]),
        ("obj.program", lambda: ev.program("nope")),
        ("obj.programs[]", lambda: ev.programs["nope"]),
        ("globals[]", lambda: g["nope"]),
        ("globals[section]", lambda: g[".nope"]),
        ("section[]", lambda: g[".bss"]["nope"]),
        ("globals.type_of", lambda: g.type_of("nope")),
        ("btf.find", lambda: ev.btf.find("nope")),
        ("btf.find_struct", lambda: ev.btf.find_struct("nope")),
        ("btf.ctype", lambda: ev.btf.ctype("nope")),
        ("btf.enum", lambda: ev.btf.enum("nope")),
        ("missing key", lambda: ev.maps["h1"][12345]),
        ("del missing key", lambda: ev.maps["h1"].__delitem__(12345)),
    ]
    assert _check_raises(cases, KeyError) == []
    with pytest.raises(AttributeError):
        g.nope  # noqa: B018
    with pytest.raises(BpfError):
        ev.btf.resolve(10**6)  # id out of range


def test_wrong_map_type_for_an_operation(ev):
    h1, rb, pb = ev.maps["h1"], ev.maps["rb"], ev.maps["pb"]
    type_errors = [
        ("lookup_percpu on HASH", lambda: h1.lookup_percpu(0)),
        ("items_percpu on HASH", lambda: list(h1.items_percpu())),
        ("stack_trace on HASH", lambda: h1.stack_trace(0)),
        ("inner_map on HASH", lambda: h1.inner_map(0)),
        ("mmap on HASH", lambda: h1.mmap()),
        ("map value in HASH", lambda: h1.update(1, ev.maps["a1"])),
        # a ring buffer has no keys: a key is refused, not passed on (issue 14 item 1)
        ("lookup on RINGBUF", lambda: rb.lookup(0)),
        ("update on RINGBUF", lambda: rb.update(0, 0)),
    ]
    assert _check_raises(type_errors, TypeError) == []
    bpf_errors = [
        ("BpfRingBuffer(HASH)", lambda: BpfRingBuffer(h1, lambda d: None)),
        ("BpfRingBuffer(PERF_EVENT_ARRAY)", lambda: BpfRingBuffer(pb, lambda d: None)),
        ("BpfPerfBuffer(RINGBUF)", lambda: BpfPerfBuffer(rb, lambda c, d: None)),
        ("BpfPerfBuffer(HASH)", lambda: BpfPerfBuffer(h1, lambda c, d: None)),
        ("lookup on RINGBUF", lambda: rb.lookup(None)),
        ("update on RINGBUF", lambda: rb.update(None, 0)),
        ("pop on HASH", lambda: h1.pop()),
        ("push on HASH", lambda: h1.push(1)),
        ("peek on HASH", lambda: h1.peek()),
        ("freeze twice", lambda: (ev.maps["a1"].freeze(), ev.maps["a1"].freeze())),
    ]
    assert _check_raises(bpf_errors, BpfError) == []


def test_wrong_phase(obj_path):
    obj = tinybpf.open(obj_path("rel_events"))
    try:
        cases = [
            ("map lookup before load", lambda: obj.maps["h1"].lookup(1)),
            ("map fd before load", lambda: obj.maps["h1"].fd),
            ("prog fd before load", lambda: obj.program("produce_ring").fd),
            ("attach before load", lambda: obj.program("produce_perf").attach()),
            ("test_run before load", lambda: obj.program("produce_ring").test_run()),
        ]
        assert _check_raises(cases, BpfPhaseError) == []
        obj.load()
        cases = [
            ("load twice", lambda: obj.load()),
            ("max_entries after load", lambda: setattr(obj.maps["h1"], "max_entries", 4)),
            ("autoload after load", lambda: setattr(obj.program("produce_ring"), "autoload", 0)),
            ("inner map after load", lambda: obj.maps["h1"].set_inner_map(0)),
        ]
        assert _check_raises(cases, BpfPhaseError) == []
    finally:
        obj.close()


# --------------------------------------------------------------------------- double close


def test_double_close_everything(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    tiny = tinybpf.load(obj_path("rel_tiny"))
    rb = BpfRingBuffer(obj.maps["rb"], lambda d: None)
    pb = BpfPerfBuffer(obj.maps["pb"], lambda c, d: None)
    link = tiny.program("raw_rename").attach()
    btf = Btf.from_file(obj_path("rel_events"))
    m = obj.maps["h1"].typed(key=ctypes.c_uint32)
    for _ in range(3):
        rb.close()
        pb.close()
        link.destroy()
        btf.close()
        m.close()
        obj.close()
        tiny.close()
    for _ in range(2):
        with obj:
            pass
    assert obj.closed and link.destroyed


def test_close_in_reverse_order_and_collect(obj_path):
    """Children outliving their object, collected in any order: no crash at collection."""
    code = textwrap.dedent(
        f"""
        import gc, struct, tinybpf
        obj = tinybpf.load({str(obj_path("rel_events"))!r})
        rb = tinybpf.BpfRingBuffer(obj.maps["rb"], lambda d: None)
        pb = tinybpf.BpfPerfBuffer(obj.maps["pb"], lambda c, d: None)
        m, p, btf = obj.maps["h1"], obj.program("produce_ring"), obj.btf
        obj.close()
        del obj
        gc.collect()
        for x in (rb, pb):
            try:
                x.poll(0)
            except tinybpf.BpfClosedError:
                pass
        del rb, pb, m, p, btf
        gc.collect()
        print("ok")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


# --------------------------------------------------------------------------- callbacks


def test_close_ring_buffer_from_its_callback(ev):
    got = []

    def cb(data):
        got.append(data)
        if len(got) == 3:
            rb.close()

    rb = BpfRingBuffer(ev.maps["rb"], cb)
    produce_ring(ev, 10)
    n = rb.poll(1000)
    assert n == 3 and len(got) == 3
    assert _check_raises([("poll", lambda: rb.poll(0)), ("consume", lambda: rb.consume())]) == []


def test_close_perf_buffer_from_its_callback(ev, pinned_cpu):
    got = []

    def cb(cpu, data):
        got.append(data)
        if len(got) == 2:
            pb.close()

    pb = BpfPerfBuffer(ev.maps["pb"], cb)
    produce_perf(ev, 10)
    pb.poll(1000)
    assert len(got) == 2
    with pytest.raises(BpfClosedError):
        pb.poll(0)


def test_close_object_from_a_ring_buffer_callback(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    got = []

    def cb(data):
        got.append(data)
        obj.close()

    rb = BpfRingBuffer(obj.maps["rb"], cb)
    produce_ring(obj, 5)
    try:
        rb.poll(1000)
    except BpfClosedError:
        pass
    assert len(got) >= 1
    with pytest.raises(BpfClosedError):
        rb.poll(0)
    rb.close()


def test_reentrant_poll_from_a_callback_raises(ev, pinned_cpu):
    seen = []

    def ring_cb(data):
        seen.append("ring")
        rb.poll(0)

    rb = BpfRingBuffer(ev.maps["rb"], ring_cb)
    produce_ring(ev, 3)
    with pytest.raises(BpfError, match="re-entrant"):
        rb.poll(1000)
    with pytest.raises(BpfError, match="re-entrant"):
        rb.consume()  # the next event, same story
    rb.close()

    def perf_cb(cpu, data):
        pb.consume()

    pb = BpfPerfBuffer(ev.maps["pb"], perf_cb)
    produce_perf(ev, 2)
    with pytest.raises(BpfError, match="re-entrant"):
        pb.poll(1000)
    pb.close()


def test_poll_of_another_buffer_from_a_callback_is_allowed(ev):
    inner = []
    other = BpfRingBuffer(ev.maps["tiny"], inner.append)

    def cb(data):
        other.consume()

    rb = BpfRingBuffer(ev.maps["rb"], cb)
    produce_ring(ev, 2, which=1)  # into tiny
    produce_ring(ev, 1)  # into rb
    assert rb.poll(1000) == 1
    assert len(inner) == 2
    rb.close()
    other.close()


# --------------------------------------------------------------------------- fds closed behind us


def test_map_fd_closed_behind_our_back(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    h1 = obj.maps["h1"]
    h1[1] = 1
    os.close(h1.fd)
    cases = [
        ("lookup", lambda: h1.lookup(1)),
        ("update", lambda: h1.update(1, 2)),
        ("delete", lambda: h1.delete(1)),
        ("items", lambda: list(h1.items())),
        ("keys", lambda: list(h1.keys())),
    ]
    wrong = _check_raises(cases, BpfError)
    assert wrong == []
    with pytest.raises(BpfError) as ei:
        h1.lookup(1)
    assert ei.value.errno == errno.EBADF
    obj.close()  # libbpf closes the fd again: EBADF, ignored


def test_ring_buffer_epoll_fd_closed_behind_our_back(ev):
    rb = BpfRingBuffer(ev.maps["rb"], lambda d: None)
    os.close(rb.epoll_fd())
    with pytest.raises(BpfError) as ei:
        rb.poll(10)
    assert ei.value.errno == errno.EBADF
    rb.close()  # ring_buffer__free closes it again


def test_perf_buffer_epoll_fd_closed_behind_our_back(ev):
    pb = BpfPerfBuffer(ev.maps["pb"], lambda c, d: None)
    os.close(pb.epoll_fd())
    with pytest.raises(BpfError) as ei:
        pb.poll(10)
    assert ei.value.errno == errno.EBADF
    pb.close()


def test_program_fd_closed_behind_our_back(obj_path):
    obj = tinybpf.load(obj_path("rel_events"))
    prog = obj.program("produce_ring")
    os.close(prog.fd)
    with pytest.raises(BpfError) as ei:
        prog.test_run(ctx=bytes(16), repeat=0, ctx_out_size=0)
    assert ei.value.errno == errno.EBADF
    with pytest.raises(BpfError):
        prog.attach_raw_tracepoint("task_rename")
    obj.close()


def test_link_fd_closed_behind_our_back(obj_path):
    obj = tinybpf.load(obj_path("rel_tiny"))
    link = obj.program("raw_rename").attach()
    os.close(link.fd)
    with pytest.raises(BpfError):
        link.info  # noqa: B018
    try:
        link.destroy()  # libbpf closes the fd again
    except BpfError as e:
        assert e.errno == errno.EBADF
    assert link.destroyed
    obj.close()


def test_everything_closed_behind_our_back_then_collected():
    """All fds gone, then the library's own cleanup (close, GC, exit): exit status 0."""
    from conftest import bpf_obj

    code = textwrap.dedent(
        f"""
        import gc, os, tinybpf
        obj = tinybpf.load({str(bpf_obj("rel_events"))!r})
        tiny = tinybpf.load({str(bpf_obj("rel_tiny"))!r})
        rb = tinybpf.BpfRingBuffer(obj.maps["rb"], lambda d: None)
        pb = tinybpf.BpfPerfBuffer(obj.maps["pb"], lambda c, d: None)
        link = tiny.program("raw_rename").attach()
        fds = [m.fd for m in obj.maps.values()] + [p.fd for p in obj.programs.values()]
        fds += [rb.epoll_fd(), pb.epoll_fd(), link.fd]
        for fd in set(fds):
            os.close(fd)
        del rb, pb, link
        gc.collect()
        print("ok")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "double free" not in p.stderr and "corrupted" not in p.stderr
    assert p.stdout.strip() == "ok"


def test_dropped_children_are_collected_without_warnings(ev):
    """Maps/programs are owned by the object: dropping the Python handles is silent."""
    import warnings

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for _ in range(10):
            m = ev.maps["h1"]
            p = ev.program("produce_ring")
            del m, p
        gc.collect()
    assert [x for x in w if issubclass(x.category, ResourceWarning)] == []
