#!/usr/bin/env python3
"""Static zlib and libelf for a wheel whose extension needs only libc (the glibc-floor route).

With ``TINYBPF_ZIG_TARGET`` set (e.g. ``x86_64-linux-gnu.2.28``), libbpf, these two libraries
and the extension are compiled by ``zig cc`` for that target: zig links against stubs of that
glibc version, so the extension can only reference symbols the target glibc has, and libelf
and zlib are linked in statically instead of being grafted into the wheel as shared objects.

Usage:
    python vendor/static_deps.py fetch   # Debian source tarballs, sha256-verified
    python vendor/static_deps.py build   # libz.a + libelf.a for $TINYBPF_ZIG_TARGET

Sources: Debian's source packages (through apt, as vendor/libbpf.py fetches libbpf), or a
tarball supplied by hand at ``vendor/<orig name>``. Each tarball is checked against
``vendor/checksums.txt`` (keys ``zlib-<version>`` and ``elfutils-<version>``) first.
``zig`` is taken from ``TINYBPF_ZIG`` (a command), else the ``ziglang`` package of the
running Python, else ``zig`` on PATH.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# vendor/libbpf.py: the pins, sha256 checks and Debian fetch are shared.
import libbpf as vendor_libbpf
from libbpf import ROOT, VENDOR, FetchError, log

TARGET_ENV = "TINYBPF_ZIG_TARGET"
# Debian bookworm's versions: a stable release keeps its orig tarballs for years.
SUITES = ("bookworm", "unstable", "testing")
PINS = {
    # name: (Debian source package, upstream version as Debian spells it, orig tarball)
    "zlib": ("zlib", "1.2.13.dfsg", "zlib_1.2.13.dfsg.orig.tar.bz2"),
    "elfutils": ("elfutils", "0.188", "elfutils_0.188.orig.tar.bz2"),
}
CFLAGS = "-O2 -fPIC -fno-sanitize=undefined"


def zig_target() -> str:
    """The zig target of the glibc-floor route, or "" for a native (system compiler) build."""
    return os.environ.get(TARGET_ENV, "").strip()


def zig_command() -> list[str]:
    override = os.environ.get("TINYBPF_ZIG")
    if override:
        return shlex.split(override)
    try:
        import ziglang  # type: ignore[import-not-found]

        exe = Path(ziglang.__file__).resolve().parent / "zig"
        if exe.exists():
            return [str(exe)]
    except ImportError:
        pass
    found = shutil.which("zig")
    if found:
        return [found]
    raise FetchError(
        f"{TARGET_ENV} is set but no zig was found: 'pip install ziglang' into the Python "
        "that runs the build, put zig on PATH, or set TINYBPF_ZIG"
    )


def toolchain(target: str) -> dict[str, list[str]]:
    zig = zig_command()
    return {
        "cc": [*zig, "cc", "-target", target],
        "ar": [*zig, "ar"],
        "ranlib": [*zig, "ranlib"],
    }


def prefix(target: str) -> Path:
    """Where libz.a, libelf.a and their headers are installed (lib/, include/)."""
    return ROOT / "build" / f"deps-{target}"


def fetch(name: str) -> Path:
    package, version, orig = PINS[name]
    key = f"{name}-{version}"
    cached = VENDOR / orig
    want = vendor_libbpf.expected_sha256(key)
    if not cached.exists():
        with tempfile.TemporaryDirectory(prefix=f"tinybpf-{name}-") as tmp:
            got = vendor_libbpf.debian_source(package, version, orig, Path(tmp), SUITES)
            shutil.copyfile(got, cached.with_suffix(".part"))
            os.replace(cached.with_suffix(".part"), cached)
    have = vendor_libbpf.sha256_of(cached)
    if have != want:
        raise FetchError(
            f"refusing {orig}: sha256 {have} does not match the pinned sha256 {want} "
            f"of {key} (vendor/checksums.txt)"
        )
    return cached


def _extract(tarball: Path, into: Path) -> Path:
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    with tarfile.open(tarball) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(into, filter="data")
        else:
            for m in tf.getmembers():
                if m.name.startswith("/") or ".." in Path(m.name).parts or m.isdev():
                    raise FetchError(f"{tarball}: unsafe member {m.name!r}")
            tf.extractall(into)
    (top,) = [p for p in into.iterdir() if p.is_dir()]
    return top


def _env(tools: dict[str, list[str]], **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CC=shlex.join(tools["cc"]),
        AR=shlex.join(tools["ar"]),
        RANLIB=shlex.join(tools["ranlib"]),
        CFLAGS=CFLAGS,
    )
    env.update(extra)
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str], logfile: Path) -> None:
    with open(logfile, "a") as out:
        r = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = "".join(logfile.read_text().splitlines(keepends=True)[-30:])
        raise FetchError(f"{shlex.join(cmd)} failed in {cwd} (log {logfile}):\n{tail}")


def build(target: str | None = None) -> Path:
    """Build static libz.a and libelf.a for ``target`` (zig cc); return the install prefix."""
    target = target or zig_target()
    if not target:
        raise FetchError(f"set {TARGET_ENV} (e.g. x86_64-linux-gnu.2.28) to build static deps")
    out = prefix(target)
    stamp = out / "stamp"
    want = f"{PINS} {CFLAGS}"
    if stamp.exists() and stamp.read_text() == want:
        return out
    tools = toolchain(target)
    jobs = f"-j{os.cpu_count() or 1}"
    (out / "lib").mkdir(parents=True, exist_ok=True)
    (out / "include").mkdir(parents=True, exist_ok=True)
    logfile = out / "build.log"
    logfile.write_text("")

    log(f"building static zlib {PINS['zlib'][1]} for {target} in {out}")
    src = _extract(fetch("zlib"), out / "src" / "zlib")
    env = _env(tools)
    _run(["./configure", "--static", f"--prefix={out}"], src, env, logfile)
    _run(["make", jobs, "libz.a"], src, env, logfile)
    shutil.copyfile(src / "libz.a", out / "lib" / "libz.a")
    for h in ("zlib.h", "zconf.h"):
        shutil.copyfile(src / h, out / "include" / h)

    log(f"building static libelf (elfutils {PINS['elfutils'][1]}) for {target} in {out}")
    src = _extract(fetch("elfutils"), out / "src" / "elfutils")
    env = _env(tools, CPPFLAGS=f"-I{out / 'include'}", LDFLAGS=f"-L{out / 'lib'}")
    configure = [
        "./configure", "--disable-debuginfod", "--disable-libdebuginfod", "--without-bzlib",
        "--without-lzma", "--without-zstd", "--disable-nls", "--disable-symbol-versioning",
        "--disable-demangler",
    ]  # fmt: skip
    _run(configure, src, env, logfile)
    _run(["make", jobs, "-C", "lib"], src, env, logfile)
    _run(["make", jobs, "-C", "libelf", "libelf.a"], src, env, logfile)
    shutil.copyfile(src / "libelf" / "libelf.a", out / "lib" / "libelf.a")
    for h in ("libelf.h", "gelf.h", "nlist.h"):
        shutil.copyfile(src / "libelf" / h, out / "include" / h)
    shutil.rmtree(out / "src", ignore_errors=True)
    stamp.write_text(want)
    return out


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "build"
    try:
        if cmd == "fetch":
            for name in PINS:
                print(fetch(name))
        elif cmd == "build":
            print(build())
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except FetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
