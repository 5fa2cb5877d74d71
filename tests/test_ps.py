"""'tinybpf ps': programs, maps and links with the processes holding them (from
/proc/*/fdinfo) and full program names (from BTF func info); 'tinybpf shell' completion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tinybpf
from tinybpf.tools.ps import ps_listing

pytestmark = pytest.mark.root

LONG = "count_getpid_calls_with_a_long_name"

HOLDER = """
import sys, time, tinybpf
with open("/proc/self/comm", "w") as f:
    f.write("tbpf-holder")
obj = tinybpf.load(sys.argv[1])
obj.attach_all()
print(obj.program(sys.argv[2]).kernel_info().id, obj.maps["ps_calls"].id,
      next(iter(obj.links.values())).info.id, flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(obj_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(obj_path("ergo_longname")), LONG],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line, "the holder process did not start"
        prog_id, map_id, link_id = map(int, line.split())
        yield proc.pid, prog_id, map_id, link_id
    finally:
        proc.kill()
        proc.wait()


def _by_id(rows: list[dict], obj_id: int) -> dict:
    return next(r for r in rows if r["id"] == obj_id)


def test_ps_lists_holders_and_full_names(holder, obj_path):
    pid, prog_id, map_id, link_id = holder
    with tinybpf.load(obj_path("ergo_longname")) as mine:
        my_prog = mine.program(LONG).kernel_info().id
        data = ps_listing()
    prog = _by_id(data["programs"], prog_id)
    assert prog["name"] == LONG  # the kernel's own name is cut to 15 characters
    assert tinybpf.open_program_by_id(prog_id).info.name == LONG[:15]
    assert prog["pids"] == [{"pid": pid, "comm": "tbpf-holder"}]
    assert prog["type"] == "TRACEPOINT"
    assert prog["attached"]  # the link of attach_all()
    assert _by_id(data["maps"], map_id)["pids"] == [{"pid": pid, "comm": "tbpf-holder"}]
    link = _by_id(data["links"], link_id)
    assert link["prog_id"] == prog_id
    assert link["pids"] == [{"pid": pid, "comm": "tbpf-holder"}]
    # this process's own object, held before the listing
    assert {"pid": os.getpid(), "comm": Path("/proc/self/comm").read_text().strip()} in _by_id(
        data["programs"], my_prog
    )["pids"]


def test_ps_cli_json_and_table(holder):
    pid, prog_id, _, _ = holder
    r = subprocess.run(
        [sys.executable, "-m", "tinybpf", "ps", "--json"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert _by_id(data["programs"], prog_id)["pids"][0]["pid"] == pid
    r = subprocess.run([sys.executable, "-m", "tinybpf", "ps"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith(f"{prog_id} "))
    assert LONG in line and f"tbpf-holder({pid})" in line


def test_ps_listing_time_is_reported(holder):
    # not a pass/fail on wall time (the machine is shared): printed for the record
    ps_listing()
    t0 = time.perf_counter()
    for _ in range(5):
        ps_listing()
    ms = (time.perf_counter() - t0) / 5 * 1000
    print(f"\nps_listing(): {ms:.1f} ms")


def test_ps_stays_light():
    """'tinybpf ps' is built on the public listings, whose modules import no map model,
    BTF model or codec (startup is most of the command's time)."""
    code = (
        "import sys; from tinybpf.tools.ps import ps_listing; ps_listing(); "
        "print(sorted(m for m in sys.modules if m.startswith('tinybpf')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(r.stdout))
    assert "tinybpf.introspect" in loaded  # the public listings
    assert not loaded & {"tinybpf.map", "tinybpf.btf", "tinybpf._codec", "tinybpf.object"}


def _all(completer, text: str) -> list[str]:
    out = []
    while (m := completer.complete(text, len(out))) is not None:
        out.append(m)
    return out


def test_shell_completer_completes_programs_maps_globals_and_keys(obj_path):
    from tinybpf.tools.shell import ShellCompleter

    with tinybpf.open(obj_path("minimal")) as obj:
        c = ShellCompleter({"obj": obj, "tinybpf": tinybpf})
        assert _all(c, "obj.handle_") == ["obj.handle_getpid"]
        assert "obj.config_map" in _all(c, "obj.config")
        assert "obj.magic" in _all(c, "obj.mag")  # a global variable
        assert _all(c, 'obj.maps["cou') == ['obj.maps["counter"]']
        assert _all(c, "obj.globals['bss") == ["obj.globals['bss_hits']"]
        assert _all(c, 'obj.programs["') == ['obj.programs["handle_getpid"]']
        assert _all(c, 'nothing["x') == []
        assert "tinybpf.load(" in _all(c, "tinybpf.loa")


def test_shell_tab_completes_in_a_terminal(obj_path):
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: the shell on a terminal
        os.execv(
            sys.executable, [sys.executable, "-m", "tinybpf", "shell", str(obj_path("minimal"))]
        )
    out = b""

    def read_until(marker: bytes, timeout: float = 20) -> None:
        nonlocal out
        deadline = time.monotonic() + timeout
        while marker not in out and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
        assert marker in out, out.decode(errors="replace")

    try:
        read_until(b">>> ")
        os.write(fd, b'print(len(obj.maps["coun\t')
        time.sleep(0.5)
        os.write(fd, b"))\n")
        read_until(b'obj.maps["counter"]')
        os.write(fd, b"\x04")
    finally:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
            time.sleep(0.1)
        else:
            if time.monotonic() >= deadline:  # never left alone waiting for input
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        os.close(fd)
