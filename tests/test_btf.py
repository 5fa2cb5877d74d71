"""BTF: the Btf model (kernel and object BTF), validation of Python types, registration.

Btf.from_vmlinux/from_file and validate_python_type need no privileges; registration needs
a loaded object (root).
"""

from __future__ import annotations

import ctypes
import errno
import os

import pytest
from conftest import bpf_obj

import tinybpf
from tinybpf import BpfClosedError, BpfError, BtfKind, BtfValidationError
from tinybpf.btf import Btf, validate_python_type

u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64
s32 = ctypes.c_int32


class Plain(ctypes.Structure):
    _fields_ = [("a", u32), ("b", u16), ("c", u64)]


class Flags(ctypes.Structure):
    _fields_ = [
        ("kind", u32, 4),
        ("level", u32, 3),
        ("on", u32, 1),
        ("rest", u32, 24),
        ("after", u16),
    ]


class WithArray(ctypes.Structure):
    _fields_ = [("id", u32), ("name", ctypes.c_char * 16), ("slots", u64 * 3)]


class Number(ctypes.Union):
    _fields_ = [("u", u32), ("s", s32), ("wide", u64)]


class Anon(ctypes.Structure):
    _fields_ = [("x", u32), ("y", u16)]


class Nested(ctypes.Structure):
    _fields_ = [
        ("inner", Plain),
        ("num", Number),
        ("col", u32),
        ("delta", s32),
        ("pid", s32),
        ("ratio", ctypes.c_float),
    ]


@pytest.fixture(scope="module")
def vmlinux():
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("kernel has no BTF (/sys/kernel/btf/vmlinux missing)")
    with Btf.from_vmlinux() as btf:
        yield btf


@pytest.fixture(scope="module")
def fbtf():
    with Btf.from_file(bpf_obj("btf_types")) as btf:
        yield btf


def struct(btf: Btf, name: str):
    return btf.find_struct(name)


# --- the Btf model ---------------------------------------------------------------------------


class TestVmlinux:
    def test_task_struct(self, vmlinux):
        tid = vmlinux.find("task_struct")
        t = vmlinux.resolve(tid)
        assert t.kind is BtfKind.STRUCT
        assert t.name == "task_struct"
        assert t.size and t.size > 1000
        names = {f.name for f in t.fields}
        assert {"pid", "tgid", "comm"} <= names

    def test_task_struct_comm_is_a_char_array(self, vmlinux):
        t = vmlinux.find_struct("task_struct")
        comm = next(f for f in t.fields if f.name == "comm")
        assert comm.type.kind is BtfKind.ARRAY
        assert comm.type.nelems == 16
        assert comm.size == 16  # arrays have their size (W6)
        assert comm.type.elem.name == "char"

    def test_pid_t_resolves_to_signed_int(self, vmlinux):
        tid = vmlinux.find("pid_t")
        raw = vmlinux.type(tid)
        assert raw.kind is BtfKind.TYPEDEF
        assert raw.name == "pid_t"
        t = vmlinux.resolve(tid)
        assert t.kind is BtfKind.INT
        assert t.name == "int"
        assert t.type_name == "pid_t"
        assert t.size == 4
        assert t.signed is True

    def test_u32_is_unsigned(self, vmlinux):
        t = vmlinux.resolve(vmlinux.find("u32"))
        assert (t.kind, t.size, t.signed) == (BtfKind.INT, 4, False)

    def test_find_by_kind_and_missing(self, vmlinux):
        assert vmlinux.find("task_struct", BtfKind.STRUCT) > 0
        with pytest.raises(KeyError):
            vmlinux.find("task_struct", BtfKind.UNION)
        with pytest.raises(KeyError):
            vmlinux.find("tinybpf_no_such_type")

    def test_len_and_repr(self, vmlinux):
        assert len(vmlinux) > 10000
        assert "vmlinux" in repr(vmlinux)

    def test_closed_btf_raises(self):
        btf = Btf.from_vmlinux()
        btf.close()
        btf.close()  # idempotent
        with pytest.raises(BpfClosedError):
            btf.find("task_struct")
        with pytest.raises(BpfClosedError):
            len(btf)

    def test_snapshots_survive_close(self):
        with Btf.from_vmlinux() as btf:
            t = btf.find_struct("task_struct")
        assert t.name == "task_struct" and t.fields  # plain data, no pointer into libbpf


class TestObjectFileBtf:
    def test_from_file_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError) as ei:
            Btf.from_file(tmp_path / "nope.bpf.o")
        assert isinstance(ei.value, tinybpf.BpfFileNotFoundError)  # a BpfError too
        assert ei.value.errno == errno.ENOENT

    def test_from_file_of_a_directory(self, tmp_path):
        with pytest.raises(tinybpf.BpfError, match="it is a directory") as ei:
            Btf.from_file(tmp_path)
        assert ei.value.errno == errno.EISDIR

    def test_plain_struct(self, fbtf):
        t = struct(fbtf, "plain")
        assert (t.kind, t.size) == (BtfKind.STRUCT, 16)
        assert [(f.name, f.offset, f.size) for f in t.fields] == [
            ("a", 0, 4),
            ("b", 4, 2),
            ("c", 8, 8),
        ]
        assert t.fields[0].type.type_name == "__u32"
        assert t.fields[0].type.name == "unsigned int"

    def test_bitfields(self, fbtf):
        # kind_flag member offsets decoded (W5): bit offset and width, byte offset
        t = struct(fbtf, "flags")
        assert t.size == 8
        got = [(f.name, f.bit_offset, f.bitfield_size) for f in t.fields]
        assert got == [
            ("kind", 0, 4),
            ("level", 4, 3),
            ("on", 7, 1),
            ("rest", 8, 24),
            ("after", 32, 0),
        ]
        assert all(f.offset == f.bit_offset // 8 for f in t.fields)
        assert t.fields[-1].offset == 4

    def test_arrays(self, fbtf):
        # arrays have a size and element count (W6)
        t = struct(fbtf, "with_array")
        assert t.size == 48
        name, slots = t.fields[1], t.fields[2]
        assert (name.offset, name.size) == (4, 16)
        assert name.type.kind is BtfKind.ARRAY
        assert (name.type.size, name.type.nelems, name.type.elem.name) == (16, 16, "char")
        assert (slots.offset, slots.size) == (24, 24)
        assert (slots.type.nelems, slots.type.elem.size) == (3, 8)

    def test_enum_values(self, fbtf):
        t = fbtf.resolve(fbtf.find("color", BtfKind.ENUM))
        assert t.kind is BtfKind.ENUM
        assert t.size == 4
        assert t.enum_values == (("RED", 0), ("GREEN", 5), ("BLUE", 10))

    def test_union(self, fbtf):
        t = struct(fbtf, "number")
        assert (t.kind, t.size) == (BtfKind.UNION, 8)
        assert [(f.name, f.offset, f.size) for f in t.fields] == [
            ("u", 0, 4),
            ("s", 0, 4),
            ("wide", 0, 8),
        ]
        assert t.fields[1].type.signed is True
        assert t.fields[0].type.signed is False

    def test_typedef_of_anonymous_struct(self, fbtf):
        tid = fbtf.find("anon_t")
        assert fbtf.type(tid).kind is BtfKind.TYPEDEF
        t = fbtf.resolve(tid)
        assert t.kind is BtfKind.STRUCT
        assert t.type_name == "anon_t"  # the anonymous struct is known by its typedef (W6)
        assert [f.name for f in t.fields] == ["x", "y"]
        assert struct(fbtf, "anon_t").size == 8

    def test_signed_typedefs(self, fbtf):
        t = fbtf.resolve(fbtf.find("my_signed_t"))
        assert (t.kind, t.signed, t.type_name) == (BtfKind.INT, True, "my_signed_t")
        nested = struct(fbtf, "nested")
        by_name = {f.name: f for f in nested.fields}
        assert by_name["delta"].type.signed is True
        assert by_name["pid"].type.type_name == "pid_t"
        assert by_name["pid"].type.signed is True
        assert by_name["ratio"].type.kind is BtfKind.FLOAT
        assert by_name["inner"].type.name == "plain"
        assert by_name["inner"].size == 16

    def test_find_struct_missing(self, fbtf):
        with pytest.raises(KeyError):
            fbtf.find_struct("task_struct")  # only in vmlinux, not in this object

    def test_to_c(self, fbtf):
        text = fbtf.to_c()
        assert "struct plain {" in text
        assert "union number {" in text


# --- validate_python_type ----------------------------------------------------------------


class TestValidation:
    @pytest.mark.parametrize(
        "py,name",
        [
            (Plain, "plain"),
            (Flags, "flags"),
            (WithArray, "with_array"),
            (Number, "number"),
            (Anon, "anon_t"),
            (Nested, "nested"),
        ],
    )
    def test_matching_types_pass(self, fbtf, py, name):
        validate_python_type(py, struct(fbtf, name))

    def test_scalars(self, fbtf):
        signed = fbtf.resolve(fbtf.find("my_signed_t"))
        validate_python_type(s32, signed)
        validate_python_type(int, signed)
        with pytest.raises(BtfValidationError, match=r"^Signedness mismatch:"):
            validate_python_type(u32, signed)
        with pytest.raises(BtfValidationError, match=r"^Size mismatch:"):
            validate_python_type(ctypes.c_int64, signed)

    def test_size_mismatch(self, fbtf):
        class Short(ctypes.Structure):
            _fields_ = [("a", u32), ("b", u16)]

        with pytest.raises(BtfValidationError) as ei:
            validate_python_type(Short, struct(fbtf, "plain"))
        assert str(ei.value).startswith(
            "Size mismatch: Short is 8 bytes, BTF type 'plain' is 16 bytes"
        )
        assert ei.value.errno == 0

    def test_field_count_mismatch(self, fbtf):
        class Four(ctypes.Structure):
            _fields_ = [("a", u32), ("b", u16), ("pad", u16), ("c", u64)]

        with pytest.raises(BtfValidationError, match=r"^Field count mismatch: Four has 4 fields"):
            validate_python_type(Four, struct(fbtf, "plain"))

    def test_field_offset_mismatch(self, fbtf):
        class Small(ctypes.Structure):
            _fields_ = [("a", u8), ("b", u16), ("c", u8), ("d", u16)]

        assert ctypes.sizeof(Small) == 8
        with pytest.raises(BtfValidationError) as ei:
            validate_python_type(Small, struct(fbtf, "small"))
        assert str(ei.value).startswith("Field 'b' at offset 2, BTF field 'b' expects offset 1")

    def test_field_name_mismatch(self, fbtf):
        class Renamed(ctypes.Structure):
            _fields_ = [("a", u32), ("bee", u16), ("c", u64)]

        with pytest.raises(BtfValidationError) as ei:
            validate_python_type(Renamed, struct(fbtf, "plain"))
        assert str(ei.value).startswith(
            "Field name mismatch: Python field 'bee', BTF field 'b' at offset 4"
        )
        validate_python_type(Renamed, struct(fbtf, "plain"), validate_field_names=False)

    def test_field_type_signedness_mismatch(self, fbtf):
        class SignedA(ctypes.Structure):
            _fields_ = [("a", s32), ("b", u16), ("c", u64)]

        with pytest.raises(BtfValidationError, match=r"^Signedness mismatch:"):
            validate_python_type(SignedA, struct(fbtf, "plain"))

    def test_field_float_for_int(self, fbtf):
        class FloatC(ctypes.Structure):
            _fields_ = [("a", u32), ("b", u16), ("c", ctypes.c_double)]

        with pytest.raises(BtfValidationError, match=r"^Type mismatch:"):
            validate_python_type(FloatC, struct(fbtf, "plain"))

    def test_kind_mismatch(self, fbtf):
        class PlainAsUnion(ctypes.Union):
            _fields_ = [("a", u64), ("b", u64 * 2)]

        with pytest.raises(BtfValidationError, match=r"^Kind mismatch:"):
            validate_python_type(PlainAsUnion, struct(fbtf, "plain"))
        with pytest.raises(BtfValidationError, match=r"^Kind mismatch:"):
            validate_python_type(u64 * 2, struct(fbtf, "plain"))

    def test_array_length_mismatch(self, fbtf):
        slots = struct(fbtf, "with_array").fields[2].type
        validate_python_type(u64 * 3, slots)
        with pytest.raises(BtfValidationError, match=r"^Array length mismatch:"):
            validate_python_type(u32 * 6, slots)

    def test_nested_struct_is_compared(self, fbtf):
        class BadPlain(ctypes.Structure):
            _fields_ = [("a", u32), ("b", ctypes.c_int16), ("c", u64)]

        class BadNested(ctypes.Structure):
            _fields_ = [(n, BadPlain if n == "inner" else t) for n, t in Nested._fields_]

        with pytest.raises(BtfValidationError, match=r"^Signedness mismatch:"):
            validate_python_type(BadNested, struct(fbtf, "nested"))

    def test_ctypes_bitfields_accepted(self, fbtf):
        # 3-tuples are understood (the first generation crashed unpacking them, W5)
        validate_python_type(Flags, struct(fbtf, "flags"))

    def test_bitfield_width_mismatch(self, fbtf):
        class BadFlags(ctypes.Structure):
            _fields_ = [
                ("kind", u32, 5),
                ("level", u32, 2),
                ("on", u32, 1),
                ("rest", u32, 24),
                ("after", u16),
            ]

        with pytest.raises(BtfValidationError, match=r"^Field 'kind'"):
            validate_python_type(BadFlags, struct(fbtf, "flags"))

    def test_suggestions_describe_the_btf_layout(self, fbtf):
        class Short(ctypes.Structure):
            _fields_ = [("a", u32)]

        with pytest.raises(BtfValidationError) as ei:
            validate_python_type(Short, struct(fbtf, "plain"))
        sugg = ei.value.suggestions
        assert sugg
        text = "\n".join(sugg)
        assert "plain" in text
        for name in ("a", "b", "c"):
            assert any(s.strip().startswith(f"{name}:") for s in sugg)

    def test_unsupported_python_type(self, fbtf):
        with pytest.raises(BtfValidationError):
            validate_python_type(dict, struct(fbtf, "plain"))


# --- registration on a loaded object ------------------------------------------------------


@pytest.fixture
def btfobj(obj_path):
    obj = tinybpf.load(obj_path("btf_types"))
    yield obj
    obj.close()


@pytest.mark.root
class TestRegistration:
    def test_object_btf(self, btfobj):
        btf = btfobj.btf
        assert isinstance(btf, Btf)
        assert btfobj.btf is btf  # cached
        assert btf.find_struct("plain").size == 16

    def test_register_and_lookup(self, btfobj):
        btfobj.register_type("plain", Plain)
        assert btfobj.lookup_type("plain") is Plain
        assert btfobj.lookup_btf_name(Plain) == "plain"

    def test_lookups_of_unregistered(self, btfobj):
        assert btfobj.lookup_type("plain") is None
        assert btfobj.lookup_btf_name(Plain) is None

    def test_same_pair_again_is_a_noop(self, btfobj):
        btfobj.register_type("plain", Plain)
        btfobj.register_type("plain", Plain)
        assert btfobj.lookup_type("plain") is Plain

    def test_name_registered_to_another_type(self, btfobj):
        class Plain2(ctypes.Structure):
            _fields_ = Plain._fields_

        btfobj.register_type("plain", Plain)
        with pytest.raises(BpfError):
            btfobj.register_type("plain", Plain2)
        assert btfobj.lookup_type("plain") is Plain
        assert btfobj.lookup_btf_name(Plain2) is None

    def test_type_registered_under_another_name(self, btfobj):
        btfobj.register_type("plain", Plain)
        with pytest.raises(BpfError):
            btfobj.register_type("small", Plain)
        assert btfobj.lookup_btf_name(Plain) == "plain"

    def test_missing_struct_gives_anchor_hint(self, btfobj):
        class Event(ctypes.Structure):
            _fields_ = [("x", u32)]

        with pytest.raises(BpfError) as ei:
            btfobj.register_type("event", Event)
        assert not isinstance(ei.value, BtfValidationError)
        assert "struct event _event_btf __attribute__((unused));" in str(ei.value)

    def test_mismatch_raises_validation_error_and_does_not_register(self, btfobj):
        class Wrong(ctypes.Structure):
            _fields_ = [("a", u32), ("b", u32)]

        with pytest.raises(BtfValidationError, match=r"^Size mismatch:"):
            btfobj.register_type("plain", Wrong)
        assert btfobj.lookup_type("plain") is None
        assert btfobj.lookup_btf_name(Wrong) is None

    def test_validate_field_names_false(self, btfobj):
        class Renamed(ctypes.Structure):
            _fields_ = [("x", u32), ("y", u16), ("z", u64)]

        with pytest.raises(BtfValidationError, match=r"^Field name mismatch:"):
            btfobj.register_type("plain", Renamed)
        btfobj.register_type("plain", Renamed, validate_field_names=False)
        assert btfobj.lookup_type("plain") is Renamed

    def test_typedef_and_union_names_resolve(self, btfobj):
        # the first generation found STRUCT names only (W7)
        btfobj.register_type("anon_t", Anon)
        btfobj.register_type("number", Number)
        assert btfobj.lookup_type("anon_t") is Anon
        assert btfobj.lookup_btf_name(Number) == "number"

    def test_bitfield_struct_registers(self, btfobj):
        btfobj.register_type("flags", Flags)
        assert btfobj.lookup_type("flags") is Flags

    def test_registry_is_per_object(self, btfobj, obj_path):
        btfobj.register_type("plain", Plain)
        with tinybpf.load(obj_path("btf_types")) as other:
            assert other.lookup_type("plain") is None
            other.register_type("plain", Plain)
