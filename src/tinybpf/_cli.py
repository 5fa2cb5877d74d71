"""The ``tinybpf`` command line (also ``python -m tinybpf``)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _version_text() -> str:
    import tinybpf

    return f"tinybpf {tinybpf.__version__}\nlibbpf {tinybpf.libbpf_version()}"


def cmd_version(args: argparse.Namespace) -> int:
    print(_version_text())
    return 0


def cmd_vmlinux(args: argparse.Namespace) -> int:
    from tinybpf.btf import Btf, vmlinux_header

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


def cmd_run_elevated(args: argparse.Namespace) -> int:
    script = Path(args.script)
    if not script.exists():
        print(f"Error: script not found: {script}", file=sys.stderr)
        return 1
    cmd = [sys.executable, str(script), *args.script_args]
    if os.geteuid() != 0:
        cmd = ["sudo", *cmd]
    return subprocess.call(cmd)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinybpf", description="Drive CO-RE eBPF objects from Python.")
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
        "run-elevated",
        help="run a Python script as root (through sudo when needed)",
        description="Run SCRIPT with this Python interpreter as root. Everything after "
        "SCRIPT is passed to it unchanged, options included.",
    )
    sp.add_argument("script")
    sp.add_argument("script_args", nargs=argparse.REMAINDER)
    sp.set_defaults(func=cmd_run_elevated)
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
