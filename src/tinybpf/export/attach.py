"""Attaching a config's programs by their SEC() names, as ebpf_exporter does.

libbpf's auto-attach covers the usual sections (tracepoint/, raw_tp/, tp_btf/, uprobe/,
usdt/, kprobe/...). Two ebpf_exporter sections are handled here: ``xdp/<ifname>`` attaches
the XDP program to that interface, and ``perf_event/type=N,config=N,frequency=N`` (or
``period=N``) opens that perf event on every online CPU and attaches to each.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import BpfAttachType, BpfProgType, perf_event_open

if TYPE_CHECKING:
    from ..object import BpfObject
    from ..program import BpfProgram

__all__ = ["ProgramState", "attach_program", "online_cpus", "parse_perf_event_section", "prepare"]

log = logging.getLogger(__package__)


@dataclass
class ProgramState:
    """One program of a config: its kernel id and tag once loaded, whether it attached."""

    name: str
    section: str
    id: int = 0
    tag: str = ""
    attached: bool = False
    error: str = ""
    links: list[Any] = field(default_factory=list)


def online_cpus() -> list[int]:
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        import os

        return list(range(os.cpu_count() or 1))
    cpus: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            cpus.extend(range(int(a), int(b) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


def parse_perf_event_section(section: str) -> dict[str, int]:
    """``perf_event/type=1,config=0,frequency=99`` -> {"type": 1, "config": 0, ...}."""
    body = section[len("perf_event/") :]
    out: dict[str, int] = {}
    for item in body.split(","):
        k, sep, v = item.partition("=")
        if not sep:
            raise ValueError(f"invalid perf_event item {item!r} in section {section!r}")
        if k not in ("type", "config", "frequency", "period"):
            raise ValueError(
                f"unknown perf_event item {k!r} in section {section!r} "
                "(use type, config, frequency or period)"
            )
        try:
            out[k] = int(v, 0)
        except ValueError:
            raise ValueError(f"perf_event item {item!r}: {v!r} is not an integer") from None
    if "type" not in out or "config" not in out:
        raise ValueError(f"section {section!r} needs both type=N and config=N")
    return out


def prepare(obj: BpfObject) -> None:
    """Before load: give the sections libbpf does not know their program type."""
    for prog in obj.programs.values():
        sec = prog.section
        if sec.startswith("xdp/") and prog.type == BpfProgType.UNSPEC:
            prog.type = BpfProgType.XDP
            prog.expected_attach_type = BpfAttachType.XDP
        elif sec.startswith("perf_event/") and prog.type == BpfProgType.UNSPEC:
            prog.type = BpfProgType.PERF_EVENT


def attach_program(prog: BpfProgram) -> list[Any]:
    """Attach one loaded program by its section; returns its links (raises on failure)."""
    sec = prog.section
    if sec.startswith("xdp/"):
        ifname = sec[len("xdp/") :]
        try:
            socket.if_nametoindex(ifname)
        except OSError:
            raise OSError(f"no network interface '{ifname}' for section '{sec}'") from None
        return [prog.attach_xdp(ifname)]
    if sec.startswith("perf_event/"):
        spec = parse_perf_event_section(sec)
        links: list[Any] = []
        try:
            for cpu in online_cpus():
                ev = perf_event_open(
                    spec["type"],
                    spec["config"],
                    cpu=cpu,
                    sample_freq=spec.get("frequency", 0),
                    sample_period=spec.get("period", 0),
                )
                links.append(prog.attach_perf_event(ev.detach_fd()))
        except BaseException:
            for link in links:
                link.destroy()
            raise
        return links
    return [prog.attach()]
