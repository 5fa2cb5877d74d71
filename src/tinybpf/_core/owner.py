"""The owner/borrow protocol that makes ``close()`` safe (DESIGN.md rule 9).

Each resource that frees libbpf memory or closes an fd has one :class:`Owner`: a
``BpfObject`` (shared by its programs, maps, globals and BTF), a standalone ``Btf``, a
``BpfLink``, a standalone ``BpfMap``. Code that uses the resource's libbpf memory does it
inside a *borrow*: a method listed in :func:`guarded`, which holds the owner's reentrant
lock and counts the calls in flight. The owner's ``close()`` goes through
:meth:`Owner.release`:

* another thread waits until the borrows in flight end (they hold the lock);
* the same thread (a signal handler, an ``__fspath__``/``__index__`` of an argument, a
  conversion hook run by a borrowed call) cannot wait for itself: the resource is marked
  closed at once (every later borrow raises ``BpfClosedError``) and freed when the
  outermost borrow of that thread returns (a deferred close);
* the pointer accessors (``_p()``, ``_mp()``, ``_lp()``) raise ``AssertionError`` when
  called outside a borrow, so a method that forgets to borrow fails in tests instead of
  racing with ``close()``.

Map element operations are the hot path and take no lock: they borrow the map fd inside
the one C call that uses it (``struct tinybpf_fd`` in ffi_build/shim.c), and ``close()``
revokes that handle (waiting for calls in flight in other threads) before the fd is
closed. A call after the revoke gets ``TINYBPF_CLOSED``, never another map that was given
the same fd number.

A ``fork()`` while another thread is inside a borrow copies an owner's lock held by a thread
the child does not have: every borrow in the child would wait for it forever. Owners and the
locks of :func:`new_lock` are tracked, and a fork handler resets them in the child.
"""

from __future__ import annotations

import functools
import os
import weakref
from _thread import RLock
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["Owner", "borrow", "guarded", "new_lock", "unguarded"]

_LOCKS: weakref.WeakSet[Any] = weakref.WeakSet()  # new_lock()'s
_OWNERS: weakref.WeakSet[Owner] = weakref.WeakSet()


def new_lock() -> Any:
    """A reentrant lock (of a resource that is no :class:`Owner`), reset in a forked child."""
    lock = RLock()
    _LOCKS.add(lock)
    return lock


def _reset_in_child() -> None:
    # The child has one thread: no lock can rightly be held and no borrow is in flight.
    # (What the parent's other thread was doing inside libbpf is unfinished in the child's
    # copy of that resource.)
    for lock in list(_LOCKS):
        lock._at_fork_reinit()
    for owner in list(_OWNERS):
        owner.lock._at_fork_reinit()  # type: ignore[attr-defined]
        owner.depth = 0
        owner._deferred.clear()


C = TypeVar("C", bound=type)


class Owner:
    """The close-safety state of one resource: a reentrant lock, the number of borrows in
    flight (changed only under the lock) and a free deferred to the end of the last one."""

    __slots__ = ("__weakref__", "_deferred", "depth", "lock")

    def __init__(self) -> None:
        self.lock = RLock()
        self.depth = 0
        self._deferred: list[Callable[[], None]] = []
        _OWNERS.add(self)

    def held(self) -> bool:
        """Whether the calling thread is inside a borrow of this owner."""
        return self.depth > 0 and self.lock._is_owned()  # type: ignore[attr-defined]

    def release(self, free: Callable[[], None]) -> bool:
        """Run ``free`` now, or (a borrow of this thread is in flight) when it returns.

        The caller marks the resource closed first, under ``self.lock``. Returns whether
        ``free`` ran now.
        """
        with self.lock:
            if self.depth:
                self._deferred.append(free)
                return False
            free()
            return True

    def _end(self) -> None:
        """The outermost borrow of this thread returns: run deferred frees."""
        while self._deferred:
            self._deferred.pop(0)()


@contextmanager
def borrow(g: Owner) -> Iterator[None]:
    """``with borrow(owner):`` a borrow of another resource's owner (e.g. a program's while
    a link method runs)."""
    with g.lock:
        g.depth += 1
        try:
            yield
        finally:
            g.depth -= 1
            if not g.depth and g._deferred:
                g._end()


def borrowing(owner_of: Callable[[Any], Owner | None]) -> Callable[[Callable[..., Any]], Any]:
    """Decorator: run the function as a borrow of ``owner_of(self)``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            g = owner_of(self)
            if g is None:
                return fn(self, *args, **kwargs)
            with g.lock:
                g.depth += 1
                try:
                    return fn(self, *args, **kwargs)
                finally:
                    g.depth -= 1
                    if not g.depth and g._deferred:
                        g._end()

        return call

    return wrap


_borrow = borrowing(lambda self: self._guard)


def guarded(names: Iterable[str]) -> Callable[[C], C]:
    """Class decorator: the named methods and properties borrow ``self._guard``."""

    def decorate(cls: C) -> C:
        for name in names:
            attr = cls.__dict__[name]
            if isinstance(attr, property):
                fget = _borrow(attr.fget) if attr.fget else None
                fset = _borrow(attr.fset) if attr.fset else None
                setattr(cls, name, property(fget, fset, None, attr.__doc__))
            else:
                setattr(cls, name, _borrow(attr))
        return cls

    return decorate


def unguarded(what: str) -> AssertionError:
    """The error of a pointer accessor called outside a borrow (a missing ``guarded``)."""
    return AssertionError(
        f"internal error: {what} used outside a guarded call (tinybpf._guard); please report this"
    )


os.register_at_fork(after_in_child=_reset_in_child)
