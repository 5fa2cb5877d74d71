"""BpfProgram: properties and every attach method, each checked by its effect in the kernel.

Programs count events of this test process only (its tgid is written into config_map), so
the counts are exact whatever else runs on the machine.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.kernel import (
    cgroup2_root,
    file_offset,
    gcc_unavailable_reason,
    getpid_nr,
    kprobe_unavailable_reason,
    netns_unavailable_reason,
    tracepoint_unavailable_reason,
    uprobe_unavailable_reason,
)

import tinybpf
from tinybpf import BpfError, BpfLink, BpfProgType, ProgramInfo

pytestmark = pytest.mark.root

HELPERS = Path(__file__).resolve().parent / "helpers"

# counters[] slots of prog_trace.bpf.c
TP_GETPID = 0
TP_GETPPID = 1
RAW_GETPID = 2
UPROBE_HITS = 3
UPROBE_ARGSUM = 4
URET_HITS = 5
URET_LAST = 6
KPROBE = 7


def _skip_unless_tracepoint(category: str, name: str) -> None:
    reason = tracepoint_unavailable_reason(category, name)
    if reason:
        pytest.skip(reason)


@pytest.fixture
def trace(obj_path):
    """prog_trace loaded, filtering on this process."""
    obj = tinybpf.load(obj_path("prog_trace"))
    obj.maps["config_map"][0] = os.getpid()
    nr = getpid_nr()
    if nr is not None:
        obj.maps["config_map"][1] = nr
    yield obj
    obj.close()


def count(obj: tinybpf.BpfObject, slot: int) -> int:
    return int(obj.maps["counters"][slot])


def call_getpid(n: int) -> None:
    for _ in range(n):
        os.getpid()


def call_getppid(n: int) -> None:
    for _ in range(n):
        os.getppid()


# --- properties ------------------------------------------------------------------------------


class TestProperties:
    def test_name_section_type(self, trace):
        p = trace.program("tp_getpid")
        assert p.name == "tp_getpid"
        assert p.section == "tracepoint/syscalls/sys_enter_getpid"
        assert p.type is BpfProgType.TRACEPOINT
        assert trace.program("raw_sys_enter").type is BpfProgType.RAW_TRACEPOINT
        assert trace.program("uprobe_target").type is BpfProgType.KPROBE
        assert trace.program("uprobe_target").section == "uprobe"

    def test_info(self, trace):
        info = trace.program("raw_sys_enter").info
        assert info == ProgramInfo(
            name="raw_sys_enter", section="raw_tp/sys_enter", type=BpfProgType.RAW_TRACEPOINT
        )
        with pytest.raises(AttributeError):
            info.name = "x"  # type: ignore[misc]

    def test_fd_is_a_bpf_prog_fd(self, trace):
        fd = trace.program("tp_getpid").fd
        assert fd > 0
        assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:bpf-prog"
        assert trace.program("tp_getpid").fd == fd

    def test_repr(self, trace, obj_path):
        assert repr(trace.program("tp_getpid")) == "<BpfProgram 'tp_getpid' type=TRACEPOINT>"
        with tinybpf.load(obj_path("xdp_count")) as obj:
            assert repr(obj.program("xdp_count_udp")) == "<BpfProgram 'xdp_count_udp' type=XDP>"

    def test_types_of_other_fixtures(self, obj_path):
        with tinybpf.load(obj_path("cgroup_sock")) as obj:
            assert obj.program("count_sock").type is BpfProgType.CGROUP_SOCK
            assert obj.program("count_sock").section == "cgroup/sock_create"


# --- tracepoints ---------------------------------------------------------------------------


class TestTracepoint:
    def test_auto_attach_counts_getpid(self, trace):
        _skip_unless_tracepoint("syscalls", "sys_enter_getpid")
        link = trace.program("tp_getpid").attach()
        try:
            assert isinstance(link, BpfLink)
            before = count(trace, TP_GETPID)
            call_getpid(7)
            assert count(trace, TP_GETPID) - before == 7
        finally:
            link.destroy()

    def test_counter_stops_after_destroy(self, trace):
        _skip_unless_tracepoint("syscalls", "sys_enter_getpid")
        link = trace.program("tp_getpid").attach()
        call_getpid(3)
        link.destroy()
        after = count(trace, TP_GETPID)
        assert after == 3
        call_getpid(5)
        assert count(trace, TP_GETPID) == after

    def test_not_attached_counts_nothing(self, trace):
        call_getpid(5)
        assert count(trace, TP_GETPID) == 0

    def test_auto_attach_description(self, trace):
        _skip_unless_tracepoint("syscalls", "sys_enter_getpid")
        with trace.program("tp_getpid").attach() as link:
            assert repr(link) == f"<BpfLink fd={link.fd} (auto-attach tp_getpid)>"

    def test_attach_tracepoint(self, trace):
        _skip_unless_tracepoint("syscalls", "sys_enter_getppid")
        link = trace.program("tp_getppid").attach_tracepoint("syscalls", "sys_enter_getppid")
        try:
            assert repr(link) == (f"<BpfLink fd={link.fd} (tracepoint:syscalls/sys_enter_getppid)>")
            call_getppid(4)
            call_getpid(2)  # another syscall: not counted by this program
            assert count(trace, TP_GETPPID) == 4
        finally:
            link.destroy()
        call_getppid(2)
        assert count(trace, TP_GETPPID) == 4

    def test_attach_tracepoint_elsewhere_than_the_section(self, trace):
        # the category/name given wins over the SEC() name
        _skip_unless_tracepoint("syscalls", "sys_enter_getppid")
        with trace.program("tp_getpid").attach_tracepoint("syscalls", "sys_enter_getppid"):
            call_getpid(3)
            call_getppid(2)
        assert count(trace, TP_GETPID) == 2

    def test_attach_missing_tracepoint(self, trace):
        with pytest.raises(BpfError) as ei:
            trace.program("tp_getpid").attach_tracepoint("syscalls", "sys_enter_no_such_call")
        assert ei.value.errno == errno.ENOENT
        assert isinstance(ei.value, FileNotFoundError)
        assert "sys_enter_no_such_call" in ei.value.message


class TestRawTracepoint:
    def test_attach_raw_tracepoint_counts_getpid(self, trace):
        if getpid_nr() is None:
            pytest.skip(f"getpid syscall number unknown for {os.uname().machine}")
        link = trace.program("raw_sys_enter").attach_raw_tracepoint("sys_enter")
        try:
            assert repr(link) == f"<BpfLink fd={link.fd} (raw_tracepoint:sys_enter)>"
            call_getpid(6)
            call_getppid(3)
            assert count(trace, RAW_GETPID) == 6
        finally:
            link.destroy()
        call_getpid(2)
        assert count(trace, RAW_GETPID) == 6

    def test_auto_attach_raw_tracepoint(self, trace):
        if getpid_nr() is None:
            pytest.skip(f"getpid syscall number unknown for {os.uname().machine}")
        with trace.program("raw_sys_enter").attach() as link:
            assert "auto-attach raw_sys_enter" in repr(link)
            call_getpid(2)
        assert count(trace, RAW_GETPID) == 2

    def test_missing_raw_tracepoint(self, trace):
        with pytest.raises(BpfError) as ei:
            trace.program("raw_sys_enter").attach_raw_tracepoint("no_such_raw_tracepoint")
        assert ei.value.errno == errno.ENOENT
        assert ei.value.message.startswith("attach raw tracepoint to 'no_such_raw_tracepoint'")


# --- attach() on sections without auto-attach --------------------------------------------


class TestAutoAttachUnsupported:
    def test_xdp_section_has_no_auto_attach(self, obj_path):
        with tinybpf.load(obj_path("xdp_count")) as obj, pytest.raises(BpfError) as ei:
            obj.program("xdp_count_udp").attach()
        e = ei.value
        assert e.message.startswith("attach program 'xdp_count_udp' failed: ")
        assert e.errno == errno.EOPNOTSUPP
        assert isinstance(e, tinybpf.BpfNotSupportedError)

    def test_bare_uprobe_section_has_nothing_to_auto_attach(self, trace):
        # SEC("uprobe") names no binary: libbpf auto-attach cannot know where
        with pytest.raises(BpfError) as ei:
            trace.program("uprobe_target").attach()
        assert ei.value.message.startswith("attach program 'uprobe_target' failed")
        assert ei.value.errno != 0


# --- kprobes ---------------------------------------------------------------------------


class TestKprobe:
    def test_attach_kprobe_counts(self, trace):
        reason = kprobe_unavailable_reason()
        if reason:
            pytest.skip(reason)
        link = trace.program("kprobe_any").attach_kprobe("__x64_sys_getppid")
        try:
            assert repr(link) == f"<BpfLink fd={link.fd} (kprobe:__x64_sys_getppid)>"
            call_getppid(3)
            assert count(trace, KPROBE) == 3
        finally:
            link.destroy()

    def test_attach_kretprobe_description(self, trace):
        reason = kprobe_unavailable_reason()
        if reason:
            pytest.skip(reason)
        with trace.program("kprobe_any").attach_kretprobe("__x64_sys_getppid") as link:
            assert "(kretprobe:__x64_sys_getppid)" in repr(link)

    def test_attach_kprobe_missing_symbol(self, trace):
        reason = kprobe_unavailable_reason()
        if reason:
            pytest.skip(reason)
        with pytest.raises(BpfError) as ei:
            trace.program("kprobe_any").attach_kprobe("tinybpf_no_such_kernel_function")
        assert ei.value.errno == errno.ENOENT

    def test_attach_kprobe_without_kernel_support_raises(self, trace):
        # the other side of the probe: where the kernel has no kprobes, attaching fails
        # with a BpfError that carries errno (never a crash or a silent link)
        if kprobe_unavailable_reason() is None:
            pytest.skip("kernel supports kprobes")
        with pytest.raises(BpfError) as ei:
            trace.program("kprobe_any").attach_kprobe("do_nanosleep")
        assert ei.value.message.startswith("attach kprobe to 'do_nanosleep' failed: ")
        assert ei.value.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL)


# --- uprobes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uprobe_binary(tmp_path_factory):
    """tests/helpers/uprobe_target.c built with gcc, and the file offset of its function."""
    reason = gcc_unavailable_reason() or uprobe_unavailable_reason()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("uprobe") / "uprobe_target"
    subprocess.run(
        ["gcc", "-O1", "-g", "-o", str(out), str(HELPERS / "uprobe_target.c")], check=True
    )
    return out, file_offset(out, "tinybpf_uprobe_target")


def run_target(binary: Path, n: int) -> int:
    out = subprocess.run([str(binary), str(n)], check=True, capture_output=True, text=True)
    return int(out.stdout)


class TestUprobe:
    def test_attach_uprobe_sees_every_call_and_its_argument(self, trace, uprobe_binary):
        binary, offset = uprobe_binary
        link = trace.program("uprobe_target").attach_uprobe(binary, offset)
        try:
            assert repr(link) == f"<BpfLink fd={link.fd} (uprobe:{binary}+{offset})>"
            assert run_target(binary, 5) == sum(2 * i + 1 for i in range(1, 6))
            assert count(trace, UPROBE_HITS) == 5
            assert count(trace, UPROBE_ARGSUM) == 1 + 2 + 3 + 4 + 5
        finally:
            link.destroy()
        run_target(binary, 3)
        assert count(trace, UPROBE_HITS) == 5

    def test_attach_uretprobe_sees_return_values(self, trace, uprobe_binary):
        binary, offset = uprobe_binary
        with trace.program("uretprobe_target").attach_uretprobe(str(binary), offset) as link:
            assert repr(link) == f"<BpfLink fd={link.fd} (uretprobe:{binary}+{offset})>"
            run_target(binary, 4)
            assert count(trace, URET_HITS) == 4
            assert count(trace, URET_LAST) == 2 * 4 + 1
        # the entry program was not attached
        assert count(trace, UPROBE_HITS) == 0

    def test_attach_uprobe_pid_filter(self, trace, uprobe_binary):
        # pid = this process: the target binary runs in a child, so nothing is counted
        binary, offset = uprobe_binary
        with trace.program("uprobe_target").attach_uprobe(binary, offset, pid=os.getpid()):
            run_target(binary, 3)
        assert count(trace, UPROBE_HITS) == 0

    def test_attach_uprobe_missing_binary(self, trace, tmp_path):
        with pytest.raises(BpfError) as ei:
            trace.program("uprobe_target").attach_uprobe(tmp_path / "missing", 0x100)
        assert ei.value.errno == errno.ENOENT
        assert isinstance(ei.value, FileNotFoundError)


# --- XDP on a veth pair ---------------------------------------------------------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veth():
    """A veth pair: host end in this namespace, peer end in a private netns.

    Addresses come from 198.18.0.0/15 (benchmarking range); the test sends UDP from the
    namespace to the host end only, so no packet leaves the pair.
    """
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    tag = os.getpid() % 100000
    ns, host, peer = f"tinybpf-{tag}", f"tbh{tag}", f"tbp{tag}"
    net = f"198.18.{tag % 250}"
    host_ip, peer_ip = f"{net}.1", f"{net}.2"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
        _ip("addr", "add", f"{host_ip}/30", "dev", host)
        _ip("link", "set", host, "up")
        _ip("-n", ns, "addr", "add", f"{peer_ip}/30", "dev", peer)
        _ip("-n", ns, "link", "set", peer, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        mac = Path(f"/sys/class/net/{host}/address").read_text().strip()
        # no ARP round trip: every packet the test sends is a UDP datagram
        _ip("-n", ns, "neigh", "replace", host_ip, "lladdr", mac, "dev", peer, "nud", "permanent")
        yield {"ns": ns, "host": host, "host_ip": host_ip}
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


UDP_PORT = 31337


SENDER = """
import socket, sys
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    s.sendto(b"tinybpf%d" % i, (dst, port))
"""


def send_udp_from_ns(ns: str, dst: str, n: int, port: int = UDP_PORT) -> None:
    subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", SENDER, dst, str(port), str(n)],
        check=True,
    )


def receive(sock: socket.socket, n: int) -> int:
    """Wait for n datagrams (they have passed XDP by then)."""
    got = 0
    sock.settimeout(5)
    while got < n:
        sock.recv(64)
        got += 1
    return got


@pytest.fixture
def xdp(obj_path):
    obj = tinybpf.load(obj_path("xdp_count"))
    obj.maps["config_map"][0] = UDP_PORT
    yield obj
    obj.close()


class TestXdp:
    def test_attach_xdp_by_name_counts_packets(self, xdp, veth):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
            rx.bind((veth["host_ip"], UDP_PORT))
            link = xdp.program("xdp_count_udp").attach_xdp(veth["host"])
            try:
                assert repr(link) == f"<BpfLink fd={link.fd} (xdp:{veth['host']})>"
                send_udp_from_ns(veth["ns"], veth["host_ip"], 5)
                assert receive(rx, 5) == 5  # XDP_PASS: the stack still gets them
                assert xdp.maps["packets"][0] == 5
            finally:
                link.destroy()
            send_udp_from_ns(veth["ns"], veth["host_ip"], 3)
            receive(rx, 3)
            assert xdp.maps["packets"][0] == 5

    def test_attach_xdp_by_ifindex(self, xdp, veth):
        ifindex = socket.if_nametoindex(veth["host"])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
            rx.bind((veth["host_ip"], UDP_PORT))
            with xdp.program("xdp_count_udp").attach_xdp(ifindex) as link:
                assert repr(link) == f"<BpfLink fd={link.fd} (xdp:if{ifindex})>"
                send_udp_from_ns(veth["ns"], veth["host_ip"], 2)
                receive(rx, 2)
            assert xdp.maps["packets"][0] == 2

    def test_other_ports_are_not_counted(self, xdp, veth):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
            rx.bind((veth["host_ip"], UDP_PORT + 1))
            with xdp.program("xdp_count_udp").attach_xdp(veth["host"]):
                send_udp_from_ns(veth["ns"], veth["host_ip"], 3, port=UDP_PORT + 1)
                receive(rx, 3)
            assert xdp.maps["packets"][0] == 0

    def test_attach_xdp_unknown_interface(self, xdp):
        with pytest.raises(OSError):
            xdp.program("xdp_count_udp").attach_xdp("tinybpf-nope0")

    def test_attach_xdp_twice_to_one_interface_fails(self, xdp, veth):
        prog = xdp.program("xdp_count_udp")
        with prog.attach_xdp(veth["host"]):
            with pytest.raises(BpfError) as ei:
                prog.attach_xdp(veth["host"])
            assert ei.value.errno == errno.EBUSY
            assert ei.value.message.startswith(f"attach XDP to interface {veth['host']} failed")


# --- cgroup ----------------------------------------------------------------------------


@pytest.fixture
def cgroup_dir():
    root = cgroup2_root()
    if root is None:
        pytest.skip("no writable cgroup v2 hierarchy (/sys/fs/cgroup/unified or /sys/fs/cgroup)")
    d = root / f"tinybpf-test-{os.getpid()}-{time.monotonic_ns()}"
    d.mkdir()
    try:
        yield d
    finally:
        # the children that joined it have exited (subprocess.run reaps them)
        for _ in range(50):
            try:
                d.rmdir()
                break
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                time.sleep(0.05)


CHILD = """
import os, socket, sys
with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
ok = denied = 0
for _ in range(int(sys.argv[2])):
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
        ok += 1
    except PermissionError:
        denied += 1
print(ok, denied)
"""


def sockets_in_cgroup(cg: Path, n: int) -> tuple[int, int]:
    """A child joins the cgroup and creates n sockets: (created, refused)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(cg), str(n)], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[0]), int(out[1])


@pytest.fixture
def cgsock(obj_path):
    obj = tinybpf.load(obj_path("cgroup_sock"))
    yield obj
    obj.close()


class TestCgroup:
    def test_attach_cgroup_by_path_counts_sockets(self, cgsock, cgroup_dir):
        link = cgsock.program("count_sock").attach_cgroup(cgroup_dir)
        try:
            assert repr(link) == f"<BpfLink fd={link.fd} (cgroup:{cgroup_dir})>"
            assert sockets_in_cgroup(cgroup_dir, 4) == (4, 0)
            assert cgsock.maps["sockets"][0] == 4
            # sockets created outside the cgroup are not seen
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
            assert cgsock.maps["sockets"][0] == 4
        finally:
            link.destroy()
        assert sockets_in_cgroup(cgroup_dir, 2) == (2, 0)
        assert cgsock.maps["sockets"][0] == 4

    def test_attach_cgroup_by_str_path(self, cgsock, cgroup_dir):
        with cgsock.program("count_sock").attach_cgroup(str(cgroup_dir)) as link:
            assert f"(cgroup:{cgroup_dir})" in repr(link)
            sockets_in_cgroup(cgroup_dir, 1)
        assert cgsock.maps["sockets"][0] == 1

    def test_deny_program_refuses_sockets(self, cgsock, cgroup_dir):
        with cgsock.program("deny_sock").attach_cgroup(cgroup_dir):
            assert sockets_in_cgroup(cgroup_dir, 3) == (0, 3)
        assert sockets_in_cgroup(cgroup_dir, 3) == (3, 0)

    def test_attach_cgroup_by_fd_leaves_the_fd_open(self, cgsock, cgroup_dir):
        fd = os.open(cgroup_dir, os.O_RDONLY)
        try:
            with cgsock.program("count_sock").attach_cgroup(fd) as link:
                assert repr(link) == f"<BpfLink fd={link.fd} (cgroup:fd{fd})>"
                sockets_in_cgroup(cgroup_dir, 2)
            os.fstat(fd)  # still ours, still open
        finally:
            os.close(fd)
        assert cgsock.maps["sockets"][0] == 2

    def test_attach_cgroup_missing_directory(self, cgsock, tmp_path):
        with pytest.raises(FileNotFoundError):
            cgsock.program("count_sock").attach_cgroup(tmp_path / "no-such-cgroup")

    def test_attach_cgroup_on_a_non_cgroup_directory(self, cgsock, tmp_path):
        with pytest.raises(BpfError) as ei:
            cgsock.program("count_sock").attach_cgroup(tmp_path)
        assert ei.value.errno != 0
        assert ei.value.message.startswith(f"attach cgroup to '{tmp_path}' failed")
