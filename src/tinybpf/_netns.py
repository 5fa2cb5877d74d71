"""Network namespaces: the ``netns=`` argument of the attach calls that name an interface or
a per-namespace hook, and :func:`in_netns`.

setns(2) with ``CLONE_NEWNET`` moves only the calling thread. A switch opens the thread's
own namespace first, enters the target, runs the call and enters the saved namespace again,
also when the call raised; a failure to return raises and says that the thread is still
away. Other threads are never moved. Each :class:`Netns` holds a lock while a thread uses its
fd, so that closing it from another thread (a link detached and closed at the same time)
waits instead of closing an fd in use.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Protocol, TypeAlias, TypeVar

from ._core import check_int, kernelcalls
from .errors import BpfClosedError, BpfError, error_for_errno

__all__ = ["Netns", "NetnsLike", "in_netns"]

_THREAD_NS = "/proc/thread-self/ns/net"
_T = TypeVar("_T")


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


NetnsLike: TypeAlias = "str | os.PathLike[str] | int | _HasFileno"
"""A network namespace: a path (``/run/netns/NAME``, ``/proc/PID/ns/net``), an open fd
(not closed, not kept: it is duplicated), or an object with ``fileno()``."""


def _open_thread_ns() -> int:
    return os.open(_THREAD_NS, os.O_RDONLY | os.O_CLOEXEC)


class Netns:
    """An open network namespace: an fd this object owns, its inode and a name for messages.

    Example (internal)::

        with Netns.open("/run/netns/blue") as ns, ns.entered():
            index = socket.if_nametoindex("veth0")   # looked up in blue
    """

    def __init__(self, fd: int, label: str) -> None:
        self._fd = fd
        st = os.fstat(fd)
        self.ino = st.st_ino
        self._dev = st.st_dev
        self.label = label
        self._lock = threading.RLock()

    @classmethod
    def of_thread(cls) -> Netns:
        """The calling thread's network namespace now."""
        fd = _open_thread_ns()
        return cls(fd, f"net:[{os.fstat(fd).st_ino}]")

    @classmethod
    def open(cls, netns: NetnsLike) -> Netns:
        """Open ``netns`` (see :data:`NetnsLike`); raise a clear error for anything that is
        not a network namespace."""
        if isinstance(netns, bool | bytes):
            raise TypeError(_TYPE_HINT.format(type(netns).__name__))
        if isinstance(netns, str | os.PathLike):
            path = os.fspath(netns)
            if not isinstance(path, str):
                raise TypeError(_TYPE_HINT.format(type(netns).__name__))
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                err = e.errno or _errno.EINVAL
                hint = (
                    " ('ip netns add NAME' creates /run/netns/NAME; a process's is "
                    "/proc/PID/ns/net)"
                    if err == _errno.ENOENT
                    else ""
                )
                raise error_for_errno(err)(
                    f"cannot open network namespace {path}: {os.strerror(err)}{hint}", err
                ) from None
            label = path
        else:
            if isinstance(netns, int):
                given = netns
                label = f"fd {given}"
            elif callable(getattr(netns, "fileno", None)):
                given = netns.fileno()
                name = getattr(netns, "name", None)
                label = name if isinstance(name, str) else f"fd {given}"
            else:
                raise TypeError(_TYPE_HINT.format(type(netns).__name__))
            if given < 0:
                raise ValueError(f"netns fd must be an open file descriptor, not {given}")
            try:
                fd = os.dup(given)  # ours to close; the caller keeps theirs
            except OSError as e:
                raise ValueError(
                    f"netns fd {given} is not an open file descriptor ({e.strerror})"
                ) from None
        try:
            kind = kernelcalls.ns_type(fd)
            if kind != kernelcalls.CLONE_NEWNET:
                what = "a namespace of another type" if kind >= 0 else "not a namespace"
                raise ValueError(
                    f"{label} is not a network namespace ({what}): give /run/netns/NAME, "
                    "/proc/PID/ns/net, or an open fd of one"
                )
            return cls(fd, label)
        except BaseException:
            os.close(fd)
            raise

    @property
    def where(self) -> str:
        """``network namespace LABEL``, for messages."""
        return f"network namespace {self.label}"

    def dup(self) -> Netns:
        """Another Netns on the same namespace, with its own fd (for an attachment to keep)."""
        with self._lock:
            self._check_open()
            return Netns(os.dup(self._fd), self.label)

    def _check_open(self) -> None:
        if self._fd < 0:
            raise BpfClosedError(f"{self.where} was closed")

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the block with the calling thread in this namespace, then back in its own
        (also when the block raises). A thread already in it is not switched."""
        with self._lock:
            self._check_open()
            home = _open_thread_ns()
            try:
                st = os.fstat(home)
                if (st.st_ino, st.st_dev) == (self.ino, self._dev):
                    yield
                    return
                check_int(
                    kernelcalls.setns(self._fd, kernelcalls.CLONE_NEWNET),
                    f"enter {self.where} failed",
                )
                try:
                    yield
                finally:
                    check_int(
                        kernelcalls.setns(home, kernelcalls.CLONE_NEWNET),
                        f"cannot return thread {threading.get_native_id()} to its network "
                        f"namespace (inode {st.st_ino}) from {self.where}: the thread is "
                        f"still in {self.where}",
                    )
            finally:
                os.close(home)

    def run(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` with the calling thread in this namespace, then back in its own."""
        with self.entered():
            return fn()

    def close(self) -> None:
        """Close the fd (waits for a thread using it). Idempotent."""
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> Netns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_TYPE_HINT = (
    "netns must be a path (str or os.PathLike: /run/netns/NAME, /proc/PID/ns/net), an open "
    "fd (int) or an object with fileno(), not {}"
)


def run_in(netns: NetnsLike | None, fn: Callable[[Netns | None], _T]) -> _T:
    """``fn(ns)`` in namespace ``netns`` (opened for the call, closed after; ``fn`` gets
    the open :class:`Netns`), or ``fn(None)`` in the caller's namespace when it is None."""
    if netns is None:
        return fn(None)
    with Netns.open(netns) as ns, ns.entered():
        return fn(ns)


def at(ns: Netns | None) -> str:
    """`` in network namespace LABEL`` (or nothing), to append to a message."""
    return f" in {ns.where}" if ns is not None else ""


def keep(ns: Netns | None) -> Netns:
    """The namespace an attachment made now must detach in: its own copy of ``ns``, or
    the calling thread's namespace."""
    return ns.dup() if ns is not None else Netns.of_thread()


def ifindex(interface: str | int, ns: Netns | None, action: str) -> int:
    """The index of ``interface`` (a name or an index) in the calling thread's namespace,
    which is ``ns`` when given (the caller entered it). A name that does not exist there
    raises BpfError (ENODEV) naming the interface and the namespace; so does an index
    when ``ns`` is given (without it, an index is passed through as before)."""
    where = ns.where if ns is not None else "this network namespace"
    if isinstance(interface, str):
        try:
            return socket.if_nametoindex(interface)
        except OSError as e:
            raise BpfError(
                f"{action} failed: no network interface named '{interface}' in {where}",
                e.errno or _errno.ENODEV,
            ) from None
    index = int(interface)
    if ns is not None:
        try:
            socket.if_indextoname(index)
        except OSError:
            raise BpfError(
                f"{action} failed: no network interface with index {index} in {where}",
                _errno.ENODEV,
            ) from None
    return index


@contextlib.contextmanager
def in_netns(netns: NetnsLike) -> Iterator[None]:
    """Run the block with the calling thread in network namespace ``netns`` (a path such
    as ``/run/netns/NAME`` or ``/proc/PID/ns/net``, an open fd, or an object with
    ``fileno()``); the thread returns to its own namespace when the block ends, also on an
    exception. Only the calling thread moves: sockets it creates and interface names it
    looks up in the block belong to that namespace. Attach calls take ``netns=`` instead.

    Example::

        with tinybpf.in_netns("/run/netns/blue"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # a socket in blue
    """
    with Netns.open(netns) as ns, ns.entered():
        yield
