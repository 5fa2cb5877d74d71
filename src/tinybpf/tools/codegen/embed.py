"""The object file a generated module embeds: linked by libbpf's linker
(:func:`tinybpf.link_objects`, as ``bpftool gen object`` does), which drops the DWARF
sections of ``-g``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ... import link_objects


def _linked_object(path: Path) -> bytes:
    """The object as libbpf's linker writes it (bpftool gen object): what loading needs
    (programs, maps, BTF, BTF.ext, relocations), without the DWARF sections of ``-g``,
    which are most of the file."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tinybpf-gen-") as tmp:
        out = os.path.join(tmp, "linked.bpf.o")
        link_objects([path], out)
        return Path(out).read_bytes()
