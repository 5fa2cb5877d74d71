"""Prometheus metrics from BPF maps: ``tinybpf export`` and its Python API.

Runs cloudflare/ebpf_exporter's configs (a YAML file beside each compiled object) unchanged,
and lets a program define the same counters and histograms in code. Needs the ``export``
extra (``pip install 'tinybpf[export]'``: PyYAML and prometheus-client). Names are imported
on first use, so ``tinybpf export --help`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import (
        BUCKET_TYPES,
        Config,
        ConfigError,
        ConfigIssue,
        Counter,
        DecoderSpec,
        Histogram,
        Label,
        load_configs,
    )
    from .decoders import DECODERS, DecodeError, SkipLabelSet, set_pci_ids_path
    from .exporter import Exporter
    from .metrics import MetricFamily, format_float, render

_LAZY = {
    "BUCKET_TYPES": "config",
    "Config": "config",
    "ConfigError": "config",
    "ConfigIssue": "config",
    "Counter": "config",
    "DecoderSpec": "config",
    "Histogram": "config",
    "Label": "config",
    "load_configs": "config",
    "DECODERS": "decoders",
    "DecodeError": "decoders",
    "SkipLabelSet": "decoders",
    "set_pci_ids_path": "decoders",
    "Exporter": "exporter",
    "MetricFamily": "metrics",
    "format_float": "metrics",
    "render": "metrics",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "BUCKET_TYPES",
    "DECODERS",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Counter",
    "DecodeError",
    "DecoderSpec",
    "Exporter",
    "Histogram",
    "Label",
    "MetricFamily",
    "SkipLabelSet",
    "format_float",
    "load_configs",
    "render",
    "set_pci_ids_path",
]
