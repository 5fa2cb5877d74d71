"""len(m), m.clear(), m.zero() and lookup_percpu_sum() of struct values, on maps a BPF
program writes (tests/bpf/ergo_maps.bpf.c counts this process's getpid() calls)."""

from __future__ import annotations

import ctypes
import os

import pytest
from helpers.kernel import tracepoint_unavailable_reason

import tinybpf
from tinybpf import BpfMapType

pytestmark = pytest.mark.root


@pytest.fixture
def maps(obj_path):
    reason = tracepoint_unavailable_reason("syscalls", "sys_enter_getpid")
    if reason:
        pytest.skip(reason)
    obj = tinybpf.load(obj_path("ergo_maps"))
    obj.globals["target_tgid"] = os.getpid()
    obj.attach_all()
    try:
        yield obj
    finally:
        obj.close()


def _getpid_on_every_cpu(times: int) -> list[int]:
    cpus = sorted(os.sched_getaffinity(0))
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            for _ in range(times):
                os.getpid()
    finally:
        os.sched_setaffinity(0, cpus)
    return cpus


def test_len_counts_what_the_program_inserted(maps):
    seen = maps.maps["seen"]
    assert len(seen) == 0
    for _ in range(7):
        os.getpid()
    assert len(seen) == 7
    seen[1000] = 1  # and what Python inserted
    assert len(seen) == 8
    assert bool(seen) and bool(maps.maps["seen"])  # a map is true whatever its size


def test_len_of_an_array_is_max_entries(maps):
    assert len(maps.maps["counts"]) == 4
    assert len(maps.maps["stats"]) == 2


def test_len_walks_the_keys_of_maps_without_batch_lookups():
    trie = tinybpf.create_map(BpfMapType.LPM_TRIE, 8, 4, 16, flags=tinybpf.BPF_F_NO_PREALLOC)
    try:
        assert len(trie) == 0
        trie[tinybpf.lpm_key("10.0.0.0/8")] = b"\x01\0\0\0"
        trie[tinybpf.lpm_key("10.1.0.0/16")] = b"\x02\0\0\0"
        assert len(trie) == 2
        trie.clear()
        assert len(trie) == 0 and list(trie.keys()) == []
    finally:
        trie.close()


def test_len_of_a_keyless_map_is_a_type_error(maps):
    with pytest.raises(TypeError, match="QUEUE maps have no keys"):
        len(maps.maps["queue"])


def test_clear_deletes_every_entry_the_program_wrote(maps):
    seen = maps.maps["seen"]
    for _ in range(5):
        os.getpid()
    assert len(seen) == 5
    seen.clear()
    assert len(seen) == 0 and dict(seen.items()) == {}
    seen.clear()  # an empty map: nothing to do


def test_clear_and_zero_of_arrays_zero_every_value(maps):
    counts = maps.maps["counts"]
    for _ in range(6):
        os.getpid()
    assert sum(counts.values()) == 6
    counts.clear()
    assert dict(counts.items()) == {0: 0, 1: 0, 2: 0, 3: 0}
    os.getpid()
    assert sum(counts.values()) == 1
    counts.zero()
    assert sum(counts.values()) == 0


def test_zero_of_a_percpu_array_zeroes_every_cpu(maps):
    _getpid_on_every_cpu(2)
    stats = maps.maps["stats"]
    assert stats.lookup_percpu_sum(0).calls > 0
    stats.zero()
    assert all(v.calls == 0 and v.bytes == 0 for v in stats.lookup_percpu(0))


def test_zero_of_a_hash_is_a_type_error(maps):
    with pytest.raises(TypeError, match="use clear"):
        maps.maps["seen"].zero()


def test_clear_empties_a_queue(maps):
    q = maps.maps["queue"]
    for i in range(3):
        q.push(i)
    q.clear()
    assert q.peek() is None


def test_lookup_percpu_sum_adds_struct_fields(maps):
    cpus = _getpid_on_every_cpu(3)
    stats = maps.maps["stats"]
    per_cpu = stats.lookup_percpu(0)
    busy = [v for v in per_cpu if v.calls]
    assert len(busy) == len(cpus)  # every CPU wrote its own copy
    total = stats.lookup_percpu_sum(0)
    assert type(total) is type(per_cpu[0])
    n = 3 * len(cpus)
    assert (total.calls, total.bytes, total.small, total.delta) == (n, 10 * n, n, -n)
    assert list(total.tag) == [0, 0, 0, 0]
    assert stats.lookup_percpu_sum(5) is None  # out of range: absent


def test_lookup_percpu_sum_refuses_a_field_overflow(maps):
    stats = maps.maps["stats"]
    ncpu = tinybpf.possible_cpus()
    if ncpu < 2:
        pytest.skip("one possible CPU: nothing to add up")
    value = stats.lookup_percpu(1)[0]
    value.small = 2**32 - 1
    stats[1] = value  # the same value on every CPU
    with pytest.raises(OverflowError, match="small"):
        stats.lookup_percpu_sum(1)


def test_lookup_percpu_sum_of_typed_ctypes_struct():
    class Pair(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint64), ("b", ctypes.c_int32), ("pad", ctypes.c_int32)]

    m = tinybpf.create_map(BpfMapType.PERCPU_HASH, 4, 16, 4)
    try:
        view = m.typed(key=ctypes.c_uint32, value=Pair)
        ncpu = tinybpf.possible_cpus()
        view[1] = [Pair(a=i, b=-i) for i in range(ncpu)]
        total = view.lookup_percpu_sum(1)
        assert isinstance(total, Pair)
        assert (total.a, total.b) == (sum(range(ncpu)), -sum(range(ncpu)))
        view.close()
    finally:
        m.close()
