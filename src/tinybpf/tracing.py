"""``tinybpf.tracing``: the public import path of :mod:`tinybpf.tools.tracing` (the tools layer,
docs/architecture.md). Every name here is that module's."""

from .tools.tracing import *  # noqa: F403
from .tools.tracing import __all__ as __all__
from .tools.tracing import parse_trace_line as parse_trace_line
