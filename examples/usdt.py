#!/usr/bin/env python3
"""usdt: print the hits of a USDT probe (a static tracepoint compiled into a program).

Run as root: ``python examples/usdt.py --binary PATH [--pid PID] [--seconds N]``. It loads
examples/build/usdt.bpf.o, compiled with the multiarch include directory::

    python -m tinybpf compile examples/usdt.bpf.c -o examples/build/ \\
        --cflags=-I/usr/include/$(gcc -print-multiarch)

and attaches it to the probe ``tinybpf_app:request`` of the binary (see
examples/usdt_app.c). With ``--demo`` it builds usdt_app with gcc (into a temporary
directory, unless ``--binary`` is given), runs it and traces its requests.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tinybpf

HERE = Path(__file__).resolve().parent
PROVIDER, PROBE = "tinybpf_app", "request"


def build_app(out_dir: Path) -> Path:
    """gcc examples/usdt_app.c (it needs <sys/sdt.h>, Debian's systemtap-sdt-dev)."""
    out = out_dir / "usdt_app"
    subprocess.run(["gcc", "-O2", "-o", str(out), str(HERE / "usdt_app.c")], check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "usdt.bpf.o"))
    ap.add_argument("--binary", help="program with the probe (--demo: built when not given)")
    ap.add_argument("--pid", type=int, default=-1, help="only this process (default: all)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--count", type=int, default=0, help="stop after this many hits")
    ap.add_argument("--demo", action="store_true", help="run usdt_app and trace it")
    ap.add_argument("--requests", type=int, default=5, help="--demo: requests usdt_app makes")
    args = ap.parse_args(argv)
    if not args.demo and not args.binary:
        ap.error("--binary is required without --demo")

    tmp = Path(tempfile.mkdtemp(prefix="tinybpf-usdt-")) if not args.binary else None
    app = None
    try:
        binary = Path(args.binary) if args.binary else build_app(tmp)  # type: ignore[arg-type]
        pid = args.pid
        if args.demo:
            app = subprocess.Popen(
                [str(binary), str(args.requests)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert app.stdin and app.stdout
            if app.stdout.readline() != "ready\n":
                print("usdt_app did not start", file=sys.stderr)
                return 1
            pid = app.pid
        return trace(args, binary, pid, app)
    finally:
        if app is not None and app.poll() is None:
            app.kill()
            app.wait()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def trace(
    args: argparse.Namespace, binary: Path, pid: int, app: subprocess.Popen[str] | None
) -> int:
    seen: list[int] = []

    def on_event(ev: object) -> int:
        d = ev.to_dict()  # type: ignore[attr-defined]
        seen.append(d["id"])
        print(
            f"{d['pid']:>7} {PROVIDER}:{PROBE} id={d['id']} latency_us={d['latency_us']} "
            f"path={d['path']}",
            flush=True,
        )
        return -1 if args.count and len(seen) >= args.count else 0

    with (
        tinybpf.load(args.object) as obj,
        obj.program("on_request").attach_usdt(binary, PROVIDER, PROBE, pid=pid),
        tinybpf.BpfRingBuffer(obj.maps["events"], on_event, event_type="event") as rb,
    ):
        print(f"tracing {PROVIDER}:{PROBE} in {binary}" + (f" pid {pid}" if pid > 0 else ""))
        if app is not None:
            out, _ = app.communicate("go\n", timeout=10)  # the app fires its probes now
            print(f"usdt_app said: {out.strip()}")
        deadline = time.monotonic() + args.seconds
        try:
            while time.monotonic() < deadline and not (args.count and len(seen) >= args.count):
                rb.poll(timeout_ms=100)
                if app is not None and len(seen) >= args.requests:
                    break
        except KeyboardInterrupt:
            pass
    print(f"{len(seen)} probe hits", file=sys.stderr)
    if app is not None:
        return 0 if seen == list(range(1, args.requests + 1)) else 1
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
