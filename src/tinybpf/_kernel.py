"""What the running kernel allows: the facts behind tinybpf's own explanations of refusals.

Read from the machine, never guessed: the active LSMs (/sys/kernel/security/lsm), the
lockdown mode (/sys/kernel/security/lockdown), this process's effective capabilities
(CapEff in /proc/self/status) and libbpf's program type probe. Used to replace libbpf's
generic "try raising 'ulimit -l'" with what was actually checked (libbpf's text stays in
the error's ``libbpf_log``).
"""

from __future__ import annotations

import re

from ._core import kernelcalls
from ._types import BpfProgType

LSM_FILE = "/sys/kernel/security/lsm"
LOCKDOWN_FILE = "/sys/kernel/security/lockdown"

# capability numbers of <linux/capability.h>
_CAPS = {"CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38, "CAP_BPF": 39}

# program types whose load needs CAP_PERFMON besides CAP_BPF (kernel/bpf/syscall.c:
# bpf_prog_load_check_... "tracing" types), and whose helpers lockdown may refuse
_TRACING_TYPES = {
    BpfProgType.KPROBE,
    BpfProgType.TRACEPOINT,
    BpfProgType.PERF_EVENT,
    BpfProgType.RAW_TRACEPOINT,
    BpfProgType.RAW_TRACEPOINT_WRITABLE,
    BpfProgType.TRACING,
    BpfProgType.LSM,
    BpfProgType.EXT,
    BpfProgType.STRUCT_OPS,
}


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def active_lsms() -> list[str] | None:
    """The active LSMs in order, or None when securityfs is not readable here."""
    text = _read(LSM_FILE)
    return None if text is None else [s for s in text.split(",") if s]


def lockdown_mode() -> str | None:
    """The selected kernel lockdown mode ("none", "integrity", "confidentiality"), or None
    when the kernel has no lockdown LSM or securityfs is not mounted."""
    text = _read(LOCKDOWN_FILE)
    if text is None:
        return None
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m else None


def effective_caps() -> set[str] | None:
    """Which of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN this process has (None: unreadable)."""
    status = _read("/proc/self/status")
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)$", status or "", re.M)
    if m is None:
        return None
    bits = int(m.group(1), 16)
    return {name for name, bit in _CAPS.items() if bits >> bit & 1}


def in_user_namespace() -> bool:
    """Whether this process runs in a user namespace other than the initial one (its
    /proc/self/uid_map maps less than the whole uid range)."""
    text = _read("/proc/self/uid_map")
    return text is not None and text.split() != ["0", "0", "4294967295"]


def _type_name(ptype: int) -> str:
    try:
        return BpfProgType(ptype).name
    except ValueError:
        return str(ptype)


def explain_eperm(programs: dict[str, tuple[int, str]], log: str) -> str:
    """Why a load failed with EPERM, from what can be checked here.

    ``programs``: name -> (program type, section) of the object's programs that were being
    loaded; ``log``: libbpf's messages of the failed load (they name the program refused).
    """
    failed = re.findall(r"prog '([^']+)': (?:BPF program load failed|failed to load)", log)
    names = [n for n in dict.fromkeys(failed) if n in programs] or list(programs)
    findings: list[str] = []
    checked: list[str] = []

    caps = effective_caps()
    types = {programs[n][0] for n in names}
    userns = in_user_namespace()
    if userns:
        findings.append(
            "this process runs in a user namespace: its capabilities count only there, and "
            "BPF needs them in the initial one; in a container, use a BPF token: a BPF "
            "filesystem delegated to the container's user namespace, passed as "
            "bpf_token_path= or LIBBPF_BPF_TOKEN_PATH (Linux 6.9+)"
        )
        checked.append("capabilities (none in the initial user namespace)")
    elif caps is None:
        checked.append("capabilities: /proc/self/status unreadable")
    else:
        needed = ["CAP_BPF"]
        if types & {int(t) for t in _TRACING_TYPES}:
            needed.append("CAP_PERFMON")
        missing = [c for c in needed if c not in caps]
        if missing and "CAP_SYS_ADMIN" not in caps:
            findings.append(
                f"this process lacks {' and '.join(missing)} (and CAP_SYS_ADMIN): run as "
                "root or grant them (e.g. setcap, or a container's capability list)"
            )
        have = ", ".join(sorted(caps)) or "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN"
        checked.append(f"capabilities ({have})")

    mode = lockdown_mode()
    if mode is None:
        checked.append(f"lockdown (unknown: {LOCKDOWN_FILE} unreadable)")
    else:
        checked.append(f"lockdown ({mode})")
        if mode == "confidentiality" and types & {int(t) for t in _TRACING_TYPES}:
            findings.append(
                "kernel lockdown is 'confidentiality': it refuses BPF programs that read "
                "kernel memory (boot with lockdown=integrity or none)"
            )

    refused: list[str] = []
    for ptype in sorted(types) if not userns else ():  # (its probes fail the same way)
        ok = kernelcalls.probe_prog_type(ptype) == 1
        checked.append(f"probe_prog_type({_type_name(ptype)}) is {ok}")
        if not ok:
            refused.append(_type_name(ptype))
    if refused:
        findings.append(
            f"this kernel refuses {', '.join(refused)} programs: libbpf's minimal program of "
            "that type is refused too (the kernel build or a security policy forbids them, "
            "or some of them)"
        )
    what = ", ".join(f"'{n}' ({_type_name(programs[n][0])}, '{programs[n][1]}')" for n in names)
    if not findings:
        findings.append(
            f"the kernel accepts these program types in general but refused {what}: "
            "something specific to it (its attach target, e.g. an iterator kind this "
            "kernel build forbids, or a helper it calls)"
        )
    else:
        findings.insert(0, f"refused: {what}")
    return "; ".join(findings) + f" (checked: {'; '.join(checked)})"


def lsm_inactive_message() -> str | None:
    """Why LSM programs attached now would never run, or None ('bpf' is active, or the
    list cannot be read here)."""
    lsms = active_lsms()
    if lsms is None or "bpf" in lsms:
        return None
    return (
        f"'bpf' is not an active LSM on this kernel ({LSM_FILE}: {','.join(lsms)}), so the "
        "program would attach and never run; boot with the kernel parameter "
        f"lsm={','.join([*lsms, 'bpf'])} (CONFIG_BPF_LSM=y), or pass "
        "require_active=False to attach anyway"
    )
