"""The examples, run as their users run them: each is compiled with ``tinybpf compile`` into a
temporary directory, then run as a subprocess with ``--demo`` and short bounds, and its output
is checked for what its demo must show (and its namespaces/cgroups for being gone after).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.kernel import (
    cgroup2_root,
    gcc_unavailable_reason,
    iterator_unavailable_reason,
    netns_unavailable_reason,
    prog_type_unavailable_reason,
    tracepoint_unavailable_reason,
    uprobe_unavailable_reason,
)

from tinybpf import BpfProgType

pytestmark = pytest.mark.root

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _skip_if(reason: str | None) -> None:
    if reason:
        pytest.skip(reason)


def _multiarch_include() -> str | None:
    """/usr/include/<triple>: <bpf/usdt.bpf.h> -> <linux/errno.h> -> <asm/errno.h> is there."""
    try:
        triple = subprocess.run(
            ["gcc", "-print-multiarch"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    d = Path("/usr/include") / triple
    return str(d) if triple and (d / "asm" / "errno.h").exists() else None


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build(name, *cflags) -> examples/<name>.bpf.c compiled (once) into a temporary dir."""
    out = tmp_path_factory.mktemp("examples")
    done: dict[str, Path] = {}

    def compile_example(name: str, *cflags: str) -> Path:
        if name not in done:
            r = subprocess.run(
                [sys.executable, "-m", "tinybpf", "compile", str(EXAMPLES / f"{name}.bpf.c"),
                 "-o", f"{out}/", *(f"--cflags={f}" for f in cflags)],
                capture_output=True,
                text=True,
            )  # fmt: skip
            assert r.returncode == 0, f"compiling {name}.bpf.c failed:\n{r.stdout}{r.stderr}"
            done[name] = out / f"{name}.bpf.o"
        return done[name]

    return compile_example


def run(name: str, obj: Path, *args: str, timeout: float = 30) -> tuple[int, str]:
    """Run examples/<name>.py to the end; returns (its pid, its stdout). Exit code 0 asserted."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--object", str(obj), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"{name}.py exited {proc.returncode}\n{out}\n{err}"
    return proc.pid, out


class Lines:
    """A running example whose stdout lines can be awaited with a timeout."""

    def __init__(self, name: str, obj: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / f"{name}.py"), "--object", str(obj), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.seen: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line)
        self._q.put(None)

    def wait_for(self, pattern: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        self.stop()
        pytest.fail(f"no line matching {pattern!r}; output so far:\n{''.join(self.seen)}")

    def finish(self, sig: int, timeout: float = 10) -> tuple[int, str]:
        """Send ``sig``; the exit code and the rest of stdout (within ``timeout``)."""
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"still running {timeout}s after signal {sig}:\n{''.join(self.seen)}")
        rest = []
        while (line := self._q.get(timeout=5)) is not None:
            rest.append(line)
        self.seen += rest
        return rc, "".join(self.seen)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def netns_names() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


# --- tracing ---------------------------------------------------------------------------------


def test_syscount_counts_the_demo_getppid_calls(build):
    _, out = run("syscount", build("syscount"), "--demo", "--seconds", "0.5")
    rows = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s+[\d.]+\s+\d+$", out, re.M)}
    assert rows.get("getppid", 0) >= 1000, out  # the demo makes 1000 of them
    hist = re.findall(r"^\s+(\d+) -> (\d+)\s+: (\d+)\s+\|", out, re.M)
    assert hist, out
    assert sum(int(c) for _, _, c in hist) >= 1000  # every timed call is in one slot
    assert "nsecs" in out


def test_uprobe_libc_shows_getenv_arguments_and_results(build):
    _skip_if(uprobe_unavailable_reason())
    pid, out = run("uprobe_libc", build("uprobe_libc"), "--demo", "--seconds", "5")
    calls = re.findall(r"^\s*(\d+)\s+\d+\s+\S+\s+(getenv\(.*\) = .*)$", out, re.M)
    assert (str(pid), 'getenv("TINYBPF_DEMO") = "hello from tinybpf"') in calls, out
    assert (str(pid), 'getenv("TINYBPF_NO_SUCH_VARIABLE") = NULL') in calls, out
    assert all(p == str(pid) for p, _ in calls), out  # the pid filter


def test_usdt_prints_the_probe_arguments(build):
    _skip_if(gcc_unavailable_reason() or uprobe_unavailable_reason())
    if not Path("/usr/include/sys/sdt.h").exists() and not any(
        Path("/usr/include").glob("*/sys/sdt.h")
    ):
        pytest.skip("<sys/sdt.h> is missing (install systemtap-sdt-dev)")
    inc = _multiarch_include()
    if inc is None:
        pytest.skip("no multiarch include directory with asm/errno.h for <bpf/usdt.bpf.h>")
    obj = build("usdt", f"-I{inc}")
    _, out = run("usdt", obj, "--demo", "--requests", "4", "--seconds", "5")
    hits = re.findall(r"tinybpf_app:request id=(\d+) latency_us=(\d+) path=(\S+)", out)
    assert hits == [
        ("1", "100", "/index.html"),
        ("2", "200", "/api/users"),
        ("3", "300", "/static/app.js"),
        ("4", "400", "/index.html"),
    ], out
    assert "usdt_app said: done" in out


def test_profile_finds_burn_cpu_on_top(build):
    _skip_if(gcc_unavailable_reason())
    _skip_if(prog_type_unavailable_reason(BpfProgType.PERF_EVENT, "perf_event programs"))
    _, out = run("profile", build("profile"), "--demo", "--seconds", "1", "--freq", "499")
    m = re.match(r"sampling pid \d+ at 499 Hz.*\n(\d+) samples", out)
    assert m and int(m[1]) >= 50, out  # 1 s at 499 Hz of one busy thread
    hottest = out.split("\n\n")[1]  # the first stack block: header line, then frames
    assert "profile_burn pid" in hottest, out
    frames = [f.strip() for f in hottest.splitlines()[1:]]
    user = frames[frames.index("--") + 1 :] if "--" in frames else frames
    assert user[:3] == ["burn_cpu [profile_burn]", "run_workload [profile_burn]",
                        "main [profile_burn]"], out  # fmt: skip


def test_taskdump_lists_this_process(build):
    _skip_if(iterator_unavailable_reason("task"))
    obj = build("taskdump")
    _, out = run("taskdump", obj, "--demo")
    comm = Path("/proc/self/comm").read_text().strip()
    mine = [r.split() for r in out.splitlines() if r.split()[:1] == [str(os.getpid())]]
    assert mine and mine[0][1] == str(os.getpid()) and mine[0][-1] == comm, out
    assert re.search(r"demo child \d+ \(sleep\) found", out), out
    # --pid restricts the iterator itself to one process
    _, out = run("taskdump", obj, "--pid", str(os.getpid()))
    rows = out.splitlines()[1:]
    assert [r.split()[0] for r in rows] == [str(os.getpid())], out


def test_asyncd_streams_then_shuts_down_on_sigterm(build):
    _skip_if(tracepoint_unavailable_reason("sched", "sched_process_exec"))
    d = Lines("asyncd", build("asyncd"), "--demo")
    try:
        d.wait_for(r"^exec pid=\d+ .*comm=(true|echo) file=/bin/(true|echo)$")
        rc, out = d.finish(signal.SIGTERM, timeout=5)
    finally:
        d.stop()
    assert rc == 0, out
    assert re.search(r"^shutdown: SIGTERM, \d+ events$", out, re.M), out


# --- networking ------------------------------------------------------------------------------


def test_xdp_counter_counts_per_protocol(build):
    _skip_if(netns_unavailable_reason())
    pid, out = run("xdp_counter", build("xdp_counter"), "--demo", "--seconds", "0",
                   "--packets", "7")  # fmt: skip
    rows = {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)\s+\d+$", out, re.M)}
    assert rows.get("IPv4/UDP") == 7, out
    assert rows.get("IPv4/TCP") == 1, out  # one SYN, answered by a RST
    assert rows.get("IPv4/ICMP") == 1, out  # one echo request
    assert "UDP: sent 7, received 7" in out  # XDP_PASS: all of them arrived
    assert f"tinybpf-xdpc{pid}-" not in netns_names()


def test_xdp_counter_removes_its_namespaces_on_sigterm(build):
    _skip_if(netns_unavailable_reason())
    p = Lines("xdp_counter", build("xdp_counter"), "--demo", "--seconds", "60")
    try:
        p.wait_for(r"^UDP: sent \d+, received")
        assert f"tinybpf-xdpc{p.proc.pid}-a" in netns_names()
        rc, out = p.finish(signal.SIGTERM)
    finally:
        p.stop()
    assert rc == 128 + signal.SIGTERM, out
    assert f"tinybpf-xdpc{p.proc.pid}-" not in netns_names()


def test_tc_drop_drops_only_the_configured_port(build):
    _skip_if(netns_unavailable_reason())
    pid, out = run("tc_drop", build("tc_drop"), "--demo", "--seconds", "0", "--port", "7007",
                   "--packets", "6")  # fmt: skip
    assert "UDP port 7007: sent 6, received 0" in out, out
    assert "UDP port 7008: sent 6, received 6" in out, out
    assert "dropped by BPF: 6 datagrams to port 7007" in out, out
    assert "passed: 6 other UDP datagrams" in out, out
    assert f"tinybpf-tcdrop{pid}-" not in netns_names()


def test_cgroup_egress_blocks_the_port_for_the_cgroup(build):
    root = cgroup2_root()
    _skip_if(None if root else "no writable cgroup v2 mount")
    pid, out = run("cgroup_egress", build("cgroup_egress"), "--demo", "--port", "9471",
                   "--packets", "4")  # fmt: skip
    assert re.search(r"127\.0\.0\.1:9471 \(blocked\): 0 sent, 4 refused with EPERM, 0 arrived",
                     out), out  # fmt: skip
    assert re.search(r"127\.0\.0\.1:\d+ \(allowed\): 4 sent, 0 refused with EPERM, 4 arrived",
                     out), out  # fmt: skip
    assert "BPF counters: 4 blocked, 4 other UDP allowed" in out
    assert not (root / f"tinybpf-cgegress-{pid}").exists()


def test_cgroup_egress_removes_its_cgroup_on_sigterm(build):
    root = cgroup2_root()
    _skip_if(None if root else "no writable cgroup v2 mount")
    p = Lines("cgroup_egress", build("cgroup_egress"), "--port", "9471", "--", "sleep", "60")
    try:
        p.wait_for(r"^blocking UDP to port 9471")
        cg = root / f"tinybpf-cgegress-{p.proc.pid}"
        assert cg.is_dir()
        deadline = time.monotonic() + 5
        while not (members := (cg / "cgroup.procs").read_text().split()):
            assert time.monotonic() < deadline, "the command never joined the cgroup"
            time.sleep(0.05)
        assert len(members) == 1  # the command, and only it
        assert Path(f"/proc/{members[0]}/comm").read_text().strip() == "sleep"
        rc, out = p.finish(signal.SIGTERM)
    finally:
        p.stop()
    assert rc == 128 + signal.SIGTERM, out
    assert not cg.exists()  # so the command was stopped too: a populated cgroup stays
