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

    from ._core import (
        set_print_level as set_libbpf_log_level,
    )
    from ._ctypes_gen import (
        BTF_INT_BOOL,
        BTF_INT_CHAR,
        BTF_INT_SIGNED,
        BtfStruct,
        BtfUnion,
    )
    from ._layout import (
        BitSlice,
        RecordLayout,
        RecordSlot,
    )
    from ._netns import (
        in_netns,
    )
    from ._pin import (
        bpffs_mounts,
    )
    from ._types import (
        BPF_ANY,
        BPF_EXIST,
        BPF_F_LOCK,
        BPF_F_MMAPABLE,
        BPF_F_NO_PREALLOC,
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
    from .btf import (
        Btf,
    )
    from .buffers import (
        BpfPerfBuffer,
        BpfRingBuffer,
        BpfUserRingBuffer,
        EventBatch,
    )
    from .errors import (
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
    from .globals import (
        GlobalSection,
        GlobalVariables,
    )
    from .introspect import (
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
        open_pinned,
        open_pinned_program,
        open_program_by_id,
        perf_event_open,
        perf_event_open_cpu_clock,
        pinned_info,
        probe_helper,
        probe_map_type,
        probe_prog_type,
    )
    from .link import (
        BpfLink,
        IterLink,
        LinkInfo,
        SocketFilter,
        TcAttachment,
        XdpAttachment,
        open_pinned_link,
    )
    from .linker import (
        link_objects,
    )
    from .map import (
        BpfMap,
        create_map,
        lpm_key,
        open_pinned_map,
        possible_cpus,
    )
    from .object import (
        BpfObject,
        MapCollection,
        ProgramCollection,
        load,
        open_object,
    )
    from .program import (
        BpfProgram,
        TestRunResult,
    )
    from .token import (
        BpfToken,
        create_token,
        token_supported,
    )
    from .tools.histogram import (
        hist_data,
        hist_sections_text,
        linear_hist_text,
        log2_hist_text,
        print_hist_sections,
        print_linear_hist,
        print_log2_hist,
    )
    from .tools.inspection import (
        explore,
    )
    from .tools.jsonl import (
        json_line,
    )
    from .tools.symbolize import (
        ElfError,
        KernelSymbols,
        KernelSymbolsRestrictedError,
        Symbol,
        SymbolizeError,
        Symbolizer,
        ksym,
    )
    from .tracing import (
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
    "BPF_ANY": "._types",
    "BPF_EXIST": "._types",
    "BPF_F_LOCK": "._types",
    "BPF_F_MMAPABLE": "._types",
    "BPF_F_NO_PREALLOC": "._types",
    "BPF_NOEXIST": "._types",
    "BTF_INT_BOOL": "._ctypes_gen",
    "BTF_INT_CHAR": "._ctypes_gen",
    "BTF_INT_SIGNED": "._ctypes_gen",
    "BitSlice": "._layout",
    "BpfAttachType": "._types",
    "BpfClosedError": ".errors",
    "BpfError": ".errors",
    "BpfFileNotFoundError": ".errors",
    "BpfLink": ".link",
    "BpfLinkType": "._types",
    "BpfMap": ".map",
    "BpfMapType": "._types",
    "BpfNotSupportedError": ".errors",
    "BpfObject": ".object",
    "BpfPerfBuffer": ".buffers",
    "BpfPermissionError": ".errors",
    "BpfPhaseError": ".errors",
    "BpfProgType": "._types",
    "BpfProgram": ".program",
    "BpfToken": ".token",
    "BpfVerifierError": ".errors",
    "BpfRingBuffer": ".buffers",
    "BpfUserRingBuffer": ".buffers",
    "Btf": ".btf",
    "BtfField": "._types",
    "BtfInfo": ".introspect",
    "BtfKind": "._types",
    "BtfStruct": "._ctypes_gen",
    "BtfType": "._types",
    "BtfUnion": "._ctypes_gen",
    "BtfValidationError": ".errors",
    "ElfError": ".tools.symbolize",
    "EventBatch": ".buffers",
    "GlobalSection": ".globals",
    "GlobalVariables": ".globals",
    "IterLink": ".link",
    "KernelMapInfo": ".introspect",
    "KernelProgram": ".introspect",
    "KernelProgramInfo": ".introspect",
    "KernelSymbols": ".tools.symbolize",
    "KernelSymbolsRestrictedError": ".tools.symbolize",
    "LinkDetachedWarning": ".errors",
    "LinkInfo": ".link",
    "MapCollection": ".object",
    "MapInfo": "._types",
    "PerfEvent": ".introspect",
    "ProgramCollection": ".object",
    "ProgramInfo": "._types",
    "RecordLayout": "._layout",
    "RecordSlot": "._layout",
    "RingBufferEvent": "._types",
    "SocketFilter": ".link",
    "Symbol": ".tools.symbolize",
    "SymbolizeError": ".tools.symbolize",
    "Symbolizer": ".tools.symbolize",
    "TcAttachment": ".link",
    "TestRunResult": ".program",
    "TraceEvent": ".tracing",
    "TracePipe": ".tracing",
    "XdpAttachment": ".link",
    "bpffs_mounts": "._pin",
    "create_map": ".map",
    "create_token": ".token",
    "enable_stats": ".introspect",
    "explore": ".tools.inspection",
    "hist_data": ".tools.histogram",
    "hist_sections_text": ".tools.histogram",
    "in_netns": "._netns",
    "json_line": ".tools.jsonl",
    "ksym": ".tools.symbolize",
    "linear_hist_text": ".tools.histogram",
    "link_objects": ".linker",
    "load": ".object",
    "loaded_btfs": ".introspect",
    "loaded_links": ".introspect",
    "loaded_maps": ".introspect",
    "loaded_programs": ".introspect",
    "log2_hist_text": ".tools.histogram",
    "lpm_key": ".map",
    "open": ".object:open_object",
    "open_link_by_id": ".introspect",
    "open_map_by_id": ".map",
    "open_pinned": ".introspect",
    "open_pinned_link": ".link",
    "open_pinned_map": ".map",
    "open_pinned_program": ".introspect",
    "open_program_by_id": ".introspect",
    "perf_event_open": ".introspect",
    "perf_event_open_cpu_clock": ".introspect",
    "pinned_info": ".introspect",
    "possible_cpus": ".map",
    "print_hist_sections": ".tools.histogram",
    "print_linear_hist": ".tools.histogram",
    "print_log2_hist": ".tools.histogram",
    "probe_helper": ".introspect",
    "probe_map_type": ".introspect",
    "probe_prog_type": ".introspect",
    "token_supported": ".token",
    "set_libbpf_log_level": "._core:set_print_level",
    "trace_pipe": ".tracing",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module, __name__), attr or name)
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
    "BPF_F_MMAPABLE",
    "BPF_F_NO_PREALLOC",
    "BPF_NOEXIST",
    "BTF_INT_BOOL",
    "BTF_INT_CHAR",
    "BTF_INT_SIGNED",
    "BitSlice",
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
    "BpfToken",
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
    "RecordLayout",
    "RecordSlot",
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
    "bpffs_mounts",
    "create_map",
    "create_token",
    "enable_stats",
    "explore",
    "hist_data",
    "hist_sections_text",
    "in_netns",
    "init",
    "json_line",
    "ksym",
    "libbpf_release",
    "libbpf_version",
    "linear_hist_text",
    "link_objects",
    "load",
    "loaded_btfs",
    "loaded_links",
    "loaded_maps",
    "loaded_programs",
    "log2_hist_text",
    "lpm_key",
    "open_link_by_id",
    "open_map_by_id",
    "open_pinned",
    "open_pinned_link",
    "open_pinned_map",
    "open_pinned_program",
    "open_program_by_id",
    "perf_event_open",
    "perf_event_open_cpu_clock",
    "pinned_info",
    "possible_cpus",
    "print_hist_sections",
    "print_linear_hist",
    "print_log2_hist",
    "probe_helper",
    "probe_map_type",
    "probe_prog_type",
    "set_libbpf_log_level",
    "token_supported",
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
    from ._core.kernelcalls import libbpf_version as version

    return version()


def libbpf_release() -> str:
    """The full version of the bundled (statically linked) libbpf, e.g. ``"1.7.0"``.

    Example::

        print(tinybpf.libbpf_release())   # e.g. "1.7.0"
    """
    from ._core.kernelcalls import libbpf_release as linked

    release, major, minor = linked()
    # the linked library's own major.minor, with the patch level of the pinned release
    if release.startswith(f"{major}.{minor}."):
        return release
    return f"{major}.{minor}"


def init(libbpf_path: str | os.PathLike[str] | None = None) -> None:
    """Kept for compatibility: libbpf is linked statically, so there is nothing to load.

    ``init()`` / ``init(None)`` do nothing; a path raises :class:`BpfError`.

    Example::

        tinybpf.init()   # does nothing; tinybpf.init("/usr/lib/libbpf.so") raises BpfError
    """
    if libbpf_path is not None:
        from .errors import BpfError

        raise BpfError(
            f"init({str(libbpf_path)!r}): tinybpf links libbpf "
            f"{libbpf_release()} statically; another libbpf cannot be loaded"
        )
