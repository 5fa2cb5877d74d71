"""BPF tokens: BPF delegated to a process in a user namespace (a container), Linux 6.9+.

A privileged process (the container runtime) creates a BPF filesystem *for* the container's
user namespace with delegation mount options (``delegate_cmds``, ``delegate_maps``,
``delegate_progs``, ``delegate_attachs``) and mounts it where the container sees it. A
process inside, root in its user namespace but without capabilities in the initial one,
derives a token from that mount (``BPF_TOKEN_CREATE``) and passes it with the ``bpf()``
commands the mount delegates.

In tinybpf: ``tinybpf.open(path, bpf_token_path="/path/to/delegated/bpffs")`` (or
``load``) has libbpf create the token at load and use it for every map, BTF and program the
object creates; libbpf reads the environment variable ``LIBBPF_BPF_TOKEN_PATH`` itself when
the option is not given (an empty value turns tokens off). Without either, libbpf tries
``/sys/fs/bpf`` and goes on without a token when that yields none. Maps made outside an
object take a token's fd: ``tinybpf.create_map(..., token_fd=token.fd)`` with ``token =
tinybpf.create_token(path)``.

When the token cannot be created, the error says why in terms of the setup (not a BPF
filesystem, a bpffs without delegation, a bpffs of another user namespace, the initial user
namespace, a kernel older than 6.9) instead of libbpf's bare errno.
"""

from __future__ import annotations

import errno as _errno
import os
import platform
import re
import weakref
from typing import Any

from ._core import capture_log, kernelcalls, strerror
from ._kernel import in_user_namespace
from .errors import (
    BpfClosedError,
    BpfError,
    BpfFileNotFoundError,
    BpfNotSupportedError,
    BpfPermissionError,
    error_for_errno,
)

__all__ = ["TOKEN_PATH_ENV", "BpfToken", "create_token", "token_supported"]

TOKEN_PATH_ENV = "LIBBPF_BPF_TOKEN_PATH"
# the mount options that delegate everything (the bpffs man page's and libbpf's spelling)
DELEGATE_ALL = "delegate_cmds=any,delegate_maps=any,delegate_progs=any,delegate_attachs=any"
_HOWTO = (
    "a token comes from a BPF filesystem created for the process's user namespace (fsopen "
    "there) and given delegation options by a privileged process, e.g. "
    f"{DELEGATE_ALL} (see 'Running unprivileged' in docs/guide.md)"
)

_supported: bool | None = None


def token_supported() -> bool:
    """Whether this kernel has BPF tokens (the ``BPF_TOKEN_CREATE`` command, Linux 6.9+).

    Asked with an invalid file descriptor: a kernel with tokens answers EBADF, one
    without answers EINVAL (an unknown command). Cached per process.

    Example::

        if tinybpf.token_supported():
            obj = tinybpf.load("prog.bpf.o", bpf_token_path="/run/bpffs")
    """
    global _supported
    if _supported is None:
        _supported = kernelcalls.token_create(-1) == -_errno.EBADF
    return _supported


def _what_is(path: str) -> str:
    """ " (it is on ext4)" or " (it is a directory inside the BPF filesystem at ...)": what
    holds ``path``, from /proc/self/mounts ("" when that cannot be told)."""
    try:
        real = os.path.realpath(path)
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1:3] for line in f if len(line.split()) >= 3]
    except OSError:
        return ""
    best: tuple[str, str] | None = None
    for where, fstype in mounts:
        where = where.replace("\\040", " ")
        inside = real == where or real.startswith(where.rstrip("/") + "/")
        if inside and (best is None or len(where) >= len(best[0])):
            best = (where, fstype)
    if best is None:
        return ""
    where, fstype = best
    if fstype == "bpf" and where != real:
        return f" (it is a directory inside the BPF filesystem mounted at '{where}')"
    return f" (it is on {fstype})"


def token_error(path: str, err: int, prefix: str, log: str | None = None) -> BpfError:
    """The error for a BPF token that could not be created from ``path`` (errno ``err``),
    naming what in the setup is wrong. ``prefix``: what failed (e.g. "load 'x.bpf.o'
    failed")."""
    where = f"{prefix}: no BPF token from '{path}'"
    cls: type[BpfError]
    if err in (_errno.EINVAL, _errno.EOPNOTSUPP) and not token_supported():
        cls = BpfNotSupportedError
        why = (
            f"this kernel ({platform.release()}) has no BPF tokens (BPF_TOKEN_CREATE, Linux "
            "6.9+): give the process CAP_BPF (plus CAP_PERFMON or CAP_NET_ADMIN for tracing "
            "or networking programs) instead"
        )
    elif err == _errno.ENOENT and not os.path.lexists(path):
        cls, why = BpfFileNotFoundError, f"'{path}' does not exist; {_HOWTO}"
    elif err == _errno.ENOTDIR:
        cls, why = BpfError, f"'{path}' is not a directory; {_HOWTO}"
    elif err == _errno.EINVAL:
        cls = BpfError
        why = f"'{path}' is not the root of a BPF filesystem{_what_is(path)}; {_HOWTO}"
    elif err == _errno.ENOENT:
        cls = BpfError
        why = (
            f"the BPF filesystem at '{path}' delegates nothing (it was mounted without "
            f"delegate_cmds/delegate_maps/delegate_progs/delegate_attachs); {_HOWTO}"
        )
    elif err == _errno.EOPNOTSUPP:
        cls = BpfNotSupportedError
        why = (
            "a BPF token cannot be created in the initial user namespace: tokens give BPF to "
            "processes in a user namespace (a container); here the process needs capabilities "
            "instead (CAP_BPF, plus CAP_PERFMON or CAP_NET_ADMIN)"
        )
    elif err == _errno.EPERM:
        cls = BpfPermissionError
        why = (
            f"the BPF filesystem at '{path}' was created for another user namespace than this "
            "process's, or the process lacks CAP_BPF in its user namespace; a token is "
            "created in the user namespace the bpffs belongs to (fsopen() it there)"
        )
    elif err == _errno.EACCES:
        cls, why = BpfPermissionError, f"no access to '{path}' (its mode or owner)"
    else:
        cls, why = error_for_errno(err), strerror(err)
    if cls is BpfPermissionError:
        cls = TokenPermissionError
    return cls(f"{where}: {why}", err, log)


class TokenPermissionError(BpfPermissionError):
    """A BpfPermissionError about the token itself: the load's capability diagnosis (which
    would look at this process's capabilities) does not apply to it."""


class BpfToken:
    """A BPF token: a file descriptor granting what a delegated BPF filesystem allows.

    Made by :func:`create_token`. Pass ``token.fd`` to ``create_map(..., token_fd=)``.
    ``close()`` (or the ``with`` block's end) closes the fd; a token dropped without it is
    closed when collected. Objects opened with ``bpf_token_path`` make their own token.

    Example::

        with tinybpf.create_token("/run/bpffs") as token:
            m = tinybpf.create_map("HASH", 4, 8, 128, token_fd=token.fd)
    """

    __slots__ = ("__weakref__", "_closer", "_fd", "_path")

    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self._path = path
        self._closer = weakref.finalize(self, os.close, fd)

    @property
    def fd(self) -> int:
        """The token's file descriptor (owned by this object: ``os.dup`` it to keep it)."""
        if self._fd < 0:
            raise BpfClosedError(f"BPF token from '{self._path}' is closed")
        return self._fd

    @property
    def path(self) -> str:
        """The BPF filesystem the token was created from."""
        return self._path

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._fd < 0

    def close(self) -> None:
        """Close the token's fd (idempotent). Maps and programs made with it stay."""
        self._fd = -1
        self._closer()

    def __enter__(self) -> BpfToken:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        return f"<BpfToken from '{self._path}' {state}>"


def _create(path: str, prefix: str) -> BpfToken:
    try:
        bpffs = os.open(path, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise token_error(path, e.errno or _errno.EINVAL, prefix) from None
    try:
        with capture_log() as log:
            ret = kernelcalls.token_create(bpffs)
        if ret < 0:
            raise token_error(path, -ret, prefix, log.text)
    finally:
        os.close(bpffs)
    os.set_inheritable(ret, False)
    return BpfToken(ret, path)


def create_token(path: str | os.PathLike[str] = "/sys/fs/bpf") -> BpfToken:
    """Create a BPF token from the delegated BPF filesystem mounted at ``path``.

    Raises ``BpfNotSupportedError`` on kernels without tokens (before 6.9) and in the
    initial user namespace (where tokens are refused: use capabilities),
    ``BpfFileNotFoundError`` for a missing path, ``BpfPermissionError`` for a bpffs of
    another user namespace, and ``BpfError`` for a path that is not the root of a BPF
    filesystem or one that delegates nothing.

    Example::

        token = tinybpf.create_token("/run/bpffs")
        counts = tinybpf.create_map("ARRAY", 4, 8, 1, token_fd=token.fd)
    """
    text = os.fsdecode(os.fspath(path))
    if "\0" in text:
        raise ValueError(f"embedded NUL byte in {text!r}")
    return _create(text, "create_token failed")


def eperm_hint() -> str:
    """What to add to an EPERM of a process in a user namespace ("" elsewhere)."""
    if not in_user_namespace():
        return ""
    return (
        ": this process runs in a user namespace, where BPF needs a BPF token "
        "(create_token(path), token_fd=)"
    )


def effective_token_path(opts: Any) -> str | None:
    """The token path libbpf used for an object opened with ``opts`` (the open options, or
    None): the ``bpf_token_path`` option, else LIBBPF_BPF_TOKEN_PATH; None when neither
    names one (an empty value turns tokens off)."""
    given = kernelcalls.opts_token_path(opts) if opts is not None else None
    path = os.fsdecode(given) if given is not None else os.environ.get(TOKEN_PATH_ENV)
    return path or None


def _delegation(path: str) -> str:
    """The delegate_* mount options of the BPF filesystem mounted at ``path`` (from
    /proc/self/mounts), or "" when they cannot be read."""
    try:
        real = os.path.realpath(path)
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 4 and parts[1].replace("\\040", " ") == real:
                    found = [o for o in parts[3].split(",") if o.startswith("delegate_")]
                    if found:
                        return ",".join(found)
    except OSError:
        pass
    return ""


def check_token_for_load(opts: Any, prefix: str, err: int, log: Any) -> None:
    """After a load failed with ``err``: when the object was to use a token and none can
    be created from its path, raise the error naming why (with ``log``, the load's
    LogCapture, as its libbpf output). When a token was made and the kernel still said
    EPERM, raise an error saying the token does not delegate what the object needs.
    Otherwise return (the load failed for another reason)."""
    path = effective_token_path(opts)
    if path is None:
        return
    try:
        _create(path, prefix).close()
    except BpfError as e:
        raise token_error(path, e.errno or _errno.EINVAL, prefix, log.text) from None
    if err == _errno.EPERM:
        text = log.text or ""
        refused = re.findall(r"prog '([^']+)': (?:BPF program load failed|failed to load)", text)
        what = f" (refused: program '{refused[-1]}')" if refused else ""
        options = _delegation(path)
        has = f"it delegates {options}" if options else "its delegation options are unknown"
        raise TokenPermissionError(
            f"{prefix}: {strerror(err)}: the kernel refused the load although a BPF token from "
            f"'{path}' was used{what}: the token allows what its BPF filesystem delegates "
            f"({has}); delegate_cmds, delegate_maps, delegate_progs and delegate_attachs "
            "must cover the object's bpf() commands, map types, program types and attach "
            "types",
            err,
            text or None,
        )
