"""The map calls not on the element engine's fd handle (:mod:`.mapfd`): the libbpf
``struct bpf_map *`` accessors, map creation and the probe of a map fd, and the C buffers
element operations fill (value buffers, key/value batch arrays, counts) with the reads and
copies over them.

The buffer functions the element hot paths call per element are cffi's own functions bound
here once (``new_value``, ``buffer``), so a lookup stays one allocation and one C call.
"""

from __future__ import annotations

from typing import Any

from ._binding import NULL, LogCapture, ffi, lib

__all__ = [
    "NULL",
    "RDONLY_PROG",
    "TOKEN_FD",
    "attach_struct_ops",
    "autocreate",
    "btf_type_id",
    "buffer",
    "bytes_at",
    "c_view",
    "chars",
    "copy",
    "create",
    "fd",
    "get_next_key",
    "getter",
    "is_internal",
    "map_name",
    "map_type",
    "name_of",
    "new_value",
    "pin_path",
    "setter",
    "shape",
    "u32_array",
    "u32_ptr",
    "u64_items",
]

RDONLY_PROG = int(lib.BPF_F_RDONLY_PROG)
TOKEN_FD = int(lib.BPF_F_TOKEN_FD)

# --- C buffers ------------------------------------------------------------------------
new_value = ffi.new
"""``new_value(ctype)``: a zeroed C buffer of a ctype ("char[8]", "__u32[1]", ...)."""
buffer = ffi.buffer
"""``buffer(ptr[, size])``: the bytes of a C buffer, sliceable without a copy."""
copy = ffi.memmove
"""``copy(dst, src, n)``: copy n bytes between C buffers or from bytes."""
c_view = ffi.from_buffer
"""``c_view(data)``: a C pointer over a Python buffer (kept alive by the result)."""


def chars(init: int | bytes) -> Any:
    """A ``char[]`` of that many zero bytes, or holding a copy of the bytes."""
    return ffi.new("char[]", init)


def u32_ptr(value: int = 0) -> Any:
    """A ``__u32 *`` (a count the kernel reads and writes back)."""
    return ffi.new("__u32 *", value)


def u32_array(n: int) -> Any:
    """A zeroed ``__u32[n]``."""
    return ffi.new("__u32[]", n)


def bytes_at(ptr: Any, size: int) -> bytes:
    """A copy of ``size`` bytes at ``ptr``."""
    data: bytes = ffi.buffer(ptr, size)[:]
    return data


def u64_items(ptr: Any) -> Any:
    """The buffer at ``ptr`` read as ``__u64`` items (indexable)."""
    return ffi.cast("__u64 *", ptr)


def name_of(info: Any) -> str:
    """The NUL-terminated ``name`` field of an info struct as str."""
    text: str = ffi.string(info.name).decode("utf-8", "replace")
    return text


# --- struct bpf_map * accessors ---------------------------------------------------------
map_name = lib.bpf_map__name
autocreate = lib.bpf_map__autocreate
fd = lib.bpf_map__fd
pin_path = lib.bpf_map__pin_path
is_internal = lib.bpf_map__is_internal


def shape(p: Any) -> tuple[int, int, int, int, int]:
    """(type, key size, value size, max entries, flags) of a ``struct bpf_map *``."""
    return (
        int(lib.bpf_map__type(p)),
        int(lib.bpf_map__key_size(p)),
        int(lib.bpf_map__value_size(p)),
        int(lib.bpf_map__max_entries(p)),
        int(lib.bpf_map__map_flags(p)),
    )


def map_type(p: Any) -> int:
    return int(lib.bpf_map__type(p))


def btf_type_id(p: Any, which: str) -> int:
    """The BTF type id of a map's ``"key"`` or value."""
    if which == "key":
        return int(lib.bpf_map__btf_key_type_id(p))
    return int(lib.bpf_map__btf_value_type_id(p))


def getter(name: str) -> Any:
    """libbpf's ``bpf_map__<name>`` getter."""
    return getattr(lib, f"bpf_map__{name}")


def setter(name: str) -> Any:
    """libbpf's ``bpf_map__set_<name>`` setter."""
    return getattr(lib, f"bpf_map__set_{name}")


def attach_struct_ops(p: Any, log: LogCapture) -> Any:
    """``bpf_map__attach_struct_ops``, errno kept for the caller's NULL check."""
    with log:
        ptr = lib.bpf_map__attach_struct_ops(p)
        err = ffi.errno
    if ptr == NULL:
        ffi.errno = err
    return ptr


def get_next_key(fd: int, size: int) -> int:
    """``bpf_map_get_next_key(fd, NULL, buf)`` on a raw fd: 0 or a negative errno."""
    return int(lib.bpf_map_get_next_key(fd, NULL, ffi.new("char[]", size)))


def create(
    map_type: int, name: bytes | None, key_size: int, value_size: int, max_entries: int, opts: Any
) -> int:
    """``bpf_map_create``: the new fd or a negative errno."""
    return int(
        lib.bpf_map_create(
            map_type, name if name else NULL, key_size, value_size, max_entries, opts
        )
    )
