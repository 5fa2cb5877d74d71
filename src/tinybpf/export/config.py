"""Configs in ebpf_exporter's schema: one ``<name>.yaml`` beside each ``<name>.bpf.o``.

A config is parsed into plain dataclasses; every problem found is collected as a
:class:`ConfigIssue` naming the file, the key and the fix, and raised together as one
:class:`ConfigError` (``--config.check`` prints them all at once). The dataclasses and the
checks shared with the sections' parsers (:mod:`.cgroups`, :mod:`.tracing`) live in
:mod:`.schema`, below all of them; this module re-exports the public ones.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .schema import (
    Config,
    ConfigError,
    ConfigIssue,
    Counter,
    DecoderSpec,
    Histogram,
    Label,
    _as_map,
    _Checker,
    _float,
    _int,
    _kind,
    _labels,
    _Map,
    _str,
)

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
