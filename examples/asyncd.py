#!/usr/bin/env python3
"""asyncd: an asyncio daemon that streams exec events from a ring buffer until told to stop.

Run as root: ``python examples/asyncd.py [--seconds N] [--count N]``. It loads
examples/build/asyncd.bpf.o (``tinybpf compile examples/asyncd.bpf.c -o examples/build/``)
and reads the ring buffer with ``async for``, in the event loop, next to other tasks. SIGTERM
and SIGINT (loop.add_signal_handler) stop it cleanly: the reader task is cancelled, the
program detached, and it prints a "shutdown" line and exits 0. With ``--demo`` a task of
the same loop runs a few commands, so there is always something to see.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import tinybpf

HERE = Path(__file__).resolve().parent
DEMO_COMMANDS = (["/bin/true"], ["/bin/echo", "-n"])


async def demo_activity() -> None:
    while True:
        for cmd in DEMO_COMMANDS:
            # in a worker thread: a cancelled task never leaves a child behind unreaped
            await asyncio.to_thread(subprocess.run, cmd, stdout=subprocess.DEVNULL, check=False)
        await asyncio.sleep(0.3)


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reason = "end of --seconds"

    def on_signal(sig: signal.Signals) -> None:
        nonlocal reason
        reason = sig.name
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    if args.seconds:
        loop.call_later(args.seconds, stop.set)
    seen = 0

    async def stream(rb: tinybpf.BpfRingBuffer[object]) -> None:
        nonlocal seen, reason
        async for ev in rb:  # waits in the loop (epoll fd), never blocks it
            d = ev.to_dict()  # type: ignore[attr-defined]
            seen += 1
            print(
                f"exec pid={d['pid']} ppid={d['ppid']} uid={d['uid']} "
                f"comm={d['comm']} "
                f"file={d['filename']}",
                flush=True,
            )
            if args.count and seen >= args.count:
                reason = f"--count {args.count}"
                stop.set()

    with tinybpf.load(args.object) as obj:
        obj.attach_all()  # on_exec, from its SEC name; detached when the object closes
        async with tinybpf.BpfRingBuffer(obj.maps["exec_events"], event_type="exec_event") as rb:
            print("asyncd: streaming exec events (SIGTERM to stop)", flush=True)
            tasks = [asyncio.create_task(stream(rb))]
            if args.demo:
                tasks.append(asyncio.create_task(demo_activity()))
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
            for t in [*tasks, waiter]:
                t.cancel()
            results = await asyncio.gather(*tasks, waiter, return_exceptions=True)
            errors = [r for r in results if isinstance(r, Exception)]  # not CancelledError
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    if errors:
        print(f"asyncd: failed: {errors[0]!r}", file=sys.stderr)
        return 1
    print(f"shutdown: {reason}, {seen} events", flush=True)
    return 0 if seen or not args.demo else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "asyncd.bpf.o"))
    ap.add_argument("--seconds", type=float, default=0, help="stop after N seconds (0: never)")
    ap.add_argument("--count", type=int, default=0, help="stop after this many events")
    ap.add_argument("--demo", action="store_true", help="run some commands to trace")
    args = ap.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
