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
    for name in [*tinybpf.__all__, *tinybpf._PUBLIC_NOT_IN_ALL]:
        obj = getattr(tinybpf, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not inspect.getdoc(obj):
            missing.append(name)
    assert not missing, f"public items without a docstring: {missing}"


def test_no_name_in_all_shadows_a_builtin() -> None:
    import builtins

    shadowing = [name for name in tinybpf.__all__ if hasattr(builtins, name)]
    assert not shadowing, f"'from tinybpf import *' would shadow builtins: {shadowing}"
    namespace: dict[str, object] = {}
    exec("from tinybpf import *", namespace)
    assert "open" not in namespace
    assert callable(tinybpf.open)  # still an attribute: tinybpf.open(path)


def test_event_batch_is_public() -> None:
    from tinybpf.buffers import EventBatch

    assert tinybpf.EventBatch is EventBatch and "EventBatch" in tinybpf.__all__


def test_api_reference_lists_inherited_methods() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    sections = {s.split("`", 2)[1]: s for s in text.split("\n## ")[1:]}
    for cls in ("BpfRingBuffer", "BpfPerfBuffer", "BpfUserRingBuffer"):
        for method in ("poll", "consume", "poll_async", "poll_batch", "epoll_fd", "close"):
            if hasattr(getattr(tinybpf, cls), method):
                assert f"- `{method}(" in sections[f"{cls}"], (cls, method)
    assert "- `detach(" in sections["XdpAttachment"]
    assert "## class `EventBatch`" in text and "## `open(" in text
