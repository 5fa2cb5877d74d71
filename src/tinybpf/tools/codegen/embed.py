"""The object file a generated module embeds: linked by libbpf's linker, as
``bpftool gen object`` does, which drops the DWARF sections of ``-g``.

libbpf's linker has no public tinybpf API yet: the link goes through
:func:`tinybpf._core.tools.link_object` (see docs/architecture.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..._core import tools


def _linked_object(path: Path) -> bytes:
    """The object as libbpf's linker writes it (bpftool gen object): what loading needs
    (programs, maps, BTF, BTF.ext, relocations), without the DWARF sections of ``-g``,
    which are most of the file."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tinybpf-gen-") as tmp:
        out = os.path.join(tmp, "linked.bpf.o")
        tools.link_object(os.fspath(path), out, f"link '{path}' for embedding")
        return Path(out).read_bytes()
