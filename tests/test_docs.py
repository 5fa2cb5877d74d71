"""Every ```python block of the README and docs/*.md runs (as root, from the repo root)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, int, str]]:
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for i, m in enumerate(BLOCK.finditer(text)):
            line = text[: m.start()].count("\n") + 1
            out.append((f"{doc.relative_to(ROOT)}:{line}", i, m.group(1)))
    return out


BLOCKS = _blocks()


@pytest.fixture(scope="module")
def compiled_examples() -> None:
    out = ROOT / "examples" / "build"
    subprocess.run(
        [sys.executable, "-m", "tinybpf", "compile", "examples/execsnoop.bpf.c", "-o", f"{out}/"],
        cwd=ROOT,
        check=True,
    )


def test_docs_have_code() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.root
@pytest.mark.parametrize(("where", "index", "code"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_doc_block_runs(where: str, index: int, code: str, compiled_examples: None) -> None:
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore::ResourceWarning"},
    )
    assert r.returncode == 0, f"{where} failed:\n{r.stdout}\n{r.stderr}"
