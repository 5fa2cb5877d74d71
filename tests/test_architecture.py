"""The package's structure (issue 15; docs/architecture.md): layers, no import cycles, one
core that touches the extension, modules of a readable size.

Every ``import``/``from`` statement of every module is read from its AST, including the
ones inside functions, and relative imports are resolved. Imports under
``if TYPE_CHECKING:`` run only for the type checker: they are left out of the cycle check
but may point back (against the import order) only to the protocol module.

Layers, lowest first (a module's layer is the first prefix list it matches; more specific
prefixes win, so a tool moved into ``tinybpf.tools`` or elsewhere only needs its name
added to TOOLS):
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = "tinybpf"
SRC = Path(__file__).resolve().parent.parent / "src" / PKG

BASE = ["errors"]  # imports nothing of tinybpf
CORE = ["_core"]  # the only code that imports the extension
TOOLS = [
    "tools",
    "_tools",
    "codegen",  # re-exports of tools.codegen, tools.symbolize, tools.histogram
    "symbolize",
    "histogram",
    "export",
    "__main__",
]
FACADE = [""]  # tinybpf/__init__.py: lazy names of every layer
# everything else is the library model (types, btf, codec, maps, programs, links, events,
# object, globals, introspect, tracing, ...)
LAYERS = ["base", "core", "library", "tools", "facade"]
PROTOCOLS = f"{PKG}._protocols"  # the one module type-only imports may point back to
EXTENSION = f"{PKG}._libbpf_cffi"
MAX_LINES = 900
GENERATED: set[str] = set()  # generated modules, exempt from MAX_LINES (by dotted name);
# a module whose first lines say it is generated and not to be edited is exempt as well


def _generated(path: Path) -> bool:
    head = "\n".join(path.read_text().splitlines()[:8]).lower()
    return "generated" in head and ("do not edit" in head or "don't edit" in head)


# Known and owned elsewhere (issue 15, the tools half): matched by the trailing part of the
# dotted name so a move into a tools package keeps them matched. Each must still apply
# (test_pending_exemptions_still_apply): delete an entry when its module is fixed.
PENDING_CYCLES: list[frozenset[str]] = []
PENDING_OVERSIZE: set[str] = set()


def _tail(mod: str, tail: str) -> bool:
    return mod == f"{PKG}.{tail}" or mod.endswith(f".{tail}")


def _matches(comp: list[str], pending: frozenset[str]) -> bool:
    return len(comp) == len(pending) and all(any(_tail(m, t) for t in pending) for m in comp)


def _pending_cycle(comp: list[str]) -> bool:
    return any(_matches(comp, p) for p in PENDING_CYCLES)


def _pending_oversize(mod: str) -> bool:
    return any(_tail(mod, t) for t in PENDING_OVERSIZE)


def _layer(mod: str) -> str:
    rel = mod[len(PKG) + 1 :] if mod != PKG else ""
    if rel == "":
        return "facade"
    first = rel.split(".")[0]
    for name, prefixes in (("base", BASE), ("core", CORE), ("tools", TOOLS)):
        if first in prefixes:
            return name
    return "library"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(mod: str, path: Path) -> list[tuple[str, bool, int]]:
    """(imported module, type-only?, line) for every import in ``mod``, nested ones too."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    package = mod if is_pkg else mod.rpartition(".")[0]
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, type_only, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, type_only, node.lineno))
            for alias in node.names:  # ``from . import x`` / ``from .pkg import submodule``
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    found.append((sub, type_only, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(tree, False)
    return found


def _graph() -> tuple[dict[str, set[str]], list[tuple[str, str, bool, int]]]:
    runtime: dict[str, set[str]] = {m: set() for m in MODULES}
    edges = []
    for mod, path in MODULES.items():
        for target, type_only, line in _imports(mod, path):
            if target == EXTENSION or target in MODULES:
                edges.append((mod, target, type_only, line))
            if target in MODULES and target != mod and not type_only:
                runtime[mod].add(target)
    return runtime, edges


RUNTIME, EDGES = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _is_ancestor_package(target: str, mod: str) -> bool:
    return mod.startswith(target + ".")


def test_the_walk_sees_function_local_and_relative_imports():
    """The walker itself: a function-local relative import of this package is an edge."""
    local = [
        (t, line)
        for m, t, type_only, line in EDGES
        if m == f"{PKG}.introspect" and not type_only and t.startswith(PKG)
    ]
    assert local, "no imports found for tinybpf.introspect: the walker is broken"
    assert all(t in MODULES or t == EXTENSION for t, _ in local)


def _runtime_cycles() -> list[list[str]]:
    graph = {m: {t for t in ts if not _is_ancestor_package(t, m)} for m, ts in RUNTIME.items()}
    return _cycles(graph)


def test_no_import_cycles_counting_function_local_imports():
    assert [c for c in _runtime_cycles() if not _pending_cycle(c)] == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_pending_exemptions_still_apply():
    """An exemption whose module was fixed is removed from the list above."""
    cycles = _runtime_cycles()
    for pending in PENDING_CYCLES:
        assert any(_matches(c, pending) for c in cycles), sorted(pending)
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    for tail in PENDING_OVERSIZE:
        assert any(_tail(m, tail) and n > MAX_LINES for m, n in sizes.items()), tail


def test_only_the_core_imports_the_extension():
    offenders = [f"{m}:{line}" for m, t, _, line in EDGES if t == EXTENSION and _layer(m) != "core"]
    assert offenders == []


def test_imports_only_go_down_the_layers():
    """Runtime imports go to the same layer or a lower one; type-only imports that point
    to a higher layer go to the protocol module only."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for mod, target, type_only, line in EDGES:
        if target == EXTENSION or _is_ancestor_package(target, mod):
            continue
        if rank[_layer(target)] > rank[_layer(mod)]:
            if type_only and target == PROTOCOLS:
                continue
            kind = "type-only " if type_only else ""
            bad.append(f"{mod}:{line} ({_layer(mod)}) {kind}imports {target} ({_layer(target)})")
    assert bad == []


def test_type_only_imports_point_back_only_to_the_protocol_module():
    """A type-only import is allowed where a runtime import would be (it follows the
    import order); one that points back against it (its target imports, at runtime,
    the importer) names the protocol module instead."""
    reach: dict[str, set[str]] = {}

    def reachable(m: str) -> set[str]:
        if m not in reach:
            reach[m] = set()
            todo = list(RUNTIME[m])
            while todo:
                t = todo.pop()
                if t not in reach[m]:
                    reach[m].add(t)
                    todo.extend(RUNTIME[t])
        return reach[m]

    bad = [
        f"{m}:{line} imports {t} for types, but {t} imports {m}"
        for m, t, type_only, line in EDGES
        if type_only
        and t in MODULES
        and t != PROTOCOLS
        and _layer(m) != "facade"
        and m in reachable(t)
    ]
    assert bad == []


@pytest.mark.parametrize("layer", ["core", "library", "tools"])
def test_every_layer_has_modules(layer):
    """The prefix lists above still name real modules (a moved module is re-listed)."""
    assert any(_layer(m) == layer for m in MODULES)


def test_no_module_is_over_the_size_limit():
    sizes = {
        m: len(p.read_text().splitlines())
        for m, p in MODULES.items()
        if m not in GENERATED and not _generated(p)
    }
    big = {m: n for m, n in sizes.items() if n > MAX_LINES and not _pending_oversize(m)}
    assert big == {}


def test_every_package_is_in_the_wheel():
    """pyproject.toml lists the packages explicitly: a new sub-package goes there too."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is new in Python 3.11")
    pyproject = tomllib.loads((SRC.parent.parent / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    assert packages - listed == set()


# The extension's objects: only the core touches them (issue 15, item 1). Outside the core
# a module calls core functions; it never imports these from the core to use them itself.
_EXTENSION_OBJECTS = {"lib", "ffi", "NULL"}


def _extension_objects_used(mod: str, path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    package = mod if is_pkg else mod.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == f"{PKG}._core" or target.startswith(f"{PKG}._core."):
                for alias in node.names:
                    if alias.name in _EXTENSION_OBJECTS:
                        found.append(f"{mod}:{node.lineno} imports {alias.name} from {target}")
    return found


def test_only_the_core_touches_the_extension_objects():
    """No module outside the core imports lib, ffi or NULL from it: the libbpf calls, the
    C buffers and the constants a module needs are functions and ints of a core module."""
    bad = [
        line
        for mod, path in MODULES.items()
        if _layer(mod) != "core"
        for line in _extension_objects_used(mod, path)
    ]
    assert bad == []


# --- the tools use the public API only (issue 15, item 3) -----------------------------------
# A tool (tinybpf.tools.*, tinybpf.export.*) imports from the library only what a user of
# the library can: public modules (no leading underscore in the dotted name) and, from
# them, public names (no leading underscore; in the module's ``__all__`` when it has one).
# Imports inside the tool's own package are its own business. Type-only imports count too.
_TOOL_PACKAGES = (f"{PKG}.tools", f"{PKG}.export")


def _in_tools(mod: str) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in _TOOL_PACKAGES)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _facade_public() -> set[str]:
    """tinybpf's public names: ``__all__`` and ``_PUBLIC_NOT_IN_ALL``."""
    out: set[str] = set()
    for node in ast.parse(MODULES[PKG].read_text()).body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name) and t.id in ("__all__", "_PUBLIC_NOT_IN_ALL"):
                    out |= set(ast.literal_eval(node.value))
    return out


def _public_names(target: str) -> set[str] | None:
    if target == PKG:
        return _facade_public()
    path = MODULES.get(target)
    if path is None:
        return None
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return None


def _resolve(mod: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _non_public_uses(mod: str, path: Path) -> list[str]:
    """What ``mod`` takes from the library that is not its public API: private modules,
    private names, names a public module does not list in ``__all__``, and private
    attributes of the ``tinybpf`` package (``tinybpf._types.X``)."""
    tree = ast.parse(path.read_text(), str(path))
    bad: list[str] = []
    pkg_aliases: set[str] = set()  # names bound to the tinybpf package by `import tinybpf`

    def library(target: str) -> bool:
        return (target == PKG or target.startswith(PKG + ".")) and not _in_tools(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not library(alias.name):
                    continue
                if any(_private(p) for p in alias.name.split(".")):
                    bad.append(f"{mod}:{node.lineno} imports private module {alias.name}")
                if alias.name == PKG or alias.asname is None:
                    pkg_aliases.add(alias.asname or PKG)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(mod, path, node)
            if not library(target):
                continue
            if any(_private(p) for p in target.split(".")):
                bad.append(f"{mod}:{node.lineno} imports from private module {target}")
                continue
            public = _public_names(target)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # ``from tinybpf import btf``: a module
                    if _private(alias.name):
                        bad.append(f"{mod}:{node.lineno} imports private module {sub}")
                    continue
                if _private(alias.name):
                    bad.append(f"{mod}:{node.lineno} imports private name {alias.name} of {target}")
                elif (
                    public is not None
                    and alias.name not in public
                    and not (alias.name.startswith("__") and alias.name.endswith("__"))
                ):
                    bad.append(
                        f"{mod}:{node.lineno} imports {alias.name} of {target}, "
                        f"which is not in its __all__"
                    )
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in pkg_aliases
            and _private(node.attr)
        ):
            bad.append(f"{mod}:{node.lineno} uses private {node.value.id}.{node.attr}")
    return bad


def test_the_tools_use_only_the_public_api():
    """tinybpf.tools and tinybpf.export import no private module of the library and no
    private or unlisted name of a public one (module-level, function-local and type-only
    imports alike): what a tool needs, a user of the library can have too."""
    tools = [m for m in MODULES if _in_tools(m)]
    assert len(tools) > 10  # the walk sees the tools
    bad = [line for m in tools for line in _non_public_uses(m, MODULES[m])]
    assert bad == []


def test_the_public_api_check_sees_private_imports():
    """The checker itself: each kind of non-public use in a made-up tool module is found."""
    src = (
        "import tinybpf\n"
        "from .. import _core\n"
        "from .._types import BtfKind\n"
        "from ..introspect import program_info_by_fd\n"
        "from ..btf import Btf, _MODIFIERS\n"
        "from .ps import _KINDS\n"
        "def f():\n"
        "    from ..object import open_object\n"
        "    from ..link import link_info_by_fd\n"
        "    return tinybpf._types, tinybpf.BtfKind\n"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "fake.py"
        p.write_text(src)
        bad = _non_public_uses(f"{PKG}.tools.fake", p)
    assert [b.split(" ", 1)[0] for b in bad] == [
        f"{PKG}.tools.fake:{n}" for n in (2, 3, 4, 5, 9, 10)
    ], bad
