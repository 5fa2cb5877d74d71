"""The name -> program/map views of a ``BpfObject``: the public read-only collections and
the lazily built, weakly held wrappers behind them."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from .errors import BpfClosedError
from .map import BpfMap
from .program import BpfProgram

__all__ = ["MapCollection", "ProgramCollection"]


W = TypeVar("W")


class _Collection(Mapping[str, W]):
    """A read-only view of an object's programs or maps by name, with attribute access
    for names that are identifiers."""

    _kind = "Item"

    def __init__(self, items: Mapping[str, W], owner: Any = None) -> None:
        self._d = items
        self._owner = owner  # the BpfObject: a collection keeps it alive

    def __getitem__(self, name: str) -> W:
        try:
            return self._d[name]
        except KeyError:
            raise KeyError(self._not_found(name)) from None

    def _not_found(self, name: object) -> str:
        avail = ", ".join(self._d) or "(none)"
        return f"{self._kind} {name!r} not found. Available {self._kind.lower()}s: {avail}"

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, name: object) -> bool:
        return name in self._d

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {list(self._d)}>"

    def __getattr__(self, name: str) -> W:
        d = self.__dict__.get("_d", {})
        if name in d:
            return d[name]  # type: ignore[no-any-return]
        if name.startswith("_") or "_d" not in self.__dict__:
            raise AttributeError(name)
        raise AttributeError(self._not_found(name))

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {n for n in self._d if n.isidentifier()})


class ProgramCollection(_Collection[BpfProgram]):
    """Read-only mapping of program name to :class:`BpfProgram`.

    Example::

        obj = tinybpf.open("prog.bpf.o")
        for name, prog in obj.programs.items():
            prog.autoload = name != "handle_exit"
        obj.load()
    """

    _kind = "Program"


class MapCollection(_Collection[BpfMap[Any, Any]]):
    """Read-only mapping of map name to :class:`BpfMap`.

    Example::

        for name, m in obj.maps.items():
            print(name, m.type.name)
        counts = obj.maps.counts   # attribute access for names that are identifiers
    """

    _kind = "Map"


class _Wrappers(Mapping[str, W]):
    """Name -> wrapper, built on first access (opening an object stays cheap).

    Every wrapper holds its object strongly (a map, a program keeps its object alive); the
    object holds its wrappers weakly, so no object <-> children cycle forms and an object
    that is dropped unclosed is freed by reference counting alone. A wrapper nobody holds
    any more is built anew on the next access: state that must outlive it lives in libbpf
    or on the object.
    """

    __slots__ = ("_made", "_make", "_owner", "_ptrs")

    def __init__(self, names: list[str], make: Callable[[Any, str], W], owner: Any) -> None:
        self._ptrs = dict.fromkeys(names)
        self._made: dict[str, weakref.ref[W]] = {}
        self._make = make
        self._owner = weakref.ref(owner)  # the object holds this mapping

    def __getitem__(self, name: str) -> W:
        ref = self._made.get(name)
        w = None if ref is None else ref()
        if w is None:
            if name not in self._ptrs:
                raise KeyError(name)
            owner = self._owner()
            if owner is None:
                raise BpfClosedError("the BpfObject of this collection is gone")
            w = self._make(owner, name)
            self._made[name] = weakref.ref(w)
        return w

    def __iter__(self) -> Iterator[str]:
        return iter(self._ptrs)

    def __len__(self) -> int:
        return len(self._ptrs)

    def __contains__(self, name: object) -> bool:
        return name in self._ptrs

    def created(self) -> list[W]:
        """The wrappers alive now."""
        return [w for ref in list(self._made.values()) if (w := ref()) is not None]
