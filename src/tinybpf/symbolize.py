"""``tinybpf.symbolize``: the public import path of :mod:`tinybpf.tools.symbolize` (the tools layer,
docs/architecture.md). Every name here is that module's."""

from .tools.symbolize import *  # noqa: F403
from .tools.symbolize import __all__ as __all__
