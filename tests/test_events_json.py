"""JSON lines out of the tools (--json of the event-printing examples, tinybpf.json_line)
and histograms with a section per key (bcc's section_header)."""

from __future__ import annotations

import ctypes
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.kernel import tracepoint_unavailable_reason

import tinybpf
from tinybpf import BpfMapType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("json_examples")

    def build(name: str) -> Path:
        r = subprocess.run(
            [sys.executable, "-m", "tinybpf", "compile", str(EXAMPLES / f"{name}.bpf.c"),
             "-o", f"{out}/"],
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        return out / f"{name}.bpf.o"

    return build


def _run_json(name: str, obj: Path, *args: str) -> list[dict]:
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--object", str(obj), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    lines = r.stdout.splitlines()
    assert lines, r.stderr
    return [json.loads(line) for line in lines]  # every line is one JSON object


@pytest.mark.root
def test_execsnoop_json_lines(built):
    _skip = tracepoint_unavailable_reason("syscalls", "sys_enter_execve")
    if _skip:
        pytest.skip(_skip)
    # only the children of this process (--ppid): other processes exec too on a shared host
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "execsnoop.py"), "--object", str(built("execsnoop")),
         "--json", "--ppid", str(os.getpid()), "--count", "3", "--seconds", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            subprocess.run(["/bin/true"], check=True)
            time.sleep(0.2)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    events = [json.loads(line) for line in out.splitlines()]  # every line one JSON object
    assert len(events) == 3
    for ev in events:
        assert set(ev) == {"pid", "ppid", "uid", "comm", "filename"}
        assert ev["ppid"] == os.getpid() and ev["filename"] == "/bin/true"
        assert isinstance(ev["pid"], int) and isinstance(ev["comm"], str)


@pytest.mark.root
def test_opensnoop_json_lines_with_nested_structs(built):
    _skip = tracepoint_unavailable_reason("syscalls", "sys_enter_openat")
    if _skip:
        pytest.skip(_skip)
    events = _run_json("opensnoop", built("opensnoop"), "--demo", "--seconds", "5", "--count", "60")
    assert len(events) == 60
    names = [ev for ev in events if "missing.txt" in json.dumps(ev)]
    assert names, events
    assert any(isinstance(v, dict) for v in events[0].values())  # the nested struct


def test_json_line_renders_btf_structs_bytes_and_enums():
    with tinybpf.Btf.from_vmlinux() as btf:
        TaskComm = btf.ctype("iphdr")
        hdr = TaskComm()
        hdr.version, hdr.ihl, hdr.ttl = 4, 5, 64
        d = json.loads(tinybpf.json_line(hdr))
    assert d["version"] == 4 and d["ihl"] == 5 and d["ttl"] == 64
    assert json.loads(tinybpf.json_line({"comm": b"bash\0\0\0", "raw": b"\xff\x00"})) == {
        "comm": "bash",
        "raw": "ff00",
    }
    assert json.loads(tinybpf.json_line(BpfMapType.HASH)) == 1  # an IntEnum is a number
    assert "\n" not in tinybpf.json_line({"a": [1, 2], "b": "x\ny"})
    with pytest.raises(TypeError, match="not JSON serializable"):
        tinybpf.json_line(object())


def test_hist_sections_text_layout():
    text = tinybpf.hist_sections_text(
        {("sdb", 0): 2, ("sda", 2): 4, ("sda", 3): 1}, "usecs", "disk"
    )
    assert text == (
        "\ndisk = sda\n"
        + tinybpf.log2_hist_text({2: 4, 3: 1}, "usecs")
        + "\ndisk = sdb\n"
        + tinybpf.log2_hist_text({0: 2}, "usecs")
    )
    linear = tinybpf.hist_sections_text([((1, 0), 3), ((1, 2), 1)], "ms", "cpu", kind="linear")
    assert linear == "\ncpu = 1\n" + tinybpf.linear_hist_text({0: 3, 2: 1}, "ms")
    assert tinybpf.hist_sections_text({}, "x") == ""
    with pytest.raises(TypeError, match="slot"):
        tinybpf.hist_sections_text({3: 1})


@pytest.mark.root
def test_hist_sections_from_a_map_keyed_by_struct():
    class Key(ctypes.Structure):
        _fields_ = [("cpu", ctypes.c_uint32), ("slot", ctypes.c_uint32)]

    m = tinybpf.create_map(BpfMapType.HASH, 8, 8, 64)
    try:
        hist = m.typed(key=Key, value=ctypes.c_uint64)
        for cpu, slot, n in [(0, 1, 5), (0, 4, 2), (1, 3, 7)]:
            hist[Key(cpu, slot)] = n
        out = io.StringIO()
        tinybpf.print_hist_sections(hist, "nsecs", "cpu", file=out)
        assert out.getvalue() == (
            "\ncpu = 0\n"
            + tinybpf.log2_hist_text({1: 5, 4: 2}, "nsecs")
            + "\ncpu = 1\n"
            + tinybpf.log2_hist_text({3: 7}, "nsecs")
        )
        hist.close()
    finally:
        m.close()
