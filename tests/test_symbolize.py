"""Address symbolization on real data: /proc/kallsyms, this process's libc, a small C program
built here with gcc (PIE, non-PIE, stripped, with separate or embedded debug symbols), and
corrupted or fuzzed copies of a real ELF file.

Expected values come from the system (kallsyms text, ``nm``, ``readelf``), not from the
code under test.
"""

from __future__ import annotations

import ctypes
import errno
import lzma
import mmap
import os
import random
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tinybpf import BpfError
from tinybpf.symbolize import (
    KERNEL_ADDRESS_MIN,
    ElfError,
    ElfFile,
    KernelSymbols,
    KernelSymbolsRestrictedError,
    Symbol,
    SymbolizeError,
    Symbolizer,
    ksym,
)

HELPERS = Path(__file__).resolve().parent / "helpers"
FN = "tinybpf_target_fn"
OBJ = "tinybpf_target_obj"

# --- kernel ---------------------------------------------------------------------------------


def read_kallsyms(path: str = "/proc/kallsyms") -> list[tuple[int, str, str, str | None]]:
    """(address, type, name, module) of every line, parsed here independently."""
    out = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            module = parts[3][1:-1] if len(parts) > 3 else None
            out.append((int(parts[0], 16), parts[1], parts[2], module))
    return out


KALLSYMS = read_kallsyms()
KALLSYMS_HIDDEN = all(addr == 0 for addr, *_ in KALLSYMS)
needs_kallsyms = pytest.mark.skipif(
    KALLSYMS_HIDDEN,
    reason=f"/proc/kallsyms shows no addresses to uid {os.geteuid()} (kernel.kptr_restrict)",
)


def names_at(addr: int) -> set[str]:
    return {name for a, kind, name, _ in KALLSYMS if a == addr and kind not in "aAU"}


def known_kernel_function() -> tuple[int, str]:
    """do_sys_openat2 when listed, else the first global text symbol."""
    for addr, _kind, name, module in KALLSYMS:
        if name == "do_sys_openat2" and module is None:
            return addr, name
    for addr, kind, name, module in KALLSYMS:
        if kind == "T" and module is None and addr:
            return addr, name
    pytest.skip("no global text symbol in /proc/kallsyms")


@pytest.fixture(scope="module")
def ksyms() -> KernelSymbols:
    return KernelSymbols()


@needs_kallsyms
def test_kernel_function_and_offset(ksyms: KernelSymbols) -> None:
    addr, name = known_kernel_function()
    sym = ksyms.resolve(addr)
    assert sym is not None
    assert sym.name in names_at(addr)
    assert (sym.offset, sym.module, sym.address) == (0, None, addr)
    inside = ksyms.resolve(addr + 4)
    assert inside == Symbol(sym.name, 4, None, addr + 4)
    assert str(inside) == f"{sym.name}+0x4"
    if name == "do_sys_openat2" and names_at(addr) == {name}:
        assert ksym(addr + 0x1C) == "do_sys_openat2+0x1c"


@needs_kallsyms
def test_kernel_symbolizer_and_ksym_agree(ksyms: KernelSymbols) -> None:
    addr, _ = known_kernel_function()
    expected = ksyms.resolve(addr + 2)
    assert Symbolizer(kernel=ksyms).resolve(addr + 2) == expected
    # a kernel address with a pid still resolves in the kernel
    assert Symbolizer(kernel=ksyms).resolve(addr + 2, pid=os.getpid()) == expected
    assert ksym(addr + 2) == str(expected)


@needs_kallsyms
def test_kernel_module_symbol(ksyms: KernelSymbols) -> None:
    listed = [(a, n, m) for a, kind, n, m in KALLSYMS if m is not None and kind in "tT" and a]
    if not listed:
        pytest.skip("no module or BPF program symbols in /proc/kallsyms")
    addr, _, module = listed[0]
    sym = ksyms.resolve(addr + 1)
    assert sym is not None
    assert sym.module == module and sym.offset == 1
    assert sym.name in names_at(addr)
    assert str(sym) == f"{sym.name}+0x1 [{module}]"


@needs_kallsyms
def test_kernel_address_below_every_symbol(ksyms: KernelSymbols) -> None:
    lowest = min(a for a, kind, *_ in KALLSYMS if a and kind not in "aAU")
    assert ksyms.resolve(lowest - 1) is None
    assert ksyms.resolve(0) is None
    assert Symbolizer(kernel=ksyms).resolve(0x1000) is None  # no pid: a kernel address


@needs_kallsyms
def test_kernel_bad_addresses(ksyms: KernelSymbols) -> None:
    with pytest.raises(ValueError):
        ksyms.resolve(-1)
    with pytest.raises(ValueError):
        ksyms.resolve(1 << 64)
    with pytest.raises(TypeError):
        ksyms.resolve("0xffff")  # type: ignore[arg-type]


def test_kernel_restricted_copy(tmp_path: Path) -> None:
    """The restricted form of the real file: every address 0, as kptr_restrict shows it."""
    hidden = tmp_path / "kallsyms"
    with open("/proc/kallsyms") as src, open(hidden, "w") as dst:
        for line in src:
            dst.write("0" * 16 + line[line.index(" ") :])
    with pytest.raises(KernelSymbolsRestrictedError) as ei:
        KernelSymbols(str(hidden))
    err = ei.value
    assert isinstance(err, PermissionError) and isinstance(err, BpfError)
    assert isinstance(err, SymbolizeError)
    assert err.errno == errno.EACCES
    assert "kptr_restrict" in str(err)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read kallsyms as another user")
def test_kernel_restricted_as_unprivileged_reader(tmp_path: Path) -> None:
    out = subprocess.run(
        ["cat", "/proc/kallsyms"], user=65534, capture_output=True, check=True
    ).stdout
    if any(int(line.split()[0], 16) for line in out.splitlines()[:1000]):
        pytest.skip("kallsyms shows addresses to unprivileged users here (perf_event_paranoid)")
    path = tmp_path / "kallsyms"
    path.write_bytes(out)
    with pytest.raises(KernelSymbolsRestrictedError):
        KernelSymbols(str(path))


def test_kernel_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        KernelSymbols(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(SymbolizeError):
        KernelSymbols(str(empty))


# --- user space: this process ---------------------------------------------------------------


def test_libc_getpid_in_this_process() -> None:
    addr = ctypes.cast(ctypes.CDLL(None).getpid, ctypes.c_void_p).value
    assert addr
    sym = Symbolizer().resolve(addr, pid=os.getpid())
    assert sym is not None
    assert sym.name in ("getpid", "__getpid")
    assert sym.offset == 0 and sym.address == addr
    assert sym.module is not None and sym.module.startswith("libc")
    assert sym.path is not None and os.path.basename(sym.path) == sym.module
    assert str(sym) == f"{sym.name}+0x0 [{sym.module}]"


def test_no_such_process_gives_none() -> None:
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) + 1
    s = Symbolizer()
    assert s.resolve(0x400000, pid=pid) is None
    assert s.resolve_stack([0x400000, 0], pid=pid) == [None]


def test_bad_arguments() -> None:
    s = Symbolizer()
    with pytest.raises(ValueError):
        s.resolve(-5, pid=os.getpid())
    with pytest.raises(ValueError):
        s.resolve(0x1000, pid=-1)
    with pytest.raises(TypeError):
        s.resolve(0x1000, pid="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Symbolizer(max_pids=0)


def test_anonymous_memory_gives_none() -> None:
    buf = mmap.mmap(-1, 1 << 16)
    try:
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        assert Symbolizer().resolve(addr + 8, pid=os.getpid()) is None
    finally:
        del addr
        buf.close()


@contextmanager
def mapped(path: Path) -> Iterator[int]:
    """Map ``path`` into this process; yield the address of its first byte."""
    with open(path, "r+b") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    try:
        ref = ctypes.c_char.from_buffer(m)
        yield ctypes.addressof(ref)
        del ref
    finally:
        m.close()


def test_new_mapping_found_without_refresh(tmp_path: Path) -> None:
    s = Symbolizer()
    getpid = ctypes.cast(ctypes.CDLL(None).getpid, ctypes.c_void_p).value
    assert getpid is not None
    assert s.resolve(getpid, pid=os.getpid()) is not None  # caches this process's maps
    data = tmp_path / "blob.bin"
    data.write_bytes(b"not an ELF file" * 1000)
    with mapped(data) as addr:
        sym = s.resolve(addr + 0x123, pid=os.getpid())
        assert sym == Symbol("", 0x123, "blob.bin", addr + 0x123)
        assert str(sym) == "blob.bin+0x123"
        s.refresh(os.getpid())
        assert s.resolve(addr + 1, pid=os.getpid()) == Symbol("", 1, "blob.bin", addr + 1)
    s.refresh()
    s.clear()
    assert s.resolve(getpid, pid=os.getpid()) is not None


def test_vdso() -> None:
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    base = libc.getauxval(33)  # AT_SYSINFO_EHDR
    if not base:
        pytest.skip("no vDSO in this process")
    with open("/proc/self/maps") as f:
        vdso = [line for line in f if line.rstrip().endswith("[vdso]")]
    start, end = (int(x, 16) for x in vdso[0].split()[0].split("-"))
    with open("/proc/self/mem", "rb", buffering=0) as mem:
        mem.seek(start)
        image = mem.read(end - start)
    names = {"__vdso_clock_gettime", "__kernel_clock_gettime", "clock_gettime"}
    elf = ElfFile(image)
    vaddr = next((elf.address_of(n) for n in names if elf.address_of(n) is not None), None)
    if vaddr is None:
        pytest.skip("the vDSO has no clock_gettime symbol")
    sym = Symbolizer().resolve(base + vaddr + 1, pid=os.getpid())
    assert sym is not None and sym.module == "[vdso]"
    assert sym.name in names and sym.offset == 1
    assert str(sym).endswith(" [vdso]")


# --- user space: a program built here -------------------------------------------------------

needs_gcc = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("strip") is None, reason="needs gcc and strip"
)


def nm_address(binary: Path, name: str) -> int:
    out = subprocess.run(["nm", str(binary)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise AssertionError(f"{name} not in nm {binary}")


def readelf_loads(binary: Path) -> list[tuple[int, int, int]]:
    """(offset, vaddr, filesz) of the LOAD program headers, from readelf."""
    out = subprocess.run(
        ["readelf", "-lW", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    loads = []
    for line in out.splitlines():
        m = re.match(r"\s*LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)", line)
        if m:
            loads.append((int(m[1], 16), int(m[2], 16), int(m[3], 16)))
    return loads


def file_offset_of(binary: Path, vaddr: int) -> int:
    for offset, start, filesz in readelf_loads(binary):
        if start <= vaddr < start + filesz:
            return vaddr - start + offset
    raise AssertionError(f"{vaddr:#x} is in no LOAD segment of {binary}")


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("gcc") is None or shutil.which("strip") is None:
        pytest.skip("needs gcc and strip")
    d = tmp_path_factory.mktemp("symtarget")
    src = str(HELPERS / "symtarget.c")
    cc = ["gcc", "-O1", "-g", "-Wl,--build-id=sha1", "-o"]
    t = {"pie": d / "symtarget-pie", "nopie": d / "symtarget-nopie"}
    subprocess.run([*cc, str(t["pie"]), "-fPIE", "-pie", src], check=True)
    subprocess.run([*cc, str(t["nopie"]), "-fno-pie", "-no-pie", src], check=True)
    t["stripped"] = d / "symtarget-stripped"
    subprocess.run(["strip", "-o", str(t["stripped"]), str(t["pie"])], check=True)
    # separate debug file, found by build ID under <debugroot>/.build-id/xx/yyyy.debug
    dbg = d / "full.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(t["pie"]), str(dbg)], check=True)
    build_id = re.search(
        r"Build ID: ([0-9a-f]+)",
        subprocess.run(
            ["readelf", "-n", str(t["pie"])], capture_output=True, text=True, check=True
        ).stdout,
    )
    assert build_id
    hexid = build_id[1]
    t["debugroot"] = d / "debugroot"
    (t["debugroot"] / ".build-id" / hexid[:2]).mkdir(parents=True)
    shutil.copy(dbg, t["debugroot"] / ".build-id" / hexid[:2] / f"{hexid[2:]}.debug")
    # MiniDebugInfo: the symbol table, xz-compressed in a .gnu_debugdata section
    xz = d / "mini.xz"
    xz.write_bytes(lzma.compress(dbg.read_bytes(), format=lzma.FORMAT_XZ))
    t["mini"] = d / "symtarget-mini"
    subprocess.run(
        ["objcopy", f"--add-section=.gnu_debugdata={xz}", str(t["stripped"]), str(t["mini"])],
        check=True,
    )
    return t


@contextmanager
def running(binary: Path) -> Iterator[tuple[int, int, int]]:
    """Run the target; yield (pid, function address, object address) while it waits."""
    proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        fn, obj, _ = proc.stdout.readline().split()
        yield proc.pid, int(fn, 16), int(obj, 16)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


@needs_gcc
@pytest.mark.parametrize("kind", ["pie", "nopie"])
def test_target_function_and_object(targets: dict[str, Path], kind: str) -> None:
    binary = targets[kind]
    s = Symbolizer()
    with running(binary) as (pid, fn, obj):
        sym = s.resolve(fn, pid=pid)
        assert sym == Symbol(FN, 0, binary.name, fn)
        assert sym is not None and sym.path == str(binary)
        assert s.resolve(fn + 3, pid=pid) == Symbol(FN, 3, binary.name, fn + 3)
        assert s.resolve(obj + 8, pid=pid) == Symbol(OBJ, 8, binary.name, obj + 8)
        assert str(s.resolve(fn + 2, pid=pid)) == f"{FN}+0x2 [{binary.name}]"
        if kind == "nopie":
            assert fn == nm_address(binary, FN)  # loaded at its link-time address


@needs_gcc
def test_stripped_falls_back_to_file_offset(targets: dict[str, Path]) -> None:
    """PIE: the fallback offset is the file offset, which for the data object differs from
    its link-time address."""
    pie, stripped = targets["pie"], targets["stripped"]
    fn_off = file_offset_of(pie, nm_address(pie, FN))
    obj_off = file_offset_of(pie, nm_address(pie, OBJ))
    assert obj_off != nm_address(pie, OBJ)
    s = Symbolizer(debug_dirs=())
    with running(stripped) as (pid, fn, obj):
        sym = s.resolve(fn + 2, pid=pid)
        assert sym == Symbol("", fn_off + 2, stripped.name, fn + 2)
        assert str(sym) == f"{stripped.name}+0x{fn_off + 2:x}"
        assert s.resolve(obj, pid=pid) == Symbol("", obj_off, stripped.name, obj)
        stack = s.resolve_stack([fn, 0, obj, 0, 0], pid=pid)
        assert [x.offset if x else None for x in stack] == [fn_off, obj_off]


@needs_gcc
def test_stripped_with_debug_file(targets: dict[str, Path]) -> None:
    stripped = targets["stripped"]
    s = Symbolizer(debug_dirs=[str(targets["debugroot"])])
    with running(stripped) as (pid, fn, obj):
        assert s.resolve(fn + 1, pid=pid) == Symbol(FN, 1, stripped.name, fn + 1)
        assert s.resolve(obj, pid=pid) == Symbol(OBJ, 0, stripped.name, obj)


@needs_gcc
def test_stripped_with_minidebuginfo(targets: dict[str, Path]) -> None:
    mini = targets["mini"]
    with running(mini) as (pid, fn, _):
        assert Symbolizer(debug_dirs=()).resolve(fn, pid=pid) == Symbol(FN, 0, mini.name, fn)


@needs_gcc
@pytest.mark.skipif(os.geteuid() != 0, reason="/proc/PID/map_files needs CAP_SYS_ADMIN")
def test_deleted_binary(targets: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "symtarget-deleted"
    shutil.copy(targets["pie"], copy)
    with running(copy) as (pid, fn, _):
        copy.unlink()
        assert Symbolizer().resolve(fn + 1, pid=pid) == Symbol(FN, 1, copy.name, fn + 1)


@needs_gcc
def test_resolve_stack_mixed(targets: dict[str, Path]) -> None:
    binary = targets["pie"]
    s = Symbolizer()
    with running(binary) as (pid, fn, obj):
        raw = struct.pack("=4Q", fn + 1, obj, 0, 0)
        assert s.resolve_stack(raw, pid=pid) == [
            Symbol(FN, 1, binary.name, fn + 1),
            Symbol(OBJ, 0, binary.name, obj),
        ]
        if not KALLSYMS_HIDDEN:
            kaddr, _ = known_kernel_function()
            out = s.resolve_stack([kaddr + 1, fn, 0], pid=pid)
            assert out[0] is not None and out[0].module is None and out[0].offset == 1
            assert out[1] == Symbol(FN, 0, binary.name, fn)
            assert kaddr >= KERNEL_ADDRESS_MIN


# --- the ELF reader -------------------------------------------------------------------------


@needs_gcc
def test_elf_reader_matches_nm_and_readelf(targets: dict[str, Path]) -> None:
    for kind in ("pie", "nopie"):
        binary = targets[kind]
        elf = ElfFile(binary)
        assert elf.has_symtab and elf.build_id
        assert elf.address_of(FN) == nm_address(binary, FN)
        assert elf.address_of(OBJ) == nm_address(binary, OBJ)
        loads = readelf_loads(binary)
        assert [(g.offset, g.vaddr, g.filesz) for g in elf.segments] == loads
        assert elf.lookup(nm_address(binary, FN) + 5) == (FN, 5)
    stripped = ElfFile(targets["stripped"])
    assert not stripped.has_symtab and stripped.address_of(FN) is None
    assert ElfFile(targets["mini"]).address_of(FN) == nm_address(targets["pie"], FN)


def build_elf(endian: str, symbols: list[tuple[str, int, int, int]]) -> bytes:
    """A minimal ELF64 ET_DYN with one PT_LOAD (file offset 0x1000 -> vaddr 0x401000)
    and a .symtab of (name, value, size, type) entries, in either byte order."""
    e = "<" if endian == "little" else ">"
    strtab = b"\0"
    syms = [struct.pack(e + "IBBHQQ", 0, 0, 0, 0, 0, 0)]
    for name, value, size, stype in symbols:
        syms.append(struct.pack(e + "IBBHQQ", len(strtab), (1 << 4) | stype, 0, 1, value, size))
        strtab += name.encode() + b"\0"
    symtab = b"".join(syms)
    shstr = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
    text = b"\x90" * 0x100
    ehsize, phsize = 64, 56
    off_text = 0x1000
    off_symtab = off_text + len(text)
    off_strtab = off_symtab + len(symtab)
    off_shstr = off_strtab + len(strtab)
    off_sh = (off_shstr + len(shstr) + 7) & ~7
    shdr = e + "IIQQQQIIQQ"
    sections = [
        struct.pack(shdr, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack(shdr, 1, 1, 6, 0x401000, off_text, len(text), 0, 0, 16, 0),
        struct.pack(shdr, 7, 2, 0, 0, off_symtab, len(symtab), 3, 1, 8, 24),
        struct.pack(shdr, 15, 3, 0, 0, off_strtab, len(strtab), 0, 0, 1, 0),
        struct.pack(shdr, 23, 3, 0, 0, off_shstr, len(shstr), 0, 0, 1, 0),
    ]
    ident = b"\x7fELF" + bytes([2, 1 if e == "<" else 2, 1]) + b"\0" * 9
    ehdr = ident + struct.pack(
        e + "HHIQQQIHHHHHH", 3, 62, 1, 0, ehsize, off_sh, 0, ehsize, phsize, 1, 64, 5, 4
    )
    phdr = struct.pack(e + "IIQQQQQQ", 1, 5, off_text, 0x401000, 0x401000, 0x100, 0x100, 0x1000)
    image = bytearray(off_sh + 64 * len(sections))
    image[0:64] = ehdr
    image[64 : 64 + phsize] = phdr
    image[off_text:off_symtab] = text
    image[off_symtab:off_strtab] = symtab
    image[off_strtab:off_shstr] = strtab
    image[off_shstr : off_shstr + len(shstr)] = shstr
    image[off_sh:] = b"".join(sections)
    return bytes(image)


@pytest.mark.parametrize("endian", ["little", "big"])
def test_elf_reader_both_byte_orders(endian: str) -> None:
    image = build_elf(
        endian,
        [
            ("outer", 0x401000, 0x80, 2),
            ("inner", 0x401010, 0x10, 2),
            ("__alias", 0x401040, 0x20, 2),
            ("alias", 0x401040, 0x20, 2),
            ("label", 0x4010A0, 0, 2),
            ("table", 0x4010C0, 0x20, 1),
        ],
    )
    elf = ElfFile(image)
    assert elf.segments[0].offset == 0x1000 and elf.segments[0].vaddr == 0x401000
    assert elf.vaddr_for_offset(0x1004) == 0x401004
    assert elf.vaddr_for_offset(0x2000) is None
    assert elf.lookup(0x401004) == ("outer", 4)
    assert elf.lookup(0x401018) == ("inner", 8)  # innermost wins
    assert elf.lookup(0x401020) == ("outer", 0x20)
    assert elf.lookup(0x401041) == ("alias", 1)  # fewer leading underscores
    assert elf.lookup(0x4010A0) == ("label", 0)  # size 0: only its own address
    assert elf.lookup(0x4010A1) is None
    assert elf.lookup(0x4010DF) == ("table", 0x1F)
    assert elf.lookup(0x4010E0) is None
    assert elf.lookup(0x400FFF) is None


def test_elf_reader_pathological_tables() -> None:
    """Thousands of section headers all naming one big symbol table whose string table has
    no NUL: parsed once, names cut, in bounded time."""
    e = "<"
    nsyms, nsec = 20000, 3000
    strtab = b"A" * (1 << 20)
    symtab = b"".join(
        struct.pack(e + "IBBHQQ", 1 + (i * 37) % 99991, 0x12, 0, 1, 0x1000 + 16 * i, 16)
        for i in range(nsyms)
    )
    off_str = 64
    off_sym = off_str + len(strtab)
    off_sh = off_sym + len(symtab)
    shdr = e + "IIQQQQIIQQ"
    sections = [
        struct.pack(shdr, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack(shdr, 0, 3, 0, 0, off_str, len(strtab), 0, 0, 1, 0),
    ] + [struct.pack(shdr, 0, 2, 0, 0, off_sym, len(symtab), 1, 0, 8, 24)] * nsec
    ident = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    ehdr = ident + struct.pack(
        e + "HHIQQQIHHHHHH", 3, 62, 1, 0, 0, off_sh, 0, 64, 56, 0, 64, len(sections), 1
    )
    elf = ElfFile(ehdr + strtab + symtab + b"".join(sections))
    assert len(elf) == nsyms
    hit = elf.lookup(0x1000 + 16 * 5 + 3)
    assert hit is not None and hit[1] == 3 and len(hit[0]) == 4096


def test_elf_reader_rejects_non_elf(tmp_path: Path) -> None:
    with pytest.raises(ElfError) as ei:
        ElfFile(b"#!/bin/sh\necho hello\n")
    assert ei.value.errno == errno.ENOEXEC and isinstance(ei.value, ValueError)
    with pytest.raises(ElfError):
        ElfFile(b"")
    with pytest.raises(ElfError, match="ELF64 only"):
        ElfFile(b"\x7fELF\x01\x01\x01" + b"\0" * 60)
    with pytest.raises(FileNotFoundError):
        ElfFile(tmp_path / "missing")
    with pytest.raises(ElfError, match="not a regular file"):
        ElfFile(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ElfError, match="not a regular file"):
        ElfFile(fifo)  # must not block waiting for a writer


@needs_gcc
def test_elf_reader_truncated_copies(targets: dict[str, Path], tmp_path: Path) -> None:
    data = targets["pie"].read_bytes()
    for cut in (0, 4, 16, 63, 64, 200, len(data) // 2, len(data) - 64, len(data) - 1):
        with pytest.raises(ElfError):
            ElfFile(data[:cut])
    cut_file = tmp_path / "truncated"
    cut_file.write_bytes(data[: len(data) - 100])
    with pytest.raises(ElfError, match="truncated"):
        ElfFile(cut_file)


@needs_gcc
def test_corrupt_mapped_file_falls_back(targets: dict[str, Path], tmp_path: Path) -> None:
    """A corrupt ELF file mapped in a process: module+offset, no exception."""
    data = bytearray(targets["pie"].read_bytes())
    struct.pack_into("<Q", data, 0x28, len(data) * 4)  # e_shoff past the end
    struct.pack_into("<Q", data, 0x20, 1 << 60)  # e_phoff past the end
    bad = tmp_path / "corrupt.so"
    bad.write_bytes(bytes(data))
    with pytest.raises(ElfError):
        ElfFile(bad)
    with mapped(bad) as addr:
        sym = Symbolizer().resolve(addr + 0x40, pid=os.getpid())
        assert sym == Symbol("", 0x40, "corrupt.so", addr + 0x40)


def mutate(rng: random.Random, data: bytes, hot: list[tuple[int, int]]) -> bytes:
    """One random corruption: flipped bytes (mostly in headers and tables), large field
    values, or a cut."""
    buf = bytearray(data)
    choice = rng.random()
    if choice < 0.15:
        return bytes(buf[: rng.randrange(len(buf))])
    for _ in range(rng.randint(1, 8)):
        lo, hi = rng.choice(hot) if rng.random() < 0.85 else (0, len(buf))
        pos = rng.randrange(lo, max(lo + 1, min(hi, len(buf))))
        if choice < 0.6:
            buf[pos] ^= 1 << rng.randrange(8)
        elif choice < 0.8:
            buf[pos] = rng.choice((0x00, 0xFF, 0x7F, 0x80))
        else:
            value = rng.choice((0, 1, 0xFFFF, 0xFFFFFFFF, (1 << 64) - 1, len(buf), 1 << 40))
            pos = min(pos, len(buf) - 8)
            buf[pos : pos + 8] = value.to_bytes(8, "little")
    return bytes(buf)


@needs_gcc
def test_fuzz_elf_reader(targets: dict[str, Path]) -> None:
    """Random corruptions of a real ELF file: ElfFile either parses or raises ElfError,
    and queries on what it parsed never raise."""
    data = targets["pie"].read_bytes()
    e_phoff, e_shoff = struct.unpack_from("<QQ", data, 0x20)
    e_shnum = struct.unpack_from("<H", data, 0x3C)[0]
    hot = [(0, 64), (e_phoff, e_phoff + 56 * 13), (e_shoff, e_shoff + 64 * e_shnum)]
    for _, _, _, _, offset, size, *_ in (
        struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + 64 * i) for i in range(e_shnum)
    ):
        if size and offset + size <= len(data):
            hot.append((offset, offset + min(size, 4096)))
    rng = random.Random(20240611)
    parsed = rejected = 0
    deadline = time.monotonic() + 60  # bound the run; reaching it is not a failure
    for _ in range(400):
        if time.monotonic() > deadline:
            break
        sample = mutate(rng, data, hot)
        try:
            elf = ElfFile(sample)
        except ElfError:
            rejected += 1
            continue
        parsed += 1
        for probe in (0, 0x1000, 0x1159, len(sample), 1 << 63, (1 << 64) - 1):
            vaddr = elf.vaddr_for_offset(probe)
            elf.lookup(probe if vaddr is None else vaddr)
        elf.address_of(FN)
        assert len(elf) >= 0
    assert parsed and rejected  # both outcomes were exercised
