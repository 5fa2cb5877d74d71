"""What tests/test_token.py has a process in a user namespace do (see userns.py): load and
run a BPF object with and without a token from the delegated bpffs at ``bpffs_dir``,
create maps, and collect the errors of bad token paths. Returns plain data (JSON)."""

from __future__ import annotations

import ctypes
import os
import tempfile
from pathlib import Path
from typing import Any

import tinybpf

OBJ = Path(__file__).resolve().parents[1] / "bpf" / "build" / "token_xdp.bpf.o"
PACKET = b"A" + bytes(63)


def _error(call: Any) -> dict[str, Any]:
    """The error ``call()`` raised (type names of its classes, errno, message)."""
    try:
        call()
    except Exception as e:
        return {
            "classes": [c.__name__ for c in type(e).__mro__],
            "errno": getattr(e, "errno", None),
            "message": getattr(e, "message", str(e)),
        }
    return {"classes": [], "errno": None, "message": "no error"}


def _run(obj: tinybpf.BpfObject) -> dict[str, Any]:
    lengths: list[int] = []
    ring = tinybpf.BpfRingBuffer(obj.map("lengths"), lambda d: lengths.append(len(d)))
    with ring:
        r = obj.program("count_packets").test_run(PACKET)
        ring.poll(1000)
    counts = obj.map("by_byte").typed(key=ctypes.c_uint32, value=ctypes.c_uint64)
    return {
        "retval": r.retval,
        "packets": obj.globals["packets"],
        "by_byte": {str(k): v for k, v in counts.items()},
        "ring_samples": lengths,
    }


def work(dirs: list[str]) -> dict[str, Any]:
    """``dirs``: a bpffs delegating everything, one delegating nothing and one delegating
    everything but XDP programs."""
    bpffs_dir, plain_bpffs, no_xdp = dirs
    out: dict[str, Any] = {"uid_map": Path("/proc/self/uid_map").read_text().split()}
    sysctl = Path("/proc/sys/kernel/unprivileged_bpf_disabled")
    out["unprivileged_bpf_disabled"] = sysctl.read_text().strip()
    obj = str(OBJ)
    # without a token: the process has no capabilities in the initial user namespace
    out["load_without_token"] = _error(lambda: tinybpf.load(obj).close())
    out["map_without_token"] = _error(
        lambda: tinybpf.create_map("HASH", 4, 8, 4, name="plain").close()
    )
    # the option
    with tinybpf.load(obj, bpf_token_path=bpffs_dir) as o:
        out["with_option"] = _run(o)
    # libbpf's environment variable, read at open
    os.environ["LIBBPF_BPF_TOKEN_PATH"] = bpffs_dir
    try:
        with tinybpf.open(obj) as o:
            o.load()
            out["with_env"] = _run(o)
        # an empty option overrides the variable: no token
        out["empty_option_overrides_env"] = _error(
            lambda: tinybpf.load(obj, bpf_token_path="").close()
        )
    finally:
        del os.environ["LIBBPF_BPF_TOKEN_PATH"]
    # a token for maps made outside an object
    with tinybpf.create_token(bpffs_dir) as token:
        out["token_repr"] = repr(token)
        m = tinybpf.create_map("HASH", 4, 8, 4, name="delegated", token_fd=token.fd)
        with m:
            t = m.typed(key=ctypes.c_uint32, value=ctypes.c_uint64)
            t[7] = 49
            out["map_with_token"] = {"7": t[7]}
    out["token_closed"] = repr(token)
    # what goes wrong with a path that cannot give a token
    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "plain")
        os.mkdir(plain)
        out["not_bpffs"] = _error(lambda: tinybpf.load(obj, bpf_token_path=plain).close())
        out["missing"] = _error(
            lambda: tinybpf.load(obj, bpf_token_path=os.path.join(tmp, "missing")).close()
        )
    out["no_delegation"] = _error(lambda: tinybpf.load(obj, bpf_token_path=plain_bpffs).close())
    # a token that does not delegate what the object needs
    out["xdp_not_delegated"] = _error(lambda: tinybpf.load(obj, bpf_token_path=no_xdp).close())
    # the initial namespace's bpffs (if mounted): not this user namespace's
    if os.path.ismount("/sys/fs/bpf"):
        out["other_userns"] = _error(lambda: tinybpf.create_token("/sys/fs/bpf").close())
    return out
