"""The state of a program of a BPF object: its open-phase settings, fd, pins, verifier
logs and test runs (``BpfProgram`` adds the attach family, tinybpf.attach)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._core import call, capture_log, check_int, cstr, errnos, progcalls
from ._core.owner import Borrower, unguarded
from ._diagnose import (
    explain_trace_target,
)
from ._kernel_info import KernelProgramInfo, program_info_by_fd
from ._pin import check_pin_path
from ._types import BpfAttachType, BpfProgType, ProgramInfo, enum_arg
from .errors import BpfClosedError, BpfError, BpfPhaseError

if TYPE_CHECKING:
    from ._protocols import ObjectLike

__all__ = ["ProgramSetup", "TestRunResult"]

_S = TypeVar("_S", bound="ProgramSetup")


@dataclass(frozen=True)
class TestRunResult:
    """Result of :meth:`BpfProgram.test_run`.

    Example::

        r = obj.program("xdp_pass").test_run(bytes(64), repeat=100)
        print(r.retval, r.duration_ns, len(r.data))
    """

    __test__ = False  # not a pytest test class

    retval: int
    data: bytes
    duration_ns: int
    ctx: bytes = b""


class ProgramSetup(Borrower):
    """What a :class:`~tinybpf.BpfProgram` is apart from how it attaches."""

    # raw fd / pointer helpers (see tinybpf._core.owner.Borrower)
    _handles = frozenset({"fd", "_before_load"})

    def __init__(self, prog_ptr: Any, obj: ObjectLike) -> None:
        self._ptr = prog_ptr
        self._obj = obj
        self._guard = obj._guard
        self._name = progcalls.prog_name(prog_ptr)
        self._section = progcalls.prog_section(prog_ptr)

    @classmethod
    def closed_stub(cls: type[_S], name: str, obj: ObjectLike) -> _S:
        """The wrapper of a program first asked for after its object was closed."""
        self = cls.__new__(cls)
        self._ptr = None
        self._obj = obj
        self._guard = obj._guard
        self._name = name
        self._section = ""
        return self

    # --- state checks -------------------------------------------------------------------
    def _p(self) -> Any:
        if self._obj._closed:
            raise BpfClosedError("Cannot use program after BpfObject is closed")
        if not self._guard.held():
            raise unguarded("BpfProgram._p()")
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

    def _snapshot(self) -> None:
        """Cache the metadata so it stays readable after the object is closed."""
        if not self._obj._closed:
            self._type = BpfProgType(progcalls.prog_type(self._ptr))

    @property
    def type(self) -> BpfProgType:
        if self._obj._closed and hasattr(self, "_type"):
            return self._type
        return BpfProgType(progcalls.prog_type(self._p()))

    @type.setter
    def type(self, value: BpfProgType | str | int) -> None:
        p = self._before_load("type")
        value = enum_arg(BpfProgType, value, "program type")
        call("bpf_program__set_type", p, int(value), what=f"set type of '{self._name}'")

    @property
    def expected_attach_type(self) -> BpfAttachType:
        return BpfAttachType(progcalls.expected_attach_type(self._p()))

    @expected_attach_type.setter
    def expected_attach_type(self, value: BpfAttachType | str | int) -> None:
        p = self._before_load("expected_attach_type")
        value = enum_arg(BpfAttachType, value, "attach type")
        call(
            "bpf_program__set_expected_attach_type",
            p,
            int(value),
            what=f"set expected attach type of '{self._name}'",
        )

    @property
    def autoload(self) -> bool:
        """Whether ``load()`` loads this program (settable before load)."""
        return progcalls.autoload(self._p())

    @autoload.setter
    def autoload(self, value: bool) -> None:
        p = self._before_load("autoload")
        call("bpf_program__set_autoload", p, bool(value), what="set autoload")

    @property
    def autoattach(self) -> bool:
        """Whether :meth:`BpfObject.attach_all` attaches this program (default True;
        settable in both phases)."""
        return progcalls.autoattach(self._p())

    @autoattach.setter
    def autoattach(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"autoattach must be a bool, not {type(value).__name__}")
        progcalls.set_autoattach(self._p(), value)

    @property
    def log_level(self) -> int:
        return progcalls.log_level(self._p())

    @log_level.setter
    def log_level(self, value: int) -> None:
        p = self._before_load("log_level")
        call("bpf_program__set_log_level", p, int(value), what="set log level")

    def set_attach_target(self, target: str, attach_prog_fd: int = 0) -> None:
        """Set the BTF attach target (function name) of fentry/fexit/freplace/tp_btf programs."""
        p = self._before_load("attach target")
        # libbpf keeps attach_prog_fd until load: a dup of its own (the target's fd may be
        # closed and its number reused meanwhile), kept and closed by this program's object
        fd = os.dup(attach_prog_fd) if attach_prog_fd else 0
        message = f"set attach target '{target}' of '{self._name}' failed"
        try:
            with capture_log() as log:
                ret = progcalls.set_attach_target(p, fd, cstr(target))
            try:
                check_int(ret, message, log)
            except BpfError as e:
                if not errnos.is_(e.errno, errnos.MISSING) or attach_prog_fd:
                    raise
                cls, text = explain_trace_target(target)  # not found in the kernel's BTF
                raise cls(f"{message}: {text}", e.errno or 0, e.libbpf_log) from None
        except BaseException:
            if fd:
                os.close(fd)
            raise
        self._obj._keep_fd(f"attach target of {self._name}", fd or None)

    @property
    def insn_count(self) -> int:
        return progcalls.insn_count(self._p())

    @property
    def info(self) -> ProgramInfo:
        return ProgramInfo(name=self._name, section=self._section, type=self.type)

    @property
    def fd(self) -> int:
        """The program's fd (after load)."""
        fd = progcalls.prog_fd(self._p())
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

    # --- pinning, info, logs ------------------------------------------------------------
    def pin(self, path: str) -> None:
        """Pin the program at ``path`` in a BPF filesystem."""
        p = self._p()
        call(
            "bpf_program__pin",
            p,
            cstr(check_pin_path(path, f"pin program '{self._name}' to '{path}'")),
            what=f"pin program '{self._name}' to '{path}'",
        )

    def unpin(self, path: str) -> None:
        p = self._p()
        call(
            "bpf_program__unpin", p, cstr(path), what=f"unpin program '{self._name}' from '{path}'"
        )

    def kernel_info(self) -> KernelProgramInfo:
        """The kernel's view of the loaded program (id, tag, sizes, run statistics)."""

        return program_info_by_fd(self.fd)

    def request_verifier_log(self, size: int = 1 << 20, level: int = 1) -> None:
        """Before load: keep the verifier log of a successful load (``verifier_log``)."""
        p = self._before_load("verifier log")
        buf = progcalls.new_log_buf(size)
        obj = self._obj  # libbpf writes it at load: it lives as long as the object
        if obj._log_bufs is None:
            obj._log_bufs = {}
        obj._log_bufs[self._name] = buf
        call("bpf_program__set_log_buf", p, buf, size, what="set log buffer")
        call("bpf_program__set_log_level", p, level, what="set log level")

    def _own_log(self) -> str:
        """The log buffer set by request_verifier_log() ("" if none)."""
        p = self._p()
        return progcalls.log_buf(p)

    @property
    def verifier_log(self) -> str:
        """The verifier log: of a successful load, kept by :meth:`request_verifier_log`;
        after ``obj.load()`` failed in the verifier on this program, the log of that
        failure (also in :class:`BpfVerifierError`'s ``log``); "" otherwise."""
        own = self._own_log()
        if own:
            return own
        return self._obj._failed_logs.get(self._name, "")

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
        """Run the program in the kernel (BPF_PROG_TEST_RUN) ``repeat`` times.

        Returns the program's return value, the output data (packet programs), the output
        context and the average duration per run in nanoseconds.
        """
        return _test_run(
            self.fd,
            self._name,
            data,
            ctx,
            repeat,
            data_out_size,
            ctx_out_size,
            flags,
            cpu,
            prog_type=self.type,
        )


def _test_run(
    fd: int,
    name: str,
    data: bytes = b"",
    ctx: bytes | None = None,
    repeat: int = 1,
    data_out_size: int | None = None,
    ctx_out_size: int | None = None,
    flags: int = 0,
    cpu: int = 0,
    prog_type: int | None = None,
) -> TestRunResult:
    """BPF_PROG_TEST_RUN. The caller's buffers are never written: the kernel gets copies.

    SYSCALL programs take no data, repeat or output buffers; the kernel writes their
    context back into the input context, which is returned as ``ctx``.
    """
    data = bytes(data)
    syscall = prog_type == BpfProgType.SYSCALL
    if syscall:
        if data or data_out_size:
            raise ValueError(f"SYSCALL program '{name}' takes a ctx, not data")
        repeat = 0 if repeat == 1 else repeat
    out_size = data_out_size if data_out_size is not None else (len(data) + 256 if data else 0)
    o, out, cout = progcalls.test_run(
        fd,
        f"test_run of program '{name}'",
        data,
        out_size,
        ctx,
        ctx_out_size or 0,
        repeat=repeat,
        flags=flags,
        cpu=cpu,
    )
    return TestRunResult(int(o.retval), out, int(o.duration), cout)
