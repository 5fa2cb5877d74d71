"""The core's call-and-check path (tinybpf._core): capture libbpf's log, call, check the
return per libbpf's convention, raise the one right BpfError subclass with the log."""

from __future__ import annotations

import ast
import errno
from pathlib import Path

import pytest

from tinybpf import BpfError, BpfFileNotFoundError
from tinybpf._core import call, call_ptr, errnos, lib

SRC = Path(__file__).resolve().parent.parent / "src" / "tinybpf"


def test_a_negative_errno_raises_the_errno_class_with_the_operation():
    with pytest.raises(BpfFileNotFoundError) as e:
        call("bpf_obj_get", b"/sys/fs/bpf/tinybpf-no-such-pin", what="open pin 'x'")
    assert e.value.errno == errno.ENOENT
    assert str(e.value).startswith("open pin 'x' failed: ")


def test_a_null_pointer_raises_with_libbpfs_log_of_that_call():
    with pytest.raises(BpfFileNotFoundError) as e:
        call_ptr("bpf_link__open", b"/sys/fs/bpf/tinybpf-no-such-link", what="open link")
    assert e.value.errno == errno.ENOENT
    assert "tinybpf-no-such-link" in (e.value.libbpf_log or "")


def test_a_tolerated_errno_is_returned_not_raised():
    ret = call(
        "bpf_obj_get",
        b"/sys/fs/bpf/tinybpf-no-such-pin",
        what="open pin",
        tolerate=errnos.NOT_FOUND,
    )
    assert ret == errnos.RET_NOT_FOUND
    with pytest.raises(BpfError):
        call("bpf_obj_get", b"/proc/self/status", what="open pin", tolerate=errnos.NOT_FOUND)


def _called_names() -> list[tuple[str, int, str]]:
    out = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("call", "call_ptr")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                out.append((str(path.relative_to(SRC)), node.lineno, node.args[0].value))
    return out


def test_every_function_named_to_the_call_path_exists():
    names = _called_names()
    assert names, "no call()/call_ptr() sites found"
    assert [f"{p}:{n} {name}" for p, n, name in names if not hasattr(lib, name)] == []


def test_info_by_fd_reads_the_kernels_record_or_raises_through_the_call_path():
    import os

    import tinybpf
    from tinybpf._core import info_by_fd, try_info_by_fd

    with tinybpf.create_map(tinybpf.BpfMapType.ARRAY, 4, 8, 2) as m:
        assert int(info_by_fd("map", m.fd, "get info").max_entries) == 2
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        with pytest.raises(BpfError) as e:
            info_by_fd("map", fd, "get info of /dev/null")
        assert str(e.value).startswith("get info of /dev/null failed: ")
        assert try_info_by_fd("map", fd)[1] < 0
    finally:
        os.close(fd)
