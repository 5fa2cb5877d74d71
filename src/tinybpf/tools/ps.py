"""``tinybpf ps``: the programs, maps and links in the kernel with the processes that hold
them (bpftool's pids column), read from /proc/*/fd and /proc/*/fdinfo.

Built on the public listings (``tinybpf.loaded_programs`` and the like, and
``KernelProgramInfo.full_name``) and kept light on purpose: the modules they live in
import no map, BTF model or codec, so the whole listing takes a few milliseconds plus
one readlink per open file of the machine.
"""

from __future__ import annotations

import os
from typing import Any

from .. import loaded_links, loaded_maps, loaded_programs

__all__ = ["fd_holders", "ps_listing"]

_KINDS = {
    "anon_inode:bpf-prog": ("prog", "prog_id:"),
    "anon_inode:bpf-map": ("map", "map_id:"),
    "anon_inode:bpf_link": ("link", "link_id:"),
    "anon_inode:bpf-link": ("link", "link_id:"),
}

Holders = dict[tuple[str, int], list[tuple[int, str]]]


def _fdinfo_id(pid: str, fd: str, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as f:
            data = f.read()
    except OSError:
        return None
    key = field.encode()
    at = data.find(b"\n" + key)
    if at < 0:
        if not data.startswith(key):
            return None
        at = -1
    start = at + 1 + len(key)
    end = data.find(b"\n", start)
    try:
        return int(data[start : end if end >= 0 else len(data)])
    except ValueError:
        return None


def fd_holders(skip_pid: int | None = None) -> Holders:
    """``(kind, id) -> [(pid, command)]`` for every BPF program, map and link fd open in a
    process (kind ``"prog"``, ``"map"`` or ``"link"``). Processes that vanish or cannot be
    read (another user's, without privileges) are left out."""
    out: Holders = {}
    readlink = os.readlink
    kinds = _KINDS
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or (skip_pid is not None and int(pid) == skip_pid):
            continue
        base = f"/proc/{pid}/fd/"
        try:
            fds = os.listdir(base)
        except OSError:
            continue
        comm = None
        for fd in fds:
            try:
                target = readlink(base + fd)
            except OSError:
                continue
            kind = kinds.get(target)
            if kind is None:
                continue
            obj_id = _fdinfo_id(pid, fd, kind[1])
            if obj_id is None:
                continue
            if comm is None:
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        comm = f.read().rstrip("\n")
                except OSError:
                    comm = "?"
            holders = out.setdefault((kind[0], obj_id), [])
            if (int(pid), comm) not in holders:
                holders.append((int(pid), comm))
    return out


def _pids(holders: Holders, kind: str, obj_id: int) -> list[dict[str, Any]]:
    return [{"pid": pid, "comm": comm} for pid, comm in holders.get((kind, obj_id), [])]


def ps_listing() -> dict[str, list[dict[str, Any]]]:
    """Programs, maps and links in the kernel, each with ``pids`` (the processes holding
    an fd of it); programs with their full names. The caller's own fds are listed too
    (those it had before the call)."""
    holders = fd_holders()  # first: the fds opened below to read the infos are not listed
    from .inspection import _link_target

    links = []
    attached: dict[int, list[str]] = {}
    for li in loaded_links():
        target = _link_target(li)
        attached.setdefault(li.prog_id, []).append(target)
        links.append(
            {
                "id": li.id,
                "type": li.type.name,
                "prog_id": li.prog_id,
                "target": target,
                "pids": _pids(holders, "link", li.id),
            }
        )
    progs = [
        {
            "id": p.id,
            "name": p.full_name(),
            "type": p.type.name,
            "tag": p.tag,
            "attached": attached.get(p.id, []),
            "pids": _pids(holders, "prog", p.id),
        }
        for p in loaded_programs()
    ]
    maps = [
        {"id": m.id, "name": m.name, "type": m.type.name, "pids": _pids(holders, "map", m.id)}
        for m in loaded_maps()
    ]
    return {"programs": progs, "maps": maps, "links": links}


def _pid_text(pids: list[dict[str, Any]]) -> str:
    return ",".join(f"{p['comm']}({p['pid']})" for p in pids) or "-"


def print_ps(as_json: bool, stream: Any = None) -> None:
    import sys

    from .inspection import render_table

    out = stream or sys.stdout
    data = ps_listing()
    if as_json:
        import json

        json.dump(data, out, indent=2)
        out.write("\n")
        return
    parts = [
        render_table(
            "Programs",
            ["ID", "NAME", "TYPE", "ATTACHED", "PIDS"],
            [
                [
                    p["id"],
                    p["name"],
                    p["type"],
                    ",".join(p["attached"]) or "-",
                    _pid_text(p["pids"]),
                ]
                for p in data["programs"]
            ],
            out,
        ),
        render_table(
            "\nMaps",
            ["ID", "NAME", "TYPE", "PIDS"],
            [[m["id"], m["name"], m["type"], _pid_text(m["pids"])] for m in data["maps"]],
            out,
        ),
        render_table(
            "\nLinks",
            ["ID", "TYPE", "PROG", "TARGET", "PIDS"],
            [
                [li["id"], li["type"], li["prog_id"], li["target"], _pid_text(li["pids"])]
                for li in data["links"]
            ],
            out,
        ),
    ]
    out.write("\n".join(parts) + "\n")
