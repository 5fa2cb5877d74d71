"""Malformed input never kills the interpreter.

Thousands of mutated object files (bit flips, truncations, ELF/section header, symbol,
relocation, instruction and BTF/BTF.ext corruption of the real fixtures, random bytes; see
tests/fuzz/objfuzz.py) go through ``tinybpf.open`` (from bytes and from a path), a walk of
the metadata (programs, maps, BTF, globals) and, as root, ``load()``. Every case must end in
a Python exception or a success. The cases run in worker subprocesses, so a crash in libbpf
kills a worker, not pytest: the test then reports the seed and case, and how to replay it.

A second stream feeds mutated raw BTF blobs to ``Btf.from_file`` + ``resolve`` + ``to_c``.
The hand-minimized inputs that crashed libbpf's btf_dump are kept as regression tests.

TINYBPF_FUZZ_CASES / TINYBPF_FUZZ_SEED change the size and seed of the bounded run;
tests/fuzz/campaign.py runs long campaigns (docs/reliability.md has the figures).
"""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
import textwrap
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ_DIR))

import campaign  # noqa: E402
import objfuzz  # noqa: E402

CASES = int(os.environ.get("TINYBPF_FUZZ_CASES", "2000"))
SEED = int(os.environ.get("TINYBPF_FUZZ_SEED", "1"))
BATCH = 500
JOBS = max(1, min(4, os.cpu_count() or 1))
IS_ROOT = os.geteuid() == 0


def _run(target: str, cases: int, seed: int) -> tuple[Counter, dict, list[dict]]:
    chunks = [(s, min(BATCH, cases - s)) for s in range(0, cases, BATCH)]
    total: Counter = Counter()
    examples: dict = {}
    failures: list[dict] = []
    with ThreadPoolExecutor(JOBS) as ex:
        futs = [ex.submit(campaign.run_batch, seed, s, c, target, 300.0) for s, c in chunks]
        for fut in futs:
            summary, failure = fut.result()
            if summary is not None:
                total.update(summary["outcomes"])
                for k, v in summary.get("examples", {}).items():
                    examples.setdefault(k, v)
            if failure is not None:
                failure["desc"] = objfuzz.make_case(seed, failure["index"], target)[1]
                failures.append(failure)
    return total, examples, failures


def _report(target: str, seed: int, failures: list[dict]) -> str:
    lines = []
    for f in failures:
        lines.append(
            f"{f['how']} at case {target}:{seed}:{f['index']} ({f['desc']})\n"
            f"  replay: python tests/fuzz/campaign.py --replay {target}:{seed}:{f['index']}"
            f" --save case.bin\n  stderr tail:\n" + textwrap.indent(f["stderr"][-1500:], "    ")
        )
    return "\n".join(lines)


def test_fixtures_parse_for_the_mutator():
    elfs = objfuzz.fixtures()
    assert len(elfs) >= 5
    for e in elfs:
        assert e.btf_types, f"{e.name}: no BTF types found"
        assert any(s.name == ".BTF" for s in e.sections)


def test_cases_are_reproducible():
    for target in objfuzz.TARGETS:
        for i in (0, 1, 17, 999):
            assert objfuzz.make_case(SEED, i, target) == objfuzz.make_case(SEED, i, target)
    assert objfuzz.make_case(SEED, 1)[0] != objfuzz.make_case(SEED, 2)[0]


def test_fuzz_open_and_load_never_kill_the_interpreter():
    total, examples, failures = _run("object", CASES, SEED)
    print(
        f"\nfuzz objects: seed {SEED}, {total['cases']} cases, load {'on' if IS_ROOT else 'off'}:"
        f" {json.dumps(dict(sorted(total.items())))}"
    )
    for k, v in sorted(examples.items()):
        print(f"  first {k}: {v}")
    assert not failures, _report("object", SEED, failures)
    assert total["cases"] == CASES
    # the mutations reach every stage: rejected at open, opened, and (root) loaded or not
    assert total["open:BpfError"] > CASES // 10
    assert total["open:ok"] > CASES // 10
    if IS_ROOT:
        assert total["load:ok"] > 0
        assert total["load:BpfError"] > 0


BTF_CASES = max(200, CASES // 2)


def test_fuzz_raw_btf_never_kills_the_interpreter():
    total, examples, failures = _run("btf", BTF_CASES, SEED)
    print(f"\nfuzz raw BTF: seed {SEED}, {total['cases']} cases: {dict(sorted(total.items()))}")
    for k, v in sorted(examples.items()):
        print(f"  first {k}: {v}")
    assert not failures, _report("btf", SEED, failures)
    assert total["btf:ok"] > 0 and total["btf:error"] > 0


# --------------------------------------------------------------------------- crashers


def _btf_blob(types: bytes, strings: bytes) -> bytes:
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


def _crasher_func_proto_bad_return() -> bytes:
    # [1] FUNC_PROTO returning type [2], which does not exist: btf__parse() checks the
    # parameters of a FUNC_PROTO but not its return type; btf_dump dereferences NULL.
    return _btf_blob(struct.pack("<III", 0, 13 << 24, 2), b"\0")


def _crasher_member_of_kind_var() -> bytes:
    # struct s { int a; <VAR v> b; } with b at bit 64: btf__align_of(VAR) is 0 and
    # btf_dump_emit_bit_padding() computes roundup(32, 0 * 8): SIGFPE.
    s = b"\0int\0v\0s\0a\0b\0"
    o = {n: s.index(n.encode() + b"\0") for n in ("int", "v", "s", "a", "b")}
    types = (
        struct.pack("<IIII", o["int"], 1 << 24, 4, (1 << 24) | 32)
        + struct.pack("<IIII", o["v"], 14 << 24, 1, 0)
        + struct.pack("<III", o["s"], (4 << 24) | 2, 16)
        + struct.pack("<III", o["a"], 1, 0)
        + struct.pack("<III", o["b"], 2, 64)
    )
    return _btf_blob(types, s)


def _crasher_member_of_zero_size_int() -> bytes:
    # the same with a 0-byte INT as the member type (btf__align_of() = min(8, 0) = 0)
    s = b"\0int\0z\0s\0a\0b\0"
    o = {n: s.index(n.encode() + b"\0") for n in ("int", "z", "s", "a", "b")}
    types = (
        struct.pack("<IIII", o["int"], 1 << 24, 4, 32)
        + struct.pack("<IIII", o["z"], 1 << 24, 0, 0)
        + struct.pack("<III", o["s"], (4 << 24) | 2, 16)
        + struct.pack("<III", o["a"], 1, 0)
        + struct.pack("<III", o["b"], 2, 64)
    )
    return _btf_blob(types, s)


def _crasher_pointer_to_itself() -> bytes:
    # [1] PTR -> [1]: btf_dump recurses without bound (stack overflow, SIGSEGV)
    return _btf_blob(struct.pack("<III", 0, 2 << 24, 1), b"\0")


CRASHERS = {
    "func_proto_bad_return_type": _crasher_func_proto_bad_return,
    "member_of_kind_var": _crasher_member_of_kind_var,
    "member_of_zero_size_int": _crasher_member_of_zero_size_int,
    "pointer_to_itself": _crasher_pointer_to_itself,
}

_CHILD = """
import sys, tinybpf
path = sys.argv[1]
try:
    btf = tinybpf.Btf.from_file(path)
except tinybpf.BpfError as e:
    print("rejected at parse:", e.errno); sys.exit(0)
try:
    for tid in range(1, len(btf) + 1):
        btf.resolve(tid)
except (tinybpf.BpfError, RecursionError) as e:
    print("resolve:", type(e).__name__)
try:
    text = btf.to_c()
    print("to_c:", len(text), "chars")
except tinybpf.BpfError as e:
    print("to_c rejected:", e)
"""


@pytest.mark.parametrize(
    "name",
    CRASHERS,
)
def test_btf_to_c_crashers(name, tmp_path):
    path = tmp_path / f"{name}.btf"
    path.write_bytes(CRASHERS[name]())
    p = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, timeout=60
    )
    print(f"{name}: exit {p.returncode}: {p.stdout.strip()}")
    assert p.returncode == 0, f"interpreter died: {campaign._signame(p.returncode)}\n{p.stderr}"
    assert "rejected" in p.stdout, p.stdout  # a BpfError, at parse or at to_c()


# --------------------------------------------------------------------------- hangs


def _patched(name: str, type_name: str, new_ref) -> bytes:
    """The fixture ``name`` with the type/size word of its BTF type ``type_name`` replaced
    by ``new_ref(type_id)``."""
    e = objfuzz.Elf(name, (objfuzz.BPF_BUILD / f"{name}.bpf.o").read_bytes())
    data = bytearray(e.data)
    str_off, _ = e.btf_str
    for t in e.btf_types:
        name_off = struct.unpack_from("<I", data, t.off)[0]
        start = str_off + name_off
        if bytes(data[start : data.index(0, start)]).decode() == type_name:
            struct.pack_into("<I", data, t.off + 8, new_ref(t.tid))
            return bytes(data)
    raise AssertionError(f"{type_name} not in {name}")


_LOAD_CHILD = """
import os, sys, time, tinybpf
data = open(sys.argv[1], "rb").read()
t0 = time.monotonic()
try:
    obj = tinybpf.open(data)
except tinybpf.BpfError as e:
    print("open rejected", e.errno); sys.exit(0)
try:
    obj.load()
    print("loaded", round(time.monotonic() - t0, 3))
except tinybpf.BpfError as e:
    print("load rejected", e.errno, round(time.monotonic() - t0, 3))
finally:
    obj.close()
"""


@pytest.mark.skipif(not IS_ROOT, reason="load() needs root")
def test_member_type_without_alignment_is_refused_before_load(tmp_path):
    # a 0-byte INT as a struct member type: libbpf's load divides by its alignment
    # (SIGFPE; object fuzz case 707777:4585, xdp_count's "unsigned char" made 0 bytes)
    path = tmp_path / "zero_int.bpf.o"
    path.write_bytes(_patched("xdp_count", "unsigned char", lambda tid: 0))
    p = subprocess.run(
        [sys.executable, "-c", _LOAD_CHILD, str(path)], capture_output=True, text=True, timeout=30
    )
    assert p.returncode == 0, f"{campaign._signame(p.returncode)}\n{p.stderr}"
    assert p.stdout.split() == ["open", "rejected", str(errno.EDOM)]


@pytest.mark.skipif(not IS_ROOT, reason="load() needs root")
def test_core_relocation_with_a_typedef_cycle_ends(tmp_path):
    # tests/bpf/rel_core.bpf.c reads task->tgid through the local typedef rel_pid_t
    path = tmp_path / "cycle.bpf.o"
    path.write_bytes(_patched("rel_core", "rel_pid_t", lambda tid: tid))
    try:
        p = subprocess.run(
            [sys.executable, "-c", _LOAD_CHILD, str(path)],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("open/load of an object with a typedef cycle did not end within 10 s")
    print(p.stdout)
    assert p.returncode == 0, p.stderr


_ENUM_CHILD = """
import resource, sys, time, tinybpf
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a runaway costs MemoryError
btf = tinybpf.Btf.from_file(sys.argv[1])
t0 = time.monotonic()
try:
    t = btf.resolve(1)
    print("resolved", t.kind.name, t.size, t.enum_values, round(time.monotonic() - t0, 3))
except tinybpf.BpfError as e:
    print("rejected", e)
"""


@pytest.mark.asan_incompatible  # ASan reserves terabytes of address space / quarantines frees
def test_enum_with_a_huge_size_is_described_quickly(tmp_path):
    strings = b"\0e\0A\0"
    types = struct.pack("<III", 1, (6 << 24) | 1, 0xFFFFFFFF) + struct.pack("<Ii", 3, 1)
    path = tmp_path / "enum.btf"
    path.write_bytes(_btf_blob(types, strings))
    p = subprocess.run(
        [sys.executable, "-c", _ENUM_CHILD, str(path)], capture_output=True, text=True, timeout=60
    )
    print(p.stdout, p.stderr[-500:])
    assert p.returncode == 0, p.stderr[-2000:]


def test_unnamed_scalar_member_becomes_hidden_storage(tmp_path):
    """Fuzzed BTF (object case 37 of seed 707702): a union with an unnamed member of a
    scalar type. C allows unnamed members only for structs and unions (promoted as
    anonymous); the ctypes type keeps the bytes as hidden storage instead of failing."""
    import ctypes

    import tinybpf

    s = b"\0int\0u\0a\0"
    o = {n: s.index(n.encode() + b"\0") for n in ("int", "u", "a")}
    types = (
        struct.pack("<IIII", o["int"], 1 << 24, 4, (1 << 24) | 32)
        # union u { int a; int <unnamed>; } (kind 5 = UNION, 2 members)
        + struct.pack("<III", o["u"], (5 << 24) | 2, 4)
        + struct.pack("<III", o["a"], 1, 0)
        + struct.pack("<III", 0, 1, 0)
    )
    path = tmp_path / "unnamed.btf"
    path.write_bytes(_btf_blob(types, s))
    btf = tinybpf.Btf.from_file(path)
    u = btf.ctype(btf.find_struct("u").type_id)
    assert ctypes.sizeof(u) == 4
    assert u._tinybpf_fields_ == ("a",)
    v = u()
    v.a = -5
    assert v.a == -5
