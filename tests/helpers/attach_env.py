"""Scaffolding of the attach tests: private network namespaces (entered in-process with
setns(2)), veth pairs between two of them, cgroups, gcc-built probe targets, UDP traffic.

Addresses are from 198.18.0.0/15 and exist only inside namespaces the tests create; no
route leads out of them, and they are deleted afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from helpers.kernel import cgroup2_root

HELPERS = Path(__file__).resolve().parent
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _tag() -> str:
    return uuid.uuid4().hex[:6]


@dataclass
class NetNs:
    """A named network namespace (``ip netns add``): /run/netns/<name>."""

    name: str

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the block with this thread in the namespace: sockets created, interfaces
        looked up and BPF hooks attached there belong to it. Restored on exit."""
        target = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)


@contextlib.contextmanager
def netns(prefix: str = "tbpf") -> Iterator[NetNs]:
    """A fresh namespace with its loopback up."""
    ns = NetNs(f"{prefix}-{_tag()}")
    ip("netns", "add", ns.name)
    try:
        ip("-n", ns.name, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


@dataclass
class VethPair:
    """veth ``a`` in namespace ``ns_a`` and its peer ``b`` in ``ns_b``, on one /30."""

    ns_a: NetNs
    ns_b: NetNs
    a: str
    b: str
    ip_a: str
    ip_b: str


def mac_address(ns: NetNs, dev: str) -> str:
    # not /sys/class/net: sysfs shows the namespace it was mounted in, not the thread's
    out = subprocess.run(
        ["ip", "-n", ns.name, "-j", "link", "show", "dev", dev],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return str(json.loads(out)[0]["address"])


@contextlib.contextmanager
def veth_pair() -> Iterator[VethPair]:
    tag = _tag()
    net = f"198.18.{int(tag[:2], 16) % 250}"
    a, b = f"tba{tag}", f"tbb{tag}"
    with netns("tbpfa") as ns_a, netns("tbpfb") as ns_b:
        ip(
            "link",
            "add",
            a,
            "netns",
            ns_a.name,
            "type",
            "veth",
            "peer",
            "name",
            b,
            "netns",
            ns_b.name,
        )
        pair = VethPair(ns_a, ns_b, a, b, f"{net}.1", f"{net}.2")
        for ns, dev, addr in ((ns_a, a, pair.ip_a), (ns_b, b, pair.ip_b)):
            ip("-n", ns.name, "addr", "add", f"{addr}/30", "dev", dev)
            ip("-n", ns.name, "link", "set", dev, "up")
        # no ARP: every packet of the tests is one UDP datagram, nothing else crosses
        for ns, dev, other_dev, other_ns, other_ip in (
            (ns_a, a, b, ns_b, pair.ip_b),
            (ns_b, b, a, ns_a, pair.ip_a),
        ):
            mac = mac_address(other_ns, other_dev)
            ip("-n", ns.name, "neigh", "replace", other_ip, "lladdr", mac, "dev", dev,
               "nud", "permanent")  # fmt: skip
        yield pair


class UdpPath:
    """UDP from namespace ``b`` to a socket bound in namespace ``a`` of a veth pair."""

    def __init__(self, pair: VethPair) -> None:
        self.pair = pair
        self._socks: list[socket.socket] = []
        with pair.ns_b.entered():
            self.tx = self._new()

    def _new(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socks.append(s)
        return s

    def receiver(self, port: int = 0) -> socket.socket:
        """A socket bound in namespace a (port 0: any free port)."""
        with self.pair.ns_a.entered():
            s = self._new()
            s.bind((self.pair.ip_a, port))
        s.settimeout(5)
        return s

    def send(self, rx: socket.socket, n: int = 1, payload: bytes = b"tinybpf") -> None:
        port = rx.getsockname()[1]
        for i in range(n):
            self.tx.sendto(payload + b"%d" % i, (self.pair.ip_a, port))

    def close(self) -> None:
        for s in self._socks:
            s.close()


def recv_n(sock: socket.socket, n: int) -> list[bytes]:
    """n datagrams (5 s timeout each)."""
    return [sock.recv(2048) for _ in range(n)]


def pending(sock: socket.socket) -> int:
    """How many datagrams wait on the socket now (they are read and discarded)."""
    count = 0
    sock.setblocking(False)
    try:
        while True:
            try:
                sock.recv(2048)
                count += 1
            except BlockingIOError:
                break
    finally:
        sock.settimeout(5)
    return count


# --- cgroups ---------------------------------------------------------------------------------


@contextlib.contextmanager
def cgroup_dir() -> Iterator[Path]:
    root = cgroup2_root()
    if root is None:
        raise LookupError("no writable cgroup v2 hierarchy")
    d = root / f"tinybpf-attach-{os.getpid()}-{_tag()}"
    d.mkdir()
    try:
        yield d
    finally:
        for _ in range(50):
            try:
                d.rmdir()
                break
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                time.sleep(0.05)


SOCKETS_CHILD = """
import os, socket, sys
with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
for _ in range(int(sys.argv[2])):
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
"""


def sockets_in_cgroup(python: str, cg: Path, n: int) -> None:
    """A child joins the cgroup, creates and closes n sockets, exits."""
    subprocess.run([python, "-c", SOCKETS_CHILD, str(cg), str(n)], check=True)


# --- probe targets ---------------------------------------------------------------------------


def build_c(source: str, out: Path) -> Path:
    subprocess.run(["gcc", "-O1", "-g", "-o", str(out), str(HELPERS / source)], check=True)
    return out


def libc_path() -> str:
    """The C library this process has mapped (what its os.getpid() calls)."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if name.startswith("libc.so") or (name.startswith("libc-") and ".so" in name):
                return path
    raise LookupError("no libc mapped in this process")
