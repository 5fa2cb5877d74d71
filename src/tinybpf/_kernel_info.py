"""What the kernel says about a BPF object given its fd (``bpf_obj_get_info_by_fd``):
the info records of programs, maps and BTF, and opening objects by id."""

from __future__ import annotations

from dataclasses import dataclass

from ._core import info_by_fd, pystr, try_info_by_fd
from ._core.kernelcalls import ReadBuffer, tag_hex
from ._types import BpfMapType, BpfProgType

__all__ = [
    "BtfInfo",
    "KernelMapInfo",
    "KernelProgramInfo",
    "btf_info_by_fd",
    "map_info_by_fd",
    "program_info_by_fd",
]


@dataclass(frozen=True)
class KernelProgramInfo:
    """A loaded program as the kernel describes it (``bpftool prog show``).

    Example::

        info = obj.program("handle_exec").kernel_info()
        print(info.id, info.tag, info.jited_size, info.run_count, info.run_time_ns)
    """

    id: int
    type: BpfProgType
    name: str
    tag: str
    jited_size: int
    xlated_size: int
    map_ids: tuple[int, ...]
    btf_id: int
    run_count: int
    run_time_ns: int
    verified_insns: int
    created_by_uid: int


@dataclass(frozen=True)
class KernelMapInfo:
    """A map as the kernel describes it (``bpftool map show``).

    Example::

        for m in tinybpf.loaded_maps():
            print(m.id, m.type.name, m.name, m.key_size, m.value_size, m.max_entries)
    """

    id: int
    type: BpfMapType
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int


@dataclass(frozen=True)
class BtfInfo:
    """A BTF object loaded in the kernel.

    Example::

        for b in tinybpf.loaded_btfs():
            print(b.id, b.name, b.size, "kernel" if b.kernel else "")
    """

    id: int
    name: str
    size: int
    kernel: bool


def program_info_by_fd(fd: int) -> KernelProgramInfo:
    info = info_by_fd("prog", fd, f"get info of program fd {fd}")
    n_maps = int(info.nr_map_ids)
    map_ids: tuple[int, ...] = ()
    if n_maps:
        ids = ReadBuffer("__u32", n_maps)
        info2, ret = try_info_by_fd("prog", fd, nr_map_ids=n_maps, map_ids=ids.addr)
        if ret == 0:
            map_ids = ids.ints(min(n_maps, int(info2.nr_map_ids)))
    return KernelProgramInfo(
        id=int(info.id),
        type=BpfProgType(int(info.type)),
        name=pystr(info.name),
        tag=tag_hex(info),
        jited_size=int(info.jited_prog_len),
        xlated_size=int(info.xlated_prog_len),
        map_ids=map_ids,
        btf_id=int(info.btf_id),
        run_count=int(info.run_cnt),
        run_time_ns=int(info.run_time_ns),
        verified_insns=int(info.verified_insns),
        created_by_uid=int(info.created_by_uid),
    )


def map_info_by_fd(fd: int) -> KernelMapInfo:
    info = info_by_fd("map", fd, f"get info of map fd {fd}")
    return KernelMapInfo(
        id=int(info.id),
        type=BpfMapType(int(info.type)),
        name=pystr(info.name),
        key_size=int(info.key_size),
        value_size=int(info.value_size),
        max_entries=int(info.max_entries),
        flags=int(info.map_flags),
        btf_id=int(info.btf_id),
    )


def btf_info_by_fd(fd: int) -> BtfInfo:
    name = ReadBuffer("char", 64)
    info = info_by_fd("btf", fd, f"get info of BTF fd {fd}", name=name.addr, name_len=64)
    return BtfInfo(int(info.id), name.string(), int(info.btf_size), bool(info.kernel_btf))
