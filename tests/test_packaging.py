"""Packaging: the sdist carries everything a build needs, and a wheel builds from it offline.

The wheel is built from the sdist inside a new network namespace (``unshare -n``: only a
down loopback interface, so no packet can leave), with the fetch's network sources switched
off as well; the build must use the libbpf tarball the sdist carries. Needs the ``build``
frontend plus setuptools and cffi in the running interpreter (the developer environment has
them; an environment with only the installed wheel skips). About 30 s (libbpf is compiled).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSION = (ROOT / ".libbpf-version").read_text().strip()

pytestmark = pytest.mark.packaging

MISSING = [m for m in ("build", "setuptools", "cffi", "pip") if importlib.util.find_spec(m) is None]
if not (ROOT / "setup.py").exists() or not (ROOT / "vendor" / "libbpf.py").exists():
    pytest.skip("not a source tree (no setup.py / vendor/libbpf.py)", allow_module_level=True)
if MISSING:
    pytest.skip(
        f"{', '.join(MISSING)} not importable in {sys.executable}: "
        "packaging tests need the developer environment (make devtools)",
        allow_module_level=True,
    )

# What a build reads besides src/: without any of these a build from the sdist fails.
SDIST_REQUIRED = (
    "setup.py",
    "pyproject.toml",
    "MANIFEST.in",
    ".libbpf-version",
    "ffi_build/build_ffi.py",
    "ffi_build/libbpf_cdef.py",
    "ffi_build/uapi_enums.py",
    "ffi_build/shim_base.c",
    "ffi_build/shim_btf.c",
    "ffi_build/shim_events.c",
    "ffi_build/shim_links.c",
    "ffi_build/shim_log.c",
    "ffi_build/shim_maps.c",
    "ffi_build/shim_open.c",
    "vendor/libbpf.py",
    "vendor/checksums.txt",
    f"vendor/libbpf-{VERSION}.tar.gz",
    "src/tinybpf/__init__.py",
    "src/tinybpf/py.typed",
)

BPF_SIDE_HEADERS = (
    "bpf_helpers.h",
    "bpf_helper_defs.h",
    "bpf_tracing.h",
    "bpf_core_read.h",
    "bpf_endian.h",
    "usdt.bpf.h",
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYBPF_", "PIP_"))}
    env.update(extra)
    return env


def _offline_prefix() -> tuple[list[str], str]:
    """A command prefix that runs its command with no network at all, and how it does that."""
    unshare = shutil.which("unshare")
    if os.geteuid() == 0 and unshare:
        code = "import socket; print(socket.if_nameindex())"
        probe = subprocess.run(
            [unshare, "-n", "--", sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "[(1, 'lo')]":
            return [unshare, "-n", "--"], "a new network namespace (only lo, down)"
    return [], "network sources of the fetch and pip's index switched off by environment"


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tarball = ROOT / "vendor" / f"libbpf-{VERSION}.tar.gz"
    if not tarball.exists():
        pytest.skip(f"{tarball.name} is not cached in vendor/ (run 'make vendor' first)")
    # A clean copy of the tree, as a fresh clone has it plus the fetched tarball: an existing
    # *.egg-info/SOURCES.txt would otherwise feed its file list into the sdist, and what
    # other targets leave (the VM kernels of `make kernels`, builds) is no part of a clone.
    tree = tmp_path_factory.mktemp("tree") / "tinybpf"
    if (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
        names = [n for n in listed.split("\0") if n and (ROOT / n).is_file()]
        names.append(f"vendor/{tarball.name}")
        for name in names:
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
    else:
        shutil.copytree(
            ROOT,
            tree,
            ignore=shutil.ignore_patterns(
                ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.so", "*.o",
                f"libbpf-{VERSION}", ".*_cache", ".kernels",
            ),
        )  # fmt: skip
    out = tmp_path_factory.mktemp("sdist")
    r = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(out), str(tree)],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "is deprecated" not in r.stdout + r.stderr, r.stderr[-3000:]
    (path,) = out.glob("tinybpf-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def wheel_from_sdist(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("wheel")
    prefix, how = _offline_prefix()
    cmd = [
        *prefix,
        sys.executable, "-m", "pip", "wheel", "-v", "--no-build-isolation", "--no-deps",
        "--no-index", "-w", str(out), str(sdist),
    ]  # fmt: skip
    env = _clean_env(
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        TINYBPF_LIBBPF_NO_UPSTREAM="1",
        TINYBPF_LIBBPF_NO_DEBIAN="1",
    )
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out, timeout=600)
    log = r.stdout + r.stderr
    assert r.returncode == 0, f"offline build from the sdist failed ({how}):\n{log[-5000:]}"
    (path,) = out.glob("tinybpf-*.whl")
    return path, log


def test_sdist_carries_everything_a_build_needs(sdist: Path) -> None:
    with tarfile.open(sdist) as tf:
        top = f"{sdist.name.removesuffix('.tar.gz')}/"
        names = {m.name.removeprefix(top) for m in tf.getmembers()}
        packed = tf.extractfile(f"{top}vendor/libbpf-{VERSION}.tar.gz")
        assert packed is not None
        data = packed.read()
    missing = [f for f in SDIST_REQUIRED if f not in names]
    assert not missing, f"the sdist lacks {missing}"
    # The packed tarball is the pinned one, byte for byte.
    sys.path.insert(0, str(ROOT / "vendor"))
    try:
        import libbpf as vendor_libbpf
    finally:
        sys.path.remove(str(ROOT / "vendor"))
    import hashlib

    assert hashlib.sha256(data).hexdigest() == vendor_libbpf.expected_sha256(VERSION)
    # Nothing generated or extracted rides along.
    assert not [n for n in names if n.startswith(f"vendor/libbpf-{VERSION}/")]
    assert not [n for n in names if "_libbpf_cffi" in n or n.startswith("src/tinybpf/include")]
    assert not [n for n in names if n.startswith("vendor/libbpf-") and n.endswith(".tar.gz")][1:]


def test_wheel_builds_from_sdist_offline(wheel_from_sdist: tuple[Path, str]) -> None:
    wheel, log = wheel_from_sdist
    assert f"building static libbpf {VERSION}" in log
    # No deprecation warnings of ours in the build (setuptools' license-table one, ...).
    assert "is deprecated" not in log and "SetuptoolsDeprecationWarning" not in log
    assert "trying the upstream" not in log and "trying Debian" not in log
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        wheel_meta = zf.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    ext = [n for n in names if n.startswith("tinybpf/_libbpf_cffi")]
    assert ext == ["tinybpf/_libbpf_cffi.abi3.so"], ext
    for h in BPF_SIDE_HEADERS:
        assert f"tinybpf/include/bpf/{h}" in names
    assert {"tinybpf/__init__.py", "tinybpf/py.typed", "tinybpf/tools/cli.py"} <= names
    # Build-time code stays out of the wheel.
    assert not [n for n in names if n.startswith(("vendor/", "ffi_build/", "tests/"))]
    assert not [n for n in names if n.endswith((".c", ".o", ".a", ".tar.gz"))]
    assert "Requires-Dist: cffi" in meta
    # Current license metadata: an SPDX expression (Metadata 2.4), not the deprecated table.
    assert "\nLicense-Expression: MIT\n" in meta
    assert "\nLicense: " not in meta
    # One wheel for every supported CPython: the limited API from 3.10 on.
    assert "-cp310-abi3-linux_" in wheel.name, wheel.name
    assert "\nTag: cp310-abi3-linux_" in wheel_meta, wheel_meta


def test_wheel_from_sdist_imports_and_links_libbpf_statically(
    wheel_from_sdist: tuple[Path, str], tmp_path: Path
) -> None:
    wheel, _ = wheel_from_sdist
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path / "site")
    code = (
        "import tinybpf, sys; "
        "maps = open('/proc/self/maps').read(); "
        "print(tinybpf.__file__); print(tinybpf.libbpf_release()); "
        "sys.exit('a system libbpf.so is mapped' if 'libbpf.so' in maps else 0)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_clean_env(PYTHONPATH=str(tmp_path / "site")),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    where, version = r.stdout.split()
    assert where.startswith(str(tmp_path / "site"))
    assert version == VERSION
