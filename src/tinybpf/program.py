"""BpfProgram: one program of a BPF object. Its state, settings, pins, logs and test runs
are in tinybpf._program_setup, the attach family in tinybpf.attach."""

from __future__ import annotations

from ._program_setup import TestRunResult
from .attach import ProgramAttach
from .link import IterLink, SocketFilter, TcAttachment, XdpAttachment

__all__ = [
    "BpfProgram",
    "IterLink",
    "SocketFilter",
    "TcAttachment",
    "TestRunResult",
    "XdpAttachment",
]


class BpfProgram(ProgramAttach):
    """A program of a :class:`BpfObject`. Obtained from ``obj.programs`` / ``obj.program()``.

    Example::

        prog = obj.program("handle_exec")
        link = prog.attach()          # auto-attach from the SEC() name
    """
