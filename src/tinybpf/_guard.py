"""Serialising libbpf calls that dereference an object's memory with that object's close().

A thread may close a :class:`~tinybpf.BpfObject` while another thread is inside one of its
calls. Checking "is it closed?" and then calling libbpf leaves a window in which the memory
is freed; every method that reads libbpf memory of an object (programs, maps' libbpf
handles, the object's BTF, memory-mapped globals) therefore runs under the object's
reentrant lock, and ``close()`` takes the same lock. Element operations on maps use the
map's fd and are not serialised (hot path); after close they fail with a clear error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["guarded"]

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
