"""Reading maps into metric families: counters, histograms, per-CPU maps, struct values.

Each :class:`MetricReader` is bound to one map of a loaded object. A scrape reads the whole
map with batch lookups (``BpfMap.items()``), decodes each key into label values through
the label's decoders (remembered per key in a bounded cache) and builds the families.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import ConfigIssue, Counter, Histogram, Label
from .decoders import DecodeError, DecoderSet, SkipLabelSet
from .metrics import LabelSet, MetricFamily, format_float

if TYPE_CHECKING:
    from ..map import BpfMap
    from ..object import BpfObject

__all__ = ["MetricReader", "ReadStats", "check_metric", "histogram_buckets"]

log = logging.getLogger(__package__)

_ORDER = sys.byteorder
NAMESPACE = "ebpf_exporter"
_SKIP = object()
_NUMERIC_KINDS = ("INT", "ENUM", "ENUM64")


@dataclass
class ReadStats:
    """What one config's reads ran into (exported as counters)."""

    decoder_errors: int = 0
    series_dropped: int = 0
    cache_evictions: int = 0


def _cpu_label_index(labels: tuple[Label, ...], percpu: bool) -> int | None:
    if not percpu:
        return None
    for i, lb in enumerate(labels):
        if lb.name == "cpu":
            return i
    return None


def _key_labels(labels: tuple[Label, ...], cpu_index: int | None) -> int:
    return sum(lb.width for i, lb in enumerate(labels) if i != cpu_index)


def _numeric_fields(bmap: BpfMap[Any, Any]) -> dict[str, tuple[int, int, bool]]:
    bt = bmap.btf_value
    out: dict[str, tuple[int, int, bool]] = {}
    if bt is None or not bt.fields:
        return out
    for f in bt.fields:
        t = f.type
        if t is None or f.bitfield_size or t.kind.name not in _NUMERIC_KINDS:
            continue
        if f.size in (1, 2, 4, 8):
            out[f.name] = (f.offset, f.size, bool(t.signed))
    return out


def check_metric(
    spec: Counter | Histogram, obj: BpfObject, file: str, kind: str
) -> list[ConfigIssue]:
    """Problems of one metric against the (opened) object: its map, key and value sizes."""
    key = f"metrics.{kind}[{spec.name}]"
    issues: list[ConfigIssue] = []
    maps = obj.maps
    if spec.name not in maps:
        names = ", ".join(sorted(n for n in maps if not n.startswith(".")))
        issues.append(
            ConfigIssue(
                file,
                f"{key}.name",
                f"the object has no map named '{spec.name}' (a metric reads the map of its name)",
                f"name the map '{spec.name}' in the .bpf.c or rename the metric; "
                f"maps in the object: {names or 'none'}",
            )
        )
        return issues
    bmap = maps[spec.name]
    mtype = bmap.type.name
    if isinstance(spec, Counter) and spec.perf_event_array:
        if mtype not in ("PERF_EVENT_ARRAY", "RINGBUF"):
            issues.append(
                ConfigIssue(
                    file,
                    f"{key}.perf_event_array",
                    f"map '{spec.name}' is {mtype}, not PERF_EVENT_ARRAY or RINGBUF",
                    "drop 'perf_event_array: true' or make the map a "
                    "BPF_MAP_TYPE_PERF_EVENT_ARRAY (or BPF_MAP_TYPE_RINGBUF)",
                )
            )
        return issues
    percpu = bmap.is_percpu
    cpu_index = _cpu_label_index(spec.labels, percpu)
    want = _key_labels(spec.labels, cpu_index)
    if spec.labels and all(lb.size for lb in spec.labels) and want != bmap.key_size:
        sizes = " + ".join(f"{lb.name}:{lb.width}" for lb in spec.labels)
        issues.append(
            ConfigIssue(
                file,
                f"{key}.labels",
                f"label sizes add up to {want} bytes ({sizes}), but the key of map "
                f"'{spec.name}' is {bmap.key_size} bytes",
                "give each label the size of its key field including padding "
                "(a u8 followed by a u64 takes 8), or its size plus 'padding:'",
            )
        )
    if not spec.labels and bmap.key_size not in (0, 4) and mtype not in ("ARRAY", "PERCPU_ARRAY"):
        issues.append(
            ConfigIssue(
                file,
                f"{key}.labels",
                f"map '{spec.name}' has {bmap.key_size} byte keys but the metric has no labels",
                "add labels that cover the key",
            )
        )
    values = spec.values if isinstance(spec, Counter) else ()
    if values:
        fields = _numeric_fields(bmap)
        for v in values:
            if v not in fields:
                have = ", ".join(fields) or "none"
                issues.append(
                    ConfigIssue(
                        file,
                        f"{key}.values",
                        f"the value of map '{spec.name}' has no numeric field '{v}'",
                        f"use fields of the value struct: {have}",
                    )
                )
    elif bmap.value_size != 8:
        listed = ", ".join(_numeric_fields(bmap)) or "none found in BTF"
        issues.append(
            ConfigIssue(
                file,
                f"{key}",
                f"the value of map '{spec.name}' is {bmap.value_size} bytes; metrics read "
                "8 byte (u64) values",
                f"make the value a u64, or list the struct's numeric fields under "
                f"'values:' ({listed})",
            )
        )
    return issues


def histogram_buckets(
    spec: Histogram, counts: dict[int, int]
) -> tuple[list[tuple[float, int]], int, float]:
    """Cumulative (le, count) buckets, the total count and the sum of one histogram.

    Missing buckets are backfilled with zero; the key after the last bucket, when present,
    holds the sum (multiplied like the buckets).
    """
    mult = spec.bucket_multiplier or 1.0
    out: list[tuple[float, int]] = []
    total = 0
    if spec.bucket_type == "fixed":
        for k in spec.bucket_keys:
            total += counts.get(int(k), 0) if k == int(k) else 0
            out.append((k * mult, total))
        sum_key = int(spec.bucket_keys[-1]) + 1 if spec.bucket_keys else None
    else:
        for i in range(spec.bucket_min, spec.bucket_max + 1):
            total += counts.get(i, 0)
            if spec.bucket_type == "exp2":
                le = 2.0**i * mult
            elif spec.bucket_type == "exp2zero":
                le = 0.0 if i == 0 else 2.0 ** (i - 1) * mult
            else:  # linear
                le = i * mult
            out.append((le, total))
        sum_key = spec.bucket_max + 1
    total_sum = counts.get(sum_key, 0) * mult if sum_key is not None else 0.0
    return out, total, float(total_sum)


def _metric_name(base: str, field: str | None) -> str:
    if field is None:
        return base
    if base.endswith("_total"):
        return f"{base[: -len('_total')]}_{field}_total"
    return f"{base}_{field}"


class MetricReader:
    """Reads one counter or histogram from its map."""

    def __init__(
        self,
        config: str,
        spec: Counter | Histogram,
        bmap: BpfMap[Any, Any],
        stats: ReadStats,
        *,
        cache_size: int = 100_000,
        max_series: int = 0,
    ) -> None:
        self.config = config
        self.spec = spec
        self.stats = stats
        self.name = f"{NAMESPACE}_{spec.name}"
        self.percpu = bmap.is_percpu
        self.labels = spec.labels
        self.cpu_index = _cpu_label_index(spec.labels, self.percpu)
        self.cpu_offset = sum(lb.width for lb in spec.labels[: self.cpu_index or 0])
        self.cpu_size = spec.labels[self.cpu_index].size if self.cpu_index is not None else 0
        self.cache_size = cache_size
        self.max_series = spec.max_series or max_series
        self._cache: dict[bytes, Any] = {}
        self.fields: dict[str, tuple[int, int, bool]] = {}
        values = spec.values if isinstance(spec, Counter) else ()
        if values:
            allf = _numeric_fields(bmap)
            self.fields = {v: allf[v] for v in values}
        self.view = self._view(bmap)

    def _view(self, bmap: BpfMap[Any, Any]) -> BpfMap[Any, Any]:
        if not self.fields and bmap.value_size == 8:
            try:
                return bmap.typed(key=bytes, value=int)
            except (TypeError, ValueError):
                pass
        return bmap.typed(key=bytes, value=bytes)

    # --- keys -> labels ---------------------------------------------------------------------
    def _decode(self, key: bytes) -> Any:
        cache = self._cache
        got = cache.get(key, None)
        if got is not None:
            return got
        try:
            decoded = DecoderSet.decode_labels(key, self.labels)
        except SkipLabelSet:
            out: Any = _SKIP
        except DecodeError as e:
            self.stats.decoder_errors += 1
            log.warning("config %s, metric %s: %s", self.config, self.spec.name, e)
            return None
        else:
            out = decoded
        if self.cache_size > 0:
            if len(cache) >= self.cache_size:
                del cache[next(iter(cache))]
                self.stats.cache_evictions += 1
            cache[key] = out
        return out

    def _rows(self, deadline: float) -> Iterator[tuple[tuple[str, ...], list[int]]]:
        """(label values, numbers) per map entry; numbers: one per value field."""
        fields = list(self.fields.values())
        cpu_index = self.cpu_index
        n = 0
        for key, value in self.view.items():
            n += 1
            if n & 1023 == 0 and time.monotonic() > deadline:
                raise TimeoutError
            if key is None:
                continue
            if self.percpu:
                per_cpu = value
                if cpu_index is not None:
                    for cpu, v in enumerate(per_cpu):
                        k = (
                            key[: self.cpu_offset]
                            + cpu.to_bytes(self.cpu_size, _ORDER)
                            + key[self.cpu_offset :]
                        )
                        labels = self._decode(k)
                        if labels is None or labels is _SKIP:
                            continue
                        yield labels, self._numbers(v, fields)
                    continue
                labels = self._decode(key)
                if labels is None or labels is _SKIP:
                    continue
                sums: list[int] | None = None
                for v in per_cpu:
                    nums = self._numbers(v, fields)
                    sums = (
                        nums if sums is None else [a + b for a, b in zip(sums, nums, strict=True)]
                    )
                yield labels, sums or []
                continue
            labels = self._decode(key)
            if labels is None or labels is _SKIP:
                continue
            yield labels, self._numbers(value, fields)

    @staticmethod
    def _numbers(value: Any, fields: list[tuple[int, int, bool]]) -> list[int]:
        if type(value) is int:
            return [value]
        if not fields:
            return [int.from_bytes(bytes(value)[:8], _ORDER)]
        raw = bytes(value)
        return [
            int.from_bytes(raw[off : off + size], _ORDER, signed=signed)
            for off, size, signed in fields
        ]

    # --- families ---------------------------------------------------------------------------
    def read(self, deadline: float = float("inf")) -> list[MetricFamily]:
        if isinstance(self.spec, Histogram):
            return self._read_histogram(self.spec, deadline)
        return self._read_counter(self.spec, deadline)

    def _limit(self, seen: dict[Any, Any], labels: Any) -> bool:
        """False when a new series would pass max_series (then it is counted as dropped)."""
        if self.max_series and labels not in seen and len(seen) >= self.max_series:
            self.stats.series_dropped += 1
            return False
        return True

    def _read_plain(self, spec: Counter, deadline: float) -> list[MetricFamily]:
        """The common case in one loop: u64 values, no per-CPU values, no value fields."""
        cache = self._cache
        decode = self._decode
        acc: dict[tuple[str, ...], int] = {}
        limit = self.max_series
        n = 0
        for key, v in self.view.items():
            n += 1
            if n & 4095 == 0 and time.monotonic() > deadline:
                raise TimeoutError
            labels = cache.get(key) or decode(key)
            if labels is None or labels is _SKIP:
                continue
            old = acc.get(labels)
            if old is not None:
                acc[labels] = old + v  # keys that decode to the same labels add up
            elif limit and len(acc) >= limit:
                self.stats.series_dropped += 1
            else:
                acc[labels] = v if type(v) is int else self._numbers(v, [])[0]
        names = tuple(lb.name for lb in spec.labels)
        fam = MetricFamily(self.name, spec.help, "counter")
        fam.samples = [
            ("", tuple(zip(names, labels, strict=True)), float(v)) for labels, v in acc.items()
        ]
        return [fam]

    def _read_counter(self, spec: Counter, deadline: float) -> list[MetricFamily]:
        if not self.fields and not self.percpu:
            return self._read_plain(spec, deadline)
        names = [lb.name for lb in spec.labels]
        keys: list[str | None] = list(self.fields) if self.fields else [None]
        acc: dict[tuple[str, ...], list[int]] = {}
        for labels, nums in self._rows(deadline):
            have = acc.get(labels)
            if have is None:
                if not self._limit(acc, labels):
                    continue
                acc[labels] = list(nums)
            else:  # keys that decode to the same labels add up
                for i, x in enumerate(nums):
                    have[i] += x
        fams: list[MetricFamily] = []
        for i, fname in enumerate(keys):
            text = spec.help if fname is None else f"{spec.help} ({fname})"
            fam = MetricFamily(_metric_name(self.name, fname), text, "counter")
            for labels, nums in acc.items():
                fam.add(tuple(zip(names, labels, strict=True)), float(nums[i]))
            fams.append(fam)
        return fams

    def _read_histogram(self, spec: Histogram, deadline: float) -> list[MetricFamily]:
        names = [lb.name for lb in spec.labels[:-1]]
        groups: dict[tuple[str, ...], dict[int, int]] = {}
        for labels, nums in self._rows(deadline):
            head, bucket_text = labels[:-1], labels[-1]
            try:
                bucket = int(bucket_text, 0)
            except ValueError:
                self.stats.decoder_errors += 1
                log.warning(
                    "config %s, histogram %s: bucket label %r is not an integer "
                    "(decode the last label with 'uint')",
                    self.config,
                    spec.name,
                    bucket_text,
                )
                continue
            g = groups.get(head)
            if g is None:
                if not self._limit(groups, head):
                    continue
                g = groups[head] = {}
            g[bucket] = g.get(bucket, 0) + nums[0]
        fam = MetricFamily(self.name, spec.help, "histogram")
        for head, counts in groups.items():
            base: LabelSet = tuple(zip(names, head, strict=True))
            buckets, total, total_sum = histogram_buckets(spec, counts)
            for le, c in buckets:
                fam.add((*base, ("le", format_float(le))), float(c), "_bucket")
            fam.add((*base, ("le", "+Inf")), float(total), "_bucket")
            fam.add(base, total_sum, "_sum")
            fam.add(base, float(total), "_count")
        return [fam]

    def raw(self) -> list[tuple[str, tuple[str, ...] | None, Any]]:
        """(key hex, decoded labels, value) of every entry: the --debug /maps page."""
        out = []
        for key, value in self.view.items():
            labels = self._decode(key)
            shown = None if labels is None or labels is _SKIP else labels
            out.append((key.hex(), shown, value if type(value) is int else bytes(value).hex()))
        return out
