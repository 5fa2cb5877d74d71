#!/usr/bin/env python3
"""uprobe_libc: trace getenv() calls in libc, with the variable asked for and the result.

Run as root: ``python examples/uprobe_libc.py [--pid PID] [--seconds N] [--count N]``. It
loads examples/build/uprobe_libc.bpf.o (``tinybpf compile examples/uprobe_libc.bpf.c -o
examples/build/``) and attaches a uprobe and a uretprobe to the ``getenv`` symbol of
libc.so.6 (libbpf finds the library and the symbol). With ``--demo`` it traces itself while
it calls getenv() through ctypes, so the output is known in advance.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time
from pathlib import Path

import tinybpf

HERE = Path(__file__).resolve().parent
DEMO_VALUE = "hello from tinybpf"
DEMO_NAMES = ("TINYBPF_DEMO", "TINYBPF_NO_SUCH_VARIABLE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "uprobe_libc.bpf.o"))
    ap.add_argument("--libc", default="libc.so.6", help="library (path or name) to probe")
    ap.add_argument("--pid", type=int, default=0, help="only this process (default: all)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--count", type=int, default=0, help="stop after this many calls")
    ap.add_argument("--demo", action="store_true", help="trace this process calling getenv()")
    args = ap.parse_args(argv)

    pid = os.getpid() if args.demo and not args.pid else args.pid
    obj = tinybpf.open(args.object)
    obj.globals["target_pid"] = pid  # const volatile: set before load
    obj.load()
    seen: list[tuple[str, str | None]] = []

    def on_event(ev: object) -> int:
        d = ev.to_dict()  # type: ignore[attr-defined]
        name = d["name"]
        value = d["value"] if d["found"] else None
        seen.append((name, value))
        shown = "NULL" if value is None else f'"{value}"'
        print(
            f'{d["pid"]:>7} {d["tid"]:>7} {d["comm"]:<16} getenv("{name}") = {shown}',
            flush=True,
        )
        return -1 if args.count and len(seen) >= args.count else 0

    prog_in, prog_out = obj.program("getenv_entry"), obj.program("getenv_return")
    attach_pid = pid or -1  # also filtered by the kernel: other processes never stop here
    with (
        obj,
        prog_in.attach_uprobe(args.libc, pid=attach_pid, symbol="getenv"),
        prog_out.attach_uretprobe(args.libc, pid=attach_pid, symbol="getenv"),
        tinybpf.BpfRingBuffer(obj.maps["events"], on_event, event_type="event") as rb,
    ):
        print(f"{'PID':>7} {'TID':>7} {'COMM':<16} CALL", flush=True)
        if args.demo:
            os.environ[DEMO_NAMES[0]] = DEMO_VALUE  # putenv(): now getenv() finds it
            getenv = ctypes.CDLL(None).getenv
            getenv.restype = ctypes.c_char_p
            getenv.argtypes = [ctypes.c_char_p]
            for name in DEMO_NAMES:
                getenv(name.encode())
        deadline = time.monotonic() + args.seconds
        try:
            while time.monotonic() < deadline and not (args.count and len(seen) >= args.count):
                rb.poll(timeout_ms=100)
                if args.demo and all(n in dict(seen) for n in DEMO_NAMES):
                    break
        except KeyboardInterrupt:
            pass
    print(f"{len(seen)} calls", file=sys.stderr)
    if args.demo:
        got = dict(seen)
        ok = (
            got.get(DEMO_NAMES[0]) == DEMO_VALUE and DEMO_NAMES[1] in got and not got[DEMO_NAMES[1]]
        )
        return 0 if ok else 1
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
