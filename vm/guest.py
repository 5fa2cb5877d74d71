"""Runs inside a ``make kernels`` VM (virtme-ng, the host's root file system read-only).

Mounts what the suite needs (tracefs, debugfs, bpffs, cgroup2, securityfs, tmpfs on /tmp
and /run/netns), records what the kernel says about itself (facts.json), runs pytest on the
kernel-dependent test files with a JUnit XML report, and leaves everything in OUTDIR (a
directory the host shared read-write). The exit status is pytest's.

Usage: guest.py OUTDIR IPDIR TEST_FILE...   (IPDIR: a newer iproute2's bin directory to put
first on PATH, or "-")
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _mounted() -> dict[str, str]:
    out = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out[parts[1]] = parts[2]
    return out


def _mount(fstype: str, target: str) -> None:
    if _mounted().get(target) == fstype:
        return
    os.makedirs(target, exist_ok=True)
    r = subprocess.run(["mount", "-t", fstype, fstype, target], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"guest: mount -t {fstype} {target}: {r.stderr.strip()}", flush=True)


def _writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        probe = Path(path) / ".tinybpf-probe"
        probe.write_text("x")
        probe.unlink()
        return True
    except OSError:
        return False


def setup() -> None:
    _mount("securityfs", "/sys/kernel/security")
    _mount("debugfs", "/sys/kernel/debug")
    _mount("tracefs", "/sys/kernel/tracing")
    _mount("bpf", "/sys/fs/bpf")
    if _mounted().get("/sys/fs/cgroup") != "cgroup2":
        _mount("cgroup2", "/sys/fs/cgroup")
    for d in ("/tmp", "/run/netns"):
        if not _writable(d):
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", d], check=False)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def facts() -> dict[str, object]:
    sys.path.insert(0, str(REPO / "tests"))
    from helpers import kernel

    return {
        "release": platform.release(),
        "lsm": _read("/sys/kernel/security/lsm"),
        "lockdown": _read("/sys/kernel/security/lockdown"),
        "cmdline": _read("/proc/cmdline"),
        "probes": kernel.feature_report(lambda name: print(f"guest: probe {name}", flush=True)),
    }


def say(msg: str) -> None:
    print(f"guest: {msg}", flush=True)


def main() -> int:
    out = Path(sys.argv[1])
    if sys.argv[2] != "-":
        os.environ["PATH"] = f"{sys.argv[2]}:{os.environ.get('PATH', '')}"
    tests = sys.argv[3:]
    say(f"{platform.release()}: results in {out}")
    out.mkdir(parents=True, exist_ok=True)
    setup()
    say("mounts done; probing features")
    os.chdir(REPO)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    os.environ["PYTHONUNBUFFERED"] = "1"  # pytest.log shows progress while the VM runs
    (out / "facts.json").write_text(json.dumps(facts(), indent=1) + "\n")
    cmd = [
        sys.executable, "-m", "pytest", "-v", "-ra", "--durations=25", "-p", "no:cacheprovider",
        f"--junitxml={out / 'junit.xml'}", *tests,
    ]  # fmt: skip
    say(f"running pytest on {len(tests)} test files/ids (progress in pytest.log)")
    with open(out / "pytest.log", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    say(f"pytest exit status {rc}")
    (out / "rc").write_text(f"{rc}\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
