"""Kernel and library facts and the small syscalls outside any object: feature probes,
run-time statistics, perf events, BPF tokens, network namespaces, the libbpf version,
and the buffers the info-by-fd calls fill."""

from __future__ import annotations

from typing import Any

from ._binding import NULL, ffi, lib

__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_LOCK",
    "BPF_F_MMAPABLE",
    "BPF_NOEXIST",
    "CLONE_NEWNET",
    "PERF_COUNT_SW_CPU_CLOCK",
    "PERF_TYPE_SOFTWARE",
    "ReadBuffer",
    "enable_run_time_stats",
    "libbpf_release",
    "libbpf_version",
    "ns_type",
    "opts_token_path",
    "perf_event_open",
    "probe_helper",
    "probe_map_type",
    "probe_prog_type",
    "setns",
    "tag_hex",
    "token_create",
]

BPF_ANY = int(lib.BPF_ANY)
BPF_NOEXIST = int(lib.BPF_NOEXIST)
BPF_EXIST = int(lib.BPF_EXIST)
BPF_F_LOCK = int(lib.BPF_F_LOCK)
BPF_F_MMAPABLE = int(lib.BPF_F_MMAPABLE)
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
