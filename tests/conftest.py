"""Shared test helpers: fixture objects compiled from tests/bpf, privilege and feature gates."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
BPF_BUILD = TESTS / "bpf" / "build"
IS_ROOT = os.geteuid() == 0


def bpf_obj(name: str) -> Path:
    """Path of a compiled fixture: tests/bpf/<name>.bpf.c -> tests/bpf/build/<name>.bpf.o."""
    path = BPF_BUILD / f"{name}.bpf.o"
    if not path.exists():
        raise FileNotFoundError(f"fixture {path} is missing: run 'make compile'")
    return path


@pytest.fixture
def obj_path():
    return bpf_obj


def pytest_report_header(config):
    import tinybpf

    where = Path(tinybpf.__file__).parent
    return f"tinybpf {tinybpf.__version__} from {where}, libbpf {tinybpf.libbpf_release()}"


requires_root = pytest.mark.skipif(not IS_ROOT, reason="needs root for bpf()")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("root") and not IS_ROOT:
            item.add_marker(
                pytest.mark.skip(reason=f"needs root for bpf() (running as uid {os.geteuid()})")
            )


def trigger_exec(n: int = 1) -> None:
    """Run /bin/true n times (each is one execve)."""
    for _ in range(n):
        subprocess.run(["/bin/true"], check=True)
