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

import bisect
import errno as _errno
import hashlib
import logging
import operator
import os
import stat
import struct
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import BpfError, BpfPermissionError, error_from_oserror

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

_log = logging.getLogger(f"{__package__}.symbolize")

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
            raise error_from_oserror(e, f"cannot read {self._path}") from None
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


# --- ELF ------------------------------------------------------------------------------------

_ELF_MAGIC = b"\x7fELF"
_PT_LOAD = 1
_PT_NOTE = 4
_SHT_SYMTAB = 2
_SHT_STRTAB = 3
_SHT_NOTE = 7
_SHT_NOBITS = 8
_SHT_DYNSYM = 11
_SHF_COMPRESSED = 0x800
_SHN_UNDEF = 0
_SHN_COMMON = 0xFFF2
_SHN_XINDEX = 0xFFFF
_PN_XNUM = 0xFFFF
_STT_OBJECT = 1
_STT_FUNC = 2
_STT_GNU_IFUNC = 10
_SYM_TYPES = (_STT_OBJECT, _STT_FUNC, _STT_GNU_IFUNC)
_NT_GNU_BUILD_ID = 3


@dataclass(frozen=True)
class _Formats:
    ehdr: struct.Struct
    phdr: struct.Struct
    shdr: struct.Struct
    sym: struct.Struct
    note: struct.Struct


_FORMATS = {
    e: _Formats(
        struct.Struct(e + "HHIQQQIHHHHHH"),
        struct.Struct(e + "IIQQQQQQ"),
        struct.Struct(e + "IIQQQQIIQQ"),
        struct.Struct(e + "IBBHQQ"),
        struct.Struct(e + "III"),
    )
    for e in "<>"
}


@dataclass(frozen=True)
class ElfSegment:
    """A ``PT_LOAD`` program header: ``filesz`` bytes at file ``offset`` load at ``vaddr``."""

    offset: int
    vaddr: int
    filesz: int


class _Source:
    """Bounds-checked reads from bytes or from a file descriptor (``pread``, no mmap: a
    file truncated under us gives a short read, not a SIGBUS)."""

    def __init__(self, name: str, size: int, data: bytes | None = None, fd: int = -1) -> None:
        self.name = name
        self.size = size
        self._data = data
        self._fd = fd

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ElfError(
                f"{self.name}: {what} at {offset:#x}+{length:#x} lies outside the "
                f"{self.size}-byte file (truncated or corrupt)"
            )
        if self._data is not None:
            return self._data[offset : offset + length]
        chunks = []
        done = 0
        while done < length:
            chunk = os.pread(self._fd, min(length - done, 1 << 24), offset + done)
            if not chunk:
                raise ElfError(f"{self.name}: file shrank while reading {what}")
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)


def _sym_rank(stype: int, bind: int, size: int, name: str) -> tuple[int, int, int, int, str]:
    """Preference among symbols at one address: sized code, fewer leading underscores
    (``getpid`` over ``__getpid``), global > weak > local, shorter, alphabetical."""
    return (
        (0 if stype != _STT_OBJECT else 1) + (0 if size else 2),
        len(name) - len(name.lstrip("_")),
        {1: 0, 2: 1}.get(bind, 2),
        len(name),
        name,
    )


class ElfFile:
    """The symbols and load segments of one ELF64 file (little- or big-endian).

    ``source`` is a path or the file's bytes. Only what symbolization needs is read: the
    ELF header, the ``PT_LOAD`` program headers, the build ID, and the ``FUNC``, ``OBJECT``
    and ``GNU_IFUNC`` symbols of ``.symtab`` and ``.dynsym``. Without ``.symtab``, the
    symbols of ``.gnu_debugdata`` (MiniDebugInfo, xz) are used when the ``lzma`` module is
    available, and a separate debug file ``DIR/.build-id/xx/yyyy.debug`` is looked for in
    each of ``debug_dirs``.

    Attributes: ``path`` (None for bytes), ``elf_type`` (``ET_EXEC`` 2, ``ET_DYN`` 3...),
    ``machine``, ``build_id`` (bytes or None), ``segments`` (the :class:`ElfSegment` of
    each ``PT_LOAD``) and ``has_symtab`` (full symbols were found: ``.symtab``, or debug
    data standing in for it). Of several symbols with the same range, one name is kept: a
    sized code symbol first, then the fewest leading underscores (``getpid`` over
    ``__getpid``), then global over weak over local, then the shortest.

    Raises :class:`ElfError` when the data is not a usable ELF64 file (bad magic, 32-bit,
    truncated or inconsistent headers) and a :class:`~tinybpf.BpfError` (also the matching
    ``OSError`` subclass) when the path cannot be opened. Corrupt symbol entries are
    skipped, and every size read from the file is checked against the file, so corrupt
    input costs bounded time and memory. Instances are immutable and may be shared between
    threads.
    """

    path: str | None
    build_id: bytes | None
    elf_type: int
    machine: int
    segments: tuple[ElfSegment, ...]
    has_symtab: bool

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        debug_dirs: Sequence[str] = (),
    ) -> None:
        self._reset(None)
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            self._parse(_Source("<bytes>", len(data), data=data), debug_dirs, nested=False)
            return
        path = os.fspath(source)
        fd = _open_regular(path)
        try:
            self.path = path
            src = _Source(path, os.fstat(fd).st_size, fd=fd)
            self._parse(src, debug_dirs, nested=False)
        finally:
            os.close(fd)

    def _reset(self, path: str | None) -> None:
        self.path = path
        self.build_id = None
        self.elf_type = 0
        self.machine = 0
        self.segments = ()
        self.has_symtab = False
        self.license: str | None = None  # a BPF object's "license" section
        self._starts: list[int] = []
        self._max_end: list[int] = []
        self._entries: list[tuple[int, int, tuple[Any, ...], str]] = []

    @classmethod
    def _parsed(
        cls, src: _Source, path: str | None, debug_dirs: Sequence[str], nested: bool
    ) -> ElfFile:
        self = cls.__new__(cls)
        self._reset(path)
        self._parse(src, debug_dirs, nested)
        return self

    # -- parsing --
    def _parse(self, src: _Source, debug_dirs: Sequence[str], nested: bool) -> None:
        ident = src.read(0, 16, "ELF identification")
        if ident[:4] != _ELF_MAGIC:
            raise ElfError(f"{src.name}: not an ELF file (bad magic {ident[:4]!r})")
        if ident[4] != 2:
            raise ElfError(f"{src.name}: ELF class {ident[4]} is not supported (ELF64 only)")
        if ident[5] not in (1, 2):
            raise ElfError(f"{src.name}: unknown ELF data encoding {ident[5]}")
        fmt = _FORMATS["<" if ident[5] == 1 else ">"]
        (
            self.elf_type,
            self.machine,
            _version,
            _entry,
            phoff,
            shoff,
            _flags,
            _ehsize,
            phentsize,
            phnum,
            shentsize,
            shnum,
            shstrndx,
        ) = fmt.ehdr.unpack(src.read(16, fmt.ehdr.size, "ELF header"))

        sections: list[tuple[int, ...]] = []
        if shoff:
            if shentsize < fmt.shdr.size:
                raise ElfError(f"{src.name}: section header size {shentsize} is too small")
            first = fmt.shdr.unpack(src.read(shoff, fmt.shdr.size, "section header 0"))
            if shnum == 0:
                shnum = first[5]  # extended numbering: the count is in section 0's sh_size
            if shstrndx == _SHN_XINDEX:
                shstrndx = first[6]
            if phnum == _PN_XNUM:
                phnum = first[7]
            if shnum * shentsize > src.size:
                raise ElfError(f"{src.name}: {shnum} section headers cannot fit in the file")
            table = src.read(shoff, shnum * shentsize, "section headers")
            sections = [fmt.shdr.unpack_from(table, i * shentsize) for i in range(shnum)]

        notes_left = _MAX_NOTE_AREAS
        segments = []
        if phoff and phnum:
            if phentsize < fmt.phdr.size:
                raise ElfError(f"{src.name}: program header size {phentsize} is too small")
            if phnum * phentsize > src.size:
                raise ElfError(f"{src.name}: {phnum} program headers cannot fit in the file")
            table = src.read(phoff, phnum * phentsize, "program headers")
            for i in range(phnum):
                p_type, _pf, p_offset, p_vaddr, _pa, p_filesz, _memsz, _al = fmt.phdr.unpack_from(
                    table, i * phentsize
                )
                if p_type == _PT_LOAD:
                    segments.append(ElfSegment(p_offset, p_vaddr, p_filesz))
                elif p_type == _PT_NOTE and self.build_id is None and notes_left:
                    notes_left -= 1
                    self.build_id = self._note_build_id(src, fmt, p_offset, p_filesz)
        self.segments = tuple(segments)

        entries: list[tuple[int, int, tuple[Any, ...], str]] = []
        debugdata: tuple[int, ...] | None = None
        shstr = b""
        if 0 < shstrndx < len(sections) and sections[shstrndx][1] == _SHT_STRTAB:
            sh = sections[shstrndx]
            shstr = src.read(sh[4], sh[5], "section name table")
        seen_tables: set[int] = set()
        for sh in sections:
            sh_type = sh[1]
            if sh_type in (_SHT_SYMTAB, _SHT_DYNSYM):
                if sh_type in seen_tables:
                    continue  # one of each per file (gABI); more is corrupt data
                seen_tables.add(sh_type)
                if sh_type == _SHT_SYMTAB:
                    self.has_symtab = True
                self._read_symbols(src, fmt, sections, sh, entries)
            elif sh_type == _SHT_NOTE and self.build_id is None and notes_left:
                notes_left -= 1
                self.build_id = self._note_build_id(src, fmt, sh[4], sh[5])
            elif sh_type != _SHT_NOBITS and shstr.startswith(b".gnu_debugdata\0", sh[0]):
                debugdata = sh
            elif sh_type != _SHT_NOBITS and shstr.startswith(b"license\0", sh[0]) and sh[5] <= 128:
                raw = src.read(sh[4], sh[5], "license section")
                self.license = raw.split(b"\0", 1)[0].decode("ascii", "replace")

        if not self.has_symtab and not nested:
            extra = None
            if debugdata is not None:
                extra = self._debugdata_symbols(src, debugdata)
            if extra is None and self.build_id and debug_dirs:
                extra = _debug_file_symbols(self.build_id, debug_dirs)
            if extra is not None:
                entries.extend(extra._entries)
                self.has_symtab = True
        self._index(entries)

    @staticmethod
    def _note_build_id(src: _Source, fmt: _Formats, offset: int, size: int) -> bytes | None:
        if size > 1 << 16:
            return None
        try:
            data = src.read(offset, size, "note")
        except ElfError:
            return None
        pos = 0
        while pos + 12 <= len(data):
            namesz, descsz, ntype = fmt.note.unpack_from(data, pos)
            name_at = pos + 12
            desc_at = name_at + ((namesz + 3) & ~3)
            end = desc_at + ((descsz + 3) & ~3)
            if desc_at + descsz > len(data):
                return None
            if ntype == _NT_GNU_BUILD_ID and data[name_at : name_at + namesz] == b"GNU\0":
                return data[desc_at : desc_at + descsz] or None
            pos = end
        return None

    @staticmethod
    def _read_symbols(
        src: _Source,
        fmt: _Formats,
        sections: list[tuple[int, ...]],
        sh: tuple[int, ...],
        out: list[tuple[int, int, tuple[Any, ...], str]],
    ) -> None:
        _name, _t, flags, _addr, offset, size, link, _info, _align, entsize = sh
        if flags & _SHF_COMPRESSED or entsize != fmt.sym.size or size < entsize:
            return
        if not 0 < link < len(sections) or sections[link][1] != _SHT_STRTAB:
            return
        strsh = sections[link]
        if strsh[2] & _SHF_COMPRESSED:
            return
        size -= size % entsize
        table = src.read(offset, size, "symbol table")
        strtab = _StringTable(src.read(strsh[4], strsh[5], "string table"))
        for st_name, st_info, _other, st_shndx, st_value, st_size in fmt.sym.iter_unpack(table):
            stype = st_info & 0xF
            if stype not in _SYM_TYPES or st_shndx in (_SHN_UNDEF, _SHN_COMMON) or st_name == 0:
                continue
            name = strtab.get(st_name)
            if not name:
                continue
            end = min(st_value + max(st_size, 1), _ADDR_LIMIT)
            out.append((st_value, end, _sym_rank(stype, st_info >> 4, st_size, name), name))

    def _debugdata_symbols(self, src: _Source, sh: tuple[int, ...]) -> ElfFile | None:
        try:
            import lzma
        except ImportError:  # Python built without lzma
            return None
        try:
            packed = src.read(sh[4], sh[5], ".gnu_debugdata")
            dec = lzma.LZMADecompressor()
            data = dec.decompress(packed, max_length=_MAX_DEBUGDATA)
            if not dec.eof:
                return None
            inner = _Source(f"{src.name}[.gnu_debugdata]", len(data), data=data)
            return ElfFile._parsed(inner, None, (), nested=True)
        except (ElfError, lzma.LZMAError, EOFError) as e:
            _log.debug("ignoring .gnu_debugdata of %s: %s", src.name, e)
            return None

    def _index(self, entries: list[tuple[int, int, tuple[Any, ...], str]]) -> None:
        entries.sort()
        kept: list[tuple[int, int, tuple[Any, ...], str]] = []
        for e in entries:  # aliases (same start and end): keep the preferred name only
            if kept and kept[-1][0] == e[0] and kept[-1][1] == e[1]:
                if e[2] < kept[-1][2]:
                    kept[-1] = e
                continue
            kept.append(e)
        self._entries = kept
        self._starts = [e[0] for e in kept]
        max_end = []
        top = 0
        for e in kept:
            top = max(top, e[1])
            max_end.append(top)
        self._max_end = max_end

    # -- queries --
    def __len__(self) -> int:
        """The number of distinct symbols."""
        return len(self._entries)

    def vaddr_for_offset(self, offset: int) -> int | None:
        """The virtual address (as linked) of a file offset inside a ``PT_LOAD`` segment."""
        for seg in self.segments:
            if seg.offset <= offset < seg.offset + seg.filesz:
                return offset - seg.offset + seg.vaddr
        return None

    def lookup(self, vaddr: int) -> tuple[str, int] | None:
        """``(name, offset)`` of the innermost symbol covering the link-time ``vaddr``.

        A symbol of size 0 covers only its own address.
        """
        starts, max_end, entries = self._starts, self._max_end, self._entries
        i = bisect.bisect_right(starts, vaddr) - 1
        found: tuple[int, int, tuple[Any, ...], str] | None = None
        while i >= 0 and max_end[i] > vaddr:
            e = entries[i]
            if found is not None and e[0] < found[0]:
                break
            if e[1] > vaddr and (found is None or e[2] < found[2]):
                found = e
            i -= 1
        if found is None:
            return None
        return found[3], vaddr - found[0]

    def address_of(self, name: str) -> int | None:
        """The link-time address of the symbol ``name`` (when it is the preferred alias)."""
        for start, _end, _rank, n in self._entries:
            if n == name:
                return start
        return None


class _StringTable:
    """NUL-terminated names by offset. A name is cut at ``_MAX_NAME`` bytes, which also
    bounds the scan for its end (a corrupt table without NULs stays cheap)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._cache: dict[int, str] = {}

    def get(self, offset: int) -> str:
        name = self._cache.get(offset)
        if name is None:
            data = self._data
            limit = min(len(data), offset + _MAX_NAME)
            end = data.find(b"\0", offset, limit)
            name = data[offset : limit if end < 0 else end].decode("utf-8", "replace")
            self._cache[offset] = name
        return name


def _open_regular(path: str) -> int:
    """Open a regular file for reading without blocking (a FIFO would block ``open``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        raise error_from_oserror(e, f"cannot open {path}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ElfError(f"{path}: not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _debug_file_symbols(build_id: bytes, debug_dirs: Sequence[str]) -> ElfFile | None:
    hexid = build_id.hex()
    for d in debug_dirs:
        path = os.path.join(d, ".build-id", hexid[:2], hexid[2:] + ".debug")
        if not os.path.exists(path):
            continue
        try:
            fd = _open_regular(path)
            try:
                dbg = ElfFile._parsed(_Source(path, os.fstat(fd).st_size, fd=fd), path, (), True)
            finally:
                os.close(fd)
        except (OSError, ElfError) as e:
            _log.debug("ignoring debug file %s: %s", path, e)
            continue
        if dbg.build_id in (None, build_id):
            return dbg
    return None


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
        raise error_from_oserror(e, f"cannot read /proc/{pid}/maps") from None
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
