"""``tracing.spans``: ring-buffer records turned into OpenTelemetry spans.

Each record is decoded with the span's labels (the same decoders as metrics). Labels with
these names shape the span; all others become string attributes:

- ``trace_id`` (16 bytes, ``hex``), ``parent_span_id`` and ``span_id`` (8 bytes, ``hex``;
  all zeros: none), ``span_monotonic_timestamp_ns`` (``uint``, CLOCK_MONOTONIC as from
  ``bpf_ktime_get_ns()``), ``span_duration_ns`` (``uint``), ``span_name`` (overrides
  ``name``).

Spans go through the OpenTelemetry SDK's batch processor to the OTLP/HTTP exporter, which
the standard variables configure (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``...). Needs the ``otel``
extra: ``pip install 'tinybpf[otel]'``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from .decoders import DecodeError, DecoderSet, SkipLabelSet
from .schema import ConfigIssue, Label, _Checker, _labels, _str

__all__ = ["SpanSource", "SpanSpec", "Tracing", "parse_spans"]

log = logging.getLogger(__package__)

_NIL_SPAN = "0" * 16
_SPECIAL = (
    "trace_id",
    "parent_span_id",
    "span_id",
    "span_monotonic_timestamp_ns",
    "span_duration_ns",
    "span_name",
)


@dataclass(frozen=True)
class SpanSpec:
    """One ``tracing.spans`` entry."""

    name: str
    ringbuf: str
    service: str
    labels: tuple[Label, ...]


def parse_spans(
    tracing: dict[str, Any], file: str, known: list[str]
) -> tuple[list[SpanSpec], list[ConfigIssue]]:
    """The ``tracing:`` section of a config; problems are returned, not raised."""
    c = _Checker(file)
    m = c.mapping(tracing, "tracing")
    out: list[SpanSpec] = []
    if m is None:
        return out, c.issues
    c.unknown(m, ("spans",), "tracing")
    spans = m.get("spans") or []
    if not isinstance(spans, list):
        c.add("tracing.spans", "must be a list", "", m, "spans")
        return out, c.issues
    for i, item in enumerate(spans):
        key = f"tracing.spans[{i}]"
        sm = c.mapping(item, key)
        if sm is None:
            continue
        c.unknown(sm, ("name", "ringbuf", "service", "labels"), key)
        ringbuf = _str(c, sm, "ringbuf", key)
        name = _str(c, sm, "name", key, required=False) or ringbuf
        service = _str(c, sm, "service", key, required=False) or "ebpf_exporter"
        labels = _labels(c, sm.get("labels"), f"{key}.labels", known)
        out.append(SpanSpec(name, ringbuf, service, tuple(labels)))
    return out, c.issues


def _monotonic_to_unix_ns(ts: int) -> int:
    return time.time_ns() - (time.monotonic_ns() - ts)


def _id_generator() -> Any:
    """An OpenTelemetry id generator that hands out the ids a record carries (set in
    ``local`` around ``start_span``), random ones otherwise."""
    from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

    class RecordIds(IdGenerator):
        def __init__(self) -> None:
            self.random = RandomIdGenerator()
            self.local = threading.local()

        def generate_span_id(self) -> int:
            sid = getattr(self.local, "span_id", 0)
            return int(sid) if sid else int(self.random.generate_span_id())

        def generate_trace_id(self) -> int:
            tid = getattr(self.local, "trace_id", 0)
            return int(tid) if tid else int(self.random.generate_trace_id())

    return RecordIds()


class Tracing:
    """OpenTelemetry tracer providers (one per service name) fed by ring buffers."""

    def __init__(self) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise ImportError(
                "tracing.spans needs the OpenTelemetry SDK and OTLP exporter: "
                "pip install 'tinybpf[otel]'"
            ) from None
        self._exporter_cls = OTLPSpanExporter
        self._provider_cls = TracerProvider
        self._processor_cls = BatchSpanProcessor
        self.ids = _id_generator()
        self.providers: dict[str, Any] = {}
        self.lock = threading.Lock()

    def tracer(self, service: str) -> Any:
        from opentelemetry.sdk.resources import Resource

        with self.lock:
            provider = self.providers.get(service)
            if provider is None:
                provider = self._provider_cls(
                    resource=Resource.create({"service.name": service}), id_generator=self.ids
                )
                provider.add_span_processor(self._processor_cls(self._exporter_cls()))
                self.providers[service] = provider
        return provider.get_tracer(__package__ or "tinybpf.export")

    def emit(self, spec: SpanSpec, values: tuple[str, ...]) -> None:
        """One span from a record's decoded labels."""
        from opentelemetry import trace

        name = spec.name
        trace_id = parent_id = span_id = 0
        start = time.time_ns()
        duration = 0
        attrs: dict[str, str] = {}
        for lb, v in zip(spec.labels, values, strict=True):
            n = lb.name
            if n == "trace_id":
                trace_id = int(v, 16)
            elif n == "parent_span_id":
                parent_id = 0 if v == _NIL_SPAN else int(v, 16)
            elif n == "span_id":
                span_id = 0 if v == _NIL_SPAN else int(v, 16)
            elif n == "span_monotonic_timestamp_ns":
                start = _monotonic_to_unix_ns(int(v))
            elif n == "span_duration_ns":
                duration = int(v)
            elif n == "span_name":
                name = v
            else:
                attrs[n] = v
        ctx = None
        if trace_id and parent_id:
            parent = trace.SpanContext(
                trace_id, parent_id, is_remote=True, trace_flags=trace.TraceFlags(1)
            )
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        tracer = self.tracer(spec.service)
        self.ids.local.span_id, self.ids.local.trace_id = span_id, trace_id
        try:
            span = tracer.start_span(name, context=ctx, start_time=start, attributes=attrs)
        finally:
            self.ids.local.span_id = self.ids.local.trace_id = 0
        span.end(end_time=start + duration)

    def close(self) -> None:
        with self.lock:
            for p in self.providers.values():
                p.shutdown()  # flushes what is queued
            self.providers.clear()


class SpanSource:
    """Polls one ring buffer and turns its records into spans."""

    def __init__(self, tracing: Tracing, config: str, spec: SpanSpec, bmap: Any, stats: Any):
        from .. import BpfRingBuffer

        self.tracing = tracing
        self.config = config
        self.spec = spec
        self.stats = stats
        self.spans = 0
        self.stop = threading.Event()
        self.rb: Any = BpfRingBuffer(bmap, self._on_record)
        self.thread = threading.Thread(target=self._run, name=f"spans:{spec.ringbuf}", daemon=True)
        self.thread.start()

    def _on_record(self, data: bytes) -> None:
        try:
            values = DecoderSet.decode_labels(data, self.spec.labels)
            self.tracing.emit(self.spec, values)
        except SkipLabelSet:
            return
        except (DecodeError, ValueError) as e:
            self.stats.decoder_errors += 1
            log.warning("config %s, span %s: %s", self.config, self.spec.name, e)
            return
        self.spans += 1

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.rb.poll(timeout_ms=100)
            except Exception as e:
                if self.stop.is_set():
                    return
                log.error("config %s: ring buffer %s: %s", self.config, self.spec.ringbuf, e)
                self.stop.wait(1.0)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.rb.close()
