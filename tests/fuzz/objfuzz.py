"""Structure-aware mutation of BPF object files, and the worker that feeds them to tinybpf.

Used by tests/test_reliability_fuzz.py (a bounded run in the default suite) and by
tests/fuzz/campaign.py (long campaigns). Nothing here is collected by pytest.

A case is fully determined by ``(seed, index)``: ``make_case(seed, index)`` returns the same
bytes in every process, so a crash found by a worker is reproduced with::

    python tests/fuzz/campaign.py --replay SEED:INDEX --save crash.o

The worker (``python tests/fuzz/objfuzz.py --worker ...``) runs a range of cases in one
process and prints one ``SUMMARY {json}`` line at the end. A crash inside libbpf kills
only the worker: the parent sees the exit status and reads the index of the case being run
from the worker's status file.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

FUZZ_DIR = Path(__file__).resolve().parent
TESTS = FUZZ_DIR.parent
BPF_BUILD = TESTS / "bpf" / "build"

# Real fixtures the mutations start from (small ones: a mutation then hits the structures
# rather than a big vmlinux-derived BTF). A missing one is skipped.
SEED_FIXTURES = (
    "minimal",
    "maps",
    "ringbuf_events",
    "perfbuf_events",
    "prog_trace",
    "btf_types",
    "xdp_count",
    "cgroup_sock",
    "prog_invalid",
    "rel_tiny",
    "rel_events",
)

# --------------------------------------------------------------------------- ELF model

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
SHDR = struct.Struct("<IIQQQQIIQQ")
SYM = struct.Struct("<IBBHQQ")
REL = struct.Struct("<QQ")
BTF_HDR = struct.Struct("<HBBIIIII")
BTF_EXT_HDR = struct.Struct("<HBBIIIII")

SHDR_FIELDS = (
    "sh_name",
    "sh_type",
    "sh_flags",
    "sh_addr",
    "sh_offset",
    "sh_size",
    "sh_link",
    "sh_info",
    "sh_addralign",
    "sh_entsize",
)
# offset and width of each section header field
SHDR_LAYOUT = {
    "sh_name": (0, 4),
    "sh_type": (4, 4),
    "sh_flags": (8, 8),
    "sh_addr": (16, 8),
    "sh_offset": (24, 8),
    "sh_size": (32, 8),
    "sh_link": (40, 4),
    "sh_info": (44, 4),
    "sh_addralign": (48, 8),
    "sh_entsize": (56, 8),
}
EHDR_LAYOUT = {
    "e_ident.class": (4, 1),
    "e_ident.data": (5, 1),
    "e_ident.version": (6, 1),
    "e_type": (16, 2),
    "e_machine": (18, 2),
    "e_version": (20, 4),
    "e_shoff": (40, 8),
    "e_flags": (48, 4),
    "e_ehsize": (52, 2),
    "e_shentsize": (58, 2),
    "e_shnum": (60, 2),
    "e_shstrndx": (62, 2),
}
BTF_HDR_LAYOUT = {
    "magic": (0, 2),
    "version": (2, 1),
    "flags": (3, 1),
    "hdr_len": (4, 4),
    "type_off": (8, 4),
    "type_len": (12, 4),
    "str_off": (16, 4),
    "str_len": (20, 4),
}
BTF_EXT_HDR_LAYOUT = {
    "magic": (0, 2),
    "version": (2, 1),
    "flags": (3, 1),
    "hdr_len": (4, 4),
    "func_info_off": (8, 4),
    "func_info_len": (12, 4),
    "line_info_off": (16, 4),
    "line_info_len": (20, 4),
    "core_relo_off": (24, 4),
    "core_relo_len": (28, 4),
}
# BTF kinds: bytes of kind-specific data after the 12-byte common header
BTF_KIND_NAMES = {
    1: "INT",
    2: "PTR",
    3: "ARRAY",
    4: "STRUCT",
    5: "UNION",
    6: "ENUM",
    7: "FWD",
    8: "TYPEDEF",
    9: "VOLATILE",
    10: "CONST",
    11: "RESTRICT",
    12: "FUNC",
    13: "FUNC_PROTO",
    14: "VAR",
    15: "DATASEC",
    16: "FLOAT",
    17: "DECL_TAG",
    18: "TYPE_TAG",
    19: "ENUM64",
}


def _btf_extra(kind: int, vlen: int) -> int | None:
    if kind in (1, 14, 17):
        return 4
    if kind == 3:
        return 12
    if kind in (4, 5, 15, 19):
        return 12 * vlen
    if kind in (6, 13):
        return 8 * vlen
    if kind in (2, 7, 8, 9, 10, 11, 12, 16, 18):
        return 0
    return None


class Section:
    __slots__ = ("entsize", "hdr_off", "index", "link", "name", "offset", "size", "type")

    def __init__(self, index: int, hdr_off: int, fields: tuple[Any, ...], name: str) -> None:
        self.index = index
        self.hdr_off = hdr_off
        self.type = fields[1]
        self.offset = fields[4]
        self.size = fields[5]
        self.link = fields[6]
        self.entsize = fields[9]
        self.name = name


class BtfType:
    __slots__ = ("extra_off", "kind", "off", "tid", "vlen")

    def __init__(self, tid: int, off: int, kind: int, vlen: int) -> None:
        self.tid = tid
        self.off = off  # absolute file offset of the 12-byte header
        self.kind = kind
        self.vlen = vlen
        self.extra_off = off + 12


class Elf:
    """Just enough of an ELF64 relocatable object to aim mutations at its structures."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data
        self.sections: list[Section] = []
        self.btf_off = self.btf_size = 0
        self.btf_types: list[BtfType] = []
        self.btf_str = (0, 0)  # absolute offset, length
        self.btf_ext = (0, 0)
        hdr = EHDR.unpack_from(data, 0)
        shoff, shentsize, shnum, shstrndx = hdr[6], hdr[11], hdr[12], hdr[13]
        raw = [SHDR.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
        strtab = raw[shstrndx]
        for i, f in enumerate(raw):
            start = strtab[4] + f[0]
            end = data.index(b"\0", start)
            name = data[start:end].decode("latin-1")
            self.sections.append(Section(i, shoff + i * shentsize, f, name))
        for s in self.sections:
            if s.name == ".BTF":
                self._parse_btf(s.offset, s.size)
            elif s.name == ".BTF.ext":
                self.btf_ext = (s.offset, s.size)

    def _parse_btf(self, off: int, size: int) -> None:
        self.btf_off, self.btf_size = off, size
        _magic, _v, _f, hdr_len, type_off, type_len, str_off, str_len = BTF_HDR.unpack_from(
            self.data, off
        )
        base = off + hdr_len
        self.btf_str = (base + str_off, str_len)
        pos, end, tid = base + type_off, base + type_off + type_len, 1
        while pos + 12 <= end:
            _name, info, _st = struct.unpack_from("<III", self.data, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            extra = _btf_extra(kind, vlen)
            if extra is None:
                break
            self.btf_types.append(BtfType(tid, pos, kind, vlen))
            pos += 12 + extra
            tid += 1

    def by_type(self, sh_type: int) -> list[Section]:
        return [s for s in self.sections if s.type == sh_type and s.size]

    def prog_sections(self) -> list[Section]:
        # SHT_PROGBITS with SHF_EXECINSTR
        out = []
        for s in self.sections:
            flags = struct.unpack_from("<Q", self.data, s.hdr_off + 8)[0]
            if s.type == 1 and flags & 0x4 and s.size >= 8:
                out.append(s)
        return out


_ELF_CACHE: dict[str, Elf] = {}


def fixtures() -> list[Elf]:
    if not _ELF_CACHE:
        for name in SEED_FIXTURES:
            p = BPF_BUILD / f"{name}.bpf.o"
            if p.exists():
                _ELF_CACHE[name] = Elf(name, p.read_bytes())
    if not _ELF_CACHE:
        raise FileNotFoundError(f"no fixture objects in {BPF_BUILD}: run 'make compile'")
    return list(_ELF_CACHE.values())


# --------------------------------------------------------------------------- mutators


def _interesting(r: random.Random, width: int, ref: int = 0, flen: int = 0) -> int:
    mask = (1 << (8 * width)) - 1
    choices = [
        0,
        1,
        2,
        7,
        8,
        0x7F,
        0x80,
        0xFF,
        0x100,
        0x7FFF,
        0x8000,
        0xFFFF,
        0x7FFFFFFF,
        0x80000000,
        0xFFFFFFFF,
        mask,
        mask - 1,
        mask >> 1,
        ref + 1,
        ref - 1,
        ref + 8,
        ref * 2,
        ref + r.randint(-64, 64),
        flen,
        flen - 1,
        flen + 1,
        r.getrandbits(8 * width),
        r.randrange(max(flen, 1)),
    ]
    return r.choice(choices) & mask


def _put(buf: bytearray, off: int, width: int, value: int) -> None:
    if off >= 0 and off + width <= len(buf):
        buf[off : off + width] = value.to_bytes(width, "little")


def _get(buf: bytes | bytearray, off: int, width: int) -> int:
    return int.from_bytes(buf[off : off + width], "little")


def m_bitflip(r: random.Random, e: Elf, buf: bytearray) -> str:
    n = r.choice((1, 1, 2, 4, 8, 32))
    for _ in range(n):
        pos = r.randrange(len(buf))
        buf[pos] ^= 1 << r.randrange(8)
    return f"bitflip x{n}"


def m_bytes(r: random.Random, e: Elf, buf: bytearray) -> str:
    n = r.choice((1, 2, 4, 16))
    for _ in range(n):
        pos = r.randrange(len(buf))
        buf[pos] = r.choice((0, 0xFF, 0x7F, 0x80, 1, r.getrandbits(8)))
    return f"bytes x{n}"


def m_truncate(r: random.Random, e: Elf, buf: bytearray) -> str:
    mode = r.randrange(3)
    if mode == 0:
        cut = r.randrange(len(buf))
    elif mode == 1:  # at a section boundary
        s = r.choice(e.sections)
        cut = min(len(buf), s.offset + r.choice((0, s.size // 2, s.size)))
    else:  # just before the section header table
        cut = max(0, EHDR.unpack_from(e.data, 0)[6] + r.randint(-64, 64))
    del buf[cut:]
    return f"truncate@{cut}"


def m_insert(r: random.Random, e: Elf, buf: bytearray) -> str:
    pos = r.randrange(len(buf) + 1)
    n = r.choice((1, 4, 8, 64, 512))
    buf[pos:pos] = r.randbytes(n)
    return f"insert {n}@{pos}"


def m_ehdr(r: random.Random, e: Elf, buf: bytearray) -> str:
    field = r.choice(list(EHDR_LAYOUT))
    off, width = EHDR_LAYOUT[field]
    v = _interesting(r, width, _get(buf, off, width), len(buf))
    _put(buf, off, width, v)
    return f"ehdr {field}={v:#x}"


def m_shdr(r: random.Random, e: Elf, buf: bytearray) -> str:
    s = r.choice(e.sections)
    field = r.choice(SHDR_FIELDS)
    off, width = SHDR_LAYOUT[field]
    cur = _get(buf, s.hdr_off + off, width)
    if field == "sh_type" and r.random() < 0.5:
        v = r.choice((0, 1, 2, 3, 4, 8, 9, 11, 0x6FFFFFF5, 0x70000000))
    elif field in ("sh_link", "sh_info") and r.random() < 0.5:
        v = r.choice((0, s.index, len(e.sections), len(e.sections) - 1, 0xFFFF, 0xFFFFFFFF))
    elif field == "sh_offset" and r.random() < 0.5:
        v = r.choice(e.sections).offset  # overlap another section
    else:
        v = _interesting(r, width, cur, len(buf))
    _put(buf, s.hdr_off + off, width, v)
    return f"shdr[{s.index} {s.name}].{field}={v:#x}"


def m_btf_hdr(r: random.Random, e: Elf, buf: bytearray) -> str:
    if not e.btf_size:
        return m_shdr(r, e, buf)
    field = r.choice(list(BTF_HDR_LAYOUT))
    off, width = BTF_HDR_LAYOUT[field]
    cur = _get(buf, e.btf_off + off, width)
    v = _interesting(r, width, cur, e.btf_size)
    _put(buf, e.btf_off + off, width, v)
    return f"btf_hdr.{field}={v:#x}"


def m_btf_type(r: random.Random, e: Elf, buf: bytearray) -> str:
    if not e.btf_types:
        return m_bitflip(r, e, buf)
    t = r.choice(e.btf_types)
    kname = BTF_KIND_NAMES.get(t.kind, str(t.kind))
    ntypes = len(e.btf_types)
    what = r.randrange(7)
    if what == 0:  # kind
        info = _get(buf, t.off + 4, 4)
        k = r.choice((0, r.randrange(1, 20), 20, 31))
        _put(buf, t.off + 4, 4, (info & ~(0x1F << 24)) | (k << 24))
        return f"btf_type[{t.tid} {kname}].kind={k}"
    if what == 1:  # vlen
        info = _get(buf, t.off + 4, 4)
        v = r.choice((0, 1, t.vlen + 1, max(t.vlen - 1, 0), 0xFFFF, r.randrange(0x10000)))
        _put(buf, t.off + 4, 4, (info & ~0xFFFF) | v)
        return f"btf_type[{t.tid} {kname}].vlen={v}"
    if what == 2:  # kind_flag
        info = _get(buf, t.off + 4, 4)
        _put(buf, t.off + 4, 4, info ^ (1 << 31))
        return f"btf_type[{t.tid} {kname}].kind_flag^=1"
    if what == 3:  # size/type: a type id or a size
        v = r.choice(
            (0, t.tid, ntypes, ntypes + 1, 0xFFFFFFFF, 0x7FFFFFFF, r.randrange(ntypes + 2))
        )
        _put(buf, t.off + 8, 4, v)
        return f"btf_type[{t.tid} {kname}].size_type={v:#x}"
    if what == 4:  # name offset
        v = _interesting(r, 4, _get(buf, t.off, 4), e.btf_str[1])
        _put(buf, t.off, 4, v)
        return f"btf_type[{t.tid} {kname}].name_off={v:#x}"
    # kind-specific data: a member's / var's / array's words
    extra = _btf_extra(t.kind, t.vlen) or 0
    if not extra:
        return m_btf_type(r, e, buf)
    word = r.randrange(extra // 4)
    cur = _get(buf, t.extra_off + 4 * word, 4)
    if r.random() < 0.5:
        v = r.choice((0, t.tid, ntypes, ntypes + 1, 0xFFFFFFFF, cur + 1, cur * 8, 1 << 31))
    else:
        v = _interesting(r, 4, cur)
    _put(buf, t.extra_off + 4 * word, 4, v & 0xFFFFFFFF)
    return f"btf_type[{t.tid} {kname}].extra[{word}]={v & 0xFFFFFFFF:#x}"


def m_btf_strings(r: random.Random, e: Elf, buf: bytearray) -> str:
    off, size = e.btf_str
    if not size:
        return m_bytes(r, e, buf)
    mode = r.randrange(3)
    if mode == 0:  # remove the final NUL
        _put(buf, off + size - 1, 1, 0x41)
        return "btf_str: last NUL removed"
    if mode == 1:  # NULs -> letters in a window
        start = r.randrange(size)
        for i in range(start, min(size, start + r.randint(1, 64))):
            if buf[off + i] == 0:
                buf[off + i] = 0x5F
        return f"btf_str: NULs cleared from {start}"
    pos = off + r.randrange(size)
    buf[pos] = r.choice((0, 0xFF, 0x2E, 0x20, r.getrandbits(8)))
    return f"btf_str: byte@{pos - off}"


def m_btf_ext(r: random.Random, e: Elf, buf: bytearray) -> str:
    off, size = e.btf_ext
    if not size:
        return m_btf_type(r, e, buf)
    if r.random() < 0.5:
        field = r.choice(list(BTF_EXT_HDR_LAYOUT))
        foff, width = BTF_EXT_HDR_LAYOUT[field]
        v = _interesting(r, width, _get(buf, off + foff, width), size)
        _put(buf, off + foff, width, v)
        return f"btf_ext_hdr.{field}={v:#x}"
    # record words (record sizes, section name offsets, counts, insn offsets, type ids)
    word = r.randrange(8, max(9, size // 4))
    v = _interesting(r, 4, _get(buf, off + 4 * word, 4), size)
    _put(buf, off + 4 * word, 4, v)
    return f"btf_ext.word[{word}]={v:#x}"


def m_symtab(r: random.Random, e: Elf, buf: bytearray) -> str:
    tabs = e.by_type(2)  # SHT_SYMTAB
    if not tabs:
        return m_shdr(r, e, buf)
    s = tabs[0]
    n = s.size // SYM.size
    i = r.randrange(n)
    base = s.offset + i * SYM.size
    field = r.choice(("st_name", "st_info", "st_other", "st_shndx", "st_value", "st_size"))
    off, width = {
        "st_name": (0, 4),
        "st_info": (4, 1),
        "st_other": (5, 1),
        "st_shndx": (6, 2),
        "st_value": (8, 8),
        "st_size": (16, 8),
    }[field]
    if field == "st_shndx" and r.random() < 0.6:
        v = r.choice((0, len(e.sections), len(e.sections) + 1, 0xFFF1, 0xFFF2, 0xFFFF))
    else:
        v = _interesting(r, width, _get(buf, base + off, width))
    _put(buf, base + off, width, v)
    return f"sym[{i}].{field}={v:#x}"


def m_rel(r: random.Random, e: Elf, buf: bytearray) -> str:
    rels = e.by_type(9)  # SHT_REL
    if not rels:
        return m_symtab(r, e, buf)
    s = r.choice(rels)
    n = s.size // REL.size
    if not n:
        return m_shdr(r, e, buf)
    i = r.randrange(n)
    base = s.offset + i * REL.size
    mode = r.randrange(3)
    if mode == 0:
        v = _interesting(r, 8, _get(buf, base, 8))
        _put(buf, base, 8, v)
        return f"rel[{s.name}][{i}].r_offset={v:#x}"
    info = _get(buf, base + 8, 8)
    if mode == 1:
        sym = r.choice((0, 0xFFFFFFFF, (info >> 32) + 1, r.randrange(1 << 16)))
        _put(buf, base + 8, 8, (sym << 32) | (info & 0xFFFFFFFF))
        return f"rel[{s.name}][{i}].sym={sym:#x}"
    typ = r.choice((0, 1, 2, 3, 4, 10, 0xFF))
    _put(buf, base + 8, 8, (info & ~0xFFFFFFFF) | typ)
    return f"rel[{s.name}][{i}].type={typ}"


def m_insn(r: random.Random, e: Elf, buf: bytearray) -> str:
    progs = e.prog_sections()
    if not progs:
        return m_bytes(r, e, buf)
    s = r.choice(progs)
    i = r.randrange(s.size // 8)
    base = s.offset + i * 8
    field = r.randrange(4)
    if field == 0:
        buf[base] = r.choice((0x18, 0x85, 0x95, 0x05, 0xB7, 0x00, r.getrandbits(8)))
        return f"insn[{s.name}][{i}].code={buf[base]:#x}"
    if field == 1:
        buf[base + 1] = r.getrandbits(8)
        return f"insn[{s.name}][{i}].regs={buf[base + 1]:#x}"
    if field == 2:
        v = r.choice((0, -1, 0x7FFF, -0x8000, r.randint(-64, 64))) & 0xFFFF
        _put(buf, base + 2, 2, v)
        return f"insn[{s.name}][{i}].off={v:#x}"
    v = _interesting(r, 4, _get(buf, base + 4, 4))
    _put(buf, base + 4, 4, v)
    return f"insn[{s.name}][{i}].imm={v:#x}"


def m_section_bytes(r: random.Random, e: Elf, buf: bytearray) -> str:
    """Random bytes inside one section's data (maps, license, .rodata, .BTF...)."""
    cands = [s for s in e.sections if s.size and s.type != 8]
    s = r.choice(cands)
    n = r.choice((1, 4, 16))
    for _ in range(n):
        pos = s.offset + r.randrange(s.size)
        if pos < len(buf):
            buf[pos] = r.getrandbits(8)
    return f"section_bytes[{s.name}] x{n}"


def m_splice(r: random.Random, e: Elf, buf: bytearray) -> str:
    other = r.choice(fixtures())
    cut = r.randrange(len(buf))
    ocut = r.randrange(len(other.data))
    buf[cut:] = other.data[ocut:]
    return f"splice {other.name}@{ocut} at {cut}"


MUTATORS: list[tuple[Callable[[random.Random, Elf, bytearray], str], int]] = [
    (m_bitflip, 10),
    (m_bytes, 6),
    (m_truncate, 6),
    (m_insert, 2),
    (m_ehdr, 5),
    (m_shdr, 14),
    (m_btf_hdr, 6),
    (m_btf_type, 16),
    (m_btf_strings, 4),
    (m_btf_ext, 6),
    (m_symtab, 8),
    (m_rel, 6),
    (m_insn, 6),
    (m_section_bytes, 6),
    (m_splice, 2),
]
_FUNCS = [m for m, _ in MUTATORS]
_WEIGHTS = [w for _, w in MUTATORS]


TARGETS = ("object", "btf")


def make_case(seed: int, index: int, target: str = "object") -> tuple[bytes, str, str]:
    """(data, description, target) for case ``index`` of campaign ``seed``.

    ``target`` "object": a mutated object file to open (bytes or path) and load;
    "btf": a mutated raw .BTF blob for ``Btf.from_file`` (every type resolved, then
    dumped as C with ``to_c()``).
    """
    r = random.Random(f"tinybpf-fuzz:{target}:{seed}:{index}")
    if target == "btf":
        return _make_btf_case(r)
    roll = r.random()
    if roll < 0.04:  # pure random bytes
        n = r.choice((0, 1, 16, 64, 63, 4096, r.randrange(1, 20000)))
        return r.randbytes(n), f"random {n} bytes", "object"
    if roll < 0.08:  # an ELF header, then garbage
        e = r.choice(fixtures())
        n = r.choice((64, 128, 1024, len(e.data)))
        data = e.data[:64] + r.randbytes(max(0, n - 64))
        return data, f"elf header of {e.name} + {n - 64} random bytes", "object"
    e = r.choice(fixtures())
    buf = bytearray(e.data)
    notes = []
    for _ in range(r.choice((1, 1, 1, 2, 3, 4))):
        if not buf:
            break
        m = r.choices(_FUNCS, _WEIGHTS)[0]
        try:
            notes.append(m(r, e, buf))
        except (IndexError, ValueError, struct.error):
            notes.append(f"{m.__name__}: skipped")
    return bytes(buf), f"{e.name}: " + "; ".join(notes), "object"


_BTF_MUTATORS = (m_btf_type, m_btf_type, m_btf_type, m_btf_hdr, m_btf_strings, m_bitflip)


def _make_btf_case(r: random.Random) -> tuple[bytes, str, str]:
    """A fixture's .BTF section cut out as a raw BTF blob, then mutated in place (the
    object mutators' offsets are rebased onto the blob)."""
    cands = [e for e in fixtures() if e.btf_size]
    e = r.choice(cands)
    whole = bytearray(e.data)
    notes = []
    for _ in range(r.choice((1, 1, 2, 3))):
        m = r.choice(_BTF_MUTATORS)
        if m is m_bitflip:  # a flip inside .BTF only
            pos = e.btf_off + r.randrange(e.btf_size)
            whole[pos] ^= 1 << r.randrange(8)
            notes.append(f"flip@{pos - e.btf_off}")
        else:
            notes.append(m(r, e, whole))
    blob = bytes(whole[e.btf_off : e.btf_off + e.btf_size])
    return blob, f"raw .BTF of {e.name}: " + "; ".join(notes), "btf"


# --------------------------------------------------------------------------- running a case

_MAX_MAP_BYTES = 64 << 20


def _clamp_maps(obj: Any) -> bool:
    """Keep what a mutated object asks the kernel to allocate small, through the public
    API (a harness choice: a 2 GiB map value is the kernel's business, not the parser's).
    False: the object still wants too much memory; the case skips load()."""
    from tinybpf import BpfMapType

    for m in obj.maps.values():
        try:
            if m.type == BpfMapType.RINGBUF:
                if m.max_entries > (16 << 20):
                    m.max_entries = 4096
                continue
            if m.key_size > (1 << 16) or m.value_size > (1 << 20):
                return False
            per = max(1, m.key_size + m.value_size)
            if m.max_entries * per > _MAX_MAP_BYTES or m.max_entries > 1 << 20:
                m.max_entries = max(1, min(1024, _MAX_MAP_BYTES // per))
        except Exception:
            pass  # the load below reports what is wrong
    return True


def _walk(obj: Any, out: Outcomes) -> None:
    """Read every piece of metadata the object exposes (our Python code on hostile data)."""
    for p in obj.programs.values():
        _ = (p.name, p.section, p.type, p.insn_count, p.autoload, p.expected_attach_type)
    for m in obj.maps.values():
        _ = (m.name, m.type, m.key_size, m.value_size, m.max_entries, m.map_flags)
        _ = (m.is_internal, m.pin_path)
        try:
            _ = (m.btf_key, m.btf_value)
        except Exception as exc:
            out.other(f"walk:btf_kv:{type(exc).__name__}", exc)
    btf = obj.btf
    if btf is not None:
        n = len(btf)
        for tid in range(1, min(n, 300) + 1):
            try:
                btf.type(tid)
                btf.resolve(tid)
            except Exception as exc:
                out.other(f"walk:btf_type:{type(exc).__name__}", exc)
                break
    try:
        g = obj.globals
        for name in list(g)[:50]:
            g[name]
    except Exception as exc:
        out.other(f"walk:globals:{type(exc).__name__}", exc)


class Outcomes(Counter):  # type: ignore[type-arg]
    """Outcome counts, plus the first message seen for every outcome that is not a
    BpfError (the ones worth a look: a Python exception that is not the library's)."""

    def __init__(self) -> None:
        super().__init__()
        self.examples: dict[str, str] = {}
        self.index = -1

    def other(self, key: str, exc: BaseException) -> None:
        self[key] += 1
        if key not in self.examples:
            self.examples[key] = f"case {self.index}: {type(exc).__name__}: {str(exc)[:300]}"


def run_case(
    data: bytes,
    target: str,
    *,
    via_path: bool,
    load: bool,
    tmpdir: str,
    pin_root: str | None,
    out: Outcomes,
) -> None:
    """Feed one input to tinybpf; count the outcome in ``out``. Never raises (except for
    KeyboardInterrupt): any Python exception is an acceptable, counted outcome."""
    import tinybpf
    from tinybpf import BpfError

    if target == "btf":
        path = os.path.join(tmpdir, "case.btf")
        with open(path, "wb") as f:
            f.write(data)
        try:
            btf = tinybpf.Btf.from_file(path)
        except BpfError:
            out["btf:error"] += 1
            return
        except Exception as exc:
            out.other(f"btf:other:{type(exc).__name__}", exc)
            return
        try:
            for tid in range(1, min(len(btf), 300) + 1):
                btf.resolve(tid)
            btf.to_c()
            out["btf:ok"] += 1
        except BpfError:
            out["btf:walk:BpfError"] += 1
        except Exception as exc:
            out.other(f"btf:walk:{type(exc).__name__}", exc)
        finally:
            btf.close()
        return

    own_root = None
    if load and not pin_root and os.path.ismount("/sys/fs/bpf"):
        # never let a mutated "pinning" attribute pin into /sys/fs/bpf itself
        pin_root = own_root = tempfile.mkdtemp(prefix="tinybpf-fuzz-", dir="/sys/fs/bpf")
    try:
        _run_object(data, via_path, load, tmpdir, pin_root, out)
    finally:
        if own_root:
            shutil.rmtree(own_root, ignore_errors=True)


def _run_object(
    data: bytes, via_path: bool, load: bool, tmpdir: str, pin_root: str | None, out: Outcomes
) -> None:
    import tinybpf
    from tinybpf import BpfError

    opts: dict[str, Any] = {}
    if pin_root:
        opts["pin_root_path"] = pin_root
    try:
        if via_path:
            path = os.path.join(tmpdir, "case.bpf.o")
            with open(path, "wb") as f:
                f.write(data)
            obj = tinybpf.open(path, **opts)
        else:
            obj = tinybpf.open(data, **opts)
    except BpfError:
        out["open:BpfError"] += 1
        return
    except Exception as exc:
        out.other(f"open:other:{type(exc).__name__}", exc)
        return
    out["open:ok"] += 1
    try:
        try:
            _walk(obj, out)
        except BpfError:
            out["walk:BpfError"] += 1
        except Exception as exc:
            out.other(f"walk:other:{type(exc).__name__}", exc)
        if load and not _clamp_maps(obj):
            out["load:skipped(huge map)"] += 1
        elif load:
            try:
                obj.load()
                out["load:ok"] += 1
            except BpfError:
                out["load:BpfError"] += 1
            except Exception as exc:
                out.other(f"load:other:{type(exc).__name__}", exc)
    finally:
        obj.close()


def worker(
    seed: int,
    start: int,
    count: int,
    status: str | None,
    load: bool,
    target: str = "object",
    pin_root: str | None = None,
    case_timeout: float = 20.0,
) -> int:
    import logging

    faulthandler.enable()
    logging.getLogger("tinybpf").setLevel(logging.CRITICAL + 1)
    import tinybpf  # noqa: F401  (import before the first case: its cost is not a case's)

    fixtures()
    tmpdir = tempfile.mkdtemp(prefix="tinybpf-fuzz-")
    # A mutated map definition may ask for pinning: such pins go to pin_root, a directory
    # the parent made in bpffs and removes (also when this worker dies).
    out = Outcomes()
    sfd = os.open(status, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if status else -1
    slowest = (0.0, -1)
    t0 = time.monotonic()
    try:
        for index in range(start, start + count):
            if sfd >= 0:
                os.pwrite(sfd, f"{index:>12}\n".encode(), 0)
            out.index = index
            data, _desc, kind = make_case(seed, index, target)
            t = time.monotonic()
            # A case stuck in C (an endless loop in libbpf) cannot be interrupted from
            # Python: faulthandler's watchdog thread dumps the stack and exits instead.
            faulthandler.dump_traceback_later(case_timeout, exit=True)
            run_case(
                data,
                kind,
                via_path=(index % 4 == 3),
                load=load,
                tmpdir=tmpdir,
                pin_root=pin_root,
                out=out,
            )
            faulthandler.cancel_dump_traceback_later()
            dt = time.monotonic() - t
            if dt > slowest[0]:
                slowest = (dt, index)
            out["cases"] += 1
    finally:
        if sfd >= 0:
            os.close(sfd)
        shutil.rmtree(tmpdir, ignore_errors=True)
    summary = {
        "seed": seed,
        "target": target,
        "start": start,
        "count": count,
        "seconds": round(time.monotonic() - t0, 3),
        "slowest": [round(slowest[0], 4), slowest[1]],
        "outcomes": dict(sorted(out.items())),
        "examples": out.examples,
    }
    print("SUMMARY " + json.dumps(summary), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--status", default=None)
    ap.add_argument("--target", choices=TARGETS, default="object")
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--pin-root", default=None, help="pin_root_path for opened objects")
    ap.add_argument("--case-timeout", type=float, default=20.0, help="seconds per case")
    a = ap.parse_args(argv)
    load = not a.no_load and os.geteuid() == 0
    return worker(a.seed, a.start, a.count, a.status, load, a.target, a.pin_root, a.case_timeout)


if __name__ == "__main__":
    sys.exit(main())
