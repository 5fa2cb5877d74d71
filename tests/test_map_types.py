"""Map types and their BTF on a real kernel: metadata of every fixture map, LRU eviction, LPM
longest-prefix match, queue/stack metadata, array of maps, typedef'd and BTF-less keys and
values.

Fixture: tests/bpf/maps.bpf.c.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
from collections.abc import Iterator

import pytest

import tinybpf
from tinybpf import BpfError, BpfMapType, BtfKind

pytestmark = pytest.mark.root


@pytest.fixture
def obj(obj_path) -> Iterator[tinybpf.BpfObject]:
    o = tinybpf.load(obj_path("maps"))
    try:
        yield o
    finally:
        o.close()


def fdinfo(fd: int) -> dict[str, str]:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return {
            k.strip(): v.strip()
            for k, _, v in (line.partition(":") for line in f.read().splitlines())
        }


MAPS = [
    # name, type, key_size, value_size, max_entries
    ("cfg", BpfMapType.ARRAY, 4, 4, 1),
    ("counts", BpfMapType.HASH, 4, 8, 16384),
    ("arr", BpfMapType.ARRAY, 4, 8, 16),
    ("signed_map", BpfMapType.HASH, 4, 8, 64),
    ("struct_map", BpfMapType.HASH, 4, 32, 64),
    ("dbl", BpfMapType.HASH, 4, 8, 8),
    ("flt", BpfMapType.HASH, 4, 4, 8),
    ("pcpu_hash", BpfMapType.PERCPU_HASH, 4, 8, 64),
    ("pcpu_arr", BpfMapType.PERCPU_ARRAY, 4, 8, 4),
    ("lru", BpfMapType.LRU_HASH, 4, 8, 32),
    ("lru_pcpu", BpfMapType.LRU_PERCPU_HASH, 4, 4, 16),
    ("lpm", BpfMapType.LPM_TRIE, 8, 4, 16),
    ("queue", BpfMapType.QUEUE, 0, 4, 8),
    ("stack", BpfMapType.STACK, 0, 4, 8),
    ("small", BpfMapType.HASH, 4, 4, 4),
    ("tdef_map", BpfMapType.HASH, 4, 8, 16),
    ("pair_map", BpfMapType.HASH, 4, 8, 16),
    ("nobtf", BpfMapType.HASH, 4, 8, 16),
    ("inner_a", BpfMapType.ARRAY, 4, 4, 4),
    ("outer", BpfMapType.ARRAY_OF_MAPS, 4, 4, 2),
]


@pytest.mark.parametrize(("name", "mtype", "ks", "vs", "me"), MAPS, ids=[m[0] for m in MAPS])
def test_map_metadata_matches_kernel(obj, name, mtype, ks, vs, me):
    m = obj.map(name)
    assert m.name == name
    assert m.type == mtype
    assert (m.key_size, m.value_size, m.max_entries) == (ks, vs, me)
    assert m.info == tinybpf.MapInfo(name, mtype, ks, vs, me)
    base = f"<BpfMap '{name}' type={mtype.name} key_size={ks} value_size={vs}"
    hashlike = "HASH" in mtype.name and mtype != BpfMapType.HASH_OF_MAPS
    tail = f" entries={len(list(m.keys()))}>" if hashlike and me <= 1024 else ">"
    assert repr(m) == base + tail
    info = fdinfo(m.fd)
    assert int(info["map_type"]) == int(mtype)
    assert int(info["key_size"]) == ks
    assert int(info["value_size"]) == vs
    assert int(info["max_entries"]) == me


def test_maps_collection_lists_fixture_maps(obj):
    names = set(obj.maps)
    assert {m[0] for m in MAPS} <= names
    assert len(obj.maps) == len(names)


# --------------------------------------------------------------------------- BTF of maps


def test_btf_struct_value(obj):
    v = obj.map("struct_map").btf_value
    assert v.kind == BtfKind.STRUCT
    assert v.name == "rec"
    assert v.size == 32
    assert [(f.name, f.offset) for f in v.fields] == [
        ("id", 0),
        ("delta", 4),
        ("ts", 8),
        ("comm", 16),
    ]
    sizes = {f.name: f.size for f in v.fields}
    assert sizes == {"id": 4, "delta": 4, "ts": 8, "comm": 16}  # W6: arrays have a size


def test_btf_typedef_scalar_key_and_value(obj):
    m = obj.map("tdef_map")
    assert m.btf_key.kind == BtfKind.INT
    assert m.btf_key.name == "unsigned int"
    assert m.btf_key.size == 4
    assert m.btf_value.kind == BtfKind.INT
    assert m.btf_value.size == 8
    m[1] = -7  # my_val_t is a typedef of __s64
    m[2**32 - 1] = 2**63 - 1
    assert m[1] == -7
    assert m[2**32 - 1] == 2**63 - 1
    with pytest.raises(ValueError):
        m[-1] = 0  # my_id_t is unsigned


def test_btf_typedef_anonymous_struct_value(obj):
    class Pair(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint16), ("b", ctypes.c_uint16), ("c", ctypes.c_uint32)]

    m = obj.map("pair_map")
    v = m.btf_value
    assert v.kind == BtfKind.STRUCT
    assert v.size == 8
    assert [f.name for f in v.fields] == ["a", "b", "c"]
    t = m.typed(key=ctypes.c_uint32, value=Pair)
    t[3] = Pair(1, 2, 3)
    p = t[3]
    assert (p.a, p.b, p.c) == (1, 2, 3)
    assert bytes(m[3]) == bytes(Pair(1, 2, 3))

    class Swapped(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint16), ("b", ctypes.c_int16), ("c", ctypes.c_uint32)]

    with pytest.raises(tinybpf.BtfValidationError):
        m.typed(value=Swapped)


def test_btf_float_kinds(obj):
    assert obj.map("dbl").btf_value.kind == BtfKind.FLOAT
    assert obj.map("flt").btf_value.size == 4
    obj.map("flt")[1] = 1.5
    assert obj.map("flt")[1] == 1.5


def test_typed_float_value(obj):
    t = obj.map("dbl").typed(value=ctypes.c_double)
    t[1] = 2.5
    assert t[1] == 2.5
    with pytest.raises(tinybpf.BtfValidationError):
        obj.map("dbl").typed(value=ctypes.c_float)
    with pytest.raises(tinybpf.BtfValidationError):
        obj.map("dbl").typed(value=ctypes.c_uint64)


def test_map_without_btf(obj):
    """W12: without BTF an int is unsigned both ways; values read back as bytes."""
    m = obj.map("nobtf")
    assert m.btf_key is None
    assert m.btf_value is None
    m[1] = 5
    assert m[1] == (5).to_bytes(8, "little")
    assert list(m.keys()) == [b"\x01\x00\x00\x00"]
    with pytest.raises(ValueError):
        m[2] = -1
    with pytest.raises(ValueError):
        m[-2] = 1
    assert list(m.keys()) == [b"\x01\x00\x00\x00"]


def test_map_without_btf_typed_int(obj):
    t = obj.map("nobtf").typed(key=int, value=int)
    t[2**32 - 1] = 2**64 - 1
    assert t[2**32 - 1] == 2**64 - 1
    assert list(t.keys()) == [2**32 - 1]
    with pytest.raises(ValueError):
        t[1] = -1


def test_map_without_btf_typed_ctypes(obj):
    t = obj.map("nobtf").typed(key=ctypes.c_int32, value=ctypes.c_int64)
    t[ctypes.c_int32(-1)] = ctypes.c_int64(-2)
    assert t[ctypes.c_int32(-1)] == -2
    assert list(t.keys()) == [-1]
    assert obj.map("nobtf")[b"\xff\xff\xff\xff"] == b"\xfe" + b"\xff" * 7


def test_map_without_btf_typed_signed_ctypes_int_roundtrip(obj):
    """A signed ctypes type given to typed() reads negative ints, so it must also write them
    (what it reads must round-trip)."""
    t = obj.map("nobtf").typed(key=ctypes.c_int32, value=ctypes.c_int64)
    t[-1] = -2
    assert t[-1] == -2
    k, v = next(iter(t.items()))
    t[k] = v


# --------------------------------------------------------------------------- LRU


def test_lru_evicts_instead_of_failing(obj):
    m = obj.map("lru")
    n = 4 * m.max_entries
    for k in range(n):
        m[k] = k
    keys = list(m.keys())
    assert 0 < len(keys) <= m.max_entries
    assert n - 1 in keys
    for k in keys:
        assert m[k] == k


def test_lru_basic_ops(obj):
    m = obj.map("lru")
    m[1] = 10
    assert m[1] == 10
    assert m.delete(1) is True
    assert 1 not in m


def test_lru_percpu_hash(obj):
    m = obj.map("lru_pcpu")
    ncpu = tinybpf.possible_cpus()
    assert m.is_percpu
    m[1] = 5
    assert m[1] == [5] * ncpu
    m[2] = list(range(ncpu))
    assert m.lookup_percpu_sum(2) == sum(range(ncpu))
    assert dict(m.items()) == {1: [5] * ncpu, 2: list(range(ncpu))}


# --------------------------------------------------------------------------- LPM trie


class LpmKey(ctypes.Structure):
    _fields_ = [("prefixlen", ctypes.c_uint32), ("data", ctypes.c_uint8 * 4)]


def lpm_key(prefixlen: int, *octets: int) -> bytes:
    return struct.pack("<I4B", prefixlen, *octets)


def test_lpm_longest_prefix_match(obj):
    m = obj.map("lpm")
    m[lpm_key(8, 10, 0, 0, 0)] = 8
    m[lpm_key(16, 10, 1, 0, 0)] = 16
    m[lpm_key(24, 10, 1, 2, 0)] = 24
    assert m[lpm_key(32, 10, 1, 2, 3)] == 24
    assert m[lpm_key(32, 10, 1, 3, 3)] == 16
    assert m[lpm_key(32, 10, 9, 9, 9)] == 8
    assert m.lookup(lpm_key(32, 11, 0, 0, 0)) is None
    assert lpm_key(32, 192, 168, 0, 1) not in m


def test_lpm_keys_and_delete(obj):
    m = obj.map("lpm")
    m[lpm_key(24, 10, 1, 2, 0)] = 1
    m[lpm_key(16, 10, 1, 0, 0)] = 2
    keys = list(m.keys())
    assert len(keys) == 2
    assert {bytes(k) for k in keys} == {lpm_key(24, 10, 1, 2, 0), lpm_key(16, 10, 1, 0, 0)}
    for k in keys:  # whatever form keys() yields, it is accepted back as a key
        assert k in m
    assert m.btf_key.kind == BtfKind.STRUCT
    del m[lpm_key(24, 10, 1, 2, 0)]
    assert m[lpm_key(32, 10, 1, 2, 3)] == 2


def test_lpm_typed_key(obj):
    t = obj.map("lpm").typed(key=LpmKey, value=ctypes.c_uint32)
    t[LpmKey(24, (ctypes.c_uint8 * 4)(172, 16, 5, 0))] = 7
    assert t[LpmKey(32, (ctypes.c_uint8 * 4)(172, 16, 5, 99))] == 7
    (k,) = list(t.keys())
    assert isinstance(k, LpmKey)
    assert k.prefixlen == 24 and list(k.data) == [172, 16, 5, 0]


def test_lpm_prefix_too_long_rejected(obj):
    with pytest.raises(BpfError):
        obj.map("lpm")[lpm_key(33, 1, 2, 3, 4)] = 1


# --------------------------------------------------------------------------- queue / stack


@pytest.mark.parametrize(
    ("name", "mtype"), [("queue", BpfMapType.QUEUE), ("stack", BpfMapType.STACK)]
)
def test_queue_stack_metadata(obj, name, mtype):
    m = obj.map(name)
    assert m.type == mtype
    assert m.key_size == 0
    assert m.value_size == 4
    assert not m.is_percpu
    assert m.btf_key is None


@pytest.mark.parametrize("name", ["queue", "stack"])
def test_queue_stack_value_pushed_by_program(obj, name):
    """Queue/stack maps have no key: a lookup (the kernel's peek) sees what the program
    pushed, and an empty map reads as None."""
    m = obj.map(name)
    assert m.lookup(None) is None
    link = obj.program("count_getpid").attach()
    try:
        obj.map("cfg")[0] = threading.get_native_id()
        for _ in range(3):
            os.getpid()
        obj.map("cfg")[0] = 0
    finally:
        link.destroy()
    assert obj.map("counts")[os.getpid()] == 3
    # libbpf gives queue/stack maps no BTF value type: the value reads as bytes
    assert m.btf_value is None
    assert m.lookup(None) == os.getpid().to_bytes(4, "little")
    assert m.lookup(None) == os.getpid().to_bytes(4, "little")  # peek does not pop
    assert m.typed(value=ctypes.c_uint32).lookup(None) == os.getpid()


# --------------------------------------------------------------------------- map in map


def test_array_of_maps_holds_inner_map_id(obj):
    outer = obj.map("outer")
    inner = obj.map("inner_a")
    assert outer.type == BpfMapType.ARRAY_OF_MAPS
    inner_id = int(fdinfo(inner.fd)["map_id"])
    v = outer.lookup(0)
    assert v is not None
    got = int.from_bytes(v, "little") if isinstance(v, (bytes, bytearray)) else int(v)
    assert got == inner_id
    assert outer.lookup(1) is None
    assert 1 not in outer


def test_inner_map_is_usable(obj):
    inner = obj.map("inner_a")
    inner[2] = 22
    assert inner[2] == 22
    assert sorted(inner.keys()) == [0, 1, 2, 3]
