"""Exception classes.

One root, :class:`BpfError`, which is also an :class:`OSError` (it carries ``errno``). Errors
whose meaning has a builtin also subclass it: a missing file is a ``FileNotFoundError``, a
refused permission a ``PermissionError``. Every error raised by a failed libbpf call carries
``errno`` and the libbpf log lines printed during that call (``libbpf_log``); a failed
program load carries the verifier log there.
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "BpfClosedError",
    "BpfError",
    "BpfFileNotFoundError",
    "BpfNotSupportedError",
    "BpfPermissionError",
    "BpfPhaseError",
    "BtfValidationError",
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
    """A file or pinned object does not exist (``ENOENT``)."""


class BpfPermissionError(BpfError, PermissionError):
    """The kernel refused the operation (``EPERM``/``EACCES``)."""


class BpfNotSupportedError(BpfError):
    """The running kernel (or this build) cannot do this (``EOPNOTSUPP``, ``ENOTSUP``...).

    Lets callers tell "impossible here" from "broken".
    """


class BpfClosedError(BpfError):
    """The object (or its parent ``BpfObject``) was closed; nothing was touched."""


class BpfPhaseError(BpfError):
    """An operation was used in the wrong phase (before or after ``load()``)."""


class BtfValidationError(BpfError):
    """A Python type does not match the BTF type it is used for.

    ``suggestions`` lists hints (e.g. the BTF field layout) when the library has them.
    """

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions: list[str] = list(suggestions or [])

    def __reduce__(self) -> tuple[type[BpfError], tuple[str, list[str]]]:  # type: ignore[override]
        return (type(self), (self.message, self.suggestions))


_NOT_SUPPORTED = {
    _errno.EOPNOTSUPP,
    _errno.ENOTSUP,
    524,  # ENOTSUPP, the kernel-internal "not supported" that bpf() can return
}


def error_for_errno(err: int) -> type[BpfError]:
    """The most specific BpfError class for an errno value."""
    err = abs(err)
    if err == _errno.ENOENT:
        return BpfFileNotFoundError
    if err in (_errno.EPERM, _errno.EACCES):
        return BpfPermissionError
    if err in _NOT_SUPPORTED:
        return BpfNotSupportedError
    return BpfError
