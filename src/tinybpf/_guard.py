"""Serialising libbpf calls that dereference an object's memory with that object's close().

A thread may close a :class:`~tinybpf.BpfObject` while another thread is inside one of its
calls. Checking "is it closed?" and then calling libbpf leaves a window in which the memory
is freed; every method that reads libbpf memory of an object (programs, maps' libbpf
handles, the object's BTF, memory-mapped globals) therefore runs under the object's
reentrant lock, and ``close()`` takes the same lock. Element operations on maps use the
map's fd and are not serialised (hot path); after close they fail with a clear error.

Locks come from :func:`new_lock`, which keeps track of them: a ``fork()`` while another
thread is inside a guarded call copies the lock held by a thread the child does not have,
and every guarded call of the child would wait for it forever. The child resets them.
"""

from __future__ import annotations

import functools
import os
import weakref
from _thread import RLock
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["guarded", "new_lock"]

_LOCKS: weakref.WeakSet[Any] = weakref.WeakSet()


def new_lock() -> Any:
    """A reentrant lock for an object's guarded calls, released in a forked child."""
    lock = RLock()
    _LOCKS.add(lock)
    return lock


def _reset_locks_in_child() -> None:
    # The child has one thread: no lock can rightly be held. (What the parent's thread
    # was doing inside libbpf is unfinished in the child's copy of that object.)
    for lock in list(_LOCKS):
        lock._at_fork_reinit()


os.register_at_fork(after_in_child=_reset_locks_in_child)

C = TypeVar("C", bound=type)


def _wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock = self._guard_lock
        if lock is None:
            return fn(self, *args, **kwargs)
        with lock:
            return fn(self, *args, **kwargs)

    return call


def guarded(names: Iterable[str]) -> Callable[[C], C]:
    """Class decorator: run the named methods and properties under ``self._guard_lock``."""

    def decorate(cls: C) -> C:
        for name in names:
            attr = cls.__dict__[name]
            if isinstance(attr, property):
                fget = _wrap(attr.fget) if attr.fget else None
                fset = _wrap(attr.fset) if attr.fset else None
                setattr(cls, name, property(fget, fset, None, attr.__doc__))
            else:
                setattr(cls, name, _wrap(attr))
        return cls

    return decorate
