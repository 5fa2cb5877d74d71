"""Kernel and library facts and the small syscalls outside any object: feature probes,
run-time statistics, perf events, BPF tokens, network namespaces, the libbpf version,
and the buffers the info-by-fd calls fill."""

from __future__ import annotations

from typing import Any

from ._binding import NULL, fail, ffi, lib

__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_LOCK",
    "BPF_F_MMAPABLE",
    "BPF_F_NO_PREALLOC",
    "BPF_NOEXIST",
    "BPF_OBJ_NAME_LEN",
    "CLONE_NEWNET",
    "PERF_COUNT_SW_CPU_CLOCK",
    "PERF_TYPE_SOFTWARE",
    "ReadBuffer",
    "enable_run_time_stats",
    "kernel_btf_type_name",
    "libbpf_release",
    "libbpf_version",
    "map_info",
    "ns_type",
    "opts_token_path",
    "perf_event_open",
    "probe_helper",
    "probe_map_type",
    "probe_prog_type",
    "prog_info",
    "setns",
    "tag_hex",
    "token_create",
]

BPF_ANY = int(lib.BPF_ANY)
BPF_NOEXIST = int(lib.BPF_NOEXIST)
BPF_EXIST = int(lib.BPF_EXIST)
BPF_F_LOCK = int(lib.BPF_F_LOCK)
BPF_F_MMAPABLE = int(lib.BPF_F_MMAPABLE)  # map creation flags
BPF_F_NO_PREALLOC = int(lib.BPF_F_NO_PREALLOC)
BPF_OBJ_NAME_LEN = int(lib.BPF_OBJ_NAME_LEN)
CLONE_NEWNET = int(lib.CLONE_NEWNET)
PERF_TYPE_SOFTWARE = int(lib.TINYBPF_PERF_TYPE_SOFTWARE)
PERF_COUNT_SW_CPU_CLOCK = int(lib.TINYBPF_PERF_COUNT_SW_CPU_CLOCK)


def probe_prog_type(prog_type: int) -> int:
    """libbpf_probe_bpf_prog_type(): 1 supported, 0 not, or a negative errno."""
    return int(lib.libbpf_probe_bpf_prog_type(prog_type, NULL))


def probe_map_type(map_type: int) -> int:
    """libbpf_probe_bpf_map_type(): 1 supported, 0 not, or a negative errno."""
    return int(lib.libbpf_probe_bpf_map_type(map_type, NULL))


def probe_helper(prog_type: int, helper_id: int) -> int:
    """libbpf_probe_bpf_helper(): 1 supported, 0 not, or a negative errno."""
    return int(lib.libbpf_probe_bpf_helper(prog_type, helper_id, NULL))


def enable_run_time_stats() -> int:
    """bpf_enable_stats(BPF_STATS_RUN_TIME): an fd, or a negative errno."""
    return int(lib.bpf_enable_stats(lib.BPF_STATS_RUN_TIME))


def perf_event_open(
    perf_type: int, config: int, pid: int, cpu: int, sample: int, use_freq: bool
) -> int:
    """tinybpf_perf_event_open() (disabled, close-on-exec): an fd or a negative errno."""
    return int(lib.tinybpf_perf_event_open(perf_type, config, pid, cpu, sample, use_freq, 1))


def token_create(bpffs_fd: int) -> int:
    """bpf_token_create(): a token fd, or a negative errno."""
    return int(lib.bpf_token_create(bpffs_fd, NULL))


def opts_token_path(opts: Any) -> bytes | None:
    """The ``bpf_token_path`` of built open options (an :class:`Opts`), None if unset."""
    p = opts.ptr.bpf_token_path
    return None if p == NULL else bytes(ffi.string(p))


def ns_type(fd: int) -> int:
    """The CLONE_NEW* type of a namespace fd, or a negative errno."""
    return int(lib.tinybpf_ns_type(fd))


def setns(fd: int, nstype: int) -> int:
    """setns(2): 0 or a negative errno."""
    return int(lib.tinybpf_setns(fd, nstype))


def libbpf_version() -> str:
    """libbpf_version_string(), e.g. ``"v1.7"``."""
    text: bytes = ffi.string(lib.libbpf_version_string())
    return text.decode()


def libbpf_release() -> tuple[str, int, int]:
    """(the pinned release string, the linked library's major, minor)."""
    release: bytes = ffi.string(lib.tinybpf_libbpf_release())
    return release.decode(), int(lib.libbpf_major_version()), int(lib.libbpf_minor_version())


_prog_get_info = lib.bpf_prog_get_info_by_fd
_map_get_info = lib.bpf_map_get_info_by_fd
_PROG_INFO_SIZE = ffi.sizeof("struct bpf_prog_info")
_MAP_INFO_SIZE = ffi.sizeof("struct bpf_map_info")
_FUNC_INFO_SIZE = ffi.sizeof("struct bpf_func_info")
_MAP_IDS = 16  # map ids asked for in the first call; a program using more takes a second


def prog_info(fd: int) -> tuple[Any, tuple[int, ...], int]:
    """A program's ``bpf_prog_info`` with the ids of the maps it uses and the BTF type id
    of its main function (its first func info record; 0 when it has none or the caller
    may not see it), in one ``bpf_prog_get_info_by_fd`` call for most programs. A failure
    raises ``"get info of program fd <fd> failed: ..."``."""
    info = ffi.new("struct bpf_prog_info *")
    ids = ffi.new("__u32[]", _MAP_IDS)
    rec = ffi.new("struct bpf_func_info *")
    info.nr_map_ids = _MAP_IDS
    info.map_ids = int(ffi.cast("uintptr_t", ids))
    info.nr_func_info = 1
    info.func_info_rec_size = _FUNC_INFO_SIZE
    info.func_info = int(ffi.cast("uintptr_t", rec))
    ret = _prog_get_info(fd, info, ffi.new("__u32 *", _PROG_INFO_SIZE))
    if ret < 0:
        fail(ret, f"get info of program fd {fd} failed")
    n = int(info.nr_map_ids)
    if n > _MAP_IDS:  # more maps than asked for: ask again for all of them
        ids = ffi.new("__u32[]", n)
        again = ffi.new("struct bpf_prog_info *")
        again.nr_map_ids = n
        again.map_ids = int(ffi.cast("uintptr_t", ids))
        if _prog_get_info(fd, again, ffi.new("__u32 *", _PROG_INFO_SIZE)) < 0:
            n = 0
        else:
            n = min(n, int(again.nr_map_ids))
    type_id = int(rec.type_id) if int(info.nr_func_info) else 0
    return info, tuple(ids[0:n]), type_id


def kernel_btf_type_name(btf_id: int, type_id: int) -> str | None:
    """The name of type ``type_id`` of the kernel's BTF object ``btf_id`` (loaded, read and
    freed here: here rather than in btfcalls, which the listings do not import); None when
    that BTF is gone or has no such type."""
    btf = lib.btf__load_from_kernel_by_id(btf_id)
    if btf == NULL:
        return None
    try:
        t = lib.btf__type_by_id(btf, type_id)
        if t == NULL:
            return None
        name = lib.btf__name_by_offset(btf, t.name_off)
        return None if name == NULL else ffi.string(name).decode("utf-8", "replace")
    finally:
        lib.btf__free(btf)


def map_info(fd: int) -> Any:
    """A map's ``bpf_map_info`` (one call); a failure raises
    ``"get info of map fd <fd> failed: ..."``."""
    info = ffi.new("struct bpf_map_info *")
    ret = _map_get_info(fd, info, ffi.new("__u32 *", _MAP_INFO_SIZE))
    if ret < 0:
        fail(ret, f"get info of map fd {fd} failed")
    return info


def tag_hex(info: Any) -> str:
    """A ``bpf_prog_info``'s tag as hex."""
    return bytes(ffi.buffer(info.tag)).hex()


class ReadBuffer:
    """A C buffer for an info-by-fd call to fill: ``addr`` to pass in, read it after."""

    __slots__ = ("_buf", "addr")

    def __init__(self, ctype: str, n: int) -> None:
        self._buf = ffi.new(f"{ctype}[]", n)
        self.addr = int(ffi.cast("uintptr_t", self._buf))

    def ints(self, n: int) -> tuple[int, ...]:
        """The first ``n`` elements as ints."""
        return tuple(int(self._buf[i]) for i in range(n))

    def string(self) -> str:
        """The buffer as a NUL-terminated string."""
        return ffi.string(self._buf).decode("utf-8", "replace")  # type: ignore[no-any-return]
