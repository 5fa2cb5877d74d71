"""``tinybpf ps``: the programs, maps and links in the kernel with the processes that hold
them (bpftool's pids column), read from /proc/*/fd and /proc/*/fdinfo.

Kept light on purpose (no map, BTF model or codec import): the whole listing is meant to
take a few milliseconds plus one readlink per open file of the machine.
"""

from __future__ import annotations

import os
from typing import Any

from .._core import tools
from .._types import BpfMapType, BpfProgType
from ..link import link_info_by_fd

__all__ = ["fd_holders", "full_program_name", "ps_listing"]

_KINDS = {
    "anon_inode:bpf-prog": ("prog", "prog_id:"),
    "anon_inode:bpf-map": ("map", "map_id:"),
    "anon_inode:bpf_link": ("link", "link_id:"),
    "anon_inode:bpf-link": ("link", "link_id:"),
}
_OBJ_NAME_LEN = 16  # BPF_OBJ_NAME_LEN: the kernel keeps 15 characters of a name

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


_BtfCache = tools.BtfCache


def full_program_name(fd: int, name: str, btf_id: int, cache: _BtfCache | None = None) -> str:
    """The program's full name from its BTF func info (the kernel keeps 15 characters);
    ``name`` when it is shorter than that or the program has no BTF."""
    if len(name) < _OBJ_NAME_LEN - 1 or not btf_id:
        return name
    type_id = tools.first_func_type_id(fd)
    if type_id is None:
        return name
    own = cache is None
    cache = cache or _BtfCache()
    try:
        full = cache.type_name(btf_id, type_id)
    finally:
        if own:
            cache.close()
    if full is None:
        return name
    return full if full.startswith(name) else name


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
    for link_id, fd in tools.each_fd("link"):
        try:
            li = link_info_by_fd(fd)
        except OSError:
            continue
        target = _link_target(li)
        attached.setdefault(li.prog_id, []).append(target)
        links.append(
            {
                "id": link_id,
                "type": li.type.name,
                "prog_id": li.prog_id,
                "target": target,
                "pids": _pids(holders, "link", link_id),
            }
        )
    progs = []
    cache = _BtfCache()
    try:
        for prog_id, fd in tools.each_fd("prog"):
            summary = tools.prog_summary(fd)
            if summary is None:
                continue
            name, prog_type, btf_id, tag = summary
            progs.append(
                {
                    "id": prog_id,
                    "name": full_program_name(fd, name, btf_id, cache),
                    "type": BpfProgType(prog_type).name,
                    "tag": tag,
                    "attached": attached.get(prog_id, []),
                    "pids": _pids(holders, "prog", prog_id),
                }
            )
    finally:
        cache.close()
    maps = []
    for map_id, fd in tools.each_fd("map"):
        msummary = tools.map_summary(fd)
        if msummary is None:
            continue
        map_name, map_type = msummary
        maps.append(
            {
                "id": map_id,
                "name": map_name,
                "type": BpfMapType(map_type).name,
                "pids": _pids(holders, "map", map_id),
            }
        )
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
