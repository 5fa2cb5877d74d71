"""tinybpf: load, configure, attach and read CO-RE eBPF objects from Python.

The engine is libbpf 1.7, statically linked into a cffi extension. Quick start::

    import tinybpf

    with tinybpf.load("prog.bpf.o") as obj:
        link = obj.program("handle_exec").attach()
        rb = tinybpf.BpfRingBuffer(obj.maps["events"], lambda data: print(data))
        rb.poll(timeout_ms=1000)
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from tinybpf._ctypes_gen import BtfStruct, BtfUnion
from tinybpf._ffi import ffi as _ffi_mod
from tinybpf._ffi import lib as _lib
from tinybpf._ffi import set_print_level as set_libbpf_log_level
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

if TYPE_CHECKING:  # the lazy names, for type checkers
    from tinybpf._inspect import explore
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
    from tinybpf.symbolize import (
        ElfError,
        KernelSymbols,
        KernelSymbolsRestrictedError,
        Symbol,
        SymbolizeError,
        Symbolizer,
        ksym,
    )

_this_module = sys.modules[__name__]

# Imported on first use (PEP 562), so that ``import tinybpf`` stays fast.
_LAZY = {
    "BtfInfo": "tinybpf.introspect",
    "ElfError": "tinybpf.symbolize",
    "KernelMapInfo": "tinybpf.introspect",
    "KernelProgram": "tinybpf.introspect",
    "KernelProgramInfo": "tinybpf.introspect",
    "KernelSymbols": "tinybpf.symbolize",
    "KernelSymbolsRestrictedError": "tinybpf.symbolize",
    "PerfEvent": "tinybpf.introspect",
    "Symbol": "tinybpf.symbolize",
    "SymbolizeError": "tinybpf.symbolize",
    "Symbolizer": "tinybpf.symbolize",
    "enable_stats": "tinybpf.introspect",
    "explore": "tinybpf._inspect",
    "hist_data": "tinybpf.histogram",
    "ksym": "tinybpf.symbolize",
    "linear_hist_text": "tinybpf.histogram",
    "loaded_btfs": "tinybpf.introspect",
    "loaded_links": "tinybpf.introspect",
    "loaded_maps": "tinybpf.introspect",
    "loaded_programs": "tinybpf.introspect",
    "log2_hist_text": "tinybpf.histogram",
    "open_link_by_id": "tinybpf.introspect",
    "open_map_by_id": "tinybpf.introspect",
    "open_pinned_program": "tinybpf.introspect",
    "open_program_by_id": "tinybpf.introspect",
    "perf_event_open": "tinybpf.introspect",
    "perf_event_open_cpu_clock": "tinybpf.introspect",
    "print_linear_hist": "tinybpf.histogram",
    "print_log2_hist": "tinybpf.histogram",
    "probe_helper": "tinybpf.introspect",
    "probe_map_type": "tinybpf.introspect",
    "probe_prog_type": "tinybpf.introspect",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tinybpf' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    setattr(_this_module, name, value)  # (the submodule tinybpf.globals shadows globals())
    return value


def __dir__() -> list[str]:
    return sorted(set(vars(_this_module)) | set(_LAZY))


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


def init(libbpf_path: str | os.PathLike[str] | None = None) -> None:
    """Kept for compatibility: libbpf is linked statically, so there is nothing to load.

    ``init()`` / ``init(None)`` do nothing; a path raises :class:`BpfError`.
    """
    if libbpf_path is not None:
        raise BpfError(
            f"init({str(libbpf_path)!r}): tinybpf links libbpf "
            f"{libbpf_version()} statically; another libbpf cannot be loaded"
        )


del _ffi_mod
