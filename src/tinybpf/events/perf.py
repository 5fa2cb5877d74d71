"""BpfPerfBuffer: a BPF_MAP_TYPE_PERF_EVENT_ARRAY map read from Python."""

from __future__ import annotations

import ctypes
import operator
import os
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, overload

from .._core import (
    capture_log,
    check_ptr,
    drain,
    errnos,
    new_opts,
)
from .._types import BpfMapType
from ..errors import BpfError
from ..map import BpfMap

if TYPE_CHECKING:
    pass

from .batch import (
    _ORDER,
    EventBatch,
    T,
    _event_converter,
    _is_negative_int,
    _length_hint,
    _resolve_event_type,
    _stops,
)
from .poller import _Poller

__all__ = ["BpfPerfBuffer"]


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
            ptr = drain.perf_new(fd, page_count, self._batch, opts.ptr)
        try:
            check_ptr(ptr, f"perf_buffer__new for map '{map.name}' failed", log)
        except BaseException:
            self._close_fds()
            raise
        self._handle = ptr
        self._rings = int(drain.perf_buffer_count(ptr))
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
        return int(drain.perf_buffer_count(self._handle))

    @property
    def pending(self) -> int:
        """Events received by a stopped poll, delivered first by the next one."""
        return len(self._pending)

    # --- C side -------------------------------------------------------------------------
    def _c_poll_raw(self, timeout_ms: int) -> int:
        ret = int(drain.perf_poll(self._handle, timeout_ms))
        if ret != 0:
            return ret  # the rings epoll reported were read
        # Nothing reported, yet samples may wait: a perf event's readiness is cleared when
        # it is polled (e.g. by select() on fileno()), and samples below the wakeup mark
        # (sample_period) raise none. Read every ring, only then.
        return self._c_consume_raw()

    def _c_consume_raw(self) -> int:
        if not self._batch_api:
            return int(drain.perf_consume(self._handle))
        # batch mode: ring by ring, stopping between rings once the batch is full; the next
        # read starts at the next ring, so no ring waits behind a busy one
        b = self._batch
        n = self._rings
        start = self._scan_from
        for k in range(n):
            i = (start + k) % n
            ret = int(drain.perf_consume_buffer(self._handle, i))
            if ret < 0 and ret != errnos.RET_NOT_FOUND:  # (ENOENT: a CPU without a ring)
                return ret
            if b.count >= b.max_events:
                self._scan_from = (i + 1) % n
                return errnos.RET_TRY_AGAIN
        return 0

    def _after_c(self) -> None:
        b = self._batch
        lost = int(b.lost)
        self._lost_in_batch = lost
        if lost:
            self._lost += lost
            b.lost = 0

    def _c_epoll_fd_of(self, handle: Any) -> int:
        return int(drain.perf_epoll_fd(handle))

    def _c_free_handle(self, handle: Any) -> None:
        drain.perf_free(handle)

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


_LOST_FLAG: int = drain.LOST_FLAG
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
