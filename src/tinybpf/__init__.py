"""tinybpf: load, configure, attach and read CO-RE eBPF objects from Python.

The engine is libbpf 1.7, statically linked into a cffi extension. Quick start::

    import tinybpf

    with tinybpf.load("prog.bpf.o") as obj:
        link = obj.program("handle_exec").attach()
        rb = tinybpf.BpfRingBuffer(obj.maps["events"], lambda data: print(data))
        rb.poll(timeout_ms=1000)
"""

from __future__ import annotations

from pathlib import Path

from tinybpf._ctypes_gen import BtfStruct, BtfUnion
from tinybpf._ffi import ffi as _ffi_mod
from tinybpf._ffi import lib as _lib
from tinybpf._ffi import set_print_level as set_libbpf_log_level
from tinybpf._inspect import explore
from tinybpf._types import (
    BPF_ANY,
    BPF_EXIST,
    BPF_F_LOCK,
    BPF_NOEXIST,
    BpfAttachType,
    BpfLinkType,
    BpfMapType,
    BpfProgType,
    BtfField,
    BtfKind,
    BtfType,
    MapInfo,
    ProgramInfo,
    RingBufferEvent,
)
from tinybpf.btf import Btf
from tinybpf.buffers import BpfPerfBuffer, BpfRingBuffer, BpfUserRingBuffer
from tinybpf.errors import (
    BpfClosedError,
    BpfError,
    BpfFileNotFoundError,
    BpfNotSupportedError,
    BpfPermissionError,
    BpfPhaseError,
    BtfValidationError,
)
from tinybpf.globals import GlobalSection, GlobalVariables
from tinybpf.histogram import (
    hist_data,
    linear_hist_text,
    log2_hist_text,
    print_linear_hist,
    print_log2_hist,
)
from tinybpf.introspect import (
    BtfInfo,
    KernelMapInfo,
    KernelProgram,
    KernelProgramInfo,
    PerfEvent,
    enable_stats,
    loaded_btfs,
    loaded_links,
    loaded_maps,
    loaded_programs,
    open_link_by_id,
    open_map_by_id,
    open_pinned_program,
    open_program_by_id,
    perf_event_open,
    perf_event_open_cpu_clock,
    probe_helper,
    probe_map_type,
    probe_prog_type,
)
from tinybpf.link import (
    BpfLink,
    IterLink,
    LinkInfo,
    SocketFilter,
    TcAttachment,
    XdpAttachment,
    open_pinned_link,
)
from tinybpf.map import BpfMap, create_map, lpm_key, open_pinned_map, possible_cpus
from tinybpf.object import BpfObject, MapCollection, ProgramCollection, load
from tinybpf.object import open_object as open
from tinybpf.program import BpfProgram, TestRunResult
from tinybpf.symbolize import (
    ElfError,
    KernelSymbols,
    KernelSymbolsRestrictedError,
    Symbol,
    SymbolizeError,
    Symbolizer,
    ksym,
)

__version__ = "0.4.0"

__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_LOCK",
    "BPF_NOEXIST",
    "BpfAttachType",
    "BpfClosedError",
    "BpfError",
    "BpfFileNotFoundError",
    "BpfLink",
    "BpfLinkType",
    "BpfMap",
    "BpfMapType",
    "BpfNotSupportedError",
    "BpfObject",
    "BpfPerfBuffer",
    "BpfPermissionError",
    "BpfPhaseError",
    "BpfProgType",
    "BpfProgram",
    "BpfRingBuffer",
    "BpfUserRingBuffer",
    "Btf",
    "BtfField",
    "BtfInfo",
    "BtfKind",
    "BtfStruct",
    "BtfType",
    "BtfUnion",
    "BtfValidationError",
    "ElfError",
    "GlobalSection",
    "GlobalVariables",
    "IterLink",
    "KernelMapInfo",
    "KernelProgram",
    "KernelProgramInfo",
    "KernelSymbols",
    "KernelSymbolsRestrictedError",
    "LinkInfo",
    "MapCollection",
    "MapInfo",
    "PerfEvent",
    "ProgramCollection",
    "ProgramInfo",
    "RingBufferEvent",
    "SocketFilter",
    "Symbol",
    "SymbolizeError",
    "Symbolizer",
    "TcAttachment",
    "TestRunResult",
    "XdpAttachment",
    "create_map",
    "enable_stats",
    "explore",
    "hist_data",
    "init",
    "ksym",
    "libbpf_version",
    "linear_hist_text",
    "load",
    "loaded_btfs",
    "loaded_links",
    "loaded_maps",
    "loaded_programs",
    "log2_hist_text",
    "lpm_key",
    "open",
    "open_link_by_id",
    "open_map_by_id",
    "open_pinned_link",
    "open_pinned_map",
    "open_pinned_program",
    "open_program_by_id",
    "perf_event_open",
    "perf_event_open_cpu_clock",
    "possible_cpus",
    "print_linear_hist",
    "print_log2_hist",
    "probe_helper",
    "probe_map_type",
    "probe_prog_type",
    "set_libbpf_log_level",
    "version",
]


def version() -> str:
    """The tinybpf version."""
    return __version__


def libbpf_version() -> str:
    """The version of the bundled (statically linked) libbpf, e.g. ``"1.7"``."""
    return f"{_lib.libbpf_major_version()}.{_lib.libbpf_minor_version()}"


def init(libbpf_path: str | Path | None = None) -> None:
    """Kept for compatibility: libbpf is linked statically, so there is nothing to load.

    ``init()`` / ``init(None)`` do nothing; a path raises :class:`BpfError`.
    """
    if libbpf_path is not None:
        raise BpfError(
            f"init({str(libbpf_path)!r}): tinybpf links libbpf "
            f"{libbpf_version()} statically; another libbpf cannot be loaded"
        )


del _ffi_mod
