"""Probes of what this kernel and machine can do, and scaffolding for the attach tests.

Every probe looks at the machine (tracefs files, PMUs, mounts); none of them runs the code
under test and interprets its failure.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

TRACEFS_DIRS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
CGROUP2_CANDIDATES = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))

# syscall numbers of getpid, for the raw tracepoint filter
GETPID_NR = {"x86_64": 39, "aarch64": 172}


def _mounts() -> list[tuple[str, str]]:
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out.append((parts[1], parts[2]))
    return out


def tracefs() -> Path | None:
    """The mounted tracefs directory, or None."""
    for d in TRACEFS_DIRS:
        if (d / "events").is_dir():
            return d
    return None


def kprobe_unavailable_reason() -> str | None:
    """Why kprobes cannot be attached here (None when they can).

    libbpf attaches kprobes through the 'kprobe' perf PMU, or the legacy tracefs
    kprobe_events file: a kernel built without CONFIG_KPROBE_EVENTS has neither.
    """
    pmu = Path("/sys/bus/event_source/devices/kprobe")
    tfs = tracefs()
    legacy = tfs is not None and (tfs / "kprobe_events").exists()
    if pmu.exists() or legacy:
        return None
    where = f"{tfs}/kprobe_events" if tfs else "tracefs (not mounted)"
    return f"kernel has no kprobe support: no {pmu} PMU and no {where}"


def tracepoint_unavailable_reason(category: str, name: str) -> str | None:
    tfs = tracefs()
    if tfs is None:
        return "tracefs is not mounted (run 'make mounts')"
    if not (tfs / "events" / category / name / "id").exists():
        return f"tracepoint {category}/{name} does not exist on this kernel"
    return None


def uprobe_unavailable_reason() -> str | None:
    if Path("/sys/bus/event_source/devices/uprobe").exists():
        return None
    tfs = tracefs()
    if tfs is not None and (tfs / "uprobe_events").exists():
        return None
    return "kernel has no uprobe support (no uprobe PMU, no uprobe_events)"


def gcc_unavailable_reason() -> str | None:
    for tool in ("gcc", "nm", "readelf"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def getpid_nr() -> int | None:
    return GETPID_NR.get(platform.machine())


def cgroup2_root() -> Path | None:
    """A writable cgroup v2 mount (the unified hierarchy of a hybrid host, or /sys/fs/cgroup)."""
    mounts = {mp: fs for mp, fs in _mounts()}
    for d in CGROUP2_CANDIDATES:
        if mounts.get(str(d)) == "cgroup2" and os.access(d, os.W_OK):
            return d
    return None


def bpffs() -> Path | None:
    for mp, fs in _mounts():
        if fs == "bpf" and mp == "/sys/fs/bpf":
            return Path(mp)
    return None


def netns_unavailable_reason() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    if not Path("/proc/self/ns/net").exists():
        return "kernel has no network namespaces"
    if not Path("/sys/module/veth").exists() and not _veth_builtin():
        return "kernel has no veth driver"
    return None


def _veth_builtin() -> bool:
    """Whether the kernel has veth, built in or as a module ('ip link add' loads it)."""
    cfg = Path("/proc/config.gz")
    if cfg.exists():
        import gzip

        text = gzip.decompress(cfg.read_bytes()).decode()
        return "CONFIG_VETH=y" in text or "CONFIG_VETH=m" in text
    # No config to read: let the fixture's 'ip link add' decide.
    return True


def file_offset(binary: Path, symbol: str) -> int:
    """File offset of ``symbol`` in an ELF executable: vaddr - segment vaddr + segment offset."""
    nm = subprocess.run(
        ["nm", "--defined-only", str(binary)], check=True, capture_output=True, text=True
    ).stdout
    vaddr = None
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            vaddr = int(parts[0], 16)
            break
    if vaddr is None:
        raise LookupError(f"{symbol} not in {binary}")
    phdrs = subprocess.run(
        ["readelf", "-lW", str(binary)], check=True, capture_output=True, text=True
    ).stdout
    # LOAD  Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align
    for m in re.finditer(
        r"^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(.*?)\s+0x",
        phdrs,
        re.M,
    ):
        off, seg_vaddr, filesz = int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16)
        if seg_vaddr <= vaddr < seg_vaddr + filesz and "E" in m.group(5):
            return vaddr - seg_vaddr + off
    raise LookupError(f"no executable LOAD segment holds {symbol} in {binary}")


# Errnos with which a kernel refuses a program or map type it does not support (or a policy
# forbids): the probe reports them; anything else is a broken probe and propagates.
_REFUSALS = {1: "EPERM", 13: "EACCES", 22: "EINVAL", 95: "EOPNOTSUPP", 524: "ENOTSUPP", 3: "ESRCH"}

_iterator_reasons: dict[str, str | None] = {}


def iterator_unavailable_reason(target: str) -> str | None:
    """Why BPF iterators over ``target`` ("task", "bpf_map_elem") cannot be loaded here.

    Loads the one program ``probe_<target>`` of tests/bpf/build/probe_iter.bpf.o (an
    iterator that returns 0). Builds of the same kernel version differ: one refuses every
    TRACING program with EPERM, another loads task iterators and refuses map-element ones.
    """
    if target not in _iterator_reasons:
        import tinybpf

        path = Path(__file__).resolve().parent.parent / "bpf" / "build" / "probe_iter.bpf.o"
        obj = tinybpf.open(path)
        try:
            for name, prog in obj.programs.items():
                prog.autoload = name == f"probe_{target}"
            obj.load()
            _iterator_reasons[target] = None
        except tinybpf.BpfError as e:
            name = _REFUSALS.get(e.errno)
            if name is None:
                raise
            _iterator_reasons[target] = (
                f"this kernel refuses iter/{target} programs: a minimal one fails to load "
                f"with {name}"
            )
        finally:
            obj.close()
    return _iterator_reasons[target]


def map_type_unavailable_reason(name: str) -> str | None:
    """Why maps of type ``name`` (a BpfMapType member name) cannot be created here."""
    import tinybpf

    if tinybpf.probe_map_type(tinybpf.BpfMapType[name]):
        return None
    return f"probe_map_type({name}) is False: this kernel does not create {name} maps"
