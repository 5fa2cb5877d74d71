"""The tests/bpf/mmap_array.bpf.c fixture, shared by the mapped-access and numpy tests:
when it can run here, the loaded object, and how its syscall programs are driven."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest

import tinybpf

from .kernel import (
    helper_unavailable_reason,
    mmapable_array_unavailable_reason,
    prog_type_unavailable_reason,
)


def unavailable_reason() -> str | None:
    """Why the fixture's programs cannot run on this kernel (the probes' answers), or None."""
    return (
        mmapable_array_unavailable_reason()
        or prog_type_unavailable_reason(tinybpf.BpfProgType.SYSCALL, "syscall programs")
        or helper_unavailable_reason(tinybpf.BpfProgType.SYSCALL, "bpf_loop")
    )


@pytest.fixture
def mmap_array_obj(obj_path: Any) -> Iterator[tinybpf.BpfObject]:
    """The loaded mmap_array object (skipped with the probe's answer where it cannot run)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    o = tinybpf.load(obj_path("mmap_array"))
    try:
        yield o
    finally:
        o.close()


def run(o: tinybpf.BpfObject, prog: str, base: int, n: int) -> None:
    """Run syscall program ``prog`` (see tests/bpf/mmap_array.bpf.c) with its (base, count)
    context."""
    o.programs[prog].test_run(ctx=struct.pack("=QI4x", base, n))
