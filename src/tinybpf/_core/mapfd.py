"""The map element engine's C side: the fd handle element operations borrow in C
(``struct tinybpf_fd`` in ffi_build/shim.c: a user count and the fd; ``revoke`` waits for
the calls in flight and makes later ones return ``CLOSED``) and the element calls over it.

The calls are bound here once; the hot paths (``m[k]``, ``m[k] = v``) bind them again as
module globals or ``functools.partial`` objects, so no Python layer is added per element.
Each returns 0 or a negative errno (``CLOSED`` for a revoked handle, ``LOOKUP_AGAIN`` when
an int fast path needs the general path).
"""

from __future__ import annotations

from typing import Any

from ._binding import ffi, lib

__all__ = [
    "CLOSED",
    "LOOKUP_AGAIN",
    "READER_FORKED",
    "delete",
    "delete_batch",
    "freeze",
    "get_next_key",
    "lookup",
    "lookup_and_delete",
    "lookup_batch",
    "lookup_ints_s",
    "lookup_ints_u",
    "lookup_scalar",
    "new_handle",
    "reader_free",
    "reader_new",
    "reader_next",
    "reader_out",
    "revoke",
    "update",
    "update_batch",
    "update_ints",
    "update_scalar",
]

CLOSED = int(lib.TINYBPF_CLOSED)
"""The return of a call through a revoked handle: the map (or its object) was closed."""
LOOKUP_AGAIN = int(lib.TINYBPF_LOOKUP_AGAIN)
READER_FORKED = int(lib.TINYBPF_READER_FORKED)
"""``reader_next`` in a forked child: the reader's thread stayed in the parent."""

lookup = lib.tinybpf_map_lookup
update = lib.tinybpf_map_update
delete = lib.tinybpf_map_delete
lookup_scalar = lib.tinybpf_lookup_scalar
update_scalar = lib.tinybpf_update_scalar
lookup_ints_s = lib.tinybpf_lookup_ints_s
lookup_ints_u = lib.tinybpf_lookup_ints_u
update_ints = lib.tinybpf_update_ints
lookup_and_delete = lib.tinybpf_map_lookup_and_delete
get_next_key = lib.tinybpf_map_get_next_key
lookup_batch = lib.tinybpf_map_lookup_batch
update_batch = lib.tinybpf_map_update_batch
delete_batch = lib.tinybpf_map_delete_batch
freeze = lib.tinybpf_map_freeze
reader_next = lib.tinybpf_batch_reader_next
reader_free = lib.tinybpf_batch_reader_free


def new_handle(fd: int) -> Any:
    """The handle through which element operations borrow ``fd``."""
    return ffi.new("struct tinybpf_fd *", {"fd": fd})


def revoke(handle: Any) -> None:
    """Wait for the element operations in flight on ``handle``; later ones get ``CLOSED``."""
    lib.tinybpf_fd_revoke(handle)


def reader_new(
    handle: Any,
    key_size: int,
    value_size: int,
    chunk: int,
    max_chunk: int,
    token: Any,
    token_size: int,
) -> Any:
    """A thread making the batch lookups that follow ``token`` while Python decodes (read
    them with ``reader_next``, end with ``reader_free``), or None when no thread could be
    started: the caller then goes on with ``lookup_batch``."""
    r = lib.tinybpf_batch_reader_new(
        handle, key_size, value_size, chunk, max_chunk, token, token_size
    )
    return None if r == ffi.NULL else r


def reader_out() -> Any:
    """A ``char *[2]`` for ``reader_next(r, out, out + 1, count)``: its two entries receive
    the pointers to the batch's keys and values (NULL when the batch has no entries)."""
    return ffi.new("char *[2]")
