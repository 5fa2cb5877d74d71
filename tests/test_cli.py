"""The command line, run as a subprocess: python -m tinybpf ..."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import bpf_obj


def tinybpf_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinybpf", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_version():
    r = tinybpf_cli("version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("tinybpf ")
    import tinybpf

    assert lines[0] == f"tinybpf {tinybpf.__version__}"
    assert any(line.startswith("libbpf 1.7") for line in lines)


def test_cli_module_entry_point():
    r = subprocess.run(
        [sys.executable, "-m", "tinybpf.tools.cli", "version"], capture_output=True, text=True
    )
    assert r.returncode == 0
    assert r.stdout.startswith("tinybpf ")


def test_no_arguments_prints_help():
    r = tinybpf_cli()
    assert r.returncode == 0
    assert "usage:" in r.stdout.lower()
    for cmd in ("version", "vmlinux", "run-elevated"):
        assert cmd in r.stdout


def test_help_flag():
    r = tinybpf_cli("--help")
    assert r.returncode == 0
    assert "usage:" in r.stdout.lower()


def test_unknown_subcommand_is_a_usage_error():
    r = tinybpf_cli("frobnicate")
    assert r.returncode == 2
    assert "invalid choice" in r.stderr


@pytest.mark.skipif(
    not os.path.exists("/sys/kernel/btf/vmlinux"),
    reason="kernel has no BTF (/sys/kernel/btf/vmlinux missing)",
)
def test_vmlinux_header_to_file(tmp_path):
    out = tmp_path / "vmlinux.h"
    r = tinybpf_cli("vmlinux", "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "struct task_struct {" in text
    assert text.startswith("#ifndef __VMLINUX_H__")
    assert "preserve_access_index" in text
    assert not (tmp_path / "vmlinux.h.tmp").exists()


def test_vmlinux_header_from_an_object_file_to_stdout():
    r = tinybpf_cli("vmlinux", str(bpf_obj("btf_types")))
    assert r.returncode == 0, r.stderr
    assert "struct plain {" in r.stdout
    assert "struct flags {" in r.stdout


def test_vmlinux_missing_btf_file(tmp_path):
    r = tinybpf_cli("vmlinux", str(tmp_path / "nope.o"), "-o", str(tmp_path / "x.h"))
    assert r.returncode == 1
    assert r.stderr.startswith("Error: ")
    assert not (tmp_path / "x.h").exists()


SCRIPT = """
import json, sys
json.dump(sys.argv[1:], open(sys.argv[1], "w"))
sys.exit(int(sys.argv[2]))
"""


@pytest.mark.root
def test_run_elevated_passes_options_to_the_script(tmp_path):
    # options after the script go to the script, not to tinybpf (W13)
    import json

    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    result = tmp_path / "argv.json"
    r = tinybpf_cli("run-elevated", str(script), str(result), "0", "--flag", "x", "-v")
    assert r.returncode == 0, r.stderr
    assert json.loads(result.read_text()) == [str(result), "0", "--flag", "x", "-v"]


@pytest.mark.root
def test_run_elevated_returns_the_script_exit_code(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    r = tinybpf_cli("run-elevated", str(script), str(tmp_path / "argv.json"), "3")
    assert r.returncode == 3


def test_run_elevated_missing_script(tmp_path):
    r = tinybpf_cli("run-elevated", str(tmp_path / "missing.py"), "--flag")
    assert r.returncode == 1
    assert "Error: script not found" in r.stderr
