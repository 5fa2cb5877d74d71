"""Probes of what this kernel and machine can do, and scaffolding for the attach tests.

The one place a test asks whether the kernel has a feature it needs (program, map and
attach types, helpers, kernel functions, active LSMs, mounts, tools such as iproute2's
netkit support). Each ``*_unavailable_reason()`` returns None when the feature is there and
otherwise the probe's answer, which the test uses as its skip reason::

    _skip_if(fentry_unavailable_reason("__x64_sys_getppid"))

Probes look at the machine (tracefs files, PMUs, mounts, /sys/kernel/btf/vmlinux,
/sys/kernel/security/lsm) or ask libbpf's type probes. Where those are not precise (one
kernel build loads task iterators but refuses TRACING programs in libbpf's probe; a kernel
without CONFIG_FPROBE has the kprobe program type but no kprobe_multi links), the probe
loads the smallest program of that kind from tests/bpf/probe_*.bpf.c and reports how the
kernel refused it. A probe never runs the code under test and interprets its failure.
Answers are cached per process.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

TRACEFS_DIRS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
CGROUP2_CANDIDATES = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))

# syscall numbers of getpid, for the raw tracepoint filter
GETPID_NR = {"x86_64": 39, "aarch64": 172}

# The kernel function the kprobe tests attach to (getppid(): no arguments, never called by
# Python itself), and the one fentry/fexit/fmod_ret tests use: it must be in the kernel's
# BTF, where argument-less syscall wrappers such as __x64_sys_getppid are often missing;
# the getpgid(2) wrapper is there on 5.10 ... 7.x (and error-injectable, for fmod_ret).
_SYSCALL_PREFIX = {"x86_64": "__x64_sys_", "aarch64": "__arm64_sys_"}.get(platform.machine(), "")
KPROBE_TARGET = f"{_SYSCALL_PREFIX}getppid"
FENTRY_TARGET = f"{_SYSCALL_PREFIX}getpgid"
# fmod_ret needs an error-injectable function (none without CONFIG_FUNCTION_ERROR_INJECTION,
# which Debian's kernels lack) or a security_ hook
FMOD_RET_TARGET = "security_file_open"


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


def map_batch_unavailable_reason(name: str) -> str | None:
    """Why BPF_MAP_LOOKUP_BATCH does not work on ``name`` (a BpfMapType member name) maps
    here: asked of a two-entry map of that type."""

    def compute() -> str | None:
        import tinybpf

        reason = map_type_unavailable_reason(name)
        if reason:
            return reason
        m = tinybpf.create_map(tinybpf.BpfMapType[name], 4, 8, 2)
        try:
            m.lookup_batch()
        except tinybpf.BpfError as e:  # a refusal skips; anything else is the test's failure
            if isinstance(e, tinybpf.BpfNotSupportedError) or _refusal(e):
                return f"lookup_batch() on a {name} map: {e}"
            raise
        finally:
            m.close()
        return None

    return _cached(("batch", name), compute)


def unprivileged_fd_use_unavailable_reason() -> str | None:
    """Why a process that dropped root (to nobody) cannot read a map through an fd it
    already holds: kernels that refuse bpf() to unprivileged users outright."""

    def compute() -> str | None:
        code = (
            "import os, tinybpf\n"
            "m = tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, 2)\n"
            "m[b'\\0' * 4] = b'\\0' * 8\n"
            "os.setgroups([]); os.setresgid(65534, 65534, 65534)\n"
            "os.setresuid(65534, 65534, 65534)\n"
            "try:\n"
            "    m.lookup_batch()\n"
            "except tinybpf.BpfError as e:\n"
            "    print(f'{e.errno}: {e}')\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        if out.returncode:  # the probe itself broke: not a kernel answer
            raise RuntimeError(f"the unprivileged fd probe failed: {out.stderr.strip()}")
        answer = out.stdout.strip()
        if answer.startswith(("1:", "13:")):  # EPERM, EACCES: bpf() refused to this user
            return f"a map fd is not usable after dropping to uid 65534: {answer}"
        if answer:
            raise RuntimeError(f"the unprivileged fd probe got an unexpected error: {answer}")
        return None

    return _cached(("unprivileged fd use",), compute)


_cache: dict[tuple[object, ...], str | None] = {}


def _cached(key: tuple[object, ...], compute: Callable[[], str | None]) -> str | None:
    if key not in _cache:
        _cache[key] = compute()
    return _cache[key]


def _refusal(e: BaseException) -> str | None:
    """The errno name when ``e`` is a kernel refusing a feature, else None."""
    import tinybpf

    if isinstance(e, tinybpf.BpfError):
        return _REFUSALS.get(e.errno or 0)
    return None


def prog_type_unavailable_reason(ptype: object, what: str) -> str | None:
    """Why programs of type ``ptype`` (a BpfProgType) cannot be loaded (libbpf's probe)."""
    import tinybpf

    def compute() -> str | None:
        if tinybpf.probe_prog_type(ptype):  # type: ignore[arg-type]
            return None
        name = getattr(ptype, "name", ptype)
        return f"probe_prog_type({name}) is False: this kernel does not load {what}"

    return _cached(("prog_type", ptype), compute)


def helper_unavailable_reason(ptype: object, helper: str) -> str | None:
    """Why programs of type ``ptype`` cannot call ``helper`` (libbpf's helper probe)."""
    import tinybpf

    def compute() -> str | None:
        try:
            if tinybpf.probe_helper(ptype, helper):  # type: ignore[arg-type]
                return None
        except ValueError:  # the name is not in this kernel's enum bpf_func_id
            return f"this kernel has no helper {helper} (not in its BTF's enum bpf_func_id)"
        name = getattr(ptype, "name", ptype)
        return f"probe_helper({name}, {helper}) is False: this kernel lacks that helper there"

    return _cached(("helper", ptype, helper), compute)


def btf_function_unavailable_reason(func: str) -> str | None:
    """Why ``func`` cannot be a BTF attach target (fentry/fexit/fmod_ret): not in the
    kernel's BTF (/sys/kernel/btf/vmlinux), which lists the functions a kernel build kept
    (builds differ: one has __x64_sys_getppid, another only __do_sys_getppid)."""
    vmlinux = Path("/sys/kernel/btf/vmlinux")
    if not vmlinux.exists():
        return f"kernel has no BTF ({vmlinux} is missing: CONFIG_DEBUG_INFO_BTF is off)"

    def compute() -> str | None:
        from tinybpf.btf import Btf, BtfKind

        with Btf.from_vmlinux() as btf:
            try:
                btf.find(func, BtfKind.FUNC)
            except KeyError:
                return f"function {func} is not in this kernel's BTF ({vmlinux})"
        return None

    return _cached(("btf_func", func), compute)


def kallsyms_function_unavailable_reason(func: str) -> str | None:
    """Why ``func`` cannot be kprobed by name: not a text symbol in /proc/kallsyms."""

    def compute() -> str | None:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == func and parts[1] in "tT":
                    return None
        return f"function {func} is not in this kernel's /proc/kallsyms"

    return _cached(("kallsyms", func), compute)


def _probe_program(prog: str, configure: Callable[[Any], None] | None = None) -> str | None:
    """Load program ``prog`` of tests/bpf/build/probe_kernel.bpf.o alone: None when the
    kernel accepts it, else how it refused."""
    import tinybpf

    path = Path(__file__).resolve().parent.parent / "bpf" / "build" / "probe_kernel.bpf.o"
    obj = tinybpf.open(path)
    try:
        for name, p in obj.programs.items():
            p.autoload = name == prog
        if configure is not None:
            configure(obj.program(prog))
        obj.load()
        return None
    except tinybpf.BpfError as e:
        name = _refusal(e)
        if name is None:
            raise
        return f"a minimal {prog.removeprefix('probe_')} program fails to load with {name}"
    finally:
        obj.close()


def kprobe_multi_unavailable_reason(func: str) -> str | None:
    """Why a kprobe_multi link on ``func`` cannot be made here (needs CONFIG_FPROBE)."""

    def compute() -> str | None:
        reason = kprobe_unavailable_reason() or kallsyms_function_unavailable_reason(func)
        if reason:
            return reason
        import tinybpf

        path = Path(__file__).resolve().parent.parent / "bpf" / "build" / "probe_kernel.bpf.o"
        obj = tinybpf.open(path)
        try:
            for name, p in obj.programs.items():
                p.autoload = name == "probe_kprobe_multi"
            obj.load()
            obj.program("probe_kprobe_multi").attach_kprobe_multi(symbols=[func]).destroy()
            return None
        except tinybpf.BpfError as e:
            name = _refusal(e)
            if name is None:
                raise
            return (
                f"this kernel refuses kprobe_multi links: a minimal one on {func} fails "
                f"with {name} (they need Linux 5.18+ built with CONFIG_FPROBE)"
            )
        finally:
            obj.close()

    return _cached(("kprobe_multi", func), compute)


def uprobe_multi_unavailable_reason() -> str | None:
    """Why a uprobe_multi link cannot be made here (Linux 6.6+): a minimal one on libc's
    getpid is attached and destroyed."""
    reason = uprobe_unavailable_reason()
    if reason:
        return reason

    def compute() -> str | None:
        import tinybpf
        from helpers.attach_env import libc_path

        path = Path(__file__).resolve().parent.parent / "bpf" / "build" / "probe_kernel.bpf.o"
        obj = tinybpf.open(path)
        try:
            for name, p in obj.programs.items():
                p.autoload = name == "probe_uprobe_multi"
            obj.load()
            prog = obj.program("probe_uprobe_multi")
            prog.attach_uprobe_multi(libc_path(), "getpid").destroy()
            return None
        except tinybpf.BpfError as e:
            name = _refusal(e)
            if name is None:
                raise
            return (
                f"this kernel refuses uprobe_multi links: a minimal one on libc's getpid "
                f"fails with {name} (they need Linux 6.6+)"
            )
        finally:
            obj.close()

    return _cached(("uprobe_multi",), compute)


def link_type_unavailable_reason(name: str) -> str | None:
    """Why the kernel has no BPF link of type ``name`` (e.g. "PERF_EVENT", 5.15+): its BTF's
    enum bpf_link_type lacks BPF_LINK_TYPE_<name> (libbpf then attaches without a link)."""

    def compute() -> str | None:
        from tinybpf.btf import Btf

        if not Path("/sys/kernel/btf/vmlinux").exists():
            return "kernel has no BTF: cannot tell which link types it has"
        with Btf.from_vmlinux() as btf:
            members = btf.enum("bpf_link_type").__members__
        if f"BPF_LINK_TYPE_{name}" in members:
            return None
        return f"this kernel has no BPF_LINK_TYPE_{name} (its BTF's enum bpf_link_type)"

    return _cached(("link_type", name), compute)


def tcx_unavailable_reason() -> str | None:
    """Why tcx links cannot be made here (Linux 6.6+): a minimal tcx program is attached
    to the loopback device of a network namespace made for the probe, then destroyed."""
    reason = netns_unavailable_reason()
    if reason:
        return reason

    def compute() -> str | None:
        import tinybpf
        from helpers.attach_env import netns

        path = Path(__file__).resolve().parent.parent / "bpf" / "build" / "probe_kernel.bpf.o"
        obj = tinybpf.open(path)
        try:
            for name, p in obj.programs.items():
                p.autoload = name == "probe_tcx"
            obj.load()
            with netns("tbpftcx") as ns, ns.entered():
                obj.program("probe_tcx").attach_tcx("lo").destroy()
            return None
        except tinybpf.BpfError as e:
            name = _refusal(e)
            if name is None:
                raise
            return f"this kernel refuses tcx links: a minimal one fails with {name} (Linux 6.6+)"
        finally:
            obj.close()

    return _cached(("tcx",), compute)


def fentry_unavailable_reason(func: str, kind: str = "fentry") -> str | None:
    """Why ``kind`` ("fentry", "fexit" share it, or "fmod_ret") programs on ``func`` cannot
    be loaded: ``func`` not in the kernel's BTF, or a minimal such program refused."""

    def compute() -> str | None:
        reason = btf_function_unavailable_reason(func)
        if reason:
            return reason
        prog = "probe_fmod_ret" if kind == "fmod_ret" else "probe_fentry"
        answer = _probe_program(prog, lambda p: p.set_attach_target(func))
        return f"this kernel refuses {kind} on {func}: {answer}" if answer else None

    return _cached(("fentry", func, kind), compute)


def tp_btf_unavailable_reason(tracepoint: str = "sys_enter") -> str | None:
    """Why tp_btf programs (BTF-enabled raw tracepoints, BPF_PROG_TYPE_TRACING) on
    ``tracepoint`` cannot be loaded: no ``btf_trace_<tracepoint>`` in the kernel's BTF, or a
    minimal such program refused. libbpf's probe_prog_type(TRACING) is no answer: it loads
    an fentry program, which a build may refuse while it loads tp_btf programs."""

    def compute() -> str | None:
        vmlinux = Path("/sys/kernel/btf/vmlinux")
        if not vmlinux.exists():
            return f"kernel has no BTF ({vmlinux} is missing: CONFIG_DEBUG_INFO_BTF is off)"
        from tinybpf.btf import Btf, BtfKind

        with Btf.from_vmlinux() as btf:
            try:
                btf.find(f"btf_trace_{tracepoint}", BtfKind.TYPEDEF)
            except KeyError:
                return f"raw tracepoint {tracepoint} is not in this kernel's BTF ({vmlinux})"
        answer = _probe_program("probe_tp_btf", lambda p: p.set_attach_target(tracepoint))
        return f"this kernel refuses tp_btf/{tracepoint}: {answer}" if answer else None

    return _cached(("tp_btf", tracepoint), compute)


def active_lsms() -> list[str]:
    """The active LSMs (/sys/kernel/security/lsm; [] when securityfs is not mounted)."""
    try:
        return Path("/sys/kernel/security/lsm").read_text().strip().split(",")
    except OSError:
        return []


def lsm_load_unavailable_reason() -> str | None:
    """Why BPF LSM programs cannot be loaded (whether they run is bpf_lsm_inactive_reason)."""

    def compute() -> str | None:
        answer = _probe_program("probe_lsm")
        return f"this kernel refuses LSM programs: {answer}" if answer else None

    return _cached(("lsm_load",), compute)


def bpf_lsm_inactive_reason() -> str | None:
    """Why loaded LSM programs would never run: 'bpf' is not an active LSM."""
    lsms = active_lsms()
    if not lsms:
        return "/sys/kernel/security/lsm is unreadable (securityfs not mounted?)"
    if "bpf" in lsms:
        return None
    return (
        f"'bpf' is not an active LSM ({','.join(lsms)}): the kernel was booted without bpf in lsm="
    )


def lsm_unavailable_reason() -> str | None:
    """Why an LSM program cannot be loaded and seen running here."""
    return lsm_load_unavailable_reason() or bpf_lsm_inactive_reason()


def struct_ops_unavailable_reason(struct: str, link: bool = True) -> str | None:
    """Why a struct_ops map implementing kernel struct ``struct`` cannot be registered
    (``link``: as a BPF link, SEC(".struct_ops.link"), which needs Linux 6.4+)."""
    import tinybpf

    reason = prog_type_unavailable_reason(tinybpf.BpfProgType.STRUCT_OPS, "struct_ops programs")
    if reason:
        return reason

    def compute() -> str | None:
        from tinybpf.btf import Btf, BtfKind

        # BPF_LINK_TYPE_STRUCT_OPS is older than struct_ops links: the kernel's
        # struct bpf_struct_ops_link came with them (6.4)
        wanted = [struct, "bpf_struct_ops_link"] if link else [struct]
        with Btf.from_vmlinux() as btf:
            for name in wanted:
                try:
                    btf.find(name, BtfKind.STRUCT)
                except KeyError:
                    if name == struct:
                        return f"struct {struct} is not in this kernel's BTF"
                    return (
                        "this kernel has no struct_ops links (.struct_ops.link; no struct "
                        "bpf_struct_ops_link in its BTF: Linux 6.4+)"
                    )
        return None

    return _cached(("struct_ops", struct, link), compute)


def netkit_unavailable_reason() -> str | None:
    """Why a netkit device cannot be made: no netns/veth, or iproute2 or the kernel lacks
    netkit ('ip link add type netkit' in a namespace made for the probe)."""
    reason = netns_unavailable_reason()
    if reason:
        return reason

    def compute() -> str | None:
        from helpers.attach_env import netns

        with netns("tbpfnk") as ns:
            # the command the tests use: iproute2 without netkit support fails on "peer"
            cmd = ["ip", "-n", ns.name, "link", "add", "nkp", "type", "netkit"]
            r = subprocess.run(
                [*cmd, "peer", "name", "nkq"],
                capture_output=True,
                text=True,
            )
        if r.returncode != 0:
            ver = subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.strip()
            return f"'ip link add type netkit' failed ({ver}): {r.stderr.strip()}"
        return None

    return _cached(("netkit",), compute)


def bpf_token_unavailable_reason() -> str | None:
    """Why BPF tokens cannot be created here: the kernel lacks BPF_TOKEN_CREATE (Linux
    6.9+). Asked through libbpf's bpf_token_create() with an invalid fd: a kernel with
    tokens answers EBADF, one without EINVAL (an unknown bpf() command)."""
    import errno

    def compute() -> str | None:
        from tinybpf._core import NULL, lib

        ret = int(lib.bpf_token_create(-1, NULL))
        if ret == -errno.EBADF:
            return None
        code = errno.errorcode.get(-ret, str(ret))
        return (
            f"kernel {platform.release()} has no BPF tokens: BPF_TOKEN_CREATE answered "
            f"{code}, not EBADF (tokens came in Linux 6.9)"
        )

    return _cached(("bpf_token",), compute)


def userns_unavailable_reason() -> str | None:
    """Why a child process cannot get its own user and mount namespace here (None when it
    can): tried in a child (unshare(CLONE_NEWUSER | CLONE_NEWNS))."""

    def compute() -> str | None:
        import sys

        code = (
            "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
            "r = libc.unshare(0x10000000 | 0x00020000); "
            "print(os.strerror(ctypes.get_errno()) if r else 'ok')"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        answer = r.stdout.strip() or r.stderr.strip()[-200:]
        if answer == "ok":
            return None
        return f"unshare(CLONE_NEWUSER | CLONE_NEWNS) failed here: {answer}"

    return _cached(("userns",), compute)


def feature_report(progress: Callable[[str], None] | None = None) -> dict[str, str | None]:
    """Every probe's answer (None = available), for the kernel matrix's table."""
    import tinybpf

    T = tinybpf.BpfProgType
    checks: dict[str, Callable[[], str | None]] = {
        "kprobe": kprobe_unavailable_reason,
        "kprobe_multi": lambda: kprobe_multi_unavailable_reason(KPROBE_TARGET),
        "uprobe": uprobe_unavailable_reason,
        "uprobe_multi": uprobe_multi_unavailable_reason,
        "fentry": lambda: fentry_unavailable_reason(FENTRY_TARGET),
        "fmod_ret": lambda: fentry_unavailable_reason(FMOD_RET_TARGET, "fmod_ret"),
        "tp_btf": tp_btf_unavailable_reason,
        "lsm (loads)": lsm_load_unavailable_reason,
        "lsm (active)": bpf_lsm_inactive_reason,
        "iter/task": lambda: iterator_unavailable_reason("task"),
        "iter/bpf_map_elem": lambda: iterator_unavailable_reason("bpf_map_elem"),
        "struct_ops": lambda: struct_ops_unavailable_reason("tcp_congestion_ops"),
        "freplace": lambda: prog_type_unavailable_reason(T.EXT, "freplace programs"),
        "sockmap links": lambda: link_type_unavailable_reason("SOCKMAP"),
        "netkit": netkit_unavailable_reason,
        "tcx": tcx_unavailable_reason,
        "netfilter": lambda: prog_type_unavailable_reason(T.NETFILTER, "netfilter programs"),
        "sk_lookup": lambda: prog_type_unavailable_reason(T.SK_LOOKUP, "sk_lookup programs"),
        "ringbuf": lambda: map_type_unavailable_reason("RINGBUF"),
        "arena": lambda: map_type_unavailable_reason("ARENA"),
        "bpf token": bpf_token_unavailable_reason,
        "user namespaces": userns_unavailable_reason,
    }
    out: dict[str, str | None] = {}
    for name, check in checks.items():
        if progress is not None:
            progress(name)
        try:
            out[name] = check()
        except Exception as e:  # a broken probe is reported, not hidden
            out[name] = f"probe error: {type(e).__name__}: {e}"
    return out


def mmapable_array_unavailable_reason() -> str | None:
    """Why an ARRAY map created with BPF_F_MMAPABLE cannot be mapped into memory here."""

    def compute() -> str | None:
        import mmap

        import tinybpf

        try:
            m = tinybpf.create_map(tinybpf.BpfMapType.ARRAY, 4, 8, 4, flags=1 << 10)
        except tinybpf.BpfError as e:
            return f"this kernel does not create BPF_F_MMAPABLE arrays ({e.strerror})"
        try:
            mmap.mmap(m.fd, mmap.PAGESIZE, mmap.MAP_SHARED).close()
        except OSError as e:
            return f"this kernel does not map BPF_F_MMAPABLE arrays ({e.strerror})"
        finally:
            m.close()
        return None

    return _cached(("mmapable_array",), compute)
