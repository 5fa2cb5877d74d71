"""``cgroup_id_map``: keep a BPF hash map filled with the ids of the cgroups whose path
matches a regexp, as ebpf_exporter does, so programs can filter by cgroup with one lookup.

The cgroup v2 hierarchy is walked at start and then every ``interval`` seconds: ids of new
matching cgroups are added (value 1), ids of cgroups that are gone are deleted.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

from .decoders import cgroup_paths
from .schema import ConfigIssue, _Checker, _str

__all__ = ["CgroupIdMap", "CgroupIdMapSpec", "parse_cgroup_id_map"]

log = logging.getLogger(__package__)


@dataclass(frozen=True)
class CgroupIdMapSpec:
    name: str
    regexps: tuple[str, ...]


def parse_cgroup_id_map(
    raw: dict[str, Any], file: str
) -> tuple[CgroupIdMapSpec | None, list[ConfigIssue]]:
    c = _Checker(file)
    m = c.mapping(raw, "cgroup_id_map")
    if m is None:
        return None, c.issues
    c.unknown(m, ("name", "type", "regexps"), "cgroup_id_map")
    name = _str(c, m, "name", "cgroup_id_map")
    mtype = m.get("type", "hash")
    if mtype != "hash":
        c.add("cgroup_id_map.type", f"only 'hash' maps are supported, got {mtype!r}", "", m)
    regexps = c.regexps(
        m.get("regexps"),
        "cgroup_id_map.regexps",
        "needs a non-empty list of regular expressions",
        "add 'regexps: [\"^/sys/fs/cgroup/system.slice/\"]'",
        m,
    )
    return CgroupIdMapSpec(name, tuple(regexps)), c.issues


def check_cgroup_id_map(spec: CgroupIdMapSpec, obj: Any, file: str) -> list[ConfigIssue]:
    bmap = obj.maps.get(spec.name)
    if bmap is None:
        return [
            ConfigIssue(
                file,
                "cgroup_id_map.name",
                f"the object has no map named '{spec.name}'",
                "declare a BPF_MAP_TYPE_HASH map with u64 keys and values of that name",
            )
        ]
    if bmap.type.name != "HASH" or bmap.key_size != 8 or bmap.value_size != 8:
        return [
            ConfigIssue(
                file,
                "cgroup_id_map.name",
                f"map '{spec.name}' is {bmap.type.name} with {bmap.key_size} byte keys and "
                f"{bmap.value_size} byte values",
                "make it a BPF_MAP_TYPE_HASH with u64 keys (cgroup ids) and u64 values",
            )
        ]
    return []


class CgroupIdMap:
    """Keeps the map in sync with the matching cgroups from a background thread."""

    def __init__(self, spec: CgroupIdMapSpec, bmap: Any, interval: float = 1.0) -> None:
        self.spec = spec
        self.map = bmap.typed(key=int, value=int)
        self.patterns = [re.compile(p) for p in spec.regexps]
        self.interval = interval
        self.present: set[int] = set()
        self.stop = threading.Event()
        self.sync()
        self.thread = threading.Thread(target=self._run, name=f"cgroups:{spec.name}", daemon=True)
        self.thread.start()

    def sync(self) -> None:
        """One pass: add matching cgroups, delete the ones gone or no longer matching."""
        want = {
            cid
            for cid, path in cgroup_paths().items()
            if any(p.search(path) for p in self.patterns)
        }
        for cid in want - self.present:
            self.map[cid] = 1
        for cid in self.present - want:
            self.map.delete(cid)
        self.present = want

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.sync()
            except Exception as e:  # keep syncing; the next pass may succeed
                log.error("cgroup_id_map %s: %s", self.spec.name, e)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
