"""tinybpf.trace_pipe() and 'tinybpf trace': bpf_printk() output read back parsed.

The fixture bpf_printk()s a marker with a random cookie when this process calls getppid().
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.kernel import tracefs, tracepoint_unavailable_reason

import tinybpf
from tinybpf.tracing import parse_trace_line


def _skip_without_tracefs() -> None:
    reason = tracepoint_unavailable_reason("syscalls", "sys_enter_getppid")
    if reason:
        pytest.skip(reason)
    if tracefs() is None or not (tracefs() / "trace_pipe").exists():  # type: ignore[operator]
        pytest.skip("tracefs has no trace_pipe")


@pytest.fixture
def printk(obj_path):
    _skip_without_tracefs()
    obj = tinybpf.load(obj_path("ergo_printk"))
    obj.globals["target_tgid"] = os.getpid()
    cookie = random.getrandbits(48)
    obj.globals["cookie"] = cookie
    try:
        yield obj, cookie
    finally:
        obj.close()


def _marker(cookie: int) -> str:
    return f"tinybpf-marker tgid={os.getpid()} cookie={cookie}"


@pytest.mark.root
def test_trace_pipe_yields_the_printk_marker_parsed(printk):
    obj, cookie = printk
    obj.attach_all()
    t0 = time.clock_gettime(time.CLOCK_BOOTTIME)
    os.getppid()
    found = None
    with tinybpf.trace_pipe(timeout=5) as pipe:
        for ev in pipe:
            if ev.message == _marker(cookie):
                found = ev
                break
    assert found is not None, "the marker never came through the trace pipe"
    assert found.event == "bpf_trace_printk"
    assert found.pid == os.getpid()  # the main thread: pid == tgid
    # the kernel's comm cache may miss: it then prints "<...>"
    assert found.task in (Path(f"/proc/{os.getpid()}/comm").read_text().strip(), "<...>")
    assert 0 <= found.cpu < os.cpu_count() * 64  # type: ignore[operator]
    assert found.flags
    assert abs(found.timestamp - t0) < 60  # trace clock: seconds since boot
    assert json.loads(json.dumps(found.to_dict()))["message"] == _marker(cookie)


@pytest.mark.root
def test_trace_pipe_timeout_ends_the_iteration():
    _skip_without_tracefs()
    t0 = time.monotonic()
    with tinybpf.trace_pipe(timeout=0.3) as pipe:
        for _ in pipe:
            pass  # other processes' lines, if any
    assert 0.25 <= time.monotonic() - t0 < 3


@pytest.mark.root
def test_trace_cli_json_prints_the_marker(printk):
    obj, cookie = printk
    obj.attach_all()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinybpf", "trace", "--json", "--timeout", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        os.getppid()
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    events = [json.loads(line) for line in out.splitlines()]
    mine = [e for e in events if e["message"] == _marker(cookie)]
    assert mine and mine[0]["pid"] == os.getpid() and mine[0]["event"] == "bpf_trace_printk"
    assert set(mine[0]) == {"task", "pid", "cpu", "flags", "timestamp", "event", "message"}


def test_parse_trace_line_formats():
    ev = parse_trace_line(
        "     kworker/0:1 H-1234   [003] d..31  2587.872946: bpf_trace_printk: a: b"
    )
    assert (ev.task, ev.pid, ev.cpu, ev.flags) == ("kworker/0:1 H", 1234, 3, "d..31")
    assert (ev.timestamp, ev.event, ev.message) == (2587.872946, "bpf_trace_printk", "a: b")
    # with the tgid column (options/record-tgid) and a task name holding a dash
    ev = parse_trace_line("  my-app-77 (   70) [000] .... 1.000001: bpf_trace_printk: x")
    assert (ev.task, ev.pid, ev.message) == ("my-app", 77, "x")
    lost = parse_trace_line("CPU:2 [LOST 17 EVENTS]")
    assert (lost.event, lost.cpu) == ("lost", 2)
    odd = parse_trace_line("something else entirely")
    assert (odd.event, odd.message, odd.cpu) == ("", "something else entirely", -1)


def test_trace_pipe_rejects_a_negative_timeout():
    with pytest.raises(ValueError, match="timeout"):
        tinybpf.TracePipe(timeout=-1)
