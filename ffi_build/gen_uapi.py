"""Generate the uapi enums from the pinned libbpf's kernel headers: one source, two outputs.

Reads ``include/uapi/linux/bpf.h`` and ``include/uapi/linux/btf.h`` from the pinned libbpf
release tarball (vendor/libbpf-<version>.tar.gz, fetched and verified by vendor/libbpf.py)
and writes:

* ``src/tinybpf/_uapi.py``: the public open IntEnums (BpfMapType, BpfProgType,
  BpfAttachType, BpfLinkType, BtfKind) with the headers' values;
* ``ffi_build/uapi_enums.py``: the cdef text of the same enums (names only, ``...``: the
  compiler supplies the values), which libbpf_cdef.py includes.

tests/test_uapi.py checks that running this again gives the checked-in files and that every
value equals the one the compiler gave the extension. A libbpf bump is one command::

    python ffi_build/gen_uapi.py          # after vendor/libbpf.py fetch of the new pin

``--check`` exits 1 (printing which file differs) instead of writing.
"""

from __future__ import annotations

import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY_OUT = ROOT / "src" / "tinybpf" / "_uapi.py"
CDEF_OUT = HERE / "uapi_enums.py"


@dataclass(frozen=True)
class Spec:
    """One C enum: where it is, and what Python calls it (``py`` None: cdef only)."""

    header: str  # bpf.h or btf.h (include/uapi/linux/)
    c_name: str  # the enum's tag; "" for the anonymous enum holding `first`
    first: str  # its first member (finds an anonymous enum)
    prefix: str  # the C prefix Python member names drop
    py: str | None = None
    doc: str = ""
    missing: str = ""  # member that unknown values read as (default: UNKNOWN_<n>)


SPECS = (
    Spec(
        "bpf.h",
        "bpf_map_type",
        "BPF_MAP_TYPE_UNSPEC",
        "BPF_MAP_TYPE_",
        "BpfMapType",
        """``enum bpf_map_type``.

    Example::

        counts = tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, 1024)
        assert obj.maps["events"].type == tinybpf.BpfMapType.RINGBUF
    """,
    ),
    Spec(
        "bpf.h",
        "bpf_prog_type",
        "BPF_PROG_TYPE_UNSPEC",
        "BPF_PROG_TYPE_",
        "BpfProgType",
        """``enum bpf_prog_type``.

    Example::

        if tinybpf.probe_prog_type(tinybpf.BpfProgType.XDP):
            print(obj.program("xdp_pass").type.name)   # "XDP"
    """,
    ),
    Spec(
        "bpf.h",
        "bpf_attach_type",
        "BPF_CGROUP_INET_INGRESS",
        "BPF_",
        "BpfAttachType",
        """``enum bpf_attach_type`` (names without the ``BPF_`` prefix).

    Example::

        prog = obj.program("count_egress")   # before obj.load()
        prog.expected_attach_type = tinybpf.BpfAttachType.CGROUP_INET_EGRESS
    """,
    ),
    Spec("bpf.h", "bpf_stats_type", "BPF_STATS_RUN_TIME", "BPF_STATS_"),
    Spec(
        "bpf.h",
        "bpf_link_type",
        "BPF_LINK_TYPE_UNSPEC",
        "BPF_LINK_TYPE_",
        "BpfLinkType",
        """``enum bpf_link_type``.

    Example::

        xdp = [li for li in tinybpf.loaded_links() if li.type == tinybpf.BpfLinkType.XDP]
        print(link.info.type.name)   # e.g. "PERF_EVENT" for a kprobe link
    """,
    ),
    Spec(
        "btf.h",
        "",
        "BTF_KIND_UNKN",
        "BTF_KIND_",
        "BtfKind",
        """BTF type kinds (``BTF_KIND_*``). Unknown kinds read as ``UNKN``.

    Example::

        tid = btf.find("task_struct", tinybpf.BtfKind.STRUCT)
        assert btf.type(tid).kind is tinybpf.BtfKind.STRUCT
    """,
        missing="UNKN",
    ),
)


def _skipped(name: str) -> bool:
    """Bounds and deprecated aliases: not members (an alias would rename its value)."""
    return name.startswith(("__MAX", "NR_")) or name.endswith(("_MAX", "_DEPRECATED"))


def _enum_body(text: str, spec: Spec) -> str:
    if spec.c_name:
        m = re.search(rf"^enum {spec.c_name} \{{(.*?)^\}};", text, re.S | re.M)
    else:
        m = re.search(rf"^enum \{{([^}}]*\b{spec.first}\b.*?)^\}};", text, re.S | re.M)
    if m is None:
        raise SystemExit(f"gen_uapi: enum {spec.c_name or spec.first} not found in {spec.header}")
    return m.group(1)


def parse_enum(text: str, spec: Spec) -> list[tuple[str, int]]:
    """(name, value) of every member, in the header's order, values evaluated as C does."""
    body = re.sub(r"/\*.*?\*/|//[^\n]*", "", _enum_body(text, spec), flags=re.S)
    values: dict[str, int] = {}
    out: list[tuple[str, int]] = []
    nxt = 0
    for item in (i.strip() for i in body.split(",")):
        if not item:
            continue
        name, _, expr = (p.strip() for p in item.partition("="))
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise SystemExit(f"gen_uapi: cannot read enum member {item!r}")
        if expr:
            words = re.sub(r"[A-Za-z_]\w*", lambda w: str(values[w.group(0)]), expr)
            if not re.fullmatch(r"[0-9xXa-fA-F\s()+\-<|]*", words):
                raise SystemExit(f"gen_uapi: cannot evaluate {item!r}")
            nxt = int(eval(words, {"__builtins__": {}}))  # digits and operators only
        values[name] = nxt
        out.append((name, nxt))
        nxt += 1
    return out


def _wrap(names: list[str], indent: str, width: int = 92) -> list[str]:
    lines: list[str] = []
    cur = indent
    for n in names:
        piece = n + ","
        if len(cur) + len(piece) + 1 > width and cur.strip():
            lines.append(cur.rstrip())
            cur = indent
        cur += piece + " "
    lines.append(cur.rstrip())
    return lines


def render(version: str, headers: dict[str, str]) -> tuple[str, str]:
    """(the Python module, the cdef module) for these header texts."""
    parsed = [(s, parse_enum(headers[s.header], s)) for s in SPECS]
    header = [
        f"# generated from libbpf {version} include/uapi/linux/bpf.h and .../btf.h",
        "# by ffi_build/gen_uapi.py; do not edit (after a libbpf bump: run that script)",
    ]

    cdef = [
        *header,
        '"""The uapi enums for the cdef: names only, the C compiler supplies the values."""',
        "",
        'UAPI_ENUMS = """',
    ]
    for spec, members in parsed:
        names = [n for n, _ in members if not _skipped(n)] + ["..."]
        head = f"enum {spec.c_name} {{" if spec.c_name else "enum {"
        if len(", ".join(names)) + len(head) < 90:
            cdef.append(f"{head} {', '.join(names)} }};")
        else:
            cdef += [head, *_wrap(names[:-1], "    "), "    ...", "};"]
    cdef += ['"""', ""]

    public = [s for s, _ in parsed if s.py]
    py = [
        *header,
        '"""The kernel\'s uapi enums as open IntEnums, from the pinned libbpf\'s headers.',
        "",
        "An open enum turns a value newer than this table (a map or program type added by a",
        "later kernel) into a pseudo-member named ``UNKNOWN_<n>`` instead of raising, so",
        "objects using new kernel features still load. tests/test_uapi.py checks every value",
        'against the one the C compiler gave the extension."""',
        "",
        "from __future__ import annotations",
        "",
        "from enum import IntEnum",
        "from typing import Any",
        "",
        "__all__ = [" + ", ".join(f'"{s.py}"' for s in sorted(public, key=lambda s: s.py or "")),
    ]
    py[-1] += "]"
    py += [
        "",
        "",
        "class _OpenIntEnum(IntEnum):",
        '    """An IntEnum that turns unknown values into ``UNKNOWN_<n>`` pseudo-members."""',
        "",
        "    @classmethod",
        "    def _missing_(cls, value: object) -> Any:",
        "        if not isinstance(value, int) or isinstance(value, bool):",
        "            return None",
        "        pseudo = int.__new__(cls, value)",
        '        pseudo._name_ = f"UNKNOWN_{value}"',
        "        pseudo._value_ = value",
        "        return pseudo",
    ]
    for spec, members in parsed:
        if not spec.py:
            continue
        py += ["", "", f"class {spec.py}(_OpenIntEnum):", f'    """{spec.doc}"""', ""]
        for name, value in members:
            if not _skipped(name):
                py.append(f"    {name.removeprefix(spec.prefix)} = {value}")
        if spec.missing:
            py += [
                "",
                "    @classmethod",
                "    def _missing_(cls, value: object) -> Any:",
                f"        return cls.{spec.missing} if isinstance(value, int) else None",
            ]
    return "\n".join(py) + "\n", "\n".join(cdef)


def read_headers(version: str) -> dict[str, str]:
    """bpf.h and btf.h from the pinned release tarball (the verified source of truth)."""
    sys.path.insert(0, str(ROOT / "vendor"))
    import libbpf as vendor_libbpf  # vendor/libbpf.py

    tarball = vendor_libbpf.tarball_path(version)
    if not tarball.exists():
        raise SystemExit(f"gen_uapi: {tarball} is missing: run `python vendor/libbpf.py fetch`")
    out: dict[str, str] = {}
    with tarfile.open(tarball) as tar:
        for name in ("bpf.h", "btf.h"):
            member = tar.extractfile(f"libbpf-{version}/include/uapi/linux/{name}")
            assert member is not None
            out[name] = member.read().decode()
    return out


def pinned_version() -> str:
    return (ROOT / ".libbpf-version").read_text().split()[0]


def main(argv: list[str]) -> int:
    version = pinned_version()
    py_text, cdef_text = render(version, read_headers(version))
    stale = [p for p, t in ((PY_OUT, py_text), (CDEF_OUT, cdef_text)) if _read(p) != t]
    if "--check" in argv:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is not what ffi_build/gen_uapi.py generates")
        return 1 if stale else 0
    for p, t in ((PY_OUT, py_text), (CDEF_OUT, cdef_text)):
        p.write_text(t)
    return 0


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
