"""The schema of ebpf_exporter's configs: the parsed dataclasses and the checks shared by
every part of a config.

The lowest module of the config side: :mod:`.config` (the parser of a whole file) and the
parsers of its sections (:mod:`.cgroups`, :mod:`.tracing`) build on it, and
:mod:`.decoders` reads its :class:`Label` and :class:`DecoderSpec`. It imports none of them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Counter",
    "DecoderSpec",
    "Histogram",
    "Label",
]

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config: where (file, key, line) and what to do about it."""

    file: str
    key: str
    message: str
    fix: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class ConfigError(ValueError):
    """A config cannot be used; ``issues`` lists every problem found, each naming its file,
    key and fix."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        lines = [str(i) for i in self.issues]
        head = f"{len(lines)} problem{'s' if len(lines) != 1 else ''} in exporter config"
        super().__init__(head + ":\n  " + "\n  ".join(lines))


@dataclass(frozen=True)
class DecoderSpec:
    """One decoder of a label: its name and its own settings."""

    name: str
    static_map: dict[str, str] | None = None
    regexps: tuple[str, ...] = ()
    allow_unknown: bool = False


@dataclass(frozen=True)
class Label:
    """A label decoded from ``size`` bytes of the map key, followed by ``padding`` bytes
    that are skipped (or count the padding in ``size``, as ebpf_exporter allows: decoders
    such as ``uint`` then read it too)."""

    name: str
    size: int
    decoders: tuple[DecoderSpec, ...]
    padding: int = 0

    @property
    def width(self) -> int:
        """Bytes of the key this label takes: ``size + padding``."""
        return self.size + self.padding


@dataclass(frozen=True)
class Counter:
    """A Prometheus counter read from the map of the same name."""

    name: str
    help: str
    labels: tuple[Label, ...] = ()
    perf_event_array: bool = False
    flush_interval: float = 0.0
    max_series: int = 0
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Histogram:
    """A Prometheus histogram read from the map of the same name; the last label is the
    bucket."""

    name: str
    help: str
    bucket_type: str
    labels: tuple[Label, ...]
    bucket_multiplier: float = 1.0
    bucket_min: int = 0
    bucket_max: int = 0
    bucket_keys: tuple[float, ...] = ()
    max_series: int = 0


@dataclass
class Config:
    """One parsed config: its name, the object beside it and its metrics."""

    name: str
    path: Path | None = None
    object_path: Path | None = None
    counters: list[Counter] = field(default_factory=list)
    histograms: list[Histogram] = field(default_factory=list)
    kaddrs: list[str] = field(default_factory=list)
    tracing: dict[str, Any] | None = None
    spans: list[Any] = field(default_factory=list)
    cgroup_id_map: dict[str, Any] | None = None
    cgroup_map: Any = None

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else f"<config {self.name}>"


class _Map(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers each key's line and the key's text as written."""

    lines: dict[Any, int]
    raw_keys: dict[Any, str]


# --- validation -------------------------------------------------------------------------------


class _Checker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.issues: list[ConfigIssue] = []

    def add(
        self, key: str, message: str, fix: str = "", where: Any = None, sub: Any = None
    ) -> None:
        line = None
        if isinstance(where, _Map):
            line = where.lines.get(sub) if sub is not None else None
            if line is None and where.lines:
                line = min(where.lines.values())
        self.issues.append(ConfigIssue(self.file, key, message, fix, line))

    def regexps(
        self, rx: Any, key: str, missing: str, fix: str, where: Any, sub: Any = None
    ) -> list[str]:
        """The non-empty list of regular expressions ``rx`` found at ``key``, each checked
        to compile (an issue per bad one; ``missing`` when there is no such list)."""
        if not isinstance(rx, list) or not rx:
            self.add(key, missing, fix, where, sub)
            return []
        for i, pat in enumerate(rx):
            try:
                re.compile(str(pat))
            except re.error as e:
                self.add(f"{key}[{i}]", f"invalid regular expression {pat!r}: {e}", "", where)
        return [str(pat) for pat in rx]

    def mapping(self, value: Any, key: str, parent: Any = None, sub: Any = None) -> _Map | None:
        if isinstance(value, dict):
            return value if isinstance(value, _Map) else _as_map(value)
        self.add(key, f"must be a mapping, got {_kind(value)}", "", parent, sub)
        return None

    def unknown(self, m: _Map, known: Iterable[str], key: str) -> None:
        known = list(known)
        for k in m:
            if k not in known:
                close = difflib.get_close_matches(str(k), known, 1)
                fix = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
                self.add(f"{key}.{k}" if key else str(k), "unknown key", fix, m, k)


def _as_map(d: dict[Any, Any]) -> _Map:
    m = _Map(d)
    m.lines = {}
    m.raw_keys = {k: str(k) for k in d}
    return m


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _int(c: _Checker, m: _Map, k: str, key: str, default: int = 0) -> int:
    v = m.get(k, default)
    if isinstance(v, bool) or not isinstance(v, int):
        c.add(f"{key}.{k}", f"must be an integer, got {v!r}", "", m, k)
        return default
    return v


def _float(c: _Checker, m: _Map, k: str, key: str, default: float) -> float:
    v = m.get(k, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        c.add(f"{key}.{k}", f"must be a number, got {v!r}", "", m, k)
        return default
    return float(v)


def _str(c: _Checker, m: _Map, k: str, key: str, required: bool = True) -> str:
    v = m.get(k)
    if v is None:
        if required:
            c.add(f"{key}.{k}" if key else k, "is missing", f"add '{k}: ...'", m)
        return ""
    if not isinstance(v, str):
        c.add(f"{key}.{k}", f"must be a string, got {_kind(v)}", "", m, k)
        return str(v)
    return v


def _decoder(c: _Checker, raw: Any, key: str, known: Sequence[str]) -> DecoderSpec | None:
    m = c.mapping(raw, key)
    if m is None:
        return None
    c.unknown(m, ("name", "static_map", "regexps", "allow_unknown"), key)
    name = _str(c, m, "name", key)
    if name and name not in known:
        close = difflib.get_close_matches(name, known, 1)
        fix = f"did you mean '{close[0]}'?" if close else f"use one of: {', '.join(known)}"
        c.add(f"{key}.name", f"unknown decoder '{name}'", fix, m, "name")
    static_map: dict[str, str] | None = None
    if "static_map" in m or name == "static_map":
        sm = m.get("static_map")
        if not isinstance(sm, dict) or not sm:
            c.add(
                f"{key}.static_map",
                "the static_map decoder needs a non-empty 'static_map' mapping",
                "add 'static_map: {1: read, 2: write}'",
                m,
                "static_map",
            )
        else:
            static_map = {}
            raw_keys = getattr(sm, "raw_keys", {})
            for k, v in sm.items():
                text = raw_keys.get(k, str(k))
                static_map[text] = str(v)
                if isinstance(k, int) and not isinstance(k, bool):
                    static_map.setdefault(str(k), str(v))  # 0x1 also matches "1"
    regexps: list[str] = []
    if "regexps" in m or name == "regexp":
        regexps = c.regexps(
            m.get("regexps"),
            f"{key}.regexps",
            "the regexp decoder needs a non-empty 'regexps' list",
            "add 'regexps: [\"^bash$\"]'",
            m,
            "regexps",
        )
    allow = m.get("allow_unknown", False)
    if not isinstance(allow, bool):
        c.add(f"{key}.allow_unknown", f"must be true or false, got {allow!r}", "", m)
        allow = False
    return DecoderSpec(name, static_map, tuple(regexps), allow)


def _labels(c: _Checker, raw: Any, key: str, known: Sequence[str]) -> list[Label]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        c.add(key, f"must be a list of labels, got {_kind(raw)}")
        return []
    out: list[Label] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        lkey = f"{key}[{i}]"
        m = c.mapping(item, lkey)
        if m is None:
            continue
        c.unknown(m, ("name", "size", "padding", "decoders"), lkey)
        name = _str(c, m, "name", lkey)
        if name and not _LABEL_NAME.match(name):
            c.add(f"{lkey}.name", f"'{name}' is not a valid Prometheus label name", "", m, "name")
        if name in seen:
            c.add(f"{lkey}.name", f"label '{name}' appears twice", "rename one of them", m)
        seen.add(name)
        size = m.get("size")
        if size is None:
            c.add(
                f"{lkey}.size",
                "is missing",
                "add 'size: N', the bytes of this key field including padding",
                m,
            )
            size = 0
        elif isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            c.add(f"{lkey}.size", f"must be a positive integer, got {size!r}", "", m, "size")
            size = 0
        padding = m.get("padding", 0)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            c.add(f"{lkey}.padding", f"must be an integer >= 0, got {padding!r}", "", m)
            padding = 0
        decs = m.get("decoders")
        specs: list[DecoderSpec] = []
        if not isinstance(decs, list) or not decs:
            c.add(
                f"{lkey}.decoders",
                "needs at least one decoder",
                "add 'decoders: [{name: uint}]'",
                m,
                "decoders",
            )
        else:
            for j, d in enumerate(decs):
                spec = _decoder(c, d, f"{lkey}.decoders[{j}]", known)
                if spec is not None:
                    specs.append(spec)
        out.append(Label(name, int(size), tuple(specs), int(padding)))
    return out
