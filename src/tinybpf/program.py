"""BpfProgram: one program of a BPF object, and the ways to attach it."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinybpf._ffi import NULL, capture_log, check_int, check_ptr, cstr, ffi, lib, new_opts, pystr
from tinybpf._types import BpfAttachType, BpfProgType, ProgramInfo
from tinybpf.errors import BpfClosedError, BpfError, BpfPhaseError
from tinybpf.link import BpfLink

if TYPE_CHECKING:
    from tinybpf.object import BpfObject

__all__ = ["BpfProgram", "TestRunResult"]


@dataclass(frozen=True)
class TestRunResult:
    """Result of :meth:`BpfProgram.test_run`."""

    __test__ = False  # not a pytest test class

    retval: int
    data: bytes
    duration_ns: int
    ctx: bytes = b""


class BpfProgram:
    """A program of a :class:`BpfObject`. Obtained from ``obj.programs`` / ``obj.program()``.

    Example::

        prog = obj.program("handle_exec")
        link = prog.attach()          # auto-attach from the SEC() name
    """

    def __init__(self, prog_ptr: Any, obj: BpfObject) -> None:
        self._ptr = prog_ptr
        self._obj = obj
        self._name = pystr(lib.bpf_program__name(prog_ptr))
        self._section = pystr(lib.bpf_program__section_name(prog_ptr))

    # --- state checks -------------------------------------------------------------------
    def _p(self) -> Any:
        if self._obj._closed:
            raise BpfClosedError("Cannot use program after BpfObject is closed")
        return self._ptr

    def _before_load(self, what: str) -> Any:
        p = self._p()
        if self._obj._loaded:
            raise BpfPhaseError(
                f"cannot set {what} of program '{self._name}' after load (open phase only)"
            )
        return p

    # --- properties ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def section(self) -> str:
        return self._section

    @property
    def type(self) -> BpfProgType:
        return BpfProgType(lib.bpf_program__type(self._p()))

    @type.setter
    def type(self, value: BpfProgType | int) -> None:
        p = self._before_load("type")
        check_int(lib.bpf_program__set_type(p, int(value)), f"set type of '{self._name}' failed")

    @property
    def expected_attach_type(self) -> BpfAttachType:
        return BpfAttachType(lib.bpf_program__expected_attach_type(self._p()))

    @expected_attach_type.setter
    def expected_attach_type(self, value: BpfAttachType | int) -> None:
        p = self._before_load("expected_attach_type")
        check_int(
            lib.bpf_program__set_expected_attach_type(p, int(value)),
            f"set expected attach type of '{self._name}' failed",
        )

    @property
    def autoload(self) -> bool:
        """Whether ``load()`` loads this program (settable before load)."""
        return bool(lib.bpf_program__autoload(self._p()))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        p = self._before_load("autoload")
        check_int(lib.bpf_program__set_autoload(p, bool(value)), "set autoload failed")

    @property
    def log_level(self) -> int:
        return int(lib.bpf_program__log_level(self._p()))

    @log_level.setter
    def log_level(self, value: int) -> None:
        p = self._before_load("log_level")
        check_int(lib.bpf_program__set_log_level(p, int(value)), "set log level failed")

    def set_attach_target(self, target: str, attach_prog_fd: int = 0) -> None:
        """Set the BTF attach target (function name) of fentry/fexit/freplace/tp_btf programs."""
        p = self._before_load("attach target")
        check_int(
            lib.bpf_program__set_attach_target(p, attach_prog_fd, cstr(target)),
            f"set attach target '{target}' of '{self._name}' failed",
        )

    @property
    def insn_count(self) -> int:
        return int(lib.bpf_program__insn_cnt(self._p()))

    @property
    def info(self) -> ProgramInfo:
        return ProgramInfo(name=self._name, section=self._section, type=self.type)

    @property
    def fd(self) -> int:
        """The program's fd (after load)."""
        fd = int(lib.bpf_program__fd(self._p()))
        if fd < 0:
            if not self._obj._loaded:
                raise BpfPhaseError(f"program '{self._name}' has no fd before load()")
            raise BpfError(f"program '{self._name}' has no fd (autoload was off)", -fd)
        return fd

    def __repr__(self) -> str:
        try:
            t = self.type.name
        except BpfClosedError:
            t = "?"
        return f"<BpfProgram '{self._name}' type={t}>"

    # --- attach -------------------------------------------------------------------------
    def _link(self, fn: Any, description: str, message: str, *args: Any) -> BpfLink:
        p = self._p()
        if not self._obj._loaded:
            raise BpfPhaseError(f"cannot attach program '{self._name}' before load()")
        with capture_log() as log:
            ptr = fn(p, *args)
            err = ffi.errno
        if ptr == NULL:
            ffi.errno = err
        check_ptr(ptr, message, log)
        return BpfLink(ptr, description, self)

    def attach(self) -> BpfLink:
        """Attach using the SEC() name (libbpf auto-attach)."""
        return self._link(
            lib.bpf_program__attach,
            f"auto-attach {self._name}",
            f"attach program '{self._name}' failed",
        )

    def attach_kprobe(self, func_name: str, retprobe: bool = False) -> BpfLink:
        kind = "kretprobe" if retprobe else "kprobe"
        return self._link(
            lib.bpf_program__attach_kprobe,
            f"{kind}:{func_name}",
            f"attach {kind} '{func_name}' failed",
            bool(retprobe),
            cstr(func_name),
        )

    def attach_kretprobe(self, func_name: str) -> BpfLink:
        return self.attach_kprobe(func_name, retprobe=True)

    def attach_tracepoint(self, category: str, name: str) -> BpfLink:
        return self._link(
            lib.bpf_program__attach_tracepoint,
            f"tracepoint:{category}/{name}",
            f"attach tracepoint '{category}/{name}' failed",
            cstr(category),
            cstr(name),
        )

    def attach_raw_tracepoint(self, name: str) -> BpfLink:
        return self._link(
            lib.bpf_program__attach_raw_tracepoint,
            f"raw_tracepoint:{name}",
            f"attach raw tracepoint '{name}' failed",
            cstr(name),
        )

    def attach_uprobe(
        self,
        binary_path: str | os.PathLike[str],
        offset: int = 0,
        pid: int = -1,
        retprobe: bool = False,
    ) -> BpfLink:
        """Attach to ``binary_path`` at file ``offset`` (pid -1: every process)."""
        kind = "uretprobe" if retprobe else "uprobe"
        return self._link(
            lib.bpf_program__attach_uprobe,
            f"{kind}:{binary_path}+{offset}",
            f"attach {kind} '{binary_path}+{offset}' failed",
            bool(retprobe),
            int(pid),
            cstr(binary_path),
            int(offset),
        )

    def attach_uretprobe(
        self, binary_path: str | os.PathLike[str], offset: int = 0, pid: int = -1
    ) -> BpfLink:
        return self.attach_uprobe(binary_path, offset, pid, retprobe=True)

    def attach_xdp(self, interface: str | int) -> BpfLink:
        """Attach an XDP program to a network interface (name or index) as a bpf_link."""
        if isinstance(interface, str):
            ifindex = socket.if_nametoindex(interface)
            desc = f"xdp:{interface}"
        else:
            ifindex = int(interface)
            desc = f"xdp:if{ifindex}"
        return self._link(
            lib.bpf_program__attach_xdp, desc, f"attach XDP to '{interface}' failed", ifindex
        )

    def attach_cgroup(self, cgroup: str | os.PathLike[str] | int) -> BpfLink:
        """Attach to a cgroup v2 directory (path) or an open cgroup fd (not closed)."""
        if isinstance(cgroup, int):
            return self._link(
                lib.bpf_program__attach_cgroup,
                f"cgroup:fd{cgroup}",
                f"attach cgroup fd {cgroup} failed",
                cgroup,
            )
        fd = os.open(Path(cgroup), os.O_RDONLY)
        try:
            return self._link(
                lib.bpf_program__attach_cgroup,
                f"cgroup:{cgroup}",
                f"attach cgroup '{cgroup}' failed",
                fd,
            )
        finally:
            os.close(fd)

    # --- test run -----------------------------------------------------------------------
    def test_run(
        self,
        data: bytes = b"",
        ctx: bytes | None = None,
        repeat: int = 1,
        *,
        data_out_size: int | None = None,
        ctx_out_size: int | None = None,
        flags: int = 0,
        cpu: int = 0,
    ) -> TestRunResult:
        """Run the program once (or ``repeat`` times) in the kernel (BPF_PROG_TEST_RUN).

        Returns the program's return value, the output data and the average duration.
        """
        fd = self.fd
        out_size = data_out_size if data_out_size is not None else (len(data) + 256 if data else 0)
        data_out = ffi.new("char[]", out_size) if out_size else NULL
        cout_size = ctx_out_size if ctx_out_size is not None else (len(ctx) if ctx else 0)
        ctx_out = ffi.new("char[]", cout_size) if cout_size else NULL
        opts = new_opts(
            "bpf_test_run_opts",
            data_in=ffi.from_buffer(data) if data else NULL,
            data_size_in=len(data),
            data_out=data_out,
            data_size_out=out_size,
            ctx_in=ffi.from_buffer(ctx) if ctx else NULL,
            ctx_size_in=len(ctx) if ctx else 0,
            ctx_out=ctx_out,
            ctx_size_out=cout_size,
            repeat=repeat,
            flags=flags,
            cpu=cpu,
        )
        with capture_log() as log:
            ret = lib.bpf_prog_test_run_opts(fd, opts.ptr)
        check_int(ret, f"test_run of program '{self._name}' failed", log)
        o = opts.ptr
        out = bytes(ffi.buffer(data_out, o.data_size_out)) if out_size else b""
        cout = bytes(ffi.buffer(ctx_out, o.ctx_size_out)) if cout_size else b""
        return TestRunResult(int(o.retval), out, int(o.duration), cout)
