#!/usr/bin/env python3
"""execsnoop: print every execve() on the system, decoded from a ring buffer.

Run as root: ``python examples/execsnoop.py [--seconds N] [--ppid PID] [--json]``. It compiles
nothing: it loads examples/build/execsnoop.bpf.o (``tinybpf compile examples/execsnoop.bpf.c
-o examples/build/``). With ``--demo`` it also runs a few commands itself, so there is
always something to see. ``--json`` prints one JSON object per event (JSON lines).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import tinybpf

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "execsnoop.bpf.o"))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--ppid", type=int, default=0, help="only children of this pid")
    ap.add_argument("--demo", action="store_true", help="run some commands to trace")
    ap.add_argument("--count", type=int, default=0, help="stop after this many events")
    ap.add_argument("--json", action="store_true", help="one JSON object per event")
    args = ap.parse_args(argv)

    obj = tinybpf.open(args.object)
    obj.globals["target_ppid"] = args.ppid  # const volatile: set before load
    obj.load()
    seen = 0
    done = threading.Event()

    def on_event(ev: object) -> int:
        nonlocal seen
        seen += 1
        if args.json:
            print(tinybpf.json_line(ev), flush=True)
            return -1 if args.count and seen >= args.count else 0
        d = ev.to_dict()  # type: ignore[attr-defined]
        print(
            f"{d['pid']:>7} {d['ppid']:>7} {d['uid']:>5} {d['comm']:<16} {d['filename']}",
            flush=True,
        )
        return -1 if args.count and seen >= args.count else 0

    with obj, tinybpf.BpfRingBuffer(obj.maps["events"], on_event, event_type="event") as rb:
        obj.attach_all()  # every program whose SEC() says where; detached by obj.close()
        if not args.json:
            print(f"{'PID':>7} {'PPID':>7} {'UID':>5} {'COMM':<16} FILENAME", flush=True)
        if args.demo:

            def activity() -> None:
                cmds = [["/bin/true"], ["/bin/echo", "-n"], ["/usr/bin/env", "true"]]
                while not done.wait(0.3):
                    for cmd in cmds:
                        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)

            threading.Thread(target=activity, daemon=True).start()
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline and not (args.count and seen >= args.count):
            rb.poll(timeout_ms=100)
        done.set()
    print(f"{seen} events", file=sys.stderr)
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
