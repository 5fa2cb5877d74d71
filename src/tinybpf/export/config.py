"""Configs in ebpf_exporter's schema: one ``<name>.yaml`` beside each ``<name>.bpf.o``.

A config is parsed into plain dataclasses; every problem found is collected as a
:class:`ConfigIssue` naming the file, the key and the fix, and raised together as one
:class:`ConfigError` (``--config.check`` prints them all at once).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BUCKET_TYPES",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Counter",
    "DecoderSpec",
    "Histogram",
    "Label",
    "load_configs",
    "parse_config",
    "parse_duration",
]

BUCKET_TYPES = ("exp2", "exp2zero", "linear", "fixed")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


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


def parse_duration(text: Any) -> float:
    """A Go duration ("10s", "1m30s", "500ms") or a number of seconds, in seconds."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if s == "0":
        return 0.0
    pos = 0
    total = 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"not a duration: {text!r} (use Go's form, e.g. 10s, 1m30s, 500ms)")
    return total


# --- YAML with line numbers -------------------------------------------------------------------


class _Map(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers each key's line and the key's text as written."""

    lines: dict[Any, int]
    raw_keys: dict[Any, str]


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise ImportError(
            "tinybpf export needs PyYAML to read configs: pip install 'tinybpf[export]'"
        ) from None
    return yaml


def _loader() -> Any:
    yaml = _yaml()

    class Loader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
        pass

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> _Map:
        loader.flatten_mapping(node)
        out = _Map()
        out.lines = {}
        out.raw_keys = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                key = str(key)
            out[key] = loader.construct_object(value_node, deep=True)
            out.lines[key] = key_node.start_mark.line + 1
            out.raw_keys[key] = str(key_node.value)
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


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
        rx = m.get("regexps")
        if not isinstance(rx, list) or not rx:
            c.add(
                f"{key}.regexps",
                "the regexp decoder needs a non-empty 'regexps' list",
                "add 'regexps: [\"^bash$\"]'",
                m,
                "regexps",
            )
        else:
            for i, pat in enumerate(rx):
                try:
                    re.compile(str(pat))
                except re.error as e:
                    c.add(f"{key}.regexps[{i}]", f"invalid regular expression {pat!r}: {e}", "", m)
                regexps.append(str(pat))
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


def parse_config(
    data: Any, name: str, file: str = "<config>", decoders: Sequence[str] | None = None
) -> tuple[Config, list[ConfigIssue]]:
    """Validate an already-loaded YAML document; returns the config and the issues found."""
    from .decoders import DECODERS

    known = list(decoders) if decoders is not None else sorted(DECODERS)
    c = _Checker(file)
    cfg = Config(name=name)
    if data is None:
        c.add("", "the file is empty", "add a 'metrics:' section")
        return cfg, c.issues
    top = c.mapping(data, "(top level)")
    if top is None:
        return cfg, c.issues
    c.unknown(top, ("metrics", "kaddrs", "tracing", "cgroup_id_map"), "")
    metrics = top.get("metrics")
    if metrics is None and top.get("tracing") is None:
        c.add("metrics", "is missing", "add 'metrics:' with 'counters:' or 'histograms:'", top)
    if metrics is None:
        metrics = _as_map({})
    mm = c.mapping(metrics, "metrics", top, "metrics")
    if mm is not None:
        c.unknown(mm, ("counters", "histograms"), "metrics")
        if not mm.get("counters") and not mm.get("histograms") and "metrics" in top:
            c.add("metrics", "defines no counters or histograms", "add 'counters:'", top)
        names: set[str] = set()
        for kind in ("counters", "histograms"):
            items = mm.get(kind) or []
            if not isinstance(items, list):
                c.add(f"metrics.{kind}", f"must be a list, got {_kind(items)}", "", mm, kind)
                continue
            for i, item in enumerate(items):
                key = f"metrics.{kind}[{i}]"
                m = c.mapping(item, key)
                if m is None:
                    continue
                mname = _str(c, m, "name", key)
                if mname:
                    key = f"metrics.{kind}[{mname}]"
                    if not _METRIC_NAME.match(mname):
                        c.add(f"{key}.name", f"'{mname}' is not a valid metric name", "", m)
                    if mname in names:
                        c.add(f"{key}.name", "metric defined twice", "remove one", m)
                    names.add(mname)
                mhelp = _str(c, m, "help", key)
                labels = _labels(c, m.get("labels"), f"{key}.labels", known)
                max_series = _int(c, m, "max_series", key)
                if kind == "counters":
                    _counter(c, cfg, m, key, mname, mhelp, labels, max_series)
                else:
                    _histogram(c, cfg, m, key, mname, mhelp, labels, max_series)
    kaddrs = top.get("kaddrs") or []
    if not isinstance(kaddrs, list) or not all(isinstance(k, str) for k in kaddrs):
        c.add("kaddrs", "must be a list of kernel symbol names", "", top, "kaddrs")
    else:
        cfg.kaddrs = list(kaddrs)
    for opt in ("tracing", "cgroup_id_map"):
        if top.get(opt) is not None:
            sub = c.mapping(top[opt], opt, top, opt)
            setattr(cfg, opt, dict(sub) if sub is not None else None)
    if cfg.cgroup_id_map is not None:
        from .cgroups import parse_cgroup_id_map

        cfg.cgroup_map, found = parse_cgroup_id_map(top["cgroup_id_map"], file)
        c.issues.extend(found)
    if cfg.tracing is not None:
        from .tracing import parse_spans

        cfg.spans, found = parse_spans(top["tracing"], file, known)
        c.issues.extend(found)
    return cfg, c.issues


def _counter(
    c: _Checker,
    cfg: Config,
    m: _Map,
    key: str,
    name: str,
    help: str,
    labels: list[Label],
    max_series: int,
) -> None:
    c.unknown(
        m,
        ("name", "help", "labels", "perf_event_array", "flush_interval", "max_series", "values"),
        key,
    )
    pea = m.get("perf_event_array", False)
    if not isinstance(pea, bool):
        c.add(f"{key}.perf_event_array", f"must be true or false, got {pea!r}", "", m)
        pea = False
    flush = 0.0
    if "flush_interval" in m:
        try:
            flush = parse_duration(m["flush_interval"])
        except ValueError as e:
            c.add(f"{key}.flush_interval", str(e), "", m, "flush_interval")
    values = m.get("values") or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        c.add(f"{key}.values", "must be a list of struct field names", "", m, "values")
        values = []
    cfg.counters.append(
        Counter(name, help, tuple(labels), bool(pea), flush, max_series, tuple(values))
    )


def _histogram(
    c: _Checker,
    cfg: Config,
    m: _Map,
    key: str,
    name: str,
    help: str,
    labels: list[Label],
    max_series: int,
) -> None:
    c.unknown(
        m,
        (
            "name",
            "help",
            "labels",
            "bucket_type",
            "bucket_multiplier",
            "bucket_min",
            "bucket_max",
            "bucket_keys",
            "max_series",
        ),
        key,
    )
    btype = _str(c, m, "bucket_type", key)
    if btype and btype not in BUCKET_TYPES:
        close = difflib.get_close_matches(btype, BUCKET_TYPES, 1)
        fix = f"did you mean '{close[0]}'?" if close else f"use one of: {', '.join(BUCKET_TYPES)}"
        c.add(f"{key}.bucket_type", f"unknown bucket type '{btype}'", fix, m, "bucket_type")
    mult = _float(c, m, "bucket_multiplier", key, 1.0)
    if mult == 0:
        mult = 1.0  # as ebpf_exporter: an unset (zero) multiplier means 1
    bmin = _int(c, m, "bucket_min", key)
    bmax = _int(c, m, "bucket_max", key)
    keys: list[float] = []
    if btype == "fixed":
        raw = m.get("bucket_keys")
        if not isinstance(raw, list) or not raw:
            c.add(
                f"{key}.bucket_keys",
                "a fixed histogram needs a non-empty 'bucket_keys' list",
                "add 'bucket_keys: [1, 10, 100]'",
                m,
            )
        else:
            for i, v in enumerate(raw):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    c.add(f"{key}.bucket_keys[{i}]", f"must be a number, got {v!r}", "", m)
                else:
                    keys.append(float(v))
            if keys != sorted(keys) or len(set(keys)) != len(keys):
                c.add(f"{key}.bucket_keys", "must be strictly increasing", "sort them", m)
    elif btype in BUCKET_TYPES:
        if "bucket_max" not in m:
            c.add(f"{key}.bucket_max", "is missing", "add 'bucket_max: N'", m)
        elif bmax <= bmin:
            c.add(
                f"{key}.bucket_max",
                f"must be larger than bucket_min ({bmin}), got {bmax}",
                "",
                m,
                "bucket_max",
            )
    if not labels:
        c.add(
            f"{key}.labels",
            "a histogram needs at least one label: the last one is the bucket",
            "add '- {name: bucket, size: 8, decoders: [{name: uint}]}'",
            m,
        )
    if labels and labels[-1].decoders:
        last = labels[-1].decoders[-1].name
        if last not in ("uint", "static_map", "regexp"):
            c.add(
                f"{key}.labels[{len(labels) - 1}].decoders",
                f"the last label is the bucket and must decode to an integer, but its last "
                f"decoder is '{last}'",
                "decode the bucket label with 'uint'",
                m,
            )
    for lb in labels[:-1]:
        if lb.name == "le":
            c.add(f"{key}.labels", "'le' is reserved for histogram buckets", "rename it", m)
    cfg.histograms.append(
        Histogram(name, help, btype, tuple(labels), mult, bmin, bmax, tuple(keys), max_series)
    )


def read_config_file(path: Path, name: str) -> tuple[Config, list[ConfigIssue]]:
    """Parse ``path``; YAML syntax errors come back as issues with their line."""
    yaml = _yaml()
    file = str(path)
    try:
        text = path.read_text()
    except OSError as e:
        return Config(name=name, path=path), [
            ConfigIssue(
                file,
                "",
                f"cannot read config '{name}': {e.strerror or e}",
                f"put {name}.yaml in the --config.dir directory",
            )
        ]
    try:
        data = yaml.load(text, Loader=_loader())  # a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        return Config(name=name, path=path), [
            ConfigIssue(
                file,
                "(YAML)",
                f"not valid YAML: {problem}",
                "fix the syntax (indentation, ':' after keys, quoting)",
                mark.line + 1 if mark is not None else None,
            )
        ]
    cfg, issues = parse_config(data, name, file)
    cfg.path = path
    return cfg, issues


def read_configs(
    directory: str | Path, names: Sequence[str]
) -> tuple[list[Config], list[ConfigIssue]]:
    """Read ``<directory>/<name>.yaml`` for each name; returns the configs (as far as they
    parsed) and every problem found, without raising."""
    d = Path(directory)
    configs: list[Config] = []
    issues: list[ConfigIssue] = []
    if not names:
        issues.append(
            ConfigIssue(str(d), "--config.names", "no config names given", "pass e.g. timers")
        )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            issues.append(
                ConfigIssue(str(d), "--config.names", f"'{name}' is given twice", "drop one")
            )
            continue
        seen.add(name)
        cfg, found = read_config_file(d / f"{name}.yaml", name)
        cfg.object_path = d / f"{name}.bpf.o"
        if not cfg.object_path.exists():
            found.append(
                ConfigIssue(
                    str(cfg.object_path),
                    "",
                    f"the compiled object of config '{name}' is missing",
                    f"compile {name}.bpf.c into {cfg.object_path}",
                )
            )
        issues.extend(found)
        configs.append(cfg)
    return configs, issues


def load_configs(directory: str | Path, names: Sequence[str]) -> list[Config]:
    """Read ``<directory>/<name>.yaml`` for each name (objects: ``<name>.bpf.o`` beside).

    Raises :class:`ConfigError` listing every problem of every config.
    """
    configs, issues = read_configs(directory, names)
    if issues:
        raise ConfigError(issues)
    return configs
