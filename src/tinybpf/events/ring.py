"""BpfRingBuffer: a BPF_MAP_TYPE_RINGBUF map read from Python."""

from __future__ import annotations

import ctypes
import errno as _errno
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, overload

from .._core import check_int, drain
from .._types import BpfMapType, RingBufferEvent
from ..errors import BpfError
from ..map import BpfMap

if TYPE_CHECKING:
    pass

from .batch import (
    _DEFAULT_MAX_QUEUE,
    EventBatch,
    T,
    _event_converter,
    _length_hint,
    _resolve_event_type,
    _stops,
)
from .poller import _Poller

__all__ = ["BpfRingBuffer"]


class _RingEntry:
    __slots__ = ("callback", "convert", "ctype", "event_type", "map", "map_name")

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
    _poll_name = "ring buffer poll (epoll_wait)"

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
        fd = self._own_fd(map)
        try:
            # tinybpf's reader maps the ring and copies its records in one C loop (no
            # callback per record); its epoll fd has every map fd
            if self._handle is None:
                self._handle = drain.ring_reader_new(self._batch, "create a ring buffer")
            check_int(
                drain.ring_reader_add(self._handle, fd, len(self._entries)),
                f"cannot read ring buffer map '{map.name}' (mmap, epoll_ctl)",
            )
        except BaseException:
            self._fds.remove(fd)
            os.close(fd)
            if not self._entries and self._handle is not None:  # (no map: no reader)
                handle, self._handle = self._handle, None
                drain.ring_reader_free(handle)
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
        return int(drain.ring_reader_poll(self._handle, timeout_ms))

    def _c_consume_raw(self) -> int:
        return int(drain.ring_reader_consume(self._handle))

    def _c_epoll_fd_of(self, handle: Any) -> int:
        return int(drain.ring_reader_epoll_fd(handle))

    def _c_free_handle(self, handle: Any) -> None:
        drain.ring_reader_free(handle)

    # --- delivery -----------------------------------------------------------------------
    def _dispatch(self, batch: EventBatch) -> None:
        n = len(batch)
        entries = self._entries
        if self._mode == "iterator":
            self._enqueue(batch)
            return
        i = 0
        if len(entries) == 1:
            i = self._deliver_run(entries[0], batch, 0, n)
        else:
            srcs = batch._cpus
            while i < n and not self._halt:
                j = i + 1
                first = srcs[i]
                while j < n and srcs[j] == first:
                    j += 1
                i = self._deliver_run(entries[first], batch, i, j)
                if i < j:
                    break
        if i < n:  # stopped: keep the rest, in order, for the next poll
            srcs = batch._cpus
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
