"""Element access to mmap-able array maps through a shared mapping of their memory.

An ``ARRAY`` map created with ``BPF_F_MMAPABLE`` (and the ``.bss``/``.data``/``.rodata``
maps libbpf makes for global variables, which it creates that way) can be mapped into
the process: value ``i`` sits at ``i * round_up(value_size, 8)``. :class:`MappedArray`
maps it once, ``MAP_SHARED``, and then reads and writes elements with plain loads and
stores, no syscall per element. A frozen map (``.rodata`` after load, or
``BpfMap.freeze()``) maps read-only and refuses writes.

Memory ordering: an aligned 1, 2, 4 or 8-byte value is read and written by one access
(CPython's memoryview copies it with one ``memcpy`` of that size, which compilers emit as
one load or store); a larger value (a struct) may tear against a concurrent BPF writer;
nothing orders these accesses against others beyond that. ``BPF_F_LOCK`` (spin-locked
values) does not apply on this path: use ``lookup(key, flags=BPF_F_LOCK)``.

Lifetime: the mapping takes its own reference to the map (mmap dups the fd). Closing the
map or its object releases this module's views and unmaps, unless a view handed out
(``BpfMap.to_numpy()``) still refers to the memory: that view then keeps the map's memory
alive, and stays valid, until it is collected.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable, Iterator
from typing import Any

from ._codec import Codec
from .errors import BpfPermissionError

__all__ = ["MISS", "MappedArray"]

#: returned by :meth:`MappedArray.get` when the general path must answer (a key that is
#: not an index of the array, or a closed mapping)
MISS: Any = object()

_FLOATS = ("f", "d")


class MappedArray:
    """The memory of one mmap-able array map, with its value codec."""

    __slots__ = (
        "_closed",
        "_mm",
        "_raw",
        "_view",
        "decode",
        "encode",
        "fmt",
        "n",
        "name",
        "readonly",
        "step",
        "stride",
        "vs",
    )

    def __init__(self, fd: int, name: str, value_size: int, max_entries: int, vc: Codec) -> None:
        self.name = name
        self.vs = value_size
        self.n = max_entries
        self.stride = stride = (value_size + 7) & ~7
        page = mmap.PAGESIZE
        length = (stride * max_entries + page - 1) // page * page
        try:
            mm = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            self.readonly = False
        except PermissionError:  # frozen (or BPF_F_RDONLY): the kernel maps it read-only
            mm = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ)
            self.readonly = True
        self._mm = mm
        self._closed = False
        self._raw = memoryview(mm)
        self.decode = vc.decode
        self.encode = vc.encode
        fmt = vc.bulk if value_size in (1, 2, 4, 8) else None
        self.fmt = fmt or ""
        # the values as numbers: index i * step of a view cast to the value's format
        raw: Any = self._raw
        self._view: Any = raw.cast(fmt) if fmt else None
        self.step = stride // value_size if fmt else 0

    # --- elements -----------------------------------------------------------------------
    def get(self, key: Any) -> Any:
        """The value at index ``key``, or :data:`MISS`."""
        try:
            if type(key) is int and 0 <= key < self.n:
                view = self._view
                if view is not None:
                    return view[key * self.step]
                off = key * self.stride
                data: Any = self._raw[off : off + self.vs]
                return self.decode(data)
        except ValueError:  # released by close(): the general path raises the closed error
            pass
        return MISS

    def set(self, key: Any, value: Any) -> bool:
        """Store ``value`` at index ``key``; False when the general path must do it."""
        if type(key) is not int or not 0 <= key < self.n or self._closed:
            return False
        if self.readonly:
            raise BpfPermissionError(
                f"map '{self.name}' is frozen: its memory is mapped read-only (write a "
                "read-only section's variables before load())",
                1,
            )
        view = self._view
        if view is not None:
            cls = type(value)
            if cls is int or (cls is float and self.fmt in _FLOATS):
                try:
                    view[key * self.step] = value
                    return True
                except (ValueError, TypeError):
                    if self._closed:
                        return False
                    # out of range: the codec's encode below raises its clear error
        data = self.encode(value)  # bad types and ranges raise here, naming the map
        off = key * self.stride
        try:
            self._raw[off : off + self.vs] = data
        except ValueError:
            if self._closed:
                return False
            raise
        return True

    # --- slices and iteration -----------------------------------------------------------
    def get_slice(self, sl: slice) -> list[Any]:
        start, stop, step = sl.indices(self.n)
        view = self._view
        if view is not None and step > 0:
            if stop <= start:
                return []
            s = self.step
            return view[start * s : stop * s : step * s].tolist()  # type: ignore[no-any-return]
        return [self._checked(i) for i in range(start, stop, step)]

    def set_slice(self, sl: slice, values: Iterable[Any]) -> None:
        indices = range(*sl.indices(self.n))
        items = list(values)
        if len(items) != len(indices):
            raise ValueError(
                f"map '{self.name}': a slice of {len(indices)} elements takes exactly "
                f"{len(indices)} values, got {len(items)}"
            )
        for i, v in zip(indices, items, strict=True):
            if not self.set(i, v):
                self._closed_error()

    def values(self, chunk: int = 4096) -> Iterator[list[Any]]:
        """Every value, in chunks of ``chunk`` (decoded at once for numbers)."""
        for lo in range(0, self.n, chunk):
            hi = min(lo + chunk, self.n)
            yield self.get_slice(slice(lo, hi))

    def _checked(self, i: int) -> Any:
        v = self.get(i)
        if v is MISS:
            self._closed_error()
        return v

    def _closed_error(self) -> None:
        from .errors import BpfClosedError

        raise BpfClosedError(f"map '{self.name}' is closed")

    # --- numpy and lifetime -------------------------------------------------------------
    def buffer(self) -> memoryview:
        """The values' memory (``n * stride`` bytes), for a live numpy view."""
        if self._closed:
            self._closed_error()
        return self._raw[: self.n * self.stride]

    def close(self) -> None:
        """Release the views and unmap (idempotent). A view handed out keeps the memory
        mapped until it is collected (mmap refuses to unmap exported memory)."""
        if self._closed:
            return
        self._closed = True
        for v in (self._view, self._raw):
            if v is not None:
                try:
                    v.release()
                except BufferError:  # a view handed out still uses it
                    pass
        try:
            self._mm.close()
        except BufferError:
            pass


def open_mapped(m: Any) -> MappedArray | None:
    """The mapping of BpfMap ``m`` when it is an mmap-able array (None otherwise, or when
    the kernel refuses to map it: the syscall path then serves every access)."""
    from ._core.kernelcalls import BPF_F_MMAPABLE
    from ._types import BpfMapType

    if m.type != BpfMapType.ARRAY or not (m.map_flags & BPF_F_MMAPABLE):
        return None
    n = m.max_entries
    vs = m.value_size
    if n <= 0 or vs <= 0:
        return None
    try:
        return MappedArray(m._live_fd(), m.name, vs, n, m._vc())
    except (OSError, TypeError):
        return None
