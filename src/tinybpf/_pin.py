"""Pin path checks: pins live in a BPF filesystem, and nowhere else."""

from __future__ import annotations

import os

from .errors import BpfError

__all__ = ["bpffs_mounts", "check_pin_path"]


def bpffs_mounts() -> list[str]:
    """The mount points of the BPF filesystems (``mount -t bpf``) this process sees, in
    mount order: where pins can go. Empty when none is mounted.

    Example::

        for mount in tinybpf.bpffs_mounts():   # e.g. "/sys/fs/bpf"
            print(mount, os.listdir(mount))
    """
    mounts: list[str] = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fstype = right.split(" ", 1)[0]
                if fstype == "bpf":
                    mounts.append(left.split(" ")[4].replace("\\040", " "))
    except OSError:
        pass
    return mounts


def check_pin_path(path: str | os.PathLike[str], what: str = "") -> str:
    """Return ``path`` as str if its directory is inside a mounted BPF filesystem.

    Raises BpfError (EINVAL) naming the mounts otherwise: pinning elsewhere fails in the
    kernel with a less helpful error, and a path outside bpffs is never written.
    """
    from pathlib import Path

    p = Path(path)
    if not str(p):
        raise BpfError("empty pin path", 22)
    parent = Path(os.path.realpath(p.parent if str(p.parent) else "."))
    mounts = bpffs_mounts()
    for m in mounts:
        mp = Path(m)
        if parent == mp or mp in parent.parents:
            return str(p)
    where = ", ".join(mounts) or "none mounted (mount -t bpf bpf /sys/fs/bpf)"
    prefix = f"{what} failed: " if what else ""
    raise BpfError(
        f"{prefix}pin path '{p}' is not inside a BPF filesystem (bpffs mounts: {where})", 22
    )
