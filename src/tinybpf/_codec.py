"""Conversion of map keys, map values and events between Python objects and bytes.

A codec is built once per (Python type, BTF type) pair and reused for every operation, so
the per-call work is one encode and one decode function call.
"""

from __future__ import annotations

import ctypes
import struct
import sys
from collections.abc import Callable
from typing import Any, Literal

from ._ctypes_gen import _BOOL_ENCODING, _fill_array
from ._types import BtfKind, BtfType
from .btf import validate_python_type
from .errors import BtfValidationError

_ORDER: Literal["little", "big"] = sys.byteorder  # BPF data is in host byte order

__all__ = ["Codec", "check_python_type", "make_codec", "to_bytes", "variable_codec"]

_CDATA = (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)
_BUFFERS = (bytes, bytearray, memoryview)


def to_bytes(
    value: Any,
    size: int,
    what: str,
    name: str,
    signed: bool | None,
    float_size: int = 0,
) -> bytes:
    """Encode ``value`` into exactly ``size`` bytes.

    ``signed`` is the BTF signedness (None when unknown: ints are then unsigned both ways).
    ``float_size`` is 4 or 8 when the BTF type is a float, allowing Python floats.
    """
    cls = type(value)
    if cls is bytes:
        data = value
    elif (cls is int or cls is bool) and float_size:
        return struct.pack("=f" if float_size == 4 else "=d", float(value))
    elif cls is int or cls is bool:
        if value < 0 and not signed:
            if signed is None:
                raise ValueError(
                    f"Cannot encode negative {what.lower()} {value} for '{name}': its BTF type "
                    f"is unknown, so ints are unsigned; pass a ctypes value such as "
                    f"ctypes.c_int{size * 8}({value})"
                )
            raise ValueError(
                f"Cannot encode negative {what.lower()} {value} for unsigned BTF type of '{name}'"
            )
        try:
            return int(value).to_bytes(size, _ORDER, signed=bool(signed))
        except OverflowError:
            raise ValueError(f"{what} {value} does not fit in {size} bytes for '{name}'") from None
    elif isinstance(value, _BUFFERS):
        data = bytes(value)
    elif isinstance(value, _CDATA):
        data = bytes(memoryview(value).cast("B")) if ctypes.sizeof(value) else b""
    elif isinstance(value, float):
        if float_size not in (4, 8):
            raise TypeError(
                f"Cannot convert float to {what.lower()} bytes: '{name}' is not a BTF float type"
            )
        return struct.pack("=f" if float_size == 4 else "=d", value)
    elif isinstance(value, int):  # int subclasses (IntEnum...)
        return to_bytes(int(value), size, what, name, signed, float_size)
    else:
        raise TypeError(f"Cannot convert {cls.__name__} to {what.lower()} bytes")
    if len(data) != size:
        raise ValueError(f"{what} size mismatch: got {len(data)}, expected {size}")
    return bytes(data)


def check_python_type(py: Any, what: str) -> None:
    """Reject, at configuration time, a type that cannot convert map data."""
    if py in (int, bytes, float) or py is None:
        return
    if isinstance(py, type) and issubclass(py, _CDATA):
        return
    tname = getattr(py, "__name__", py)
    raise TypeError(f"typed() {what} must be int, float, bytes or a ctypes type, not {tname}")


class Codec:
    """Encode/decode one kind of map key or value (or event).

    ``scalar`` is the C type name (e.g. ``"uint64_t"``) when values are plain numbers that a
    typed cffi buffer can read directly, and ``bulk`` a memoryview format that converts a
    whole array of them at once; both None otherwise.
    """

    __slots__ = ("bulk", "decode", "encode", "py_type", "scalar", "size")

    def __init__(
        self,
        size: int,
        encode: Callable[[Any], bytes],
        decode: Callable[[bytes], Any],
        py_type: Any,
        scalar: str | None = None,
        bulk: str | None = None,
    ) -> None:
        self.size = size
        self.encode = encode
        self.decode = decode
        self.py_type = py_type
        self.scalar = scalar
        self.bulk = bulk


_RECORDS = (ctypes.Structure, ctypes.Union, ctypes.Array)


def _record_value(
    value: Any, record: Any, size: int, what: str, name: str, btf: BtfType | None
) -> Any:
    """A struct, union or array value in a form ``to_bytes`` takes: a dict of fields (a
    list for an array) becomes a ``record`` instance; ctypes records and bytes pass; a
    number is an error (it used to fill the first field)."""
    if isinstance(value, dict) and not issubclass(record, ctypes.Array):
        from_dict = getattr(record, "from_dict", None)
        return from_dict(value) if from_dict is not None else record(**value)
    if isinstance(value, (list, tuple)) and issubclass(record, ctypes.Array):
        arr = record()
        _fill_array(arr, value, f"{what.lower()} of '{name}'")
        return arr
    if isinstance(value, (*_BUFFERS, *_RECORDS)):
        return value
    tname = record.__name__
    if btf is not None and btf.kind in (BtfKind.STRUCT, BtfKind.UNION) and btf.name:
        tname = f"{btf.kind.name.lower()} {btf.name}"
    elif btf is not None and btf.type_name:
        tname = btf.type_name
    form = "a list of its elements" if issubclass(record, ctypes.Array) else "a dict of its fields"
    raise TypeError(
        f"{what} of '{name}' is {tname} ({size} bytes): give {form}, a ctypes "
        f"{record.__name__} or {size} bytes, not {type(value).__name__}"
    )


def _int_decoder(signed: bool) -> Callable[[bytes], int]:
    from_bytes = int.from_bytes
    if signed:
        return lambda b: from_bytes(b, _ORDER, signed=True)
    return lambda b: from_bytes(b, _ORDER)


def make_codec(
    size: int,
    py_type: Any,
    btf: BtfType | None,
    what: str,
    name: str,
    validate_field_names: bool = True,
    ctype_for: Callable[[BtfType], Any] | None = None,
) -> Codec:
    """Build the codec for ``size``-byte data described by ``btf`` read as ``py_type``.

    ``py_type`` None means "from BTF": ints, enums and floats become Python numbers, and
    structs, unions and arrays become the ctypes types ``ctype_for`` generates from BTF
    (bytes when there is no BTF). An explicit type is validated against BTF.
    """
    check_python_type(py_type, what.lower())
    signed: bool | None = None
    float_size = 0
    if btf is not None:
        if btf.kind in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64):
            signed = btf.signed
        if btf.kind == BtfKind.FLOAT:
            float_size = btf.size or 0
    if py_type is float and size in (4, 8):
        float_size = size
    if (
        isinstance(py_type, type)
        and issubclass(py_type, ctypes._SimpleCData)
        and py_type not in (ctypes.c_char, ctypes.c_wchar, ctypes.c_float, ctypes.c_double)
        and getattr(py_type, "_type_", "") not in ("z", "Z", "P")
    ):
        # an explicit ctypes integer type chooses the signedness (a view may differ from BTF)
        signed = py_type(-1).value == -1
    if py_type is not None and py_type is not bytes and btf is not None:
        validate_python_type(
            py_type, btf, validate_field_names, btf.type_name or btf.name, views=True
        )
    if (
        py_type is not None
        and isinstance(py_type, type)
        and issubclass(py_type, _CDATA)
        and ctypes.sizeof(py_type) != size
    ):
        raise BtfValidationError(
            f"Size mismatch: {py_type.__name__} is {ctypes.sizeof(py_type)} bytes, "
            f"{what.lower()} of '{name}' is {size} bytes"
        )

    record: Any = None
    if (
        py_type is None
        and ctype_for is not None
        and btf is not None
        and btf.kind in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.ARRAY)
        and btf.size == size
    ):
        record = ctype_for(btf)
    elif isinstance(py_type, type) and issubclass(py_type, (ctypes.Structure, ctypes.Union)):
        record = py_type

    def encode(value: Any) -> bytes:
        if record is not None:
            value = _record_value(value, record, size, what, name, btf)
        return to_bytes(value, size, what, name, signed, float_size)

    if record is None and float_size == 0 and 0 < size <= 16:
        # fast path for ints; anything unusual (errors included) takes the general one
        signed_b = bool(signed)
        general = encode

        def encode(value: Any) -> bytes:
            if type(value) is int:
                try:
                    return value.to_bytes(size, _ORDER, signed=signed_b)
                except OverflowError:
                    pass
            return general(value)

    decode: Callable[[bytes], Any]
    if py_type is None:
        if btf is not None and btf.kind in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64):
            decode = _int_decoder(bool(signed))
        elif btf is not None and btf.kind == BtfKind.FLOAT and float_size in (4, 8):
            fmt = struct.Struct("=f" if float_size == 4 else "=d")
            decode = lambda b: fmt.unpack(b)[0]  # noqa: E731
        elif record is not None:
            decode = record.from_buffer_copy
        else:
            decode = bytes
    elif py_type is bytes:
        decode = bytes
    elif py_type is int:
        if size > 16 or size == 0:
            raise TypeError(f"int cannot represent a {size}-byte {what.lower()} of '{name}'")
        decode = _int_decoder(bool(signed))
    elif py_type is float:
        if size not in (4, 8):
            raise TypeError(f"float cannot represent a {size}-byte {what.lower()} of '{name}'")
        fmt = struct.Struct("=f" if size == 4 else "=d")
        float_size = size
        decode = lambda b: fmt.unpack(b)[0]  # noqa: E731
    elif issubclass(py_type, ctypes._SimpleCData):
        from_copy = py_type.from_buffer_copy
        decode = lambda b: from_copy(b).value  # noqa: E731
    else:
        decode = py_type.from_buffer_copy
    scalar = bulk = None
    if py_type in (None, int) and record is None and size in (1, 2, 4, 8):
        is_int = btf is not None and btf.kind in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64)
        if py_type is int or is_int:
            scalar = f"{'int' if signed else 'uint'}{size * 8}_t"
            bulk = {1: "b", 2: "h", 4: "i", 8: "q"}[size]
            bulk = bulk if signed else bulk.upper()
    if py_type in (None, float) and record is None and float_size in (4, 8):
        scalar = "float" if float_size == 4 else "double"
        bulk = "f" if float_size == 4 else "d"
    return Codec(size, encode, decode, py_type, scalar, bulk)


# --- global variables ---------------------------------------------------------------------
# obj.globals reads and writes plain Python data: bools, ints, bytes (char and char arrays,
# up to the first NUL), lists for arrays, the generated ctypes types for structs.


def variable_codec(name: str, size: int, bt: BtfType, ctype: Any) -> Codec:
    """The codec of the global variable ``name`` (BTF type ``bt``, ``ctype`` generated from
    it, None when it has none)."""
    return Codec(
        size,
        lambda value: _encode_variable(name, size, bt, ctype, value),
        lambda data: _decode_variable(name, size, bt, ctype, data),
        None,
    )


def _decode_variable(name: str, size: int, bt: BtfType, ctype: Any, data: bytes) -> Any:
    if bt.kind in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.PTR) and len(data) <= 16:
        if bt.kind == BtfKind.INT and bt.encoding & _BOOL_ENCODING:
            return data != b"\0" * len(data)
        if ctype is ctypes.c_char:
            return data
        return int.from_bytes(data, _ORDER, signed=bt.signed)
    if ctype is None:
        return data
    value = ctype.from_buffer_copy(data)
    if isinstance(value, ctypes._SimpleCData):
        return value.value
    if isinstance(value, ctypes.Array) and getattr(value, "_type_", None) is ctypes.c_char:
        return value.value
    if isinstance(value, ctypes.Array):
        return _listify(value)
    return value


def _listify(arr: Any) -> Any:
    """A ctypes array as a (nested) list; char arrays as bytes; structs stay objects."""
    if getattr(arr, "_type_", None) is ctypes.c_char:
        return arr.value
    return [_listify(v) if isinstance(v, ctypes.Array) else v for v in arr]


def _encode_variable(name: str, size: int, bt: BtfType, ctype: Any, value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)) and not (
        ctype is not None and issubclass(ctype, ctypes.Array) and ctype._type_ is ctypes.c_char
    ):
        data = bytes(value)
        if len(data) != size:
            raise ValueError(f"'{name}' is {size} bytes, got {len(data)}")
        return data
    if bt.kind in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.PTR) and size <= 16:
        if isinstance(value, float) or not isinstance(value, int):
            raise TypeError(f"'{name}' is an integer ({bt.type_name}), got {type(value).__name__}")
        try:
            return int(value).to_bytes(size, _ORDER, signed=bt.signed)
        except OverflowError:
            raise ValueError(
                f"{value} is out of range for '{name}' ({'signed' if bt.signed else 'unsigned'} "
                f"{size * 8}-bit)"
            ) from None
    if ctype is None:
        raise TypeError(f"'{name}' takes bytes of length {size}")
    if issubclass(ctype, ctypes.Array) and ctype._type_ is ctypes.c_char:
        data = value.encode() if isinstance(value, str) else bytes(value)
        if len(data) > size:
            raise ValueError(f"'{name}' holds {size} bytes, got {len(data)}")
        return data.ljust(size, b"\0")
    if isinstance(value, ctype):
        if ctypes.sizeof(value) != size:  # a subclass with more fields, or a resized one
            raise ValueError(
                f"'{name}' is {size} bytes ({ctype.__name__}), got a {type(value).__name__} "
                f"of {ctypes.sizeof(value)} bytes"
            )
        return bytes(memoryview(value).cast("B"))
    if isinstance(value, dict) and hasattr(ctype, "from_dict"):
        return bytes(memoryview(ctype.from_dict(value)).cast("B"))
    if issubclass(ctype, ctypes.Array) and isinstance(value, (list, tuple)):
        if len(value) != ctype._length_:
            raise ValueError(f"'{name}' has {ctype._length_} elements, got {len(value)}")
        arr = ctype()
        _fill_array(arr, value, name)
        return bytes(memoryview(arr).cast("B"))
    if issubclass(ctype, ctypes._SimpleCData) and isinstance(value, (int, float, bool)):
        return bytes(memoryview(ctype(value)).cast("B"))
    raise TypeError(f"cannot convert {type(value).__name__} for '{name}' ({bt.type_name})")
