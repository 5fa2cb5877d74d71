"""The library tells the truth when a kernel refuses: tinybpf's own diagnosis of EPERM on
load (what it checked: capabilities, lockdown, the program type probe) instead of libbpf's
generic "try raising 'ulimit -l'" (which stays in ``libbpf_log``), and LSM programs refused
at attach where the kernel would never run them ('bpf' missing from the active LSMs).

Which case a kernel shows depends on the kernel: each test asks the probe first
(tests/helpers/kernel.py). ``make kernels`` runs this file on 5.10 (no bpf LSM by default)
and newer kernels (bpf LSM active, iter/bpf_map_elem accepted).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.kernel import (
    bpf_lsm_inactive_reason,
    iterator_unavailable_reason,
    lsm_load_unavailable_reason,
)

import tinybpf

pytestmark = pytest.mark.root

SRC = Path(tinybpf.__file__).resolve().parent.parent


def _skip_if(reason: str | None) -> None:
    if reason:
        pytest.skip(reason)


class TestEpermOnLoad:
    def _refused_iterator(self) -> None:
        reason = iterator_unavailable_reason("bpf_map_elem")
        if reason is None or "EPERM" not in reason:
            pytest.skip(
                "this kernel loads iter/bpf_map_elem programs: no program type refusal "
                f"with EPERM to diagnose (probe: {reason or 'loads'})"
            )

    def _check(self, e: tinybpf.BpfError) -> None:
        assert isinstance(e, tinybpf.BpfPermissionError)
        msg = e.message
        assert "'dump_elem'" in msg and "iter/bpf_map_elem" in msg
        assert "checked:" in msg and "capabilities" in msg and "lockdown" in msg
        assert "probe_prog_type(TRACING)" in msg
        assert "ulimit" not in msg
        # libbpf's own messages are kept in the log
        assert "dump_elem" in (e.libbpf_log or "")

    def test_refused_program_type_open_then_load(self, obj_path):
        self._refused_iterator()
        obj = tinybpf.open(obj_path("attach_iter"))
        try:
            with pytest.raises(tinybpf.BpfPermissionError) as ei:
                obj.load()
            self._check(ei.value)
        finally:
            obj.close()

    def test_refused_program_type_one_call_load(self, obj_path):
        self._refused_iterator()
        with pytest.raises(tinybpf.BpfPermissionError) as ei:
            tinybpf.load(obj_path("attach_iter"))
        self._check(ei.value)

    def test_missing_capabilities_are_named(self, obj_path):
        # as root without any capability (setpriv clears the bounding set before exec):
        # every kernel refuses the load with EPERM, and the message says why
        code = (
            "import sys, tinybpf\n"
            "try:\n"
            f"    tinybpf.load({str(obj_path('attach_xdp'))!r})\n"
            "except tinybpf.BpfPermissionError as e:\n"
            "    print(e.message)\n"
            "    sys.exit(0)\n"
            "sys.exit('loaded without capabilities')\n"
        )
        env = dict(os.environ, PYTHONPATH=str(SRC))
        r = subprocess.run(
            ["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        msg = r.stdout
        assert "lacks CAP_BPF" in msg and "CAP_SYS_ADMIN" in msg, msg
        assert "checked: capabilities (none of" in msg, msg
        assert "ulimit" not in msg


class TestLsmNotActive:
    def _lsm_inactive(self) -> str:
        _skip_if(lsm_load_unavailable_reason())
        reason = bpf_lsm_inactive_reason()
        if reason is None:
            pytest.skip("'bpf' is an active LSM on this kernel: LSM programs run (test_lsm)")
        if "unreadable" in reason:
            pytest.skip(reason)
        return reason

    def _loaded(self, obj_path, tmp_path) -> tuple[tinybpf.BpfObject, Path]:
        f = tmp_path / "denied"
        f.write_text("x")
        obj = tinybpf.open(obj_path("attach_lsm"))
        obj.globals["target_pid"] = os.getpid()
        obj.globals["denied_ino"] = os.stat(f).st_ino
        obj.load()
        return obj, f

    def test_attach_raises_naming_the_boot_parameter(self, obj_path, tmp_path):
        self._lsm_inactive()
        obj, _ = self._loaded(obj_path, tmp_path)
        try:
            prog = obj.program("deny_open")
            for attach in (prog.attach_lsm, prog.attach):
                with pytest.raises(tinybpf.BpfNotSupportedError, match=r"lsm=\S*,bpf"):
                    attach()
        finally:
            obj.close()

    def test_opt_out_attaches_and_the_program_never_runs(self, obj_path, tmp_path):
        self._lsm_inactive()
        obj, f = self._loaded(obj_path, tmp_path)
        try:
            with obj.program("deny_open").attach_lsm(require_active=False):
                assert f.read_text() == "x"  # not refused: the bpf LSM is not called
            assert int(obj.globals["refused"]) == 0
        finally:
            obj.close()
