"""What is loaded in the kernel: programs, maps, links and BTF objects; feature probes.

Example::

    for info in tinybpf.loaded_programs():
        print(info.id, info.type.name, info.name)
    if tinybpf.probe_map_type(tinybpf.BpfMapType.ARENA):
        ...
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._core import call, check_int, cstr, errnos, fail, fd_kind, ids, kernelcalls
from ._kernel_info import (
    BtfInfo,
    KernelMapInfo,
    KernelProgramInfo,
)
from ._kernel_info import (
    btf_info_by_fd as btf_info_by_fd,
)
from ._kernel_info import (
    map_info_by_fd as map_info_by_fd,
)
from ._kernel_info import (
    program_info_by_fd as program_info_by_fd,
)
from ._pin import check_pin_path
from ._types import BpfMapType, BpfProgType, enum_arg
from .errors import BpfClosedError, BpfError
from .link import BpfLink, LinkInfo, link_info_by_fd, open_pinned_link

# Kept light (`tinybpf ps` imports this module): the map model, BTF and test_run are
# imported by the functions that use them.
if TYPE_CHECKING:
    from .map import BpfMap, open_map_by_id

__all__ = [
    "BtfInfo",
    "KernelMapInfo",
    "KernelProgram",
    "KernelProgramInfo",
    "PerfEvent",
    "enable_stats",
    "loaded_btfs",
    "loaded_links",
    "loaded_maps",
    "loaded_programs",
    "open_link_by_id",
    "open_map_by_id",
    "open_pinned",
    "open_pinned_program",
    "open_program_by_id",
    "perf_event_open",
    "perf_event_open_cpu_clock",
    "pinned_info",
    "probe_helper",
    "probe_map_type",
    "probe_prog_type",
]


def __getattr__(name: str) -> Any:
    if name == "open_map_by_id":  # tinybpf.map's, imported on first use
        from .map import open_map_by_id

        return open_map_by_id
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _each(kind: str, describe: Callable[[int], Any]) -> Iterator[Any]:
    for obj_id in ids.ids(kind):
        fd = ids.try_fd_by_id(kind, obj_id)
        if fd < 0:
            continue  # went away meanwhile
        try:
            yield describe(fd)
        finally:
            os.close(fd)


def loaded_programs() -> list[KernelProgramInfo]:
    """Every BPF program loaded in the kernel.

    Example::

        for p in tinybpf.loaded_programs():
            print(p.id, p.type.name, p.name, p.run_count)
    """
    return list(_each("prog", program_info_by_fd))


def loaded_maps() -> list[KernelMapInfo]:
    """Every BPF map in the kernel.

    Example::

        ringbufs = [m.name for m in tinybpf.loaded_maps() if m.type == tinybpf.BpfMapType.RINGBUF]
    """
    return list(_each("map", map_info_by_fd))


def loaded_links() -> list[LinkInfo]:
    """Every BPF link in the kernel.

    Example::

        for li in tinybpf.loaded_links():
            print(li.id, li.type.name, li.prog_id)
    """
    return list(_each("link", link_info_by_fd))


def loaded_btfs() -> list[BtfInfo]:
    """Every BTF object in the kernel (vmlinux, modules, programs').

    Example::

        vmlinux = [b for b in tinybpf.loaded_btfs() if b.kernel and b.name == "vmlinux"]
    """
    return list(_each("btf", btf_info_by_fd))


class KernelProgram:
    """A loaded program opened by id or from a pin; owns its fd.

    Supports ``info``, ``test_run()``, ``pin()`` and ``close()``.

    Example::

        with tinybpf.open_program_by_id(prog_id) as kp:
            print(kp.info.name, kp.info.type.name)
            kp.pin("/sys/fs/bpf/my_prog")
    """

    def __init__(self, fd: int, description: str) -> None:
        self._fd = fd
        self._description = description

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise BpfClosedError(f"program ({self._description}) is closed")
        return self._fd

    @property
    def info(self) -> KernelProgramInfo:
        """The same as :meth:`kernel_info` (a property of the first release, kept)."""
        return self.kernel_info()

    def kernel_info(self) -> KernelProgramInfo:
        """The kernel's information about the program (a syscall)."""
        return program_info_by_fd(self.fd)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def test_run(self, data: bytes = b"", ctx: bytes | None = None, repeat: int = 1) -> Any:
        from ._program_setup import _test_run

        return _test_run(self.fd, self._description, data, ctx, repeat, prog_type=self.info.type)

    def pin(self, path: str) -> None:
        call(
            "bpf_obj_pin",
            self.fd,
            cstr(check_pin_path(path, f"pin program to '{path}'")),
            what=f"pin program to '{path}'",
        )

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> KernelProgram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        if self._fd < 0:
            return f"<KernelProgram {self._description} closed>"
        i = self.info
        return f"<KernelProgram id={i.id} '{i.name}' type={i.type.name}>"


def open_program_by_id(prog_id: int) -> KernelProgram:
    """Open a loaded program by its kernel id (see :func:`loaded_programs`).

    Example::

        prog_id = tinybpf.loaded_programs()[0].id
        with tinybpf.open_program_by_id(prog_id) as kp:
            print(kp.info.name)
    """
    return KernelProgram(
        ids.fd_by_id("prog", prog_id, f"open program id {prog_id}"), f"id {prog_id}"
    )


def open_pinned_program(path: str) -> KernelProgram:
    """Open a program pinned in a BPF filesystem.

    Example::

        with tinybpf.open_pinned_program("/sys/fs/bpf/my_prog") as kp:
            print(kp.info.id, kp.info.name)
    """
    fd = int(call("bpf_obj_get", cstr(path), what=f"open pinned program '{path}'"))
    kind = fd_kind(fd)
    if kind != "prog":
        os.close(fd)
        raise BpfError(
            f"pinned object at '{path}' is not a BPF program (it is a {kind or 'non-BPF'} object)",
            _errno.EINVAL,
        )
    return KernelProgram(fd, f"pinned:{path}")


def _pinned_fd(path: str | os.PathLike[str], what: str) -> tuple[int, str]:
    """(fd, kind) of the object pinned at ``path`` (kind ``"prog"``, ``"map"``, ``"link"``);
    anything else pinned there raises (the fd closed)."""
    p = os.fspath(path)
    fd = int(call("bpf_obj_get", cstr(p), what=f"{what} '{p}'"))
    kind = fd_kind(fd)
    if kind not in ("prog", "map", "link"):
        os.close(fd)
        raise BpfError(
            f"{what} '{p}' failed: it is not a BPF program, map or link "
            f"(it is a {kind or 'non-BPF'} object)",
            _errno.EINVAL,
        )
    return fd, kind


def pinned_info(
    path: str | os.PathLike[str],
) -> KernelProgramInfo | KernelMapInfo | LinkInfo:
    """What the kernel says about the program, map or link pinned at ``path``: a
    :class:`KernelProgramInfo`, :class:`KernelMapInfo` or :class:`LinkInfo` (its type says
    which; ``id`` is the object's id), read without opening a handle (``bpftool map show
    pinned PATH``). A missing path raises :class:`~tinybpf.BpfFileNotFoundError`;
    a file outside a BPF filesystem :class:`~tinybpf.BpfError`.

    Example::

        info = tinybpf.pinned_info("/sys/fs/bpf/counts")
        if isinstance(info, tinybpf.KernelMapInfo):
            print("map", info.id, info.name, info.max_entries)
    """
    fd, kind = _pinned_fd(path, "read pinned object")
    try:
        if kind == "prog":
            return program_info_by_fd(fd)
        if kind == "map":
            return map_info_by_fd(fd)
        return link_info_by_fd(fd)
    finally:
        os.close(fd)


def open_pinned(path: str | os.PathLike[str]) -> BpfMap[Any, Any] | KernelProgram | BpfLink:
    """Open whatever is pinned at ``path``: a map as a standalone :class:`~tinybpf.BpfMap`
    (as :func:`~tinybpf.open_pinned_map`), a program as a :class:`KernelProgram` (as
    :func:`open_pinned_program`), a link as a :class:`~tinybpf.BpfLink` (as
    :func:`~tinybpf.open_pinned_link`). Each owns its handle: ``close()`` it, or use it
    in ``with``. :func:`pinned_info` only describes the object.

    Example::

        with tinybpf.open_pinned("/sys/fs/bpf/counts") as m:
            if isinstance(m, tinybpf.BpfMap):
                print(dict(m.items()))
    """
    p = os.fspath(path)
    fd, kind = _pinned_fd(p, "open pinned object")
    if kind == "prog":
        return KernelProgram(fd, f"pinned:{p}")
    if kind == "map":
        from .map import _map_from_fd

        return _map_from_fd(fd, p, pinned=True)
    os.close(fd)  # libbpf opens the link from its path (bpf_link__open)
    return open_pinned_link(p)


def open_link_by_id(link_id: int) -> LinkInfo:
    """The info of a link by id (links opened by id cannot be re-owned as handles).

    Example::

        info = tinybpf.open_link_by_id(link_id)
        print(info.type.name, info.prog_id)
    """
    fd = ids.fd_by_id("link", link_id, f"open link id {link_id}")
    try:
        return link_info_by_fd(fd)
    finally:
        os.close(fd)


class _StatsHandle:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> _StatsHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def enable_stats() -> _StatsHandle:
    """Turn on run-time statistics (run count and time of every program) while the
    returned handle is open.

    Example::

        with tinybpf.enable_stats():
            time.sleep(1)
            print(obj.program("handle_exec").kernel_info().run_time_ns)
    """
    fd = kernelcalls.enable_run_time_stats()
    if fd < 0:
        check_int(fd, "enable BPF run-time statistics failed")
    return _StatsHandle(fd)


# --- feature probes -------------------------------------------------------------------------


def _probe(ret: int, what: str) -> bool:
    if ret == 1:
        return True
    if ret == 0:
        return False
    if errnos.failed_with(ret, errnos.OPNOTSUPP):
        return False
    fail(ret, f"probe of {what} failed")


def probe_prog_type(prog_type: BpfProgType | str | int) -> bool:
    """Whether the running kernel can load programs of this type (a BpfProgType, its name
    in any case such as ``"xdp"`` or ``"BPF_PROG_TYPE_XDP"``, or its int).

    Example::

        if not tinybpf.probe_prog_type("lsm"):   # or tinybpf.BpfProgType.LSM
            print("this kernel cannot load BPF LSM programs")
    """
    t = enum_arg(BpfProgType, prog_type, "program type")
    return _probe(kernelcalls.probe_prog_type(int(t)), f"program type {t.name}")


def probe_map_type(map_type: BpfMapType | str | int) -> bool:
    """Whether the running kernel can create maps of this type (a BpfMapType, its name in
    any case such as ``"ringbuf"``, or its int).

    Example::

        use_ringbuf = tinybpf.probe_map_type(tinybpf.BpfMapType.RINGBUF)
    """
    t = enum_arg(BpfMapType, map_type, "map type")
    return _probe(kernelcalls.probe_map_type(int(t)), f"map type {t.name}")


def probe_helper(prog_type: BpfProgType | str | int, helper: str | int) -> bool:
    """Whether programs of ``prog_type`` may call ``helper`` (id, or name such as
    ``"bpf_loop"`` / ``"loop"`` / ``"BPF_FUNC_loop"``, resolved through the kernel's BTF).

    Example::

        if tinybpf.probe_helper("kprobe", "bpf_loop"):
            ...
    """
    t = enum_arg(BpfProgType, prog_type, "program type")
    from .btf import kernel_enum_value

    hid = kernel_enum_value("bpf_func_id", helper, "BPF helper", ("BPF_FUNC_", "BPF_"))
    return _probe(kernelcalls.probe_helper(int(t), hid), f"helper {helper} for {t.name}")


# --- perf events ----------------------------------------------------------------------------


class PerfEvent:
    """An open perf event fd (per CPU). Pass ``fd`` to ``BpfProgram.attach_perf_event``,
    which takes ownership of it; otherwise ``close()`` it.

    Example::

        ev = tinybpf.perf_event_open(1, 0, cpu=0, sample_freq=99)   # software cpu-clock
        link = prog.attach_perf_event(ev.detach_fd())   # the link now owns the fd
    """

    def __init__(self, fd: int, cpu: int) -> None:
        self.fd = fd
        self.cpu = cpu

    def detach_fd(self) -> int:
        fd, self.fd = self.fd, -1
        return fd

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PerfEvent fd={self.fd} cpu={self.cpu}>"


def perf_event_open(
    type: str | int,
    config: str | int,
    *,
    cpu: int = -1,
    pid: int = -1,
    sample_period: int = 0,
    sample_freq: int = 0,
) -> PerfEvent:
    """perf_event_open(2) for one CPU (or pid). Returns a :class:`PerfEvent`.

    ``type`` is a ``PERF_TYPE_*`` value or its name (``"software"``, ``"PERF_TYPE_HARDWARE"``,
    any case); ``config`` an int, or for software and hardware events a ``PERF_COUNT_SW_*`` /
    ``PERF_COUNT_HW_*`` name (``"cpu_clock"``, ``"cpu_cycles"``). Names are read from the
    kernel's BTF.

    Example::

        ev = tinybpf.perf_event_open("software", "cpu_clock", cpu=0, sample_freq=99)  # or 1, 0
        link = prog.attach_perf_event(ev.detach_fd())
    """
    from .btf import kernel_enum_value

    type = kernel_enum_value("perf_type_id", type, "perf event type", ("PERF_TYPE_",))
    config = _perf_config(type, config)
    use_freq = sample_freq > 0
    fd = kernelcalls.perf_event_open(
        type, config, pid, cpu, sample_freq if use_freq else sample_period, use_freq
    )
    if fd < 0:
        fail(fd, f"perf_event_open(type={type}, cpu={cpu}) failed")
    return PerfEvent(fd, cpu)


def _perf_config(perf_type: int, config: Any) -> int:
    """perf_event_attr.config: an int, or a PERF_COUNT_HW_* / PERF_COUNT_SW_* name."""
    if type(config) is int:
        return config
    from .btf import kernel_enum, kernel_enum_value

    types = kernel_enum("perf_type_id", "perf event config", config)
    names = {
        int(types.PERF_TYPE_HARDWARE): ("perf_hw_id", "PERF_COUNT_HW_"),
        int(types.PERF_TYPE_SOFTWARE): ("perf_sw_ids", "PERF_COUNT_SW_"),
    }
    if perf_type not in names:
        raise ValueError(
            f"perf event config {config!r}: names are known for hardware and software events "
            f"only; give the number for perf event type {perf_type}"
        )
    enum_name, prefix = names[perf_type]
    return kernel_enum_value(enum_name, config, "perf event config", (prefix,))


def perf_event_open_cpu_clock(freq: int = 99, cpus: list[int] | None = None) -> list[PerfEvent]:
    """A CPU-clock sampling event on each CPU (``freq`` samples per second).

    Example::

        events = tinybpf.perf_event_open_cpu_clock(freq=49)
        links = [prog.attach_perf_event(ev.detach_fd()) for ev in events]
    """
    from .map import possible_cpus

    out: list[PerfEvent] = []
    try:
        for cpu in cpus if cpus is not None else _online_cpus(possible_cpus()):
            out.append(
                perf_event_open(
                    kernelcalls.PERF_TYPE_SOFTWARE,
                    kernelcalls.PERF_COUNT_SW_CPU_CLOCK,
                    cpu=cpu,
                    sample_freq=freq,
                )
            )
    except BaseException:
        for ev in out:
            ev.close()
        raise
    return out


def _online_cpus(n: int) -> list[int]:
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return list(range(n))
    cpus: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            cpus.extend(range(int(a), int(b) + 1))
        elif part:
            cpus.append(int(part))
    return cpus
