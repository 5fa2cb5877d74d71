"""What a kernel's ENOENT/ESRCH means when no file is involved.

libbpf reports "not there" as ENOENT or ESRCH whatever was missing: a kernel function to
probe, a symbol of a binary, a kfunc, the kernel's kprobe support itself. Left alone that
reads as ``FileNotFoundError: No such file or directory``. These helpers look at the machine
(PMUs, tracefs, /proc/kallsyms, the kernel's BTF) and say which it was; each returns the
error class and the explanation, or None when they cannot tell.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from ._core import btfcalls, errnos
from ._types import BtfKind
from .btf import Btf
from .errors import BpfError, BpfNotSupportedError

__all__ = [
    "Explanation",
    "explain_auto_attach",
    "explain_kprobe",
    "explain_kprobe_multi",
    "explain_load",
    "explain_trace_target",
    "explain_uprobe",
    "kprobe_support_missing",
]

_KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"
_TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
_VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
_BTF_FUNC_EXTERN: int = btfcalls.FUNC_EXTERN

Explanation = tuple[type[BpfError], str]


def _tracefs() -> str | None:
    for d in _TRACEFS_DIRS:
        if os.path.isdir(f"{d}/events"):
            return d
    return None


def kprobe_support_missing() -> str | None:
    """Why this kernel cannot attach kprobes (None when it can): libbpf uses the kprobe
    PMU, or the legacy kprobe_events file of tracefs."""
    if os.path.exists(_KPROBE_PMU):
        return None
    tfs = _tracefs()
    if tfs is not None and os.path.exists(f"{tfs}/kprobe_events"):
        return None
    if tfs is None:
        return (
            f"kprobes cannot be attached here: no {_KPROBE_PMU} PMU, and tracefs (for the "
            "legacy kprobe_events) is not mounted; mount it, or this kernel has no kprobe "
            "support"
        )
    return (
        f"this kernel has no kprobe support: no {_KPROBE_PMU} PMU and no {tfs}/kprobe_events "
        "(a kernel built without CONFIG_KPROBES / CONFIG_KPROBE_EVENTS)"
    )


def _kallsyms_names() -> set[str] | None:
    """Every symbol name in /proc/kallsyms (None: the file cannot be read)."""
    names: set[str] = set()
    try:
        with open("/proc/kallsyms", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    names.add(parts[2])
    except OSError:
        return None
    return names


def _kallsyms_has(match: Any) -> bool | None:
    """Whether /proc/kallsyms lists a symbol for which ``match(name)`` is true (None: the
    file cannot be read)."""
    names = _kallsyms_names()
    return None if names is None else any(match(n) for n in names)


def explain_kprobe(
    func_name: str, syscall: bool = False, err: int = errno.ENOENT
) -> Explanation | None:
    """A kprobe (or ksyscall) attach failed with ENOENT/ESRCH (or EINVAL, which some
    kernels return for an unknown symbol: None when the function exists)."""
    missing = kprobe_support_missing()
    if missing is not None:
        return BpfNotSupportedError, missing
    if syscall:
        suffix = f"_sys_{func_name}"
        found = _kallsyms_has(lambda n: n == suffix[1:] or n.endswith(suffix))
        if found is False:
            return BpfError, f"system call '{func_name}' not found in this kernel"
    elif _kallsyms_has(lambda n: n == func_name) is False:
        return BpfError, f"function '{func_name}' not found in this kernel (/proc/kallsyms)"
    if errnos.is_(err, errnos.INVALID):
        return None
    return BpfError, f"the kernel found no probe point for '{func_name}'"


def explain_kprobe_multi(what: str, pattern: bool) -> Explanation:
    """A kprobe_multi attach failed with ENOENT/ESRCH."""
    tfs = _tracefs()
    if pattern and (tfs is None or not os.path.exists(f"{tfs}/available_filter_functions")):
        return BpfNotSupportedError, (
            "matching a pattern needs tracefs's available_filter_functions, and tracefs is "
            "not mounted (mount -t tracefs tracefs /sys/kernel/tracing)"
        )
    return BpfError, f"no function of this kernel matches {what}"


def _binary_missing(binary: str) -> bool:
    path = binary.split("!/", 1)[0]
    if "/" not in path:  # a bare name libbpf looks up in PATH or the library directories
        return False
    return not os.path.exists(path)


def explain_uprobe(binary: str, what: str, log_text: str | None) -> Explanation | None:
    """A uprobe/USDT attach failed with ENOENT: the binary is missing (None: the caller's
    FileNotFoundError is right), or the symbol/probe ``what`` is not in it."""
    if _binary_missing(binary) or "failed to resolve full path" in (log_text or ""):
        return None
    return BpfError, f"{what} not found in '{binary}'"


class _KernelFunctions:
    """Function names of the running kernel: its BTF (opened once), then /proc/kallsyms
    (module functions too, read once)."""

    def __init__(self) -> None:
        self._btf: Btf | None = None
        self._kallsyms: set[str] | None = None

    def known(self, name: str) -> bool | None:
        """Whether the kernel has function ``name`` (None: cannot tell)."""
        try:
            if self._btf is None:
                self._btf = Btf.from_vmlinux()
            self._btf.find(name, BtfKind.FUNC)
            return True
        except KeyError:
            pass
        except OSError:
            return None
        if self._kallsyms is None:
            self._kallsyms = _kallsyms_names()
            if self._kallsyms is None:
                return None
        return name in self._kallsyms

    def close(self) -> None:
        if self._btf is not None:
            self._btf.close()


def explain_trace_target(name: str) -> Explanation:
    """Setting or resolving an fentry/fexit/fmod_ret/LSM target failed with ENOENT/ESRCH."""
    if not os.path.exists(_VMLINUX_BTF):
        return BpfNotSupportedError, f"this kernel has no BTF ({_VMLINUX_BTF} is missing)"
    return BpfError, f"function '{name}' not found in this kernel's BTF"


def _extern_functions(path: str | None) -> list[str]:
    """The extern functions (kfuncs) an object file declares in its BTF."""
    if path is None or not os.path.isfile(path):
        return []
    try:
        with Btf.from_file(path) as btf:
            return [
                bt.name
                for bt in btf
                if bt.kind == BtfKind.FUNC and bt.linkage == _BTF_FUNC_EXTERN and bt.name
            ]
    except OSError:
        return []


def explain_auto_attach(section: str, log_text: str | None) -> Explanation | None:
    """An auto-attach (``attach()``) failed with ENOENT/ESRCH: explain it from the target
    the SEC() name gives (None: not a probe section, or nothing to add)."""
    kind, _, target = section.partition("/")
    if not target:
        return None
    base = kind.removesuffix(".s")
    if base in ("kprobe", "kretprobe"):
        return explain_kprobe(target.split("+", 1)[0])
    if base in ("ksyscall", "kretsyscall"):
        return explain_kprobe(target, syscall=True)
    if base in ("kprobe.multi", "kretprobe.multi"):
        return explain_kprobe_multi(f"'{target}'", True)
    if base in ("uprobe", "uretprobe", "uprobe.multi", "uretprobe.multi"):
        binary, _, func = target.rpartition(":")
        if binary and func:
            what = f"function matching '{func}'" if "multi" in base else f"symbol '{func}'"
            return explain_uprobe(binary, what, log_text)
    if base == "usdt":
        parts = target.rsplit(":", 2)
        if len(parts) == 3:
            return explain_uprobe(parts[0], f"USDT probe '{parts[1]}:{parts[2]}'", log_text)
    return None


# program sections whose part after the first '/' names a kernel function (BTF targets)
_TRACE_SECTIONS = {
    "fentry": "",
    "fexit": "",
    "fmod_ret": "",
    "fentry.s": "",
    "fexit.s": "",
    "fmod_ret.s": "",
    "lsm": "bpf_lsm_",
    "lsm.s": "bpf_lsm_",
    "lsm_cgroup": "bpf_lsm_",
}


def explain_load(programs: list[tuple[str, str, bool]], path: str | None) -> Explanation | None:
    """A load failed with ENOENT/ESRCH/EINVAL: which kernel function, kfunc or BTF is
    missing (None: none found).

    ``programs``: (name, section, autoload) of each program; ``path``: the object file
    (its BTF as written still marks kfuncs extern: libbpf's copy no longer does), or None.
    """
    if not os.path.exists(_VMLINUX_BTF):
        return BpfNotSupportedError, (
            f"this kernel has no BTF ({_VMLINUX_BTF} is missing): CO-RE relocations, kfuncs "
            "and fentry/fexit/LSM programs need it"
        )
    missing: list[str] = []
    functions = _KernelFunctions()
    try:
        for name, section, autoload in programs:
            kind, _, target = section.partition("/")
            if not autoload or kind not in _TRACE_SECTIONS or not target:
                continue
            func = _TRACE_SECTIONS[kind] + target
            if functions.known(func) is False:
                missing.append(f"function '{func}' ({kind} target of program '{name}')")
        for name in _extern_functions(path):
            if functions.known(name) is False:
                missing.append(f"kfunc '{name}'")
    finally:
        functions.close()
    if missing:
        return BpfError, f"{', '.join(missing)} not found in this kernel"
    return None
