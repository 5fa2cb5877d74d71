"""The ``tinybpf`` command line (also ``python -m tinybpf``)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

# the tinybpf package (its name may differ where tinybpf is vendored)
_TOP = (__package__ or "tinybpf.tools").rsplit(".", 1)[0]


def _version_text() -> str:
    from .. import __version__, libbpf_release

    return f"tinybpf {__version__}\nlibbpf {libbpf_release()}"


def cmd_version(args: argparse.Namespace) -> int:
    print(_version_text())
    return 0


def cmd_vmlinux(args: argparse.Namespace) -> int:
    from ..btf import Btf, vmlinux_header

    src = args.btf
    with Btf.from_vmlinux() if src in (None, "vmlinux") else Btf.from_file(src) as btf:
        text = vmlinux_header(btf)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        out = Path(args.output)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
    return 0


def _arch_define() -> str:
    machine = os.uname().machine
    arch = {
        "x86_64": "x86",
        "aarch64": "arm64",
        "armv7l": "arm",
        "s390x": "s390",
        "ppc64le": "powerpc",
        "riscv64": "riscv",
        "loongarch64": "loongarch",
    }.get(machine, machine)
    return f"-D__TARGET_ARCH_{arch}"


def cached_vmlinux_h(vmlinux: str | None = None) -> Path:
    """vmlinux.h for the running kernel (cached per release) or for a given BTF file."""
    from ..btf import Btf, vmlinux_header

    if vmlinux:
        src = Path(vmlinux)
        if src.suffix == ".h":
            return src
        key = f"file-{src.resolve().as_posix().replace('/', '_')}-{int(src.stat().st_mtime)}"
    else:
        key = os.uname().release
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinybpf" / "vmlinux"
    out = base / key / "vmlinux.h"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with Btf.from_file(vmlinux) if vmlinux else Btf.from_vmlinux() as btf:
        text = vmlinux_header(btf)
    tmp = out.with_name(f"vmlinux.h.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    return out


def compile_command(
    source: Path, output: Path, vmlinux_dir: Path, extra: Sequence[str] = (), clang: str = "clang"
) -> list[str]:
    """The clang argument list that compiles one CO-RE program (no shell involved)."""
    include = Path(__file__).resolve().parent.parent / "include"  # tinybpf/include
    # <bpf/usdt.bpf.h> includes <linux/errno.h>, which needs the multiarch <asm/...>
    multiarch = [
        arg
        for d in (f"/usr/include/{os.uname().machine}-linux-gnu",)
        if os.path.isdir(d)
        for arg in ("-idirafter", d)
    ]
    return [
        clang,
        "-g",
        "-O2",
        "-target",
        "bpf",
        _arch_define(),
        "-I",
        str(vmlinux_dir),
        "-I",
        str(include),
        "-I",
        str(source.parent),
        *multiarch,
        *extra,
        "-c",
        str(source),
        "-o",
        str(output),
    ]


def _output_for(src: Path, output: str | None, many: bool) -> Path:
    default_name = (
        src.name[: -len(".bpf.c")] + ".bpf.o" if src.name.endswith(".bpf.c") else src.stem + ".o"
    )
    if output is None:
        return src.with_name(default_name)
    out = Path(output)
    if output.endswith("/") or out.is_dir():
        out.mkdir(parents=True, exist_ok=True)
        return out / default_name
    if many:
        raise SystemExit("Error: -o must be a directory (ending in '/') with several sources")
    return out


def cmd_compile(args: argparse.Namespace) -> int:
    import shutil
    import time

    clang = args.clang or shutil.which("clang")
    if not clang:
        print("Error: clang not found in PATH (install clang, or pass --clang)", file=sys.stderr)
        return 1
    sources = [Path(s) for s in args.sources]
    missing = [s for s in sources if not s.exists()]
    if missing:
        print(f"Error: source not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    vmlinux_h = cached_vmlinux_h(args.vmlinux)
    failed = 0
    for i, src in enumerate(sources, 1):
        out = _output_for(src, args.output, len(sources) > 1)
        cmd = compile_command(src, out, vmlinux_h.parent, args.cflags or (), clang)
        t0 = time.monotonic()
        rc = subprocess.call(cmd)
        took = time.monotonic() - t0
        status = "ok" if rc == 0 else f"FAILED (clang exit {rc})"
        if args.verbose or len(sources) > 1 or rc:
            print(f"[{i}/{len(sources)}] {src} -> {out}: {status} ({took:.2f}s)", file=sys.stderr)
        failed += rc != 0
    return 1 if failed else 0


def cmd_gen(args: argparse.Namespace) -> int:
    from .codegen import generate_module

    text = generate_module(
        args.object,
        module_name=args.name,
        all_types=args.all_types,
        embed=not args.no_embed,
        package=args.package,
    )
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from ..object import open_object
    from .inspection import describe_object, object_summary

    with open_object(args.object) as obj:
        if args.json:
            print(json.dumps(object_summary(obj), indent=2, default=str))
        else:
            print(describe_object(obj, sys.stdout))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .inspection import print_listing

    print_listing(args.kind, args.json)
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    from .ps import print_ps

    print_ps(args.json)
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from ..tracing import trace_pipe
    from .jsonl import json_line

    try:
        with trace_pipe(timeout=args.timeout) as pipe:
            for ev in pipe:
                if args.json:
                    line = json_line(ev)
                else:
                    head = f"{ev.task}-{ev.pid}" if ev.event else ""
                    line = f"{ev.timestamp:.6f} {head} [{ev.cpu:03d}] {ev.message}"
                    if not ev.event:
                        line = ev.message
                print(line, flush=True)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_btf_dump(args: argparse.Namespace) -> int:
    import json

    from ..btf import Btf, btf_type_json, vmlinux_header

    src = args.source
    with Btf.from_vmlinux() if src in (None, "vmlinux") else Btf.from_file(src) as btf:
        if args.format == "c":
            text = vmlinux_header(btf)
        else:
            text = json.dumps([btf_type_json(t) for t in btf], indent=1) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    from .inspection import explore
    from .shell import run_shell

    obj = explore(args.object, load=args.load)
    banner = (
        "tinybpf shell: 'obj' is the object, 'tinybpf' the module. Tab completes "
        '(obj.<TAB>, obj.maps["<TAB>). Ctrl-D exits.'
    )
    try:
        # the package this module belongs to, under whatever name it was imported
        run_shell({"obj": obj, "tinybpf": sys.modules[_TOP]}, banner)
    finally:
        obj.close()
    return 0


def cmd_run_elevated(args: argparse.Namespace) -> int:
    script = Path(args.script)
    if not script.exists():
        print(f"Error: script not found: {script}", file=sys.stderr)
        return 1
    cmd = [sys.executable, str(script), *args.script_args]
    if os.geteuid() != 0:
        cmd = ["sudo", *cmd]
    if args.verbose:
        print(f"Running: {' '.join(cmd)}", file=sys.stderr)
    return subprocess.call(cmd)


def cmd_docker_replaced(args: argparse.Namespace) -> int:
    """The first generation's docker-compile/docker-pull: say what replaced them."""
    out = f"-o {args.output} " if getattr(args, "output", None) else ""
    sources = " ".join(getattr(args, "sources", None) or ["SRC.bpf.c"])
    print(
        f"Error: 'tinybpf {args.command}' was replaced by 'tinybpf compile' (the local "
        f"clang and a vmlinux.h of the running kernel; no Docker image): "
        f"run 'tinybpf compile {out}{sources}'",
        file=sys.stderr,
    )
    return 1


def build_parser() -> argparse.ArgumentParser:
    # a copy vendored under another package has no 'tinybpf' command: name what runs it
    prog = "tinybpf" if _TOP == "tinybpf" else f"python -m {_TOP}"
    p = argparse.ArgumentParser(prog=prog, description="Drive CO-RE eBPF objects from Python.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sp = sub.add_parser("version", help="print the tinybpf and libbpf versions")
    sp.set_defaults(func=cmd_version)

    sp = sub.add_parser(
        "vmlinux",
        help="write a vmlinux.h generated from kernel BTF",
        description="Write C declarations of every type of a BTF (the running kernel's "
        "/sys/kernel/btf/vmlinux by default) as a vmlinux.h for CO-RE programs.",
    )
    sp.add_argument("btf", nargs="?", help="BTF source: 'vmlinux' (default) or a file")
    sp.add_argument("-o", "--output", help="output file (default: stdout)")
    sp.set_defaults(func=cmd_vmlinux)

    sp = sub.add_parser(
        "compile",
        help="compile CO-RE BPF programs with clang",
        description="Compile SRC.bpf.c files with the local clang, the bundled libbpf BPF "
        "headers and a vmlinux.h generated from the running kernel's BTF (cached per "
        "kernel release).",
    )
    sp.add_argument("sources", nargs="+", metavar="SRC.bpf.c")
    sp.add_argument("-o", "--output", help="output file, or directory ending in '/'")
    sp.add_argument("--vmlinux", help="BTF file (or vmlinux.h) of the target kernel")
    sp.add_argument("--clang", help="clang binary (default: clang in PATH)")
    sp.add_argument(
        "--cflags", action="append", metavar="FLAG", help="extra clang flag (repeatable)"
    )
    sp.add_argument("-v", "--verbose", action="store_true")
    sp.set_defaults(func=cmd_compile)

    sp = sub.add_parser(
        "inspect",
        help="show the programs, maps, globals and BTF types of an object",
        description="Open OBJ.bpf.o (without loading it) and print its programs, maps "
        "(with key/value types from BTF), global variables with their initial values, "
        "license and BTF types as tables.",
    )
    sp.add_argument("object", metavar="OBJ.bpf.o")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_inspect)

    sp = sub.add_parser(
        "list",
        help="list programs, maps or links loaded in the kernel",
        description="What is loaded in the kernel, like bpftool's listings: ids, names, "
        "types, attach points and pins.",
    )
    sp.add_argument("kind", choices=["progs", "maps", "links"])
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_list)

    sp = sub.add_parser(
        "ps",
        help="list programs, maps and links with the processes that hold them",
        description="Every BPF program (full name from BTF, attach points), map and link "
        "in the kernel, with the PIDs and command names of the processes holding an fd "
        "of it (from /proc/*/fdinfo).",
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_ps)

    sp = sub.add_parser(
        "trace",
        help="print bpf_printk() output (the tracefs trace pipe)",
        description="Read the kernel's trace pipe (bpf_printk/bpf_trace_printk output) and "
        "print each line as 'TIMESTAMP TASK-PID [CPU] MESSAGE', or as JSON lines.",
    )
    sp.add_argument("--timeout", type=float, help="stop after this many seconds")
    sp.add_argument("--json", action="store_true", help="one JSON object per line")
    sp.set_defaults(func=cmd_trace)

    sp = sub.add_parser("btf", help="BTF tools")
    btf_sub = sp.add_subparsers(dest="btf_command", metavar="SUBCOMMAND", required=True)
    dp = btf_sub.add_parser(
        "dump",
        help="write a BTF as C (vmlinux.h) or as a JSON type listing",
        description="Dump the types of a BTF (the running kernel's by default, or a BTF or "
        "ELF file) as C declarations or as JSON.",
    )
    dp.add_argument("source", nargs="?", help="'vmlinux' (default) or a file")
    dp.add_argument("--format", choices=["c", "json"], default="c")
    dp.add_argument("-o", "--output", help="output file (default: stdout)")
    dp.set_defaults(func=cmd_btf_dump)

    sp = sub.add_parser(
        "shell",
        help="open an object, print its summary and start a Python shell with it",
    )
    sp.add_argument("object", metavar="OBJ.bpf.o")
    sp.add_argument("--load", action="store_true", help="also load it (needs root)")
    sp.set_defaults(func=cmd_shell)

    sp = sub.add_parser(
        "gen",
        help="write a typed Python module for a BPF object",
        description="Generate a Python module with ctypes classes for the object's BTF "
        "structs and a typed wrapper (programs, maps with key/value types, globals) that "
        "mypy and editors understand.",
    )
    sp.add_argument("object", metavar="OBJ.bpf.o")
    sp.add_argument("-o", "--output", help="output .py file (default: stdout)")
    sp.add_argument("--name", help="class name of the wrapper (default: from the file name)")
    sp.add_argument(
        "--all-types",
        action="store_true",
        help="every named BTF type, not only those reachable from maps and globals",
    )
    sp.add_argument(
        "--no-embed",
        action="store_true",
        help="do not embed the object file: open() reads DEFAULT_PATH (its absolute path)",
    )
    sp.add_argument(
        "--package",
        metavar="NAME",
        help="the package the module imports as 'tinybpf' (default: the one running, "
        f"{_TOP}; e.g. daemon._vendor.tinybpf for a vendored copy)",
    )
    sp.set_defaults(func=cmd_gen)

    sp = sub.add_parser(
        "run-elevated",
        help="run a Python script as root (through sudo when needed)",
        description="Run SCRIPT with this Python interpreter as root. Everything after "
        "SCRIPT is passed to it unchanged, options included.",
    )
    sp.add_argument(
        "-v", "--verbose", action="store_true", help="print the command before running it"
    )
    sp.add_argument("script")
    sp.add_argument("script_args", nargs=argparse.REMAINDER)
    sp.set_defaults(func=cmd_run_elevated)

    # the first generation's Docker commands: accepted, and answered with their replacement
    sp = sub.add_parser("docker-compile", help="replaced by 'compile' (no Docker)")
    sp.add_argument("-o", "--output")
    sp.add_argument("-v", "--verbose", action="store_true")
    sp.add_argument("sources", nargs="*")
    sp.set_defaults(func=cmd_docker_replaced)
    sp = sub.add_parser("docker-pull", help="replaced by 'compile' (no Docker image)")
    sp.set_defaults(func=cmd_docker_replaced)

    from ..export.cli import add_parser as add_export_parser

    add_export_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        rc: int = args.func(args)
    except OSError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
