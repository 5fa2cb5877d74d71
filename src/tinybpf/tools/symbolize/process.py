"""Addresses of any process: /proc/PID/maps and the mapped ELF files."""

from __future__ import annotations

import bisect
import errno as _errno
import hashlib
import operator
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import error_for_errno
from .elf import ElfFile, _open_regular, _Source
from .kernel import KernelSymbols
from .symbols import (
    _MAX_VDSO,
    KERNEL_ADDRESS_MIN,
    ElfError,
    Symbol,
    _check_addr,
    _log,
)

# --- processes ------------------------------------------------------------------------------


@dataclass
class _Mapping:
    start: int
    end: int
    offset: int
    path: str  # as in /proc/PID/maps, without " (deleted)"
    deleted: bool
    elf: ElfFile | None = None
    tried: bool = False


@dataclass
class _ProcMaps:
    starts: list[int]
    maps: list[_Mapping]


def _read_maps(pid: int) -> _ProcMaps | None:
    try:
        with open(f"/proc/{pid}/maps", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as e:
        code = e.errno or _errno.EIO
        raise error_for_errno(code)(
            f"cannot read /proc/{pid}/maps: {e.strerror or e}", code
        ) from None
    maps = []
    for raw in data.splitlines():
        parts = raw.split(None, 5)
        if len(parts) < 6:
            continue  # anonymous mapping
        try:
            lo, _, hi = parts[0].partition(b"-")
            start, end, offset = int(lo, 16), int(hi, 16), int(parts[2], 16)
        except ValueError:
            continue
        path = os.fsdecode(parts[5].strip())
        if not path.startswith("/") and path != "[vdso]":
            continue  # [heap], [stack], [anon:...], anon_inode:...: no file behind it
        deleted = path.endswith(" (deleted)")
        if deleted:
            path = path[: -len(" (deleted)")]
            if path == "/dev/zero" or path.startswith("/SYSV"):
                continue  # shared anonymous memory
        maps.append(_Mapping(start, end, offset, path, deleted))
    maps.sort(key=lambda m: m.start)
    return _ProcMaps([m.start for m in maps], maps)


class Symbolizer:
    """Resolves kernel and user-space addresses, caching what it reads.

    ``resolve(addr)`` (no pid) and addresses at or above :data:`KERNEL_ADDRESS_MIN` are
    kernel addresses, resolved by a :class:`KernelSymbols` read on first use (pass
    ``kernel`` to share one). Other addresses belong to process ``pid``: the mapping that
    holds ``addr`` in ``/proc/PID/maps`` gives the file and the file offset, the file's
    ``PT_LOAD`` segments turn that into a link-time address, and the ``.symtab``/``.dynsym``
    symbols name it (see :class:`ElfFile`). The file is opened through
    ``/proc/PID/map_files`` when allowed (deleted or replaced files, other mount
    namespaces), then ``/proc/PID/root/PATH``, then ``PATH``.

    Results for user addresses:

    - a :class:`Symbol` whose ``module`` is the file's base name;
    - ``Symbol(name="", offset=<file offset>, module=<base name>)`` when the address is in a
      file mapping but no symbol covers it, or the file cannot be read or is not a usable
      ELF file (stripped binaries, JIT code in memfds...);
    - None when the process does not exist (any more), or the address is in no file mapping
      (heap, stack, anonymous memory).

    Caches: the maps of up to ``max_pids`` processes and the symbols of up to ``max_files``
    files (keyed by device, inode, size and mtime, so a rebuilt file is read again), least
    recently used first out. A process's maps are re-read once when an address is in none
    of its cached mappings (libraries loaded since); :meth:`refresh` drops them explicitly
    (e.g. when a pid may have been reused). A Symbolizer may be shared between threads.

    Example::

        sym = tinybpf.Symbolizer()
        for frame in sym.resolve_stack(obj.maps["stacks"].stack_trace(stack_id), pid=pid):
            print(frame or "[unknown]")
    """

    def __init__(
        self,
        *,
        kernel: KernelSymbols | None = None,
        debug_dirs: Sequence[str] = ("/usr/lib/debug",),
        max_pids: int = 256,
        max_files: int = 256,
    ) -> None:
        if max_pids < 1 or max_files < 1:
            raise ValueError("max_pids and max_files must be at least 1")
        self._kernel = kernel
        self._debug_dirs = tuple(debug_dirs)
        self._max_pids = max_pids
        self._max_files = max_files
        self._pids: OrderedDict[int, _ProcMaps] = OrderedDict()
        self._files: OrderedDict[tuple[Any, ...], ElfFile | None] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def kernel(self) -> KernelSymbols:
        """The kernel symbols (``/proc/kallsyms`` is read on first access)."""
        with self._lock:
            if self._kernel is None:
                self._kernel = KernelSymbols()
            return self._kernel

    def refresh(self, pid: int | None = None) -> None:
        """Forget the cached maps of ``pid``; with no pid, of every process, and re-read
        the kernel symbols now if they were read. Cached ELF files stay: they are keyed by
        device, inode, size and mtime, so a changed file is read again anyway."""
        with self._lock:
            if pid is None:
                self._pids.clear()
                if self._kernel is not None:
                    self._kernel.refresh()
            else:
                self._pids.pop(pid, None)

    def clear(self) -> None:
        """Drop every cache (maps and ELF files)."""
        with self._lock:
            self._pids.clear()
            self._files.clear()

    def resolve(self, addr: int, pid: int | None = None) -> Symbol | None:
        """The symbol for ``addr`` in the kernel (``pid`` None, or a kernel address) or in
        process ``pid``; see the class documentation for the results.

        Raises ``ValueError`` for an address outside ``[0, 2**64)`` or a negative pid,
        :class:`KernelSymbolsRestrictedError` for a kernel address when kallsyms hides
        addresses, and a :class:`~tinybpf.BpfPermissionError` when ``/proc/PID/maps``
        exists but cannot be read.
        """
        addr = _check_addr(addr)
        if pid is None or addr >= KERNEL_ADDRESS_MIN:
            return self.kernel.resolve(addr)
        return self._resolve_user(addr, _check_pid(pid), allow_reread=True)[0]

    def resolve_stack(
        self, addrs: Iterable[int] | bytes, pid: int | None = None
    ) -> list[Symbol | None]:
        """:meth:`resolve` each non-zero address, in order (zero entries, the padding of a
        BPF stack trace, are left out). ``addrs`` may also be the raw bytes of a stack-map
        value (native-endian u64s). The maps of ``pid`` are re-read at most once."""
        if isinstance(addrs, (bytes, bytearray, memoryview)):
            raw = bytes(addrs)
            addrs = [v for (v,) in struct.iter_unpack("=Q", raw[: len(raw) - len(raw) % 8])]
        if pid is not None:
            pid = _check_pid(pid)
        allow_reread = True
        out: list[Symbol | None] = []
        for a in addrs:
            a = _check_addr(a)
            if a == 0:
                continue
            if pid is None or a >= KERNEL_ADDRESS_MIN:
                out.append(self.kernel.resolve(a))
                continue
            sym, reread = self._resolve_user(a, pid, allow_reread)
            allow_reread = allow_reread and not reread
            out.append(sym)
        return out

    # -- internals --
    def _find_mapping(
        self, pid: int, addr: int, allow_reread: bool
    ) -> tuple[_Mapping | None, bool]:
        """The mapping holding ``addr`` and whether the maps were re-read to find it."""
        with self._lock:
            pm = self._pids.get(pid)
            fresh = pm is None
            for attempt in range(2):
                if pm is None:
                    pm = _read_maps(pid)
                    if pm is None:  # no such process
                        self._pids.pop(pid, None)
                        return None, attempt > 0
                    self._pids[pid] = pm
                    while len(self._pids) > self._max_pids:
                        self._pids.popitem(last=False)
                self._pids.move_to_end(pid)
                i = bisect.bisect_right(pm.starts, addr) - 1
                if i >= 0 and addr < pm.maps[i].end:
                    return pm.maps[i], attempt > 0
                if fresh or not allow_reread:
                    break
                pm = None
            return None, not fresh and allow_reread

    def _resolve_user(self, addr: int, pid: int, allow_reread: bool) -> tuple[Symbol | None, bool]:
        m, reread = self._find_mapping(pid, addr, allow_reread)
        if m is None:
            return None, reread
        if not m.tried:
            elf = self._elf_for(pid, m)
            with self._lock:
                m.elf, m.tried = elf, True
        file_offset = addr - m.start + m.offset
        module = os.path.basename(m.path) if m.path.startswith("/") else m.path
        if m.elf is not None:
            vaddr = m.elf.vaddr_for_offset(file_offset)
            if vaddr is not None:
                hit = m.elf.lookup(vaddr)
                if hit is not None:
                    return Symbol(hit[0], hit[1], module, addr, m.path), reread
        return Symbol("", file_offset, module, addr, m.path), reread

    def _elf_for(self, pid: int, m: _Mapping) -> ElfFile | None:
        if m.path == "[vdso]":
            return self._vdso(pid, m)
        candidates = [f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}"]
        if not m.deleted:
            candidates += [f"/proc/{pid}/root{m.path}", m.path]
        for cand in candidates:
            try:
                fd = _open_regular(cand)
            except (OSError, ElfError):
                continue
            try:
                st = os.fstat(fd)
                key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                with self._lock:
                    if key in self._files:
                        self._files.move_to_end(key)
                        return self._files[key]
                try:
                    src = _Source(m.path, st.st_size, fd=fd)
                    elf: ElfFile | None = ElfFile._parsed(src, m.path, self._debug_dirs, False)
                except (ElfError, OSError) as e:
                    _log.debug("no symbols from %s: %s", cand, e)
                    elf = None
                self._remember(key, elf)
                return elf
            finally:
                os.close(fd)
        return None

    def _vdso(self, pid: int, m: _Mapping) -> ElfFile | None:
        size = m.end - m.start
        if not 0 < size <= _MAX_VDSO:
            return None
        try:
            with open(f"/proc/{pid}/mem", "rb", buffering=0) as f:
                f.seek(m.start)
                data = f.read(size)
        except (OSError, OverflowError, ValueError):
            return None
        key = ("[vdso]", hashlib.sha256(data).digest())
        with self._lock:
            if key in self._files:
                self._files.move_to_end(key)
                return self._files[key]
        try:
            elf: ElfFile | None = ElfFile(data)
        except ElfError:
            elf = None
        self._remember(key, elf)
        return elf

    def _remember(self, key: tuple[Any, ...], elf: ElfFile | None) -> None:
        with self._lock:
            self._files[key] = elf
            while len(self._files) > self._max_files:
                self._files.popitem(last=False)


def _check_pid(pid: int) -> int:
    pid = operator.index(pid)
    if pid < 0:
        raise ValueError(f"pid must not be negative, got {pid}")
    return pid
