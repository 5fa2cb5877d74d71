#!/usr/bin/env python3
"""taskdump: list processes (or threads) with a BPF task iterator, like a tiny `ps`.

Run as root: ``python examples/taskdump.py [--threads] [--pid PID] [--comm NAME]``. It loads
examples/build/taskdump.bpf.o (``tinybpf compile examples/taskdump.bpf.c -o
examples/build/``), attaches the SEC("iter/task") program and reads the iterator: every
read runs the program over the tasks and returns what it printed. ``--pid`` restricts the
iterator itself to one process. With ``--demo`` it starts a ``sleep`` child first and checks
that the child shows up.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import tinybpf

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "taskdump.bpf.o"))
    ap.add_argument("--threads", action="store_true", help="one line per thread")
    ap.add_argument("--pid", type=int, default=0, help="only this process (iterator option)")
    ap.add_argument("--comm", default="", help="only tasks whose command contains this")
    ap.add_argument("--demo", action="store_true", help="start a child and look for it")
    args = ap.parse_args(argv)

    child = subprocess.Popen(["sleep", "30"]) if args.demo else None
    try:
        obj = tinybpf.open(args.object)
        obj.globals["show_threads"] = args.threads  # const volatile: set before load
        obj.load()
        with obj, obj.program("dump_task").attach_iter(pid=args.pid) as it:
            text = it.read_text()
    finally:
        if child is not None:
            child.kill()
            child.wait()
    rows = text.splitlines()
    if args.comm:
        rows = [r for r in rows if args.comm in r.split(None, 5)[-1]]
    print(f"{'PID':>7} {'TID':>7} {'PPID':>7} {'UID':>5} {'THREADS':>7} COMM")
    for row in rows:
        print(row)
    print(f"{len(rows)} tasks", file=sys.stderr)
    if child is not None:
        found = any(r.split()[0] == str(child.pid) and r.split()[-1] == "sleep" for r in rows)
        print(f"demo child {child.pid} (sleep) {'found' if found else 'NOT found'}")
        return 0 if found else 1
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
