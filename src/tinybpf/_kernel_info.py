"""What the kernel says about a BPF object given its fd (``bpf_obj_get_info_by_fd``):
the info records of programs, maps and BTF, and opening objects by id."""

from __future__ import annotations

from dataclasses import dataclass

from ._core import info_by_fd, kernelcalls, pystr
from ._core.kernelcalls import BPF_OBJ_NAME_LEN, ReadBuffer, tag_hex
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

    ``name`` is the kernel's copy of the name, cut to 15 characters: :meth:`full_name`
    gives the whole one. ``func_type_id`` is the BTF type id of the program's main function
    in BTF object ``btf_id`` (0 without BTF, or for a caller without CAP_BPF/CAP_SYS_ADMIN,
    to whom the kernel does not show it).

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
    func_type_id: int = 0

    def full_name(self) -> str:
        """The program's whole name. The kernel keeps 15 characters (``name``); when a name
        is that long, the rest is read from the program's BTF (its main function's name,
        one BTF load). ``name`` when the program has no BTF or that BTF is gone.

        Example::

            for p in tinybpf.loaded_programs():
                print(p.id, p.full_name())   # "count_getpid_calls_with_a_long_name"
        """
        if len(self.name) < BPF_OBJ_NAME_LEN - 1 or not self.btf_id or not self.func_type_id:
            return self.name
        full = kernelcalls.kernel_btf_type_name(self.btf_id, self.func_type_id)
        return full if full and full.startswith(self.name) else self.name


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
    info, map_ids, func_type_id = kernelcalls.prog_info(fd)
    return KernelProgramInfo(
        id=int(info.id),
        type=_prog_type(int(info.type)),
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
        func_type_id=func_type_id,
    )


def map_info_by_fd(fd: int) -> KernelMapInfo:
    info = kernelcalls.map_info(fd)
    return KernelMapInfo(
        id=int(info.id),
        type=_map_type(int(info.type)),
        name=pystr(info.name),
        key_size=int(info.key_size),
        value_size=int(info.value_size),
        max_entries=int(info.max_entries),
        flags=int(info.map_flags),
        btf_id=int(info.btf_id),
    )


# the enum members by value, looked up without the enum call (listings make one per object)
_PROG_TYPES = {int(t): t for t in BpfProgType}
_MAP_TYPES = {int(t): t for t in BpfMapType}


def _prog_type(value: int) -> BpfProgType:
    t = _PROG_TYPES.get(value)
    return t if t is not None else BpfProgType(value)


def _map_type(value: int) -> BpfMapType:
    t = _MAP_TYPES.get(value)
    return t if t is not None else BpfMapType(value)


def btf_info_by_fd(fd: int) -> BtfInfo:
    name = ReadBuffer("char", 64)
    info = info_by_fd("btf", fd, f"get info of BTF fd {fd}", name=name.addr, name_len=64)
    return BtfInfo(int(info.id), name.string(), int(info.btf_size), bool(info.kernel_btf))
