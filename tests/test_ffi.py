"""The cffi extension: declared layouts realize, libbpf is static and private, versions."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tinybpf._libbpf_cffi as ext
from tinybpf._libbpf_cffi import ffi, lib

import tinybpf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ffi_build"))
from libbpf_cdef import CDEF  # noqa: E402

STRUCTS = sorted(set(re.findall(r"\bstruct\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{", CDEF)))


def test_cdef_declares_structs():
    assert len(STRUCTS) >= 10
    assert {"bpf_map_info", "bpf_prog_info", "btf_type", "bpf_object_open_opts"} <= set(STRUCTS)


@pytest.mark.parametrize("name", STRUCTS)
def test_every_declared_struct_realizes(name):
    # cffi checks a partial struct's declared fields against the compiler's layout when the
    # type is first realized: a drifted field would raise here
    size = ffi.sizeof(f"struct {name}")
    assert size > 0
    assert ffi.alignof(f"struct {name}") > 0


def test_opts_structs_start_with_sz():
    for name in STRUCTS:
        if name.endswith("_opts"):
            assert ffi.offsetof(f"struct {name}", "sz") == 0, name


def _so() -> str:
    return ext.__file__


@pytest.mark.skipif(shutil.which("nm") is None, reason="binutils 'nm' is not installed")
def test_extension_exports_only_its_init():
    out = subprocess.run(
        ["nm", "-D", "--defined-only", _so()], check=True, capture_output=True, text=True
    ).stdout
    symbols = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert symbols, out
    assert all(s.startswith("PyInit_") for s in symbols), symbols
    # libbpf's own functions are linked in but not visible to other libraries
    assert not any(s.startswith(("bpf_", "btf_", "libbpf_")) for s in symbols)


@pytest.mark.skipif(shutil.which("ldd") is None, reason="'ldd' is not installed")
def test_extension_does_not_link_a_libbpf_so():
    out = subprocess.run(["ldd", _so()], check=True, capture_output=True, text=True).stdout
    assert "libbpf" not in out
    # libbpf's own dependencies: the system's libelf and zlib (a build with the system
    # compiler), or linked in statically (the glibc-floor wheel of vendor/static_deps.py),
    # when the extension needs nothing but libc.
    needed = {line.split()[0] for line in out.splitlines() if line.strip()}
    if not any(n.startswith("libelf") for n in needed):
        assert b"invalid `Elf' handle" in Path(_so()).read_bytes()  # libelf's own messages
        others = {n for n in needed if not n.startswith(("linux-vdso", "/", "ld-linux"))}
        assert others == {"libc.so.6"}, out


def test_libbpf_version():
    # the first generation's format: libbpf's own version string, "v<major>.<minor>"
    assert tinybpf.libbpf_version() == "v1.7"
    assert (lib.libbpf_major_version(), lib.libbpf_minor_version()) == (1, 7)


def test_libbpf_release_is_the_pinned_full_version():
    pinned = (ROOT / ".libbpf-version").read_text().strip()
    assert tinybpf.libbpf_release() == pinned
    assert pinned.startswith(tinybpf.libbpf_version()[1:] + ".")


def test_version():
    assert tinybpf.version() == tinybpf.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", tinybpf.__version__)


def test_init_is_a_noop_and_rejects_a_path():
    tinybpf.init()
    tinybpf.init(None)
    with pytest.raises(tinybpf.BpfError, match="statically"):
        tinybpf.init("/usr/lib/libbpf.so.1")


def test_public_names_are_a_superset_of_the_first_generation():
    first = {
        "version", "init", "libbpf_version", "load", "open_pinned_map",
        "BpfObject", "BpfProgram", "BpfMap", "BpfLink", "BpfPerfBuffer", "BpfRingBuffer",
        "MapCollection", "ProgramCollection", "MapInfo", "ProgramInfo", "RingBufferEvent",
        "BtfType", "BtfField", "BpfMapType", "BpfProgType", "BtfKind", "BpfError",
        "BtfValidationError", "BPF_ANY", "BPF_NOEXIST", "BPF_EXIST",
    }  # fmt: skip
    assert first <= set(tinybpf.__all__)
    for name in tinybpf.__all__:
        assert hasattr(tinybpf, name), name


def test_py_typed_is_shipped():
    assert (Path(tinybpf.__file__).parent / "py.typed").exists()
