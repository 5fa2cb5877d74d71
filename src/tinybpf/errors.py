"""Exception classes.

One root, :class:`BpfError`, which is also an :class:`OSError` (it carries ``errno``). Errors
whose meaning has a builtin also subclass it: a missing file is a ``FileNotFoundError``, a
refused permission a ``PermissionError``. Every error raised by a failed libbpf call carries
``errno`` and the libbpf log lines printed during that call (``libbpf_log``); a failed
program load carries the verifier log there.
"""

from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False  # (importing typing costs milliseconds at every import of tinybpf)
if TYPE_CHECKING:
    from typing import Any


__all__ = [
    "BpfClosedError",
    "BpfError",
    "BpfFileNotFoundError",
    "BpfNotSupportedError",
    "BpfPermissionError",
    "BpfPhaseError",
    "BpfVerifierError",
    "BtfValidationError",
    "LinkDetachedWarning",
    "error_for_errno",
]


class BpfError(OSError):
    """Base of every tinybpf error. ``errno`` is 0 when no C call failed.

    Example::

        try:
            tinybpf.load("missing.bpf.o")
        except tinybpf.BpfError as e:
            print(e.errno, e.libbpf_log)
    """

    def __init__(self, message: str, errno: int = 0, libbpf_log: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errno = errno
        self.strerror = message
        self.libbpf_log = libbpf_log

    def __str__(self) -> str:
        if self.libbpf_log:
            return f"{self.message}\n\nlibbpf output:\n{self.libbpf_log}"
        return self.message

    def __reduce__(self) -> tuple[type[BpfError], tuple[str, int, str | None]]:
        return (type(self), (self.message, self.errno or 0, self.libbpf_log))


class BpfFileNotFoundError(BpfError, FileNotFoundError):
    """A file or pinned object does not exist (``ENOENT``).

    Example::

        try:
            tinybpf.load("missing.bpf.o")
        except tinybpf.BpfFileNotFoundError as e:   # also a FileNotFoundError
            print(e.errno)   # errno.ENOENT
    """


class BpfPermissionError(BpfError, PermissionError):
    """The kernel refused the operation (``EPERM``/``EACCES``).

    Example::

        try:
            obj = tinybpf.load("prog.bpf.o")
        except tinybpf.BpfPermissionError:   # also a PermissionError
            sys.exit("run as root (CAP_BPF and CAP_PERFMON)")
    """


class BpfNotSupportedError(BpfError):
    """The running kernel (or this build) cannot do this (``EOPNOTSUPP``, ``ENOTSUP``...).

    Lets callers tell "impossible here" from "broken".

    Example::

        try:
            att = prog.attach_xdp("eth0", mode="driver")
        except tinybpf.BpfNotSupportedError:   # no native XDP in this driver
            att = prog.attach_xdp("eth0", mode="skb")
    """


class BpfClosedError(BpfError):
    """The object (or its parent ``BpfObject``) was closed; nothing was touched.

    Example::

        obj.close()
        try:
            obj.globals["hits"]
        except tinybpf.BpfClosedError: ...
    """


class BpfPhaseError(BpfError):
    """An operation was used in the wrong phase (before or after ``load()``).

    Example::

        obj = tinybpf.load("prog.bpf.o")
        try:
            obj.globals["target_pid"] = 1   # a const volatile (.rodata) variable
        except tinybpf.BpfPhaseError: ...  # set it between tinybpf.open() and obj.load()
    """


class BtfValidationError(BpfError):
    """A Python type does not match the BTF type it is used for.

    ``suggestions`` lists hints (e.g. the BTF field layout) when the library has them.

    Example::

        try:
            obj.register_type("event", Event)   # Event: a ctypes.Structure
        except tinybpf.BtfValidationError as e:
            print(e, e.suggestions)
    """

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions: list[str] = list(suggestions or [])

    def __reduce__(self) -> tuple[type[BpfError], tuple[str, list[str]]]:  # type: ignore[override]
        return (type(self), (self.message, self.suggestions))


class LinkDetachedWarning(RuntimeWarning):
    """A link or attachment was garbage-collected while attached: its program was detached.

    A RuntimeWarning, so Python shows it with its default warning settings (a
    ResourceWarning would be hidden). Keep a reference to the link, use ``with``, or pin
    it, for as long as the program should stay attached.

    Example::

        links = [p.attach() for p in obj.programs.values()]   # keep them
        # for p in obj.programs.values(): p.attach()  -> LinkDetachedWarning, nothing traced
    """


class BpfVerifierError(BpfError):
    """The verifier rejected a program at load (not a PermissionError, whatever the errno).

    ``log`` is the verifier's log of the failing program, ``program`` its name and
    ``summary`` a short account: the verifier's complaint, the instruction it rejected and,
    when the object has BTF line info (compiled with ``-g``), the source line. The message
    includes the summary; ``libbpf_log`` keeps everything libbpf printed. After a failed
    ``obj.load()``, ``obj.program(name).verifier_log`` holds the log too.

    Example::

        try:
            obj = tinybpf.load("prog.bpf.o")
        except tinybpf.BpfVerifierError as e:
            print(e.program, e.summary)
            # invalid access to map value, value_size=4 off=400 size=4 ...
            #   at insn 8: (61) r6 = *(u32 *)(r0 +400)
            #   source: return *(volatile __u32 *)(v + 100); (prog.bpf.c:23)
    """

    def __init__(
        self,
        message: str,
        errno: int = 0,
        libbpf_log: str | None = None,
        *,
        log: str = "",
        program: str = "",
    ) -> None:
        super().__init__(message, errno, libbpf_log)
        self.log = log
        self.program = program
        self.summary = verifier_summary(log)

    def __reduce__(self) -> Any:
        return (
            _rebuild_verifier_error,
            (self.message, self.errno or 0, self.libbpf_log, self.log, self.program),
        )


def _rebuild_verifier_error(
    message: str, errno: int, libbpf_log: str | None, log: str, program: str
) -> BpfVerifierError:
    return BpfVerifierError(message, errno, libbpf_log, log=log, program=program)


def verifier_summary(log: str) -> str:
    """The verifier's complaint, the rejected instruction and its source line, from a
    verifier log (level 1 or 2); "" for an empty log.

    Example::

        print(tinybpf.errors.verifier_summary(prog.verifier_log))
    """
    import re

    insn_line = re.compile(r"^\d+: \([0-9a-f]{2}\) ")
    processed = re.compile(r"^processed \d+ insns")
    lines = [line.rstrip() for line in log.splitlines()]
    end = len(lines)
    for i in range(len(lines) - 1, -1, -1):
        if processed.match(lines[i]):
            end = i
            break
    insn_at = None
    for i in range(end - 1, -1, -1):
        if insn_line.match(lines[i]):
            insn_at = i
            break
    if insn_at is not None:
        complaint = [x for x in lines[insn_at + 1 : end] if x.strip()]
    else:
        complaint = [x for x in lines[:end] if x.strip()][-1:]
    parts = ["; ".join(complaint) or "(the verifier gave no reason)"]
    if insn_at is not None:
        insn = re.split(r"\s{2,}; ", lines[insn_at], maxsplit=1)[0]
        parts.append(f"  at insn {insn}")
        for i in range(insn_at - 1, -1, -1):
            if lines[i].startswith(";"):
                code, _, where = lines[i][1:].strip().rpartition(" @ ")
                if not code and not where:
                    break
                parts.append(f"  source: {code or where}" + (f" ({where})" if code else ""))
                break
    return "\n".join(parts) if log.strip() else ""


_NOT_SUPPORTED = {
    _errno.EOPNOTSUPP,
    _errno.ENOTSUP,
    524,  # ENOTSUPP, the kernel-internal "not supported" that bpf() can return
}


def error_for_errno(err: int) -> type[BpfError]:
    """The most specific BpfError class for an errno value (either sign): the class a
    failed call with that errno raises, for code that turns an ``OSError`` of its own
    into a tinybpf error.

    Example::

        from tinybpf.errors import error_for_errno

        raise error_for_errno(e.errno)(f"cannot read {path}: {e.strerror}", e.errno)
    """
    err = abs(err)
    if err == _errno.ENOENT:
        return BpfFileNotFoundError
    if err in (_errno.EPERM, _errno.EACCES):
        return BpfPermissionError
    if err in _NOT_SUPPORTED:
        return BpfNotSupportedError
    return BpfError


def error_from_oserror(e: OSError, message: str) -> BpfError:
    """The error for a failed OS call made from Python (``open``, ``read``): the class
    :func:`error_for_errno` picks (EIO when the OSError carries no errno), the message
    ``"<message>: <strerror>"``."""
    import os

    code = e.errno or _errno.EIO
    return error_for_errno(code)(f"{message}: {e.strerror or os.strerror(code)}", code)
