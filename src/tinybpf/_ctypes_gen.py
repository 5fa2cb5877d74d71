"""Python types generated from BTF: ctypes structures, unions, arrays and IntEnums.

Layouts come from BTF, never from ctypes' own rules: every struct is built with
``_pack_ = 1`` and explicit padding so each member sits at its BTF offset and the struct
has its BTF size. Bitfields are exposed as properties over the bytes that hold them. Where
each member, pad and bitfield run goes is computed once, in :mod:`tinybpf._layout`, which
``tinybpf gen`` uses too.
"""

from __future__ import annotations

import ctypes
import enum
import itertools
import sys
from typing import Any, Literal

from ._core import btfcalls
from ._layout import record_layout
from ._types import BtfKind, BtfType

_ORDER: Literal["little", "big"] = sys.byteorder  # BPF data is in host byte order

__all__ = [
    "BTF_INT_BOOL",
    "BTF_INT_CHAR",
    "BTF_INT_SIGNED",
    "BtfStruct",
    "BtfUnion",
    "ctype_for",
]

_INTS = {
    (1, False): ctypes.c_uint8,
    (1, True): ctypes.c_int8,
    (2, False): ctypes.c_uint16,
    (2, True): ctypes.c_int16,
    (4, False): ctypes.c_uint32,
    (4, True): ctypes.c_int32,
    (8, False): ctypes.c_uint64,
    (8, True): ctypes.c_int64,
}
# The bits of an INT's BtfType.encoding (from the compiled uapi headers): how a 1-byte int
# becomes c_char or c_bool here and in tinybpf gen.
BTF_INT_SIGNED: int = btfcalls.INT_SIGNED
BTF_INT_CHAR: int = btfcalls.INT_CHAR
BTF_INT_BOOL: int = btfcalls.INT_BOOL
_CHAR_ENCODING: int = BTF_INT_CHAR
_BOOL_ENCODING: int = BTF_INT_BOOL


def _fmt(value: Any) -> str:
    if isinstance(value, ctypes.Array):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return repr(value)


class _Mixin:
    _tinybpf_fields_: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Field values as plain, JSON-serializable data: nested structs as dicts, arrays as
        lists, char arrays (read as bytes, up to the first NUL) as str decoded from UTF-8,
        with bytes that are not UTF-8 written as ``\\xNN`` escapes.

        Example::

            json.dumps(ev.to_dict())   # {"pid": 42, "comm": "bash", ...}
        """
        out: dict[str, Any] = {}
        for name in self._tinybpf_fields_:
            out[name] = _plain(getattr(self, name))
        return out

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={_fmt(getattr(self, n))}" for n in self._tinybpf_fields_)
        return f"{type(self).__name__}({parts})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bytes(memoryview(self).cast("B")) == bytes(memoryview(other).cast("B"))  # type: ignore[arg-type]

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """Build an instance from a dict of field values (nested dicts for nested structs)."""
        inst = cls()
        for k, v in values.items():
            if k not in cls._tinybpf_fields_:
                raise KeyError(
                    f"{cls.__name__} has no field {k!r}; fields: {list(cls._tinybpf_fields_)}"
                )
            _assign(inst, k, v)
        return inst


def _plain(value: Any) -> Any:
    if isinstance(value, _Mixin):
        return value.to_dict()
    if isinstance(value, ctypes.Array):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):  # char arrays and chars
        return value.decode("utf-8", "backslashreplace")
    return value


def _fill_array(arr: Any, value: Any, name: str) -> None:
    """Assign a (nested) list to a ctypes array, element by element."""
    if len(value) > len(arr):
        raise ValueError(f"{name}: {len(value)} items for an array of {len(arr)}")
    for i, v in enumerate(value):
        cur = arr[i]
        if isinstance(v, dict) and isinstance(cur, _Mixin):
            for k2, v2 in v.items():
                _assign(cur, k2, v2)
        elif isinstance(v, (list, tuple)) and isinstance(cur, ctypes.Array):
            _fill_array(cur, v, f"{name}[{i}]")
        else:
            arr[i] = v


def _assign(inst: Any, name: str, value: Any) -> None:
    current = getattr(inst, name)
    if isinstance(value, dict) and isinstance(current, _Mixin):
        for k, v in value.items():
            _assign(current, k, v)
        return
    if isinstance(value, (list, tuple)) and isinstance(current, ctypes.Array):
        _fill_array(current, value, name)
        return
    if isinstance(value, str) and isinstance(current, bytes):
        value = value.encode()
    setattr(inst, name, value)


class BtfStruct(ctypes.Structure, _Mixin):
    """Base of structs generated from BTF (readable repr, ``to_dict()``, ``from_dict()``).

    Example::

        Event = obj.btf.ctype("event")   # a BtfStruct subclass
        ev = Event.from_dict({"pid": 1, "comm": "bash"})
        print(ev, ev.to_dict())
    """

    _pack_ = 1


class BtfUnion(ctypes.Union, _Mixin):
    """Base of unions generated from BTF.

    Example::

        Value = obj.btf.ctype("value")   # for a BTF union: a BtfUnion subclass
        assert issubclass(Value, tinybpf.BtfUnion)
        print(Value.from_dict({"u64": 7}).to_dict())
    """

    _pack_ = 1


_HIDDEN_IDS = itertools.count()


def _forward_property(member: str, name: str) -> property:
    def get(self: Any) -> Any:
        return getattr(getattr(self, member), name)

    def set_(self: Any, value: Any) -> None:
        setattr(getattr(self, member), name, value)

    return property(get, set_)


def _bitfield_property(storage: str, shift: int, bits: int, signed: bool) -> property:
    mask = (1 << bits) - 1

    def get(self: Any) -> int:
        raw = int.from_bytes(bytes(getattr(self, storage)), _ORDER)
        v = (raw >> shift) & mask
        if signed and v >> (bits - 1):
            v -= 1 << bits
        return v

    def set_(self: Any, value: int) -> None:
        arr = getattr(self, storage)
        raw = int.from_bytes(bytes(arr), _ORDER)
        raw = (raw & ~(mask << shift)) | ((int(value) & mask) << shift)
        data = raw.to_bytes(len(arr), _ORDER)
        ctypes.memmove(arr, data, len(arr))

    return property(get, set_)


class _Generator:
    def __init__(self, cache: dict[int, Any]) -> None:
        self.cache = cache

    def ctype(self, bt: BtfType, name_hint: str = "") -> Any:
        key = bt.type_id
        if key and key in self.cache:
            return self.cache[key]
        t = self._make(bt, name_hint)
        if key:
            self.cache[key] = t
        return t

    def _make(self, bt: BtfType, hint: str) -> Any:
        kind = bt.kind
        size = bt.size or 0
        if kind == BtfKind.INT:
            if bt.encoding & _BOOL_ENCODING and size == 1:
                return ctypes.c_bool
            if size == 1 and (bt.encoding & _CHAR_ENCODING or bt.name == "char"):
                return ctypes.c_char
            if (size, bt.signed) in _INTS:
                return _INTS[(size, bt.signed)]
            return ctypes.c_uint8 * size
        if kind in (BtfKind.ENUM, BtfKind.ENUM64):
            return _INTS.get((size, bt.signed), ctypes.c_uint8 * size)
        if kind == BtfKind.FLOAT:
            return {4: ctypes.c_float, 8: ctypes.c_double}.get(size, ctypes.c_uint8 * size)
        if kind == BtfKind.PTR:
            return _INTS.get((size, False), ctypes.c_uint64)
        if kind == BtfKind.ARRAY and bt.elem is not None:
            return self.ctype(bt.elem) * bt.nelems
        if kind in (BtfKind.STRUCT, BtfKind.UNION):
            return self._record(bt, hint)
        if kind == BtfKind.DATASEC:
            return self._record(bt, hint or bt.name)
        return ctypes.c_uint8 * size

    def _record(self, bt: BtfType, hint: str) -> Any:
        is_union = bt.kind == BtfKind.UNION
        base: Any = BtfUnion if is_union else BtfStruct
        name = bt.name or bt.type_name or hint or ("anon_union" if is_union else "anon_struct")
        name = name.lstrip(".").replace(".", "_") or "anon"
        cls: Any = type(name, (base,), {"__module__": f"{__package__}.btf_types"})
        # the member types first (nested records included): their sizes place the members
        types: dict[int, Any] = {}
        for f in bt.fields or ():
            if f.bitfield_size and not is_union:
                continue
            types[id(f)] = (
                self.ctype(f.type, f"{name}_{f.name or 'anon'}")
                if f.type is not None
                else ctypes.c_uint8 * f.size
            )
        layout = record_layout(bt, lambda f: ctypes.sizeof(types[id(f)]))
        fields: list[tuple[str, Any]] = []
        anonymous: list[str] = []
        visible: list[str] = []
        props: dict[str, property] = {}
        # hidden storage gets names no member (own or promoted from an anonymous member) has
        tag = f"_tb{next(_HIDDEN_IDS)}"
        for slot in layout.slots:
            if slot.kind == "pad":
                fields.append((f"{tag}_pad{slot.index}", ctypes.c_uint8 * slot.size))
                continue
            if slot.kind == "bits":
                store = f"{tag}_bits{slot.index}"
                fields.append((store, ctypes.c_uint8 * slot.size))
                for b in slot.bitfields:
                    props[b.name] = _bitfield_property(store, b.shift, b.bits, b.signed)
                    visible.append(b.name)
                continue
            assert slot.field is not None
            ftype = types[id(slot.field)]
            if slot.kind == "unnamed":
                fname = f"{tag}_unnamed{slot.index}"
            elif slot.kind == "anon":
                fname = f"{tag}_anon{slot.index}"
                anonymous.append(fname)
                inner_names = getattr(ftype, "_tinybpf_fields_", ())
                visible.extend(inner_names)
                # ctypes promotes the anonymous member's fields, not its properties
                # (bitfields): forward those
                for inner in inner_names:
                    if isinstance(getattr(ftype, inner, None), property):
                        props[inner] = _forward_property(fname, inner)
            else:
                fname = slot.field.name
                visible.append(fname)
            fields.append((fname, ftype))
        if anonymous:
            cls._anonymous_ = anonymous
        cls._fields_ = fields
        cls._tinybpf_fields_ = tuple(visible)
        for pname, prop in props.items():
            setattr(cls, pname, prop)
        return cls


def ctype_for(bt: BtfType, cache: dict[int, Any], name_hint: str = "") -> Any:
    """The Python type for a resolved BTF type (cached by type id in ``cache``)."""
    return _Generator(cache).ctype(bt, name_hint)


def int_enum_for(bt: BtfType) -> type[enum.IntEnum]:
    """An IntEnum with the members of a BTF enum."""
    members = {n: v for n, v in (bt.enum_values or ())}
    return enum.IntEnum(bt.name or "anon_enum", members)  # type: ignore[return-value]
