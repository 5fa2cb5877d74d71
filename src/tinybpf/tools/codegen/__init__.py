"""Typed Python modules for BPF objects: ``tinybpf gen OBJ.bpf.o``.

:func:`generate_module` opens an object file (it is not loaded), walks its BTF and returns
the source of a Python module with:

* one ctypes class per struct and union that the object's maps and global variables use
  (directly, nested, in arrays, or through a pointer anchor such as
  ``const struct event *const anchor = 0;``), dependencies first. Layouts follow BTF the
  way :mod:`tinybpf._ctypes_gen` builds them at run time (one layout engine,
  :mod:`tinybpf._layout`: ``_pack_ = 1``, explicit padding,
  bitfields as properties over the bytes that hold them), so the classes read map values,
  ring buffer events and globals exactly, with the same repr, ``to_dict()`` and
  ``from_dict()``;
* an ``IntEnum`` per named enum (values it does not name read as ``UNKNOWN_<n>``);
* ``<Name>Globals``: a typed property per global variable, over ``obj.globals``;
* ``<Name>Object``: ``open()`` / ``load()`` class methods, a typed property per program
  (:class:`~tinybpf.BpfProgram`) and per map (``BpfMap[KeyType, ValueType]``).

The module passes ``mypy --strict`` and needs only tinybpf at run time. C names that are
not usable in Python (keywords, names Python mangles in a class body, names that would
hide a module or a builtin the module uses) get a trailing ``_``.

Example::

    from tinybpf.codegen import generate_module

    Path("opensnoop_skel.py").write_text(generate_module("opensnoop.bpf.o"))
"""

from __future__ import annotations

import keyword
import os
from pathlib import Path

from ...object import open_object
from .names import _camel
from .writer import _ModuleWriter

__all__ = ["generate_module"]

# The package generated modules import by default: the one these tools belong to (a
# vendored copy generates code that imports that copy).
_PACKAGE = __name__.rsplit(".", 2)[0]


def _default_base(path: Path) -> str:
    stem = path.name
    for suffix in (".o", ".bpf"):
        stem = stem.removesuffix(suffix)
    return _camel(stem)


def generate_module(
    path: str | os.PathLike[str],
    module_name: str | None = None,
    *,
    all_types: bool = False,
    embed: bool = True,
    package: str | None = None,
) -> str:
    """The source of a typed Python module for the BPF object file at ``path``.

    ``module_name`` names the wrapper class (``<Name>Object``; default from the file
    name). Structs, unions and enums are those the maps and global variables use;
    ``all_types=True`` adds every other named struct, union and enum of the object's BTF
    (kernel types that CO-RE code pulled in from vmlinux.h included).

    ``embed`` (default): the object file is embedded in the module (compressed), so
    ``<Name>Object.open()``/``load()`` without a source need no file next to it; without
    it, they open ``DEFAULT_PATH`` (the path given here, made absolute). The module
    imports only the public ``tinybpf`` API, and mypy reports misspelt field names of its
    structs (events included).

    ``package`` is the module the generated code imports as ``tinybpf``: by default the
    package that generates it, so a copy vendored as ``daemon._vendor.tinybpf`` writes
    ``import daemon._vendor.tinybpf as tinybpf`` and the installed one ``import tinybpf``.
    A dotted module name that is not valid raises ValueError.
    """
    pkg = _PACKAGE if package is None else package
    if not isinstance(pkg, str) or not all(
        part.isidentifier() and not keyword.iskeyword(part) for part in pkg.split(".")
    ):
        raise ValueError(
            f"package must be a dotted module name such as 'daemon._vendor.tinybpf', not {pkg!r}"
        )
    p = Path(path)
    base = _camel(module_name) if module_name else _default_base(p)
    with open_object(p) as obj:
        return _ModuleWriter(obj, p, base, all_types, embed, pkg).render()
