"""Readable summaries of BPF objects and of what is loaded in the kernel (CLI and REPL)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["describe_object", "explore", "kernel_listing", "render_table"]


def _color(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def render_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], stream: TextIO | None = None
) -> str:
    """A plain-text table (bold headers on a terminal)."""
    out = stream or sys.stdout
    cells = [[str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in cells:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    bold, reset = ("\033[1m", "\033[0m") if _color(out) else ("", "")
    lines = [f"{bold}{title}{reset}"] if title else []
    head = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    lines.append(f"{bold}{head}{reset}")
    for r in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if not cells:
        lines.append("(none)")
    return "\n".join(lines)


def _type_name(bt: Any) -> str:
    if bt is None:
        return "-"
    from .. import BtfKind

    if bt.kind == BtfKind.ARRAY and bt.elem is not None:
        return f"{_type_name(bt.elem)}[{bt.nelems}]"
    if bt.kind in (BtfKind.STRUCT, BtfKind.UNION) and bt.type_name == bt.name and bt.name:
        return f"{bt.kind.name.lower()} {bt.name}"
    return str(bt.type_name or bt.name or bt.kind.name.lower())


def object_summary(obj: Any) -> dict[str, Any]:
    """Programs, maps, globals, license and BTF types of an (opened) object, as data."""
    from .. import BpfProgType, BtfKind
    from .symbolize import ElfError, ElfFile

    progs = []

    for p in obj.programs.values():
        attach_type = p.expected_attach_type
        shown = attach_type.name if int(attach_type) or p.type == BpfProgType.CGROUP_SKB else "-"
        progs.append(
            {
                "name": p.name,
                "section": p.section,
                "type": p.type.name,
                "attach_type": shown,
                "insns": p.insn_count,
                "autoload": p.autoload,
            }
        )
    maps = []
    for m in obj.maps.values():
        maps.append(
            {
                "name": m.name,
                "type": m.type.name,
                "key": _type_name(m.btf_key),
                "value": _type_name(m.btf_value),
                "key_size": m.key_size,
                "value_size": m.value_size,
                "max_entries": m.max_entries,
                "flags": m.map_flags,
                "internal": m.is_internal,
            }
        )
    globs = []
    try:
        gv = obj.globals
        for sec_name, sec in gv.sections.items():
            for var in sec:
                try:
                    value: Any = sec[var]
                except Exception as e:  # show what cannot be read instead of failing
                    value = f"<{e}>"
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                elif not isinstance(value, (int, float, bool, str)):
                    value = repr(value)
                globs.append(
                    {
                        "section": sec_name,
                        "name": var,
                        "type": _type_name(sec.type_of(var)),
                        "value": value,
                    }
                )
    except Exception:
        pass
    license = None
    path = Path(obj.path)
    if path.exists():
        try:
            license = ElfFile(str(path)).license
        except (ElfError, OSError):
            license = None
    types: dict[str, list[str]] = {}
    btf = obj.btf
    if btf is not None:
        wanted = {BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.TYPEDEF}
        for t in btf:
            if t.kind in wanted and t.name:
                types.setdefault(t.kind.name.lower(), []).append(t.name)
    return {
        "name": obj.name,
        "path": str(path),
        "license": license,
        "programs": progs,
        "maps": maps,
        "globals": globs,
        "btf_types": {k: sorted(set(v)) for k, v in types.items()},
    }


def describe_object(obj: Any, stream: TextIO | None = None) -> str:
    """The human-readable summary of an object (``tinybpf inspect`` and ``explore``)."""
    s = object_summary(obj)
    parts = [f"{s['name']}  ({s['path']})  license: {s['license'] or '?'}"]
    parts.append(
        render_table(
            "\nPrograms",
            ["NAME", "SECTION", "TYPE", "ATTACH TYPE", "INSNS", "AUTOLOAD"],
            [
                [p["name"], p["section"], p["type"], p["attach_type"], p["insns"], p["autoload"]]
                for p in s["programs"]
            ],
            stream,
        )
    )
    parts.append(
        render_table(
            "\nMaps",
            ["NAME", "TYPE", "KEY", "VALUE", "MAX ENTRIES", "FLAGS"],
            [
                [
                    m["name"],
                    m["type"],
                    f"{m['key']} ({m['key_size']}B)",
                    f"{m['value']} ({m['value_size']}B)",
                    m["max_entries"],
                    hex(m["flags"]),
                ]
                for m in s["maps"]
            ],
            stream,
        )
    )
    parts.append(
        render_table(
            "\nGlobal variables",
            ["SECTION", "NAME", "TYPE", "INITIAL VALUE"],
            [[g["section"], g["name"], g["type"], g["value"]] for g in s["globals"]],
            stream,
        )
    )
    tlines = []
    for kind, names in sorted(s["btf_types"].items()):
        more = f", ... ({len(names) - 12} more; --json lists all)" if len(names) > 12 else ""
        tlines.append(f"  {kind} ({len(names)}): {', '.join(names[:12])}{more}")
    parts.append("\nBTF types\n" + ("\n".join(tlines) if tlines else "(none)"))
    return "\n".join(parts)


def explore(source: str | os.PathLike[str], load: bool = False) -> Any:
    """Open a BPF object (loaded too with ``load=True``), print its summary, return it.

    Example::

        >>> obj = tinybpf.explore("prog.bpf.o")   # doctest: +SKIP
    """
    from ..object import open_object

    obj = open_object(source)
    if load:
        obj.load()
    print(describe_object(obj))
    return obj


def _pins() -> dict[tuple[str, int], list[str]]:
    """(kind, id) -> pin paths found under the mounted BPF filesystems."""
    from .. import KernelMapInfo, KernelProgramInfo, bpffs_mounts, pinned_info

    out: dict[tuple[str, int], list[str]] = {}
    for mount in bpffs_mounts():
        for root, _dirs, files in os.walk(mount):
            for f in files:
                path = os.path.join(root, f)
                try:
                    info = pinned_info(path)
                except OSError:
                    continue  # gone meanwhile, or not a program, map or link
                if isinstance(info, KernelProgramInfo):
                    kind = "prog"
                elif isinstance(info, KernelMapInfo):
                    kind = "map"
                else:
                    kind = "link"
                out.setdefault((kind, info.id), []).append(path)
    return out


def kernel_listing(kind: str) -> list[dict[str, Any]]:
    """Rows of ``tinybpf list progs|maps|links`` (what bpftool's listings show)."""
    from ..introspect import loaded_links, loaded_maps, loaded_programs

    pins = _pins()
    rows: list[dict[str, Any]] = []
    if kind == "progs":
        attach: dict[int, list[str]] = {}
        for li in loaded_links():
            attach.setdefault(li.prog_id, []).append(_link_target(li))
        for p in loaded_programs():
            rows.append(
                {
                    "id": p.id,
                    "name": p.name,
                    "type": p.type.name,
                    "tag": p.tag,
                    "maps": list(p.map_ids),
                    "attached": attach.get(p.id, []),
                    "run_count": p.run_count,
                    "pins": pins.get(("prog", p.id), []),
                }
            )
    elif kind == "maps":
        for m in loaded_maps():
            rows.append(
                {
                    "id": m.id,
                    "name": m.name,
                    "type": m.type.name,
                    "key_size": m.key_size,
                    "value_size": m.value_size,
                    "max_entries": m.max_entries,
                    "flags": m.flags,
                    "pins": pins.get(("map", m.id), []),
                }
            )
    elif kind == "links":
        for li in loaded_links():
            rows.append(
                {
                    "id": li.id,
                    "type": li.type.name,
                    "prog_id": li.prog_id,
                    "target": _link_target(li),
                    "pins": pins.get(("link", li.id), []),
                }
            )
    else:
        raise ValueError(f"unknown listing {kind!r}: expected progs, maps or links")
    return rows


def _link_target(li: Any) -> str:
    import socket

    t = li.type.name.lower()
    if li.ifindex:
        try:
            name = socket.if_indextoname(li.ifindex)
        except OSError:
            name = f"if{li.ifindex}"
        return f"{t}:{name}" + (f":{li.attach_type.name}" if li.attach_type else "")
    if li.cgroup_id:
        return f"cgroup:{li.cgroup_id}:{li.attach_type.name if li.attach_type else ''}"
    if li.target_name:
        return f"{t}:{li.target_name}"
    if li.netns_ino:
        return f"netns:{li.netns_ino}"
    if li.pf or li.hooknum:
        return f"netfilter:pf{li.pf}:hook{li.hooknum}:prio{li.priority}"
    return str(t)


def print_listing(kind: str, as_json: bool, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    rows = kernel_listing(kind)
    if as_json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    if kind == "progs":
        table = render_table(
            "",
            ["ID", "NAME", "TYPE", "TAG", "MAPS", "ATTACHED", "PINS"],
            [
                [
                    r["id"],
                    r["name"],
                    r["type"],
                    r["tag"],
                    ",".join(map(str, r["maps"])),
                    ",".join(r["attached"]) or "-",
                    ",".join(r["pins"]) or "-",
                ]
                for r in rows
            ],
            out,
        )
    elif kind == "maps":
        table = render_table(
            "",
            ["ID", "NAME", "TYPE", "KEY", "VALUE", "MAX", "FLAGS", "PINS"],
            [
                [
                    r["id"],
                    r["name"],
                    r["type"],
                    r["key_size"],
                    r["value_size"],
                    r["max_entries"],
                    hex(r["flags"]),
                    ",".join(r["pins"]) or "-",
                ]
                for r in rows
            ],
            out,
        )
    else:
        table = render_table(
            "",
            ["ID", "TYPE", "PROG", "TARGET", "PINS"],
            [
                [r["id"], r["type"], r["prog_id"], r["target"], ",".join(r["pins"]) or "-"]
                for r in rows
            ],
            out,
        )
    out.write(table + "\n")
