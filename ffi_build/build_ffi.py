"""The cffi FFI builder for ``tinybpf._libbpf_cffi`` (out-of-line, API mode).

Compiles the declarations of ``libbpf_cdef.py`` against the real headers of the pinned
libbpf and links ``libbpf.a`` statically (``extra_objects``, never ``libraries=["bpf"]``,
which could pick up a system libbpf.so). libbpf's symbols stay private to the extension.
Used by setup.py (``cffi_modules``) and runnable directly for an in-place build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "vendor"))

import libbpf as vendor_libbpf  # noqa: E402  (vendor/libbpf.py)
from libbpf_cdef import CDEF  # noqa: E402

VERSION = vendor_libbpf.pinned_version()
MAJOR, MINOR = VERSION.split(".")[:2]
INCLUDE = vendor_libbpf.include_dir(VERSION)
STATIC_LIB = vendor_libbpf.static_lib(VERSION)
SANITIZE = os.environ.get("TINYBPF_SANITIZE", "")
ZIG_TARGET = os.environ.get("TINYBPF_ZIG_TARGET", "").strip()

# The C shim, by concern, compiled as one unit in this order (shim_base.c holds the
# includes and the version guard; later files use what earlier ones define).
SHIM_FILES = (
    "shim_base.c",
    "shim_log.c",
    "shim_btf.c",
    "shim_links.c",
    "shim_events.c",
    "shim_maps.c",
    "shim_open.c",
)

SOURCE = """
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/if_link.h>
#include <sys/socket.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

/* cffi defines the extern "Python" sinks after this code: declare them first. */
static void _tinybpf_log_sink(int level, const char *msg);
""" + "\n".join((HERE / name).read_text() for name in SHIM_FILES)

ffibuilder = FFI()
ffibuilder.cdef(CDEF)

compile_args = [
    "-std=gnu11",
    "-fvisibility=hidden",
    "-Werror=incompatible-pointer-types",
    "-Werror=int-conversion",
    "-Werror=implicit-function-declaration",
    "-Wno-unused-function",
    "-pthread",  # the read-ahead thread of batch lookups (shim_maps.c)
]
link_args = ["-Wl,--exclude-libs,ALL", "-pthread"]
extra_objects = [str(STATIC_LIB)]
libraries = ["elf", "z"]
if ZIG_TARGET:  # glibc-floor route: zig cc, libelf and zlib linked in statically
    import static_deps  # vendor/static_deps.py

    DEPS = static_deps.prefix(ZIG_TARGET)
    compile_args += ["-fno-sanitize=undefined", f"-I{DEPS / 'include'}"]
    extra_objects += [str(DEPS / "lib" / "libelf.a"), str(DEPS / "lib" / "libz.a")]
    libraries = []
    # zig's linker has no --exclude-libs: a version script exports only the module's init
    # function, so libbpf, libelf and zlib stay private to the extension here too.
    DEPS.mkdir(parents=True, exist_ok=True)
    exports = DEPS / "exports.map"
    exports.write_text("{ global: PyInit__libbpf_cffi; local: *; };\n")
    link_args = [f"-Wl,--version-script={exports}", "-pthread"]
if SANITIZE:
    compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer"]
    link_args += [f"-fsanitize={SANITIZE}"]

ffibuilder.set_source(
    "tinybpf._libbpf_cffi",
    SOURCE,
    include_dirs=[str(INCLUDE)],
    extra_objects=extra_objects,
    libraries=libraries,
    define_macros=[
        ("TINYBPF_PIN_MAJOR", MAJOR),
        ("TINYBPF_PIN_MINOR", MINOR),
        ("TINYBPF_PIN_VERSION", f'"{VERSION}"'),
    ],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

if __name__ == "__main__":
    vendor_libbpf.build(VERSION)  # the sanitizer variant too, from TINYBPF_SANITIZE
    os.chdir(ROOT / "src")
    ffibuilder.compile(verbose=False)
