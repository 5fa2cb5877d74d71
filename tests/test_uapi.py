"""The uapi enums are generated from the pinned headers (ffi_build/gen_uapi.py), once for the
cdef and once for Python: the checked-in files are what the generator writes, and every
Python value is the one the C compiler gave the extension."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tinybpf
from tinybpf import _uapi
from tinybpf._core import lib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ffi_build"))

import gen_uapi  # noqa: E402

VERSION = gen_uapi.pinned_version()
TARBALL = ROOT / "vendor" / f"libbpf-{VERSION}.tar.gz"
needs_tarball = pytest.mark.skipif(
    not TARBALL.exists(), reason=f"{TARBALL.name} not fetched (python vendor/libbpf.py fetch)"
)

ENUMS = [s for s in gen_uapi.SPECS if s.py]


@needs_tarball
def test_checked_in_files_are_what_the_generator_writes() -> None:
    py_text, cdef_text = gen_uapi.render(VERSION, gen_uapi.read_headers(VERSION))
    assert (ROOT / "src" / "tinybpf" / "_uapi.py").read_text() == py_text
    assert (ROOT / "ffi_build" / "uapi_enums.py").read_text() == cdef_text
    done = subprocess.run(
        [sys.executable, str(ROOT / "ffi_build" / "gen_uapi.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs_tarball
@pytest.mark.parametrize("spec", ENUMS, ids=[s.py or "" for s in ENUMS])
def test_every_value_is_the_compilers(spec: gen_uapi.Spec) -> None:
    """Each member has the value cffi got from the C compiler for its C name, and the enum
    holds every member of the header but bounds and deprecated aliases."""
    cls = getattr(_uapi, spec.py or "")
    assert getattr(tinybpf, cls.__name__) is cls  # the public name is the generated class
    header = gen_uapi.read_headers(VERSION)[spec.header]
    names = [n for n, _ in gen_uapi.parse_enum(header, spec) if not gen_uapi._skipped(n)]
    assert [spec.prefix + n for n in cls.__members__] == names
    for name, member in cls.__members__.items():
        assert int(member) == getattr(lib, spec.prefix + name), name


def test_first_generation_members_keep_their_names_and_values() -> None:
    """A sample across the enums (public API since the first generation)."""
    assert tinybpf.BpfMapType.HASH == 1 and tinybpf.BpfMapType.RINGBUF == 27
    assert tinybpf.BpfMapType.CGROUP_STORAGE.name == "CGROUP_STORAGE"  # not ..._DEPRECATED
    assert tinybpf.BpfProgType.XDP == 6 and tinybpf.BpfProgType.NETFILTER == 32
    assert tinybpf.BpfAttachType.CGROUP_INET_INGRESS == 0
    assert tinybpf.BpfAttachType.TRACE_FSESSION == lib.BPF_TRACE_FSESSION
    assert tinybpf.BpfLinkType.SOCKMAP == 14
    assert tinybpf.BtfKind.ENUM64 == 19
    assert tinybpf.BpfMapType(999).name == "UNKNOWN_999"  # still open
    assert tinybpf.BtfKind(99) is tinybpf.BtfKind.UNKN


def test_parser_evaluates_c_enum_values() -> None:
    text = "enum x {\n\tA,\n\tB = 5, /* c */\n\tC,\n\tD = B,\n\tNR_X,\n\tX_MAX = NR_X - 1,\n};\n"
    spec = gen_uapi.Spec("h", "x", "A", "")
    assert gen_uapi.parse_enum(text, spec) == [
        ("A", 0),
        ("B", 5),
        ("C", 6),
        ("D", 5),
        ("NR_X", 6),
        ("X_MAX", 5),
    ]
