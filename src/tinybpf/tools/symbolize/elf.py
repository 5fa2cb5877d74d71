"""A small ELF64 reader: symbols (.symtab, .dynsym, MiniDebugInfo), build IDs, segments."""

from __future__ import annotations

import bisect
import errno as _errno
import os
import stat
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import error_for_errno
from .symbols import (
    _ADDR_LIMIT,
    _MAX_DEBUGDATA,
    _MAX_NAME,
    _MAX_NOTE_AREAS,
    ElfError,
    _log,
)

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
        code = e.errno or _errno.EIO
        raise error_for_errno(code)(f"cannot open {path}: {e.strerror or e}", code) from None
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
