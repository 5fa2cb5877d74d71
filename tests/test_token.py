"""BPF tokens (Linux 6.9+): ``bpf_token_path`` / LIBBPF_BPF_TOKEN_PATH, ``create_token``,
``create_map(token_fd=)`` and the errors of a token that cannot be made.

``TestDelegatedToken`` is the container case end to end: a child process in its own user
and mount namespace (root there, no capabilities in the initial user namespace) gets a BPF
filesystem created for its user namespace and given delegation options by this (root)
process, then loads a real object, runs its XDP program with BPF_PROG_TEST_RUN and reads
its global, hash map and ring buffer; without the token the same load fails with EPERM.
See tests/helpers/userns.py for the mount API steps. ``make kernels`` runs this file on
every kernel of the matrix; kernels before 6.9 skip with the probe's answer.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest
from helpers.kernel import bpf_token_unavailable_reason, userns_unavailable_reason

import tinybpf
from tinybpf._kernel import in_user_namespace

pytestmark = pytest.mark.root

HELPERS = Path(__file__).resolve().parent / "helpers"
sys.path.insert(0, str(HELPERS))  # userns.py imports as a top-level module in the child

from userns import DELEGATE_ALL, run_in_userns  # noqa: E402


def _skip_if(reason: str | None) -> None:
    if reason:
        pytest.skip(reason)


class TestTokenPathErrors:
    """What a process outside a user namespace sees (the machine's own kernel)."""

    def test_a_directory_that_is_not_a_bpffs(self, obj_path, tmp_path):
        with pytest.raises(tinybpf.BpfError) as ei:
            tinybpf.load(obj_path("token_xdp"), bpf_token_path=str(tmp_path))
        msg = ei.value.message
        assert msg.startswith(f"load '{obj_path('token_xdp')}' failed: no BPF token from")
        if bpf_token_unavailable_reason() is not None:
            assert isinstance(ei.value, tinybpf.BpfNotSupportedError)
            assert "has no BPF tokens" in msg and "6.9" in msg
        else:
            assert ei.value.errno == errno.EINVAL
            assert f"'{tmp_path}' is not the root of a BPF filesystem" in msg
            assert "delegate_cmds=any" in msg
        # libbpf's own line stays in the log
        assert "to create BPF token from" in (ei.value.libbpf_log or "")

    def test_the_environment_variable_is_honoured(self, obj_path, tmp_path, monkeypatch):
        monkeypatch.setenv("LIBBPF_BPF_TOKEN_PATH", str(tmp_path))
        obj = tinybpf.open(obj_path("token_xdp"))
        with obj, pytest.raises(tinybpf.BpfError) as ei:
            obj.load()
        assert f"no BPF token from '{tmp_path}'" in ei.value.message

    def test_an_empty_option_turns_the_variable_off(self, obj_path, tmp_path, monkeypatch):
        monkeypatch.setenv("LIBBPF_BPF_TOKEN_PATH", str(tmp_path))
        with tinybpf.load(obj_path("token_xdp"), bpf_token_path="") as obj:
            assert obj.program("count_packets").test_run(b"A" + bytes(63)).retval == 2

    def test_a_missing_path(self, obj_path, tmp_path):
        missing = tmp_path / "nothing"
        with pytest.raises(tinybpf.BpfFileNotFoundError) as ei:
            tinybpf.load(obj_path("token_xdp"), bpf_token_path=str(missing))
        assert f"'{missing}' does not exist" in ei.value.message
        with pytest.raises(FileNotFoundError):
            tinybpf.create_token(missing)

    def test_a_file_is_not_a_directory(self, tmp_path):
        f = tmp_path / "file"
        f.write_text("x")
        with pytest.raises(tinybpf.BpfError) as ei:
            tinybpf.create_token(f)
        assert ei.value.errno == errno.ENOTDIR and "is not a directory" in ei.value.message

    def test_initial_user_namespace_refuses_tokens(self):
        _skip_if(bpf_token_unavailable_reason())
        if in_user_namespace():
            pytest.skip("this test process runs in a user namespace, not the initial one")
        if not os.path.ismount("/sys/fs/bpf"):
            pytest.skip("no BPF filesystem mounted at /sys/fs/bpf (make mounts)")
        with pytest.raises(tinybpf.BpfNotSupportedError) as ei:
            tinybpf.create_token("/sys/fs/bpf")
        assert ei.value.errno == errno.EOPNOTSUPP
        assert "cannot be created in the initial user namespace" in ei.value.message

    def test_a_directory_inside_a_bpffs(self):
        _skip_if(bpf_token_unavailable_reason())
        if not os.path.ismount("/sys/fs/bpf"):
            pytest.skip("no BPF filesystem mounted at /sys/fs/bpf (make mounts)")
        sub = f"/sys/fs/bpf/tinybpf-token-test-{os.getpid()}"
        os.mkdir(sub)
        try:
            with pytest.raises(tinybpf.BpfError) as ei:
                tinybpf.create_token(sub)
        finally:
            os.rmdir(sub)
        assert ei.value.errno == errno.EINVAL
        assert "a directory inside the BPF filesystem mounted at '/sys/fs/bpf'" in str(ei.value)

    def test_probe_agrees_with_the_library(self):
        assert tinybpf.token_supported() == (bpf_token_unavailable_reason() is None)

    def test_create_map_checks_token_fd(self):
        with pytest.raises(TypeError, match="token_fd must be an int"):
            tinybpf.create_map("HASH", 4, 8, 4, token_fd="3")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="token_fd must be a file descriptor"):
            tinybpf.create_map("HASH", 4, 8, 4, token_fd=-1)

    def test_create_map_with_an_fd_that_is_no_token(self, tmp_path):
        _skip_if(bpf_token_unavailable_reason())
        with open(tmp_path / "f", "w") as f, pytest.raises(tinybpf.BpfError) as ei:
            tinybpf.create_map("HASH", 4, 8, 4, token_fd=f.fileno())
        assert ei.value.errno == errno.EINVAL


# everything but XDP programs
NO_XDP = {**DELEGATE_ALL, "delegate_progs": "socket_filter"}


@pytest.fixture(scope="module")
def delegated(tmp_path_factory):
    """What the child in a user namespace saw (tests/helpers/token_work.py), run once."""
    _skip_if(bpf_token_unavailable_reason())
    _skip_if(userns_unavailable_reason())
    bpffs = tmp_path_factory.mktemp("delegated-bpffs")
    plain = tmp_path_factory.mktemp("plain-bpffs")
    no_xdp = tmp_path_factory.mktemp("no-xdp-bpffs")
    mounts = [(bpffs, DELEGATE_ALL), (plain, {}), (no_xdp, NO_XDP)]
    return run_in_userns("token_work", mounts), str(bpffs)


class TestDelegatedToken:
    def test_child_is_in_its_own_user_namespace(self, delegated):
        out, _ = delegated
        assert out["uid_map"] == ["0", "0", "1"]

    def test_without_a_token_the_load_is_refused(self, delegated):
        out, _ = delegated
        e = out["load_without_token"]
        assert "BpfPermissionError" in e["classes"] and "PermissionError" in e["classes"]
        assert e["errno"] == errno.EPERM
        assert "runs in a user namespace" in e["message"]
        assert "bpf_token_path=" in e["message"]
        if out["unprivileged_bpf_disabled"] != "0":  # else anyone may create a hash map
            m = out["map_without_token"]
            assert "BpfPermissionError" in m["classes"] and m["errno"] == errno.EPERM
            assert "runs in a user namespace" in m["message"]

    def test_the_option_loads_and_runs_the_object(self, delegated):
        out, _ = delegated
        # XDP_PASS; the global, the hash map (key 'A') and the ring buffer saw the packet
        assert out["with_option"] == {
            "retval": 2,
            "packets": 1,
            "by_byte": {str(ord("A")): 1},
            "ring_samples": [4],
        }

    def test_the_environment_variable_loads_the_object(self, delegated):
        out, _ = delegated
        assert out["with_env"]["retval"] == 2 and out["with_env"]["packets"] == 1
        e = out["empty_option_overrides_env"]
        assert "BpfPermissionError" in e["classes"]

    def test_create_map_with_a_token(self, delegated):
        out, bpffs = delegated
        assert out["map_with_token"] == {"7": 49}
        assert out["token_repr"].startswith(f"<BpfToken from '{bpffs}' fd=")
        assert out["token_closed"] == f"<BpfToken from '{bpffs}' closed>"

    def test_paths_that_give_no_token(self, delegated):
        out, _ = delegated
        assert out["not_bpffs"]["errno"] == errno.EINVAL
        assert "is not the root of a BPF filesystem" in out["not_bpffs"]["message"]
        nd = out["no_delegation"]
        assert nd["errno"] == errno.ENOENT and "BpfFileNotFoundError" not in nd["classes"]
        assert "delegates nothing" in nd["message"]
        assert "BpfFileNotFoundError" in out["missing"]["classes"]
        if "other_userns" in out:
            o = out["other_userns"]
            assert "BpfPermissionError" in o["classes"] and o["errno"] == errno.EPERM
            assert "another user namespace" in o["message"]

    def test_a_token_that_does_not_delegate_the_program_type(self, delegated):
        out, _ = delegated
        e = out["xdp_not_delegated"]
        assert "BpfPermissionError" in e["classes"] and e["errno"] == errno.EPERM
        assert "although a BPF token from" in e["message"]
        assert "refused: program 'count_packets'" in e["message"]
        assert "delegate_progs=socket_filter" in e["message"]
