"""One layout engine (tinybpf._layout) for the run-time ctypes types and ``tinybpf gen``:
for every struct and union of every fixture object, the class the generated module defines
and the class tinybpf builds at run time place every field at the same offset with the same
size, expose the same fields, and read the same bytes the same way."""

from __future__ import annotations

import ctypes
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import TESTS, bpf_obj

import tinybpf
from tinybpf._ctypes_gen import ctype_for
from tinybpf._layout import record_layout
from tinybpf._types import BtfField, BtfKind, BtfType
from tinybpf.codegen import generate_module
from tinybpf.tools.codegen.writer import _ModuleWriter

FIXTURES = sorted(p.name.removesuffix(".bpf.c") for p in (TESTS / "bpf").glob("*.bpf.c"))


def _slots(cls: Any) -> list[tuple[int, int]]:
    """(offset, size) of every entry of _fields_, hidden storage included."""
    return [(getattr(cls, n).offset, getattr(cls, n).size) for n, *_ in cls._fields_]


def _module(name: str, tmp_path: Path) -> ModuleType | None:
    try:
        text = generate_module(bpf_obj(name), all_types=True)
    except (ValueError, tinybpf.BpfError):
        return None  # no BTF, or an object libbpf refuses: nothing to compare
    mod = ModuleType(f"layout_{name}")
    sys.modules[mod.__name__] = mod
    try:
        exec(compile(text, f"{name}_skel.py", "exec"), mod.__dict__)
    finally:
        del sys.modules[mod.__name__]
    return mod


@pytest.mark.parametrize("name", FIXTURES)
def test_generated_and_runtime_layouts_are_identical(name: str, tmp_path: Path) -> None:
    mod = _module(name, tmp_path)
    if mod is None:
        pytest.skip(f"{name}.bpf.o: tinybpf gen refuses it (no BTF or invalid)")
    records = {
        c: cls
        for c, cls in mod.BTF_TYPES.items()
        if isinstance(cls, type) and issubclass(cls, (ctypes.Structure, ctypes.Union))
    }
    with tinybpf.open(bpf_obj(name)) as obj:
        assert obj.btf is not None
        for cname, gen in records.items():
            rt = obj.btf.ctype(cname)
            assert ctypes.sizeof(gen) == ctypes.sizeof(rt), cname
            assert _slots(gen) == _slots(rt), cname
            assert gen._tinybpf_fields_ == rt._tinybpf_fields_, cname
            data = bytes(range(7, 256)) * (ctypes.sizeof(rt) // 249 + 1)
            g = gen.from_buffer_copy(data[: ctypes.sizeof(gen)])
            r = rt.from_buffer_copy(data[: ctypes.sizeof(rt)])
            assert g.to_dict() == r.to_dict(), cname


def test_layout_is_data(tmp_path: Path) -> None:
    """The engine's answer for a struct with a hole, a bitfield run and a tail pad."""
    with tinybpf.open(bpf_obj("types_events")) as obj:
        assert obj.btf is not None
        bt = obj.btf.find_struct("bits")
        layout = record_layout(bt)
        assert sum(s.size for s in layout.slots) == bt.size == layout.size
        offsets = [s.offset for s in layout.slots]
        assert offsets == sorted(offsets)
        run = [s for s in layout.slots if s.kind == "bits"]
        assert run and all(b.bits > 0 for s in run for b in s.bitfields)
        named = {b.name for s in run for b in s.bitfields}
        assert named == {f.name for f in bt.fields if f.bitfield_size}


def _odd_struct() -> BtfType:
    """struct odd { int a; <unnamed int>; char c; } with a hole and a tail (malformed BTF:
    an unnamed member that is not a struct or union)."""
    i32 = BtfType("int", BtfKind.INT, 4, signed=True, type_id=1)
    i8 = BtfType("char", BtfKind.INT, 1, signed=True, type_id=2)
    fields = (
        BtfField("a", 0, 4, 0, 0, i32),
        BtfField("", 4, 4, 32, 0, i32),
        BtfField("c", 12, 1, 96, 0, i8),
    )
    return BtfType("odd", BtfKind.STRUCT, 16, fields, type_id=99)


def test_unnamed_scalar_member_is_hidden_storage_in_both() -> None:
    """Run time and tinybpf gen both keep an unnamed non-record member as hidden storage (gen
    used to list it in _anonymous_, and the generated class failed to build)."""
    bt = _odd_struct()
    layout = record_layout(bt)
    assert [s.kind for s in layout.slots] == ["field", "unnamed", "pad", "field", "pad"]
    rt = ctype_for(bt, {})
    with tinybpf.open(bpf_obj("types_events")) as obj:
        writer = _ModuleWriter(obj, bpf_obj("types_events"), "Odd", False, embed=False)
        code = writer.record(bt, "Odd").code
    ns: dict[str, Any] = {"ctypes": ctypes, "typing": typing, "_BtfStruct": tinybpf.BtfStruct}
    exec(compile(code, "odd", "exec"), ns)
    gen = ns["Odd"]
    assert _slots(gen) == _slots(rt) == [(0, 4), (4, 4), (8, 4), (12, 1), (13, 3)]
    assert gen._tinybpf_fields_ == rt._tinybpf_fields_ == ("a", "c")
