"""``tinybpf ps``: the programs, maps and links in the kernel with the processes that hold
them (bpftool's pids column), read from /proc/*/fd and /proc/*/fdinfo.

Kept light on purpose (no map, BTF model or codec import): the whole listing is meant to
take a few milliseconds plus one readlink per open file of the machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from .._core import NULL, check_int, errnos, ffi, lib, pystr
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


def _ids(next_id: Callable[[int, Any], int]) -> Iterator[int]:
    cur = 0
    nxt = ffi.new("__u32 *")
    while True:
        ret = next_id(cur, nxt)
        if ret < 0:
            if ret == errnos.RET_NOT_FOUND:
                return
            check_int(ret, "enumerate kernel objects failed")
        cur = int(nxt[0])
        yield cur


def _each_fd(next_id: Any, get_fd: Any) -> Iterator[tuple[int, int]]:
    for obj_id in _ids(next_id):
        fd = int(get_fd(obj_id))
        if fd < 0:
            continue  # went away meanwhile
        try:
            yield obj_id, fd
        finally:
            os.close(fd)


class _BtfCache:
    """Kernel BTF objects by id, loaded once per listing and freed at the end."""

    def __init__(self) -> None:
        self._btfs: dict[int, Any] = {}

    def get(self, btf_id: int) -> Any:
        btf = self._btfs.get(btf_id)
        if btf is None:
            btf = self._btfs[btf_id] = lib.btf__load_from_kernel_by_id(btf_id)
        return btf

    def close(self) -> None:
        for btf in self._btfs.values():
            if btf != NULL:
                lib.btf__free(btf)
        self._btfs.clear()


def full_program_name(fd: int, name: str, btf_id: int, cache: _BtfCache | None = None) -> str:
    """The program's full name from its BTF func info (the kernel keeps 15 characters);
    ``name`` when it is shorter than that or the program has no BTF."""
    if len(name) < _OBJ_NAME_LEN - 1 or not btf_id:
        return name
    rec = ffi.new("struct bpf_func_info *")
    info = ffi.new("struct bpf_prog_info *")
    info.nr_func_info = 1
    info.func_info_rec_size = ffi.sizeof("struct bpf_func_info")
    info.func_info = int(ffi.cast("uintptr_t", rec))
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
    if lib.bpf_prog_get_info_by_fd(fd, info, size) < 0 or not info.nr_func_info:
        return name
    own = cache is None
    cache = cache or _BtfCache()
    try:
        btf = cache.get(btf_id)
        if btf == NULL:
            return name
        t = lib.btf__type_by_id(btf, rec.type_id)
        if t == NULL:
            return name
        full = pystr(lib.btf__name_by_offset(btf, t.name_off))
    finally:
        if own:
            cache.close()
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
    for link_id, fd in _each_fd(lib.bpf_link_get_next_id, lib.bpf_link_get_fd_by_id):
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
    info = ffi.new("struct bpf_prog_info *")
    size = ffi.new("__u32 *")
    try:
        for prog_id, fd in _each_fd(lib.bpf_prog_get_next_id, lib.bpf_prog_get_fd_by_id):
            ffi.memmove(info, bytes(ffi.sizeof(info[0])), ffi.sizeof(info[0]))
            size[0] = ffi.sizeof("struct bpf_prog_info")
            if lib.bpf_prog_get_info_by_fd(fd, info, size) < 0:
                continue
            name = pystr(info.name)
            progs.append(
                {
                    "id": prog_id,
                    "name": full_program_name(fd, name, int(info.btf_id), cache),
                    "type": BpfProgType(int(info.type)).name,
                    "tag": bytes(ffi.buffer(info.tag)).hex(),
                    "attached": attached.get(prog_id, []),
                    "pids": _pids(holders, "prog", prog_id),
                }
            )
    finally:
        cache.close()
    maps = []
    minfo = ffi.new("struct bpf_map_info *")
    for map_id, fd in _each_fd(lib.bpf_map_get_next_id, lib.bpf_map_get_fd_by_id):
        ffi.memmove(minfo, bytes(ffi.sizeof(minfo[0])), ffi.sizeof(minfo[0]))
        size[0] = ffi.sizeof("struct bpf_map_info")
        if lib.bpf_map_get_info_by_fd(fd, minfo, size) < 0:
            continue
        maps.append(
            {
                "id": map_id,
                "name": pystr(minfo.name),
                "type": BpfMapType(int(minfo.type)).name,
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
