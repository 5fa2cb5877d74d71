"""BTF: the type information of BPF objects and of the kernel.

:class:`Btf` wraps a libbpf ``struct btf`` and hands out frozen :class:`BtfType` snapshots:
nothing returned to Python points into libbpf memory, so a snapshot stays valid after the
BTF (or its object) is closed, and every method of a closed ``Btf`` raises
:class:`~tinybpf.BpfClosedError` instead of touching freed memory.

Example::

    with tinybpf.Btf.from_vmlinux() as btf:
        task = btf.resolve(btf.find("task_struct"))
        print(task.size, [f.name for f in task.fields][:3])
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os
from collections.abc import Callable, Iterator
from typing import Any

from ._core import btfcalls, call_ptr, check_int, cstr
from ._core.owner import Borrower, Owner, unguarded
from ._layout import RecordLayout, record_layout
from ._types import BtfField, BtfKind, BtfType, enum_arg
from .errors import BpfClosedError, BpfError, BpfFileNotFoundError, BtfValidationError

__all__ = ["Btf", "btf_type_json", "validate_python_type", "vmlinux_header"]

_MODIFIERS = frozenset(
    {BtfKind.TYPEDEF, BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT, BtfKind.TYPE_TAG}
)
_SIZED = frozenset(
    {
        BtfKind.INT,
        BtfKind.PTR,
        BtfKind.ARRAY,
        BtfKind.STRUCT,
        BtfKind.UNION,
        BtfKind.ENUM,
        BtfKind.ENUM64,
        BtfKind.FLOAT,
        BtfKind.DATASEC,
    }
)
_RECORDS = frozenset({BtfKind.STRUCT, BtfKind.UNION, BtfKind.DATASEC})
_FIND_KINDS = (
    BtfKind.STRUCT,
    BtfKind.UNION,
    BtfKind.TYPEDEF,
    BtfKind.ENUM,
    BtfKind.ENUM64,
    BtfKind.INT,
    BtfKind.FLOAT,
    BtfKind.FUNC,
    BtfKind.VAR,
    BtfKind.DATASEC,
    BtfKind.FWD,
)


class Btf(Borrower):
    """A BTF type table (an object's ``.BTF``, the kernel's vmlinux BTF, or a file).

    Types are addressed by id. :meth:`type` returns a type as written (typedefs and
    qualifiers included); :meth:`resolve` follows typedefs, qualifiers and type tags.

    Example::

        with tinybpf.Btf.from_vmlinux() as btf:
            task = btf.find_struct("task_struct")
            print(task.size, btf.type(btf.find("pid_t")).kind.name)   # ... TYPEDEF
    """

    def __init__(
        self,
        ptr: Any,
        *,
        owned: bool,
        is_open: Callable[[], bool] | None = None,
        description: str = "",
        guard: Owner | None = None,
    ) -> None:
        self._ptr = ptr
        # the owning object's for an object's BTF; a standalone BTF is its own owner
        self._guard = guard if guard is not None else Owner()
        self._owned = owned
        self._is_open = is_open
        self._closed = False
        self._description = description
        self._raw: dict[int, BtfType] = {}
        self._resolved: dict[int, BtfType] = {}
        self._ctypes: dict[int, Any] = {}

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_vmlinux(cls) -> Btf:
        """The running kernel's BTF (``/sys/kernel/btf/vmlinux``)."""
        ptr = call_ptr("btf__load_vmlinux_btf", what="load vmlinux BTF")
        btf = cls(ptr, owned=True, description="vmlinux")
        btf._validate("load vmlinux BTF failed")
        return btf

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Btf:
        """BTF from a raw BTF file or the ``.BTF`` section of an ELF file."""
        p = os.fspath(path)
        if not os.path.exists(p):
            raise BpfFileNotFoundError(f"BTF file not found: {p}", errno_mod.ENOENT)
        if os.path.isdir(p):
            raise BpfError(f"parse BTF '{p}' failed: it is a directory", errno_mod.EISDIR)
        ptr = btfcalls.parse(p, f"parse BTF '{p}'")
        btf = cls(ptr, owned=True, description=str(p))
        btf._validate(f"parse BTF '{p}' failed")
        return btf

    @classmethod
    def from_kernel_id(cls, btf_id: int) -> Btf:
        """A BTF object loaded in the kernel, by id (e.g. ``bpf_map_info.btf_id``)."""
        ptr = call_ptr(
            "btf__load_from_kernel_by_id", btf_id, what=f"load BTF id {btf_id} from kernel"
        )
        btf = cls(ptr, owned=True, description=f"kernel id {btf_id}")
        btf._validate(f"load BTF id {btf_id} from kernel failed")
        return btf

    def _validate(self, message: str) -> None:
        """Refuse BTF that libbpf parses but that would crash or hang later (cycles,
        references out of range, members without alignment). Frees it on failure."""
        err, bad = btfcalls.check(self._p())
        if err:
            self.close()
            raise BpfError(f"{message}: malformed BTF: type {bad} has {btf_defect(-err)}", -err)

    def _forget(self) -> None:
        """Drop what was read from the BTF (its owner changed it, e.g. a resized section)."""
        self._raw.clear()
        self._resolved.clear()
        self._ctypes.clear()

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed or (self._is_open is not None and not self._is_open())

    def _p(self) -> Any:
        ptr = self._ptr  # read before the checks: close() sets _closed, then clears it
        if self._closed:
            raise BpfClosedError("BTF is closed")
        if self._is_open is not None and not self._is_open():
            raise BpfClosedError("Cannot use BTF after BpfObject is closed")
        if not self._guard.held():
            raise unguarded("Btf._p()")
        return ptr

    def close(self) -> None:
        """Free the BTF (no-op for an object's BTF, which the object owns). Idempotent.

        Waits for calls in flight in other threads; from within a call of the same thread
        (a signal handler), the BTF is closed at once and freed when that call returns."""
        g = self.__dict__.get("_guard")
        if g is None:  # a half-built Btf
            return
        with g.lock:
            if self._closed:
                return
            self._closed = True
            ptr, self._ptr = self._ptr, None
            if self._owned and ptr is not None:
                g.release(lambda: btfcalls.free(ptr))

    def __enter__(self) -> Btf:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        if self.closed:
            return f"<Btf {self._description} closed>"
        return f"<Btf {self._description} types={len(self)}>"

    # --- lookup ---------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of types, not counting void (id 0)."""
        return int(btfcalls.type_cnt(self._p())) - 1

    def __iter__(self) -> Iterator[BtfType]:
        """Every type as written, in id order (id 1 onwards)."""
        for tid in range(1, len(self) + 1):
            yield self.type(tid)

    def find(self, name: str, kind: BtfKind | str | int | None = None) -> int:
        """The id of the type called ``name`` (of ``kind`` if given: a BtfKind, its name such
        as ``"struct"``, or its int); KeyError if absent."""
        p = self._p()
        if kind is not None:
            kind = enum_arg(BtfKind, kind, "BTF kind")
        kinds = (kind,) if kind is not None else _FIND_KINDS
        bname = cstr(name)
        for k in kinds:
            tid = btfcalls.find_by_name_kind(p, bname, int(k))
            if tid > 0:
                return int(tid)
        what = f"{kind.name.lower()} " if kind is not None else ""
        raise KeyError(f"BTF type {what}'{name}' not found")

    def _name(self, p: Any, off: int) -> str:
        return btfcalls.name_by_offset(p, off)

    def _t(self, p: Any, tid: int) -> Any:
        t = btfcalls.type_by_id(p, tid)
        if t is None:
            raise BpfError(f"BTF type id {tid} out of range", 22)
        return t

    def type(self, type_id: int) -> BtfType:
        """The type with this id, as written (a typedef stays a TYPEDEF)."""
        p = self._p()
        cached = self._raw.get(type_id)
        if cached is not None:
            return cached
        t = self._t(p, type_id)
        kind = BtfKind(btfcalls.kind(t))
        if kind in _MODIFIERS or kind in (BtfKind.PTR, BtfKind.FUNC, BtfKind.VAR):
            name = self._name(p, t.name_off)
            ref = int(t.type)
            size = None
            linkage = 0
            if kind in _MODIFIERS:
                target = self.resolve(type_id)
                size = target.size
            elif kind == BtfKind.PTR:
                size = self._size(p, type_id)
            elif kind == BtfKind.FUNC:
                linkage = int(btfcalls.vlen(t))  # a FUNC keeps its linkage in vlen
            else:
                linkage = btfcalls.var_linkage(t)
                size = self._size(p, ref)
            bt = BtfType(
                name=name,
                kind=kind,
                size=size,
                type_id=type_id,
                type_name=name,
                ref_id=ref,
                linkage=linkage,
                kind_flag=bool(btfcalls.kflag(t)),
            )
        else:
            bt = self._describe(p, type_id, t, kind, self._name(p, t.name_off))
        self._raw[type_id] = bt
        return bt

    def resolve(self, type_id: int) -> BtfType:
        """The type with this id with typedefs, qualifiers and type tags followed.

        ``name`` is the resolved type's name and ``type_name`` the name as written.
        """
        p = self._p()
        cached = self._resolved.get(type_id)
        if cached is not None:
            return cached
        t = self._t(p, type_id)
        written = self._name(p, t.name_off)
        tid = type_id
        seen = 0
        kind = BtfKind(btfcalls.kind(t))
        while kind in _MODIFIERS:
            tid = int(t.type)
            t = self._t(p, tid)
            kind = BtfKind(btfcalls.kind(t))
            if not written:  # const volatile __u32: the name as written is __u32
                written = self._name(p, t.name_off)
            seen += 1
            if seen > 64:
                raise BpfError(f"BTF type id {type_id}: modifier chain too long", 22)
        name = self._name(p, t.name_off)
        bt = self._describe(p, tid, t, kind, name, type_name=written or name)
        self._resolved[type_id] = bt
        return bt

    def _size(self, p: Any, tid: int) -> int | None:
        size = btfcalls.resolve_size(p, tid)
        return int(size) if size >= 0 else None

    def _describe(
        self, p: Any, tid: int, t: Any, kind: BtfKind, name: str, type_name: str = ""
    ) -> BtfType:
        size = self._size(p, tid) if kind in _SIZED else None
        fields: tuple[BtfField, ...] | None = None
        signed = False
        encoding = 0
        elem: BtfType | None = None
        nelems = 0
        values: tuple[tuple[str, int], ...] | None = None
        ref = 0
        vlen = int(btfcalls.vlen(t))
        if kind in (BtfKind.STRUCT, BtfKind.UNION):
            members = btfcalls.members(t)
            out = []
            for i in range(vlen):
                m = members[i]
                bit_off = int(btfcalls.member_bit_offset(t, i))
                bits = int(btfcalls.member_bitfield_size(t, i))
                mtype = self.resolve(int(m.type))
                out.append(
                    BtfField(
                        name=self._name(p, m.name_off),
                        offset=bit_off // 8,
                        size=mtype.size or 0,
                        bit_offset=bit_off,
                        bitfield_size=bits,
                        type=mtype,
                    )
                )
            fields = tuple(out)
        elif kind == BtfKind.INT:
            encoding = int(btfcalls.int_encoding(t))
            signed = bool(encoding & btfcalls.INT_SIGNED)
        elif kind == BtfKind.ENUM:
            signed = bool(btfcalls.kflag(t))
            enums = btfcalls.enums(t)
            mask = (1 << (8 * min(size or 4, 8))) - 1  # (a corrupt size must not explode)
            values = tuple(
                (
                    self._name(p, enums[i].name_off),
                    int(enums[i].val) if signed else int(enums[i].val) & mask,
                )
                for i in range(vlen)
            )
        elif kind == BtfKind.ENUM64:
            signed = bool(btfcalls.kflag(t))
            enums64 = btfcalls.enums64(t)
            vals = []
            for i in range(vlen):
                v = btfcalls.enum64_value(enums64, i)
                if signed and v >= 1 << 63:
                    v -= 1 << 64
                vals.append((self._name(p, enums64[i].name_off), v))
            values = tuple(vals)
        elif kind == BtfKind.ARRAY:
            arr = btfcalls.array(t)
            elem = self.resolve(int(arr.type))
            nelems = int(arr.nelems)
        elif kind == BtfKind.DATASEC:
            secinfos = btfcalls.var_secinfos(t)
            out = []
            for i in range(vlen):
                si = secinfos[i]
                var_t = self._t(p, int(si.type))
                vtype = self.resolve(int(var_t.type))
                out.append(
                    BtfField(
                        name=self._name(p, var_t.name_off),
                        offset=int(si.offset),
                        size=int(si.size),
                        bit_offset=int(si.offset) * 8,
                        type=vtype,
                    )
                )
            fields = tuple(out)
        elif kind == BtfKind.PTR:
            ref = int(t.type)
        params: tuple[BtfField, ...] | None = None
        component_idx = -1
        if kind == BtfKind.FUNC_PROTO:
            ref = int(t.type)  # the return type (0: void)
            plist = btfcalls.params(t)
            params = tuple(
                BtfField(
                    name=self._name(p, plist[i].name_off),
                    offset=0,
                    size=(self._size(p, int(plist[i].type)) or 0) if plist[i].type else 0,
                    type=self.type(int(plist[i].type)) if plist[i].type else None,
                )
                for i in range(vlen)
            )
        elif kind == BtfKind.DECL_TAG:
            ref = int(t.type)
            component_idx = btfcalls.decl_tag_component_idx(t)
        return BtfType(
            name=name,
            kind=kind,
            size=size,
            fields=fields,
            type_id=tid,
            type_name=type_name or name,
            signed=signed,
            encoding=encoding,
            elem=elem,
            nelems=nelems,
            enum_values=values,
            ref_id=ref,
            params=params,
            kind_flag=bool(btfcalls.kflag(t)),
            component_idx=component_idx,
        )

    def find_struct(self, name: str) -> BtfType:
        """The resolved struct, union or typedef'd struct/union called ``name``."""
        for kind in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.TYPEDEF):
            try:
                tid = self.find(name, kind)
            except KeyError:
                continue
            bt = self.resolve(tid)
            if bt.kind in (BtfKind.STRUCT, BtfKind.UNION):
                return bt
        raise KeyError(f"BTF struct or union '{name}' not found")

    def ctype(self, name: str | int) -> Any:
        """The Python type generated for a BTF type (by name or id), cached.

        Structs and unions become ctypes classes with BTF's exact layout, a readable repr,
        ``to_dict()`` and ``from_dict()``; char arrays read as bytes; ints, enums and floats
        become the matching ctypes scalar.

        Example::

            Event = obj.btf.ctype("event")
            ev = Event.from_buffer_copy(data)
        """
        from ._ctypes_gen import ctype_for

        self._p()
        if isinstance(name, int):
            bt = self.resolve(name)
        else:
            try:
                bt = self.find_struct(name)
            except KeyError:
                bt = self.resolve(self.find(name))
        return ctype_for(bt, self._ctypes, bt.type_name)

    def layout(self, record: str | int | BtfType) -> RecordLayout:
        """Where each member of a struct, union or data section sits: the
        :class:`~tinybpf.RecordLayout` (members, padding, bitfield runs, as offsets and
        sizes) that :meth:`ctype` builds its ctypes class from and ``tinybpf gen`` writes.

        ``record`` is a struct or union name (as :meth:`find_struct`), a data section name
        (``".bss"``), a type id, or a :class:`~tinybpf.BtfType` of this BTF; typedefs and
        qualifiers are followed. Another kind raises ValueError; an unknown name KeyError.

        Example::

            layout = obj.btf.layout("event")
            print([(s.kind, s.field.name if s.field else "", s.offset) for s in layout.slots])
        """
        self._p()
        if isinstance(record, BtfType):
            bt = record
            if bt.kind not in _RECORDS and bt.type_id:
                bt = self.resolve(bt.type_id)
        elif isinstance(record, int) and not isinstance(record, bool):
            bt = self.resolve(record)
        elif isinstance(record, str):
            tid = self.find(record, BtfKind.DATASEC) if record.startswith(".") else 0
            bt = self.resolve(tid) if tid else self.find_struct(record)
        else:
            raise TypeError(
                f"Btf.layout() takes a name, a type id or a BtfType, not {type(record).__name__}"
            )
        if bt.kind not in _RECORDS:
            raise ValueError(
                f"BTF type {bt.type_name or bt.name or bt.type_id!r} is a {bt.kind.name}: "
                "only structs, unions and data sections have a layout"
            )
        return record_layout(bt)

    def enum(self, name: str) -> Any:
        """An IntEnum with the members of the BTF enum ``name``."""
        from ._ctypes_gen import int_enum_for

        for kind in (BtfKind.ENUM, BtfKind.ENUM64, BtfKind.TYPEDEF):
            try:
                bt = self.resolve(self.find(name, kind))
            except KeyError:
                continue
            if bt.kind in (BtfKind.ENUM, BtfKind.ENUM64):
                return int_enum_for(bt)
        raise KeyError(f"BTF enum '{name}' not found")

    def struct_names(self) -> list[str]:
        """Names of every named struct and union (for error hints)."""
        p = self._p()
        names = []
        for tid in range(1, int(btfcalls.type_cnt(p))):
            t = btfcalls.type_by_id(p, tid)
            if btfcalls.kind(t) in (btfcalls.KIND_STRUCT, btfcalls.KIND_UNION) and t.name_off:
                names.append(self._name(p, t.name_off))
        return names

    def to_c(self) -> str:
        """Every type as C declarations (libbpf's btf_dump)."""
        p = self._p()
        ret, text = btfcalls.dump_c(p)
        if -ret in _DEFECTS:
            raise BpfError(f"dump BTF as C failed: malformed BTF: {btf_defect(-ret)}", -ret)
        check_int(ret, "dump BTF as C failed")
        return text


_DEFECTS = {
    errno_mod.ELOOP: "a reference cycle",
    errno_mod.EDOM: "a member whose type has no alignment",
    errno_mod.EINVAL: "an invalid reference",
    errno_mod.E2BIG: (
        f"a chain of references deeper than {btfcalls.MAX_DEPTH} types "
        "(tinybpf's BTF depth limit, which keeps libbpf's recursive walks off the end of "
        "the stack)"
    ),
    errno_mod.EOVERFLOW: (
        f"types whose layout would take libbpf more than {btfcalls.MAX_COST:,} "
        "steps to walk or print (tinybpf's BTF cost limit)"
    ),
}


def btf_defect(err: int) -> str:
    """What tinybpf_btf_check() (ffi_build/shim.c) found, from the errno it returned."""
    return _DEFECTS.get(err, "an invalid reference")


def vmlinux_header(btf: Btf) -> str:
    """A ``vmlinux.h`` for CO-RE programs: the BTF as C, with relocatable records."""
    body = btf.to_c()
    return (
        "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n"
        "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
        "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n"
        "#endif\n\n"
        f"{body}\n"
        "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n"
        "#endif /* __VMLINUX_H__ */\n"
    )


def btf_type_json(t: BtfType) -> dict[str, Any]:
    """A BTF type as JSON-serialisable data (``tinybpf btf dump --format json``)."""
    d: dict[str, Any] = {"id": t.type_id, "kind": t.kind.name, "name": t.name}
    if t.size is not None:
        d["size"] = t.size
    if t.ref_id:
        d["type_id"] = t.ref_id
    if t.kind == BtfKind.INT:
        d["signed"] = t.signed
    if t.elem is not None:
        d["elem_type_id"] = t.elem.type_id
        d["nelems"] = t.nelems
    if t.enum_values is not None:
        d["values"] = dict(t.enum_values)
    if t.fields is not None:
        d["members"] = [
            {
                "name": f.name,
                "type_id": f.type.type_id if f.type else 0,
                "offset": f.offset,
                "size": f.size,
                **(
                    {"bit_offset": f.bit_offset, "bitfield_size": f.bitfield_size}
                    if f.bitfield_size
                    else {}
                ),
            }
            for f in t.fields
        ]
    return d


# --- validation of Python types against BTF -------------------------------------------------

_SIMPLE = ctypes._SimpleCData
_FLOAT_CTYPES = (ctypes.c_float, ctypes.c_double)


def _tname(py: Any) -> str:
    return getattr(py, "__name__", repr(py))


def _layout_hint(bt: BtfType) -> list[str]:
    if not bt.fields:
        return [f"BTF type '{bt.name}' ({bt.kind.name}) is {bt.size} bytes"]
    lines = [f"BTF {bt.kind.name.lower()} '{bt.name}' ({bt.size} bytes):"]
    for f in bt.fields:
        t = f.type
        tdesc = t.type_name if t is not None else "?"
        if t is not None and t.kind == BtfKind.ARRAY:
            tdesc = f"{t.elem.type_name if t.elem else '?'}[{t.nelems}]"
        bits = f":{f.bitfield_size}" if f.bitfield_size else ""
        lines.append(f"  {f.name}: {tdesc}{bits} at offset {f.offset} ({f.size} bytes)")
    return lines


def _cfield_bits(cf: Any) -> tuple[int, int]:
    """(bit offset within the field's storage unit, bit size) of a ctypes bitfield, or (0, 0)."""
    if hasattr(cf, "bit_size"):  # Python 3.14+
        return int(getattr(cf, "bit_offset", 0)), int(cf.bit_size if cf.is_bitfield else 0)
    size = int(cf.size)
    if size >> 16:
        return size & 0xFFFF, size >> 16
    return 0, 0


def validate_python_type(
    py: Any, bt: BtfType, validate_field_names: bool = True, what: str = "", *, views: bool = False
) -> None:
    """Check that Python type ``py`` can represent BTF type ``bt``.

    With ``validate_field_names`` (the default) this is strict: kind, size, field count,
    names, offsets, field types (size, signedness, nested structs, array lengths) and
    bitfields are compared. With ``validate_field_names=False`` only sizes and offsets are
    (the whole type's size; for structs and unions the field count, each field's offset
    and size, nested the same way), as in the first generation: fields may be renamed and
    retyped. ``views`` (used by ``BpfMap.typed()``) also accepts, in strict mode, a
    same-size view of a scalar BTF type: a ctypes integer of the other signedness, or a
    one-field ``ctypes.Structure`` whose field is such a view. Raises
    :class:`BtfValidationError`.
    """
    label = what or bt.name or bt.type_name
    if not validate_field_names:
        _validate_loose(py, bt, label)
    elif not (views and _is_scalar_view(py, bt, label)):
        _validate(py, bt, True, label)


_SCALAR_KINDS = (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.FLOAT, BtfKind.PTR)


def _is_scalar_view(py: Any, bt: BtfType, label: str) -> bool:
    """True when ``py`` is an accepted same-size view of scalar ``bt`` (strict otherwise)."""
    if bt.kind not in _SCALAR_KINDS or not isinstance(py, type):
        return False
    if issubclass(py, _SIMPLE) and bt.kind in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64):
        # an integer of the same size read with the other signedness: a deliberate view
        return (
            not issubclass(py, _FLOAT_CTYPES)
            and py not in (ctypes.c_char, ctypes.c_wchar)
            and ctypes.sizeof(py) == bt.size
        )
    if issubclass(py, ctypes.Structure) and not hasattr(py, "_tinybpf_fields_"):
        fields = list(getattr(py, "_fields_", ()))
        if len(fields) != 1 or len(fields[0]) > 2 or ctypes.sizeof(py) != bt.size:
            return False
        ftype = fields[0][1]
        if int(getattr(py, fields[0][0]).offset) != 0 or ctypes.sizeof(ftype) != bt.size:
            return False
        if not _is_scalar_view(ftype, bt, label):
            _validate(ftype, bt, True, f"{label} (as {_tname(py)}.{fields[0][0]})")
        return True
    return False


def _field_pairs(py: Any, bt: BtfType, label: str) -> list[tuple[Any, BtfField]]:
    """The ``_fields_`` entries of ctypes struct/union ``py`` paired with ``bt``'s fields
    (their count checked); none for a type generated from BTF, validated here at once."""
    if hasattr(py, "_tinybpf_fields_"):
        _validate_generated(py, bt, label)
        return []
    btf_fields = bt.fields or ()
    py_fields = list(getattr(py, "_fields_", ()))
    if len(py_fields) != len(btf_fields):
        raise _fail(
            f"Field count mismatch: {_tname(py)} has {len(py_fields)} fields, "
            f"BTF type '{label}' has {len(btf_fields)} fields",
            bt,
        )
    return list(zip(py_fields, btf_fields, strict=True))


def _validate_loose(py: Any, bt: BtfType, label: str) -> None:
    """Sizes and offsets only (``validate_field_names=False``)."""
    if py in (bytes, int, float):
        return
    if not isinstance(py, type) or not issubclass(
        py, (ctypes.Structure, ctypes.Union, ctypes.Array, _SIMPLE)
    ):
        raise BtfValidationError(
            f"{_tname(py)} is not a supported type; use int, float, bytes or a ctypes type"
        )
    size = ctypes.sizeof(py)
    if bt.size is not None and size != bt.size:
        raise _fail(
            f"Size mismatch: {_tname(py)} is {size} bytes, BTF type '{label}' is {bt.size} bytes",
            bt,
        )
    if not (
        issubclass(py, (ctypes.Structure, ctypes.Union))
        and bt.kind in (BtfKind.STRUCT, BtfKind.UNION)
    ):
        return
    pairs = _field_pairs(py, bt, label)
    for entry, bf in pairs:
        fname, ftype = entry[0], entry[1]
        cf = getattr(py, fname)
        if bf.bitfield_size or len(entry) > 2:
            in_unit, _cbits = _cfield_bits(cf)
            py_bit = int(cf.offset) * 8 + in_unit
            if py_bit != bf.bit_offset or (entry[2] if len(entry) > 2 else 0) != bf.bitfield_size:
                raise _fail(
                    f"Field '{fname}' at bit offset {py_bit}, BTF field '{bf.name}' "
                    f"expects a {bf.bitfield_size or 'non'}-bit field at bit offset "
                    f"{bf.bit_offset}",
                    bt,
                )
            continue
        if int(cf.offset) != bf.offset:
            raise _fail(
                f"Field '{fname}' at offset {cf.offset}, BTF field '{bf.name}' "
                f"expects offset {bf.offset}",
                bt,
            )
        if bf.type is not None:
            _validate_loose(ftype, bf.type, f"{label}.{bf.name}")


def _fail(msg: str, bt: BtfType) -> BtfValidationError:
    return BtfValidationError(msg, _layout_hint(bt))


def _validate(py: Any, bt: BtfType, names: bool, label: str) -> None:
    if py is bytes:
        return
    if py is int:
        if bt.kind not in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.PTR):
            raise _fail(f"int cannot represent BTF {bt.kind.name} '{label}'", bt)
        return
    if py is float:
        if bt.kind != BtfKind.FLOAT:
            raise _fail(f"float cannot represent BTF {bt.kind.name} '{label}'", bt)
        return
    if not isinstance(py, type) or not issubclass(
        py, (ctypes.Structure, ctypes.Union, ctypes.Array, _SIMPLE)
    ):
        raise BtfValidationError(
            f"{_tname(py)} is not a supported type; use int, float, bytes or a ctypes type"
        )
    size = ctypes.sizeof(py)
    if bt.size is not None and size != bt.size:
        raise _fail(
            f"Size mismatch: {_tname(py)} is {size} bytes, BTF type '{label}' is {bt.size} bytes",
            bt,
        )
    if issubclass(py, (ctypes.Structure, ctypes.Union)):
        want = BtfKind.STRUCT if issubclass(py, ctypes.Structure) else BtfKind.UNION
        if bt.kind != want:
            raise _fail(
                f"Kind mismatch: {_tname(py)} is a {want.name.lower()}, "
                f"BTF type '{label}' is {bt.kind.name}",
                bt,
            )
        _validate_fields(py, bt, names, label)
    elif issubclass(py, ctypes.Array):
        if bt.kind != BtfKind.ARRAY or bt.elem is None:
            raise _fail(
                f"Kind mismatch: {_tname(py)} is an array, BTF '{label}' is {bt.kind.name}", bt
            )
        length: int = py.__dict__["_length_"]
        if length != bt.nelems:
            raise _fail(
                f"Array length mismatch: {_tname(py)} has {length} elements, "
                f"BTF '{label}' has {bt.nelems}",
                bt,
            )
        _validate(py._type_, bt.elem, names, f"{label}[]")
    else:
        _validate_scalar(py, bt, label)


def _validate_scalar(py: Any, bt: BtfType, label: str) -> None:
    if bt.kind in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.ARRAY):
        raise _fail(f"Kind mismatch: {_tname(py)} is a scalar, BTF '{label}' is {bt.kind.name}", bt)
    if bt.kind == BtfKind.FLOAT:
        if py not in _FLOAT_CTYPES and not issubclass(py, _FLOAT_CTYPES):
            raise _fail(f"Type mismatch: {_tname(py)} for BTF float '{label}'", bt)
        return
    if issubclass(py, _FLOAT_CTYPES):
        raise _fail(f"Type mismatch: {_tname(py)} is a float, BTF '{label}' is {bt.kind.name}", bt)
    if bt.kind == BtfKind.INT and (bt.size or 0) > 1 and not (bt.encoding & btfcalls.INT_BOOL):
        py_signed = py(-1).value == -1 if py not in (ctypes.c_char, ctypes.c_wchar) else False
        if py_signed != bt.signed:
            want = "signed" if bt.signed else "unsigned"
            raise _fail(
                f"Signedness mismatch: {_tname(py)} for {want} BTF type '{bt.type_name or label}'",
                bt,
            )


def _flat_fields(bt: BtfType, base: int = 0) -> dict[str, tuple[int, BtfField]]:
    """Named members with their byte offsets, anonymous members flattened."""
    out: dict[str, tuple[int, BtfField]] = {}
    for f in bt.fields or ():
        if f.name:
            out[f.name] = (base + f.offset, f)
        elif f.type is not None and f.type.kind in (BtfKind.STRUCT, BtfKind.UNION):
            out.update(_flat_fields(f.type, base + f.offset))
    return out


def _validate_generated(py: Any, bt: BtfType, label: str) -> None:
    """Types generated from BTF (Btf.ctype, tinybpf gen): same size, same named members
    at the same offsets (their hidden padding and bitfield storage are not compared)."""
    want = _flat_fields(bt)
    have = list(py._tinybpf_fields_)
    if sorted(have) != sorted(want):
        raise _fail(
            f"Field mismatch: {_tname(py)} has fields {have}, BTF type '{label}' has {list(want)}",
            bt,
        )
    for name in have:
        desc = getattr(py, name)
        off = getattr(desc, "offset", None)
        if (
            off is not None
            and not want[name][1].bitfield_size
            and int(off) != want[name][0]
            and name in dict(py._fields_)
        ):
            raise _fail(
                f"Field '{name}' at offset {off}, BTF field '{name}' expects offset "
                f"{want[name][0]}",
                bt,
            )


def _validate_fields(py: Any, bt: BtfType, names: bool, label: str) -> None:
    pairs = _field_pairs(py, bt, label)
    for entry, bf in pairs:
        fname, ftype = entry[0], entry[1]
        nbits = entry[2] if len(entry) > 2 else 0
        cf = getattr(py, fname)
        in_unit, _cbits = _cfield_bits(cf)
        if bf.bitfield_size or nbits:
            if nbits != bf.bitfield_size:
                raise _fail(
                    f"Field '{fname}' is {nbits or 'not a'} bit(s) wide, "
                    f"BTF field '{bf.name}' is {bf.bitfield_size or 'not a'} bitfield",
                    bt,
                )
            py_bit = int(cf.offset) * 8 + in_unit
            if py_bit != bf.bit_offset:
                raise _fail(
                    f"Field '{fname}' at bit offset {py_bit}, BTF field '{bf.name}' "
                    f"expects bit offset {bf.bit_offset}",
                    bt,
                )
        elif int(cf.offset) != bf.offset:
            raise _fail(
                f"Field '{fname}' at offset {cf.offset}, BTF field '{bf.name}' "
                f"expects offset {bf.offset}",
                bt,
            )
        if names and fname != bf.name:
            raise _fail(
                f"Field name mismatch: Python field '{fname}', BTF field '{bf.name}' "
                f"at offset {bf.offset}",
                bt,
            )
        if bf.type is not None and not bf.bitfield_size:
            _validate(ftype, bf.type, names, f"{label}.{bf.name}")


_KERNEL_ENUMS: dict[str, Any] = {}


def kernel_enum(enum_name: str, what: str, value: Any) -> Any:
    """The IntEnum of a kernel enum that tinybpf does not declare (helper ids, perf event
    types, netfilter hooks), read once from the running kernel's BTF."""
    cls = _KERNEL_ENUMS.get(enum_name)
    if cls is None:
        try:
            with Btf.from_vmlinux() as btf:
                cls = _KERNEL_ENUMS[enum_name] = btf.enum(enum_name)
        except (OSError, KeyError) as e:
            raise ValueError(
                f"{what} {value!r}: names are read from the kernel's BTF (enum {enum_name}), "
                f"which is not available here ({e}); give the number"
            ) from None
    return cls


def kernel_enum_value(enum_name: str, value: Any, what: str, prefixes: tuple[str, ...]) -> int:
    """An int as is, or the value of a name of the kernel enum ``enum_name``."""
    if type(value) is int:
        return value
    return int(enum_arg(kernel_enum(enum_name, what, value), value, what, prefixes))
