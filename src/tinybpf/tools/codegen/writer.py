"""The generator of ``tinybpf gen``: the model of a module (records, enums, globals, maps)
and its source text. Record layouts come from :meth:`tinybpf.Btf.layout`, the engine the
run-time ctypes types use."""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from pathlib import Path

from ... import BpfObject, Btf, BtfField, BtfKind, BtfType
from .embed import _linked_object
from .names import (
    _BOOL_ENCODING,
    _BUILTIN_ANNS,
    _CHAR_ENCODING,
    _ENUM_RESERVED,
    _ENUMS,
    _INTS,
    _MODULES,
    _RECORD_ATTRS,
    _RECORDS,
    _U8,
    _WRAPPER_ATTRS,
    _camel,
    _doc,
    _fix_ann,
    _ident,
    _is_private,
    _Names,
    _plain,
    _q,
    _tuple,
)
from .template import _HELPERS

# --- model --------------------------------------------------------------------------------


@dataclass
class _T:
    """How one BTF type is written in the generated code."""

    expr: str  # the ctypes type (in _fields_, as an array element)
    ann: str  # the Python type of a struct attribute of this type
    ctann: str  # the ctypes type as a type argument (ctypes.Array[...])


@dataclass
class _Record:
    name: str
    bt: BtfType
    code: str = ""
    # every attribute name ctypes defines on the class (own fields, promoted ones too)
    ctypes_names: set[str] = field(default_factory=set)
    # annotated ctypes attributes: name -> annotation
    fields: dict[str, str] = field(default_factory=dict)
    # Python properties (bitfields, keyword aliases, forwards): name -> annotation
    props: dict[str, str] = field(default_factory=dict)
    # alias -> C name of bitfields whose C name is set on the class after its body
    renamed: dict[str, str] = field(default_factory=dict)
    # alias -> (C name, annotation) of fields whose C name cannot be an attribute
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)
    visible: tuple[str, ...] = ()


@dataclass
class _Global:
    section: str
    name: str
    ident: str
    get_ann: str
    set_ann: str
    conv: str  # expression turning `v` (what obj.globals returns) into get_ann
    to_obj: str  # expression turning `value` (set_ann) into what obj.globals accepts
    decl: str
    settable: bool


@dataclass
class _Map:
    name: str
    ident: str
    key_rt: str
    key_ann: str
    value_rt: str
    value_ann: str
    doc: str


# --- the generator ------------------------------------------------------------------------


class _ModuleWriter:
    def __init__(
        self,
        obj: BpfObject,
        path: Path,
        base: str,
        all_types: bool,
        embed: bool = False,
        package: str = "tinybpf",
    ) -> None:
        btf = obj.btf
        if btf is None:
            raise ValueError(f"{path}: the object has no BTF (compile it with clang -g)")
        self.obj = obj
        self.btf: Btf = btf
        self.path = path
        self.all_types = all_types
        self.embed = embed
        self.package = package
        self.names = _Names()
        self.wrapper = self.names.take(base if base.endswith("Object") else base + "Object")
        self.globals_cls = self.names.take(self.wrapper[: -len("Object")] + "Globals")
        self.records: dict[int, _Record] = {}
        self.order: list[_Record] = []
        self.enums: dict[int, str | None] = {}
        self.enum_code: list[str] = []
        self.btf_names: dict[str, str] = {}
        self.typedefs: dict[int, str] = {}
        for t in self.btf:
            if t.kind == BtfKind.TYPEDEF and t.name:
                target = self.btf.resolve(t.type_id)
                if not target.name and target.kind in (*_RECORDS, *_ENUMS):
                    self.typedefs.setdefault(target.type_id, t.name)

    # --- ctypes types -------------------------------------------------------------------
    def ctype(self, bt: BtfType, hint: str) -> _T:
        """Source text of the ctypes type tinybpf._ctypes_gen builds for ``bt``."""
        kind = bt.kind
        size = bt.size or 0
        if kind == BtfKind.INT:
            if bt.encoding & _BOOL_ENCODING and size == 1:
                return _T("ctypes.c_bool", "bool", "ctypes.c_bool")
            if size == 1 and (bt.encoding & _CHAR_ENCODING or bt.name == "char"):
                return _T("ctypes.c_char", "bytes", "ctypes.c_char")
            return self._int(size, bt.signed)
        if kind in _ENUMS:
            self.enum(bt)
            return self._int(size, bt.signed)
        if kind == BtfKind.FLOAT:
            e = {4: "ctypes.c_float", 8: "ctypes.c_double"}.get(size)
            return _T(e, "float", e) if e else self._bytes(size)
        if kind == BtfKind.PTR:
            e = _INTS.get((size, False), "ctypes.c_uint64")
            return _T(e, "int", e)
        if kind == BtfKind.ARRAY and bt.elem is not None:
            el = self.ctype(bt.elem, hint)
            inner = f"({el.expr})" if "*" in el.expr else el.expr
            ctann = f"ctypes.Array[{el.ctann}]"
            ann = "bytes" if el.expr == "ctypes.c_char" else ctann
            return _T(f"{inner} * {bt.nelems}", ann, ctann)
        if kind in _RECORDS:
            name = self.record(bt, hint).name
            return _T(name, name, name)
        return self._bytes(size)

    @staticmethod
    def _int(size: int, signed: bool) -> _T:
        e = _INTS.get((size, signed))
        return _T(e, "int", e) if e else _ModuleWriter._bytes(size)

    @staticmethod
    def _bytes(size: int) -> _T:
        return _T(f"{_U8} * {size}", f"ctypes.Array[{_U8}]", f"ctypes.Array[{_U8}]")

    # --- enums --------------------------------------------------------------------------
    def enum(self, bt: BtfType) -> str | None:
        """The IntEnum class of a named (or typedef'd) enum, emitted once; None if anonymous."""
        if bt.type_id in self.enums:
            return self.enums[bt.type_id]
        cname = bt.name or self.typedefs.get(bt.type_id, "")
        if not cname or not bt.enum_values:
            self.enums[bt.type_id] = None
            return None
        name = self.names.take(_camel(cname))
        self.enums[bt.type_id] = name
        self.btf_names.setdefault(cname, name)
        lines = [
            f"class {name}(_OpenEnum):",
            f'    """enum {_doc(cname)} ({bt.size} bytes)."""',
            "",
        ]
        used: set[str] = set()
        for mname, value in bt.enum_values:
            ident = _ident(mname)
            if ident.startswith("_"):
                ident = "V" + ident
            if ident in _ENUM_RESERVED:
                ident += "_"
            while ident in used:
                ident += "_"
            used.add(ident)
            lines.append(f"    {ident} = {value}")
        self.enum_code.append("\n".join(lines))
        return name

    # --- structs and unions -------------------------------------------------------------
    def record(self, bt: BtfType, hint: str) -> _Record:
        rec = self.records.get(bt.type_id)
        if rec is not None:
            return rec
        cname = bt.name or self.typedefs.get(bt.type_id, "")
        rec = _Record(self.names.take(_camel(cname) if cname else hint), bt)
        self.records[bt.type_id] = rec
        if cname:
            self.btf_names.setdefault(cname, rec.name)
        members = list(bt.fields or ())
        # First the member types (this emits nested records), so that the private names
        # of this record can avoid every name ctypes promotes from anonymous members.
        types: list[_T | None] = []
        n_anon = 0
        for f in members:
            if f.bitfield_size and bt.kind == BtfKind.STRUCT:
                types.append(None)
                continue
            if f.type is None:
                types.append(self._bytes(f.size))
                continue
            sub_hint = rec.name + (_camel(f.name) if f.name else f"Anon{n_anon}")
            n_anon += 0 if f.name else 1
            types.append(self.ctype(f.type, sub_hint))
        taken = {f.name for f in members if f.name}
        for f in members:
            if not f.name and f.type is not None and f.type.type_id in self.records:
                taken |= self.records[f.type.type_id].ctypes_names
        self._layout(rec, members, types, taken)
        self.order.append(rec)
        return rec

    def _layout(
        self, rec: _Record, members: list[BtfField], types: list[_T | None], taken: set[str]
    ) -> None:
        """The layout of Btf.layout (as the run-time types have it), as source text."""
        type_of = {id(f): t for f, t in zip(members, types, strict=True)}

        def private(prefix: str, n: int) -> str:
            text = f"{prefix}{n}"
            while text in taken:
                text += "_"
            taken.add(text)
            return text

        entries: list[tuple[str, str, str]] = []  # (name, ctypes expression, comment)
        anonymous: list[tuple[str, _Record | None]] = []
        visible: list[str] = []
        bitprops: list[tuple[str, str, int, int, bool]] = []
        for slot in self.btf.layout(rec.bt).slots:
            if slot.kind == "pad":
                entries.append((private("_pad", slot.index), f"{_U8} * {slot.size}", ""))
                continue
            if slot.kind == "bits":
                store = private("_bits", slot.index)
                rec.fields[store] = "ctypes.Array[ctypes.c_uint8]"  # for mypy: the accessors
                names = ", ".join(b.name or "(unnamed)" for b in slot.bitfields)
                entries.append((store, f"{_U8} * {slot.size}", f"bitfields {names}"))
                for b in slot.bitfields:
                    bitprops.append((b.name, store, b.shift, b.bits, b.signed))
                    visible.append(b.name)
                continue
            f = slot.field
            assert f is not None
            t = type_of[id(f)]
            assert t is not None
            comment = self._decl(f.type, f.name or "(anonymous)") + f" @ {f.offset}"
            if slot.kind == "field":
                entries.append((f.name, t.expr, comment))
                visible.append(f.name)
                self._annotate(rec, f.name, t.ann)
            elif slot.kind == "unnamed":  # not a struct or union: hidden storage
                entries.append((private("_unnamed", slot.index), t.expr, comment))
            else:
                aname = private("_anon", slot.index)
                sub = self.records.get(f.type.type_id) if f.type is not None else None
                entries.append((aname, t.expr, comment))
                anonymous.append((aname, sub))
                rec.fields[aname] = t.ann
                if sub is not None:
                    visible.extend(sub.visible)
                    rec.ctypes_names |= sub.ctypes_names
                    for name, ann in sub.fields.items():
                        if not name.startswith("_"):
                            rec.fields.setdefault(name, ann)
        rec.visible = tuple(visible)
        rec.ctypes_names |= {name for name, _, _ in entries}
        rec.code = self._record_code(rec, entries, anonymous, bitprops)

    def _unsafe(self, name: str) -> bool:
        """Whether a C member name cannot be a typed attribute of a generated class."""
        return (
            keyword.iskeyword(name)
            or not _plain(name)
            or _is_private(name)
            or name in _RECORD_ATTRS
            or name in _MODULES
            or name in self.names.classes
        )

    @staticmethod
    def _alias(name: str) -> str:
        """``from`` -> ``from_``, ``__flags`` -> ``flags_``."""
        if _is_private(name):
            return _ident(name.lstrip("_")).rstrip("_") + "_"
        return (name if _plain(name) else _ident(name).rstrip("_")) + "_"

    def _annotate(self, rec: _Record, name: str, ann: str) -> None:
        """Declare a field's type for mypy, or give it a typed alias property."""
        if self._unsafe(name):
            rec.aliases[self._alias(name)] = (name, ann)  # accessors in _record_code
        else:
            rec.fields[name] = ann

    def _record_code(
        self,
        rec: _Record,
        entries: list[tuple[str, str, str]],
        anonymous: list[tuple[str, _Record | None]],
        bitprops: list[tuple[str, str, int, int, bool]],
    ) -> str:
        bt = rec.bt
        kw = "union" if bt.kind == BtfKind.UNION else "struct"
        cname = bt.name or self.typedefs.get(bt.type_id, "") or "(anonymous)"
        base = "_BtfUnion" if bt.kind == BtfKind.UNION else "_BtfStruct"
        out = [
            f"class {rec.name}({base}):",
            f'    """{kw} {_doc(cname)} ({bt.size or 0} bytes)."""',
        ]
        out += ["", "    _pack_ = 1"]
        if anonymous:
            out.append(f"    _anonymous_ = {_tuple(a for a, _ in anonymous)}")
        out.append("    _fields_ = (")
        for name, expr, comment in entries:
            out.append(f"        ({_q(name)}, {expr}),{'  # ' + _doc(comment) if comment else ''}")
        out.append("    )")
        visible = f"    _tinybpf_fields_ = {_tuple(rec.visible)}"
        if len(visible) > 100:
            visible = (
                "    _tinybpf_fields_ = (\n"
                + "".join(f"        {_q(v)},\n" for v in rec.visible)
                + "    )"
            )
        out.append(visible)

        # properties: (name, annotation, getter expression, setter statement)
        accessors: list[tuple[str, str, str, str]] = []
        late: list[tuple[str, str]] = []  # (C name, alias) of bitfields set after the class
        for name, store, shift, bits, signed in bitprops:
            alias = name
            if self._unsafe(name):
                alias = self._alias(name)
                late.append((name, alias))
            accessors.append(
                (
                    alias,
                    "int",
                    f"_get_bits(self.{store}, {shift}, {bits}, {signed})",
                    f"_set_bits(self.{store}, {shift}, {bits}, value)",
                )
            )
        for alias, (real, ann) in rec.aliases.items():  # fields with unsafe names
            accessors.append(
                (
                    alias,
                    ann,
                    f"typing.cast({_q(ann)}, getattr(self, {_q(real)}))",
                    f"setattr(self, {_q(real)}, value)",
                )
            )
        for aname, sub in anonymous:  # bitfields and aliases of anonymous members
            if sub is None:
                continue
            for name, ann in sub.props.items():
                if any(name == a[0] for a in accessors):
                    continue
                accessors.append(
                    (name, ann, f"self.{aname}.{name}", f"self.{aname}.{name} = value")
                )
                if name in sub.renamed:
                    late.append((sub.renamed[name], name))
        rec.renamed.update({alias: c for c, alias in late})
        for name, ann, _, _ in accessors:
            rec.props[name] = ann
        shadowed = set(rec.fields) | set(rec.props)
        if rec.fields:
            out.append("")
            out += [f"    {n}: {_fix_ann(a, shadowed)}" for n, a in rec.fields.items()]
        for name, ann, getter, setter in accessors:
            ann = _fix_ann(ann, shadowed)
            out += [
                "",
                "    @property",
                f"    def {name}(self) -> {ann}:",
                f"        return {getter}",
                "",
                f"    @{name}.setter",
                f"    def {name}(self, value: {ann}) -> None:",
                f"        {setter}",
            ]
        if late:
            out.append("")
            out.append("")
            out += [
                f"setattr({rec.name}, {_q(c)}, {rec.name}.__dict__[{_q(alias)}])"
                for c, alias in late
            ]
        return "\n".join(out)

    def _decl(self, bt: BtfType | None, name: str) -> str:
        """A short C declaration for comments and docstrings."""
        if bt is None:
            return name
        dims = ""
        while bt.kind == BtfKind.ARRAY and bt.elem is not None:
            dims += f"[{bt.nelems}]"
            bt = bt.elem
        stars = ""
        if bt.kind == BtfKind.PTR:
            stars = "*"
            bt = self.btf.resolve(bt.ref_id) if bt.ref_id else bt
            if bt.kind == BtfKind.PTR:
                return f"void *{name}{dims}"
        tname = bt.type_name or bt.name
        if not tname:
            tname = {BtfKind.STRUCT: "struct", BtfKind.UNION: "union"}.get(bt.kind, "void")
            tname += " {...}" if bt.kind in _RECORDS else ""
        elif tname == bt.name and bt.kind in (*_RECORDS, *_ENUMS):
            tname = f"{'union' if bt.kind == BtfKind.UNION else bt.kind.name.lower()} {tname}"
            tname = tname.replace("enum64", "enum")
        return f"{tname} {stars}{name}{dims}"

    # --- Python types of map keys, map values and globals -----------------------------
    def map_type(self, bt: BtfType | None, hint: str) -> tuple[str, str]:
        """(type given to BpfMap.typed, annotation) of a key or value."""
        if bt is None:
            return "bytes", "bytes"
        if bt.kind in (BtfKind.INT, BtfKind.PTR, *_ENUMS):
            if bt.kind in _ENUMS:
                self.enum(bt)
            return "int", "int"
        if bt.kind == BtfKind.FLOAT and bt.size in (4, 8):
            return "float", "float"
        if bt.kind in _RECORDS:
            name = self.record(bt, hint).name
            return name, name
        if bt.kind == BtfKind.ARRAY and bt.elem is not None:
            t = self.ctype(bt, hint)
            return t.expr, t.ctann
        return "bytes", "bytes"

    def global_type(self, bt: BtfType, hint: str, var: str, depth: int = 0) -> tuple[str, str, str]:
        """(getter annotation, setter annotation, conversion of ``var`` to the getter type)."""
        kind = bt.kind
        if kind == BtfKind.INT:
            expr = self.ctype(bt, hint).expr
            if expr == "ctypes.c_bool":
                return "bool", "bool", f"bool({var})"
            if expr == "ctypes.c_char":
                return "bytes", "bytes", f"bytes({var})"
            return "int", "int", f"int({var})"
        if kind in _ENUMS:
            ename = self.enum(bt)
            if ename is not None:
                return ename, "int", f"{ename}(int({var}))"
            return "int", "int", f"int({var})"
        if kind == BtfKind.PTR:
            return "int", "int", f"int({var})"
        if kind == BtfKind.FLOAT and bt.size in (4, 8):
            return "float", "float", f"float({var})"
        if kind in _RECORDS:
            name = self.record(bt, hint).name
            return name, name, f"{name}.from_buffer_copy(_raw({var}))"
        if kind == BtfKind.ARRAY and bt.elem is not None:
            if self.ctype(bt, hint).ann == "bytes":
                return "bytes", "bytes | str", f"_cstr({var})"
            item = f"x{depth}"
            g, s, c = self.global_type(bt.elem, hint, item, depth + 1)
            if g == "bytes" and s == "bytes" and bt.elem.kind != BtfKind.INT:
                c = f"_raw({item})"
            return f"list[{g}]", f"collections.abc.Sequence[{s}]", f"[{c} for {item} in {var}]"
        return "bytes", "bytes", f"_raw({var})"

    # --- the module ---------------------------------------------------------------------
    def collect(self) -> tuple[list[_Map], list[_Global]]:
        obj = self.obj
        maps: list[_Map] = []
        for m in obj.maps.values():
            if m.is_internal:
                continue
            hint = _camel(m.name)
            key_rt, key_ann = self.map_type(m.btf_key, hint + "Key")
            value_rt, value_ann = self.map_type(m.btf_value, hint + "Value")
            doc = f"{m.type.name}, {m.max_entries} entries as compiled"
            maps.append(_Map(m.name, "", key_rt, key_ann, value_rt, value_ann, doc))
        gvars: list[_Global] = []
        for sec_name, sec in obj.globals.sections.items():
            settable = not (sec_name == ".kconfig" or sec_name.startswith(".kconfig."))
            for var in sec:
                bt = sec.type_of(var)
                hint = _camel(var)
                if bt.kind == BtfKind.PTR and bt.ref_id:
                    target = self.btf.resolve(bt.ref_id)  # an anchor keeps its type
                    if target.kind in _RECORDS:
                        self.record(target, hint)
                    elif target.kind in _ENUMS:
                        self.enum(target)
                get_ann, set_ann, conv = self.global_type(bt, hint, "v")
                if set_ann.startswith("collections.abc.Sequence"):
                    to_obj = f"_array_bytes({self.ctype(bt, hint).expr}, value)"
                elif bt.kind in _RECORDS:
                    to_obj = "_raw(value)"
                else:
                    to_obj = "value"
                decl = self._decl(bt, var)
                gvars.append(
                    _Global(sec_name, var, "", get_ann, set_ann, conv, to_obj, decl, settable)
                )
        if self.all_types:
            for t in self.btf:
                if not t.name:
                    continue
                target = self.btf.resolve(t.type_id)
                if t.kind == BtfKind.TYPEDEF and target.name:
                    continue
                if target.kind in _RECORDS and t.kind in (*_RECORDS, BtfKind.TYPEDEF):
                    self.record(target, _camel(t.name))
                elif target.kind in _ENUMS and t.kind in (*_ENUMS, BtfKind.TYPEDEF):
                    self.enum(target)
        # member names, now that every class name is known
        hidden = _MODULES | _BUILTIN_ANNS | self.names.classes
        taken = {"_tinybpf_obj", "_tinybpf_get", "_tinybpf_set"}
        for g in gvars:
            g.ident = self._member(g.name, taken, hidden)
        taken = set(_WRAPPER_ATTRS) | {"_tinybpf_views", "_tinybpf_map"}
        self.prog_idents = {p: self._member(p, taken, hidden) for p in obj.programs}
        for mp in maps:
            mp.ident = self._member(mp.name, taken, hidden)
        return maps, gvars

    @staticmethod
    def _member(name: str, taken: set[str], hidden: frozenset[str] | set[str]) -> str:
        ident = _ident(name)
        if _is_private(ident):
            ident = ident.lstrip("_") or "_"
        while ident in taken or ident in hidden or ident.startswith("_tinybpf"):
            ident += "_"
        taken.add(ident)
        return ident

    def render(self) -> str:
        maps, gvars = self.collect()
        body = [_HELPERS, *self.enum_code, *(r.code for r in self.order)]
        body += [self._btf_types(), self._globals_class(gvars), self._wrapper_class(maps)]
        text = "\n\n\n".join(p.strip("\n") for p in body)
        imports = [m for m in ("builtins", "collections.abc") if f"{m}." in text]
        imports += [b for b in ("_BtfStruct", "_BtfUnion") if f"({b})" in text]
        exports = [*(n for n in self.enums.values() if n), *(r.name for r in self.order)]
        exports += ["BTF_TYPES", "DEFAULT_PATH", self.globals_cls, self.wrapper]
        if self.embed:
            exports += ["OBJECT_NAME", "object_data"]
        all_ = "__all__ = [\n" + "".join(f"    {_q(n)},\n" for n in sorted(exports)) + "]"
        return "\n\n\n".join([self._header(imports), all_, text]) + "\n"

    def _header(self, imports: list[str]) -> str:
        name = _doc(self.path.name)
        extra = "".join(f"import {m}\n" for m in imports if not m.startswith("_"))
        used = [b for b in ("BtfStruct", "BtfUnion") if f"_{b}" in imports]
        bases = ""
        if used:
            # mypy: ctypes' stubs make every attribute of a Structure Any; without their
            # __getattr__/__setattr__ a misspelt field name is an error
            bases = "\nif typing.TYPE_CHECKING:\n"
            for b in used:
                bases += (
                    f"\n    class _{b}(tinybpf.{b}):\n"
                    "        __getattr__: None  # type: ignore[assignment, misc]\n"
                    "        __setattr__: None  # type: ignore[assignment, misc]\n"
                )
            bases += "\nelse:\n" + "".join(f"    _{b} = tinybpf.{b}\n" for b in used)
        embedded = ""
        if self.embed:
            import base64
            import zlib

            raw = base64.b64encode(zlib.compress(_linked_object(self.path), 9)).decode()
            chunks = "".join(f'    "{raw[i : i + 88]}"\n' for i in range(0, len(raw), 88))
            embedded = f"""
OBJECT_NAME = {_q(self.obj.name)}
_OBJECT = (
{chunks})


def object_data() -> bytes:
    \"\"\"The bytes of {name}, embedded in this module.\"\"\"
    import base64
    import zlib

    return zlib.decompress(base64.b64decode(_OBJECT))
"""
        pkg = self.package
        import_line = "import tinybpf" if pkg == "tinybpf" else f"import {pkg} as tinybpf"
        return f'''"""Typed view of the BPF object {name}, generated by ``tinybpf gen``.

Do not edit: regenerate with ``python -m {pkg} gen {name} -o <module>.py``.

Example::

    with {self.wrapper}.open() as skel:
        ...  # configure: skel.globals.<name> = ..., skel.<map>.max_entries = ...
        skel.load_opened()
"""

from __future__ import annotations

{extra}import ctypes
import enum
import os
import typing

{import_line}
{bases}
DEFAULT_PATH = {_q(str(self.path.resolve()))}
{embedded}'''.rstrip("\n")

    def _btf_types(self) -> str:
        lines = ["# C name -> generated class"]
        lines.append("BTF_TYPES: dict[str, type] = {")
        lines += [f"    {_q(c)}: {p}," for c, p in sorted(self.btf_names.items())]
        lines.append("}")
        return "\n".join(lines)

    def _globals_class(self, gvars: list[_Global]) -> str:
        out = [
            f"class {self.globals_cls}:",
            f'    """Global variables of {_doc(self.path.name)}, typed from BTF.',
            "",
            "    Before load, writes set the initial values (``const volatile`` configuration",
            "    included); after load, .bss and .data read and write the live memory, and",
            "    .rodata is read-only. Values are copies: assign a whole struct to change it.",
            '    """',
            "",
            '    __slots__ = ("_tinybpf_obj",)',
            "",
            "    def __init__(self, obj: tinybpf.BpfObject) -> None:",
            "        self._tinybpf_obj = obj",
            "",
            "    def _tinybpf_get(self, section: str, name: str) -> typing.Any:",
            "        return self._tinybpf_obj.globals[section][name]",
            "",
            "    def _tinybpf_set(self, section: str, name: str, value: object) -> None:",
            "        self._tinybpf_obj.globals[section][name] = value",
        ]
        for g in gvars:
            where = (
                f"{g.section}, read-only after load"
                if g.section.startswith(".rodata")
                else g.section
            )
            out += [
                "",
                "    @property",
                f"    def {g.ident}(self) -> {g.get_ann}:",
                f'        """``{_doc(g.decl)}`` ({_doc(where)})."""',
                f"        v = self._tinybpf_get({_q(g.section)}, {_q(g.name)})",
                f"        return {g.conv}",
            ]
            if g.settable:
                out += [
                    "",
                    f"    @{g.ident}.setter",
                    f"    def {g.ident}(self, value: {g.set_ann}) -> None:",
                    f"        self._tinybpf_set({_q(g.section)}, {_q(g.name)}, {g.to_obj})",
                ]
        return "\n".join(out)

    def _wrapper_class(self, maps: list[_Map]) -> str:
        w = self.wrapper
        opts = ("object_name", "pin_root_path", "kconfig", "btf_custom_path", "bpf_token_path")
        params = [f"        {o}: str | None = None," for o in opts]
        params.append("        kernel_log_level: int | None = None,")
        passing = [f"                {o}={o}," for o in (*opts, "kernel_log_level")]

        def ctor(kind: str, doc: str, call: str) -> list[str]:
            if not self.embed:
                return [
                    "",
                    "    @classmethod",
                    f"    def {kind}(",
                    "        cls,",
                    "        source: str | os.PathLike[str] | bytes = DEFAULT_PATH,",
                    "        *,",
                    *params,
                    f"    ) -> {w}:",
                    f'        """{doc}"""',
                    "        return cls(",
                    f"            {call}(",
                    "                source,",
                    *passing,
                    "            )",
                    "        )",
                ]
            return [
                "",
                "    @classmethod",
                f"    def {kind}(",
                "        cls,",
                "        source: str | os.PathLike[str] | bytes | None = None,",
                "        *,",
                *params,
                f"    ) -> {w}:",
                f'        """{doc} ``source`` None: the object embedded in this module."""',
                "        if source is None:",
                "            source = object_data()",
                "            object_name = object_name or OBJECT_NAME",
                "        return cls(",
                f"            {call}(",
                "                source,",
                *passing,
                "            )",
                "        )",
            ]

        out = [
            f"class {w}:",
            f'    """Typed view of {_doc(self.path.name)}: programs, maps and globals.',
            "",
            f"    ``{w}.open()`` opens the object for configuration and ``load_opened()``",
            f"    loads it; ``{w}.load()`` does both. ``.obj`` is the tinybpf.BpfObject.",
            '    """',
            "",
            "    def __init__(self, obj: tinybpf.BpfObject) -> None:",
            "        self.obj = obj",
            f"        self.globals = {self.globals_cls}(obj)",
            "        self._tinybpf_views: dict[str, tuple[bool, _AnyMap]] = {}",
        ]
        out += ctor(
            "open", "Open the object without loading it (the configuration phase).", "tinybpf.open"
        )
        out += ctor("load", "Open and load the object.", "tinybpf.load")
        out += [
            "",
            f"    def load_opened(self) -> {w}:",
            '        """Load the opened object (after configuring it). Returns self."""',
            "        self.obj.load()",
            "        self._tinybpf_views.clear()",
            "        return self",
            "",
            "    @property",
            "    def loaded(self) -> bool:",
            "        return self.obj.loaded",
            "",
            "    def close(self) -> None:",
            "        self.obj.close()",
            "",
            f"    def __enter__(self) -> {w}:",
            "        return self",
            "",
            "    def __exit__(self, *exc: object) -> None:",
            "        self.close()",
            "",
            "    def _tinybpf_map(",
            "        self, name: str, key: type[_K], value: type[_V]",
            "    ) -> tinybpf.BpfMap[_K, _V]:",
            "        loaded = self.obj.loaded",
            "        cached = self._tinybpf_views.get(name)",
            "        if cached is not None and cached[0] == loaded:",
            "            return cached[1]",
            "        view = self.obj.map(name).typed(key=key, value=value)",
            "        self._tinybpf_views[name] = (loaded, view)",
            "        return view",
        ]
        for pname, prog in self.obj.programs.items():
            out += [
                "",
                "    @property",
                f"    def {self.prog_idents[pname]}(self) -> tinybpf.BpfProgram:",
                f'        """Program {_doc(pname)} (SEC("{_doc(prog.section)}"))."""',
                f"        return self.obj.program({_q(pname)})",
            ]
        for mp in maps:
            out += [
                "",
                "    @property",
                f"    def {mp.ident}(self) -> tinybpf.BpfMap[{mp.key_ann}, {mp.value_ann}]:",
                f'        """Map {_doc(mp.name)} ({_doc(mp.doc)})."""',
                f"        return self._tinybpf_map({_q(mp.name)}, {mp.key_rt}, {mp.value_rt})",
            ]
        return "\n".join(out)
