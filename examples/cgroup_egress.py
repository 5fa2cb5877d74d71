#!/usr/bin/env python3
"""cgroup_egress: block the UDP datagrams that a group of processes sends to one port.

Run as root, one of::

    python examples/cgroup_egress.py --port 53 -- COMMAND [ARGS...]   # run COMMAND blocked
    python examples/cgroup_egress.py --port 53 --cgroup /sys/fs/cgroup/unified/some.slice
    python examples/cgroup_egress.py --port 9999 --demo

It loads examples/build/cgroup_egress.bpf.o (``tinybpf compile examples/cgroup_egress.bpf.c
-o examples/build/``), sets the port (a const volatile global) before load and attaches the
cgroup_skb/egress program to a cgroup v2 directory: a fresh one, created under the cgroup2
mount and removed at exit (also on SIGTERM/SIGINT), or ``--cgroup``. A blocked send fails
with EPERM. ``--demo`` runs a child in the fresh cgroup that sends datagrams to
127.0.0.1:PORT (blocked) and to another local port (allowed), and reports what happened.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import tinybpf

HERE = Path(__file__).resolve().parent

# The demo child: sends N datagrams to each port, prints "<port> <sent> <refused>" per port.
CHILD = """
import socket, sys
n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in map(int, sys.argv[2:]):
    sent = refused = 0
    for i in range(n):
        try:
            s.sendto(b"datagram %d" % i, ("127.0.0.1", port))
            sent += 1
        except PermissionError:
            refused += 1
    print(port, sent, refused, flush=True)
"""


def cgroup2_root() -> Path:
    """The cgroup v2 mount: /sys/fs/cgroup/unified (hybrid layout) or /sys/fs/cgroup."""
    mounts = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            _, where, fstype, *_ = line.split()
            mounts[where] = fstype
    for where in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if mounts.get(where) == "cgroup2":
            return Path(where)
    for where, fstype in mounts.items():
        if fstype == "cgroup2":
            return Path(where)
    raise SystemExit("no cgroup v2 file system is mounted")


def remove_cgroup(path: Path) -> None:
    """rmdir, retried briefly: a process that just exited may still be leaving it."""
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    print(f"could not remove {path}", file=sys.stderr)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: cleanup runs


def run_in_cgroup(
    cgroup: Path, argv: list[str], stdout: int | None = None
) -> subprocess.Popen[str]:
    """Start ``argv`` as a member of ``cgroup`` (it joins before exec: nothing escapes)."""
    procs = str(cgroup / "cgroup.procs")

    def join() -> None:
        fd = os.open(procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")  # "0": the writing process itself
        finally:
            os.close(fd)

    return subprocess.Popen(argv, preexec_fn=join, stdout=stdout, text=True)


def demo(cgroup: Path, port: int, n: int) -> bool:
    rx_blocked = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx_allowed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx_blocked, rx_allowed:
        try:
            rx_blocked.bind(("127.0.0.1", port))  # to show that nothing arrives
        except OSError:
            rx_blocked.close()
        rx_allowed.bind(("127.0.0.1", 0))
        other = rx_allowed.getsockname()[1]
        child = run_in_cgroup(
            cgroup, [sys.executable, "-c", CHILD, str(n), str(port), str(other)],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        out, _ = child.communicate(timeout=30)
        report = {
            int(p): (int(s), int(r)) for p, s, r in (line.split() for line in out.splitlines())
        }
        arrived = {}
        for rx, p in ((rx_blocked, port), (rx_allowed, other)):
            arrived[p] = 0
            if rx.fileno() < 0:
                continue
            rx.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                while True:
                    rx.recv(2048)
                    arrived[p] += 1
    for p, what in ((port, "blocked"), (other, "allowed")):
        sent, refused = report.get(p, (0, 0))
        print(
            f"child pid {child.pid} -> 127.0.0.1:{p} ({what}): {sent} sent, "
            f"{refused} refused with EPERM, {arrived[p]} arrived"
        )
    return report.get(port) == (0, n) and report.get(other) == (n, 0) and arrived[other] == n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "cgroup_egress.bpf.o"))
    ap.add_argument("--port", type=int, required=True, help="UDP destination port to block")
    ap.add_argument("--cgroup", help="existing cgroup v2 directory to filter, for --seconds")
    ap.add_argument("--seconds", type=float, default=5.0, help="with --cgroup")
    ap.add_argument("--demo", action="store_true", help="run a child that tries both ports")
    ap.add_argument("--packets", type=int, default=5, help="--demo: datagrams per port")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="command to run, after --")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if sum((bool(command), bool(args.cgroup), args.demo)) != 1:
        ap.error("give exactly one of: a command (after --), --cgroup or --demo")
    if not 0 < args.port < 65536:
        ap.error("--port must be between 1 and 65535")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    fresh = None if args.cgroup else cgroup2_root() / f"tinybpf-cgegress-{os.getpid()}"
    ok = True
    child = None
    try:
        if fresh is not None:
            fresh.mkdir()
        cgroup = fresh or Path(args.cgroup)
        obj = tinybpf.open(args.object)
        obj.globals["blocked_port"] = args.port  # const volatile: set before load
        obj.load()
        with obj, obj.program("filter_egress").attach_cgroup(cgroup):
            print(f"blocking UDP to port {args.port} sent from cgroup {cgroup}", flush=True)
            if args.demo:
                ok = demo(cgroup, args.port, args.packets)
            elif command:
                child = run_in_cgroup(cgroup, command)
                ok = child.wait() == 0
            else:
                with contextlib.suppress(KeyboardInterrupt):
                    time.sleep(args.seconds)
            blocked, udp_allowed, other = (obj.maps["counters"][i] for i in range(3))
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the cleanup
        if child is not None and child.poll() is None:
            child.terminate()  # a cgroup with a process in it cannot be removed
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if fresh is not None:
            remove_cgroup(fresh)
    print(f"BPF counters: {blocked} blocked, {udp_allowed} other UDP allowed, {other} other")
    if args.demo:
        ok = ok and blocked == args.packets
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
