"""docs/api.md matches the docstrings, and every public item has a docstring."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import tinybpf

ROOT = Path(__file__).resolve().parent.parent


def test_api_reference_is_current() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_api.py"), "--check"], cwd=ROOT)
    assert r.returncode == 0, "docs/api.md is stale: run python docs/gen_api.py"


def test_public_items_have_docstrings() -> None:
    missing = []
    for name in tinybpf.__all__:
        obj = getattr(tinybpf, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not inspect.getdoc(obj):
            missing.append(name)
    assert not missing, f"public items without a docstring: {missing}"
