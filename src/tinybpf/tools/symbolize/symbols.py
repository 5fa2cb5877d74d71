"""Symbols and the errors of symbolization, shared by the kernel, ELF and process parts."""

from __future__ import annotations

import errno as _errno
import logging
import operator
import sys
from dataclasses import dataclass, field

from ...errors import BpfError, BpfPermissionError

_log = logging.getLogger(__name__.rsplit(".tools.", 1)[0] + ".symbolize")

#: Addresses at or above this are kernel addresses (the upper half of a 64-bit address
#: space, where x86_64, arm64, riscv64, loongarch64 and powerpc64 map the kernel).
KERNEL_ADDRESS_MIN = 1 << 63 if sys.maxsize > 2**32 else 0xC000_0000
_ADDR_LIMIT = 1 << 64
_MAX_VDSO = 1 << 20  # bytes read from /proc/PID/mem for a [vdso] mapping
_MAX_DEBUGDATA = 64 << 20  # decompressed size cap of .gnu_debugdata (MiniDebugInfo)
_MAX_NAME = 4096  # longest symbol name kept (longer ones are cut)
_MAX_NOTE_AREAS = 16  # note segments/sections searched for the build ID


class SymbolizeError(BpfError):
    """Base of the symbolization errors.

    Example::

        try:
            sym = tinybpf.Symbolizer().resolve(addr)   # a kernel address
        except tinybpf.SymbolizeError as e:   # kallsyms unreadable, empty or restricted
            print(e)
    """


class KernelSymbolsRestrictedError(SymbolizeError, BpfPermissionError):
    """``/proc/kallsyms`` shows every address as 0: ``kernel.kptr_restrict`` hides them from
    this process (they are shown to root / CAP_SYSLOG when ``kptr_restrict`` is 0 or 1).

    Example::

        try:
            name = tinybpf.ksym(addr)
        except tinybpf.KernelSymbolsRestrictedError:   # not root: kallsyms hides addresses
            name = hex(addr)
    """


class ElfError(SymbolizeError, ValueError):
    """The data is not an ELF file this reader can use: bad magic, 32-bit, truncated or
    inconsistent headers. ``errno`` is ``ENOEXEC``.

    Example::

        from tinybpf.symbolize import ElfFile
        try:
            ElfFile(b"not an ELF file")
        except tinybpf.ElfError as e: print(e.errno)   # errno.ENOEXEC
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, _errno.ENOEXEC)

    def __reduce__(self) -> tuple[type[BpfError], tuple[str]]:  # type: ignore[override]
        return (type(self), (self.message,))


@dataclass(frozen=True)
class Symbol:
    """A resolved address: ``address`` is ``offset`` bytes into the symbol ``name``.

    ``module`` is the kernel module (``None`` for the core kernel, ``"bpf"`` for BPF
    programs) or, for user space, the base name of the mapped file (``"libc.so.6"``);
    ``path`` is that file's path as ``/proc/PID/maps`` shows it. When no symbol covers a
    user address, ``name`` is ``""`` and ``offset`` is the offset in the file.

    ``str()`` gives ``name+0xoff``, followed by `` [module]`` when there is a module
    (`` [vdso]`` for ``module="[vdso]"``), or ``module+0xoff`` when ``name`` is empty, or
    ``0xaddress`` when there is neither.

    Example::

        >>> str(tinybpf.Symbol("getpid", 0x10, "libc.so.6", 0x7F0000001010))
        'getpid+0x10 [libc.so.6]'
    """

    name: str
    offset: int
    module: str | None
    address: int
    path: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.name:
            text = f"{self.name}+0x{self.offset:x}"
            if not self.module:
                return text
            if self.module.startswith("[") and self.module.endswith("]"):  # "[vdso]"
                return f"{text} {self.module}"
            return f"{text} [{self.module}]"
        if self.module:
            return f"{self.module}+0x{self.offset:x}"
        return f"0x{self.address:x}"


def _check_addr(addr: int) -> int:
    addr = operator.index(addr)
    if not 0 <= addr < _ADDR_LIMIT:
        raise ValueError(f"address must be in [0, 2**64), got {addr:#x}")
    return addr
