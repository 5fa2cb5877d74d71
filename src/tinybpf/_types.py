"""Public enums, constants and small dataclasses.

The uapi enums (BpfMapType, BpfProgType, BpfAttachType, BpfLinkType, BtfKind) are generated
from the pinned libbpf's headers into ``_uapi.py`` (ffi_build/gen_uapi.py, checked against
the compiled extension by tests/test_uapi.py), never typed by hand. They are *open*: a value
newer than the table (a map or program type added by a later kernel) becomes a pseudo-member
named ``UNKNOWN_<n>`` instead of raising, so objects using new kernel features still load
(defect W1 of the first generation).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, Generic, TypeVar

from ._core import kernelcalls
from ._uapi import BpfAttachType, BpfLinkType, BpfMapType, BpfProgType, BtfKind

__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_LOCK",
    "BPF_F_MMAPABLE",
    "BPF_F_NO_PREALLOC",
    "BPF_NOEXIST",
    "BpfAttachType",
    "BpfLinkType",
    "BpfMapType",
    "BpfProgType",
    "BtfField",
    "BtfKind",
    "BtfType",
    "MapInfo",
    "ProgramInfo",
    "RingBufferEvent",
]

BPF_ANY: int = kernelcalls.BPF_ANY
BPF_NOEXIST: int = kernelcalls.BPF_NOEXIST
BPF_EXIST: int = kernelcalls.BPF_EXIST
BPF_F_LOCK: int = kernelcalls.BPF_F_LOCK
# map creation flags (create_map(flags=...)); values from the compiled uapi headers
BPF_F_MMAPABLE: int = kernelcalls.BPF_F_MMAPABLE
BPF_F_NO_PREALLOC: int = kernelcalls.BPF_F_NO_PREALLOC


_E = TypeVar("_E", bound=IntEnum)

# The C prefix of each enum's names: "BPF_PROG_TYPE_XDP" names BpfProgType.XDP.
_C_PREFIXES: dict[type[IntEnum], tuple[str, ...]] = {
    BpfMapType: ("BPF_MAP_TYPE_",),
    BpfProgType: ("BPF_PROG_TYPE_",),
    BpfAttachType: ("BPF_",),
    BpfLinkType: ("BPF_LINK_TYPE_",),
    BtfKind: ("BTF_KIND_",),
}


def enum_arg(cls: type[_E], value: Any, what: str, prefixes: tuple[str, ...] = ()) -> _E:
    """The member of ``cls`` that an argument names: a member, its int, or its name in any
    case, with or without the C prefix (``"xdp"``, ``"XDP"``, ``"BPF_PROG_TYPE_XDP"``).

    The one conversion every function taking an enum uses. ``prefixes`` gives the C prefixes
    of enums made at run time (from BTF); those of tinybpf's enums are known. A member of
    another enum, a bool or an unknown name raises (TypeError / ValueError naming ``what``).
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, Enum):
        # a member of another enum is accepted only when it means the same thing (the
        # kernel's own enum from BTF, e.g. bpf_prog_type.BPF_PROG_TYPE_XDP)
        same = None
        if type(value) not in _C_PREFIXES:  # another of tinybpf's enums: a mistake
            try:
                same = enum_arg(cls, value.name, what, prefixes)
            except ValueError:
                pass
        if same is None or int(same) != value.value:
            raise TypeError(f"{what} must be a {cls.__name__}, its name or int, not {value!r}")
        return same
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a {cls.__name__}, its name or int, not {value!r}")
    if isinstance(value, int):
        return cls(value)
    if not isinstance(value, str):
        raise TypeError(
            f"{what} must be a {cls.__name__}, its name or int, not {type(value).__name__}"
        )
    prefixes = prefixes or _C_PREFIXES.get(cls, ())
    by_name = {name.upper(): member for name, member in cls.__members__.items()}
    key = value.strip().upper()
    bare = _strip(key, prefixes)
    for name in (key, bare, *(prefix + bare for prefix in prefixes)):
        if name in by_name:
            return by_name[name]
    short = sorted({_strip(n, prefixes).lower() for n in by_name})
    hint = f", with or without {' or '.join(prefixes)}" if prefixes else ""
    if len(short) <= 40:
        expected = f"expected one of {', '.join(short)} (any case{hint}) or an int"
    else:
        import difflib

        close = difflib.get_close_matches(_strip(key, prefixes).lower(), short, n=3)
        expected = f"did you mean {' or '.join(close)}?" if close else "not a known name"
    raise ValueError(f"unknown {what} {value!r}: {expected}")


def _strip(name: str, prefixes: tuple[str, ...]) -> str:
    for prefix in sorted(prefixes, key=len, reverse=True):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


@dataclass(frozen=True)
class MapInfo:
    """Static facts about a map.

    Example::

        info = obj.maps["counts"].info
        print(info.name, info.type.name, info.key_size, info.value_size, info.max_entries)
    """

    name: str
    type: BpfMapType
    key_size: int
    value_size: int
    max_entries: int


@dataclass(frozen=True)
class ProgramInfo:
    """Static facts about a program.

    Example::

        info = obj.program("handle_exec").info
        print(info.name, info.section, info.type.name)   # e.g. "handle_exec" "tp/..." TRACEPOINT
    """

    name: str
    section: str
    type: BpfProgType


T = TypeVar("T")


@dataclass(frozen=True)
class RingBufferEvent(Generic[T]):
    """An event tagged with the name of the ring buffer map it came from.

    Example::

        rb = tinybpf.BpfRingBuffer(obj.maps["events"])   # iterator mode: no callback
        async for ev in rb.events():
            print(ev.map_name, ev.data)
    """

    map_name: str
    data: T


@dataclass(frozen=True)
class BtfField:
    """A member of a BTF struct or union.

    ``offset`` is in bytes; ``bit_offset`` and ``bitfield_size`` describe bitfields
    (``bitfield_size`` 0 for ordinary members). ``type`` is the resolved member type.

    Example::

        for f in obj.btf.find_struct("event").fields:
            print(f.name, f.offset, f.size, f.type.name if f.type else None)
    """

    name: str
    offset: int
    size: int
    bit_offset: int = 0
    bitfield_size: int = 0
    type: BtfType | None = None


@dataclass(frozen=True)
class BtfType:
    """A BTF type: resolved (typedefs and qualifiers followed) or as written.

    ``name`` is the resolved type's name; ``type_name`` the name as written (e.g. ``__s32``
    for a typedef). ``signed`` is set for INT and ENUM; ``elem`` and ``nelems`` for ARRAY;
    ``fields`` for STRUCT, UNION and DATASEC; ``enum_values`` for ENUM and ENUM64;
    ``ref_id`` is the type a PTR, TYPEDEF, qualifier, FUNC, VAR, DECL_TAG or FUNC_PROTO
    (its return type) refers to; ``params`` are a FUNC_PROTO's parameters (name and type);
    ``linkage`` is a FUNC's or VAR's linkage (0 static, 1 global, 2 extern);
    ``encoding`` holds an INT's ``BTF_INT_SIGNED``, ``BTF_INT_CHAR`` and ``BTF_INT_BOOL``
    bits (``tinybpf.BTF_INT_SIGNED`` etc.);
    ``kind_flag`` the raw flag (a FWD of a union, a bitfield struct, a signed enum...);
    ``component_idx`` a DECL_TAG's member or parameter index (-1: the type itself).

    Example::

        bt = obj.btf.find_struct("event")
        print(bt.kind.name, bt.size, [f.name for f in bt.fields])
        print(bt)   # the C declaration: struct event { ... };
    """

    name: str
    kind: BtfKind
    size: int | None
    fields: tuple[BtfField, ...] | None = None
    type_id: int = 0
    type_name: str = ""
    signed: bool = False
    encoding: int = 0
    elem: BtfType | None = None
    nelems: int = 0
    enum_values: tuple[tuple[str, int], ...] | None = None
    ref_id: int = 0
    params: tuple[BtfField, ...] | None = None
    linkage: int = 0
    kind_flag: bool = False
    component_idx: int = -1

    def __str__(self) -> str:
        """The type as a C declaration (structs, unions and enums with their members)."""
        if self.kind in (BtfKind.STRUCT, BtfKind.UNION):
            kw = self.kind.name.lower()
            lines = [f"{kw} {self.name} {{" if self.name else f"{kw} {{"]
            for f in self.fields or ():
                lines.append(f"\t{_c_member(f)};")
            lines.append("};")
            return "\n".join(lines)
        if self.kind in (BtfKind.ENUM, BtfKind.ENUM64):
            body = "".join(f"\t{n} = {v},\n" for n, v in self.enum_values or ())
            return f"enum {self.name} {{\n{body}}};"
        return _c_type_name(self)


def _c_type_name(t: BtfType | None) -> str:
    if t is None:
        return "void"
    if t.kind in (BtfKind.STRUCT, BtfKind.UNION) and t.type_name == t.name:
        return f"{t.kind.name.lower()} {t.name}" if t.name else t.kind.name.lower()
    if t.kind in (BtfKind.ENUM, BtfKind.ENUM64) and t.type_name == t.name:
        return f"enum {t.name}"
    if t.kind == BtfKind.PTR:
        return "void *"
    return t.type_name or t.name or "void"


def _c_member(f: BtfField) -> str:
    t = f.type
    if t is not None and t.kind in (BtfKind.STRUCT, BtfKind.UNION) and not t.name:
        body = str(t).replace("\n", "\n\t").removesuffix(";")
        return f"{body} {f.name}" if f.name else body
    dims = ""
    while t is not None and t.kind == BtfKind.ARRAY:
        dims += f"[{t.nelems}]"
        t = t.elem
    tname = _c_type_name(t)
    sep = "" if tname.endswith("*") else " "
    bits = f": {f.bitfield_size}" if f.bitfield_size else ""
    return f"{tname}{sep}{f.name}{dims}{bits}"
