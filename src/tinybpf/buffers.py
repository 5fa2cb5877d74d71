"""Ring buffers (BPF_MAP_TYPE_RINGBUF) and perf buffers (BPF_MAP_TYPE_PERF_EVENT_ARRAY).

Delivery contract, shared by both:

* ``poll()``/``consume()`` call the callbacks on the polling thread and return the number of
  events delivered.
* A callback that raises, or returns a negative number, stops the poll *after* that event.
  Events not yet delivered stay queued (in the ring, or in a pending list when the C side had
  already taken them) for the next ``poll()``/``consume()``: nothing is dropped. The exception
  is re-raised unchanged by the ``poll()``/``consume()`` that ran the callback.
* ``close()`` may be called from a callback or from another thread while a poll runs: the
  poll ends (within ``_SLICE_MS``) and the buffer is freed when it returns.
* Blocking polls release the GIL and wake up at least every ``_SLICE_MS`` milliseconds, so
  Ctrl-C (KeyboardInterrupt) and ``close()`` from another thread take effect promptly.
* A poll ends by its deadline and a consume after as many records as its rings hold, also
  under a producer faster than the callbacks.
* libbpf gets a dup of each map fd, closed with the buffer: closing the object first (and
  the reuse of its fd numbers) cannot make the buffer act on another map.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import itertools
import operator
import os
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from ._batchpool import BatchPool
from ._ffi import NULL, capture_log, check_int, check_ptr, ffi, lib, new_opts, strerror
from ._types import BpfMapType, RingBufferEvent
from .errors import BpfClosedError, BpfError, error_for_errno
from .map import BpfMap

if TYPE_CHECKING:
    import asyncio

__all__ = ["BpfPerfBuffer", "BpfRingBuffer", "BpfUserRingBuffer", "EventBatch"]

T = TypeVar("T")
_SLICE_MS = 100
_EINTR = _errno.EINTR
_DEFAULT_MAX_QUEUE = 1 << 20
_DISPATCH_CHUNK = 1 << 14  # samples drained in C per call before Python delivers them
_ORDER: Literal["little", "big"] = sys.byteorder


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
        data: Any,
        nbytes: int,
        sizes: Any,
        cpus: Any,
        count: int,
        event_type: Any = None,
    ) -> None:
        """Made by ``poll_batch()``/``consume_batch()``; not meant to be created directly."""
        self._count = count
        self._event_type = event_type
        self._offsets: list[int] | None = None
        self._data_bytes: bytes | None = None
        self._record_size = 0
        if count:
            self._buf = memoryview(ffi.buffer(data, nbytes))
            self._sizes = memoryview(ffi.buffer(sizes, 4 * count)).cast("I")
            self._cpus = memoryview(ffi.buffer(cpus, 4 * count)).cast("I")
        else:
            self._buf = memoryview(b"")
            self._sizes = memoryview(b"").cast("I")
            self._cpus = memoryview(b"").cast("I")

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
        from ._numpy import batch_array

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


class _Poller:
    """What ring and perf buffers share: C drain, poll lock, deferred close, async waiting.

    Samples are drained by libbpf into a C batch (no Python call per sample), then handed to
    Python once per C call: as an :class:`EventBatch` in batch mode, otherwise dispatched to
    the callbacks (or the iterator queue) by :meth:`_dispatch`.
    """

    _kind = "buffer"
    _poll_name = "poll"
    _handle: Any = None

    def __init__(self) -> None:
        self._closed = True
        self._handle = None
        # reentrant, so that a signal handler's poll on this thread (between the acquire
        # and _poll_owner) finds it held (_is_owned) instead of waiting for itself
        self._poll_lock = threading.RLock()
        self._poll_owner: int | None = None
        self._close_requested = False
        self._halt = False
        self._exc: BaseException | None = None
        self._delivered = 0
        self._objs: list[Any] = []
        self._readers: dict[Any, set[asyncio.Future[None]]] = {}  # loop -> waiters
        self._batch: Any = ffi.new("struct tinybpf_batch *")
        self._batch.max_events = _DISPATCH_CHUNK
        self._pool = BatchPool()
        self._batch_api = False
        self._batch_type: Any = None
        self._fds: list[int] = []  # dups of the map fds, libbpf's for as long as it runs
        self._deadline: float | None = None  # of the running poll (None: none, or consume)
        self._consuming = False
        self._consume_cap = 0  # records a consume() may take: what the rings can hold
        _LIVE_POLLERS.add(self)

    # --- subclasses ---------------------------------------------------------------------
    def _c_poll_raw(self, timeout_ms: int) -> int:
        raise NotImplementedError

    def _c_consume_raw(self) -> int:
        raise NotImplementedError

    def _c_epoll_fd_of(self, handle: Any) -> int:
        raise NotImplementedError

    def _c_free_handle(self, handle: Any) -> None:
        raise NotImplementedError

    def _dispatch(self, batch: EventBatch) -> None:
        raise NotImplementedError

    def _deliver_pending(self) -> None:
        raise NotImplementedError

    def _after_c(self) -> None:
        """Bookkeeping after each C call (perf buffers: lost counts)."""

    # --- fds ----------------------------------------------------------------------------
    def _own_fd(self, bmap: BpfMap[Any, Any]) -> int:
        """A dup of the map's fd for libbpf, which keeps using it after the call (perf
        buffers delete their per-CPU keys through it when freed): the map's own fd may be
        closed and its number reused by another map while the buffer lives."""
        fd = os.dup(bmap.fd)
        self._fds.append(fd)
        return fd

    def _close_fds(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    # --- state --------------------------------------------------------------------------
    def _check(self) -> None:
        if self._closed:
            raise BpfClosedError(f"{self._kind} is closed")
        for o in self._objs:
            if o._closed:
                raise BpfClosedError(f"Cannot use {self._kind.lower()} after BpfObject is closed")

    def _begin(self) -> None:
        if self._poll_owner == threading.get_ident() or self._poll_lock._is_owned():  # type: ignore[attr-defined]
            raise BpfError(
                f"re-entrant poll: {self._kind.lower()}.poll()/consume() called from one of "
                "its own callbacks"
            )

    # --- the C drain --------------------------------------------------------------------
    def _drain(self, ret: int) -> int:
        """After a C poll/consume: hand the drained samples over; keep draining when a
        chunk filled up (-EAGAIN) and nothing stopped delivery, but not forever under a
        producer faster than the callbacks: a poll until its deadline (at least
        ``_SLICE_MS`` from now), a consume until it has taken as many records as its rings
        can hold (all that were there when it started). The rest waits in the ring."""
        b = self._batch
        until = time.monotonic() + _SLICE_MS / 1000
        if self._deadline is not None and self._deadline > until:
            until = self._deadline
        budget = self._consume_cap if self._consuming else -1
        while True:
            self._after_c()
            if b.err:
                err, b.err = int(b.err), 0
                self._halt = True
                if self._exc is None:
                    self._exc = error_for_errno(-err)(
                        f"{self._kind}: cannot buffer samples: {strerror(-err)}", -err
                    )
            if self._batch_api:
                self._delivered = int(b.count)
                if ret == -_errno.EAGAIN:
                    self._halt = True  # batch full: the rest waits in the ring
                return ret
            if b.count:
                budget -= int(b.count)
                self._dispatch(self._take_batch())
            if ret != -_errno.EAGAIN:
                return ret
            if self._halt or self._close_requested:
                return 0
            if (budget <= 0) if self._consuming else (time.monotonic() >= until):
                return 0
            ret = self._c_consume_raw()

    def _c_poll(self, timeout_ms: int) -> int:
        return self._drain(self._c_poll_raw(timeout_ms))

    def _c_consume(self) -> int:
        return self._drain(self._c_consume_raw())

    def _run(self, consume_only: bool, timeout_ms: int, ignore_eintr: bool) -> int:
        self._begin()
        try:
            return self._run_locked(consume_only, timeout_ms, ignore_eintr)
        finally:
            self._free_if_close_requested()

    def _free_if_close_requested(self) -> None:
        """After releasing the poll lock: a close() that came while it was held, after the
        holder's last look at ``_close_requested``, found the lock taken and left the
        freeing to the holder. Whoever releases the lock looks again (a leaked ring
        buffer, 1 in 2,000 poll_batch()/close() races, before)."""
        if (
            self._close_requested
            and self._handle is not None
            and self._poll_lock.acquire(blocking=False)
        ):
            try:
                self._free()
            finally:
                self._poll_lock.release()

    def _take_locked(self) -> EventBatch:
        try:
            with self._poll_lock:
                return self._take_batch()
        finally:
            self._free_if_close_requested()

    def _run_locked(self, consume_only: bool, timeout_ms: int, ignore_eintr: bool) -> int:
        with self._poll_lock:
            self._poll_owner = threading.get_ident()
            try:
                self._check()
                if self._handle is None:
                    raise BpfError(f"No maps added to {self._kind.lower()}")
                self._halt = False
                self._exc = None
                self._delivered = 0
                if not self._batch_api:
                    self._deliver_pending()
                if not self._halt:
                    self._loop(consume_only, timeout_ms, ignore_eintr)
                exc, self._exc = self._exc, None
                if exc is not None:
                    raise exc
                return self._delivered
            finally:
                self._poll_owner = None
                if self._close_requested:
                    self._free()

    def _failed(self, ret: int, ignore_eintr: bool) -> bool:
        """Handle a negative return of a C poll; True when the poll should end quietly."""
        if self._halt or ret == -_errno.EAGAIN:
            return True
        if ret == -_EINTR and ignore_eintr:
            return True
        raise error_for_errno(-ret)(f"{self._poll_name} failed: {strerror(-ret)}", -ret)

    def _loop(self, consume_only: bool, timeout_ms: int, ignore_eintr: bool) -> None:
        self._deadline = None
        self._consuming = consume_only
        if consume_only:
            ret = self._c_consume()
            if ret < 0:
                self._failed(ret, ignore_eintr)
            return
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        self._deadline = deadline
        while True:
            if deadline is None:
                wait = _SLICE_MS
            else:
                wait = max(0, min(_SLICE_MS, int((deadline - time.monotonic()) * 1000)))
            ret = self._c_poll(wait)
            if ret < 0 and self._failed(ret, ignore_eintr):
                return
            if self._halt or self._delivered or self._close_requested:
                return
            for o in self._objs:  # the object was closed while we waited
                if o._closed:
                    self._check()
            if deadline is not None and time.monotonic() >= deadline:
                return

    def poll(self, timeout_ms: int = -1, ignore_eintr: bool = True) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for events, deliver them, return the count.

        Under a producer faster than the callbacks, delivery ends at the deadline (after
        at least 100 ms of it); the rest stays in the ring for the next call.
        """
        self._not_batch()
        return self._run(False, int(timeout_ms), ignore_eintr)

    def consume(self) -> int:
        """Deliver every event available now without waiting; return the count.

        At most as many events as the rings can hold (records of 8 bytes or more), so a
        producer faster than the callbacks cannot keep it running.
        """
        self._not_batch()
        return self._run(True, 0, True)

    # --- batch mode ---------------------------------------------------------------------
    def _not_batch(self) -> None:
        if self._batch_api:
            raise BpfError(
                f"{self._kind.lower()} is in batch mode: use poll_batch()/consume_batch()"
            )

    def _take_batch(self) -> EventBatch:
        b = self._batch
        count = int(b.count)
        nbytes = int(b.len)
        if count == 0:
            return EventBatch(None, 0, None, None, 0, self._batch_type)
        uniform = int(b.uniform)  # C saw every record's size: no scan of sizes in Python
        # (buffers reused once the batch is gone: _batchpool.py)
        owned_data, owned_sizes, owned_cpus = self._pool.take(b)
        batch = EventBatch(owned_data, nbytes, owned_sizes, owned_cpus, count, self._batch_type)
        if uniform:
            batch._record_size = uniform
        return batch

    def _require_batch(self) -> None:
        if not self._batch_api:
            raise BpfError(f"{self._kind.lower()} is not in batch mode (create it with batch=True)")

    def poll_batch(self, timeout_ms: int = -1, ignore_eintr: bool = True) -> EventBatch:
        """Batch mode: wait up to ``timeout_ms`` for events, drain them in C, and return
        them as one :class:`EventBatch` (empty on timeout)."""
        self._require_batch()
        self._run(False, int(timeout_ms), ignore_eintr)
        return self._take_locked()

    def consume_batch(self) -> EventBatch:
        """Batch mode: every event available now (up to ``max_batch``), as one batch."""
        self._require_batch()
        self._run(True, 0, True)
        return self._take_locked()

    async def poll_batch_async(self, timeout_ms: int = -1) -> EventBatch:
        """Batch mode, without blocking the event loop."""
        batch = self.consume_batch()
        if len(batch) or timeout_ms == 0:
            return batch
        await self._wait_readable(timeout_ms)
        return self.consume_batch()

    # --- epoll and asyncio --------------------------------------------------------------
    def epoll_fd(self) -> int:
        """An epoll fd that becomes readable when events are available."""
        self._check()
        if self._handle is None:
            raise BpfError(f"No maps added to {self._kind.lower()}")
        return self._c_epoll_fd_of(self._handle)

    def fileno(self) -> int:
        return self.epoll_fd()

    async def poll_async(self, timeout_ms: int = -1) -> int:
        """Wait for events without blocking the event loop, then deliver them.

        Returns 0 on timeout or when the buffer is closed meanwhile.
        """
        if timeout_ms == 0:
            return self.consume()
        n = self.consume()
        if n:
            return n
        if not await self._wait_readable(timeout_ms):
            return 0
        if self._closed:
            return 0
        return self.consume()

    async def _wait_readable(self, timeout_ms: int) -> bool:
        """Wait until the epoll fd is readable (or the buffer closes); False on timeout."""
        import asyncio  # imported on first async use: it costs ~20 ms

        loop = asyncio.get_running_loop()
        fd = self.epoll_fd()
        fut: asyncio.Future[None] = loop.create_future()
        waiters = self._readers.get(loop)
        if waiters is None:
            waiters = self._readers[loop] = set()

            def wake() -> None:
                for f in list(waiters):
                    if not f.done():
                        f.set_result(None)

            loop.add_reader(fd, wake)
        waiters.add(fut)
        try:
            if timeout_ms < 0:
                await fut
            else:
                try:
                    await asyncio.wait_for(fut, timeout_ms / 1000)
                except asyncio.TimeoutError:
                    return False
        finally:
            waiters.discard(fut)
            if not waiters and self._readers.get(loop) is waiters:
                del self._readers[loop]
                if not loop.is_closed():
                    loop.remove_reader(fd)
        return True

    def _wake_async(self) -> None:
        for loop, waiters in list(self._readers.items()):
            for f in list(waiters):

                def done(f: asyncio.Future[None] = f) -> None:
                    if not f.done():
                        f.set_result(None)

                if not loop.is_closed():
                    loop.call_soon_threadsafe(done)

    # --- lifetime -----------------------------------------------------------------------
    def _free(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            self._close_fds()
            return
        readers, self._readers = self._readers, {}
        # (waiters still pending find no entry and leave the fd number alone: it may soon
        # be another buffer's epoll fd, registered with the same loop)
        for loop in readers:
            try:
                if not loop.is_closed():
                    loop.remove_reader(self._c_epoll_fd_of(handle))
            except Exception:
                pass
        try:
            self._c_free_handle(handle)
        finally:
            lib.tinybpf_batch_free(self._batch)
            self._pool.close()
            self._close_fds()

    def close(self) -> None:
        """Free the buffer. Idempotent; safe from a callback or another thread."""
        if self._closed:
            return
        self._closed = True
        self._halt = True
        self._wake_async()
        lock = self._poll_lock
        mine = lock._is_owned()  # type: ignore[attr-defined]  # a callback or signal handler
        if not mine and lock.acquire(blocking=False):
            try:
                self._free()
            finally:
                lock.release()
        else:
            self._close_requested = True
            if not mine and lock.acquire(blocking=False):
                try:
                    self._free()
                finally:
                    self._poll_lock.release()

    def __del__(self) -> None:
        if getattr(self, "_closed", True):
            return
        try:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2)
            self.close()
        except Exception:
            pass

    def _after_fork_in_child(self) -> None:
        # a poll running in another thread of the parent does not exist in the child
        self._poll_lock = threading.RLock()
        self._poll_owner = None
        self._readers = {}


_LIVE_POLLERS: weakref.WeakSet[_Poller] = weakref.WeakSet()


_LIVE_USER_RINGS: weakref.WeakSet[BpfUserRingBuffer] = weakref.WeakSet()


def _reset_pollers_after_fork() -> None:
    for poller in list(_LIVE_POLLERS):
        poller._after_fork_in_child()
    for urb in list(_LIVE_USER_RINGS):  # (a submit waiting in the parent is not here)
        urb._lock = threading.Lock()
        urb._waiters = 0


os.register_at_fork(after_in_child=_reset_pollers_after_fork)


def _is_negative_int(ret: Any) -> bool:
    return type(ret) is int and ret < 0


class _RingEntry:
    __slots__ = ("callback", "convert", "ctype", "event_type", "map", "map_name", "src")

    def __init__(
        self,
        bmap: BpfMap[Any, Any],
        callback: Callable[[Any], Any] | None,
        event_type: Any,
        convert: Callable[[Any], Any] | None,
    ) -> None:
        self.map = bmap
        self.map_name = bmap.name
        self.callback = callback
        self.event_type = event_type
        self.convert = convert  # None: memoryview mode
        self.ctype: Any = (
            event_type
            if isinstance(event_type, type)
            and issubclass(event_type, (ctypes.Structure, ctypes.Union))
            else None
        )
        self.src: Any = None


class BpfRingBuffer(_Poller, Generic[T]):
    """Events from one or more BPF_MAP_TYPE_RINGBUF maps.

    Callback mode: ``BpfRingBuffer(obj.maps["events"], on_event)`` then ``rb.poll()``.
    Iterator mode (no callback): ``rb.poll(); for ev in rb: ...`` or ``async for ev in rb``.
    Batch mode (``batch=True``): ``rb.poll_batch()`` returns an :class:`EventBatch`.

    Typed events (``event_type=`` a ctypes type or a BTF struct name) handed to callbacks
    are views into the poll's buffer, which stays alive as long as they are referenced.

    Example::

        def on_event(data: bytes) -> None:
            print(data)

        with tinybpf.BpfRingBuffer(obj.maps["events"], on_event) as rb:
            rb.poll(timeout_ms=1000)
    """

    _kind = "Ring buffer"
    _poll_name = "ring_buffer__poll"

    @overload
    def __init__(
        self,
        map: BpfMap[Any, Any] | None = None,
        callback: Callable[[bytes], Any] | Callable[[memoryview], Any] | None = None,
        as_memoryview: bool = False,
        *,
        validate_btf_struct: str | None = None,
        validate_field_names: bool = True,
        max_queue: int = _DEFAULT_MAX_QUEUE,
        batch: bool = False,
        max_batch: int = 1 << 14,
    ) -> None: ...
    @overload
    def __init__(
        self,
        map: BpfMap[Any, Any] | None = None,
        callback: Callable[[T], Any] | None = None,
        as_memoryview: bool = False,
        *,
        event_type: type[T] | str,
        validate_btf_struct: str | None = None,
        validate_field_names: bool = True,
        max_queue: int = _DEFAULT_MAX_QUEUE,
        batch: bool = False,
        max_batch: int = 1 << 14,
    ) -> None: ...
    def __init__(
        self,
        map: BpfMap[Any, Any] | None = None,
        callback: Callable[[Any], Any] | None = None,
        as_memoryview: bool = False,
        *,
        event_type: Any = bytes,
        validate_btf_struct: str | None = None,
        validate_field_names: bool = True,
        max_queue: int = _DEFAULT_MAX_QUEUE,
        batch: bool = False,
        max_batch: int = 1 << 14,
    ) -> None:
        super().__init__()
        if batch:
            if callback is not None or as_memoryview:
                raise BpfError("batch=True takes no callback: use poll_batch()")
            self._batch_api = True
            self._batch.max_events = max(1, int(max_batch))
        if callback is not None and map is None:
            raise ValueError("callback requires map")
        if as_memoryview and callback is None:
            raise BpfError("as_memoryview=True requires a callback")
        if as_memoryview and event_type is not bytes:
            raise BpfError("Cannot use as_memoryview=True with event_type")
        if max_queue < 1:
            raise ValueError(f"max_queue must be positive, got {max_queue}")
        self._default_as_mv = as_memoryview
        self._default_event_type = event_type
        self._default_validate = validate_btf_struct
        self._default_names = validate_field_names
        self._entries: list[_RingEntry] = []
        self._mode: str | None = None
        self._mv_mode: bool | None = None
        self._iter_type: Any = None
        self._queue: deque[tuple[_RingEntry, bytes]] = deque()
        self._pending: deque[tuple[_RingEntry, bytes]] = deque()
        self._max_queue = max_queue
        self._dropped = 0
        self._closed = False
        if map is not None:
            self.add(
                map,
                callback,
                as_memoryview,
                event_type=event_type,
                validate_btf_struct=validate_btf_struct,
                validate_field_names=validate_field_names,
            )

    @property
    def dropped(self) -> int:
        """Events dropped because the iterator-mode queue was full (``max_queue``)."""
        return self._dropped

    @property
    def queued(self) -> int:
        """Events waiting in the iterator-mode queue."""
        return len(self._queue)

    @property
    def pending(self) -> int:
        """Samples drained by a stopped poll, delivered first by the next one."""
        return len(self._pending)

    def add(
        self,
        map: BpfMap[Any, Any],
        callback: Callable[[Any], Any] | None = None,
        as_memoryview: bool | None = None,
        *,
        event_type: Any = None,
        validate_btf_struct: str | None = None,
        validate_field_names: bool | None = None,
    ) -> None:
        """Add another ring buffer map (callback mode may use a different type per map).

        Not while the buffer is being polled (libbpf reallocates what the poll uses): from
        a callback, or while another thread is inside ``poll()``/``consume()``, it raises
        ``BpfError`` (EBUSY). Add the maps before polling, or between polls."""
        lock = self._poll_lock
        if lock._is_owned() or not lock.acquire(blocking=False):  # type: ignore[attr-defined]
            raise BpfError(
                f"cannot add map '{map.name}' while this ring buffer is being polled "
                "(from a callback, or by another thread): add maps before polling, or "
                "between polls",
                _errno.EBUSY,
            )
        try:
            self._add_unpolled(
                map,
                callback,
                as_memoryview,
                event_type=event_type,
                validate_btf_struct=validate_btf_struct,
                validate_field_names=validate_field_names,
            )
        finally:
            self._poll_lock.release()

    def _add_unpolled(
        self,
        map: BpfMap[Any, Any],
        callback: Callable[[Any], Any] | None,
        as_memoryview: bool | None,
        *,
        event_type: Any,
        validate_btf_struct: str | None,
        validate_field_names: bool | None,
    ) -> None:
        self._check()
        if as_memoryview is None:
            as_memoryview = self._default_as_mv
        if event_type is None:
            event_type = self._default_event_type
        if validate_btf_struct is None:
            validate_btf_struct = self._default_validate
        if validate_field_names is None:
            validate_field_names = self._default_names
        if map.type != BpfMapType.RINGBUF:
            raise BpfError(f"Map '{map.name}' is type {map.type.name}, expected RINGBUF")
        event_type = _resolve_event_type(map, event_type)
        if any(e.map is map for e in self._entries):
            raise BpfError(f"Map '{map.name}' already added to this ring buffer")
        if as_memoryview and callback is None:
            raise BpfError("as_memoryview=True requires a callback")
        if as_memoryview and event_type is not bytes:
            raise BpfError("Cannot use as_memoryview=True with event_type")
        if self._batch_api:
            if callback is not None:
                raise BpfError("batch=True takes no callback: use poll_batch()")
            mode = "batch"
        else:
            mode = "callback" if callback is not None else "iterator"
        if (
            self._mv_mode is not None
            and self._mode == "callback"
            and mode == "callback"
            and bool(as_memoryview) != self._mv_mode
        ):
            raise BpfError(
                "Cannot mix memoryview and bytes modes; ring buffer is in "
                f"{'memoryview' if self._mv_mode else 'bytes'} mode"
            )
        if self._mode is not None and mode != self._mode:
            raise BpfError(
                f"Cannot mix callback and iterator modes; ring buffer is in {self._mode} mode"
            )
        if mode == "iterator" and self._iter_type is not None and event_type is not self._iter_type:
            raise BpfError(
                "Cannot mix event types in iterator mode; ring buffer uses "
                f"{getattr(self._iter_type, '__name__', self._iter_type)}"
            )
        obj = map._obj
        if obj is not None and not map.is_standalone:
            obj._validate_event_type(event_type, validate_btf_struct, validate_field_names)
        convert = None if as_memoryview else _event_converter(event_type, exact=True)
        entry = _RingEntry(map, callback, event_type, convert)
        src = ffi.new("struct tinybpf_batch_src *")
        src.b = self._batch
        src.idx = len(self._entries)
        entry.src = src
        fd = self._own_fd(map)
        try:
            with capture_log() as log:
                if self._handle is None:
                    ptr = lib.tinybpf_batch_ring_new(fd, src)
                    check_ptr(ptr, f"ring_buffer__new for map '{map.name}' failed", log)
                    self._handle = ptr
                else:
                    check_int(
                        lib.tinybpf_batch_ring_add(self._handle, fd, src),
                        f"ring_buffer__add for map '{map.name}' failed",
                        log,
                    )
        except BaseException:
            self._fds.remove(fd)
            os.close(fd)
            raise
        self._entries.append(entry)
        self._consume_cap += max(1, map.max_entries // 8)  # records of >= 8 bytes each
        self._mode = mode
        if mode == "callback":
            self._mv_mode = bool(as_memoryview)
        elif mode == "iterator":
            self._iter_type = event_type
        elif event_type is not bytes:
            self._batch_type = event_type
        if obj is not None and obj not in self._objs:
            self._objs.append(obj)

    # --- C side -------------------------------------------------------------------------
    def _c_poll_raw(self, timeout_ms: int) -> int:
        return int(lib.ring_buffer__poll(self._handle, timeout_ms))

    def _c_consume_raw(self) -> int:
        return int(lib.ring_buffer__consume(self._handle))

    def _c_epoll_fd_of(self, handle: Any) -> int:
        return int(lib.ring_buffer__epoll_fd(handle))

    def _c_free_handle(self, handle: Any) -> None:
        lib.ring_buffer__free(handle)

    # --- delivery -----------------------------------------------------------------------
    def _dispatch(self, batch: EventBatch) -> None:
        n = len(batch)
        entries = self._entries
        if self._mode == "iterator":
            self._enqueue(batch)
            return
        srcs = batch._cpus
        i = 0
        if len(entries) == 1:
            i = self._deliver_run(entries[0], batch, 0, n)
        else:
            while i < n and not self._halt:
                j = i + 1
                first = srcs[i]
                while j < n and srcs[j] == first:
                    j += 1
                i = self._deliver_run(entries[first], batch, i, j)
                if i < j:
                    break
        if i < n:  # stopped: keep the rest, in order, for the next poll
            pend = self._pending
            for k in range(i, n):
                pend.append((entries[srcs[k]], bytes(batch[k])))

    def _enqueue(self, batch: EventBatch) -> None:
        q = self._queue
        entries = self._entries
        srcs = batch._cpus
        room = self._max_queue - len(q)
        n = len(batch)
        for k in range(n):
            if room > 0:
                q.append((entries[srcs[k]], bytes(batch[k])))
                room -= 1
            else:
                self._dropped += 1
        self._delivered += n

    def _deliver_run(self, entry: _RingEntry, batch: EventBatch, start: int, end: int) -> int:
        """Deliver records [start, end) of one map; return the index reached."""
        cb = entry.callback
        assert cb is not None
        k = start
        try:
            if entry.convert is None:  # memoryviews, valid during the callback only
                while k < end:
                    mv = batch[k]
                    k += 1
                    try:
                        ret = cb(mv)
                    finally:
                        mv.release()
                    if (ret is not None or self._halt) and _stops(self, ret):
                        break
            elif entry.ctype is not None and batch.record_size == ctypes.sizeof(entry.ctype):
                # the common case: views of the batch, no counter in the loop (the
                # iterator's remaining length gives the index reached)
                size = ctypes.sizeof(entry.ctype)
                events = iter((entry.ctype * (end - start)).from_buffer(batch._buf, start * size))
                try:
                    for ev in events:
                        ret = cb(ev)
                        if (ret is not None or self._halt) and _stops(self, ret):
                            break
                finally:
                    k = end - _length_hint(events)
            elif entry.event_type is bytes:
                data = batch._bytes()
                offs = batch._offs()
                while k < end:
                    a = offs[k]
                    b = offs[k + 1]
                    k += 1
                    ret = cb(data[a:b])
                    if (ret is not None or self._halt) and _stops(self, ret):
                        break
            else:
                conv = entry.convert
                while k < end:
                    view = batch[k]
                    k += 1
                    ret = cb(conv(view))
                    if (ret is not None or self._halt) and _stops(self, ret):
                        break
        except BaseException as e:  # re-raised unchanged by poll()
            self._exc = e
            self._halt = True
        self._delivered += k - start
        return k

    def _deliver_pending(self) -> None:
        pending = self._pending
        while pending and not self._halt:
            entry, data = pending.popleft()
            cb = entry.callback
            if cb is None:
                continue
            try:
                if entry.convert is None:
                    mv = memoryview(data)
                    try:
                        ret = cb(mv)
                    finally:
                        mv.release()
                else:
                    ret = cb(entry.convert(data))
                if type(ret) is int and ret < 0:
                    self._halt = True
            except BaseException as e:
                self._exc = e
                self._halt = True
            self._delivered += 1

    # --- iterator mode ------------------------------------------------------------------
    def _convert_queued(self, item: tuple[_RingEntry, bytes]) -> Any:
        entry, data = item
        conv = entry.convert
        return conv(data) if conv is not None else data

    def _require_iterator(self) -> None:
        if self._mode == "callback":
            raise BpfError(
                "Cannot iterate on callback-mode ring buffer; events are delivered to "
                "callbacks during poll()"
            )

    def __iter__(self) -> Iterator[T]:
        """Drain the queued events (iterator mode) without polling."""
        self._require_iterator()
        while self._queue:
            yield self._convert_queued(self._queue.popleft())

    async def _anext(self, tagged: bool) -> Any:
        while True:
            if self._queue:
                item = self._queue.popleft()
                value = self._convert_queued(item)
                return RingBufferEvent(item[0].map_name, value) if tagged else value
            if self._closed:
                raise StopAsyncIteration
            self._check()
            await self.poll_async(-1)

    def __aiter__(self) -> AsyncIterator[T]:
        self._require_iterator()
        if not self._entries:
            raise BpfError("No maps added to ring buffer")
        return _AsyncIter(self, tagged=False)

    def events(self) -> AsyncIterator[RingBufferEvent[T]]:
        """Async iterator of events tagged with their map name (iterator mode)."""
        self._require_iterator()
        if not self._entries:
            raise BpfError("No maps added to ring buffer")
        return _AsyncIter(self, tagged=True)

    # --- lifetime -----------------------------------------------------------------------
    def __enter__(self) -> BpfRingBuffer[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> BpfRingBuffer[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        names = [e.map_name for e in self._entries]
        if not names:
            where = "(no maps)"
        elif len(names) == 1:
            where = f"map='{names[0]}'"
        else:
            where = f"maps={names}"
        mode = f" {self._mode}" if self._mode else ""
        return f"<BpfRingBuffer {where}{mode} {'closed' if self._closed else 'open'}>"


class _AsyncIter(AsyncIterator[Any]):
    def __init__(self, rb: BpfRingBuffer[Any], tagged: bool) -> None:
        self._rb = rb
        self._tagged = tagged

    def __aiter__(self) -> _AsyncIter:
        return self

    async def __anext__(self) -> Any:
        return await self._rb._anext(self._tagged)


class BpfPerfBuffer(_Poller, Generic[T]):
    """Events from a BPF_MAP_TYPE_PERF_EVENT_ARRAY map (one ring per CPU).

    ``sample_callback(cpu, data)`` gets each event; ``lost_callback(cpu, count)`` the
    number of samples the kernel dropped (also summed in ``lost``). With ``batch=True``,
    ``poll_batch()`` returns an :class:`EventBatch` of samples only (``cpus`` tells each
    sample's CPU; lost samples are counted in ``lost``).

    A poll reads the rings the kernel reports ready, each one whole. When it reports none
    (samples wait below the ``sample_period`` wakeup mark, or a ``select()`` on
    :meth:`fileno` took their readiness), every ring is read. In batch mode that reading
    goes ring by ring and stops once the batch holds ``max_batch`` samples; the next poll
    goes on from the next ring.

    Example::

        pb = tinybpf.BpfPerfBuffer(obj.maps["events"], lambda cpu, data: print(cpu, data))
        pb.poll(timeout_ms=1000)
    """

    _kind = "Perf buffer"
    _poll_name = "perf_buffer__poll"

    @overload
    def __init__(
        self,
        map: BpfMap[Any, Any],
        sample_callback: Callable[[int, bytes], Any] | None = None,
        lost_callback: Callable[[int, int], Any] | None = None,
        page_count: int = 8,
        *,
        validate_btf_struct: str | None = None,
        validate_field_names: bool = True,
        sample_period: int = 0,
        batch: bool = False,
        max_batch: int = 1 << 14,
    ) -> None: ...
    @overload
    def __init__(
        self,
        map: BpfMap[Any, Any],
        sample_callback: Callable[[int, T], Any] | None = None,
        lost_callback: Callable[[int, int], Any] | None = None,
        page_count: int = 8,
        *,
        event_type: type[T] | str,
        validate_btf_struct: str | None = None,
        validate_field_names: bool = True,
        sample_period: int = 0,
        batch: bool = False,
        max_batch: int = 1 << 14,
    ) -> None: ...
    def __init__(
        self,
        map: BpfMap[Any, Any],
        sample_callback: Callable[[int, Any], Any] | None = None,
        lost_callback: Callable[[int, int], Any] | None = None,
        page_count: int = 8,
        *,
        event_type: Any = bytes,
        validate_btf_struct: str | None = None,
        validate_field_names: bool = True,
        sample_period: int = 0,
        batch: bool = False,
        max_batch: int = 1 << 14,
    ) -> None:
        super().__init__()
        self._map = map
        self._scan_from = 0
        self._lost_in_batch = 0
        self._pending: deque[tuple[bool, int, Any]] = deque()
        self._lost = 0
        self._sample_callback = sample_callback
        self._lost_callback = lost_callback
        if batch and (sample_callback is not None or lost_callback is not None):
            raise BpfError("batch=True takes no callbacks: use poll_batch() and .lost")
        if not batch and sample_callback is None:
            raise TypeError("sample_callback is required (or batch=True)")
        if map.type != BpfMapType.PERF_EVENT_ARRAY:
            raise BpfError(f"Map '{map.name}' is type {map.type.name}, expected PERF_EVENT_ARRAY")
        self._page_count = page_count = _check_page_count(page_count)
        event_type = _resolve_event_type(map, event_type)
        obj = map._obj
        if obj is not None and not map.is_standalone:
            obj._validate_event_type(event_type, validate_btf_struct, validate_field_names)
            self._objs.append(obj)
        self._event_type = event_type
        self._convert = _event_converter(event_type, exact=False)
        self._ctype: Any = (
            event_type
            if isinstance(event_type, type)
            and issubclass(event_type, (ctypes.Structure, ctypes.Union))
            else None
        )
        if event_type is not bytes:
            # samples carry up to 7 bytes of alignment padding: the C side drops them
            self._batch.trim = ctypes.sizeof(event_type)
        if batch:
            self._batch_api = True
            self._batch.max_events = max(1, int(max_batch))
            self._batch_type = event_type if event_type is not bytes else None
        else:
            # lost counts also come as records, to reach lost_callback in order
            self._batch.lost_records = 1
        opts = new_opts("perf_buffer_opts", sample_period=sample_period or None)
        fd = self._own_fd(map)
        with capture_log() as log:
            ptr = lib.tinybpf_batch_perf_new(fd, page_count, self._batch, opts.ptr)
        if ptr == NULL:
            self._close_fds()
        check_ptr(ptr, f"perf_buffer__new for map '{map.name}' failed", log)
        self._handle = ptr
        self._rings = int(lib.perf_buffer__buffer_cnt(ptr))
        self._closed = False

    @property
    def page_count(self) -> int:
        return self._page_count

    @property
    def lost(self) -> int:
        """Total samples the kernel reported lost since this buffer was created."""
        return self._lost

    @property
    def buffer_count(self) -> int:
        """Number of per-CPU rings."""
        self._check()
        return int(lib.perf_buffer__buffer_cnt(self._handle))

    @property
    def pending(self) -> int:
        """Events received by a stopped poll, delivered first by the next one."""
        return len(self._pending)

    # --- C side -------------------------------------------------------------------------
    def _c_poll_raw(self, timeout_ms: int) -> int:
        ret = int(lib.perf_buffer__poll(self._handle, timeout_ms))
        if ret != 0:
            return ret  # the rings epoll reported were read
        # Nothing reported, yet samples may wait: a perf event's readiness is cleared when
        # it is polled (e.g. by select() on fileno()), and samples below the wakeup mark
        # (sample_period) raise none. Read every ring, only then.
        return self._c_consume_raw()

    def _c_consume_raw(self) -> int:
        if not self._batch_api:
            return int(lib.perf_buffer__consume(self._handle))
        # batch mode: ring by ring, stopping between rings once the batch is full; the next
        # read starts at the next ring, so no ring waits behind a busy one
        b = self._batch
        n = self._rings
        start = self._scan_from
        for k in range(n):
            i = (start + k) % n
            ret = int(lib.perf_buffer__consume_buffer(self._handle, i))
            if ret < 0 and ret != -_errno.ENOENT:  # (ENOENT: a CPU without a ring)
                return ret
            if b.count >= b.max_events:
                self._scan_from = (i + 1) % n
                return -_errno.EAGAIN
        return 0

    def _after_c(self) -> None:
        b = self._batch
        lost = int(b.lost)
        self._lost_in_batch = lost
        if lost:
            self._lost += lost
            b.lost = 0

    def _c_epoll_fd_of(self, handle: Any) -> int:
        return int(lib.perf_buffer__epoll_fd(handle))

    def _c_free_handle(self, handle: Any) -> None:
        lib.perf_buffer__free(handle)

    # --- delivery -----------------------------------------------------------------------
    def _dispatch(self, batch: EventBatch) -> None:
        n = len(batch)
        cpus = batch._cpus
        cb = self._sample_callback
        assert cb is not None
        k = 0
        samples = 0
        size = ctypes.sizeof(self._ctype) if self._ctype is not None else -1
        try:
            if self._ctype is not None and not self._lost_in_batch and batch.record_size == size:
                # the common case: typed samples only, as views of the batch
                arr = (self._ctype * n).from_buffer(batch._buf)
                cpu_iter = iter(cpus.tolist())
                try:
                    for cpu, ev in zip(cpu_iter, arr, strict=True):
                        ret = cb(cpu, ev)
                        if (ret is not None or self._halt) and _stops(self, ret):
                            break
                finally:
                    k = samples = n - _length_hint(cpu_iter)
            elif self._event_type is bytes and not self._lost_in_batch:
                data = batch._bytes()
                offs = batch._offs()
                for cpu, a, b in zip(cpus.tolist(), offs, offs[1:], strict=False):
                    k += 1
                    ret = cb(cpu, data[a:b])
                    if (ret is not None or self._halt) and _stops(self, ret):
                        break
                samples = k
            elif self._ctype is not None and batch.record_size == size:
                arr = (self._ctype * n).from_buffer(batch._buf)
                for cpu, ev in zip(cpus.tolist(), arr, strict=True):
                    k += 1
                    if cpu & _LOST_FLAG:
                        self._deliver_lost(cpu & ~_LOST_FLAG, batch[k - 1])
                    else:
                        samples += 1
                        if _is_negative_int(cb(cpu, ev)):
                            self._halt = True
                    if self._halt:
                        break
            else:
                conv = self._convert
                bytes_mode = self._event_type is bytes
                data = batch._bytes() if bytes_mode else b""
                offs = batch._offs()
                for cpu in cpus.tolist():
                    k += 1
                    if cpu & _LOST_FLAG:
                        self._deliver_lost(cpu & ~_LOST_FLAG, batch[k - 1])
                    else:
                        a = offs[k - 1]
                        b = offs[k]
                        samples += 1
                        ev = data[a:b] if bytes_mode else conv(batch[k - 1])
                        if _is_negative_int(cb(cpu, ev)):
                            self._halt = True
                    if self._halt:
                        break
        except BaseException as e:
            self._exc = e
            self._halt = True
        self._delivered += samples
        if k < n:
            pend = self._pending
            for j in range(k, n):
                cpu = cpus[j]
                if cpu & _LOST_FLAG:
                    pend.append((False, cpu & ~_LOST_FLAG, _lost_count(batch[j])))
                else:
                    pend.append((True, cpu, bytes(batch[j])))

    def _deliver_lost(self, cpu: int, record: Any) -> None:
        """A lost record; counts as a delivery only for the lost callback."""
        cb = self._lost_callback
        if cb is None:
            return
        if _is_negative_int(cb(cpu, _lost_count(record))):
            self._halt = True

    def _deliver_pending(self) -> None:
        pending = self._pending
        cb = self._sample_callback
        while pending and not self._halt:
            is_sample, cpu, payload = pending.popleft()
            try:
                if is_sample:
                    assert cb is not None
                    self._delivered += 1
                    if _is_negative_int(cb(cpu, self._convert(payload))):
                        self._halt = True
                elif self._lost_callback is not None:
                    self._lost_callback(cpu, payload)
            except BaseException as e:
                self._exc = e
                self._halt = True

    def __enter__(self) -> BpfPerfBuffer[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> BpfPerfBuffer[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BpfPerfBuffer map='{self._map.name}' {'closed' if self._closed else 'open'}>"


_LOST_FLAG: int = lib.TINYBPF_LOST_FLAG
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_MAX_RING_BYTES = 1 << 32  # per CPU; far beyond what the kernel maps, far below overflow


def _check_page_count(page_count: Any) -> int:
    """A power of two small enough that libbpf's ``page_size * (page_count + 1)`` fits."""
    n = operator.index(page_count)
    limit = _MAX_RING_BYTES // _PAGE_SIZE
    if n <= 0 or n & (n - 1):
        raise ValueError(f"page_count must be a power of 2, got {page_count}")
    if n > limit:
        raise ValueError(
            f"page_count {n} is too large: at most {limit} pages of {_PAGE_SIZE} bytes "
            f"per CPU ({_MAX_RING_BYTES >> 30} GiB)"
        )
    return n


def _lost_count(record: Any) -> int:
    return int.from_bytes(bytes(record), _ORDER)


class BpfUserRingBuffer:
    """Samples from Python to a program, through a BPF_MAP_TYPE_USER_RINGBUF map.

    The program drains it with ``bpf_user_ringbuf_drain()``. ``close()`` may be called
    from another thread while a ``submit()`` waits for room: it returns at once, and the
    waiting ``submit()`` raises ``BpfClosedError``.

    Example::

        urb = tinybpf.BpfUserRingBuffer(obj.maps["requests"])
        urb.submit(struct.pack("<II", 1, 2))
    """

    def __init__(self, map: BpfMap[Any, Any]) -> None:
        self._handle: Any = None
        self._fd = -1  # libbpf's dup of the map fd; also what a waiting submit polls
        self._wake_fd = -1  # an eventfd close() signals, made by the first waiting submit
        self._waiters = 0
        if map.type != BpfMapType.USER_RINGBUF:
            raise BpfError(f"Map '{map.name}' is type {map.type.name}, expected USER_RINGBUF")
        self._map = map
        self._obj = map._obj
        self._lock = threading.Lock()  # held only around libbpf calls, never while waiting
        _LIVE_USER_RINGS.add(self)  # the lock is reset in a forked child
        fd = os.dup(map.fd)
        with capture_log() as log:
            ptr = lib.user_ring_buffer__new(fd, NULL)
        if ptr == NULL:
            err = ffi.errno
            os.close(fd)
            ffi.errno = err
        self._handle = check_ptr(ptr, f"user_ring_buffer__new for map '{map.name}' failed", log)
        self._fd = fd

    def _h(self) -> Any:
        if self._handle is None:
            raise BpfClosedError("User ring buffer is closed")
        if self._obj is not None and self._obj._closed:
            raise BpfClosedError("Cannot use user ring buffer after BpfObject is closed")
        return self._handle

    def submit(self, data: Any, timeout_ms: int = 0) -> None:
        """Copy ``data`` (bytes-like or ctypes instance) into the ring and publish it.

        With ``timeout_ms`` > 0 (or -1: forever) wait until the program has drained
        enough room for this sample; otherwise, or when the time is up, a ring without
        room raises ``BpfError`` (ENOSPC). A ``close()`` ends the wait with
        ``BpfClosedError``.
        """
        if isinstance(data, (ctypes.Structure, ctypes.Union, ctypes.Array)):
            raw = bytes(memoryview(data).cast("B"))
        else:
            raw = bytes(data)
        if not raw:
            raise ValueError("cannot submit an empty sample")
        timeout_ms = operator.index(timeout_ms)
        if timeout_ms < -1:
            raise ValueError(f"timeout_ms must be -1 (forever), 0 or positive, got {timeout_ms}")
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        size = len(raw)
        backoff = 0.001
        while True:
            with self._lock:
                h = self._h()
                sample = lib.user_ring_buffer__reserve(h, size)
                if sample != NULL:
                    ffi.memmove(sample, raw, size)
                    lib.user_ring_buffer__submit(h, sample)
                    return
                err = ffi.errno
                left = None if deadline is None else deadline - time.monotonic()
                if err != _errno.ENOSPC or (left is not None and left <= 0):
                    ffi.errno = err
                    check_ptr(
                        sample,
                        f"reserve {size} bytes in user ring buffer '{self._map.name}' failed",
                    )
                if self._wake_fd < 0:
                    self._wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
                self._waiters += 1
            try:
                backoff = self._wait(left, backoff)
            finally:
                with self._lock:
                    self._waiters -= 1
                    if self._handle is None and not self._waiters:
                        self._close_fds()

    def _wait(self, left: float | None, backoff: float) -> float:
        """Wait for room (or close) without the lock, at most ``left`` seconds and one
        ``_SLICE_MS`` slice (an object closed meanwhile is noticed); the next backoff.

        The kernel reports the ring writable whenever it is not completely full, also when
        the free part is too small for this sample: then there is nothing to wait on but
        time, and the wait backs off from 1 ms to 20 ms instead of spinning."""
        import select

        slice_s = _SLICE_MS / 1000 if left is None else min(left, _SLICE_MS / 1000)
        p = select.poll()
        p.register(self._wake_fd, select.POLLIN)
        p.register(self._fd, select.POLLOUT)
        ready = dict(p.poll(0))
        if ready.get(self._wake_fd):
            return backoff
        if ready.get(self._fd):  # room, but not enough: sleep, woken early by close()
            p.unregister(self._fd)
            p.poll(max(1, int(min(backoff, slice_s) * 1000)))
            return min(backoff * 2, 0.02)
        p.poll(max(1, int(slice_s * 1000)))  # full: until the program drains some
        return 0.001

    def _close_fds(self) -> None:
        for name in ("_fd", "_wake_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)

    def close(self) -> None:
        """Free the buffer; a ``submit()`` waiting in another thread raises
        ``BpfClosedError``. Idempotent."""
        with self._lock:
            h, self._handle = self._handle, None
            if h is not None:
                lib.user_ring_buffer__free(h)
            if self._wake_fd >= 0:
                os.eventfd_write(self._wake_fd, 1)  # never read: wakes every waiter
            if not self._waiters:
                self._close_fds()

    def __enter__(self) -> BpfUserRingBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._handle is None else "open"
        return f"<BpfUserRingBuffer map='{self._map.name}' {state}>"
