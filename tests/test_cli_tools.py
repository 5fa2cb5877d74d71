"""The command line's tools: compile, inspect, list/ps, btf dump, shell (as subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import bpf_obj

ROOT = Path(__file__).resolve().parent.parent


def run(
    *args: str, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinybpf", *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.parametrize(
    "sub", ["compile", "inspect", "list", "ps", "btf", "gen", "shell", "vmlinux", "version"]
)
def test_every_subcommand_has_help(sub: str) -> None:
    r = run(sub, "--help")
    assert r.returncode == 0
    assert "usage: tinybpf" in r.stdout


def test_compile_one_source_to_a_directory(tmp_path: Path) -> None:
    r = run("compile", "examples/execsnoop.bpf.c", "-o", f"{tmp_path}/", "-v")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "execsnoop.bpf.o"
    assert out.read_bytes()[:4] == b"\x7fELF"
    assert "execsnoop.bpf.o: ok" in r.stderr


def test_compile_many_sources_reports_progress_and_failures(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bpf.c"
    bad.write_text("this is not C\n")
    r = run("compile", "examples/execsnoop.bpf.c", str(bad), "-o", f"{tmp_path}/out/")
    assert r.returncode == 1
    assert "[1/2]" in r.stderr and "[2/2]" in r.stderr and "FAILED" in r.stderr
    assert (tmp_path / "out" / "execsnoop.bpf.o").exists()


def test_compile_passes_flags_through(tmp_path: Path) -> None:
    src = tmp_path / "flag.bpf.c"
    src.write_text(
        '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
        "#ifndef MUST_BE_SET\n#error flag missing\n#endif\n"
        'char LICENSE[] SEC("license") = "GPL";\n'
    )
    assert run("compile", str(src), "-o", f"{tmp_path}/").returncode == 1
    r = run("compile", str(src), "-o", f"{tmp_path}/", "--cflags=-DMUST_BE_SET")
    assert r.returncode == 0, r.stderr


def test_compile_missing_source_is_an_error() -> None:
    r = run("compile", "no/such/file.bpf.c")
    assert r.returncode == 1
    assert "source not found" in r.stderr


def test_inspect_shows_programs_maps_globals_and_license() -> None:
    r = run("inspect", str(bpf_obj("minimal")))
    assert r.returncode == 0, r.stderr
    assert "Programs" in r.stdout and "Maps" in r.stdout and "Global variables" in r.stdout
    assert "license: GPL" in r.stdout
    assert "TRACEPOINT" in r.stdout


def test_inspect_json_is_machine_readable() -> None:
    r = run("inspect", "--json", str(bpf_obj("maps")))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    names = {m["name"] for m in data["maps"]}
    assert names and all(isinstance(m["max_entries"], int) for m in data["maps"])
    assert data["programs"]


def test_inspect_missing_object_fails_cleanly() -> None:
    r = run("inspect", "/nonexistent.bpf.o")
    assert r.returncode == 1
    assert r.stderr.startswith("Error: BPF object file not found")


def test_btf_dump_c_and_json() -> None:
    r = run("btf", "dump", str(bpf_obj("minimal")))
    assert r.returncode == 0 and "#ifndef __VMLINUX_H__" in r.stdout
    r = run("btf", "dump", "--format", "json", str(bpf_obj("minimal")))
    types = json.loads(r.stdout)
    assert any(t["kind"] == "FUNC" for t in types)
    assert all({"id", "kind", "name"} <= t.keys() for t in types)


def test_btf_dump_vmlinux_to_file(tmp_path: Path) -> None:
    out = tmp_path / "v.h"
    r = run("btf", "dump", "vmlinux", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "struct task_struct {" in out.read_text()


@pytest.mark.root
def test_list_and_ps_find_a_loaded_program() -> None:
    import tinybpf

    with tinybpf.load(bpf_obj("minimal")) as obj:
        prog = next(iter(obj.programs.values()))
        with prog.attach():
            pid = prog.kernel_info().id
            r = run("list", "progs", "--json")
            assert r.returncode == 0, r.stderr
            rows = {row["id"]: row for row in json.loads(r.stdout)}
            assert pid in rows and rows[pid]["name"] == prog.name[:15]
            assert rows[pid]["attached"], "the attach point should be listed"
            r = run("ps")
            assert str(pid) in r.stdout
            r = run("list", "links", "--json")
            assert any(row["prog_id"] == pid for row in json.loads(r.stdout))
            r = run("list", "maps")
            assert r.returncode == 0 and "ID" in r.stdout


@pytest.mark.root
def test_list_shows_each_pin_under_its_own_object() -> None:
    """A pinned map, program and link each appear in the PINS of their own row only (the
    kernel answers any info call for any object, so the kind must come from the fd)."""
    import shutil
    import uuid

    from helpers.kernel import bpffs

    import tinybpf

    fs = bpffs()
    if fs is None:
        pytest.skip("no bpf filesystem mounted at /sys/fs/bpf (run 'make mounts')")
    d = fs / f"tinybpf-listpins-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    try:
        with tinybpf.load(bpf_obj("minimal")) as obj:
            prog = next(iter(obj.programs.values()))
            m = obj.maps["counter"]
            m.pin(str(d / "map"))
            prog.pin(str(d / "prog"))
            with prog.attach() as link:
                link.pin(str(d / "link"))
                ids = {
                    "maps": m.kernel_info().id,
                    "progs": prog.kernel_info().id,
                    "links": link.info.id,
                }
                pins = {}
                for kind in ("maps", "progs", "links"):
                    r = run("list", kind, "--json")
                    assert r.returncode == 0, r.stderr
                    pins[kind] = {row["id"]: row["pins"] for row in json.loads(r.stdout)}
                link.unpin()
        mine = {str(d / n) for n in ("map", "prog", "link")}
        for kind, want in (("maps", "map"), ("progs", "prog"), ("links", "link")):
            assert pins[kind][ids[kind]] == [str(d / want)], kind
            others = {p for oid, ps in pins[kind].items() if oid != ids[kind] for p in ps}
            assert not others & mine, (kind, others & mine)
        r = run("list", "maps")
        assert str(d / "map") in r.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_list_rejects_unknown_kinds() -> None:
    r = run("list", "widgets")
    assert r.returncode == 2


def test_shell_prints_summary_and_exits_on_eof() -> None:
    r = run("shell", str(bpf_obj("minimal")), input="print('names', sorted(obj.programs))\n")
    assert r.returncode == 0, r.stderr
    assert "Programs" in r.stdout
    assert "names [" in r.stdout
