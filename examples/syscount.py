#!/usr/bin/env python3
"""syscount: count system calls per syscall, with a log2 histogram of their latency.

Run as root: ``python examples/syscount.py [--pid PID] [--seconds N] [--top N]``. It loads
examples/build/syscount.bpf.o (``tinybpf compile examples/syscount.bpf.c -o
examples/build/``): two raw tracepoints (sys_enter/sys_exit) time every system call of the
process (a const volatile filter set before load; 0 = every process). With ``--demo`` it
traces itself while it makes 1000 getppid() calls, so there is always something to see.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import tinybpf

HERE = Path(__file__).resolve().parent
DEMO_CALLS = 1000


def syscall_names() -> dict[int, str]:
    """Syscall number -> name, from the kernel headers of this architecture (if present)."""
    try:
        triple = subprocess.run(
            ["gcc", "-print-multiarch"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        triple = ""
    machine = os.uname().machine
    candidates = [
        f"/usr/include/{triple}/asm/unistd_64.h" if triple else "",
        "/usr/include/asm/unistd_64.h",
        f"/usr/include/{triple}/asm/unistd.h" if triple else "",
        "/usr/include/asm-generic/unistd.h" if machine in ("aarch64", "riscv64") else "",
    ]
    for path in filter(None, candidates):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        names = {
            int(m.group(2)): m.group(1)
            for m in re.finditer(r"^#define __NR_(\w+)\s+(\d+)\s*$", text, re.M)
        }
        if names:
            return names
    return {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "syscount.bpf.o"))
    ap.add_argument("--pid", type=int, default=0, help="only this process (default: all)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--top", type=int, default=10, help="how many syscalls to list")
    ap.add_argument("--demo", action="store_true", help="trace this process making syscalls")
    args = ap.parse_args(argv)

    pid = os.getpid() if args.demo and not args.pid else args.pid
    names = syscall_names()
    obj = tinybpf.open(args.object)
    obj.globals["target_pid"] = pid  # const volatile: set before load
    obj.load()
    with obj:
        obj.attach_all()  # sys_enter and sys_exit, from their SEC names; detached at close
        who = f"pid {pid}" if pid else "all processes"
        print(f"tracing syscalls of {who} for {args.seconds:g}s...", flush=True)
        deadline = time.monotonic() + args.seconds
        if args.demo:
            for _ in range(DEMO_CALLS):
                os.getppid()
        try:
            time.sleep(max(0.0, deadline - time.monotonic()))
        except KeyboardInterrupt:
            pass
        stats = sorted(obj.maps["stats"].items(), key=lambda kv: kv[1].count, reverse=True)
        print(f"\n{'SYSCALL':<20} {'COUNT':>8} {'TOTAL us':>12} {'AVG ns':>10}")
        for nr, st in stats[: args.top]:
            name = names.get(nr, f"[{nr}]")
            avg = st.total_ns // st.count if st.count else 0
            print(f"{name:<20} {st.count:>8} {st.total_ns / 1000:>12.1f} {avg:>10}")
        print()
        tinybpf.print_log2_hist(obj.maps["hist"], "nsecs")
    total = sum(st.count for _, st in stats)
    print(f"{total} syscalls", file=sys.stderr)
    return 0 if total else 1


if __name__ == "__main__":
    sys.exit(main())
