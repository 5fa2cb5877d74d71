"""``tinybpf.codegen``: the public import path of :mod:`tinybpf.tools.codegen` (the tools layer,
docs/architecture.md). Every name here is that module's."""

from .tools.codegen import *  # noqa: F403
from .tools.codegen import __all__ as __all__
