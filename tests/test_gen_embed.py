"""'tinybpf gen' modules that stand alone: the object embedded (no file next to them), only
the public tinybpf API imported, and event field names checked by mypy --strict."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import bpf_obj
from test_codegen import import_file, needs_mypy, run_mypy

import tinybpf

USES_EVENTS = """
from __future__ import annotations

import tinybpf
from te_embedded import Event, TypesEventsObject


def on_event(ev: Event) -> int:
    pid: int = ev.task.pid
    comm: bytes = ev.comm
    print(pid, comm, ev.args[0], ev.flags.small)
    return 0


def run(skel: TypesEventsObject) -> None:
    rb = tinybpf.BpfRingBuffer(skel.obj.maps["events"], on_event, event_type=Event)
    rb.poll(timeout_ms=1)
"""

MISSPELT = """
from __future__ import annotations

from te_embedded import Event


def on_event(ev: Event) -> int:
    print(ev.task.pidd)
    print(ev.comn)
    ev.delta = "x"
    ev.flags.smal = 1
    return 0
"""


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Path:
    """te_embedded.py generated for types_events.bpf.o, alone in its directory."""
    d = tmp_path_factory.mktemp("gen_embed")
    copy = d / "types_events.bpf.o"  # generated from a copy that is then removed
    copy.write_bytes(bpf_obj("types_events").read_bytes())
    r = subprocess.run(
        [sys.executable, "-m", "tinybpf", "gen", str(copy), "-o", str(d / "te_embedded.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    copy.unlink()
    assert sorted(p.name for p in d.iterdir()) == ["te_embedded.py"]
    return d


def test_the_module_imports_only_the_public_api(embedded):
    tree = ast.parse((embedded / "te_embedded.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not any(m.startswith("tinybpf.") for m in imported), imported
    assert "tinybpf" in imported
    source = (embedded / "te_embedded.py").read_text()
    assert "tinybpf._" not in source


def test_the_embedded_object_is_small_and_matches_the_file(embedded):
    mod = import_file(embedded / "te_embedded.py")
    data = mod.object_data()
    assert data[:4] == b"\x7fELF"
    # linked without the DWARF of -g: a fraction of the file on disk
    assert len(data) < bpf_obj("types_events").stat().st_size
    assert mod.OBJECT_NAME == "types_events"


@pytest.mark.root
def test_the_module_loads_and_runs_without_the_object_file(embedded):
    code = (
        "import os, tinybpf, te_embedded as te\n"
        "events = []\n"
        "with te.TypesEventsObject.open() as skel:\n"
        "    skel.globals.target_pid = os.getpid()\n"
        "    skel.load_opened()\n"
        "    assert skel.obj.name == 'types_events'\n"
        "    rb = tinybpf.BpfRingBuffer(skel.obj.maps['events'], events.append,"
        " event_type=te.Event)\n"
        "    with skel.record.attach(), rb:\n"
        "        os.getpid()\n"
        "        rb.poll(timeout_ms=1000)\n"
        "(ev,) = events\n"
        "assert isinstance(ev, te.Event) and ev.task.pid == os.getpid(), ev\n"
        "print('ok', ev.op.name if hasattr(ev.op, 'name') else ev.op)\n"
    )
    env = dict(os.environ)
    src = Path(tinybpf.__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join([str(embedded), str(src)])
    r = subprocess.run(
        [sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok")


def test_no_embed_opens_the_file(tmp_path):
    out = tmp_path / "te_file.py"
    r = subprocess.run(
        [sys.executable, "-m", "tinybpf", "gen", "--no-embed", str(bpf_obj("types_events")),
         "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    mod = import_file(out)
    assert not hasattr(mod, "object_data")
    assert str(bpf_obj("types_events").resolve()) == mod.DEFAULT_PATH


@needs_mypy
def test_mypy_strict_checks_event_field_names(embedded):
    (embedded / "uses_events.py").write_text(USES_EVENTS)
    r = run_mypy(embedded, "te_embedded.py", "uses_events.py")
    assert r.returncode == 0, r.stdout + r.stderr
    (embedded / "misspelt.py").write_text(MISSPELT)
    r = run_mypy(embedded, "misspelt.py")
    assert r.returncode == 1, r.stdout
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert sorted({int(line.split(":")[1]) for line in errors}) == [8, 9, 10, 11], r.stdout
    assert 'has no attribute "pidd"' in r.stdout and 'has no attribute "comn"' in r.stdout
