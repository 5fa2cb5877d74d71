"""The exporter: configs loaded, programs attached, maps read into metrics on each scrape."""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from .attach import ProgramState, attach_program, prepare
from .collector import NAMESPACE, MetricReader, ReadStats, check_metric
from .config import Config, ConfigError, ConfigIssue, Counter, Histogram, load_configs
from .decoders import DecodeError, DecoderSet, SkipLabelSet
from .metrics import MetricFamily, merge, render

__all__ = ["ConfigRuntime", "Exporter"]

log = logging.getLogger(__package__)


def _goarch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _as_document(cfg: Config) -> dict[str, Any]:
    """A config built in code as the YAML document it corresponds to (for validation)."""

    def labels(ls: Sequence[Any]) -> list[dict[str, Any]]:
        out = []
        for lb in ls:
            decs = []
            for d in lb.decoders:
                doc: dict[str, Any] = {"name": d.name}
                if d.static_map is not None:
                    doc["static_map"] = dict(d.static_map)
                if d.regexps:
                    doc["regexps"] = list(d.regexps)
                if d.allow_unknown:
                    doc["allow_unknown"] = True
                decs.append(doc)
            out.append({"name": lb.name, "size": lb.size, "padding": lb.padding, "decoders": decs})
        return out

    counters = []
    for c in cfg.counters:
        cdoc: dict[str, Any] = {"name": c.name, "help": c.help, "labels": labels(c.labels)}
        if c.values:
            cdoc["values"] = list(c.values)
        if c.max_series:
            cdoc["max_series"] = c.max_series
        counters.append(cdoc)
    histograms = []
    for h in cfg.histograms:
        hdoc: dict[str, Any] = {
            "name": h.name,
            "help": h.help,
            "labels": labels(h.labels),
            "bucket_type": h.bucket_type,
            "bucket_multiplier": h.bucket_multiplier,
            "bucket_min": h.bucket_min,
            "bucket_max": h.bucket_max,
        }
        if h.bucket_keys:
            hdoc["bucket_keys"] = list(h.bucket_keys)
        histograms.append(hdoc)
    return {"metrics": {"counters": counters, "histograms": histograms}}


class ConfigRuntime:
    """One config at run time: its object, programs, links and metric readers."""

    def __init__(self, cfg: Config, owned: bool = True) -> None:
        self.cfg = cfg
        self.owned = owned
        self.obj: Any = None
        self.programs: list[ProgramState] = []
        self.readers: list[MetricReader] = []
        self.stats = ReadStats()
        self.perf: list[_PerfEventCounter] = []
        self.span_sources: list[Any] = []
        self.cgroup_map: Any = None

    @property
    def name(self) -> str:
        return self.cfg.name

    def close(self) -> None:
        for p in self.perf:
            p.close()
        self.perf.clear()
        for src in self.span_sources:
            src.close()
        self.span_sources.clear()
        if self.cgroup_map is not None:
            self.cgroup_map.close()
            self.cgroup_map = None
        for st in self.programs:
            for link in st.links:
                try:
                    link.destroy()
                except Exception as e:  # a detach failure must not stop the others
                    log.warning("config %s: detaching %s failed: %s", self.name, st.name, e)
            st.links.clear()
            st.attached = False
        if self.obj is not None and self.owned:
            self.obj.close()
        self.obj = None


class _PerfEventCounter:
    """A ``perf_event_array: true`` counter: each event's bytes are the key; counts reset
    every flush_interval (never when it is 0). The map is a perf event array or, as
    ebpf_exporter also takes it, a ring buffer."""

    def __init__(self, rt: ConfigRuntime, spec: Any, bmap: Any) -> None:
        from .. import BpfPerfBuffer, BpfRingBuffer

        self.rt = rt
        self.spec = spec
        self.name = f"{NAMESPACE}_{spec.name}"
        self.counts: dict[tuple[str, ...], int] = {}
        self.lock = threading.Lock()
        self.flushed = time.monotonic()
        self.stop = threading.Event()
        if bmap.type.name == "RINGBUF":
            self.buf: Any = BpfRingBuffer(bmap, lambda data: self._on_event(-1, data))
        else:
            self.buf = BpfPerfBuffer(bmap, self._on_event)
        self.thread = threading.Thread(target=self._run, name=f"perf:{spec.name}", daemon=True)

    def start(self) -> None:
        """Start reading (the buffer is opened in __init__, while capabilities are held)."""
        if not self.thread.is_alive() and self.thread.ident is None:
            self.thread.start()

    def _on_event(self, cpu: int, data: bytes) -> None:
        try:
            key = DecoderSet.decode_labels(data, self.spec.labels)
        except SkipLabelSet:
            return
        except DecodeError as e:
            self.rt.stats.decoder_errors += 1
            log.warning("config %s, metric %s: %s", self.rt.name, self.spec.name, e)
            return
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.buf.poll(timeout_ms=100)
            except Exception as e:
                if self.stop.is_set():
                    return
                log.error("config %s: perf buffer %s failed: %s", self.rt.name, self.spec.name, e)
                self.stop.wait(1.0)
            fi = self.spec.flush_interval
            if fi and time.monotonic() - self.flushed >= fi:
                with self.lock:
                    self.counts.clear()
                self.flushed = time.monotonic()

    def family(self) -> MetricFamily:
        fam = MetricFamily(self.name, self.spec.help, "counter")
        names = [lb.name for lb in self.spec.labels]
        with self.lock:
            for labels, n in self.counts.items():
                fam.add(tuple(zip(names, labels, strict=True)), float(n))
        return fam

    def close(self) -> None:
        self.stop.set()
        if self.thread.ident is not None:
            self.thread.join(timeout=5)
        self.buf.close()


class Exporter:
    """Loads configs (ebpf_exporter's schema), attaches their programs and renders metrics.

    ``strict``: a program that fails to attach is fatal (otherwise reported in
    ``ebpf_exporter_ebpf_program_attached`` and the log). ``scrape_timeout``: seconds a
    scrape may spend reading maps; the metrics not read by then are left out of that scrape
    and counted. ``label_cache_size``: decoded keys remembered per metric. ``max_series``:
    series kept per metric (0: no limit); the rest are dropped and counted.
    ``cgroup_interval``: seconds between two syncs of a ``cgroup_id_map``.
    ``btf_path``: a BTF file (e.g. from btfhub) for CO-RE relocation instead of the
    kernel's ``/sys/kernel/btf/vmlinux``. ``keep_capabilities``: after every program is
    attached (and before the exporter starts threads), keep only these capabilities
    (names like ``cap_bpf``; ``[]`` drops all; None, the default, keeps all).
    ``total_suffix``: in :meth:`render`, name a counter that lacks ``_total`` (ebpf_exporter's
    ``..._run_time_seconds``) ``<name>_total``; by default it keeps its name and is declared
    ``untyped``, which promtool's lint also accepts.

    Example::

        with Exporter.from_dir("examples", ["timers"]) as ex:
            print(ex.render().decode())
    """

    def __init__(
        self,
        configs: Sequence[Config],
        *,
        strict: bool = False,
        scrape_timeout: float = 0.0,
        label_cache_size: int = 100_000,
        max_series: int = 0,
        total_suffix: bool = False,
        cgroup_interval: float = 1.0,
        btf_path: str | os.PathLike[str] | None = None,
        keep_capabilities: Sequence[str] | None = None,
    ) -> None:
        self.configs = list(configs)
        self.btf_path = None if btf_path is None else os.fspath(btf_path)
        self.keep_capabilities = None if keep_capabilities is None else list(keep_capabilities)
        self.total_suffix = total_suffix
        self.cgroup_interval = cgroup_interval
        self.strict = strict
        self.scrape_timeout = scrape_timeout
        self.label_cache_size = label_cache_size
        self.max_series = max_series
        self.runtimes: list[ConfigRuntime] = []
        self.budget_exceeded = 0
        self.tracing: Any = None
        self._lock = threading.Lock()
        self._started = False

    @classmethod
    def from_dir(
        cls, directory: str | os.PathLike[str], names: Sequence[str], **kw: Any
    ) -> Exporter:
        """An exporter of ``<directory>/<name>.yaml`` + ``<name>.bpf.o`` for each name (not
        started). Raises :class:`ConfigError` listing every problem of the YAML files."""
        return cls(load_configs(Path(directory), names), **kw)

    # --- lifecycle --------------------------------------------------------------------------
    def check(self) -> list[ConfigIssue]:
        """Every problem of the configs against their objects (opened, not loaded)."""
        from .. import open as open_object

        issues: list[ConfigIssue] = []
        for cfg in self.configs:
            if cfg.object_path is None or not cfg.object_path.exists():
                continue  # reported when the configs were read
            try:
                with open_object(cfg.object_path) as obj:
                    issues.extend(self._check_object(cfg, obj))
            except OSError as e:
                issues.append(
                    ConfigIssue(
                        str(cfg.object_path),
                        "",
                        f"cannot open the object of config '{cfg.name}': {e}",
                        "compile it for this kernel with clang -target bpf",
                    )
                )
        return issues

    @staticmethod
    def _check_object(cfg: Config, obj: Any) -> list[ConfigIssue]:
        issues: list[ConfigIssue] = []
        for c in cfg.counters:
            if c.name:  # (a missing name is a problem of the YAML already)
                issues.extend(check_metric(c, obj, cfg.where, "counters"))
        for h in cfg.histograms:
            if h.name:
                issues.extend(check_metric(h, obj, cfg.where, "histograms"))
        for i, span in enumerate(cfg.spans):
            bmap = obj.maps.get(span.ringbuf)
            if bmap is None or bmap.type.name != "RINGBUF":
                have = ", ".join(n for n in obj.maps if obj.maps[n].type.name == "RINGBUF")
                issues.append(
                    ConfigIssue(
                        cfg.where,
                        f"tracing.spans[{i}].ringbuf",
                        f"the object has no ring buffer map named '{span.ringbuf}'",
                        f"name a BPF_MAP_TYPE_RINGBUF map of the object ({have or 'none'})",
                    )
                )
        if cfg.cgroup_map is not None:
            from .cgroups import check_cgroup_id_map

            issues.extend(check_cgroup_id_map(cfg.cgroup_map, obj, cfg.where))
        for sym in cfg.kaddrs:
            if f"kaddr_{sym}" not in obj.globals:
                issues.append(
                    ConfigIssue(
                        cfg.where,
                        "kaddrs",
                        f"the object has no global 'kaddr_{sym}' to receive the address of {sym}",
                        f"declare 'const volatile u64 kaddr_{sym} = 0;' in the .bpf.c",
                    )
                )
        for prog in obj.programs.values():
            sec = prog.section
            if sec.startswith("perf_event/"):
                from .attach import parse_perf_event_section

                try:
                    parse_perf_event_section(sec)
                except ValueError as e:
                    issues.append(ConfigIssue(str(cfg.object_path), f"SEC({sec!r})", str(e)))
        return issues

    def start(self) -> Exporter:
        """Open, check, load and attach every config. Raises ConfigError for config
        problems (all of them), OSError for a load failure."""
        from .. import open as open_object

        if self._started:
            return self
        issues: list[ConfigIssue] = []
        try:
            # what needs privileges first (load, attach, perf buffers), for every config ...
            for cfg in self.configs:
                rt = ConfigRuntime(cfg)
                self.runtimes.append(rt)
                assert cfg.object_path is not None
                rt.obj = open_object(cfg.object_path, btf_custom_path=self.btf_path)
                found = self._check_object(cfg, rt.obj)
                if found:
                    issues.extend(found)
                    continue
                prepare(rt.obj)
                if cfg.kaddrs:
                    self._set_kaddrs(rt)
                rt.obj.load()
                self._attach(rt)
                self._readers(rt)
            if issues:
                raise ConfigError(issues)
            # ... then the capabilities dropped, before any thread of ours starts ...
            if self.keep_capabilities is not None:
                self._drop_capabilities()
            # ... and the threads: cgroup sync, span and perf buffer readers
            for rt in self.runtimes:
                cfg = rt.cfg
                if cfg.cgroup_map is not None:
                    from .cgroups import CgroupIdMap

                    rt.cgroup_map = CgroupIdMap(
                        cfg.cgroup_map,
                        rt.obj.maps[cfg.cgroup_map.name],
                        self.cgroup_interval,
                    )
                self._spans(rt)
                for p in rt.perf:
                    p.start()
        except BaseException:
            self.close()
            raise
        self._started = True
        return self

    def add_object(
        self,
        obj: Any,
        name: str,
        counters: Sequence[Counter] = (),
        histograms: Sequence[Histogram] = (),
    ) -> Exporter:
        """Export maps of an object the caller loaded (and attached) itself.

        The exporter reads the maps named like the metrics; it neither attaches nor closes
        ``obj``. Raises :class:`ConfigError` naming every metric that does not fit its map.

        Example::

            obj = tinybpf.load("counts.bpf.o")
            obj.program("count").attach()
            ex = Exporter([]).add_object(obj, "counts", counters=[
                Counter("calls_total", "Calls by syscall",
                        (Label("syscall", 8, (DecoderSpec("uint"), DecoderSpec("syscall"))),)),
            ])
            print(ex.render().decode())
        """
        from .config import parse_config

        if not obj.loaded:
            raise ValueError(f"add_object: load the object '{obj.name}' first (obj.load())")
        cfg = Config(name=name, counters=list(counters), histograms=list(histograms))
        # the same validation as YAML configs: metric names, labels, buckets
        _, issues = parse_config(_as_document(cfg), name, f"<object {name}>")
        issues.extend(self._check_object(cfg, obj))
        if issues:
            raise ConfigError(issues)
        rt = ConfigRuntime(cfg, owned=False)
        rt.obj = obj
        for prog in obj.programs.values():
            st = ProgramState(prog.name, prog.section)
            try:
                info = prog.kernel_info()
                st.id, st.tag, st.attached = info.id, info.tag, True
            except OSError:
                continue
            rt.programs.append(st)
        self._readers(rt)
        for p in rt.perf:
            p.start()
        with self._lock:
            self.configs.append(cfg)
            self.runtimes.append(rt)
        self._started = True
        return self

    def serve(
        self, address: str = ":9435", telemetry_path: str = "/metrics", debug: bool = False
    ) -> Any:
        """Serve the metrics over HTTP from a background thread; returns the server
        (``close()`` it; ``port`` is the bound port)."""
        from .server import MetricsServer

        return MetricsServer(self, address, telemetry_path, debug=debug).start()

    def _spans(self, rt: ConfigRuntime) -> None:
        if not rt.cfg.spans:
            return
        from .tracing import SpanSource, Tracing

        if self.tracing is None:
            self.tracing = Tracing()
        for spec in rt.cfg.spans:
            rt.span_sources.append(
                SpanSource(self.tracing, rt.name, spec, rt.obj.maps[spec.ringbuf], rt.stats)
            )

    def _drop_capabilities(self) -> None:
        from .capabilities import current_text, drop
        from .decoders import preload_kernel_symbols

        keep = self.keep_capabilities or []
        uses_ksyms = any(
            d.name in ("ksym", "kstack")
            for cfg in self.configs
            for spec in (*cfg.counters, *cfg.histograms, *cfg.spans)
            for lb in spec.labels
            for d in lb.decoders
        )
        if uses_ksyms and "cap_syslog" not in keep:
            # /proc/kallsyms shows zero addresses without CAP_SYSLOG: read it while held
            preload_kernel_symbols()
            log.info(
                "read /proc/kallsyms before dropping cap_syslog: kernel modules loaded "
                "later are not resolved by ksym/kstack (keep cap_syslog for them)"
            )
        before = current_text()
        after, others = drop(keep)
        log.info("dropped capabilities: %s -> %s", before, after)
        if others:
            log.warning(
                "threads started before the drop keep their capabilities: %s", ", ".join(others)
            )

    def _set_kaddrs(self, rt: ConfigRuntime) -> None:
        from .. import KernelSymbols

        ks = KernelSymbols()
        for sym in rt.cfg.kaddrs:
            addr = ks.address_of(sym)
            if addr is None:
                raise ConfigError(
                    [
                        ConfigIssue(
                            rt.cfg.where,
                            "kaddrs",
                            f"kernel symbol '{sym}' is not in /proc/kallsyms",
                            "check the name, or enable CONFIG_KALLSYMS_ALL for data symbols",
                        )
                    ]
                )
            rt.obj.globals[f"kaddr_{sym}"] = addr

    def _attach(self, rt: ConfigRuntime) -> None:
        for prog in rt.obj.programs.values():
            st = ProgramState(prog.name, prog.section)
            try:
                info = prog.kernel_info()
                st.id, st.tag = info.id, info.tag
            except OSError:
                pass
            rt.programs.append(st)
            try:
                st.links = attach_program(prog)
                st.attached = True
            except (OSError, ValueError) as e:
                st.error = str(e)
                log.error(
                    "config %s: program %s (SEC %r) failed to attach: %s",
                    rt.name,
                    prog.name,
                    prog.section,
                    e,
                )
                if self.strict:
                    raise OSError(
                        f"config {rt.name}: program {prog.name} failed to attach "
                        f"(--config.strict): {e}"
                    ) from e

    def _readers(self, rt: ConfigRuntime) -> None:
        specs: list[Counter | Histogram] = [*rt.cfg.counters, *rt.cfg.histograms]
        for spec in specs:
            bmap = rt.obj.maps[spec.name]
            if getattr(spec, "perf_event_array", False):
                rt.perf.append(_PerfEventCounter(rt, spec, bmap))
                continue
            rt.readers.append(
                MetricReader(
                    rt.name,
                    spec,
                    bmap,
                    rt.stats,
                    cache_size=self.label_cache_size,
                    max_series=self.max_series,
                )
            )

    def close(self) -> None:
        """Detach every program and close every object (idempotent)."""
        for rt in self.runtimes:
            rt.close()
        self.runtimes.clear()
        if self.tracing is not None:
            self.tracing.close()  # flushes the spans still queued
            self.tracing = None
        self._started = False

    def __enter__(self) -> Exporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- scraping ---------------------------------------------------------------------------
    def collect(self) -> list[MetricFamily]:
        """Every metric family: the configs' metrics and the built-in ones."""
        with self._lock:
            return merge(self._collect())

    def _collect(self) -> list[MetricFamily]:
        fams: list[MetricFamily] = []
        start = time.monotonic()
        deadline = start + self.scrape_timeout if self.scrape_timeout > 0 else float("inf")
        out_of_time = False
        for rt in self.runtimes:
            for reader in rt.readers:
                if out_of_time or time.monotonic() > deadline:
                    out_of_time = True
                    break
                try:
                    fams.extend(reader.read(deadline))
                except TimeoutError:
                    out_of_time = True
                except Exception as e:  # a scrape never takes the exporter down
                    log.error("config %s: reading map %s failed: %s", rt.name, reader.spec.name, e)
            for p in rt.perf:
                fams.append(p.family())
        if out_of_time:
            self.budget_exceeded += 1
            log.warning(
                "scrape took longer than %.3fs: metrics not read in time were left out",
                self.scrape_timeout,
            )
        fams.extend(self._builtin())
        return fams

    def _builtin(self) -> list[MetricFamily]:
        enabled = MetricFamily(
            f"{NAMESPACE}_enabled_configs", "The set of enabled configs", "gauge"
        )
        info = MetricFamily(f"{NAMESPACE}_ebpf_program_info", "Info about ebpf programs", "gauge")
        attached = MetricFamily(
            f"{NAMESPACE}_ebpf_program_attached", "Whether a program is attached", "gauge"
        )
        # ebpf_exporter's name lacks the "_total" that promtool's lint asks of counters:
        # render() declares it untyped, or names it ..._total with total_suffix
        run_time = MetricFamily(
            f"{NAMESPACE}_ebpf_program_run_time_seconds",
            "How long has the program been executing",
            "counter",
        )
        run_count = MetricFamily(
            f"{NAMESPACE}_ebpf_program_run_count_total",
            "How many times has the program been executed",
            "counter",
        )
        errors = MetricFamily(
            f"{NAMESPACE}_decoder_errors_total",
            "How many times has decoders encountered errors",
            "counter",
        )
        dropped = MetricFamily(
            f"{NAMESPACE}_series_dropped_total",
            "Series left out because a metric reached its max_series",
            "counter",
        )
        evicted = MetricFamily(
            f"{NAMESPACE}_label_cache_evictions_total",
            "Decoded keys evicted from the bounded label cache",
            "counter",
        )
        budget = MetricFamily(
            f"{NAMESPACE}_scrape_timeouts_total",
            "Scrapes that ran out of their time budget (--scrape.timeout)",
            "counter",
        )
        build = MetricFamily(
            f"{NAMESPACE}_build_info",
            "A metric with a constant '1' value labeled by version, revision, branch, "
            "goversion from which ebpf_exporter was built, and the goos and goarch for the "
            "build.",
            "gauge",
        )
        build.add(
            (
                ("branch", ""),
                ("goarch", _goarch()),
                ("goos", "linux"),
                ("goversion", f"python{platform.python_version()}"),
                ("revision", ""),
                ("tags", "tinybpf"),
                ("version", __version__),
            ),
            1.0,
        )
        for rt in self.runtimes:
            enabled.add((("name", rt.name),), 1.0)
            errors.add((("config", rt.name),), float(rt.stats.decoder_errors))
            dropped.add((("config", rt.name),), float(rt.stats.series_dropped))
            evicted.add((("config", rt.name),), float(rt.stats.cache_evictions))
            for st in rt.programs:
                pid = str(st.id)
                info.add(
                    (("config", rt.name), ("id", pid), ("program", st.name), ("tag", st.tag)),
                    1.0,
                )
                attached.add((("id", pid),), 1.0 if st.attached else 0.0)
                self._stats(rt, st, run_time, run_count)
        budget.add((), float(self.budget_exceeded))
        return [
            enabled,
            info,
            attached,
            run_time,
            run_count,
            errors,
            dropped,
            evicted,
            budget,
            build,
        ]

    @staticmethod
    def _stats(
        rt: ConfigRuntime, st: ProgramState, run_time: MetricFamily, run_count: MetricFamily
    ) -> None:
        if rt.obj is None:
            return
        try:
            info = rt.obj.programs[st.name].kernel_info()
        except (OSError, KeyError):
            return
        pid = (("id", str(st.id)),)
        run_time.add(pid, info.run_time_ns / 1e9)
        run_count.add(pid, float(info.run_count))

    def render(self) -> bytes:
        """The Prometheus text exposition of :meth:`collect`."""
        return render(self.collect(), self.total_suffix)

    def prometheus_collector(self) -> Any:
        """A prometheus_client collector of these metrics, for a program that already serves
        a prometheus_client registry: ``REGISTRY.register(ex.prometheus_collector())``.

        prometheus_client names every counter ``..._total``: a counter whose name lacks it
        (``ebpf_exporter_ebpf_program_run_time_seconds``) comes out renamed. :meth:`render`
        and ``tinybpf export`` keep ebpf_exporter's names.
        """
        try:
            from prometheus_client.core import Metric
        except ImportError:
            raise ImportError(
                "prometheus_collector() needs prometheus-client: pip install 'tinybpf[export]'"
            ) from None
        outer = self

        class Collector:
            def collect(self) -> Any:
                for fam in outer.collect():
                    if fam.type == "counter":
                        base = (
                            fam.name[: -len("_total")] if fam.name.endswith("_total") else fam.name
                        )
                        m = Metric(base, fam.help, "counter")
                        for _suffix, labels, value in fam.samples:
                            m.add_sample(f"{base}_total", dict(labels), value)
                    else:
                        m = Metric(fam.name, fam.help, fam.type)
                        for suffix, labels, value in fam.samples:
                            m.add_sample(fam.name + suffix, dict(labels), value)
                    yield m

        return Collector()

    def debug_maps(self) -> str:
        """Every metric map's entries, raw and decoded (the --debug /maps page)."""
        lines: list[str] = []
        with self._lock:
            for rt in self.runtimes:
                lines.append(f"## Config: {rt.name}\n")
                for reader in rt.readers:
                    lines.append(f"### Map: {reader.spec.name}\n\n```")
                    try:
                        for key, labels, value in reader.raw():
                            lines.append(f"{key} ({list(labels) if labels else '-'}) -> {value}")
                    except Exception as e:
                        lines.append(f"error: {e}")
                    lines.append("```\n")
        return "\n".join(lines) + "\n"
