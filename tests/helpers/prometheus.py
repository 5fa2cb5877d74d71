"""A real Prometheus server and promtool for the exporter tests: Debian's 'prometheus'
package, fetched with 'apt-get download' and unpacked with 'dpkg-deb -x' into the
git-ignored build/prometheus/ (once; 'make prometheus' does the same).

Run as a script to fetch it: python tests/helpers/prometheus.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "prometheus"
BIN = CACHE / "root" / "usr" / "bin"


def binaries() -> tuple[Path, Path] | str:
    """(prometheus, promtool), fetched on first use; or why they cannot be had here."""
    prom, tool = BIN / "prometheus", BIN / "promtool"
    if prom.exists() and tool.exists():
        return prom, tool
    for exe in ("apt-get", "dpkg-deb"):
        if shutil.which(exe) is None:
            return f"{exe} is not installed: cannot fetch Debian's prometheus package"
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(
            ["apt-get", "download", "prometheus"], cwd=tmp, capture_output=True, text=True
        )
        debs = list(Path(tmp).glob("prometheus_*.deb"))
        if got.returncode != 0 or not debs:
            upd = subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
            got = subprocess.run(
                ["apt-get", "download", "prometheus"], cwd=tmp, capture_output=True, text=True
            )
            debs = list(Path(tmp).glob("prometheus_*.deb"))
            if got.returncode != 0 or not debs:
                return (
                    "cannot fetch Debian's prometheus package: "
                    f"{(got.stderr or upd.stderr).strip().splitlines()[-1:]}"
                )
        staging = CACHE / "root.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(staging)], check=True)
        shutil.rmtree(CACHE / "root", ignore_errors=True)
        staging.rename(CACHE / "root")
    if not (prom.exists() and tool.exists()):
        return "Debian's prometheus package has no usr/bin/prometheus and promtool"
    return prom, tool


if __name__ == "__main__":
    found = binaries()
    if isinstance(found, str):
        sys.exit(found)
    print(*found)
