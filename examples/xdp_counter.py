#!/usr/bin/env python3
"""xdp_counter: count the packets an interface receives, per protocol, with an XDP program.

Run as root: ``python examples/xdp_counter.py --interface IFNAME [--seconds N]`` counts what
IFNAME receives. It loads examples/build/xdp_counter.bpf.o (``tinybpf compile
examples/xdp_counter.bpf.c -o examples/build/``) and attaches it with a bpf_link (detached
when the link is destroyed, or when the process dies).

``--demo`` builds its own little network instead: two network namespaces joined by a veth
pair (10.200.0.1/30 <-> 10.200.0.2/30, addresses that exist only inside the namespaces, so
no packet can leave the machine), counts on one end what the other sends (UDP datagrams, a
TCP connection attempt, a ping) and removes the namespaces at exit, also on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import tinybpf

HERE = Path(__file__).resolve().parent
ADDR_A, ADDR_B = "10.200.0.1", "10.200.0.2"
UDP_PORT, TCP_PORT = 5001, 5002  # inside the demo namespaces only
ETH_NAMES = {0x0800: "IPv4", 0x86DD: "IPv6", 0x0806: "ARP"}
IP_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}


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


def icmp_echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    data = header + payload
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return struct.pack("!BBHHH", 8, 0, ~s & 0xFFFF, ident, seq) + payload


def demo_traffic(net: VethPair, udp_packets: int) -> int:
    """From ns_b to ns_a: UDP datagrams, one refused TCP connection, one ping. Returns the
    number of datagrams received in ns_a (XDP_PASS: every one of them)."""
    with tinybpf.in_netns(net.path_a):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with tinybpf.in_netns(net.path_b):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with rx, tx, tcp, icmp:
        rx.bind((ADDR_A, UDP_PORT))
        rx.settimeout(2)
        for i in range(udp_packets):
            tx.sendto(f"datagram {i}".encode(), (ADDR_A, UDP_PORT))
        received = 0
        with contextlib.suppress(TimeoutError):
            while received < udp_packets:
                rx.recv(2048)
                received += 1
        tcp.settimeout(2)
        print(f"TCP connect to port {TCP_PORT}: {os.strerror(tcp.connect_ex((ADDR_A, TCP_PORT)))}")
        icmp.settimeout(2)
        icmp.sendto(icmp_echo_request(os.getpid() & 0xFFFF, 1, b"tinybpf"), (ADDR_A, 0))
        try:
            icmp.recv(2048)
            print(f"ping {ADDR_A}: reply")
        except TimeoutError:
            print(f"ping {ADDR_A}: no reply")
    print(f"UDP: sent {udp_packets}, received {received} in {net.ns_a}")
    return received


def print_counts(counts: tinybpf.BpfMap) -> dict[str, int]:  # type: ignore[type-arg]
    rows = {}
    for key, value in counts.items():
        name = ETH_NAMES.get(key.eth_proto, f"0x{key.eth_proto:04x}")
        if key.eth_proto in (0x0800, 0x86DD):
            name += "/" + IP_NAMES.get(key.ip_proto, f"proto{key.ip_proto}")
        rows[name] = (value.packets, value.bytes)
    print(f"\n{'PROTOCOL':<14} {'PACKETS':>8} {'BYTES':>10}")
    for name, (packets, nbytes) in sorted(rows.items(), key=lambda r: -r[1][0]):
        print(f"{name:<14} {packets:>8} {nbytes:>10}")
    return {name: packets for name, (packets, _) in rows.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "xdp_counter.bpf.o"))
    ap.add_argument("--interface", help="interface to count on (not with --demo)")
    ap.add_argument("--seconds", type=float, default=5.0, help="how long to count")
    ap.add_argument("--demo", action="store_true", help="count on a veth pair of its own")
    ap.add_argument("--packets", type=int, default=10, help="--demo: UDP datagrams to send")
    args = ap.parse_args(argv)
    if bool(args.demo) == bool(args.interface):
        ap.error("give either --interface or --demo")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    net = VethPair(f"xdpc{os.getpid()}")
    try:
        with tinybpf.load(args.object) as obj:
            prog = obj.program("count_packets")
            if args.demo:
                net.create()
                # dev_a exists only in ns_a: looked up, and attached, there
                link = prog.attach_xdp(net.dev_a, netns=net.path_a)
                where = f"{net.dev_a} in {net.ns_a}"
            else:
                link = prog.attach_xdp(args.interface)
                where = args.interface
            with link:
                print(f"counting packets received on {where}", flush=True)
                deadline = time.monotonic() + args.seconds
                if args.demo:
                    received = demo_traffic(net, args.packets)
                with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: show what we have
                    time.sleep(max(0.0, deadline - time.monotonic()))
                counts = print_counts(obj.maps["counts"])
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the cleanup
        net.destroy()
    if args.demo:
        ok = received == args.packets and counts.get("IPv4/UDP") == args.packets
        return 0 if ok else 1
    return 0 if counts else 1


if __name__ == "__main__":
    sys.exit(main())
