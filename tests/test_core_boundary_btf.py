"""Issue 15 item 1 (rule 2 of docs/architecture.md): outside tinybpf._core no module
touches the cffi ``lib``/``ffi`` objects; it calls the core's functions and constants.

This file checks the modules moved so far (the BTF, globals, kernel-facts, token, netns
and version modules): none imports ``lib``, ``ffi`` or ``NULL`` from the core, and none
names ``lib.X`` or ``ffi.X``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "tinybpf"
MOVED = [
    "btf.py",
    "globals.py",
    "_ctypes_gen.py",
    "_types.py",
    "_codec.py",
    "_layout.py",
    "token.py",
    "_netns.py",
    "_kernel.py",
    "_kernel_info.py",
    "_diagnose.py",
    "introspect.py",
    "_mmap.py",
    "__init__.py",
    "tracing.py",
]
CFFI_NAMES = {"lib", "ffi", "NULL"}


@pytest.mark.parametrize("name", MOVED)
def test_module_does_not_touch_lib_or_ffi(name: str) -> None:
    tree = ast.parse((SRC / name).read_text(), name)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("_core"):
            bad += [
                f"{name}:{node.lineno} imports {a.name}" for a in node.names if a.name in CFFI_NAMES
            ]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("lib", "ffi")
        ):
            bad.append(f"{name}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert bad == []
