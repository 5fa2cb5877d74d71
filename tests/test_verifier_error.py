"""BpfVerifierError: a program the verifier rejects (tests/bpf/prog_invalid.bpf.c reads
past the end of a 4-byte map value) raises a BpfError that is not a PermissionError, with
the verifier log, the failing program and a summary naming the instruction and source."""

from __future__ import annotations

import errno
import pickle
import subprocess
import sys

import pytest

import tinybpf
from tinybpf.errors import verifier_summary

pytestmark = pytest.mark.root


def _check(e: tinybpf.BpfVerifierError, path) -> None:
    assert isinstance(e, tinybpf.BpfError) and not isinstance(e, PermissionError)
    assert e.errno == errno.EACCES
    assert e.program == "out_of_bounds"
    assert "invalid access to map value" in e.log
    assert "processed" in e.log
    lines = e.summary.splitlines()
    assert lines[0].startswith("invalid access to map value, value_size=4 off=400")
    assert lines[1].startswith("  at insn ") and "(r0 +400)" in lines[1]
    assert lines[2] == "  source: return *(volatile __u32 *)(v + 100); (prog_invalid.bpf.c:23)"
    assert e.message.startswith(f"load '{path}' failed: ")
    assert "the verifier rejected program 'out_of_bounds'" in e.message
    assert e.summary in str(e)
    assert e.libbpf_log and "BEGIN PROG LOAD LOG" in e.libbpf_log


def test_load_raises_verifier_error_with_log_and_summary(obj_path):
    path = obj_path("prog_invalid")
    with pytest.raises(tinybpf.BpfVerifierError) as ei:
        tinybpf.load(path)
    _check(ei.value, path)


def test_open_then_load_keeps_the_log_on_the_program(obj_path):
    path = obj_path("prog_invalid")
    with tinybpf.open(path) as obj:
        prog = obj.program("out_of_bounds")
        assert prog.verifier_log == ""
        with pytest.raises(tinybpf.BpfVerifierError) as ei:
            obj.load()
        _check(ei.value, path)
        assert prog.verifier_log == ei.value.log


def test_requested_log_buffer_still_gives_a_verifier_error(obj_path):
    # with a log buffer of its own, libbpf does not print the log: it is read from the buffer
    path = obj_path("prog_invalid")
    with tinybpf.open(path) as obj:
        prog = obj.program("out_of_bounds")
        prog.request_verifier_log()
        with pytest.raises(tinybpf.BpfVerifierError) as ei:
            obj.load()
        assert "BEGIN PROG LOAD LOG" not in (ei.value.libbpf_log or "")
        assert "invalid access to map value" in ei.value.log
        assert prog.verifier_log == ei.value.log
        assert "(r0 +400)" in ei.value.summary


def test_verifier_error_pickles(obj_path):
    with pytest.raises(tinybpf.BpfVerifierError) as ei:
        tinybpf.load(obj_path("prog_invalid"))
    e2 = pickle.loads(pickle.dumps(ei.value))
    assert type(e2) is tinybpf.BpfVerifierError
    assert (e2.log, e2.program, e2.summary, e2.errno) == (
        ei.value.log,
        ei.value.program,
        ei.value.summary,
        ei.value.errno,
    )


def test_no_privilege_is_a_permission_error_not_a_verifier_error(obj_path):
    # as an unprivileged user the kernel refuses before any verification (EPERM)
    code = (
        "import os, sys, tinybpf, tinybpf.object, tinybpf.errors\n"
        f"data = open({str(obj_path('minimal'))!r}, 'rb').read()\n"
        "load, BpfError = tinybpf.load, tinybpf.BpfError\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    load(data, object_name='minimal')\n"
        "except BpfError as e:\n"
        "    print(type(e).__name__, e.errno)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    name, err = r.stdout.split()
    assert name == "BpfPermissionError" and int(err) == errno.EPERM


def test_summary_without_line_info():
    log = (
        "0: R1=ctx() R10=fp0\n"
        "0: (b7) r0 = 0                        ; R0_w=0\n"
        "1: (95) exit\n"
        "At program exit the register R0 has smin=0 smax=0 should have been in [1, 1]\n"
        "processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0\n"
    )
    assert verifier_summary(log) == (
        "At program exit the register R0 has smin=0 smax=0 should have been in [1, 1]\n"
        "  at insn 1: (95) exit"
    )
    assert verifier_summary("") == ""
