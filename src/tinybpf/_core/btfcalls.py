"""BTF through libbpf: parse, check, walk the type table, dump as C; and the bytes of a
global-variable section (a map's initial value or its memory-mapped data).

The per-type calls (``kind``, ``vlen``, ``members``...) are the C functions bound once;
a ``btf_type`` pointer they take or return is only handed between these calls and read
for its plain fields (``name_off``, ``type``) by :mod:`tinybpf.btf`.
"""

from __future__ import annotations

from typing import Any

from ._binding import NULL, call_ptr, cstr, ffi, lib

__all__ = [
    "FUNC_EXTERN",
    "INT_BOOL",
    "INT_CHAR",
    "INT_SIGNED",
    "KIND_STRUCT",
    "KIND_UNION",
    "MAX_COST",
    "MAX_DEPTH",
    "array",
    "check",
    "decl_tag_component_idx",
    "dump_c",
    "enum64_value",
    "enums",
    "enums64",
    "find_by_name_kind",
    "free",
    "initial_value",
    "int_encoding",
    "kflag",
    "kind",
    "map_update_from",
    "map_value_type_id",
    "member_bit_offset",
    "member_bitfield_size",
    "members",
    "name_by_offset",
    "params",
    "parse",
    "read",
    "resolve_size",
    "type_by_id",
    "type_cnt",
    "var_linkage",
    "var_secinfos",
    "vlen",
    "write",
]

INT_SIGNED = int(lib.BTF_INT_SIGNED)
INT_CHAR = int(lib.BTF_INT_CHAR)
INT_BOOL = int(lib.BTF_INT_BOOL)
KIND_STRUCT = int(lib.BTF_KIND_STRUCT)
KIND_UNION = int(lib.BTF_KIND_UNION)
FUNC_EXTERN = int(lib.BTF_FUNC_EXTERN)
MAX_DEPTH = int(lib.TINYBPF_BTF_MAX_DEPTH)
"""tinybpf's BTF depth limit (ffi_build/shim.c)."""
MAX_COST = int(lib.TINYBPF_BTF_MAX_COST)
"""tinybpf's BTF cost limit (ffi_build/shim.c)."""

free = lib.btf__free
type_cnt = lib.btf__type_cnt
find_by_name_kind = lib.btf__find_by_name_kind
"""(btf, name as bytes (:func:`cstr`), kind) -> the id, or a negative errno."""
resolve_size = lib.btf__resolve_size
kind = lib.btf_kind
vlen = lib.btf_vlen
kflag = lib.btf_kflag
members = lib.btf_members
member_bit_offset = lib.btf_member_bit_offset
member_bitfield_size = lib.btf_member_bitfield_size
int_encoding = lib.btf_int_encoding
enums = lib.btf_enum
enums64 = lib.btf_enum64
array = lib.btf_array
var_secinfos = lib.btf_var_secinfos
params = lib.btf_params
_name_by_offset = lib.btf__name_by_offset
_type_by_id = lib.btf__type_by_id
_enum64_value = lib.btf_enum64_value


def parse(path: str, what: str) -> Any:
    """The BTF of a raw BTF file or an ELF file's ``.BTF`` (raises ``"<what> failed"``)."""
    return call_ptr("btf__parse", cstr(path), NULL, what=what)


def check(btf: Any) -> tuple[int, int]:
    """tinybpf_btf_check(): (0 or a negative errno naming the defect, the bad type id)."""
    bad = ffi.new("__u32 *")
    err = int(lib.tinybpf_btf_check(btf, bad))
    return err, int(bad[0])


def name_by_offset(btf: Any, off: int) -> str:
    """The string at ``off`` in the BTF's string section ("" if out of range)."""
    s = _name_by_offset(btf, off)
    return "" if s == NULL else ffi.string(s).decode("utf-8", "replace")


def type_by_id(btf: Any, tid: int) -> Any:
    """The ``btf_type`` with that id, or None if the id is out of range."""
    t = _type_by_id(btf, tid)
    return None if t == NULL else t


def var_linkage(t: Any) -> int:
    return int(lib.btf_var(t).linkage)


def decl_tag_component_idx(t: Any) -> int:
    return int(lib.btf_decl_tag(t).component_idx)


def enum64_value(values: Any, i: int) -> int:
    """The unsigned value of the ``i``-th entry of an ENUM64's :func:`enums64`."""
    return int(_enum64_value(values + i))


def dump_c(btf: Any) -> tuple[int, str]:
    """(0 or a negative errno, every type as C declarations: libbpf's btf_dump)."""
    out = ffi.new("char **")
    size = ffi.new("size_t *")
    ret = int(lib.tinybpf_btf_dump_c(btf, out, size))
    if ret < 0:
        return ret, ""
    try:
        return ret, ffi.unpack(out[0], size[0]).decode("utf-8", "replace")
    finally:
        lib.tinybpf_free(out[0])


# --- global-variable sections ---------------------------------------------------------------
def map_value_type_id(map_ptr: Any) -> int:
    """The BTF id of a map's value type (a DATASEC for a global-variable section), 0 if none."""
    return int(lib.bpf_map__btf_value_type_id(map_ptr))


def initial_value(map_ptr: Any) -> tuple[Any, int]:
    """(pointer, size) of a map's data: its initial value before load, the memory-mapped
    map after load; the pointer is None when there is none (not mappable)."""
    size = ffi.new("size_t *")
    ptr = lib.bpf_map__initial_value(map_ptr, size)
    return (None if ptr == NULL else ptr), int(size[0])


def read(ptr: Any, offset: int, size: int) -> bytes:
    """A copy of ``size`` bytes at ``ptr + offset``."""
    return bytes(ffi.buffer(ptr + offset, size))


def write(ptr: Any, offset: int, data: bytes) -> None:
    """Copy ``data`` to ``ptr + offset``."""
    ffi.memmove(ptr + offset, data, len(data))


def map_update_from(fd: int, key: bytes, buf: Any, size: int) -> int:
    """bpf_map_update_elem(fd, key, the first ``size`` bytes of ``buf``, BPF_ANY): 0 or a
    negative errno."""
    value = ffi.buffer(buf, size)[:]
    return int(lib.bpf_map_update_elem(fd, ffi.from_buffer(key), ffi.from_buffer(value), 0))
