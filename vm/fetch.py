"""Fetch Debian kernels for the VM matrix (``make kernels``), never installing them.

Each kernel named on the command line (5.10, 6.1, 6.12, newest) is resolved to a Debian
image package through a private apt configuration (its own sources list, lists and cache
directories under the kernel cache; the machine's apt sources are never read or modified
for this). apt verifies every download against the suite's Release file, which it checks
with the Debian archive keyring (/usr/share/keyrings/debian-archive-keyring.gpg, from the
debian-archive-keyring package). The packages are unpacked with ``dpkg-deb -x`` into
``<cache>/<kernel>/root``: ``boot/vmlinuz-*`` and ``(usr/)lib/modules/<version>``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ARCHIVE = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


@dataclass(frozen=True)
class KernelSpec:
    name: str  # as given to make kernels
    suites: tuple[tuple[str, str], ...]  # (archive URI, suite)
    meta: str  # metapackage naming the newest image of that series
    prefix: str  # version prefix of the metapackage ("" = the newest)


SPECS = {
    "5.10": KernelSpec(
        "5.10",
        ((ARCHIVE, "bullseye"), (SECURITY, "bullseye-security")),
        "linux-image-amd64",
        "5.10.",
    ),
    "6.1": KernelSpec(
        "6.1", ((ARCHIVE, "bookworm"), (SECURITY, "bookworm-security")), "linux-image-amd64", "6.1."
    ),
    "6.12": KernelSpec(
        "6.12",
        ((ARCHIVE, "bookworm"), (SECURITY, "bookworm-security")),
        "linux-image-6.12-amd64",
        "6.12.",
    ),
    "newest": KernelSpec("newest", ((ARCHIVE, "sid"),), "linux-image-amd64", ""),
}


class FetchError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"kernels: {msg}", file=sys.stderr, flush=True)


def _apt_opts(aptdir: Path) -> list[str]:
    return [
        "-o", f"Dir::Etc::sourcelist={aptdir / 'sources.list'}",
        "-o", f"Dir::Etc::sourceparts={aptdir / 'parts'}",
        "-o", f"Dir::State::Lists={aptdir / 'lists'}",
        "-o", f"Dir::Cache={aptdir / 'cache'}",
        "-o", "APT::Sandbox::User=root",
        "-o", "Debug::NoLocking=1",
    ]  # fmt: skip


def _private_apt(spec: KernelSpec, aptdir: Path) -> list[str]:
    if not KEYRING.exists():
        raise FetchError(f"{KEYRING} is missing: apt-get install debian-archive-keyring")
    for sub in ("lists/partial", "parts", "cache/archives/partial"):
        (aptdir / sub).mkdir(parents=True, exist_ok=True)
    lines = [f"deb [signed-by={KEYRING}] {uri} {suite} main" for uri, suite in spec.suites]
    (aptdir / "sources.list").write_text("\n".join(lines) + "\n")
    opts = _apt_opts(aptdir)
    log(f"{spec.name}: apt-get update ({', '.join(s for _, s in spec.suites)})")
    subprocess.run(["apt-get", *opts, "-qq", "update"], check=True, stdout=subprocess.DEVNULL)
    return opts


def _version_key(v: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", v)]


def _resolve(spec: KernelSpec, opts: list[str]) -> list[str]:
    """Package names (name=version) to download: the image and what it splits into."""
    madison = subprocess.run(
        ["apt-cache", *opts, "madison", spec.meta], check=True, capture_output=True, text=True
    ).stdout
    versions = [
        parts[1].strip()
        for parts in (line.split("|") for line in madison.splitlines())
        if len(parts) >= 2 and parts[1].strip().startswith(spec.prefix)
    ]
    if not versions:
        raise FetchError(f"{spec.name}: no {spec.meta} {spec.prefix}* in {spec.suites}")
    best = max(versions, key=_version_key)
    todo = [f"{spec.meta}={best}"]
    out: list[str] = []
    while todo:
        pkg = todo.pop()
        shown = subprocess.run(
            ["apt-cache", *opts, "show", pkg], check=True, capture_output=True, text=True
        ).stdout.split("\n\n")[0]
        m = re.search(r"^Depends:\s*(.*)$", shown, re.M)
        for dep in m.group(1).split(",") if m else []:
            dm = re.match(r"\s*(linux-(?:image|binary|modules)-\S+)\s*\(=\s*([^)]+)\)", dep)
            if dm:
                todo.append(f"{dm.group(1)}={dm.group(2).strip()}")
        if pkg.split("=")[0] != spec.meta:
            out.append(pkg)
    return out


def fetch(name: str, cache: Path) -> Path:
    """The unpacked root of kernel ``name`` (cached); its boot/vmlinuz-* is the image."""
    spec = SPECS.get(name)
    if spec is None:
        raise FetchError(f"unknown kernel {name!r}: choose from {', '.join(SPECS)}")
    cache = cache.resolve()
    kdir = cache / name
    stamp = kdir / "packages.json"
    if stamp.exists() and _images(kdir / "root"):
        return kdir / "root"
    if kdir.exists():
        shutil.rmtree(kdir)
    kdir.mkdir(parents=True)
    opts = _private_apt(spec, cache / "apt" / name)
    pkgs = _resolve(spec, opts)
    debs = kdir / "debs"
    debs.mkdir()
    log(f"{name}: apt-get download {' '.join(pkgs)}")
    subprocess.run(["apt-get", *opts, "-qq", "download", *pkgs], check=True, cwd=debs)
    root = kdir / "root"
    root.mkdir()
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    if not _images(root):
        raise FetchError(f"{name}: no kernel image in {[d.name for d in debs.glob('*.deb')]}")
    shutil.rmtree(debs)
    stamp.write_text(json.dumps({"kernel": name, "packages": pkgs}, indent=1) + "\n")
    return root


def _codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def fetch_iproute2(cache: Path) -> Path | None:
    """The bin directory of iproute2 from this machine's release's backports suite (built
    for the machine's libraries; bookworm's own iproute2 6.1 cannot make netkit devices),
    unpacked under the cache; None when there is none. Only the VMs put it on PATH."""
    cache = cache.resolve()
    root = cache / "tools" / "iproute2"
    if (root / "usr" / "bin" / "ip").exists() or (root / "bin" / "ip").exists():
        return root / ("usr/bin" if (root / "usr" / "bin" / "ip").exists() else "bin")
    codename = _codename()
    if not codename:
        return None
    spec = KernelSpec("iproute2", ((ARCHIVE, f"{codename}-backports"),), "iproute2", "")
    try:
        opts = _private_apt(spec, cache / "apt" / "tools")
        madison = subprocess.run(
            ["apt-cache", *opts, "madison", "iproute2"], check=True, capture_output=True,
            text=True,
        ).stdout  # fmt: skip
        versions = [
            line.split("|")[1].strip() for line in madison.splitlines() if "backports" in line
        ]
        if not versions:
            return None
        dl = cache / "tools" / "debs"
        if dl.exists():
            shutil.rmtree(dl)
        dl.mkdir(parents=True)
        best = max(versions, key=_version_key)
        subprocess.run(
            ["apt-get", *opts, "-qq", "download", f"iproute2={best}"], check=True, cwd=dl
        )
        root.mkdir(parents=True, exist_ok=True)
        for deb in dl.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        shutil.rmtree(dl)
    except subprocess.CalledProcessError as e:
        log(f"no iproute2 from {codename}-backports ({e}): the VMs use the machine's")
        return None
    for d in (root / "usr" / "bin", root / "bin", root / "sbin"):
        if (d / "ip").exists():
            return d
    return None


def _images(root: Path) -> list[Path]:
    # bullseye/bookworm: boot/vmlinuz-<version>; sid: usr/lib/modules/<version>/vmlinuz
    return sorted(root.glob("boot/vmlinuz-*")) + sorted(root.glob("usr/lib/modules/*/vmlinuz"))


def image(root: Path) -> Path:
    """The kernel image inside an unpacked root."""
    return _images(root)[0]


if __name__ == "__main__":
    c = Path(sys.argv[1]).resolve()
    for k in sys.argv[2:]:
        print(image(fetch(k, c)))
