"""The owner/borrow protocol that makes ``close()`` safe (DESIGN.md rule 9).

Each resource that frees libbpf memory or closes an fd has one :class:`Owner`: a
``BpfObject`` (shared by its programs, maps, globals and BTF), a standalone ``Btf``, a
``BpfLink``, a standalone ``BpfMap``. Code that uses the resource's libbpf memory does it
inside a *borrow*, which holds the owner's reentrant lock and counts the calls in flight.
Which methods borrow is decided when the class is created, not by a list of names: a class
that derives from :class:`Borrower` has every method and property that reaches the
resource wrapped in a borrow of ``self._guard``. A method reaches the resource when its code
(nested functions included) names one of :data:`HANDLE_NAMES` (``_p``/``_mp``/``_lp``, the
pointer accessors, and ``_ptr``) or one of the class's ``_handles`` (its own helpers that
return a raw pointer, fd or libbpf memory, e.g. ``_find`` or ``fd``). A new method is
covered without being listed anywhere. The owner's ``close()`` goes through
:meth:`Owner.release`:

* another thread waits until the borrows in flight end (they hold the lock);
* the same thread (a signal handler, an ``__fspath__``/``__index__`` of an argument, a
  conversion hook run by a borrowed call) cannot wait for itself: the resource is marked
  closed at once (every later borrow raises ``BpfClosedError``) and freed when the
  outermost borrow of that thread returns (a deferred close);
* the pointer accessors (``_p()``, ``_mp()``, ``_lp()``) raise ``AssertionError`` when
  called outside a borrow, so code elsewhere (another class, a module function) that
  reaches a pointer without a borrow fails in tests instead of racing with ``close()``.

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
import inspect
import os
import types
import weakref
from _thread import RLock
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

__all__ = ["HANDLE_NAMES", "Borrower", "Owner", "borrow", "borrows", "new_lock", "unguarded"]

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


def _borrowing(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run as a borrow of ``self._guard`` (no borrow when it is None)."""
    if inspect.isgeneratorfunction(fn):
        return _borrowing_generator(fn)

    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        g = self._guard
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

    call.__borrows__ = True  # type: ignore[attr-defined]
    return call


def _borrowing_generator(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A generator method whose every step (not only its creation) is a borrow."""

    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        it = fn(self, *args, **kwargs)
        while True:
            g = self._guard
            if g is None:
                yield from it
                return
            with borrow(g):
                try:
                    value = next(it)
                except StopIteration:
                    return
            yield value

    call.__borrows__ = True  # type: ignore[attr-defined]
    return call


HANDLE_NAMES = frozenset({"_p", "_mp", "_lp", "_ptr"})
"""The names through which code reaches a resource: the pointer accessors (which assert
they run inside a borrow) and the attribute holding the pointer."""

_ACCESSORS = frozenset({"_p", "_mp", "_lp"})
# Lifecycle methods manage the handle itself (they run before the owner exists, close it,
# or must work on a closed or half-built object) and are no borrows.
_LIFECYCLE = frozenset(
    {
        "__init__",
        "__new__",
        "__del__",
        "__repr__",
        "__enter__",
        "__exit__",
        "__init_subclass__",
        "close",
        "closed",
        "destroy",
        "destroyed",
        "closed_stub",
        "_check_open",
        "_revoke",
    }
)


def _names(code: types.CodeType) -> set[str]:
    """Every global/attribute name a function's code (and its nested code) uses."""
    out = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out |= _names(const)
    return out


def _reaches(fn: Any, handles: frozenset[str]) -> bool:
    fn = getattr(fn, "__wrapped__", fn)
    code = getattr(fn, "__code__", None)
    return code is not None and not _names(code).isdisjoint(handles)


class Borrower:
    """Base of a class whose methods use the resource of an :class:`Owner` (``self._guard``).

    At class creation every function and property of the class body whose code names one
    of :data:`HANDLE_NAMES` or of the class's ``_handles`` is wrapped in a borrow of
    ``self._guard`` (generator methods borrow at every step); lifecycle methods
    (``__init__``, ``close``, ``__repr__``, ...) and the pointer accessors themselves are
    left alone. Static and class methods are never wrapped.
    """

    __slots__ = ()
    _handles: ClassVar[frozenset[str]] = frozenset()
    """Helpers of this class that return a raw pointer, fd or libbpf memory."""
    _guard: Owner

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handles = HANDLE_NAMES | cls._handles
        for name, attr in list(vars(cls).items()):
            if name in _LIFECYCLE or name in _ACCESSORS:
                continue
            if isinstance(attr, property):
                getter, setter = attr.fget, attr.fset
                if not any(f is not None and _reaches(f, handles) for f in (getter, setter)):
                    continue
                if getter is not None and not getattr(getter, "__borrows__", False):
                    getter = _borrowing(getter)
                if setter is not None and not getattr(setter, "__borrows__", False):
                    setter = _borrowing(setter)
                setattr(cls, name, property(getter, setter, attr.fdel, attr.__doc__))
            elif (
                isinstance(attr, types.FunctionType)
                and _reaches(attr, handles)
                and not getattr(attr, "__borrows__", False)
            ):
                setattr(cls, name, _borrowing(attr))


def borrows(fn: Any) -> bool:
    """Whether a method or property of a :class:`Borrower` runs as a borrow."""
    if isinstance(fn, property):
        return all(getattr(f, "__borrows__", False) for f in (fn.fget, fn.fset) if f)
    return bool(getattr(fn, "__borrows__", False))


def unguarded(what: str) -> AssertionError:
    """The error of a pointer accessor called outside a borrow (code outside the class
    reached the pointer without ``with borrow(owner):``)."""
    return AssertionError(
        f"internal error: {what} used outside a guarded call (tinybpf._guard); please report this"
    )


os.register_at_fork(after_in_child=_reset_in_child)
