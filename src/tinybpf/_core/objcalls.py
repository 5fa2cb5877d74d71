"""Objects: open and load (one C call, tinybpf_open_object), and the getters of an open
object. The open path is benchmarked against C: keep it a few calls."""

from __future__ import annotations

from typing import Any

from ._binding import NULL, LogCapture, check_int, check_ptr, cstr, ffi, lib, pystr

__all__ = [
    "BTF_INVALID",
    "INDEX_CAP",
    "LOAD_FAILED",
    "NOT_REGULAR",
    "OPEN_FAILED",
    "close",
    "fd_revoke",
    "find",
    "index_bytes",
    "link_files",
    "load",
    "object_btf",
    "object_index",
    "open_object",
]

# the stage of a failed tinybpf_open_object (struct tinybpf_open_result's ``stage``)
BTF_INVALID: int = int(lib.TINYBPF_BTF_INVALID)
NOT_REGULAR: int = int(lib.TINYBPF_NOT_REGULAR)
OPEN_FAILED: int = int(lib.TINYBPF_OPEN_FAILED)
LOAD_FAILED: int = int(lib.TINYBPF_LOAD_FAILED)
INDEX_CAP: int = int(lib.TINYBPF_INDEX_CAP)

_RESULT = ffi.typeof("struct tinybpf_open_result *")
_new = ffi.new
_from_buffer = ffi.from_buffer
_open_object = lib.tinybpf_open_object


def open_object(
    cpath: bytes | None, data: bytes | None, opts: Any, load: bool
) -> tuple[Any, int, Any]:
    """Open (and load, with ``load``) from a path or from bytes: ``(object pointer or
    None, errno of a failure, the result struct)``. ``opts`` is an Opts or None."""
    res = _new(_RESULT)
    ptr = _open_object(
        NULL if cpath is None else cpath,
        NULL if data is None else _from_buffer(data),
        0 if data is None else len(data),
        NULL if opts is None else opts.ptr,
        load,
        res,
    )
    if ptr == NULL:
        return None, ffi.errno, res
    return ptr, 0, res


def index_bytes(res: Any) -> bytes:
    """The names index kept in an open result struct."""
    return ffi.unpack(res.index, res.index_len)  # type: ignore[no-any-return]


def object_index(obj: Any) -> bytes:
    """The names of the object, its programs and maps from one C call."""
    n = int(lib.tinybpf_object_index(obj, NULL, 0))
    buf = ffi.new("char[]", max(n, 1))
    return ffi.unpack(buf, int(lib.tinybpf_object_index(obj, buf, n)))  # type: ignore[no-any-return]


_FIND = {
    "prog": (lib.bpf_object__next_program, lib.bpf_program__name),
    "map": (lib.bpf_object__next_map, lib.bpf_map__name),
}


def find(kind: str, obj: Any, name: str) -> Any:
    """The libbpf program (``"prog"``) or map (``"map"``) whose name reads as ``name``, or
    None."""
    next_fn, name_fn = _FIND[kind]
    p = next_fn(obj, NULL)
    while p != NULL:
        if pystr(name_fn(p)) == name:
            return p
        p = next_fn(obj, p)
    return None


def load(obj: Any) -> int:
    """bpf_object__load: libbpf's return (call it inside a log capture)."""
    return int(lib.bpf_object__load(obj))


def object_btf(obj: Any) -> Any:
    """The object's BTF pointer, or None."""
    ptr = lib.bpf_object__btf(obj)
    return None if ptr == NULL else ptr


def fd_revoke(fdh: Any) -> None:
    lib.tinybpf_fd_revoke(fdh)


def close(obj: Any) -> None:
    lib.bpf_object__close(obj)


def link_files(paths: list[str], out: str, what: str) -> None:
    """libbpf's static linker (as ``bpftool gen object`` runs it): the BPF object files
    ``paths``, in order, linked into ``out``. A failure raises ``"<what> failed: ..."``
    with the linker's log (libbpf names the file and the symbol it could not link)."""
    with LogCapture() as log:
        linker = lib.bpf_linker__new(cstr(out), NULL)
    check_ptr(linker, f"{what} failed", log)
    try:
        for path in paths:
            with LogCapture() as log:
                ret = lib.bpf_linker__add_file(linker, cstr(path), NULL)
            check_int(ret, f"{what} failed", log)
        with LogCapture() as log:
            ret = lib.bpf_linker__finalize(linker)
        check_int(ret, f"{what} failed", log)
    finally:
        lib.bpf_linker__free(linker)
