"""BTF-typed data with no hand-written structs: the Btf model of a real object, Python types
generated from BTF, and map values and ring/perf buffer events decoded with them.

Fixture: tests/bpf/types_events.bpf.c. Its program fills one struct event with known
values (nested structs, arrays, bitfields, enums, a union, a typedef'd anonymous struct) and
sends it to a ring buffer and a perf buffer, and updates struct-valued maps.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import json
import os

import pytest
from conftest import bpf_obj

import tinybpf
from tinybpf import BtfKind
from tinybpf.btf import Btf

root = pytest.mark.root

EVENT_LAYOUT = [
    # (name, offset, size)
    ("task", 0, 8),
    ("op", 8, 4),
    ("flags", 12, 8),
    ("comm", 20, 16),
    ("args", 40, 24),
    ("peers", 64, 16),
    ("delta", 80, 2),
    ("raw", 82, 3),
    ("val", 88, 8),
    ("matrix", 96, 24),
    ("where", 120, 8),
    ("lvl", 128, 4),
    ("ok", 132, 1),
]
BITS = {"kind": 3, "level": 5, "on": 1, "rest": 0xABCDE, "after": 0x1234, "small": -3}


@pytest.fixture(scope="module")
def fobj():
    with tinybpf.open(bpf_obj("types_events")) as obj:
        yield obj


@pytest.fixture(scope="module")
def btf(fobj):
    return fobj.btf


@pytest.fixture
def run():
    """types_events loaded for this process, with its program attached."""
    obj = tinybpf.open(bpf_obj("types_events"))
    obj.globals["target_pid"] = os.getpid()
    obj.load()
    link = obj.program("record").attach()
    yield obj
    link.destroy()
    obj.close()


def check_event(ev, op: int = 1) -> None:
    """The values fill_event() writes, read through generated types."""
    assert ev.task.pid == os.getpid() and ev.task.tid == os.getpid()
    assert ev.op == op
    assert ev.flags.to_dict() == BITS
    with open("/proc/self/comm", "rb") as f:
        assert ev.comm == f.read().strip()
    assert list(ev.args) == [1, 2, 3]
    assert [(p.pid, p.tid) for p in ev.peers] == [(10, 11), (20, 21)]
    assert ev.delta == -7
    assert list(ev.raw) == [1, 2, 3]
    assert ev.val.s == -42 and ev.val.u == 2**64 - 42
    assert [list(row) for row in ev.matrix] == [[0, 1, 2], [10, 11, 12]]
    assert (ev.where.x, ev.where.y) == (99, 7)
    assert ev.lvl == 0xFFFFFFFF  # TLVL_LOW = -1 (clang 14 emits enums as unsigned)
    assert ev.ok is True


# --- the Btf model -----------------------------------------------------------------------------


class TestBtfModel:
    def test_object_btf(self, fobj, btf):
        assert isinstance(btf, Btf)
        assert fobj.btf is btf  # one model per object
        assert len(btf) == len(list(btf))

    def test_from_file_reads_the_same_types(self, btf):
        with Btf.from_file(bpf_obj("types_events")) as fbtf:
            assert len(fbtf) == len(btf)
            assert fbtf.find_struct("event").size == btf.find_struct("event").size == 136

    @pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"), reason="no kernel BTF")
    def test_from_vmlinux(self):
        with Btf.from_vmlinux() as vm:
            assert vm.find_struct("task_struct").size > 1000
            kinds = {t.kind for t in vm}
        assert BtfKind.ENUM64 in kinds or BtfKind.ENUM in kinds

    def test_types_by_name_and_kind(self, btf):
        tid = btf.find("event", BtfKind.STRUCT)
        assert btf.type(tid).kind == BtfKind.STRUCT
        assert btf.resolve(btf.find("op_kind", BtfKind.ENUM)).enum_values == (
            ("TOP_NONE", 0),
            ("TOP_READ", 1),
            ("TOP_WRITE", 2),
            ("TOP_EXEC", 4),
        )
        assert btf.find_struct("value").kind == BtfKind.UNION
        with pytest.raises(KeyError):
            btf.find("event", BtfKind.UNION)

    def test_iteration_covers_every_kind_the_compiler_emits(self, btf):
        kinds = {t.kind for t in btf}
        expected = {
            BtfKind.INT,
            BtfKind.PTR,
            BtfKind.ARRAY,
            BtfKind.STRUCT,
            BtfKind.UNION,
            BtfKind.ENUM,
            BtfKind.FWD,
            BtfKind.TYPEDEF,
            BtfKind.VOLATILE,
            BtfKind.CONST,
            BtfKind.RESTRICT,
            BtfKind.FUNC,
            BtfKind.FUNC_PROTO,
            BtfKind.VAR,
            BtfKind.DATASEC,
            BtfKind.FLOAT,
            BtfKind.DECL_TAG,
            BtfKind.TYPE_TAG,
        }
        assert expected <= kinds  # ENUM64 needs clang >= 15 (see test_from_vmlinux)

    def test_sizes_and_offsets(self, btf):
        ev = btf.find_struct("event")
        assert ev.size == 136
        assert [(f.name, f.offset, f.size) for f in ev.fields] == EVENT_LAYOUT
        matrix = ev.fields[9].type
        assert (matrix.kind, matrix.nelems, matrix.elem.kind, matrix.elem.nelems) == (
            BtfKind.ARRAY,
            2,
            BtfKind.ARRAY,
            3,
        )

    def test_bitfields(self, btf):
        bits = btf.find_struct("bits")
        got = [(f.name, f.bit_offset, f.bitfield_size) for f in bits.fields]
        assert got == [
            ("kind", 0, 4),
            ("level", 4, 3),
            ("on", 7, 1),
            ("rest", 8, 24),
            ("after", 32, 0),
            ("small", 48, 4),
        ]
        assert bits.fields[5].type.signed is True

    def test_typedefs_and_qualifiers(self, btf):
        where = next(f for f in btf.find_struct("event").fields if f.name == "where")
        assert where.type.kind == BtfKind.STRUCT and where.type.type_name == "point_t"
        raw = btf.type(btf.find("point_t", BtfKind.TYPEDEF))
        assert raw.kind == BtfKind.TYPEDEF and raw.size == 8

    def test_datasec_and_vars(self, btf):
        bss = btf.resolve(btf.find(".bss", BtfKind.DATASEC))
        names = [f.name for f in bss.fields]
        assert {"last_task", "event_count", "grid"} <= set(names)
        assert all(f.size > 0 for f in bss.fields)

    def test_snapshots_are_frozen_and_outlive_the_object(self):
        with tinybpf.open(bpf_obj("types_events")) as obj:
            ev = obj.btf.find_struct("event")
        assert ev.fields[0].name == "task"
        with pytest.raises(dataclasses.FrozenInstanceError):
            ev.size = 1  # type: ignore[misc]

    def test_str_is_a_c_declaration(self, btf):
        text = str(btf.find_struct("task_id"))
        assert text.startswith("struct task_id {")
        assert "__u32 pid;" in text and "__u32 tid;" in text

    def test_whole_btf_as_c(self, btf):
        text = btf.to_c()
        assert "struct event {" in text and "enum op_kind {" in text
        assert "__u32 lo: 12;" in text


# --- Python types generated from BTF --------------------------------------------------------------


class TestGeneratedTypes:
    def test_struct_layout_matches_btf(self, btf):
        event = btf.ctype("event")
        assert issubclass(event, ctypes.Structure)
        assert ctypes.sizeof(event) == 136
        for name, offset, size in EVENT_LAYOUT:
            assert getattr(event, name).offset == offset, name
            assert getattr(event, name).size == size, name

    def test_cached_per_object(self, btf):
        assert btf.ctype("event") is btf.ctype("event")
        assert btf.ctype("event").__dict__["_fields_"][0][1] is btf.ctype("task_id")
        with tinybpf.open(bpf_obj("types_events")) as other:
            assert other.btf.ctype("event") is not btf.ctype("event")

    def test_union(self, btf):
        value = btf.ctype("value")
        assert issubclass(value, ctypes.Union) and ctypes.sizeof(value) == 8
        v = value(s=-1)
        assert v.u == 2**64 - 1 and list(v.bytes) == [255] * 8

    def test_typedef_name(self, btf):
        assert btf.ctype("point_t").__name__ == "point_t"

    def test_bitfields_read_and_write(self, btf):
        bits = btf.ctype("bits")()
        for name, value in BITS.items():
            setattr(bits, name, value)
        assert bits.to_dict() == BITS
        raw = bytes(bits)
        assert raw[:4] == (3 | 5 << 4 | 1 << 7 | 0xABCDE << 8).to_bytes(4, "little")
        assert raw[6] & 0xF == 0xD  # -3 in 4 bits
        bits.small = 7
        assert bits.small == 7 and bits.kind == 3

    def test_arrays_and_char_arrays(self, btf):
        ev = btf.ctype("event")()
        ev.comm = b"abc"
        assert ev.comm == b"abc"
        ev.args[2] = 9
        ev.matrix[1][2] = 5
        assert list(ev.args) == [0, 0, 9] and ev.matrix[1][2] == 5

    def test_enum_as_intenum(self, btf):
        op_kind = btf.enum("op_kind")
        assert issubclass(op_kind, enum.IntEnum)
        assert op_kind.TOP_EXEC == 4 and op_kind(2).name == "TOP_WRITE"
        with pytest.raises(KeyError):
            btf.enum("event")

    def test_readable_repr(self, btf):
        ev = btf.ctype("event")(delta=-1)
        ev.comm = b"sh"
        text = repr(ev)
        assert text.startswith("event(task=task_id(pid=0, tid=0), op=0, flags=bits(kind=0")
        assert "comm=b'sh'" in text and "delta=-1" in text and "matrix=[[0, 0, 0]" in text

    def test_repr_shows_char_arrays_as_the_bytes_they_are(self, btf):
        ev = btf.ctype("event")()
        ev.comm = b"bash"
        assert ev.comm == b"bash" and ev.comm != "bash"
        assert "comm=b'bash'" in repr(ev)  # what the attribute holds, not a str look-alike
        ev.comm = b"\xff\x01"
        assert "comm=b'\\xff\\x01'" in repr(ev)

    def test_to_dict_is_json_serializable(self, btf):
        ev = btf.ctype("event").from_dict(
            {"task": {"pid": 1, "tid": 2}, "comm": "bash", "peers": [{"pid": 5}]}
        )
        out = json.loads(json.dumps(ev.to_dict()))
        assert out["comm"] == "bash" and out["task"] == {"pid": 1, "tid": 2}
        assert out["peers"][0] == {"pid": 5, "tid": 0}
        ev.comm = b"a\xffb"  # not UTF-8: the byte is written as an escape
        assert json.loads(json.dumps(ev.to_dict()))["comm"] == "a\\xffb"

    def test_dict_round_trip(self, btf):
        event = btf.ctype("event")
        d = {"task": {"pid": 1, "tid": 2}, "flags": {"small": -1}, "peers": [{"pid": 5}]}
        ev = event.from_dict(d)
        out = ev.to_dict()
        assert out["task"] == {"pid": 1, "tid": 2}
        assert out["flags"]["small"] == -1
        assert out["peers"][0] == {"pid": 5, "tid": 0}
        assert out["matrix"] == [[0, 0, 0], [0, 0, 0]]
        stat_value = btf.ctype("stat_value")
        sv = stat_value.from_dict({"count": 3, "flags": {"on": 1}, "comm": "sh"})
        assert stat_value.from_dict(sv.to_dict()) == sv
        with pytest.raises(KeyError, match="no field"):
            event.from_dict({"nope": 1})

    def test_dict_round_trip_with_a_two_dimensional_array(self, btf):
        event = btf.ctype("event")
        ev = event.from_dict({"matrix": [[1, 2, 3], [4, 5, 6]]})
        assert event.from_dict(ev.to_dict()) == ev

    def test_scalars(self, btf):
        assert btf.ctype("__u16") is ctypes.c_uint16
        assert btf.ctype("__s64") is ctypes.c_int64
        assert btf.ctype("float") is ctypes.c_float

    def test_anonymous_members(self, btf):
        w = btf.ctype("word")()
        w.raw = 0xFFFFF123
        assert (w.lo, w.hi) == (0x123, 0xFFFFF)
        assert "lo=291" in repr(w)

    def test_own_bitfields_next_to_an_anonymous_member(self, btf):
        mixed = btf.ctype("mixed")
        m = mixed.from_buffer_copy(bytes([0x53, 0, 0, 0, 1, 0xEF, 0xCD, 0xAB]))
        assert (m.a, m.b, m.x) == (3, 5, 0xABCDEF01)

    def test_generated_types_validate_against_their_btf(self, btf):
        from tinybpf.btf import validate_python_type

        for name in ("stat_value", "event", "bits", "point_t"):
            validate_python_type(btf.ctype(name), btf.find_struct(name))


# --- maps and events decoded from BTF ----------------------------------------------------------


@root
class TestMapsFromBtf:
    def test_struct_key_and_value(self, run):
        os.getpid()
        stats = run.maps["stats"]
        ((key, value),) = list(stats.items())
        assert (key.pid, key.tid) == (os.getpid(), os.getpid())
        assert value.count == 1 and value.last_op == 1
        assert value.flags.to_dict() == BITS
        assert value.comm
        assert type(value) is run.btf.ctype("stat_value")
        assert "stat_value(count=1, last_op=1, flags=bits(kind=3" in repr(value)

    def test_lookup_with_dict_key_and_write_dict_value(self, run):
        stats = run.maps["stats"]
        stats[{"pid": 1, "tid": 2}] = {"count": 7, "flags": {"rest": 99}, "comm": "x"}
        got = stats[{"pid": 1, "tid": 2}]
        assert (got.count, got.flags.rest, got.comm) == (7, 99, b"x")

    def test_write_generated_type_and_bytes(self, run):
        stats = run.maps["stats"]
        key_t, value_t = run.btf.ctype("task_id"), run.btf.ctype("stat_value")
        stats[key_t(pid=3, tid=4)] = value_t(count=2)
        assert stats[key_t(pid=3, tid=4)].count == 2
        stats[bytes(key_t(pid=5, tid=6))] = bytes(value_t(count=4))
        assert stats[key_t(pid=5, tid=6)].count == 4
        with pytest.raises(ValueError):
            stats[key_t(pid=7, tid=8)] = b"short"

    def test_array_of_bitfield_structs(self, run):
        os.getpid()
        values = dict(run.maps["bits_map"].items())
        assert values[0].to_dict() == BITS
        assert values[1].to_dict() == dict.fromkeys(BITS, 0)

    def test_enum_key_and_signed_value(self, run):
        os.getpid()
        os.getpid()
        assert dict(run.maps["op_counts"].items()) == {1: 2}
        run.maps["op_counts"][4] = -5
        assert run.maps["op_counts"][4] == -5

    def test_anonymous_member_values(self, run):
        os.getpid()
        w = run.maps["words"][0]
        assert (w.lo, w.hi, w.a, w.b) == (0xABC, 0x12345, 1, 2)

    def test_typed_view_with_generated_types(self, run):
        view = run.maps["stats"].typed(
            key=run.btf.ctype("task_id"), value=run.btf.ctype("stat_value")
        )
        os.getpid()
        assert next(iter(view.values())).count == 1


@root
class TestEventsFromBtf:
    def test_ring_buffer_event_type_by_name(self, run):
        events = []
        with tinybpf.BpfRingBuffer(run.maps["events"], events.append, event_type="event") as rb:
            os.getpid()
            rb.poll(timeout_ms=1000)
        assert len(events) == 1
        check_event(events[0])
        assert type(events[0]) is run.btf.ctype("event")

    def test_ring_buffer_iterator_mode(self, run):
        with tinybpf.BpfRingBuffer(run.maps["events"], event_type="event") as rb:
            os.getpid()
            rb.poll(timeout_ms=1000)
            events = list(rb)
        assert len(events) == 1
        check_event(events[0])

    def test_perf_buffer_event_type_by_name(self, run):
        events = []
        with tinybpf.BpfPerfBuffer(
            run.maps["perf_events"], lambda cpu, ev: events.append(ev), event_type="event"
        ) as pb:
            os.getpid()
            pb.poll(timeout_ms=1000)
        assert len(events) == 1
        check_event(events[0])

    def test_events_print_with_field_names(self, run):
        events = []
        with tinybpf.BpfRingBuffer(run.maps["events"], events.append, event_type="event") as rb:
            os.getpid()
            rb.poll(timeout_ms=1000)
        text = repr(events[0])
        for name, _, _ in EVENT_LAYOUT:
            assert f"{name}=" in text
        assert "peers=[task_id(pid=10, tid=11), task_id(pid=20, tid=21)]" in text
        assert "matrix=[[0, 1, 2], [10, 11, 12]]" in text
        assert json.loads(json.dumps(events[0].to_dict()))["matrix"] == [[0, 1, 2], [10, 11, 12]]

    def test_configuration_changes_the_event(self):
        with tinybpf.open(bpf_obj("types_events")) as obj:
            obj.globals["target_pid"] = os.getpid()
            obj.globals["want_op"] = obj.btf.enum("op_kind").TOP_EXEC
            obj.load()
            events = []
            with (
                obj.program("record").attach(),
                tinybpf.BpfRingBuffer(obj.maps["events"], events.append, event_type="event") as rb,
            ):
                os.getpid()
                rb.poll(timeout_ms=1000)
        check_event(events[0], op=4)

    def test_unknown_event_type_name(self, run):
        with pytest.raises(tinybpf.BpfError, match="not found"):
            tinybpf.BpfRingBuffer(run.maps["events"], print, event_type="no_such_struct")
