"""BpfUserRingBuffer: a BPF_MAP_TYPE_USER_RINGBUF map written from Python."""

from __future__ import annotations

import ctypes
import operator
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from .._core import (
    drain,
    errnos,
    fail,
)
from .._types import BpfMapType
from ..errors import BpfClosedError, BpfError
from ..map import BpfMap

if TYPE_CHECKING:
    pass

from .batch import _SLICE_MS

__all__ = ["BpfUserRingBuffer"]

_LIVE_USER_RINGS: weakref.WeakSet[BpfUserRingBuffer] = weakref.WeakSet()


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
        self._handle = drain.user_ring_new(fd, f"user_ring_buffer__new for map '{map.name}'")
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
                err = drain.user_ring_write(h, raw)
                if not err:
                    return
                left = None if deadline is None else deadline - time.monotonic()
                if not errnos.is_(err, errnos.NO_SPACE) or (left is not None and left <= 0):
                    fail(err, f"reserve {size} bytes in user ring buffer '{self._map.name}' failed")
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

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        """Free the buffer; a ``submit()`` waiting in another thread raises
        ``BpfClosedError``. Idempotent."""
        with self._lock:
            h, self._handle = self._handle, None
            if h is not None:
                drain.user_ring_free(h)
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


def _reset_user_rings_after_fork() -> None:
    for urb in list(_LIVE_USER_RINGS):  # (a submit waiting in the parent is not here)
        urb._lock = threading.Lock()
        urb._waiters = 0


os.register_at_fork(after_in_child=_reset_user_rings_after_fork)
