"""A process in its own user and mount namespace, given a delegated BPF filesystem.

The container setup of BPF tokens, made with the kernel's mount API (fsopen, fsconfig,
fsmount, move_mount), which Python's os module lacks (ctypes calls the syscalls by number;
these numbers are the same on every architecture since Linux 5.2):

1. the child unshares a user namespace; the (privileged) parent writes its uid/gid maps
   (root inside is root outside, but only inside does it have capabilities);
2. the child unshares a mount namespace and opens a BPF filesystem context with fsopen():
   the context belongs to the child's user namespace, so the bpffs will too;
3. the child passes the context's fd to the parent over a unix socket (SCM_RIGHTS); the
   parent, with CAP_SYS_ADMIN in the initial user namespace (which the delegation options
   require), sets delegate_cmds/maps/progs/attachs, creates the superblock and makes a
   detached mount of it (fsmount), and passes the mount's fd back;
4. the child attaches the mount at a directory of its mount namespace (move_mount) and
   runs what it was asked to: there it has no capabilities in the initial user namespace,
   so BPF works only through a token from that mount.

``run_in_userns(work, [(dir, options), ...])`` is the parent's side; this file run as a
script (``python userns.py SOCKFD DIRS_JSON WORK_MODULE``) is the child's, which calls
``WORK_MODULE.work(dirs)`` and prints its JSON-serializable result.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

# asm-generic syscall numbers, shared by all architectures for these (Linux 5.2+)
NR_MOVE_MOUNT = 429
NR_FSOPEN = 430
NR_FSCONFIG = 431
NR_FSMOUNT = 432
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100

DELEGATE_ALL = {
    "delegate_cmds": "any",
    "delegate_maps": "any",
    "delegate_progs": "any",
    "delegate_attachs": "any",
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _sys(nr: int, what: str, *args: Any) -> int:
    conv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return _check(int(_libc.syscall(ctypes.c_long(nr), *conv)), what)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def fsopen(fstype: str) -> int:
    return _sys(NR_FSOPEN, f"fsopen({fstype})", fstype.encode(), FSOPEN_CLOEXEC)


def fsconfig_string(fs_fd: int, key: str, value: str) -> None:
    _sys(NR_FSCONFIG, f"fsconfig({key}={value})", fs_fd, FSCONFIG_SET_STRING, key.encode(),
         value.encode(), 0)  # fmt: skip


def fs_create_and_mount(fs_fd: int) -> int:
    """FSCONFIG_CMD_CREATE, then a detached mount of the superblock (its fd)."""
    _sys(NR_FSCONFIG, "fsconfig(CMD_CREATE)", fs_fd, FSCONFIG_CMD_CREATE, None, None, 0)
    return _sys(NR_FSMOUNT, "fsmount", fs_fd, FSMOUNT_CLOEXEC, 0)


def move_mount(mnt_fd: int, target: str) -> None:
    _sys(NR_MOVE_MOUNT, f"move_mount(-> {target})", mnt_fd, b"", AT_FDCWD, target.encode(),
         MOVE_MOUNT_F_EMPTY_PATH)  # fmt: skip


def umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(0)), f"umount({target})")


def _recv_fd(sock: socket.socket, tag: bytes) -> int:
    msg, fds, _, _ = socket.recv_fds(sock, 16, 1)
    if msg != tag or len(fds) != 1:
        raise RuntimeError(f"expected {tag!r} with one fd, got {msg!r} and {fds}")
    return fds[0]


def _expect(sock: socket.socket, tag: bytes) -> None:
    msg = sock.recv(16)
    if msg != tag:
        raise RuntimeError(f"expected {tag!r}, got {msg!r}")


def run_in_userns(work_module: str, mounts: list[tuple[Path, dict[str, str]]],
                  timeout: float = 600) -> Any:  # fmt: skip
    """Start the child, give it a bpffs with the given options at each directory of
    ``mounts`` (inside its mount namespace) and return what ``work_module.work(dirs)``
    returned there. Raises RuntimeError with the child's output when it fails."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = {k: v for k, v in os.environ.items() if k != "LIBBPF_BPF_TOKEN_PATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    dirs = json.dumps([str(d) for d, _ in mounts])
    proc = subprocess.Popen(
        [sys.executable, __file__, str(child.fileno()), dirs, work_module],
        pass_fds=[child.fileno()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    child.close()
    parent.settimeout(timeout)
    try:
        _expect(parent, b"userns")
        for name, line in (("uid_map", "0 0 1"), ("gid_map", "0 0 1")):
            Path(f"/proc/{proc.pid}/{name}").write_text(f"{line}\n")
        parent.send(b"mapped")
        for _, options in mounts:
            fs_fd = _recv_fd(parent, b"fsopen")
            try:
                for key, value in options.items():
                    fsconfig_string(fs_fd, key, value)
                mnt = fs_create_and_mount(fs_fd)
            finally:
                os.close(fs_fd)
            try:
                socket.send_fds(parent, [b"mount"], [mnt])
            finally:
                os.close(mnt)
    except BaseException:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"child: {err.decode(errors='replace')[-3000:]}") from None
    finally:
        parent.close()
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(
            f"child exited with {proc.returncode}: {err.decode(errors='replace')[-3000:]}"
        )
    return json.loads(out.decode().strip().splitlines()[-1])


def _child(sock_fd: int, dirs: list[str], work_module: str) -> None:
    sock = socket.socket(fileno=sock_fd)
    unshare(CLONE_NEWUSER)
    sock.send(b"userns")
    _expect(sock, b"mapped")
    unshare(CLONE_NEWNS)
    # nothing mounted here propagates back
    _check(_libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None), "mount")
    for target in dirs:
        fs_fd = fsopen("bpf")  # the bpffs belongs to this user namespace
        socket.send_fds(sock, [b"fsopen"], [fs_fd])
        os.close(fs_fd)
        mnt = _recv_fd(sock, b"mount")
        move_mount(mnt, target)
        os.close(mnt)
    sock.close()
    result = importlib.import_module(work_module).work(dirs)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _child(int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3])
