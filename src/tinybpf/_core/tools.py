"""The calls the command-line tools make (``tinybpf ps``, ``gen``, ``inspect``): kernel
objects walked by id with an fd open for each, program and map summaries read from their
info, a program's function name from its BTF func info, libbpf's linker, and the fd of a
pinned path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from . import ids as _ids
from ._binding import NULL, LogCapture, check_int, check_ptr, cstr, ffi, lib, pystr

__all__ = [
    "BtfCache",
    "each_fd",
    "first_func_type_id",
    "link_object",
    "map_summary",
    "obj_get",
    "prog_summary",
]


def each_fd(kind: str) -> Iterator[tuple[int, int]]:
    """(id, fd) of each loaded object of a kind (``"prog"``, ``"map"``, ``"link"``,
    ``"btf"``); the fd is closed when the loop moves on. Objects that go away meanwhile
    are skipped."""
    for obj_id in _ids.ids(kind):
        fd = _ids.try_fd_by_id(kind, obj_id)
        if fd < 0:
            continue  # went away meanwhile
        try:
            yield obj_id, fd
        finally:
            os.close(fd)


def prog_summary(fd: int) -> tuple[str, int, int, str] | None:
    """(name, type, BTF id, tag as hex) of a program fd; None if its info is unreadable."""
    info = ffi.new("struct bpf_prog_info *")
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
    if lib.bpf_prog_get_info_by_fd(fd, info, size) < 0:
        return None
    return pystr(info.name), int(info.type), int(info.btf_id), bytes(ffi.buffer(info.tag)).hex()


def map_summary(fd: int) -> tuple[str, int] | None:
    """(name, type) of a map fd; None if its info is unreadable."""
    info = ffi.new("struct bpf_map_info *")
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
    if lib.bpf_map_get_info_by_fd(fd, info, size) < 0:
        return None
    return pystr(info.name), int(info.type)


def first_func_type_id(fd: int) -> int | None:
    """The BTF type id of a program's first func info record (its main function), None
    when the program has none or its info is unreadable."""
    rec = ffi.new("struct bpf_func_info *")
    info = ffi.new("struct bpf_prog_info *")
    info.nr_func_info = 1
    info.func_info_rec_size = ffi.sizeof("struct bpf_func_info")
    info.func_info = int(ffi.cast("uintptr_t", rec))
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
    if lib.bpf_prog_get_info_by_fd(fd, info, size) < 0 or not info.nr_func_info:
        return None
    return int(rec.type_id)


class BtfCache:
    """Kernel BTF objects by id, loaded once per listing and freed by :meth:`close`."""

    def __init__(self) -> None:
        self._btfs: dict[int, Any] = {}

    def _get(self, btf_id: int) -> Any:
        btf = self._btfs.get(btf_id)
        if btf is None:
            btf = self._btfs[btf_id] = lib.btf__load_from_kernel_by_id(btf_id)
        return btf

    def type_name(self, btf_id: int, type_id: int) -> str | None:
        """The name of a type of the kernel BTF object ``btf_id``; None when that BTF
        cannot be loaded or has no such type."""
        btf = self._get(btf_id)
        if btf == NULL:
            return None
        t = lib.btf__type_by_id(btf, type_id)
        if t == NULL:
            return None
        return pystr(lib.btf__name_by_offset(btf, t.name_off))

    def close(self) -> None:
        for btf in self._btfs.values():
            if btf != NULL:
                lib.btf__free(btf)
        self._btfs.clear()


def link_object(path: str, out: str, what: str) -> None:
    """Link the BPF object at ``path`` into ``out`` with libbpf's linker (as ``bpftool
    gen object`` does); a failure raises ``"<what> failed: ..."`` with libbpf's log."""
    with LogCapture() as log:
        linker = lib.bpf_linker__new(cstr(out), NULL)
    check_ptr(linker, f"{what} failed", log)
    try:
        with LogCapture() as log:
            ret = lib.bpf_linker__add_file(linker, cstr(path), NULL)
        check_int(ret, f"{what} failed", log)
        with LogCapture() as log:
            ret = lib.bpf_linker__finalize(linker)
        check_int(ret, f"{what} failed", log)
    finally:
        lib.bpf_linker__free(linker)


def obj_get(path: str) -> int:
    """``bpf_obj_get``: an fd for the object pinned at ``path``, or a negative errno."""
    return int(lib.bpf_obj_get(cstr(path)))
