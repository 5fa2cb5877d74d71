"""The poll loop shared by ring and perf buffers (the delivery contract of tinybpf.events)."""

from __future__ import annotations

import os
import threading
import time
import warnings
import weakref
from typing import TYPE_CHECKING, Any

from .._core import (
    drain,
    errnos,
    fail,
)
from .._core.batchpool import BatchPool
from ..errors import BpfClosedError, BpfError
from ..map import BpfMap

if TYPE_CHECKING:
    import asyncio

from .batch import _DISPATCH_CHUNK, _SLICE_MS, EventBatch

__all__: list[str] = []


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
        self._batch: Any = drain.new_batch()
        self._batch.max_events = _DISPATCH_CHUNK
        self._pool = BatchPool()  # (buffers reused once a batch is gone)
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
                    try:
                        fail(err, f"{self._kind}: cannot buffer samples")
                    except BpfError as e:
                        self._exc = e
            if self._batch_api:
                self._delivered = int(b.count)
                if ret == errnos.RET_TRY_AGAIN:
                    self._halt = True  # batch full: the rest waits in the ring
                return ret
            if b.count:
                budget -= int(b.count)
                self._dispatch(self._take_batch())
            if ret != errnos.RET_TRY_AGAIN:
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
            with self._poll_lock:
                return self._run_held(consume_only, timeout_ms, ignore_eintr)
        finally:
            self._free_if_close_requested()

    def _run_batch(self, consume_only: bool, timeout_ms: int, ignore_eintr: bool) -> EventBatch:
        """Batch mode: the drain and the take of its batch under one hold of the lock."""
        self._begin()
        try:
            with self._poll_lock:
                self._run_held(consume_only, timeout_ms, ignore_eintr)
                return self._take_batch()
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

    def _run_held(self, consume_only: bool, timeout_ms: int, ignore_eintr: bool) -> int:
        """A poll or consume, with the poll lock held."""
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
                # the buffers of a batch dropped since the last take, refilled while
                # still in cache
                self._pool.install(self._batch)
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
        if self._halt or ret == errnos.RET_TRY_AGAIN:
            return True
        if ret == errnos.RET_INTERRUPTED and ignore_eintr:
            return True
        fail(ret, f"{self._poll_name} failed")

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
        cpu0 = int(b.cpu0)
        data, sizes, cpus = self._pool.take(b, count, nbytes)
        return EventBatch(data, nbytes, sizes, cpus, count, self._batch_type, uniform, cpu0)

    def _require_batch(self) -> None:
        if not self._batch_api:
            raise BpfError(f"{self._kind.lower()} is not in batch mode (create it with batch=True)")

    def poll_batch(self, timeout_ms: int = -1, ignore_eintr: bool = True) -> EventBatch:
        """Batch mode: wait up to ``timeout_ms`` for events, drain them in C, and return
        them as one :class:`EventBatch` (empty on timeout)."""
        self._require_batch()
        return self._run_batch(False, int(timeout_ms), ignore_eintr)

    def consume_batch(self) -> EventBatch:
        """Batch mode: every event available now (up to ``max_batch``), as one batch."""
        self._require_batch()
        return self._run_batch(True, 0, True)

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
            drain.free_batch(self._batch)
            self._pool.close()
            self._close_fds()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called (the buffer is freed when a poll in flight ends)."""
        return self._closed

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


def _reset_pollers_after_fork() -> None:
    for poller in list(_LIVE_POLLERS):
        poller._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_pollers_after_fork)
