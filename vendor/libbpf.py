#!/usr/bin/env python3
"""Fetch, verify and build the pinned libbpf (our own script; libbpf itself is never committed).

Usage:
    python vendor/libbpf.py fetch      # tarball -> vendor/libbpf-<ver>.tar.gz (sha256-verified)
    python vendor/libbpf.py build      # static libbpf.a + headers under build/libbpf-<ver>/
    python vendor/libbpf.py paths      # print the include dir and libbpf.a path

Sources tried by ``fetch``, in order:
 1. ``TINYBPF_LIBBPF_SOURCE``: a local tarball (verified) or an extracted source tree (used as is);
 2. the cached tarball ``vendor/libbpf-<ver>.tar.gz`` (verified; the sdist carries it there);
 3. the upstream release tarball (the libbpf project's tag archive);
 4. the Debian source package of the same upstream version, through apt, with deb-src entries
    derived from this machine's own apt configuration (private lists directory; the machine's
    apt sources are never modified).
Every tarball is checked against ``vendor/checksums.txt`` before it is extracted.

The module is also imported by setup.py, so ``pip install .`` / ``pip wheel .`` build libbpf.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "vendor"
ENV_SOURCE = "TINYBPF_LIBBPF_SOURCE"
UPSTREAM_URL = "https://github.com/libbpf/libbpf/archive/refs/tags/v{version}.tar.gz"
DEBIAN_SUITES = ("unstable", "testing")


class FetchError(RuntimeError):
    pass


def pinned_version() -> str:
    return (ROOT / ".libbpf-version").read_text().strip()


def expected_sha256(version: str) -> str:
    for line in (VENDOR / "checksums.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == version:
            return parts[1].lower()
    raise FetchError(f"no sha256 for libbpf {version} in {VENDOR / 'checksums.txt'}")


def tarball_path(version: str) -> Path:
    return VENDOR / f"libbpf-{version}.tar.gz"


def source_dir(version: str) -> Path:
    override = os.environ.get(ENV_SOURCE)
    if override and Path(override).is_dir():
        return Path(override).resolve()
    return VENDOR / f"libbpf-{version}"


def build_dir(version: str) -> Path:
    """Where libbpf is built; a sanitizer build (TINYBPF_SANITIZE) or a zig cross build
    (TINYBPF_ZIG_TARGET, see vendor/static_deps.py) gets its own directory."""
    variant = os.environ.get("TINYBPF_SANITIZE", "")
    suffix = f"-{variant.replace(',', '-')}" if variant else ""
    target = os.environ.get("TINYBPF_ZIG_TARGET", "").strip()
    suffix += f"-{target}" if target else ""
    return ROOT / "build" / f"libbpf-{version}{suffix}"


def include_dir(version: str) -> Path:
    return build_dir(version) / "include"


def static_lib(version: str) -> Path:
    return build_dir(version) / "obj" / "libbpf.a"


def log(msg: str) -> None:
    print(f"[libbpf] {msg}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, version: str) -> None:
    want = expected_sha256(version)
    got = sha256_of(path)
    if got != want:
        raise FetchError(
            f"refusing {path}: sha256 {got} does not match the pinned sha256 {want} "
            f"of libbpf {version} (vendor/checksums.txt)"
        )


def _store(candidate: Path, version: str) -> Path:
    """Verify a downloaded tarball and move it into the vendor cache."""
    verify(candidate, version)
    dest = tarball_path(version)
    if candidate.resolve() != dest.resolve():
        tmp = dest.with_suffix(".part")
        shutil.copyfile(candidate, tmp)
        os.replace(tmp, dest)
    return dest


def _from_upstream(version: str, workdir: Path) -> Path:
    url = UPSTREAM_URL.format(version=version)
    out = workdir / "upstream.tar.gz"
    log(f"trying the upstream release tarball {url}")
    with urllib.request.urlopen(url, timeout=20) as resp, open(out, "wb") as f:
        shutil.copyfileobj(resp, f)
    return out


def _apt_archive_entries() -> list[tuple[str, str]]:
    """(URI, signed-by or "") of this machine's Debian archive, read from its apt config."""
    codename = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                codename = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    entries: list[tuple[str, str]] = []
    files = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
    for name in files:
        try:
            text = Path(name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            m = re.match(r"^deb(?:-src)?\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if not m:
                continue
            opts, uri, suite = m.group(1) or "", m.group(2), m.group(3)
            if codename and suite != codename:
                continue
            sb = re.search(r"signed-by=(\S+?)\]?(\s|$)", opts)
            entries.append((uri, sb.group(1) if sb else ""))
    for name in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = Path(name).read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            suites = fields.get("suites", "").split()
            if codename and codename not in suites:
                continue
            for uri in fields.get("uris", "").split():
                entries.append((uri, fields.get("signed-by", "")))
    seen: set[str] = set()
    unique = []
    for uri, sb in entries:
        if uri not in seen:
            seen.add(uri)
            unique.append((uri, sb))
    return unique


def debian_source(
    package: str, upstream: str, orig: str, workdir: Path, suites: tuple[str, ...] = DEBIAN_SUITES
) -> Path:
    """Download the ``orig`` tarball of Debian's source package ``package`` at upstream
    version ``upstream`` through apt (private sources file and lists; nothing verified here:
    the caller checks the sha256)."""
    if not shutil.which("apt-get"):
        raise FetchError("apt-get is not available")
    archives = _apt_archive_entries()
    if not archives:
        raise FetchError("no Debian archive found in this machine's apt configuration")
    lines = []
    for uri, signed_by in archives:
        opt = f"[signed-by={signed_by}] " if signed_by and "\n" not in signed_by else ""
        for suite in suites:
            lines.append(f"deb-src {opt}{uri} {suite} main")
    aptdir = workdir / "apt"
    (aptdir / "lists" / "partial").mkdir(parents=True)
    (aptdir / "parts").mkdir()
    (aptdir / "cache" / "archives" / "partial").mkdir(parents=True)
    (aptdir / "sources.list").write_text("\n".join(lines) + "\n")
    opts = [
        "-o", f"Dir::Etc::sourcelist={aptdir / 'sources.list'}",
        "-o", f"Dir::Etc::sourceparts={aptdir / 'parts'}",
        "-o", f"Dir::State::Lists={aptdir / 'lists'}",
        "-o", f"Dir::Cache={aptdir / 'cache'}",
        "-o", "APT::Sandbox::User=root",
        "-o", "Debug::NoLocking=1",
    ]  # fmt: skip
    log(f"trying Debian source packages of {package} ({', '.join(suites)}) through apt")
    subprocess.run(["apt-get", *opts, "-qq", "update"], check=True, stdout=subprocess.DEVNULL)
    shown = subprocess.run(
        ["apt-cache", *opts, "showsrc", package], check=True, capture_output=True, text=True
    ).stdout
    versions = re.findall(r"^Version:\s*(\S+)$", shown, re.M)
    wanted = [v for v in versions if re.fullmatch(rf"(\d+:)?{re.escape(upstream)}-[^-]+", v)]
    if not wanted:
        raise FetchError(f"no Debian source package of {package} {upstream} (found {versions})")
    dl = workdir / "src"
    dl.mkdir()
    subprocess.run(
        ["apt-get", *opts, "-qq", "source", "--download-only", f"{package}={wanted[0]}"],
        check=True,
        cwd=dl,
        stdout=subprocess.DEVNULL,
    )
    if not (dl / orig).exists():
        raise FetchError(f"apt did not produce {orig}")
    return dl / orig


def _from_debian(version: str, workdir: Path) -> Path:
    return debian_source("libbpf", version, f"libbpf_{version}.orig.tar.gz", workdir)


def manual_instructions(version: str) -> str:
    return (
        f"could not obtain libbpf {version} from any source.\n"
        f"Supply it by hand, then re-run the build:\n"
        f"  * download the release tarball of libbpf v{version} (the project's tag archive\n"
        f"    'v{version}.tar.gz', or Debian's 'libbpf_{version}.orig.tar.gz': the same bytes),\n"
        f"    whose sha256 must be {expected_sha256(version)};\n"
        f"  * either save it as {tarball_path(version)}\n"
        f"  * or point {ENV_SOURCE}=/path/to/that.tar.gz (or to an extracted source tree)."
    )


def fetch(version: str | None = None) -> Path:
    """Return the verified tarball (or an override tree); raise FetchError when nothing works."""
    version = version or pinned_version()
    override = os.environ.get(ENV_SOURCE)
    if override:
        p = Path(override)
        if p.is_dir():
            if not (p / "src" / "libbpf.h").exists():
                raise FetchError(f"{ENV_SOURCE}={p} is not a libbpf source tree (no src/libbpf.h)")
            log(f"using the source tree {p} ({ENV_SOURCE})")
            return p
        if p.is_file():
            log(f"using the tarball {p} ({ENV_SOURCE})")
            return _store(p, version)
        raise FetchError(f"{ENV_SOURCE}={p} does not exist")
    cached = tarball_path(version)
    if cached.exists():
        verify(cached, version)
        return cached
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tinybpf-libbpf-") as tmp:
        for name, source in (("upstream", _from_upstream), ("debian", _from_debian)):
            if os.environ.get("TINYBPF_LIBBPF_NO_" + name.upper()):
                continue
            work = Path(tmp) / name
            work.mkdir()
            try:
                got = source(version, work)
            except FetchError as e:
                errors.append(f"{name}: {e}")
                continue
            except (OSError, subprocess.CalledProcessError) as e:
                errors.append(f"{name}: {e}")
                continue
            try:
                return _store(got, version)
            except FetchError as e:  # a wrong hash is refused, never used
                errors.append(f"{name}: {e}")
    for e in errors:
        log(e)
    raise FetchError(manual_instructions(version))


def tarball_for_sdist(version: str | None = None) -> Path:
    """The verified release tarball in the vendor cache (fetched if missing), for an sdist.

    An sdist must carry the tarball itself, so a source-tree override cannot stand in for it.
    """
    version = version or pinned_version()
    got = fetch(version)
    if got.is_dir():
        raise FetchError(
            f"an sdist needs the verified libbpf {version} tarball, but {ENV_SOURCE} points to "
            f"the source tree {got}: point it to the tarball instead, or unset it"
        )
    return got


def extract(tarball: Path, version: str) -> Path:
    dest = VENDOR / f"libbpf-{version}"
    if (dest / "src" / "libbpf.h").exists():
        return dest
    tmp = Path(tempfile.mkdtemp(prefix="extract-", dir=VENDOR))
    try:
        with tarfile.open(tarball) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(tmp, filter="data")
            else:  # Pythons without extraction filters: refuse unsafe members ourselves
                for m in tf.getmembers():
                    if m.name.startswith("/") or ".." in Path(m.name).parts or m.isdev():
                        raise FetchError(f"{tarball}: unsafe member {m.name!r}")
                tf.extractall(tmp)
        tops = [p for p in tmp.iterdir() if p.is_dir()]
        if len(tops) != 1 or not (tops[0] / "src" / "libbpf.h").exists():
            raise FetchError(f"{tarball} does not look like a libbpf release tarball")
        os.replace(tops[0], dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def prepare(version: str | None = None) -> Path:
    version = version or pinned_version()
    got = fetch(version)
    return got if got.is_dir() else extract(got, version)


def _sanitize_cflags() -> str:
    san = os.environ.get("TINYBPF_SANITIZE", "")
    return f"-fsanitize={san} -fno-omit-frame-pointer -g" if san else ""


def build(version: str | None = None, extra_cflags: str | None = None) -> Path:
    """Build libbpf.a (static only, -fPIC) and install its headers; return the .a path."""
    version = version or pinned_version()
    src = prepare(version)
    out = build_dir(version)
    lib = static_lib(version)
    stamp = out / "stamp"
    if extra_cflags is None:
        extra_cflags = _sanitize_cflags()
    flags = f"-fPIC -O2 {extra_cflags}".strip()
    cross: list[str] = []
    target = os.environ.get("TINYBPF_ZIG_TARGET", "").strip()
    if target:  # zig cc for an old glibc, against our static libelf/zlib (static_deps.py)
        import static_deps

        deps = static_deps.build(target)
        tools = static_deps.toolchain(target)
        flags += f" -fno-sanitize=undefined -I{deps / 'include'}"
        cross = [f"CC={shlex.join(tools['cc'])}", f"AR={shlex.join(tools['ar'])}"]
        cross.append("NO_PKG_CONFIG=1")
    if lib.exists() and stamp.exists() and stamp.read_text() == flags:
        return lib
    obj = lib.parent
    obj.mkdir(parents=True, exist_ok=True)
    make = shutil.which("make") or "make"
    common = [
        make, "-s", "-C", str(src / "src"),
        "BUILD_STATIC_ONLY=1", f"OBJDIR={obj}", f"DESTDIR={out}",
        "PREFIX=", "LIBDIR=/lib", "INCLUDEDIR=/include", "UAPIDIR=/include",
        f"EXTRA_CFLAGS={flags}", f"-j{os.cpu_count() or 1}", *cross,
    ]  # fmt: skip
    log(f"building static libbpf {version} in {out}")
    subprocess.run([*common, str(lib)], check=True)
    subprocess.run([*common, "install_headers", "install_uapi_headers"], check=True)
    stamp.write_text(flags)
    return lib


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "build"
    version = pinned_version()
    try:
        if cmd == "fetch":
            print(prepare(version))
        elif cmd == "verify":
            target = Path(argv[2]) if len(argv) > 2 else tarball_path(version)
            verify(target, version)
            print(f"{target}: sha256 OK")
        elif cmd == "build":
            print(build(version, _sanitize_cflags()))
        elif cmd == "paths":
            print(include_dir(version))
            print(static_lib(version))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except FetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
