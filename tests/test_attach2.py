"""More attachment kinds, each checked by its effect: struct_ops (a BPF TCP congestion
control), freplace (BPF_PROG_TYPE_EXT), sockmap stream verdicts and netkit devices.

Kinds this kernel or its tools lack skip with what the probe (or ``ip``) answered.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.attach_env import netns
from helpers.kernel import (
    link_type_unavailable_reason,
    netkit_unavailable_reason,
    prog_type_unavailable_reason,
    struct_ops_unavailable_reason,
)

import tinybpf
from tinybpf import BpfProgType

pytestmark = pytest.mark.root

CC_LIST = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
XDP_DROP, XDP_PASS = 1, 2


def _skip_if(reason: str | None) -> None:
    if reason:
        pytest.skip(reason)


@pytest.fixture
def objs() -> Iterator[list[tinybpf.BpfObject]]:
    """Objects appended here are closed after the test (in reverse order)."""
    held: list[tinybpf.BpfObject] = []
    yield held
    for obj in reversed(held):
        obj.close()


def _available_cc() -> list[str]:
    return CC_LIST.read_text().split()


@contextlib.contextmanager
def tcp_pair(cc: str | None = None) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback TCP pair (client, accepted server side)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    acc = None
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        if cc is not None:
            cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
        cli.connect(srv.getsockname())
        acc, _ = srv.accept()
        acc.settimeout(5)
        cli.settimeout(5)
        yield cli, acc
    finally:
        for s in (cli, acc, srv):
            if s is not None:
                s.close()


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


# --- struct_ops ------------------------------------------------------------------------------


class TestStructOps:
    def test_tcp_congestion_ops_registers_and_unregisters(self, obj_path, objs):
        _skip_if(struct_ops_unavailable_reason("tcp_congestion_ops"))
        assert "tinybpf_cc" not in _available_cc()
        obj = tinybpf.open(obj_path("attach2_cc"))
        objs.append(obj)
        obj.load()  # the probe said yes: a load error here is a real failure
        link = obj.maps["tinybpf_cc"].attach_struct_ops()
        try:
            assert "tinybpf_cc" in _available_cc()
            # a socket can select it, and the kernel then runs its programs
            with tcp_pair("tinybpf_cc") as (cli, acc):
                got = cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
                assert got.rstrip(b"\0") == b"tinybpf_cc"
                data = b"x" * (1 << 16)
                total = 0
                for _ in range(256):
                    cli.sendall(data)
                    total += len(_recv_exactly(acc, len(data)))
                assert total == 256 * len(data)
            assert int(obj.globals["calls"]) > 0
        finally:
            link.destroy()
        assert "tinybpf_cc" not in _available_cc()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with s, pytest.raises(OSError):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"tinybpf_cc")

    def test_struct_ops_map_attach_before_load_is_refused(self, obj_path, objs):
        obj = tinybpf.open(obj_path("attach2_cc"))
        objs.append(obj)
        with pytest.raises(tinybpf.BpfPhaseError):
            obj.maps["tinybpf_cc"].attach_struct_ops()
        assert "tinybpf_cc" not in _available_cc()


# --- freplace --------------------------------------------------------------------------------


class TestFreplace:
    def test_freplace_changes_xdp_verdict(self, obj_path, objs):
        target = tinybpf.load(obj_path("attach2_fr_target"))
        objs.append(target)
        tprog = target.program("fr_target")
        packet = bytes(14) + b"tinybpf-freplace" + bytes(32)
        assert tprog.test_run(packet).retval == XDP_PASS
        _skip_if(prog_type_unavailable_reason(BpfProgType.EXT, "freplace (EXT) programs"))
        ext = tinybpf.open(obj_path("attach2_fr_ext"))
        objs.append(ext)
        ext.program("fr_drop").set_attach_target("verdict", attach_prog_fd=tprog.fd)
        ext.load()
        link = ext.program("fr_drop").attach_freplace(tprog, "verdict")
        try:
            assert tprog.test_run(packet).retval == XDP_DROP
        finally:
            link.destroy()
        assert tprog.test_run(packet).retval == XDP_PASS


# --- sockmap ---------------------------------------------------------------------------------


class TestSockmap:
    def _counts(self, obj: tinybpf.BpfObject) -> list[int]:
        m = obj.maps["skb_counts"]
        return [int(m[0]), int(m[1])]

    @pytest.fixture(autouse=True)
    def _needs_sockmap_links(self):
        # attach_sockmap makes a BPF link (BPF_LINK_TYPE_SOCKMAP, Linux 6.10+)
        _skip_if(
            prog_type_unavailable_reason(BpfProgType.SK_SKB, "sk_skb programs")
            or link_type_unavailable_reason("SOCKMAP")
        )

    def test_stream_verdict_sees_data_of_sockets_in_the_map(self, obj_path, objs):
        obj = tinybpf.load(obj_path("attach2_sockmap"))
        objs.append(obj)
        prog = obj.program("sk_verdict")
        assert prog.type is BpfProgType.SK_SKB
        sock_map = obj.maps["sock_map"]
        link = prog.attach_sockmap(sock_map)
        try:
            with tcp_pair() as (cli, acc):
                # not in the map yet: the verdict program does not run
                cli.sendall(b"before")
                assert _recv_exactly(acc, 6) == b"before"
                assert self._counts(obj) == [0, 0]
                sock_map[0] = acc.fileno()
                cli.sendall(b"hello sockmap")
                # SK_PASS: the data still reaches the socket, now counted
                assert _recv_exactly(acc, 13) == b"hello sockmap"
                n, nbytes = self._counts(obj)
                assert n >= 1
                assert nbytes == 13
                del sock_map[0]
        finally:
            link.destroy()
        # after the link is gone, a socket added to the map is not seen by the program
        before = self._counts(obj)
        with tcp_pair() as (cli, acc):
            sock_map[1] = acc.fileno()
            cli.sendall(b"after")
            assert _recv_exactly(acc, 5) == b"after"
            del sock_map[1]
        assert self._counts(obj) == before

    def test_sockmap_attach_by_fd(self, obj_path, objs):
        obj = tinybpf.load(obj_path("attach2_sockmap"))
        objs.append(obj)
        sock_map = obj.maps["sock_map"]
        with obj.program("sk_verdict").attach_sockmap(sock_map.fd), tcp_pair() as (cli, acc):
            sock_map[0] = acc.fileno()
            cli.sendall(b"abc")
            assert _recv_exactly(acc, 3) == b"abc"
            assert self._counts(obj)[1] == 3
            del sock_map[0]


# --- netkit ----------------------------------------------------------------------------------


class TestNetkit:
    def test_netkit_primary_counts_packets(self, obj_path, objs):
        _skip_if(netkit_unavailable_reason())
        obj = tinybpf.load(obj_path("attach2_netkit"))
        objs.append(obj)
        with netns("tbpfnka") as ns_a, netns("tbpfnkb") as ns_b:
            run = ["ip", "-n", ns_a.name]
            subprocess.run(
                [*run, "link", "add", "nkp", "type", "netkit", "peer", "name", "nkq"],
                check=True,
                capture_output=True,
            )
            subprocess.run([*run, "link", "set", "nkq", "netns", ns_b.name], check=True)
            subprocess.run([*run, "addr", "add", "198.19.7.1/30", "dev", "nkp"], check=True)
            subprocess.run([*run, "link", "set", "nkp", "up"], check=True)
            runb = ["ip", "-n", ns_b.name]
            subprocess.run([*runb, "addr", "add", "198.19.7.2/30", "dev", "nkq"], check=True)
            subprocess.run([*runb, "link", "set", "nkq", "up"], check=True)
            # the primary device's program runs on what the primary transmits: packets
            # from namespace a (the primary's side) to b
            with ns_b.entered():
                rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                rx.bind(("198.19.7.2", 0))
            with ns_a.entered():
                link = obj.program("nk_count").attach_netkit("nkp")
            rx.settimeout(5)
            try:
                with ns_a.entered():
                    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                with tx:
                    for i in range(3):
                        tx.sendto(b"nk%d" % i, rx.getsockname())
                got = [rx.recv(64) for _ in range(3)]
                assert got == [b"nk0", b"nk1", b"nk2"]
                assert int(obj.globals["packets"]) >= 3
            finally:
                link.destroy()
                rx.close()
