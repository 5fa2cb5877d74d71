#!/usr/bin/env python3
"""tc_drop: drop the UDP datagrams to one port as they arrive, with a tcx ingress program.

Run as root: ``python examples/tc_drop.py --interface IFNAME --port PORT [--seconds N]``.
It loads examples/build/tc_drop.bpf.o (``tinybpf compile examples/tc_drop.bpf.c -o
examples/build/``), sets the port (a const volatile global) before load, and attaches the
program to IFNAME's ingress through tcx (a bpf_link: no qdisc to set up or clean up).

``--demo`` builds its own little network instead: two network namespaces joined by a veth
pair (10.200.1.1/30 <-> 10.200.1.2/30, addresses that exist only inside the namespaces),
sends datagrams to the dropped port and to the next one, and shows what arrived and what
the program dropped. The namespaces are removed at exit, also on SIGTERM/SIGINT.
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
ADDR_A, ADDR_B = "10.200.1.1", "10.200.1.2"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class VethPair:
    """Namespaces ``ns_a`` and ``ns_b``, joined by veth ``dev_a`` <-> ``dev_b``."""

    def __init__(self, tag: str) -> None:
        self.ns_a, self.ns_b = f"tinybpf-{tag}-a", f"tinybpf-{tag}-b"
        self.dev_a, self.dev_b = f"{tag}a"[:15], f"{tag}b"[:15]
        self.path_a, self.path_b = f"/run/netns/{self.ns_a}", f"/run/netns/{self.ns_b}"
        self.created: list[str] = []

    def create(self) -> None:
        for ns in (self.ns_a, self.ns_b):
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", self.ns_a, "link", "add", self.dev_a, "type", "veth",
           "peer", "name", self.dev_b, "netns", self.ns_b)  # fmt: skip
        for ns, dev, addr in ((self.ns_a, self.dev_a, ADDR_A), (self.ns_b, self.dev_b, ADDR_B)):
            ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")

    def destroy(self) -> None:
        """Delete the namespaces (the veth pair goes with them). Idempotent."""
        while self.created:
            subprocess.run(["ip", "netns", "del", self.created.pop()], capture_output=True)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: cleanup runs


def demo_traffic(net: VethPair, ports: tuple[int, int], n: int) -> dict[int, int]:
    """``n`` datagrams from ns_b to each port in ns_a; returns what arrived, per port."""
    with tinybpf.in_netns(net.path_a):
        rxs = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in ports]
    with tinybpf.in_netns(net.path_b):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    received = dict.fromkeys(ports, 0)
    try:
        for rx, port in zip(rxs, ports, strict=True):
            rx.bind((ADDR_A, port))
            rx.settimeout(0.5)
        for i in range(n):
            for port in ports:
                tx.sendto(f"datagram {i}".encode(), (ADDR_A, port))
        for rx, port in zip(rxs, ports, strict=True):
            with contextlib.suppress(TimeoutError):
                while received[port] < n:
                    rx.recv(2048)
                    received[port] += 1
    finally:
        for s in (*rxs, tx):
            s.close()
    for port in ports:
        print(f"UDP port {port}: sent {n}, received {received[port]} in {net.ns_a}")
    return received


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "tc_drop.bpf.o"))
    ap.add_argument("--interface", help="interface whose ingress to filter (not with --demo)")
    ap.add_argument("--port", type=int, default=5001, help="UDP port to drop")
    ap.add_argument("--seconds", type=float, default=5.0, help="how long to filter")
    ap.add_argument("--demo", action="store_true", help="filter on a veth pair of its own")
    ap.add_argument("--packets", type=int, default=10, help="--demo: datagrams per port")
    args = ap.parse_args(argv)
    if bool(args.demo) == bool(args.interface):
        ap.error("give either --interface or --demo")
    if not 0 < args.port < 65535:
        ap.error("--port must be between 1 and 65534")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    net = VethPair(f"tcdrop{os.getpid()}")
    received: dict[int, int] = {}
    try:
        obj = tinybpf.open(args.object)
        obj.globals["drop_port"] = args.port  # const volatile: set before load
        obj.load()
        with obj:
            prog = obj.program("drop_udp_port")
            if args.demo:
                net.create()
                # dev_a exists only in ns_a: looked up, and attached, there
                link = prog.attach_tcx(net.dev_a, "ingress", netns=net.path_a)
                where = f"{net.dev_a} in {net.ns_a}"
            else:
                link = prog.attach_tcx(args.interface, "ingress")
                where = args.interface
            with link:
                print(f"dropping UDP to port {args.port} arriving on {where}", flush=True)
                deadline = time.monotonic() + args.seconds
                if args.demo:
                    received = demo_traffic(net, (args.port, args.port + 1), args.packets)
                with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: show what we have
                    time.sleep(max(0.0, deadline - time.monotonic()))
                dropped, udp_passed, other = (obj.maps["counters"][i] for i in range(3))
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the cleanup
        net.destroy()
    print(f"dropped by BPF: {dropped} datagrams to port {args.port}")
    print(f"passed: {udp_passed} other UDP datagrams, {other} other packets")
    if args.demo:
        ok = (
            dropped == args.packets
            and received[args.port] == 0
            and received[args.port + 1] == args.packets
        )
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
