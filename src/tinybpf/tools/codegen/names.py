"""Names and literals of generated modules: Python identifiers for C names, string
literals, and the names a generated class or module must not hide."""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata
from collections.abc import Iterable

from ... import BTF_INT_BOOL, BTF_INT_CHAR, BtfKind, BtfStruct, BtfUnion

_CHAR_ENCODING: int = BTF_INT_CHAR
_BOOL_ENCODING: int = BTF_INT_BOOL

_INTS = {
    (1, False): "ctypes.c_uint8",
    (1, True): "ctypes.c_int8",
    (2, False): "ctypes.c_uint16",
    (2, True): "ctypes.c_int16",
    (4, False): "ctypes.c_uint32",
    (4, True): "ctypes.c_int32",
    (8, False): "ctypes.c_uint64",
    (8, True): "ctypes.c_int64",
}
_U8 = "ctypes.c_uint8"
_RECORDS = (BtfKind.STRUCT, BtfKind.UNION)
_ENUMS = (BtfKind.ENUM, BtfKind.ENUM64)

# Modules the generated code refers to, and builtins its annotations use: a class attribute
# with one of these names would hide it inside the class body.
_MODULES = frozenset({"builtins", "collections", "ctypes", "enum", "os", "tinybpf", "typing"})
_BUILTIN_ANNS = frozenset({"bool", "bytes", "dict", "float", "int", "list", "object", "str"})
_BUILTIN_ANNS |= {"tuple", "type"}
# Attributes of the generated struct classes (and of ctypes' own) that fields must not hide.
_RECORD_ATTRS = frozenset(dir(BtfStruct)) | frozenset(dir(BtfUnion))
# Members of the wrapper class that maps and programs must not hide.
_WRAPPER_ATTRS = frozenset({"obj", "globals", "open", "load", "load_opened", "close", "loaded"})
_ENUM_RESERVED = frozenset({"name", "value", "mro"})


# --- names --------------------------------------------------------------------------------


def _camel(name: str) -> str:
    """``task_id`` -> ``TaskId`` (an existing CamelCase stays)."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts)
    if not text:
        return "Anon"
    return "T" + text if text[0].isdigit() else text


def _is_private(name: str) -> bool:
    """Names Python mangles inside a class body (``__x`` but not ``__x__``)."""
    return name.startswith("__") and not name.endswith("__")


def _plain(name: str) -> bool:
    """Whether ``name`` is a Python identifier as written (NFKC normalization, which the
    parser applies to identifiers, would rename BLACK-LETTER CAPITAL H to ``H``)."""
    return name.isidentifier() and unicodedata.normalize("NFKC", name) == name


def _ident(name: str) -> str:
    """A valid Python identifier for a C name (BTF names may hold any byte but NUL):
    characters Python does not allow in names become ``_``; keywords get a trailing ``_``."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c if ("a" + c).isidentifier() else "_" for c in text) or "_"
    if not text[0].isidentifier():
        text = "_" + text
    if keyword.iskeyword(text) or text == "_":
        text += "_"
    return text


def _doc(text: str) -> str:
    """``text`` for a docstring or a comment: non-printable characters and backslashes
    escaped, quotes too (a BTF name or a file name may hold ``\"\"\"`` or a newline)."""
    return repr(text)[1:-1].replace('"', '\\"')


def _q(text: str) -> str:
    """A Python string literal, double-quoted like ``ruff format`` writes it."""
    if '"' in text or "\\" in text or not text.isprintable():
        return repr(text)
    return f'"{text}"'


def _tuple(items: Iterable[str]) -> str:
    quoted = [_q(i) for i in items]
    return f"({quoted[0]},)" if len(quoted) == 1 else "(" + ", ".join(quoted) + ")"


def _fix_ann(ann: str, shadowed: Iterable[str]) -> str:
    """Qualify builtins that a class attribute of the same name hides (``builtins.bytes``)."""
    for name in sorted(set(shadowed) & _BUILTIN_ANNS):
        ann = re.sub(rf"(?<![\w.]){name}\b", f"builtins.{name}", ann)
    return ann


class _Names:
    """Unique top-level names of the generated module."""

    def __init__(self) -> None:
        self.used = set(_MODULES) | set(dir(builtins)) | {"DEFAULT_PATH", "BTF_TYPES"}
        self.used |= {"OBJECT_NAME", "object_data", "_OBJECT", "base64", "zlib"}
        self.classes: set[str] = set()

    def take(self, wanted: str) -> str:
        name, n = wanted, 2
        while name in self.used:
            name = f"{wanted}{n}"
            n += 1
        self.used.add(name)
        self.classes.add(name)
        return name
