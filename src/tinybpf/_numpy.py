"""numpy views of events and maps (the optional extra ``tinybpf[numpy]``).

The dtype of a record comes from its layout as BTF describes it, through the ctypes type
tinybpf builds from BTF (or the one given as ``event_type``/``typed()``): field names,
offsets, the itemsize, nested structs, unions and arrays; ``char[N]`` becomes ``S{N}``.
Nothing is laid out by hand here. Bit fields have no numpy equivalent and raise.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any

__all__ = ["batch_array", "dtype_of", "map_arrays", "require"]


def require() -> Any:
    """numpy, or an ImportError naming the extra that installs it."""
    try:
        import numpy
    except ImportError as e:
        raise ImportError(
            "this needs numpy, which tinybpf does not install by default: "
            "pip install 'tinybpf[numpy]'"
        ) from e
    return numpy


# the padding members tinybpf's BTF-built structs carry (_ctypes_gen.py): left out, the
# dtype's offsets and itemsize keep the layout
_PADDING = re.compile(r"_tb\d+_pad\d+")

_SCALARS: dict[Any, str] = {
    ctypes.c_bool: "?",
    ctypes.c_char: "S1",
    ctypes.c_int8: "i1",
    ctypes.c_uint8: "u1",
    ctypes.c_int16: "i2",
    ctypes.c_uint16: "u2",
    ctypes.c_int32: "i4",
    ctypes.c_uint32: "u4",
    ctypes.c_int64: "i8",
    ctypes.c_uint64: "u8",
    ctypes.c_float: "f4",
    ctypes.c_double: "f8",
}


def dtype_of(ctype: Any) -> Any:
    """The numpy dtype of a ctypes scalar, array, struct or union type."""
    np = require()
    return np.dtype(_spec(ctype))


def _spec(t: Any) -> Any:
    base = _SCALARS.get(t)
    if base is None:
        for k, v in _SCALARS.items():  # ctypes aliases (c_ulong...) are subclasses
            if isinstance(t, type) and issubclass(t, k) and ctypes.sizeof(t) == ctypes.sizeof(k):
                base = v
                break
    if base is not None:
        return base
    if isinstance(t, type) and issubclass(t, ctypes.Array):
        item: Any = t._type_
        if item is ctypes.c_char:
            return f"S{t._length_}"
        return (_spec(item), (t._length_,))
    if isinstance(t, type) and issubclass(t, (ctypes.Structure, ctypes.Union)):
        names: list[str] = []
        formats: list[Any] = []
        offsets: list[int] = []
        for field in t._fields_:
            name, ftype = field[0], field[1]
            if _PADDING.fullmatch(name):
                continue
            if len(field) > 2:
                raise TypeError(f"{t.__name__}.{name} is a bit field: numpy has no dtype for it")
            names.append(name or f"_anon{len(names)}")
            formats.append(_spec(ftype))
            offsets.append(int(getattr(t, name).offset) if name else 0)
        return {
            "names": names,
            "formats": formats,
            "offsets": offsets,
            "itemsize": ctypes.sizeof(t),
        }
    raise TypeError(f"no numpy dtype for {getattr(t, '__name__', t)!r}")


def batch_array(batch: Any, event_type: Any) -> Any:
    """The records of an EventBatch as a structured array over its memory."""
    np = require()
    dtype = dtype_of(event_type)
    n = len(batch)
    if not n:
        return np.zeros(0, dtype=dtype)
    size = batch.record_size
    if size != dtype.itemsize:
        raise ValueError(
            f"records are not all {dtype.itemsize} bytes (the size of "
            f"{getattr(event_type, '__name__', event_type)}): no array view; use decode()"
        )
    return np.frombuffer(batch.buffer, dtype=dtype, count=n)


def _map_dtype(codec: Any, size: int) -> Any:
    np = require()
    if codec.bulk is not None:
        return np.dtype(codec.bulk)
    t = codec.py_type
    if isinstance(t, type) and issubclass(t, ctypes._SimpleCData | ctypes.Structure):
        return dtype_of(t)
    record = getattr(codec.decode, "__self__", None)  # a ctypes record's from_buffer_copy
    if isinstance(record, type) and issubclass(record, ctypes.Structure | ctypes.Union):
        return dtype_of(record)
    return np.dtype(f"V{size}")


def map_arrays(m: Any) -> tuple[Any, Any]:
    """(keys, values) of BpfMap ``m`` as two numpy arrays: a live view of the values of an
    mmap-able array, otherwise copies filled by batch reads."""
    np = require()
    kdt = _map_dtype(m._kc(), m.key_size)
    vdt = _map_dtype(m._vc(), m.value_size)
    if m.is_percpu:
        raise TypeError(f"map '{m.name}': per-CPU maps have no numpy view (use items_percpu())")
    m._fast_state or m._fast()
    mapped = m._mapped
    if mapped is not None:
        mem = mapped.buffer()
        stride = mapped.stride
        # (the indices; sections have no key type in BTF: u32, the array's key)
        keys = np.arange(mapped.n, dtype=kdt if kdt.kind in "iu" else np.uint32)
        if stride == vdt.itemsize:
            values = np.frombuffer(mem, dtype=vdt, count=mapped.n)
        else:  # values padded to 8 bytes: a strided view of the same memory
            padded = np.dtype({"names": ["v"], "formats": [vdt], "itemsize": stride})
            values = np.frombuffer(mem, dtype=padded, count=mapped.n)["v"]
        if mapped.readonly:
            values.flags.writeable = False
        return keys, values
    ks, vs = m.key_size, m.value_size
    kparts: list[bytes] = []
    vparts: list[bytes] = []
    for kraw, vraw in m._raw_chunks():
        kparts.append(kraw)
        vparts.append(vraw)
    kbytes = b"".join(kparts)
    vbytes = b"".join(vparts)
    n = len(kbytes) // ks if ks else 0
    keys = np.frombuffer(bytearray(kbytes), dtype=kdt, count=n) if ks else np.zeros(0, kdt)
    values = np.frombuffer(bytearray(vbytes), dtype=vdt, count=len(vbytes) // vs)
    return keys, values
