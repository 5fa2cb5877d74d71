"""Global variables of a BPF object, typed from BTF.

``obj.globals["name"]`` reads a variable, ``obj.globals["name"] = value`` writes it, in any
section; ``obj.globals[".rodata"]`` (or ``.bss``, ``.data``, ``.data.foo``...) is the view of
one section. Before load, writes set initial values (this is how ``const volatile``
configuration reaches a program). After load, ``.bss``/``.data`` access the live kernel
memory through the map's memory mapping, without a syscall; ``.rodata`` is frozen and
read-only.

Example::

    obj = tinybpf.open("prog.bpf.o")
    obj.globals["target_pid"] = 1234     # const volatile __u32 target_pid;
    obj.load()
    print(obj.globals["hits"])           # a counter the program updates in .bss
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ._codec import variable_codec
from ._core import btfcalls
from ._core.owner import Borrower
from ._types import BtfKind, BtfType
from .errors import BpfError, BpfPhaseError

if TYPE_CHECKING:
    from ._protocols import ObjectLike
    from .map import BpfMap

__all__ = ["GlobalSection", "GlobalVariables"]

_RO_SECTIONS = (".rodata", ".kconfig")


class _Var:
    __slots__ = ("btf", "codec", "ctype", "name", "offset", "section", "size")

    def __init__(
        self, name: str, offset: int, size: int, btf: BtfType, ctype: Any, section: str
    ) -> None:
        self.name = name
        self.offset = offset
        self.size = size
        self.btf = btf
        self.ctype = ctype
        self.section = section
        self.codec = variable_codec(name, size, btf, ctype)


class _Layout:
    """The variables of one data section as BTF describes them now. Cached on the object
    and rebuilt when a section map is resized (so it holds no reference to the object or
    its maps: handles hold the object, never the other way round)."""

    __slots__ = ("map_name", "name", "vars")

    def __init__(self, name: str, map_name: str) -> None:
        self.name = name
        self.map_name = map_name
        self.vars: dict[str, _Var] = {}


def globals_layout(obj: ObjectLike) -> tuple[dict[str, _Layout], dict[str, _Layout]]:
    """(sections by name, the section of each variable name) of ``obj``, from its BTF."""
    sections: dict[str, _Layout] = {}
    index: dict[str, _Layout] = {}
    btf = obj._btf_model()
    if btf is None:
        return sections, index
    for bmap in obj._maps.values():  # (creates the wrappers)
        if not bmap.is_internal:
            continue
        tid = btfcalls.map_value_type_id(bmap._mp())
        if not tid:
            continue
        sec = btf.resolve(tid)
        if sec.kind != BtfKind.DATASEC:
            continue
        layout = _Layout(sec.name, bmap.name)
        for f in sec.fields or ():
            if f.type is None or not f.name:
                continue
            ctype = btf.ctype(f.type.type_id) if f.type.type_id else None
            layout.vars[f.name] = _Var(f.name, f.offset, f.size, f.type, ctype, sec.name)
            index.setdefault(f.name, layout)
        sections[sec.name] = layout
    return sections, index


def _is_readonly(section: str) -> bool:
    return any(section == s or section.startswith(s + ".") for s in _RO_SECTIONS)


class GlobalSection(Mapping[str, Any], Borrower):
    """The variables of one data section (``.bss``, ``.data``, ``.rodata``, custom ones).

    It keeps its object alive, and follows a resize of the section before load (a
    ``.data.*`` map's ``value_size``: its last variable, an array, grows or shrinks).

    Example::

        bss = obj.globals[".bss"]
        print(bss.readonly, dict(bss))
        bss["hits"] = 0
    """

    # the section's libbpf memory (see tinybpf._core.owner.Borrower)
    _handles = frozenset({"_memory"})

    def __init__(self, obj: ObjectLike, name: str) -> None:
        self._obj = obj
        self._guard = obj._guard
        self.name = name

    @property
    def _vars(self) -> dict[str, _Var]:
        return self._obj._globals_layout()[0][self.name].vars

    @property
    def readonly(self) -> bool:
        """True when writes are refused now (``.rodata``/``.kconfig`` after load)."""
        return _is_readonly(self.name) and (self._obj._loaded or self._obj._load_failed)

    @property
    def map(self) -> BpfMap[Any, Any]:
        return self._obj._maps[self._obj._globals_layout()[0][self.name].map_name]

    def _memory(self) -> tuple[Any, int]:
        """(pointer, size) of the section's bytes: initial value before load, the
        memory-mapped map after load (None if the kernel map is not mappable)."""
        return btfcalls.initial_value(self.map._mp())

    def _read_bytes(self, var: _Var) -> bytes:
        ptr, size = self._memory()
        if ptr is not None and var.offset + var.size <= size:
            return btfcalls.read(ptr, var.offset, var.size)
        if self._obj._loaded:  # not mappable: read the array map's single value
            raw = self.map._lookup_raw_bytes(b"\0\0\0\0")
            if raw is not None:
                return btfcalls.read(raw, var.offset, var.size)
        raise BpfError(f"global variable '{var.name}' of {self.name} is not accessible")

    def _write_bytes(self, var: _Var, data: bytes) -> None:
        if len(data) != var.size:  # never past the variable, whatever the encoder made
            raise ValueError(f"'{var.name}' is {var.size} bytes, got {len(data)}")
        if self._obj._load_failed:
            raise BpfPhaseError(
                f"cannot write '{var.name}': load() of this object failed (libbpf may have "
                "mapped its data read-only); open the object again"
            )
        if self.readonly:
            raise BpfPhaseError(
                f"cannot write '{var.name}': section {self.name} is read-only after load "
                "(set const volatile variables before load())"
            )
        ptr, size = self._memory()
        if ptr is not None and var.offset + var.size <= size:
            btfcalls.write(ptr, var.offset, data)
            return
        if self._obj._loaded:
            key = b"\0\0\0\0"
            bmap = self.map
            raw = bmap._lookup_raw_bytes(key)
            if raw is not None:
                btfcalls.write(raw, var.offset, data)
                check = btfcalls.map_update_from(bmap.fd, key, raw, bmap.value_size)
                if check < 0:
                    from ._core import check_int

                    check_int(check, f"write global '{var.name}' failed")
                return
        raise BpfError(f"global variable '{var.name}' of {self.name} is not accessible")

    def _var(self, name: str) -> _Var:
        self._obj._check_open()
        variables = self._vars
        try:
            return variables[name]
        except KeyError:
            raise KeyError(
                f"no global variable '{name}' in {self.name}; variables: {sorted(variables)}"
            ) from None

    def __getitem__(self, name: str) -> Any:
        var = self._var(name)
        return var.codec.decode(self._read_bytes(var))

    def __setitem__(self, name: str, value: Any) -> None:
        var = self._var(name)
        self._write_bytes(var, var.codec.encode(value))

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._vars))

    def __len__(self) -> int:
        return len(self._vars)

    def type_of(self, name: str) -> BtfType:
        """The resolved BTF type of a variable."""
        return self._var(name).btf

    def __repr__(self) -> str:
        try:
            body = ", ".join(f"{n}={self[n]!r}" for n in self._vars)
        except BpfError:
            body = "closed"
        return f"<GlobalSection {self.name} {body}>"


class GlobalVariables(Mapping[str, Any]):
    """Every global variable of an object by name; ``globals[".bss"]`` is one section.

    It keeps its object alive.

    Example::

        obj.globals["target_pid"] = 1234   # before load: an initial value
        obj.load()
        print(obj.globals.hits, obj.globals.type_of("hits").name, list(obj.globals.sections))
    """

    def __init__(self, obj: ObjectLike) -> None:
        self._obj = obj
        obj._globals_layout()

    @property
    def _sections(self) -> dict[str, _Layout]:
        return self._obj._globals_layout()[0]

    @property
    def _index(self) -> dict[str, _Layout]:
        return self._obj._globals_layout()[1]

    @property
    def sections(self) -> dict[str, GlobalSection]:
        """The data sections by name (``.bss``, ``.data``, ``.rodata``, ...)."""
        return {name: GlobalSection(self._obj, name) for name in self._sections}

    def _section_of(self, name: str) -> GlobalSection:
        self._obj._check_open()
        index = self._index
        sec = index.get(name)
        if sec is None:
            raise KeyError(
                f"no global variable '{name}'; variables: {sorted(index)}; "
                f"sections: {sorted(self._sections)}"
            )
        return GlobalSection(self._obj, sec.name)

    def __getitem__(self, name: str) -> Any:
        if name.startswith("."):
            if name not in self._sections:
                raise KeyError(f"no data section '{name}'; sections: {sorted(self._sections)}")
            return GlobalSection(self._obj, name)
        return self._section_of(name)[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._section_of(name)[name] = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {n for n in self._index if n.isidentifier()})

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._index))

    def __len__(self) -> int:
        return len(self._index)

    def type_of(self, name: str) -> BtfType:
        return self._section_of(name).type_of(name)

    def __repr__(self) -> str:
        return f"<GlobalVariables {sorted(self._index)} sections={sorted(self._sections)}>"
