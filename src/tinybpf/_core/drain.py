"""The C side of ring and perf buffers: records drained in C into one batch (``struct
tinybpf_batch`` in ffi_build/shim_events.c) that Python takes whole (ring buffers by
tinybpf's own reader of the mapped rings, perf buffers through libbpf's callbacks), and the
buffer calls the poll loop makes (once per poll, never per event).
"""

from __future__ import annotations

import errno
import os
from typing import Any

from ._binding import NULL, LogCapture, fail, ffi, lib

__all__ = [
    "LOST_FLAG",
    "free_batch",
    "new_batch",
    "perf_buffer_count",
    "perf_consume",
    "perf_consume_buffer",
    "perf_epoll_fd",
    "perf_free",
    "perf_new",
    "perf_poll",
    "ring_reader_add",
    "ring_reader_consume",
    "ring_reader_epoll_fd",
    "ring_reader_free",
    "ring_reader_new",
    "ring_reader_poll",
    "user_ring_free",
    "user_ring_new",
    "user_ring_write",
]

LOST_FLAG: int = lib.TINYBPF_LOST_FLAG
"""Set in a perf batch record's cpu word when the record is a lost-samples count."""


def new_batch() -> Any:
    """An empty batch the C drain appends samples to."""
    return ffi.new("struct tinybpf_batch *")


def free_batch(batch: Any) -> None:
    lib.tinybpf_batch_free(batch)


def ring_reader_new(batch: Any, what: str) -> Any:
    """The reader of a ring buffer's maps (``struct tinybpf_ring_reader`` in
    ffi_build/shim_events.c), filling ``batch``, with its own epoll fd and no ring yet:
    each is added with :func:`ring_reader_add` (0 or a negative errno)."""
    r = lib.tinybpf_ring_reader_new(batch)
    if r == NULL:
        fail(ffi.errno or errno.ENOMEM, f"{what} failed")
    return r


ring_reader_add = lib.tinybpf_ring_reader_add
ring_reader_consume = lib.tinybpf_ring_reader_consume
ring_reader_poll = lib.tinybpf_ring_reader_poll
ring_reader_epoll_fd = lib.tinybpf_ring_reader_epoll_fd
ring_reader_free = lib.tinybpf_ring_reader_free

perf_new = lib.tinybpf_batch_perf_new
perf_buffer_count = lib.perf_buffer__buffer_cnt
perf_poll = lib.perf_buffer__poll
perf_consume = lib.perf_buffer__consume
perf_consume_buffer = lib.perf_buffer__consume_buffer
perf_epoll_fd = lib.perf_buffer__epoll_fd
perf_free = lib.perf_buffer__free

user_ring_free = lib.user_ring_buffer__free


def user_ring_new(fd: int, what: str) -> Any:
    """``user_ring_buffer__new(fd, NULL)`` through the call-and-check path; ``fd`` is
    closed when it fails (the handle owns it otherwise)."""
    with LogCapture() as log:
        ptr = lib.user_ring_buffer__new(fd, NULL)
    if ptr == NULL:
        err = ffi.errno
        os.close(fd)
        fail(err, f"{what} failed", log)
    return ptr


def user_ring_write(handle: Any, data: bytes) -> int:
    """Reserve ``len(data)`` bytes in a user ring buffer, copy ``data`` and submit it:
    0, or the errno of the failed reserve (ENOSPC: the ring is full)."""
    sample = lib.user_ring_buffer__reserve(handle, len(data))
    if sample == NULL:
        return ffi.errno or errno.EINVAL
    ffi.memmove(sample, data, len(data))
    lib.user_ring_buffer__submit(handle, sample)
    return 0
