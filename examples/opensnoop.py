#!/usr/bin/env python3
"""opensnoop: trace openat() calls, with filters set before load and events decoded from BTF.

A libbpf-tools-style tool with no hand-written ctypes: the filters are ``const volatile``
globals written before load, the start map and the ring buffer are resized before load,
and each event (a struct with a nested struct and char arrays) is decoded from the
object's BTF and printed with its field names.

Run as root, after ``python -m tinybpf compile examples/opensnoop.bpf.c -o examples/build/``::

    python examples/opensnoop.py [--pid PID] [--uid UID] [--failed] [--seconds N] [--count N]
                                 [--json]

``--demo`` opens a few files itself (one of them missing) and, unless ``--pid`` is given,
traces only itself, so there is always something to see. ``--json`` prints one JSON object
per event (JSON lines).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import tinybpf

HERE = Path(__file__).resolve().parent


def fmt_value(value: Any) -> str:
    if isinstance(value, str):  # a char array: to_dict() gives it as text
        return repr(value)
    return str(value)


def fields(prefix: str, data: dict[str, Any]) -> list[str]:
    """``name=value`` for every field, nested structs as ``outer.inner=value``."""
    out = []
    for name, value in data.items():
        if isinstance(value, dict):
            out += fields(f"{prefix}{name}.", value)
        else:
            out.append(f"{prefix}{name}={fmt_value(value)}")
    return out


def demo_activity(stop: threading.Event, workdir: str) -> None:
    """Open an existing and a missing file a few times a second."""
    present = os.path.join(workdir, "present.txt")
    Path(present).write_text("x")
    missing = os.path.join(workdir, "missing.txt")
    while not stop.wait(0.05):
        with open(present):
            pass
        try:
            open(missing).close()
        except FileNotFoundError:
            pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "opensnoop").splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "opensnoop.bpf.o"))
    ap.add_argument("--pid", type=int, default=0, help="trace only this process")
    ap.add_argument("--uid", type=int, default=-1, help="trace only this user")
    ap.add_argument("--failed", action="store_true", help="only failed opens")
    ap.add_argument("--seconds", type=float, default=5.0, help="stop after this long")
    ap.add_argument("--count", type=int, default=0, help="stop after this many events")
    ap.add_argument("--max-inflight", type=int, default=1024, help="size of the start map")
    ap.add_argument("--ringbuf-kib", type=int, default=512, help="ring buffer size (KiB)")
    ap.add_argument("--demo", action="store_true", help="open some files to trace")
    ap.add_argument("--json", action="store_true", help="one JSON object per event")
    args = ap.parse_args(argv)

    obj = tinybpf.open(args.object)
    # configuration: .rodata (const volatile) and map sizes, only before load
    obj.globals["target_pid"] = args.pid or (os.getpid() if args.demo else 0)
    obj.globals["target_uid"] = args.uid & 0xFFFFFFFF
    obj.globals["failed_only"] = args.failed
    start, events = obj.maps["start"], obj.maps["events"]
    compiled = (start.max_entries, events.max_entries)
    start.max_entries = args.max_inflight
    events.max_entries = args.ringbuf_kib * 1024
    obj.load()
    print(
        f"start map: max_entries {start.max_entries} (compiled {compiled[0]}); "
        f"events ring buffer: {events.max_entries // 1024} KiB (compiled {compiled[1] // 1024})",
        file=sys.stderr,
    )

    seen = 0
    t0 = time.monotonic_ns()

    def on_event(ev: Any) -> int:  # ev: the ctypes class generated from BTF struct event
        nonlocal seen
        seen += 1
        if args.json:
            print(tinybpf.json_line(ev), flush=True)
            return -1 if args.count and seen >= args.count else 0
        d = ev.to_dict()
        d["ts_ns"] = f"{(d['ts_ns'] - t0) / 1e9:+.6f}s"
        d["flags"] = f"{d['flags']:#o}"
        print(" ".join(fields("", d)), flush=True)
        return -1 if args.count and seen >= args.count else 0

    stop = threading.Event()
    # the ring buffer first: with --demo the program traces this very process, so nothing
    # it does after attaching (such as importing the buffer code) should open files
    with (
        obj,
        tempfile.TemporaryDirectory() as workdir,
        tinybpf.BpfRingBuffer(events, on_event, event_type="event") as rb,
    ):
        obj.attach_all()  # both tracepoints (from their SEC names), detached by obj.close()
        if args.demo:
            threading.Thread(target=demo_activity, args=(stop, workdir), daemon=True).start()
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline and not (args.count and seen >= args.count):
            rb.poll(timeout_ms=100)
        stop.set()
        # .bss counters, read live through the memory-mapped map
        sent, dropped = obj.globals["events_sent"], obj.globals["events_dropped"]
    print(f"{seen} events printed ({sent} sent, {dropped} dropped)", file=sys.stderr)
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
