"""The tools layer: programs built on the library, above it (docs/architecture.md).

``cli`` (the ``tinybpf`` command), ``codegen`` (``tinybpf gen``), ``symbolize``,
``histogram``, ``inspection`` (``tinybpf inspect``/``list``/``explore``), ``ps``,
``shell`` and ``jsonl``. They use the library's public API
(exceptions are listed in docs/architecture.md); nothing in the library imports them
except the lazy public names of ``tinybpf`` (``tinybpf.Symbolizer``...). The old import
paths (``tinybpf.codegen``, ``tinybpf.symbolize``, ``tinybpf.histogram``) name the same
modules' contents.
"""
