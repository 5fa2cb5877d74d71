"""Metric families and the Prometheus text exposition format (0.0.4).

The text is written here rather than by prometheus_client because prometheus_client renames
counters to end in ``_total`` (``..._run_time_seconds`` would become
``..._run_time_seconds_total``), and ebpf_exporter's names must come out unchanged. Numbers
are formatted as Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` does, so ``le`` labels match
ebpf_exporter's byte for byte (``1e-06``, ``0.000128``, ``1.048576e+06``).

A counter whose name does not end in ``_total`` (ebpf_exporter's own
``ebpf_exporter_ebpf_program_run_time_seconds``) is declared ``untyped`` on its ``# TYPE``
line: its name and labels stay ebpf_exporter's, and ``promtool check metrics`` (whose lint
asks counters, and only counters, to end in ``_total``) passes. PromQL does not look at the
declared type. ``total_suffix=True`` renames such counters to ``<name>_total`` instead.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["CONTENT_TYPE", "MetricFamily", "exposed", "format_float", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LabelSet = tuple[tuple[str, str], ...]


@dataclass
class MetricFamily:
    """One metric: its samples are (suffix, labels, value); suffix is "" or "_bucket"..."""

    name: str
    help: str
    type: str  # "counter", "gauge", "histogram", "untyped"
    samples: list[tuple[str, LabelSet, float]] = field(default_factory=list)

    def add(self, labels: LabelSet, value: float, suffix: str = "") -> None:
        self.samples.append((suffix, labels, value))


def format_float(v: float) -> str:
    """``v`` as Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` writes it."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    sign, digits, exp = Decimal(repr(float(v))).normalize().as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits))
    nd = len(ds)
    x = nd + exp - 1  # decimal exponent of the first digit
    neg = "-" if sign else ""
    if x < -4 or x >= 6:  # Go's 'g' with the shortest digits: an exponent from 1e6 on
        mant = ds[0] + ("." + ds[1:] if nd > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if x < 0:
        return f"{neg}0.{'0' * (-x - 1)}{ds}"
    if nd <= x + 1:
        return f"{neg}{ds}{'0' * (x + 1 - nd)}"
    return f"{neg}{ds[: x + 1]}.{ds[x + 1 :]}"


def _escape_label(v: str) -> str:
    if "\\" not in v and "\n" not in v and '"' not in v:
        return v
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def _labels_text(labels: LabelSet) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels) + "}"


def _sort_key(sample: tuple[str, LabelSet, float]) -> tuple[object, ...]:
    suffix, labels, _ = sample
    order = {"_bucket": 0, "_sum": 1, "_count": 2}.get(suffix, 0)
    plain = tuple(v for k, v in labels if k != "le")
    le = next((v for k, v in labels if k == "le"), None)
    return (plain, order, float(le) if le is not None else 0.0)


_plain_key = operator.itemgetter(1)


def exposed(fam: MetricFamily, total_suffix: bool = False) -> tuple[str, str]:
    """(name, type) of ``fam`` in the text format: a counter whose name lacks ``_total`` is
    declared ``untyped`` (or, with ``total_suffix``, named ``<name>_total``)."""
    if fam.type == "counter" and not fam.name.endswith("_total"):
        if total_suffix:
            return f"{fam.name}_total", "counter"
        return fam.name, "untyped"
    return fam.name, fam.type


def render(families: Iterable[MetricFamily], total_suffix: bool = False) -> bytes:
    """The text exposition of ``families`` (sorted by name; samples by label values).

    A counter whose name lacks ``_total`` is declared ``untyped`` (the name unchanged), or
    with ``total_suffix`` renamed to ``<name>_total``: either way promtool's lint passes."""
    out: list[str] = []
    append = out.append
    fmt = format_float
    for fam in sorted(families, key=lambda f: exposed(f, total_suffix)[0]):
        if not fam.samples:
            continue
        name, kind = exposed(fam, total_suffix)
        append(f"# HELP {name} {_escape_help(fam.help)}")
        append(f"# TYPE {name} {kind}")
        if fam.type == "histogram":
            samples = sorted(fam.samples, key=_sort_key)
        else:
            samples = sorted(fam.samples, key=_plain_key)
        for suffix, labels, value in samples:
            if labels:
                parts = []
                for k, v in labels:
                    if "\\" in v or "\n" in v or '"' in v:
                        v = _escape_label(v)
                    parts.append(f'{k}="{v}"')
                text = "{" + ",".join(parts) + "}"
            else:
                text = ""
            if value.is_integer() and -1e6 < value < 1e6:
                append(f"{name}{suffix}{text} {int(value)}")
            else:
                append(f"{name}{suffix}{text} {fmt(value)}")
    return ("\n".join(out) + "\n").encode() if out else b""


def merge(families: Sequence[MetricFamily]) -> list[MetricFamily]:
    """Families with the same name (from several configs) joined into one."""
    by_name: dict[str, MetricFamily] = {}
    for fam in families:
        have = by_name.get(fam.name)
        if have is None:
            by_name[fam.name] = MetricFamily(fam.name, fam.help, fam.type, list(fam.samples))
        else:
            have.samples.extend(fam.samples)
    return list(by_name.values())
