"""EventBatch: events drained from a ring or perf buffer in one C call, as one buffer."""

from __future__ import annotations

import array
import ctypes
import itertools
import operator
import sys
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from ..errors import BpfError
from ..map import BpfMap

if TYPE_CHECKING:
    pass

__all__ = ["EventBatch"]

T = TypeVar("T")
_SLICE_MS = 100
_DEFAULT_MAX_QUEUE = 1 << 20
_DISPATCH_CHUNK = 1 << 14  # samples drained in C per call before Python delivers them
_ORDER: Literal["little", "big"] = sys.byteorder


def _repeated(value: int, count: int) -> memoryview:
    """``count`` copies of a u32 as a memoryview (format ``I``)."""
    return memoryview(array.array("I", [value]) * count)


def _event_converter(event_type: Any, exact: bool) -> Callable[[Any], Any]:
    """Turn a sample (a cffi buffer or bytes) into the requested event type."""
    if event_type is bytes or event_type is None:
        return bytes
    if not (
        isinstance(event_type, type)
        and issubclass(event_type, (ctypes.Structure, ctypes.Union, ctypes._SimpleCData))
    ):
        tname = getattr(event_type, "__name__", event_type)
        raise TypeError(
            f"event_type must be bytes, a BTF struct name or a ctypes type, not {tname}"
        )
    size = ctypes.sizeof(event_type)
    name = event_type.__name__
    from_copy = event_type.from_buffer_copy
    if exact:

        def convert(buf: Any) -> Any:
            n = len(buf)
            if n != size:
                raise BpfError(
                    f"Event size mismatch: received {n} bytes, expected exactly {size} for {name}"
                )
            return from_copy(buf)

        return convert

    # Perf samples carry up to 7 bytes of alignment padding (u32 size header + data rounded
    # up to 8): whatever they contain, ignore them.
    max_size = ((size + 4 + 7) & ~7) - 4

    def convert_padded(buf: Any) -> Any:
        n = len(buf)
        if n < size:
            raise BpfError(f"Event size mismatch: received {n} bytes, expected {size} for {name}")
        if n > max_size:
            raise BpfError(
                f"Event size mismatch: received {n} bytes, expected {size} for {name} "
                f"(at most {max_size} with alignment padding)"
            )
        return from_copy(bytes(buf[:size]) if n != size else buf)

    return convert_padded


def _resolve_event_type(bmap: BpfMap[Any, Any], event_type: Any) -> Any:
    """``event_type="name"``: the type generated from the BTF struct of that name."""
    if not isinstance(event_type, str):
        return event_type
    btf = bmap._btf()
    if btf is None:
        raise BpfError(
            f"event_type={event_type!r} needs BTF, but map '{bmap.name}' has no BTF information"
        )
    try:
        return btf.ctype(event_type)
    except KeyError:
        raise BpfError(
            f"BTF type '{event_type}' not found for map '{bmap.name}'. If the struct is only "
            f"used locally, keep it in BTF with an anchor: "
            f"struct {event_type} _{event_type}_btf __attribute__((unused));"
        ) from None


_length_hint = operator.length_hint


def _stops(buf: Any, ret: object) -> bool:
    """After a callback returned ``ret`` (not None) or the buffer was halted: whether
    delivery stops here (a negative int return, or a halt), marking the buffer halted."""
    if buf._halt or (type(ret) is int and ret < 0):
        buf._halt = True
        return True
    return False


class EventBatch(Sequence[memoryview]):
    """Events drained in C by one ``poll_batch()``, without a Python call per event.

    Items are zero-copy ``memoryview`` slices of one buffer; the buffer stays valid as long
    as the batch or any view of it is referenced. ``array()`` views all records as a ctypes
    array (no copy), ``decode()`` copies them into typed objects, ``column(name)`` reads one
    field of every record at C speed. ``cpus`` says where each record came from. Batches
    are made by ``poll_batch()``/``consume_batch()`` of a buffer created with ``batch=True``.

    Example::

        batch = rb.poll_batch(timeout_ms=100)
        pids = batch.column("pid")          # needs event_type
        for view in batch: ...              # memoryviews
    """

    def __init__(
        self,
        data: memoryview | None,
        nbytes: int,
        sizes: memoryview | None,
        cpus: memoryview | None,
        count: int,
        event_type: Any = None,
        record_size: int = 0,
        cpu: int = 0,
    ) -> None:
        """Made by ``poll_batch()``/``consume_batch()``; not meant to be created directly.
        ``sizes``/``cpus`` None with ``data``: every record is ``record_size`` bytes from
        ``cpu`` (the C drain wrote no per-record arrays)."""
        self._count = count
        self._event_type = event_type
        self._offsets: list[int] | None = None
        self._data_bytes: bytes | None = None
        self._record_size = record_size  # >0: every record's size; 0: not known yet
        self._cpu0 = cpu
        self._sizes_v: memoryview | None
        self._cpus_v: memoryview | None
        if data is not None:
            self._buf = data  # views over the C buffers (tinybpf._core.batchpool)
            self._sizes_v = sizes
            self._cpus_v = cpus
            if sizes is None and not record_size:
                raise ValueError("a batch without sizes needs its record_size")
        else:
            self._buf = memoryview(b"")
            self._sizes_v = self._cpus_v = memoryview(b"").cast("I")
            self._count = 0

    # (made on first use when the C drain wrote no per-record arrays: one value for all)
    @property
    def _sizes(self) -> memoryview:
        if self._sizes_v is None:
            self._sizes_v = _repeated(self._record_size, self._count)
        return self._sizes_v

    @property
    def _cpus(self) -> memoryview:
        if self._cpus_v is None:
            self._cpus_v = _repeated(self._cpu0, self._count)
        return self._cpus_v

    def __len__(self) -> int:
        return self._count

    @property
    def buffer(self) -> memoryview:
        """All records, packed back to back."""
        return self._buf

    @property
    def sizes(self) -> list[int]:
        """The size of each record in bytes."""
        return self._sizes.tolist()

    @property
    def cpus(self) -> list[int]:
        """Where each record came from.

        Perf buffers: the CPU of each sample (a batch holds samples only: lost samples are
        counted in the buffer's ``lost``). Ring buffers (they record no CPU): the index of
        the map the record came from, 0 for the map the buffer was created with, then 1,
        2... in the order of ``add()``.
        """
        return self._cpus.tolist()

    @property
    def record_size(self) -> int | None:
        """The common size of every record, or None when sizes differ."""
        if not self._count:
            return None
        cached = self._record_size
        if cached == 0:
            first = self._sizes[0]
            uniform = self._buf.nbytes == first * self._count
            if uniform and self._count > 1:
                uniform = self._sizes.tolist().count(first) == self._count
            cached = self._record_size = first if uniform else -1
        return cached if cached > 0 else None

    def _bytes(self) -> bytes:
        """The records as one bytes object (one copy; slicing it copies each record)."""
        cached = self._data_bytes
        if cached is None:
            cached = self._data_bytes = self._buf.tobytes()
        return cached

    def _offs(self) -> list[int]:
        if self._offsets is None:
            self._offsets = [0, *itertools.accumulate(self._sizes.tolist())]
        return self._offsets

    @overload
    def __getitem__(self, i: int) -> memoryview: ...
    @overload
    def __getitem__(self, i: slice) -> list[memoryview]: ...
    def __getitem__(self, i: int | slice) -> memoryview | list[memoryview]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._count))]
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError("batch index out of range")
        size = self.record_size
        if size is not None:
            return self._buf[i * size : (i + 1) * size]
        offs = self._offs()
        return self._buf[offs[i] : offs[i + 1]]

    def __iter__(self) -> Iterator[memoryview]:
        size = self.record_size
        buf = self._buf
        if size is not None:
            for off in range(0, size * self._count, size):
                yield buf[off : off + size]
            return
        off = 0
        for s in self._sizes:
            yield buf[off : off + s]
            off += s

    def _type(self, event_type: Any) -> Any:
        t = event_type if event_type is not None else self._event_type
        if t is None:
            raise BpfError("no event type: pass one, or create the buffer with event_type=")
        return t

    def array(self, event_type: Any = None) -> Any:
        """All records as a ctypes array of ``event_type`` sharing the batch's memory."""
        t = self._type(event_type)
        size = ctypes.sizeof(t)
        if not self._count:
            return (t * 0)()
        if self.record_size != size:
            raise BpfError(
                f"records are not all {size} bytes ({type(t).__name__} {t.__name__}); use decode()"
            )
        return (t * self._count).from_buffer(self._buf)

    def decode(self, event_type: Any = None) -> list[Any]:
        """Every record copied into an ``event_type`` instance (a size mismatch raises)."""
        t = self._type(event_type)
        conv = _event_converter(t, exact=True)
        return [conv(v) for v in self]

    def column(self, field: str, event_type: Any = None) -> list[Any]:
        """One field of every record (records of the event type's exact size)."""
        t = self._type(event_type)
        if not self._count:
            return []
        view = self._field_view(t, field)
        if view is not None:
            return view.tolist()
        return [getattr(e, field) for e in self.array(t)]

    def column_view(self, field: str, event_type: Any = None) -> memoryview:
        """One numeric field of every record as a strided ``memoryview`` over the batch's
        memory (no copy, no Python object per record until an item is read): ``len()``,
        indexing, iteration, ``sum()``, ``tolist()``. The field must be an integer or
        floating-point scalar aligned to its size (TypeError otherwise: use
        :meth:`column`)."""
        t = self._type(event_type)
        if not self._count:
            return memoryview(b"").cast("B")
        view = self._field_view(t, field)
        if view is None:
            raise TypeError(
                f"field {field!r} of {t.__name__} is not a numeric scalar aligned to its "
                "size: use column()"
            )
        return view

    def _field_view(self, t: Any, field: str) -> memoryview | None:
        """The strided view of a scalar field, or None when the field is not one."""
        size = ctypes.sizeof(t)
        if self.record_size != size:
            self.array(t)  # raises the size error
        fields = _FIELD_FORMATS.get(t)
        if fields is None:
            fields = _FIELD_FORMATS[t] = {}
        got = fields.get(field)
        if got is None:
            desc = getattr(t, field, None)
            if desc is None or not hasattr(desc, "offset"):
                raise KeyError(f"{t.__name__} has no field {field!r}")
            ftype: Any = {f[0]: f[1] for f in t._fields_}.get(field)
            fmt = _SCALAR_FORMATS.get(ftype) if ftype is not None else None
            got = ("", 0, 0)
            if fmt is not None:
                fsize = ctypes.sizeof(ftype)
                off = int(desc.offset)
                if size % fsize == 0 and off % fsize == 0:
                    got = (fmt, off // fsize, size // fsize)
            fields[field] = got
        fmt, start, step = got
        if not fmt:
            return None
        whole: Any = self._buf
        return whole.cast(fmt)[start::step]  # type: ignore[no-any-return]

    def to_numpy(self, event_type: Any = None) -> Any:
        """The records as a numpy structured array sharing the batch's memory (no copy),
        its dtype built from the event type's BTF layout (field names, offsets, nested
        structs and arrays). Needs numpy: ``pip install 'tinybpf[numpy]'``."""
        from .._numpy import batch_array

        return batch_array(self, self._type(event_type))

    def __repr__(self) -> str:
        return f"<EventBatch {self._count} events, {self._buf.nbytes} bytes>"


# event type -> field -> (memoryview format, start, step) of a scalar field; ("", 0, 0)
# for a field that is not one
_FIELD_FORMATS: weakref.WeakKeyDictionary[Any, dict[str, tuple[str, int, int]]] = (
    weakref.WeakKeyDictionary()
)

_SCALAR_FORMATS: dict[Any, str] = {
    ctypes.c_int8: "b",
    ctypes.c_uint8: "B",
    ctypes.c_int16: "h",
    ctypes.c_uint16: "H",
    ctypes.c_int32: "i",
    ctypes.c_uint32: "I",
    ctypes.c_int64: "q",
    ctypes.c_uint64: "Q",
    ctypes.c_float: "f",
    ctypes.c_double: "d",
}


def _is_negative_int(ret: Any) -> bool:
    return type(ret) is int and ret < 0
