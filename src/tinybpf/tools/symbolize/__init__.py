"""Turn kernel and user-space addresses (stack traces, instruction pointers) into symbols.

- :class:`KernelSymbols` reads ``/proc/kallsyms`` once and resolves kernel addresses
  (modules and JIT-ed BPF programs included); :func:`ksym` is the one-call shortcut.
- :class:`Symbolizer` resolves addresses of any process: kernel addresses as above, user
  addresses through ``/proc/PID/maps`` and the ``.symtab``/``.dynsym`` of the mapped ELF
  file, read by the small ELF64 reader :class:`ElfFile` (no libelf, no pyelftools).

Example::

    sym = Symbolizer()
    for frame in sym.resolve_stack(stack_ips, pid=pid):
        print(frame or "[unknown]")      # e.g. "do_sys_openat2+0x1c", "getpid+0x0 [libc.so.6]"

Errors: bad arguments raise ``TypeError``/``ValueError``. Kernel addresses hidden by
``kernel.kptr_restrict`` raise :class:`KernelSymbolsRestrictedError`. A file that is not a
usable ELF raises :class:`ElfError` from :class:`ElfFile`; :class:`Symbolizer` never raises
for it but falls back to ``module+0xoffset``. Every tinybpf error is a
:class:`~tinybpf.BpfError`, so also an ``OSError``.
"""

from __future__ import annotations

from .elf import ElfFile, ElfSegment
from .kernel import KernelSymbols, ksym
from .process import Symbolizer
from .symbols import (
    KERNEL_ADDRESS_MIN,
    ElfError,
    KernelSymbolsRestrictedError,
    Symbol,
    SymbolizeError,
)

__all__ = [
    "KERNEL_ADDRESS_MIN",
    "ElfError",
    "ElfFile",
    "ElfSegment",
    "KernelSymbols",
    "KernelSymbolsRestrictedError",
    "Symbol",
    "SymbolizeError",
    "Symbolizer",
    "ksym",
]
