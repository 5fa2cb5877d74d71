"""``tinybpf.histogram``: the public import path of :mod:`tinybpf.tools.histogram` (the tools layer,
docs/architecture.md). Every name here is that module's."""

from .tools.histogram import *  # noqa: F403
from .tools.histogram import __all__ as __all__
