"""Kernel BPF objects by id: enumerate the ids of one kind, open an fd for an id."""

from __future__ import annotations

from collections.abc import Iterator

from . import errnos
from ._binding import check_int, fail, ffi, lib

__all__ = ["fd_by_id", "ids", "try_fd_by_id"]

_BY_KIND = {
    "prog": (lib.bpf_prog_get_next_id, lib.bpf_prog_get_fd_by_id),
    "map": (lib.bpf_map_get_next_id, lib.bpf_map_get_fd_by_id),
    "link": (lib.bpf_link_get_next_id, lib.bpf_link_get_fd_by_id),
    "btf": (lib.bpf_btf_get_next_id, lib.bpf_btf_get_fd_by_id),
}


def ids(kind: str) -> Iterator[int]:
    """The ids of the loaded objects of a kind (``"prog"``, ``"map"``, ``"link"``,
    ``"btf"``), in increasing order."""
    next_id = _BY_KIND[kind][0]
    cur = 0
    nxt = ffi.new("__u32 *")
    while True:
        ret = next_id(cur, nxt)
        if ret < 0:
            if ret == errnos.RET_NOT_FOUND:
                return
            check_int(ret, "enumerate kernel objects failed")
        cur = int(nxt[0])
        yield cur


def try_fd_by_id(kind: str, obj_id: int) -> int:
    """A new fd for the object with that id, or a negative errno (e.g. it went away)."""
    return int(_BY_KIND[kind][1](obj_id))


def fd_by_id(kind: str, obj_id: int, what: str) -> int:
    """:func:`try_fd_by_id` that raises the right error (``"<what> failed: ..."``)."""
    fd = try_fd_by_id(kind, obj_id)
    if fd < 0:
        fail(fd, f"{what} failed")
    return fd
