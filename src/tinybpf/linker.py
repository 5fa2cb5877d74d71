"""libbpf's static linker: BPF object files linked into one (``bpftool gen object``).

Example::

    tinybpf.link_objects(["main.bpf.o", "helpers.bpf.o"], "app.bpf.o")
    with tinybpf.load("app.bpf.o") as obj:
        ...
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Iterable

from ._core import objcalls
from .errors import BpfError, BpfFileNotFoundError

__all__ = ["link_objects"]


def link_objects(inputs: Iterable[str | os.PathLike[str]], output: str | os.PathLike[str]) -> None:
    """Link the BPF object files ``inputs`` (in order) into one object file ``output``, as
    ``bpftool gen object`` does with libbpf's linker.

    Programs, maps, global variables, BTF and BTF.ext of every input end up in ``output``;
    an ``extern`` of one input resolves to the definition in another. Debug sections
    (DWARF of ``clang -g``) are dropped, so linking a single file gives a smaller object
    that loads the same. ``output`` is overwritten.

    Raises ValueError when ``inputs`` is empty, :class:`~tinybpf.BpfFileNotFoundError`
    when an input does not exist, and :class:`~tinybpf.BpfError` when the inputs cannot be
    linked (not BPF ELF files, a symbol defined twice, ...): its ``libbpf_log`` holds the
    linker's reason.

    Example::

        tinybpf.link_objects(["main.bpf.o", "helpers.bpf.o"], "app.bpf.o")
        obj = tinybpf.load("app.bpf.o")
    """
    if isinstance(inputs, (str, bytes, os.PathLike)):
        raise TypeError(
            "link_objects() takes a list of input files, not one path: link_objects([path], output)"
        )
    paths = [os.fspath(p) for p in inputs]
    out = os.fspath(output)
    if not paths:
        raise ValueError("link_objects() needs at least one input file")
    for p in paths:
        if not os.path.exists(p):
            raise BpfFileNotFoundError(f"link BPF objects failed: '{p}' not found", _errno.ENOENT)
        if os.path.isdir(p):
            raise BpfError(f"link BPF objects failed: '{p}' is a directory", _errno.EISDIR)
    names = ", ".join(f"'{p}'" for p in paths)
    objcalls.link_files(paths, out, f"link {names} into '{out}'")
