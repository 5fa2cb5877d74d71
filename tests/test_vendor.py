"""The pinned-libbpf fetch: hash verification and the manual-supply message (no root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSION = (ROOT / ".libbpf-version").read_text().strip()


@pytest.fixture
def vendor_copy(tmp_path: Path) -> Path:
    """A minimal copy of the repository's fetch inputs, with an empty vendor cache."""
    (tmp_path / "vendor").mkdir()
    shutil.copy(ROOT / "vendor" / "libbpf.py", tmp_path / "vendor")
    shutil.copy(ROOT / "vendor" / "checksums.txt", tmp_path / "vendor")
    shutil.copy(ROOT / ".libbpf-version", tmp_path)
    return tmp_path


def run_fetch(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TINYBPF_LIBBPF")}
    full.update(env)
    return subprocess.run(
        [sys.executable, str(root / "vendor" / "libbpf.py"), "fetch"],
        capture_output=True,
        text=True,
        env=full,
        timeout=300,
    )


def test_pinned_version_is_1_7() -> None:
    assert VERSION.startswith("1.7.")


def test_checksum_listed_for_pinned_version() -> None:
    lines = (ROOT / "vendor" / "checksums.txt").read_text().split("\n")
    entries = dict(line.split() for line in lines if line and not line.startswith("#"))
    assert len(entries[VERSION]) == 64


def _good_tarball() -> Path | None:
    cached = ROOT / "vendor" / f"libbpf-{VERSION}.tar.gz"
    return cached if cached.exists() else None


def test_tarball_with_changed_byte_is_refused(vendor_copy: Path, tmp_path: Path) -> None:
    good = _good_tarball()
    if good is None:
        pytest.skip("no cached libbpf tarball in vendor/ (the build used a source tree)")
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(data))
    r = run_fetch(vendor_copy, TINYBPF_LIBBPF_SOURCE=str(bad))
    assert r.returncode == 1
    assert "refusing" in r.stderr and "does not match the pinned sha256" in r.stderr
    assert not (vendor_copy / "vendor" / f"libbpf-{VERSION}").exists()


def test_corrupted_cache_is_refused(vendor_copy: Path) -> None:
    good = _good_tarball()
    if good is None:
        pytest.skip("no cached libbpf tarball in vendor/ (the build used a source tree)")
    data = bytearray(good.read_bytes())
    data[-100] ^= 0xFF
    (vendor_copy / "vendor" / f"libbpf-{VERSION}.tar.gz").write_bytes(bytes(data))
    r = run_fetch(vendor_copy)
    assert r.returncode == 1
    assert "does not match the pinned sha256" in r.stderr


def test_good_tarball_is_accepted_and_extracted(vendor_copy: Path) -> None:
    good = _good_tarball()
    if good is None:
        pytest.skip("no cached libbpf tarball in vendor/ (the build used a source tree)")
    r = run_fetch(vendor_copy, TINYBPF_LIBBPF_SOURCE=str(good))
    assert r.returncode == 0, r.stderr
    assert (vendor_copy / "vendor" / f"libbpf-{VERSION}" / "src" / "libbpf.h").exists()


def test_no_source_reachable_says_how_to_supply(vendor_copy: Path) -> None:
    r = run_fetch(vendor_copy, TINYBPF_LIBBPF_NO_UPSTREAM="1", TINYBPF_LIBBPF_NO_DEBIAN="1")
    assert r.returncode == 1
    assert "Supply it by hand" in r.stderr
    assert "TINYBPF_LIBBPF_SOURCE" in r.stderr
    assert f"libbpf-{VERSION}.tar.gz" in r.stderr


def test_source_tree_override_must_be_libbpf(vendor_copy: Path, tmp_path: Path) -> None:
    r = run_fetch(vendor_copy, TINYBPF_LIBBPF_SOURCE=str(tmp_path))
    assert r.returncode == 1
    assert "is not a libbpf source tree" in r.stderr


def test_static_deps_tarball_with_changed_byte_is_refused(vendor_copy: Path) -> None:
    """The glibc-floor route's libelf/zlib sources are sha256-pinned like libbpf."""
    shutil.copy(ROOT / "vendor" / "static_deps.py", vendor_copy / "vendor")
    lines = (ROOT / "vendor" / "checksums.txt").read_text().split("\n")
    entries = dict(line.split() for line in lines if line and not line.startswith("#"))
    assert len(entries["elfutils-0.188"]) == 64 and len(entries["zlib-1.2.13.dfsg"]) == 64
    (vendor_copy / "vendor" / "zlib_1.2.13.dfsg.orig.tar.bz2").write_bytes(b"not zlib")
    r = subprocess.run(
        [sys.executable, str(vendor_copy / "vendor" / "static_deps.py"), "fetch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    assert "refusing zlib_1.2.13.dfsg.orig.tar.bz2" in r.stderr
    assert "does not match the pinned sha256" in r.stderr
