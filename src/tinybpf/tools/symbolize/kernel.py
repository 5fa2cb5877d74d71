"""Kernel addresses: /proc/kallsyms (modules and JIT-ed BPF programs included)."""

from __future__ import annotations

import bisect
import errno as _errno
import threading

from ...errors import error_for_errno
from .symbols import (
    KernelSymbolsRestrictedError,
    Symbol,
    SymbolizeError,
    _check_addr,
)

# --- kernel ---------------------------------------------------------------------------------


def _ksym_rank(kind: str, name: str) -> tuple[int, int, int]:
    """Preference among symbols sharing an address: code, then global, then fewer '_'."""
    return (
        0 if kind in "tTwW" else 1,
        0 if kind.isupper() else 1,
        len(name) - len(name.lstrip("_")),
    )


class KernelSymbols:
    """A snapshot of ``/proc/kallsyms``, sorted by address for bisection.

    An address resolves to the nearest symbol at or below it (as bcc's ``ksym()``;
    kallsyms carries no sizes), or to None below the first symbol. Where several symbols
    share an address, a code symbol is preferred, then a global one, then the name with
    the fewest leading underscores, then the first listed.

    Raises :class:`KernelSymbolsRestrictedError` when every address reads as 0, and a
    :class:`~tinybpf.BpfError` (``FileNotFoundError``...) when the file cannot be read.
    Modules and BPF programs loaded later are seen after :meth:`refresh`. Instances may be
    shared between threads.

    Example::

        ks = tinybpf.KernelSymbols()
        addr = ks.address_of("do_sys_openat2")
        print(ks.resolve(addr + 4))   # do_sys_openat2+0x4
    """

    def __init__(self, path: str = "/proc/kallsyms") -> None:
        self._path = path
        self._table: tuple[list[int], list[tuple[str, str | None]]] = ([], [])
        self.refresh()

    def refresh(self) -> None:
        """Re-read the file."""
        try:
            with open(self._path, "rb") as f:
                data = f.read()
        except OSError as e:
            code = e.errno or _errno.EIO
            raise error_for_errno(code)(
                f"cannot read {self._path}: {e.strerror or e}", code
            ) from None
        best: dict[int, tuple[tuple[int, int, int], str, str | None]] = {}
        listed = 0
        for line in data.splitlines():
            parts = line.split()
            if len(parts) < 3 or len(parts[1]) != 1:
                continue
            try:
                addr = int(parts[0], 16)
            except ValueError:
                continue
            listed += 1
            kind = parts[1].decode("ascii", "replace")
            if addr == 0 or kind in "aAU":
                continue  # hidden, absolute (per-CPU offsets) or undefined
            name = parts[2].decode("utf-8", "replace")
            module = None
            if len(parts) > 3 and parts[3].startswith(b"[") and parts[3].endswith(b"]"):
                module = parts[3][1:-1].decode("utf-8", "replace")
            rank = _ksym_rank(kind, name)
            old = best.get(addr)
            if old is None or rank < old[0]:
                best[addr] = (rank, name, module)
        if not best:
            if listed:
                raise KernelSymbolsRestrictedError(
                    f"{self._path} shows every address as 0: kernel.kptr_restrict hides "
                    "kernel addresses from this process; run as root (CAP_SYSLOG) with "
                    "kptr_restrict <= 1",
                    _errno.EACCES,
                )
            raise SymbolizeError(f"{self._path} lists no kernel symbols", _errno.ENOENT)
        addrs = sorted(best)
        self._table = (addrs, [best[a][1:] for a in addrs])

    def __len__(self) -> int:
        return len(self._table[0])

    def resolve(self, addr: int) -> Symbol | None:
        """The symbol covering ``addr``, or None when ``addr`` is below every symbol.

        Raises ``ValueError`` for an address outside ``[0, 2**64)``.
        """
        addr = _check_addr(addr)
        addrs, syms = self._table
        i = bisect.bisect_right(addrs, addr) - 1
        if i < 0:
            return None
        name, module = syms[i]
        return Symbol(name, addr - addrs[i], module, addr)

    def address_of(self, name: str, module: str | None = None) -> int | None:
        """The address listed for ``name`` (in ``module`` when given), or None. Linear."""
        addrs, syms = self._table
        for a, (n, m) in zip(addrs, syms, strict=True):
            if n == name and (module is None or m == module):
                return a
        return None


_default_ksyms: KernelSymbols | None = None
_default_lock = threading.Lock()


def ksym(addr: int) -> str | None:
    """``str()`` of the kernel symbol covering ``addr`` (``"do_sys_openat2+0x1c"``), or None.

    Uses one :class:`KernelSymbols` snapshot taken on the first call; create a
    :class:`KernelSymbols` for a fresh one. Raises :class:`KernelSymbolsRestrictedError`
    when kernel addresses are hidden from this process.

    Example::

        print(tinybpf.ksym(ip))   # e.g. "do_sys_openat2+0x1c", or None
    """
    global _default_ksyms
    with _default_lock:
        if _default_ksyms is None:
            _default_ksyms = KernelSymbols()
        ks = _default_ksyms
    sym = ks.resolve(addr)
    return None if sym is None else str(sym)
