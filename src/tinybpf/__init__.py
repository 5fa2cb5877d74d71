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

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing alone costs ~3 ms)
if TYPE_CHECKING:  # every public name, for type checkers and editors
    from typing import Any

    from tinybpf._ctypes_gen import (
        BtfStruct,
        BtfUnion,
    )
    from tinybpf._ffi import (
        set_print_level as set_libbpf_log_level,
    )
    from tinybpf._inspect import (
        explore,
    )
    from tinybpf._jsonl import (
        json_line,
    )
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
    from tinybpf.btf import (
        Btf,
    )
    from tinybpf.buffers import (
        BpfPerfBuffer,
        BpfRingBuffer,
        BpfUserRingBuffer,
        EventBatch,
    )
    from tinybpf.errors import (
        BpfClosedError,
        BpfError,
        BpfFileNotFoundError,
        BpfNotSupportedError,
        BpfPermissionError,
        BpfPhaseError,
        BpfVerifierError,
        BtfValidationError,
        LinkDetachedWarning,
    )
    from tinybpf.globals import (
        GlobalSection,
        GlobalVariables,
    )
    from tinybpf.histogram import (
        hist_data,
        hist_sections_text,
        linear_hist_text,
        log2_hist_text,
        print_hist_sections,
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
    from tinybpf.map import (
        BpfMap,
        create_map,
        lpm_key,
        open_pinned_map,
        possible_cpus,
    )
    from tinybpf.object import (
        BpfObject,
        MapCollection,
        ProgramCollection,
        load,
        open_object,
    )
    from tinybpf.program import (
        BpfProgram,
        TestRunResult,
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
    from tinybpf.tracing import (
        TraceEvent,
        TracePipe,
        trace_pipe,
    )

    open = open_object  # public, but not in __all__: it has a builtin's name

__version__ = "0.4.0"

_this_module = sys.modules[__name__]

# Every public name is imported on first use (PEP 562): ``import tinybpf`` costs about a
# millisecond, and a tool pays only for the parts it touches. "module:attr" renames.
_LAZY = {
    "BPF_ANY": "tinybpf._types",
    "BPF_EXIST": "tinybpf._types",
    "BPF_F_LOCK": "tinybpf._types",
    "BPF_NOEXIST": "tinybpf._types",
    "BpfAttachType": "tinybpf._types",
    "BpfClosedError": "tinybpf.errors",
    "BpfError": "tinybpf.errors",
    "BpfFileNotFoundError": "tinybpf.errors",
    "BpfLink": "tinybpf.link",
    "BpfLinkType": "tinybpf._types",
    "BpfMap": "tinybpf.map",
    "BpfMapType": "tinybpf._types",
    "BpfNotSupportedError": "tinybpf.errors",
    "BpfObject": "tinybpf.object",
    "BpfPerfBuffer": "tinybpf.buffers",
    "BpfPermissionError": "tinybpf.errors",
    "BpfPhaseError": "tinybpf.errors",
    "BpfProgType": "tinybpf._types",
    "BpfProgram": "tinybpf.program",
    "BpfVerifierError": "tinybpf.errors",
    "BpfRingBuffer": "tinybpf.buffers",
    "BpfUserRingBuffer": "tinybpf.buffers",
    "Btf": "tinybpf.btf",
    "BtfField": "tinybpf._types",
    "BtfInfo": "tinybpf.introspect",
    "BtfKind": "tinybpf._types",
    "BtfStruct": "tinybpf._ctypes_gen",
    "BtfType": "tinybpf._types",
    "BtfUnion": "tinybpf._ctypes_gen",
    "BtfValidationError": "tinybpf.errors",
    "ElfError": "tinybpf.symbolize",
    "EventBatch": "tinybpf.buffers",
    "GlobalSection": "tinybpf.globals",
    "GlobalVariables": "tinybpf.globals",
    "IterLink": "tinybpf.link",
    "KernelMapInfo": "tinybpf.introspect",
    "KernelProgram": "tinybpf.introspect",
    "KernelProgramInfo": "tinybpf.introspect",
    "KernelSymbols": "tinybpf.symbolize",
    "KernelSymbolsRestrictedError": "tinybpf.symbolize",
    "LinkDetachedWarning": "tinybpf.errors",
    "LinkInfo": "tinybpf.link",
    "MapCollection": "tinybpf.object",
    "MapInfo": "tinybpf._types",
    "PerfEvent": "tinybpf.introspect",
    "ProgramCollection": "tinybpf.object",
    "ProgramInfo": "tinybpf._types",
    "RingBufferEvent": "tinybpf._types",
    "SocketFilter": "tinybpf.link",
    "Symbol": "tinybpf.symbolize",
    "SymbolizeError": "tinybpf.symbolize",
    "Symbolizer": "tinybpf.symbolize",
    "TcAttachment": "tinybpf.link",
    "TestRunResult": "tinybpf.program",
    "TraceEvent": "tinybpf.tracing",
    "TracePipe": "tinybpf.tracing",
    "XdpAttachment": "tinybpf.link",
    "create_map": "tinybpf.map",
    "enable_stats": "tinybpf.introspect",
    "explore": "tinybpf._inspect",
    "hist_data": "tinybpf.histogram",
    "hist_sections_text": "tinybpf.histogram",
    "json_line": "tinybpf._jsonl",
    "ksym": "tinybpf.symbolize",
    "linear_hist_text": "tinybpf.histogram",
    "load": "tinybpf.object",
    "loaded_btfs": "tinybpf.introspect",
    "loaded_links": "tinybpf.introspect",
    "loaded_maps": "tinybpf.introspect",
    "loaded_programs": "tinybpf.introspect",
    "log2_hist_text": "tinybpf.histogram",
    "lpm_key": "tinybpf.map",
    "open": "tinybpf.object:open_object",
    "open_link_by_id": "tinybpf.introspect",
    "open_map_by_id": "tinybpf.introspect",
    "open_pinned_link": "tinybpf.link",
    "open_pinned_map": "tinybpf.map",
    "open_pinned_program": "tinybpf.introspect",
    "open_program_by_id": "tinybpf.introspect",
    "perf_event_open": "tinybpf.introspect",
    "perf_event_open_cpu_clock": "tinybpf.introspect",
    "possible_cpus": "tinybpf.map",
    "print_hist_sections": "tinybpf.histogram",
    "print_linear_hist": "tinybpf.histogram",
    "print_log2_hist": "tinybpf.histogram",
    "probe_helper": "tinybpf.introspect",
    "probe_map_type": "tinybpf.introspect",
    "probe_prog_type": "tinybpf.introspect",
    "set_libbpf_log_level": "tinybpf._ffi:set_print_level",
    "trace_pipe": "tinybpf.tracing",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'tinybpf' has no attribute {name!r}")
    import importlib

    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    setattr(_this_module, name, value)  # (the submodule tinybpf.globals shadows globals())
    return value


def __dir__() -> list[str]:
    return sorted(set(vars(_this_module)) | set(_LAZY))


# Public attributes left out of __all__ because "from tinybpf import *" would shadow a
# builtin with them: use them as tinybpf.open(...).
_PUBLIC_NOT_IN_ALL = ("open",)

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
    "BpfVerifierError",
    "Btf",
    "BtfField",
    "BtfInfo",
    "BtfKind",
    "BtfStruct",
    "BtfType",
    "BtfUnion",
    "BtfValidationError",
    "ElfError",
    "EventBatch",
    "GlobalSection",
    "GlobalVariables",
    "IterLink",
    "KernelMapInfo",
    "KernelProgram",
    "KernelProgramInfo",
    "KernelSymbols",
    "KernelSymbolsRestrictedError",
    "LinkDetachedWarning",
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
    "TraceEvent",
    "TracePipe",
    "XdpAttachment",
    "create_map",
    "enable_stats",
    "explore",
    "hist_data",
    "hist_sections_text",
    "init",
    "json_line",
    "ksym",
    "libbpf_release",
    "libbpf_version",
    "linear_hist_text",
    "load",
    "loaded_btfs",
    "loaded_links",
    "loaded_maps",
    "loaded_programs",
    "log2_hist_text",
    "lpm_key",
    "open_link_by_id",
    "open_map_by_id",
    "open_pinned_link",
    "open_pinned_map",
    "open_pinned_program",
    "open_program_by_id",
    "perf_event_open",
    "perf_event_open_cpu_clock",
    "possible_cpus",
    "print_hist_sections",
    "print_linear_hist",
    "print_log2_hist",
    "probe_helper",
    "probe_map_type",
    "probe_prog_type",
    "set_libbpf_log_level",
    "trace_pipe",
    "version",
]


def version() -> str:
    """The tinybpf version.

    Example::

        print(tinybpf.version())   # e.g. "0.4.0", the same as tinybpf.__version__
    """
    return __version__


def libbpf_version() -> str:
    """libbpf's own version string, as the first generation returned it: ``"v1.7"``
    (``libbpf_version_string()``, major.minor only). :func:`libbpf_release` gives the full
    pinned release, e.g. ``"1.7.0"``.

    Example::

        print(tinybpf.libbpf_version())   # e.g. "v1.7"
    """
    from tinybpf._ffi import ffi, lib

    text: bytes = ffi.string(lib.libbpf_version_string())
    return text.decode()


def libbpf_release() -> str:
    """The full version of the bundled (statically linked) libbpf, e.g. ``"1.7.0"``.

    Example::

        print(tinybpf.libbpf_release())   # e.g. "1.7.0"
    """
    from tinybpf._ffi import ffi, lib

    release: bytes = ffi.string(lib.tinybpf_libbpf_release())
    major, minor = lib.libbpf_major_version(), lib.libbpf_minor_version()
    # the linked library's own major.minor, with the patch level of the pinned release
    if release.decode().startswith(f"{major}.{minor}."):
        return release.decode()
    return f"{major}.{minor}"


def init(libbpf_path: str | os.PathLike[str] | None = None) -> None:
    """Kept for compatibility: libbpf is linked statically, so there is nothing to load.

    ``init()`` / ``init(None)`` do nothing; a path raises :class:`BpfError`.

    Example::

        tinybpf.init()   # does nothing; tinybpf.init("/usr/lib/libbpf.so") raises BpfError
    """
    if libbpf_path is not None:
        from tinybpf.errors import BpfError

        raise BpfError(
            f"init({str(libbpf_path)!r}): tinybpf links libbpf "
            f"{libbpf_release()} statically; another libbpf cannot be loaded"
        )
