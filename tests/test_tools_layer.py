"""The tools live in tinybpf.tools (docs/architecture.md); their public import paths of
before stay: tinybpf.codegen, .symbolize, .histogram, tinybpf.export, the
``tinybpf`` command and ``python -m tinybpf``. ``import tinybpf`` loads no tool."""

from __future__ import annotations

import subprocess
import sys

import tinybpf.codegen
import tinybpf.histogram
import tinybpf.symbolize
import tinybpf.tools.codegen
import tinybpf.tools.histogram
import tinybpf.tools.symbolize


def test_old_paths_name_the_tools_objects() -> None:
    pairs = [
        (tinybpf.codegen, tinybpf.tools.codegen),
        (tinybpf.histogram, tinybpf.tools.histogram),
        (tinybpf.symbolize, tinybpf.tools.symbolize),
    ]
    for old, new in pairs:
        assert old.__all__ == new.__all__
        for name in new.__all__:
            assert getattr(old, name) is getattr(new, name), (old.__name__, name)
    assert tinybpf.Symbolizer is tinybpf.tools.symbolize.Symbolizer
    assert tinybpf.print_log2_hist is tinybpf.tools.histogram.print_log2_hist


def test_import_tinybpf_loads_no_tool() -> None:
    code = (
        "import sys, tinybpf; tinybpf.open; tinybpf.BpfMap; "
        "print(sorted(m for m in sys.modules if m.startswith('tinybpf.tools')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_m_tinybpf_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tinybpf", "version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith(f"tinybpf {tinybpf.__version__}")
