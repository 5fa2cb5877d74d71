"""Build of tinybpf: static libbpf (vendor/libbpf.py) + the cffi extension (ffi_build/).

``pip install .``, ``pip wheel .`` and builds from the sdist all run the same steps: fetch and
verify the pinned libbpf, build ``libbpf.a`` with libbpf's own Makefile, then compile
``tinybpf._libbpf_cffi`` against it. The sdist carries the verified libbpf tarball (see
``MANIFEST.in``), so a build from it needs no network; a build from a git clone fetches it.
The BPF-side headers of that libbpf are copied into the package (``tinybpf/include/bpf``) so
users can compile CO-RE programs with clang alone.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "vendor"))

import libbpf as vendor_libbpf  # noqa: E402

ZIG_TARGET_ENV = "TINYBPF_ZIG_TARGET"
BPF_SIDE_HEADERS = (
    "bpf_helpers.h",
    "bpf_helper_defs.h",
    "bpf_tracing.h",
    "bpf_core_read.h",
    "bpf_endian.h",
    "usdt.bpf.h",
)


def build_libbpf_and_headers(package_dir: Path) -> None:
    """Build the static libbpf and copy its BPF-side headers into the package tree."""
    vendor_libbpf.build()
    src = vendor_libbpf.include_dir(vendor_libbpf.pinned_version()) / "bpf"
    dest = package_dir / "tinybpf" / "include" / "bpf"
    dest.mkdir(parents=True, exist_ok=True)
    for name in BPF_SIDE_HEADERS:
        shutil.copyfile(src / name, dest / name)


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        target = os.environ.get(ZIG_TARGET_ENV, "").strip()
        if target:  # the glibc-floor route (vendor/static_deps.py): zig cc for that glibc
            import static_deps

            cc = static_deps.toolchain(target)["cc"]
            flags = ["-O2", "-g0", "-fPIC", "-fwrapv", "-DNDEBUG", "-fno-sanitize=undefined"]
            self.compiler.set_executables(
                compiler=[*cc, *flags], compiler_so=[*cc, *flags], linker_so=[*cc, "-shared"]
            )
        super().build_extensions()

    def run(self) -> None:
        build_libbpf_and_headers(ROOT / "src")
        if not self.inplace:
            build_libbpf_and_headers(Path(self.build_lib))
        super().run()


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        build_libbpf_and_headers(Path(self.build_lib))


class Sdist(sdist):
    """Fetch and verify the pinned libbpf tarball first, then pack it (and no other version)."""

    def run(self) -> None:
        vendor_libbpf.tarball_for_sdist()
        super().run()

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        pinned = vendor_libbpf.tarball_path(vendor_libbpf.pinned_version())
        wanted = pinned.relative_to(ROOT).as_posix()
        if wanted not in files:
            raise RuntimeError(f"the sdist would lack {wanted}: check MANIFEST.in")
        # Other versions' tarballs and what an in-place build generated stay out.
        generated = ("vendor/libbpf-", "src/tinybpf/include/", "src/tinybpf/_libbpf_cffi")
        keep = [f for f in files if f == wanted or not f.startswith(generated)]
        super().make_release_tree(base_dir, keep)


setup(
    cffi_modules=["ffi_build/build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy, "sdist": Sdist},
    # cffi builds the extension for the limited API (``_libbpf_cffi.abi3.so``); tagging the
    # wheel cp310-abi3 makes that one wheel install on every CPython from 3.10 on.
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
