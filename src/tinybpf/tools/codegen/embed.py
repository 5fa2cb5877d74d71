"""The object file a generated module embeds: linked by libbpf's linker, as
``bpftool gen object`` does, which drops the DWARF sections of ``-g``.

The one place the tools call the extension directly: libbpf's linker has no public
tinybpf API yet (see docs/architecture.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..._core import capture_log, check_int, check_ptr, cstr, ffi, lib

_NULL = ffi.NULL


def _linked_object(path: Path) -> bytes:
    """The object as libbpf's linker writes it (bpftool gen object): what loading needs
    (programs, maps, BTF, BTF.ext, relocations), without the DWARF sections of ``-g``,
    which are most of the file."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tinybpf-gen-") as tmp:
        out = os.path.join(tmp, "linked.bpf.o")
        with capture_log() as log:
            linker = lib.bpf_linker__new(cstr(out), _NULL)
        check_ptr(linker, f"link '{path}' for embedding failed", log)
        try:
            with capture_log() as log:
                ret = lib.bpf_linker__add_file(linker, cstr(os.fspath(path)), _NULL)
            check_int(ret, f"link '{path}' for embedding failed", log)
            with capture_log() as log:
                ret = lib.bpf_linker__finalize(linker)
            check_int(ret, f"link '{path}' for embedding failed", log)
        finally:
            lib.bpf_linker__free(linker)
        return Path(out).read_bytes()
