"""Map operations checked against a real kernel, with a program on the other side where one
can look: batch operations on 100k entries, iteration during concurrent deletes, per-CPU
values seen on each CPU, queue/stack order, BPF_F_LOCK, frozen maps, map-in-map swaps, LPM
trie and bloom filter lookups by a program, mmapable arrays, pinned-map reuse, user ring
buffers, stack traces, log2 histograms filled by a program and maps shared between objects.

Fixtures: tests/bpf/mapsfull_*.bpf.c. SYSCALL programs run through BPF_PROG_TEST_RUN and
answer in their (written back) context; XDP programs answer in the packet.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import shutil
import struct
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tinybpf
from tinybpf import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, BpfError, BpfMapType

pytestmark = pytest.mark.root

BPFFS = Path("/sys/fs/bpf")
ORDER = sys.byteorder
JOIN_TIMEOUT = 60.0


def possible_cpus() -> int:
    """Number of possible CPUs, read from sysfs (independently of the library)."""
    with open("/sys/devices/system/cpu/possible") as f:
        spec = f.read().strip()
    return max(int(p.partition("-")[2] or p) for p in spec.split(",")) + 1


NCPU = possible_cpus()


@pytest.fixture
def obj(obj_path) -> Iterator[tinybpf.BpfObject]:
    o = tinybpf.load(obj_path("mapsfull_main"))
    try:
        yield o
    finally:
        o.close()


@pytest.fixture
def pindir() -> Iterator[Path]:
    if not os.path.ismount(BPFFS):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf (run 'make mounts')")
    d = BPFFS / f"tinybpf-mapsfull-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_syscall(obj: tinybpf.BpfObject, prog: str, fmt: str, *args: int) -> tuple[int, ...]:
    """Run a SYSCALL program with the packed context; the context it wrote back, unpacked."""
    res = obj.program(prog).test_run(ctx=struct.pack(fmt, *args))
    assert res.retval == 0, f"{prog} returned {res.retval}"
    return struct.unpack(fmt, res.ctx)


def run_xdp(obj: tinybpf.BpfObject, prog: str, payload: bytes) -> bytes:
    """Run an XDP program on a 64-byte packet starting with payload; the packet out."""
    res = obj.program(prog).test_run(payload.ljust(64, b"\0"))
    assert res.retval == 2, f"{prog} returned {res.retval} (not XDP_PASS)"
    return res.data


class Thread(threading.Thread):
    """A thread that keeps the exception of its target for the test to re-raise."""

    def __init__(self, target, *args) -> None:
        super().__init__(target=self._run, daemon=True)
        self._fn = target
        self._args = args
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._fn(*self._args)
        except BaseException as e:  # re-raised by finish()
            self.error = e

    def finish(self) -> None:
        self.join(JOIN_TIMEOUT)
        assert not self.is_alive(), f"thread still running after {JOIN_TIMEOUT}s"
        if self.error is not None:
            raise self.error


# --------------------------------------------------------------------------- batch operations


def spread_keys(n: int) -> list[int]:
    """n distinct u32 keys spread over the whole range (an odd multiplier is a bijection)."""
    return [(i * 2654435761) % 2**32 for i in range(n)]


def test_batch_roundtrip_100k_hash(obj):
    m = obj.map("mf_big")
    keys = spread_keys(100_000)
    data = {k: (k * 3 + 1) % 2**64 for k in keys}
    assert m.update_batch(data) == 100_000
    got = m.lookup_batch()
    assert len(got) == 100_000
    assert dict(got) == data
    for k in keys[::9973]:  # the batch and single-element paths agree
        assert m[k] == data[k]

    gone, kept = keys[:50_000], keys[50_000:]
    assert m.delete_batch(gone) == 50_000
    assert dict(m.lookup_batch()) == {k: data[k] for k in kept}
    for k in gone[::4999]:
        assert m.lookup(k) is None

    drained = m.lookup_and_delete_batch()
    assert len(drained) == 50_000
    assert dict(drained) == {k: data[k] for k in kept}
    assert m.lookup_batch() == []
    assert list(m.keys()) == []
    assert m.lookup_and_delete_batch() == []


def test_batch_update_past_capacity_stops_with_e2big(obj):
    """One batch of 100001 entries into a 100000-entry hash: the kernel writes 100000, then
    fails; the error says how many were written."""
    m = obj.map("mf_big")
    keys = spread_keys(100_001)
    with pytest.raises(BpfError) as ei:
        m.update_batch((k, k) for k in keys)
    assert ei.value.errno == errno.E2BIG
    assert "after 100000 of 100001 entries" in str(ei.value)
    assert len(m.lookup_batch()) == 100_000
    assert m.lookup(keys[100_000]) is None
    assert m[keys[99_999]] == keys[99_999]


def test_batch_update_elem_flags_other_than_lock_rejected(obj):
    """The kernel takes only BPF_F_LOCK as elem_flags of a batch update: BPF_NOEXIST is
    EINVAL before any element is written."""
    m = obj.map("mf_big")
    m[30] = 300
    with pytest.raises(BpfError) as ei:
        m.update_batch([(10, 1), (20, 2), (30, 3)], flags=BPF_NOEXIST)
    assert ei.value.errno == errno.EINVAL
    assert dict(m.items()) == {30: 300}


def test_batch_update_rejected_batch_reports_no_entries_written(obj):
    m = obj.map("mf_big")
    with pytest.raises(BpfError) as ei:
        m.update_batch([(10, 1), (20, 2), (30, 3)], flags=BPF_NOEXIST)
    assert list(m.keys()) == []
    assert "after 3 entries" not in str(ei.value)


def test_batch_roundtrip_100k_array(obj):
    m = obj.map("mf_big_arr")
    data = {i: i * 7 + 5 for i in range(100_000)}
    assert m.update_batch(data) == 100_000
    got = m.lookup_batch()
    assert len(got) == 100_000
    assert dict(got) == data
    assert m[99_999] == 99_999 * 7 + 5
    with pytest.raises(BpfError):  # array elements cannot be deleted
        m.delete_batch([1, 2])
    assert m[1] == 12


def test_batch_percpu_hash(obj):
    m = obj.map("mf_pcpu_hash")
    data = {k: [k * 100 + cpu for cpu in range(NCPU)] for k in range(1, 501)}
    assert m.update_batch(data) == 500
    got = dict(m.lookup_batch())
    assert got == data
    assert m.lookup_percpu_sum(7) == sum(700 + cpu for cpu in range(NCPU))
    assert m.update_batch({1000: 9}) == 1  # one value for every CPU
    assert m[1000] == [9] * NCPU
    drained = dict(m.lookup_and_delete_batch())
    assert drained == {**data, 1000: [9] * NCPU}
    assert list(m.keys()) == []


@pytest.mark.parametrize("map_type", ["PERCPU_ARRAY", "ARRAY"])
def test_lookup_and_delete_batch_on_an_array_says_why(map_type):
    with tinybpf.create_map(map_type, 4, 8, 4, name="arr") as m:
        assert m.update_batch({0: 1, 1: 2}) == 2  # batches work on arrays...
        assert len(m.lookup_batch()) == 4
        with pytest.raises(tinybpf.BpfNotSupportedError) as ei:
            m.lookup_and_delete_batch()  # ...deleting does not
        msg = ei.value.message
        assert f"does not support lookup_and_delete on {map_type} maps" in msg
        assert "no batch operations" not in msg


def test_lookup_and_delete_single_key(obj):
    m = obj.map("mf_big")
    m[5] = 55
    assert m.lookup_and_delete(5) == 55
    assert m.lookup(5) is None
    assert m.lookup_and_delete(5) is None


# --------------------------------------------------------------------------- iteration vs deletes


def test_hash_iteration_while_another_thread_deletes(obj):
    """keys() and items() (batch lookups) terminate while another thread deletes every
    entry, and give a subset of what was there with the values that were stored."""
    m = obj.map("mf_big")
    keys = spread_keys(50_000)
    m.update_batch({k: (k * 3) % 2**64 for k in keys})
    order = list(keys)
    random.Random(1).shuffle(order)
    start = threading.Event()

    def deleter() -> None:
        start.wait(JOIN_TIMEOUT)
        for k in order:
            m.delete(k)

    t = Thread(deleter)
    t.start()
    start.set()
    seen_keys = list(m.keys())
    seen_items = list(m.items())
    t.finish()
    original = set(keys)
    assert set(seen_keys) <= original
    assert len(seen_keys) == len(set(seen_keys))
    assert {k for k, _ in seen_items} <= original
    assert all(v == (k * 3) % 2**64 for k, v in seen_items)
    assert list(m.keys()) == []


def test_trie_iteration_while_another_thread_deletes(obj):
    """An LPM trie iterates with get_next_key (which restarts when the current key is
    deleted): the walk still terminates with a subset, each key once."""
    m = obj.map("mf_trie")
    keys = [tinybpf.lpm_key(f"10.{i // 256}.{i % 256}.0/24") for i in range(4000)]
    for i, k in enumerate(keys):
        m[k] = i
    start = threading.Event()

    def deleter() -> None:
        start.wait(JOIN_TIMEOUT)
        for k in reversed(keys):
            m.delete(k)

    t = Thread(deleter)
    t.start()
    start.set()
    seen = [bytes(k) for k in m.keys()]  # noqa: SIM118 - keys() itself is under test
    seen_items = [(bytes(k), v) for k, v in m.items()]
    t.finish()
    index = {k: i for i, k in enumerate(keys)}
    assert set(seen) <= set(keys)
    assert len(seen) == len(set(seen))
    assert all(index[k] == v for k, v in seen_items)
    assert list(m.keys()) == []


# --------------------------------------------------------------------------- per-CPU values


def allowed_cpus() -> list[int]:
    cpus = sorted(os.sched_getaffinity(0))
    if not cpus:
        pytest.skip("no CPU in this thread's affinity mask")
    return cpus


def trigger_on_each_cpu(obj: tinybpf.BpfObject, cpus: list[int], calls) -> None:
    """Pin this thread to each CPU in turn and make calls(cpu) getpid() calls there."""
    before = os.sched_getaffinity(0)
    link = obj.program("percpu_copy").attach()
    try:
        obj.map("mf_tid")[0] = threading.get_native_id()
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            assert os.sched_getaffinity(0) == {cpu}
            for _ in range(calls(cpu)):
                os.getpid()
        obj.map("mf_tid")[0] = 0
    finally:
        os.sched_setaffinity(0, before)
        link.destroy()


def test_percpu_list_write_seen_by_program_on_each_cpu(obj):
    cpus = allowed_cpus()
    values = [1000 + 7 * cpu for cpu in range(NCPU)]
    obj.map("mf_pcpu_in")[0] = values
    trigger_on_each_cpu(obj, cpus, lambda cpu: cpu + 1)
    seen = dict(obj.map("mf_seen").items())
    assert seen == {cpu: values[cpu] for cpu in cpus}
    # the program's per-CPU counter: cpu + 1 calls on each CPU the thread ran on
    assert obj.map("mf_pcpu_cnt")[0] == [cpu + 1 if cpu in cpus else 0 for cpu in range(NCPU)]
    assert obj.map("mf_pcpu_cnt").lookup_percpu_sum(0) == sum(cpu + 1 for cpu in cpus)


def test_percpu_broadcast_write_seen_by_program_on_each_cpu(obj):
    cpus = allowed_cpus()
    obj.map("mf_pcpu_in")[0] = 4242
    assert obj.map("mf_pcpu_in")[0] == [4242] * NCPU
    trigger_on_each_cpu(obj, cpus, lambda cpu: 1)
    assert dict(obj.map("mf_seen").items()) == {cpu: 4242 for cpu in cpus}


# --------------------------------------------------------------------------- queue / stack


def u32s(m: tinybpf.BpfMap) -> tinybpf.BpfMap:
    """Queue/stack maps have no BTF value type: a view reading u32 values."""
    return m.typed(value=ctypes.c_uint32)


def drain(m: tinybpf.BpfMap) -> list[int]:
    out = []
    for _ in range(m.max_entries + 1):
        v = m.pop()
        if v is None:
            return out
        out.append(v)
    raise AssertionError(f"{m.name} still not empty after {len(out)} pops")


def test_queue_fifo_and_stack_lifo_from_python(obj):
    q, s = u32s(obj.map("mf_queue")), u32s(obj.map("mf_stack"))
    for v in range(1, 9):
        q.push(v)
        s.push(v)
    assert q.peek() == 1
    assert s.peek() == 8
    assert q.peek() == 1  # peek does not pop
    for m in (q, s):
        with pytest.raises(BpfError) as ei:
            m.push(9)
        assert ei.value.errno == errno.E2BIG
    # BPF_EXIST on a full map drops the oldest element
    q.push(99, BPF_EXIST)
    s.push(99, BPF_EXIST)
    assert drain(q) == [2, 3, 4, 5, 6, 7, 8, 99]
    assert drain(s) == [99, 8, 7, 6, 5, 4, 3, 2]
    assert q.pop() is None and s.pop() is None
    assert q.peek() is None and s.peek() is None


@pytest.mark.parametrize("name", ["mf_queue", "mf_stack"])
def test_queue_and_stack_refuse_keys(obj, name):
    """Issue 14 item 1: a key given to a queue or stack is an error naming push/pop/peek,
    never ignored (``99 in q`` was True, ``q[0]`` the head, ``q[99] = 5`` a push)."""
    m = u32s(obj.map(name))
    m.push(7)
    attempts = [
        lambda: 99 in m,
        lambda: m[0],
        lambda: m[None],
        lambda: m.__setitem__(99, 5),
        lambda: m.__delitem__(0),
        lambda: m.get(0),
        lambda: m.lookup(0),
        lambda: m.update(1, 5),
        lambda: m.delete(0),
        lambda: m.lookup_and_delete(0),
    ]
    for attempt in attempts:
        with pytest.raises(TypeError, match=r"has no keys.*push\(value\), pop\(\) or peek\(\)"):
            attempt()
    # nothing was pushed or popped by the refused calls
    assert drain(m) == [7]
    # no key (None) is still the kernel's peek/pop
    m.push(8)
    assert m.lookup(None) == 8
    assert m.lookup_and_delete(None) == 8


def test_program_pushes_python_pops(obj):
    _, _, err = run_syscall(obj, "push_seq", "<IIi", 10, 5, 0)
    assert err == 0
    assert drain(u32s(obj.map("mf_queue"))) == [10, 11, 12, 13, 14]
    assert drain(u32s(obj.map("mf_stack"))) == [14, 13, 12, 11, 10]
    # a program pushing past the capacity (8) gets E2BIG
    _, _, err = run_syscall(obj, "push_seq", "<IIi", 1, 9, 0)
    assert err == -errno.E2BIG
    assert drain(u32s(obj.map("mf_queue"))) == list(range(1, 9))


def test_python_pushes_program_pops(obj):
    q, s = u32s(obj.map("mf_queue")), u32s(obj.map("mf_stack"))
    for v in (1, 2, 3):
        q.push(v)
        s.push(v)
    popped = [run_syscall(obj, "pop_both", "<IIii", 0, 0, 0, 0) for _ in range(4)]
    assert popped[:3] == [(1, 3, 0, 0), (2, 2, 0, 0), (3, 1, 0, 0)]
    assert popped[3][2:] == (-errno.ENOENT, -errno.ENOENT)


# --------------------------------------------------------------------------- BPF_F_LOCK


LVAL = struct.Struct("<IIQQ")  # struct lval: bpf_spin_lock, tag, a, b


def test_spin_lock_value_update_and_lookup_with_f_lock(obj):
    m = obj.map("mf_locked")
    m.update(0, LVAL.pack(0, 7, 5, 10), flags=BPF_F_LOCK)
    v = m.lookup(0, flags=BPF_F_LOCK)
    assert (v.tag, v.a, v.b) == (7, 5, 10)
    assert [f[0] for f in type(v)._fields_] == ["lock", "tag", "a", "b"]
    # replace only: BPF_F_LOCK | BPF_EXIST on a missing key
    with pytest.raises(BpfError) as ei:
        m.update(1, LVAL.pack(0, 1, 1, 2), flags=BPF_F_LOCK | BPF_EXIST)
    assert ei.value.errno == errno.ENOENT
    # batch updates take BPF_F_LOCK as their element flag
    assert m.update_batch({1: LVAL.pack(0, 8, 1, 2), 2: LVAL.pack(0, 9, 3, 6)}, BPF_F_LOCK) == 2
    assert [(v.tag, v.a, v.b) for v in (m.lookup(k, flags=BPF_F_LOCK) for k in (1, 2))] == [
        (8, 1, 2),
        (9, 3, 6),
    ]
    # the program's increments are seen through a locked lookup
    res = obj.program("lock_inc").test_run(b"\0" * 64, repeat=100)
    assert res.retval == 2
    v = m.lookup(0, flags=BPF_F_LOCK)
    assert (v.tag, v.a, v.b) == (7, 105, 210)


def test_f_lock_on_map_without_spin_lock_is_einval(obj):
    m = obj.map("mf_big")
    with pytest.raises(BpfError) as ei:
        m.update(1, 1, flags=BPF_F_LOCK)
    assert ei.value.errno == errno.EINVAL
    m[1] = 1
    with pytest.raises(BpfError) as ei:
        m.lookup(1, flags=BPF_F_LOCK)
    assert ei.value.errno == errno.EINVAL


def test_spin_lock_program_concurrent_with_python(obj):
    """The program adds 1 to a and 2 to b under bpf_spin_lock while Python reads (and
    then also writes) the value with BPF_F_LOCK: every read sees b == 2 * a."""
    m = obj.map("mf_locked")
    m.update(0, LVAL.pack(0, 1, 0, 0), flags=BPF_F_LOCK)
    runs, repeat = 4, 250_000
    prog = obj.program("lock_inc")

    def hammer() -> None:
        for _ in range(runs):
            assert prog.test_run(b"\0" * 64, repeat=repeat).retval == 2

    # phase 1: Python only reads; a grows monotonically up to runs * repeat
    t = Thread(hammer)
    t.start()
    reads, last = 0, 0
    while t.is_alive() and reads < 200_000:
        v = m.lookup(0, flags=BPF_F_LOCK)
        assert v.b == 2 * v.a, f"torn read: a={v.a} b={v.b}"
        assert v.a >= last
        last = v.a
        reads += 1
    t.finish()
    v = m.lookup(0, flags=BPF_F_LOCK)
    assert (v.tag, v.a, v.b) == (1, runs * repeat, 2 * runs * repeat)

    # phase 2: Python also writes consistent values under the lock
    t = Thread(hammer)
    t.start()
    writes = 0
    while t.is_alive() and writes < 100_000:
        m.update(0, LVAL.pack(0, 2, writes, 2 * writes), flags=BPF_F_LOCK)
        v = m.lookup(0, flags=BPF_F_LOCK)
        assert v.b == 2 * v.a, f"torn read: a={v.a} b={v.b}"
        assert v.tag == 2
        writes += 1
    t.finish()
    v = m.lookup(0, flags=BPF_F_LOCK)
    assert v.b == 2 * v.a and v.tag == 2


# --------------------------------------------------------------------------- frozen maps


FROZEN = "<IIQII"  # idx, found, value, write, pad


def test_frozen_map_rejects_python_writes_program_still_reads(obj):
    m = obj.map("mf_frozen")
    m[0] = 11
    m[1] = 22
    m.freeze()
    for write in (lambda: m.update(0, 5), lambda: m.update_batch({2: 3})):
        with pytest.raises(BpfError) as ei:
            write()
        assert ei.value.errno == errno.EPERM
    assert m[0] == 11  # reads still work
    assert dict(m.items()) == {0: 11, 1: 22, 2: 0, 3: 0}
    assert run_syscall(obj, "frozen_access", FROZEN, 1, 0, 0, 0, 0)[1:3] == (1, 22)
    # the freeze is for user space only: the program may still write
    assert run_syscall(obj, "frozen_access", FROZEN, 2, 0, 33, 1, 0)[1:3] == (1, 33)
    assert m[2] == 33
    with pytest.raises(BpfError) as ei:  # already frozen (EPERM on 6.x: no write access)
        m.freeze()
    assert ei.value.errno in (errno.EPERM, errno.EBUSY)


# --------------------------------------------------------------------------- map in map


MIM = "<IIIIQ"  # slot, idx, has_inner, has_value, value


@pytest.fixture
def mim(obj_path) -> Iterator[tuple[tinybpf.BpfObject, tinybpf.BpfMap, tinybpf.BpfMap]]:
    """The map-in-map object (its HASH_OF_MAPS given a template) and two inner arrays."""
    with tinybpf.create_map(BpfMapType.ARRAY, 4, 8, 4, name="mf_tmpl") as tmpl:
        o = tinybpf.open(obj_path("mapsfull_mim"))
        try:
            o.map("mf_outer_h").set_inner_map(tmpl)
            o.load()
        except BaseException:
            o.close()
            raise
    a = tinybpf.create_map(BpfMapType.ARRAY, 4, 8, 4, name="mf_inner_a", value_type=int)
    b = tinybpf.create_map(BpfMapType.ARRAY, 4, 8, 4, name="mf_inner_b", value_type=int)
    try:
        yield o, a, b
    finally:
        o.close()
        a.close()
        b.close()


def read_outer(o: tinybpf.BpfObject, slot: int, idx: int = 0, prog: str = "read_outer"):
    _, _, has_inner, has_value, value = run_syscall(o, prog, MIM, slot, idx, 0, 0, 0)
    if not has_inner:
        return "no inner map"
    return value if has_value else "no value"


def test_map_in_map_swap_changes_what_program_reads(mim):
    o, a, b = mim
    outer = o.map("mf_outer")
    a[0], b[0] = 111, 222
    assert read_outer(o, 0) == "no inner map"
    assert outer.inner_map(0) is None

    outer[0] = a
    assert read_outer(o, 0) == 111
    with outer.inner_map(0) as cur:
        assert cur.kernel_info().id == a.kernel_info().id == a.id
        assert cur.id != b.id
        cur[1] = 5  # writes through the opened inner map reach the program
    assert read_outer(o, 0, idx=1) == 5

    outer[0] = b
    assert read_outer(o, 0) == 222
    with outer.inner_map(0) as cur:
        assert cur.id == b.id
        assert cur.typed(value=ctypes.c_uint64)[0] == 222
    assert read_outer(o, 1) == "no inner map"
    assert read_outer(o, 0, idx=9) == "no value"

    del outer[0]
    assert read_outer(o, 0) == "no inner map"
    assert outer.inner_map(0) is None


def test_map_in_map_rejects_incompatible_inner(mim):
    o, _, _ = mim
    with (
        tinybpf.create_map(BpfMapType.HASH, 4, 8, 4, name="mf_wrong") as wrong,
        pytest.raises(BpfError) as ei,
    ):
        o.map("mf_outer")[0] = wrong
    assert ei.value.errno == errno.EINVAL
    assert o.map("mf_outer").inner_map(0) is None


def test_hash_of_maps_with_template_from_set_inner_map(mim):
    o, a, b = mim
    outer_h = o.map("mf_outer_h")
    a[2] = 7
    outer_h[70] = a
    outer_h[71] = b
    assert read_outer(o, 70, idx=2, prog="read_outer_h") == 7
    assert read_outer(o, 71, idx=2, prog="read_outer_h") == 0
    assert read_outer(o, 72, prog="read_outer_h") == "no inner map"
    assert outer_h.inner_map(70).id == a.id
    # libbpf creates map-in-maps without BTF key/value types: keys are raw u32s
    assert sorted(int.from_bytes(k, ORDER) for k in outer_h) == [70, 71]
    with pytest.raises(tinybpf.BpfPhaseError):
        outer_h.set_inner_map(a)


def test_hash_of_maps_without_template_fails_to_load(obj_path):
    o = tinybpf.open(obj_path("mapsfull_mim"))
    try:
        with pytest.raises(BpfError) as ei:
            o.load()
        assert "mf_outer_h" in str(ei.value)  # the libbpf log names the map
    finally:
        o.close()


# --------------------------------------------------------------------------- LPM trie


def lpm_probe(obj: tinybpf.BpfObject, addr: str) -> int | None:
    out = run_xdp(obj, "lpm_probe", bytes(map(int, addr.split("."))))
    v = int.from_bytes(out[4:8], ORDER)
    return None if v == 0xFFFFFFFF else v


def test_lpm_longest_prefix_match_in_program(obj):
    m = obj.map("mf_lpm")
    m[tinybpf.lpm_key("10.0.0.0/8")] = 8
    m[tinybpf.lpm_key("10.1.0.0/16")] = 16
    m[tinybpf.lpm_key("10.1.2.0", 24)] = 24
    m[tinybpf.lpm_key("192.168.7.7/32")] = 32
    cases = {
        "10.1.2.3": 24,
        "10.1.3.3": 16,
        "10.9.9.9": 8,
        "192.168.7.7": 32,
        "192.168.7.8": None,
        "11.0.0.1": None,
    }
    for addr, want in cases.items():
        assert lpm_probe(obj, addr) == want, addr
        assert m.lookup(tinybpf.lpm_key(addr)) == want, addr  # a /32 key from Python
    m[tinybpf.lpm_key("0.0.0.0/0")] = 1
    assert lpm_probe(obj, "11.0.0.1") == 1
    del m[tinybpf.lpm_key("10.1.0.0/16")]
    assert lpm_probe(obj, "10.1.3.3") == 8
    assert lpm_probe(obj, "10.1.2.3") == 24


# --------------------------------------------------------------------------- bloom filter


def bloom(obj: tinybpf.BpfObject, op: int, value: int) -> int:
    out = run_xdp(obj, "bloom_op", struct.pack("<II", op, value))
    return int.from_bytes(out[8:12], ORDER, signed=True)


def test_bloom_filter_python_and_program_agree(obj):
    m = obj.map("mf_bloom").typed(value=ctypes.c_uint32)
    py_values = [i * 7 + 3 for i in range(200)]
    prog_values = [1_000_000 + i for i in range(200)]
    for v in py_values:
        m.push(v)
    for v in prog_values:
        assert bloom(obj, 1, v) == 0  # the program adds them
    for v in py_values + prog_values:  # no false negatives, on either side
        assert m.contains(v), v
        assert bloom(obj, 0, v) == 0, v
    absent = [5_000_000 + i for i in range(300)]
    py_says = [m.contains(v) for v in absent]
    prog_says = [bloom(obj, 0, v) == 0 for v in absent]
    assert py_says == prog_says  # the same kernel lookup from both sides
    assert bloom(obj, 0, absent[py_says.index(False)]) == -errno.ENOENT
    assert py_says.count(False) >= 290  # 400 of 1000 slots used, 5 hashes: few false hits


def test_bloom_filter_membership_tests_the_value(obj):
    """Issue 14 item 1: ``v in bloom`` tests v (it tested nothing: any key was "in" a
    filter holding one value); keys are refused."""
    m = obj.map("mf_bloom").typed(value=ctypes.c_uint32)
    assert 0 not in m
    m.push(0)
    assert 0 in m
    absent = [12345 + i for i in range(50)]
    assert [v in m for v in absent] == [m.contains(v) for v in absent]
    assert sum(v in m for v in absent) < 10  # a few false positives at most
    for attempt in (lambda: m[0], lambda: m.__setitem__(0, 1), lambda: m.get(12345)):
        with pytest.raises(TypeError, match=r"BLOOM_FILTER: it has no keys.*push"):
            attempt()


# --------------------------------------------------------------------------- mmapable array


MMAP = "<IIQQ"  # idx, found, value, out


def test_mmap_array_written_through_mmap_read_by_program(obj):
    m = obj.map("mf_mmap")
    mm = m.mmap()
    try:
        for i in (0, 1, 100, 511):
            struct.pack_into("<Q", mm, 8 * i, 1000 + i)
        for i in (0, 1, 100, 511):
            assert run_syscall(obj, "mmap_access", MMAP, i, 0, 0, 0)[1:] == (1, 0, 1000 + i)
            assert m[i] == 1000 + i
        # program and syscall writes show in the mapping
        run_syscall(obj, "mmap_access", MMAP, 7, 0, 77, 0)
        assert struct.unpack_from("<Q", mm, 8 * 7)[0] == 77
        m[8] = 88
        assert struct.unpack_from("<Q", mm, 8 * 8)[0] == 88
    finally:
        mm.close()
    with pytest.raises(TypeError):
        obj.map("mf_frozen").mmap()


# --------------------------------------------------------------------------- user ring buffer


DRAIN = "<QQqQII"  # sum, count, ret, bad, small, pad


def drain_urb(obj: tinybpf.BpfObject, small: bool = False) -> dict[str, int]:
    s, c, ret, bad, _, _ = run_syscall(obj, "drain_urb", DRAIN, 0, 0, 0, 0, int(small), 0)
    return {"sum": s, "count": c, "ret": ret, "bad": bad}


def test_user_ringbuf_samples_summed_by_program(obj):
    values = [i * 3 + 1 for i in range(1000)]
    with tinybpf.BpfUserRingBuffer(obj.map("mf_urb")) as urb:
        for v in values[:-1]:
            urb.submit(v.to_bytes(8, ORDER))
        urb.submit(ctypes.c_uint64(values[-1]))
        assert drain_urb(obj) == {"sum": sum(values), "count": 1000, "ret": 1000, "bad": 0}
        assert drain_urb(obj) == {"sum": 0, "count": 0, "ret": 0, "bad": 0}
        urb.submit(b"\1\2\3\4")  # too short for the program's 8-byte read
        urb.submit((5).to_bytes(8, ORDER))
        assert drain_urb(obj) == {"sum": 5, "count": 1, "ret": 2, "bad": 1}


def test_user_ringbuf_full_until_program_drains(obj):
    with tinybpf.BpfUserRingBuffer(obj.map("mf_urb_small")) as urb:
        n = 0
        with pytest.raises(BpfError) as ei:
            for n in range(1, 10_000):  # n: how many fit, plus the one that did not
                urb.submit(n.to_bytes(8, ORDER))
        assert ei.value.errno == errno.ENOSPC
        fit = n - 1
        assert 0 < fit < 4096 // 8
        got = drain_urb(obj, small=True)
        assert got == {"sum": fit * (fit + 1) // 2, "count": fit, "ret": fit, "bad": 0}
        urb.submit((42).to_bytes(8, ORDER))  # room again
        assert drain_urb(obj, small=True)["sum"] == 42


# --------------------------------------------------------------------------- stack traces


def test_stack_traces_resolve_to_libc_and_kernel_symbols(obj_path):
    with tinybpf.load(obj_path("mapsfull_stack")) as o:
        link = o.program("getpid_stacks").attach()
        try:
            o.map("mf_tid")[0] = threading.get_native_id()
            os.getpid()
            o.map("mf_tid")[0] = 0
        finally:
            link.destroy()
        ids = o.map("mf_stack_ids")
        user_id, kernel_id = ids[0], ids[1]
        assert user_id >= 0, f"bpf_get_stackid(BPF_F_USER_STACK) failed: {user_id}"
        assert kernel_id >= 0, f"bpf_get_stackid(kernel) failed: {kernel_id}"
        stacks, kstacks = o.map("mf_stacks"), o.map("mf_kstacks")
        user = stacks.stack_trace(user_id)
        kernel = kstacks.stack_trace(kernel_id)
        assert stacks.stack_trace(user_id) == user  # stable
        unused = next(i for i in range(stacks.max_entries) if i != user_id)
        assert stacks.stack_trace(unused) == []
        with pytest.raises(TypeError):
            ids.stack_trace(0)

    assert user and all(0 < a < 2**63 for a in user)
    sym = tinybpf.Symbolizer()
    top = sym.resolve(user[0], pid=os.getpid())
    assert top is not None, f"user address {user[0]:#x} not in a file mapping"
    assert top.module is not None and top.module.startswith("libc"), str(top)
    assert "getpid" in top.name or "syscall" in top.name, str(top)

    assert kernel and all(a >= 2**63 for a in kernel)
    names = [s.name for s in sym.resolve_stack(kernel) if s is not None]
    assert len(names) == len(kernel), names
    assert any("syscall" in n for n in names), names
    assert tinybpf.ksym(kernel[0]) is not None


# --------------------------------------------------------------------------- log2 histogram


def test_log2_histogram_filled_by_program(obj):
    values = [0, 1, 1, 2, 3, 5, 7, 8, 100, 1000, 1000, 1023, 1 << 40]
    slots = []
    for v in values:
        _, slot, _ = run_syscall(obj, "hist_add", "<QII", v, 0, 0)
        slots.append(slot)
    assert slots == [0, 0, 0, 1, 1, 2, 2, 3, 6, 9, 9, 9, 31]  # slot 40 clamps to 31
    expected = [0] * 32
    for s in slots:
        expected[s] += 1
    hist = obj.map("mf_hist")
    assert [hist[i] for i in range(32)] == expected
    text = tinybpf.log2_hist_text(hist, "value")
    assert text == tinybpf.log2_hist_text(expected, "value")
    rows = {
        line.split(":")[0].strip(): int(line.split(":")[1].split()[0])
        for line in text.splitlines()[1:]
    }
    assert rows["0 -> 1"] == 3
    assert rows["2 -> 3"] == 2
    assert rows["4 -> 7"] == 2
    assert rows["8 -> 15"] == 1
    assert rows["16 -> 31"] == 0
    assert rows["64 -> 127"] == 1
    assert rows["512 -> 1023"] == 3
    assert rows["2147483648 -> 4294967295"] == 1
    assert len(rows) == 32


# --------------------------------------------------------------------------- pinned maps


ADD = "<IIQQ"  # idx, pad, amount, total


def test_pinned_map_reused_across_two_loads(obj_path, pindir):
    path = obj_path("mapsfull_pin_a")
    with tinybpf.load(path, pin_root_path=str(pindir)) as o:
        m = o.map("mf_pinned")
        assert m.pin_path == str(pindir / "mf_pinned")
        m[3] = {"id": 3, "delta": -4, "total": 10, "tag": b"first"}
        assert run_syscall(o, "add_total", ADD, 3, 0, 5, 0)[3] == 15
        first_id = m.id
    assert (pindir / "mf_pinned").exists()

    with tinybpf.load(path, pin_root_path=str(pindir)) as o:
        m = o.map("mf_pinned")
        assert m.id == first_id  # the same kernel map, not a new one
        v = m[3]
        assert (v.id, v.delta, v.total, v.tag) == (3, -4, 15, b"first")
        assert run_syscall(o, "add_total", ADD, 3, 0, 1, 0)[3] == 16
        assert m[0].total == 0


def test_pinned_map_definition_mismatch_is_a_clear_error(obj_path, pindir):
    with tinybpf.load(obj_path("mapsfull_pin_a"), pin_root_path=str(pindir)) as o:
        o.map("mf_pinned")[1] = {"id": 1, "delta": 0, "total": 1, "tag": b""}
    with pytest.raises(BpfError) as ei:
        tinybpf.load(obj_path("mapsfull_pin_b"), pin_root_path=str(pindir))
    text = str(ei.value)  # message and libbpf log
    assert ei.value.errno == errno.EINVAL
    assert "mf_pinned" in text, text
    assert "parameter mismatch" in text, text
    # the pinned map is untouched and still usable
    with tinybpf.load(obj_path("mapsfull_pin_a"), pin_root_path=str(pindir)) as o:
        assert o.map("mf_pinned")[1].total == 1


def test_open_pinned_map_decodes_struct_fields_from_kernel_btf(obj_path, pindir):
    with tinybpf.load(obj_path("mapsfull_pin_a"), pin_root_path=str(pindir)) as o:
        o.map("mf_pinned")[2] = {"id": 2, "delta": -9, "total": 2**40, "tag": b"tagged"}
        with tinybpf.open_pinned_map(str(pindir / "mf_pinned")) as pm:
            assert pm.is_standalone
            assert pm.name == "mf_pinned"
            v = pm[2]
            assert [f[0] for f in type(v)._fields_] == ["id", "delta", "total", "tag"]
            assert (v.id, v.delta, v.total, v.tag) == (2, -9, 2**40, b"tagged")
            assert pm.btf_value is not None and pm.btf_value.name == "pval"
            pm[4] = {"id": 4, "delta": -1, "total": 7, "tag": b"py"}
            assert run_syscall(o, "add_total", ADD, 4, 0, 3, 0)[3] == 10
            assert pm[4].total == 10
            assert o.map("mf_pinned")[4].delta == -1


# --------------------------------------------------------------------------- shared created map


KV = "<IIQ"  # key, found, value


def test_created_map_shared_by_two_objects_with_reuse_fd(obj_path):
    shared = tinybpf.create_map(
        BpfMapType.HASH, 4, 8, 64, name="mf_shared", key_type=int, value_type=int
    )
    objs = []
    try:
        for _ in range(2):
            o = tinybpf.open(obj_path("mapsfull_share"))
            objs.append(o)
            o.map("mf_shared").reuse_fd(shared.fd)
            o.load()
        writer, reader = objs
        assert writer.map("mf_shared").id == reader.map("mf_shared").id == shared.id

        assert run_syscall(writer, "put", KV, 5, 0, 99) is not None
        assert run_syscall(reader, "get", KV, 5, 0, 0)[1:] == (1, 99)
        assert shared[5] == 99
        shared[6] = 7
        assert run_syscall(writer, "get", KV, 6, 0, 0)[1:] == (1, 7)
        assert run_syscall(reader, "get", KV, 8, 0, 0)[1:] == (0, 0)
        with pytest.raises(tinybpf.BpfPhaseError):
            writer.map("mf_shared").reuse_fd(shared.fd)

        shared.close()  # the objects hold their own references
        run_syscall(reader, "put", KV, 9, 0, 1234)
        assert run_syscall(writer, "get", KV, 9, 0, 0)[1:] == (1, 1234)
        # reuse_fd adopts the created map's (absent) BTF: read through a typed view
        view = writer.map("mf_shared").typed(key=ctypes.c_uint32, value=ctypes.c_uint64)
        assert view[9] == 1234
    finally:
        for o in objs:
            o.close()
        shared.close()
