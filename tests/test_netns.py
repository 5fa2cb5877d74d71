"""``netns=`` on the interface-taking attach calls (issue 19 item 2) and ``tinybpf.in_netns``.

Every test makes its own namespaces (``ip netns add``, unique names, deleted afterwards)
joined by a veth pair, attaches from the test's own namespace with ``netns=``, sends UDP
inside the namespaces only (``ip netns exec`` on addresses that exist only there), reads
the program's counters, detaches from the test's namespace and checks that counting
stopped, and that the calling thread never left its namespace.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers.attach_env import NetNs, VethPair, ip, veth_pair
from helpers.kernel import (
    netns_unavailable_reason,
    prog_type_unavailable_reason,
    tcx_unavailable_reason,
)

import tinybpf
from tinybpf import BpfProgType

pytestmark = pytest.mark.root

PORT = 4791  # the UDP port the fixtures count; only ever used inside the test namespaces


def _skip_if(reason: str | None) -> None:
    if reason:
        pytest.skip(reason)


def thread_ns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def ns_ino(ns: NetNs) -> int:
    return os.stat(ns.path).st_ino


SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(b"tinybpf %d" % i, (sys.argv[1], int(sys.argv[2])))
"""


def send_udp(ns: NetNs, dst: str, n: int, port: int = PORT, check: bool = True) -> None:
    """``n`` datagrams to ``dst``:``port`` from a process inside namespace ``ns``."""
    subprocess.run(
        ["ip", "netns", "exec", ns.name, sys.executable, "-c", SEND, dst, str(port), str(n)],
        check=check,
        capture_output=True,
        timeout=60,
    )


def link_json(ns: NetNs, dev: str) -> dict[str, object]:
    out = subprocess.run(
        ["ip", "-n", ns.name, "-j", "-d", "link", "show", "dev", dev],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out)[0])


XDP_GENERIC = 2  # "mode" of ip -j link's "xdp" object (iproute2's XDP_ATTACHED_SKB)


def xdp_mode(ns: NetNs, dev: str) -> int | None:
    """The XDP attach mode ip reports for the interface, None without a program."""
    xdp = link_json(ns, dev).get("xdp")
    return int(xdp["mode"]) if isinstance(xdp, dict) else None


def qdiscs(ns: NetNs, dev: str) -> list[str]:
    if shutil.which("tc") is None:
        pytest.skip("iproute2's 'tc' is not installed: cannot list the qdiscs")
    out = subprocess.run(
        ["tc", "-n", ns.name, "-j", "qdisc", "show", "dev", dev],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [q["kind"] for q in json.loads(out or "[]")]


@pytest.fixture
def pair():
    _skip_if(netns_unavailable_reason())
    with veth_pair() as p:
        yield p


@pytest.fixture
def loaded(obj_path):
    """loaded(name) -> a loaded fixture with udp_port[0] = PORT, closed after the test."""
    objs: list[tinybpf.BpfObject] = []

    def _load(name: str) -> tinybpf.BpfObject:
        obj = tinybpf.load(obj_path(name))
        objs.append(obj)
        obj.maps["udp_port"][0] = PORT
        return obj

    yield _load
    for obj in objs:
        obj.close()


def count(obj: tinybpf.BpfObject, i: int) -> int:
    return int(obj.maps["counts"][i])


def netns_forms(pair: VethPair, form: str, stack: list[object]) -> object:
    """The namespace of ``a`` in one of the accepted forms."""
    if form == "path":
        return pair.ns_a.path
    if form == "pathlike":
        return Path(pair.ns_a.path)
    if form == "fd":
        fd = os.open(pair.ns_a.path, os.O_RDONLY | os.O_CLOEXEC)
        stack.append(fd)
        return fd
    if form == "fileobj":
        f = open(pair.ns_a.path, "rb")  # noqa: SIM115 (closed by the test)
        stack.append(f)
        return f
    if form == "proc":
        # a process living in ns_a: its /proc/PID/ns/net
        p = subprocess.Popen(["ip", "netns", "exec", pair.ns_a.name, "sleep", "60"])
        stack.append(p)
        for _ in range(200):
            try:
                if os.stat(f"/proc/{p.pid}/ns/net").st_ino == ns_ino(pair.ns_a):
                    return f"/proc/{p.pid}/ns/net"
            except FileNotFoundError:
                pass
            threading.Event().wait(0.01)
        raise AssertionError("ip netns exec did not enter the namespace")
    raise AssertionError(form)


def close_forms(stack: list[object]) -> None:
    for item in stack:
        if isinstance(item, int):
            os.close(item)
        elif isinstance(item, subprocess.Popen):
            item.kill()
            item.wait()
        else:
            item.close()  # type: ignore[attr-defined]


# --- XDP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["path", "pathlike", "fd", "fileobj", "proc"])
def test_xdp_link_counts_in_the_namespace_and_stops_after_detach(pair, loaded, form):
    obj = loaded("attach_xdp")
    home = thread_ns()
    with pytest.raises(OSError):
        socket.if_nametoindex(pair.a)  # the interface exists only in ns_a
    stack: list[object] = []
    try:
        link = obj.program("xdp_count_a").attach_xdp(pair.a, netns=netns_forms(pair, form, stack))
    finally:
        close_forms(stack)  # the link does not need the caller's fd or process
    assert thread_ns() == home
    assert isinstance(link, tinybpf.BpfLink)
    assert link.info.ifindex == link_json(pair.ns_a, pair.a)["ifindex"]
    assert "xdp" in link_json(pair.ns_a, pair.a)
    send_udp(pair.ns_b, pair.ip_a, 5)
    assert count(obj, 0) == 5
    link.destroy()
    assert thread_ns() == home
    assert "xdp" not in link_json(pair.ns_a, pair.a)
    send_udp(pair.ns_b, pair.ip_a, 3)
    assert count(obj, 0) == 5


def test_xdp_by_index_in_the_namespace(pair, loaded):
    obj = loaded("attach_xdp")
    index = int(link_json(pair.ns_a, pair.a)["ifindex"])  # type: ignore[call-overload]
    with obj.program("xdp_count_a").attach_xdp(index, netns=pair.ns_a.path):
        send_udp(pair.ns_b, pair.ip_a, 2)
        assert count(obj, 0) == 2


def test_xdp_skb_mode_detaches_in_its_namespace_from_another_thread(pair, loaded):
    """The netlink XDP attachment is removed by ifindex: destroy() goes back into ns_a,
    from a thread that is itself in a third namespace (ns_b), and returns it there."""
    obj = loaded("attach_xdp")
    att = obj.program("xdp_count_a").attach_xdp(pair.a, mode="skb", netns=pair.ns_a.path)
    assert isinstance(att, tinybpf.XdpAttachment)
    assert xdp_mode(pair.ns_a, pair.a) == XDP_GENERIC
    send_udp(pair.ns_b, pair.ip_a, 4)
    assert count(obj, 0) == 4
    seen: list[object] = []

    def detach_from_ns_b() -> None:
        try:
            with tinybpf.in_netns(pair.ns_b.path):
                before = thread_ns()
                att.destroy()
                seen.append(thread_ns() == before == ns_ino(pair.ns_b))
        except BaseException as e:  # reported by the assertion below
            seen.append(e)

    t = threading.Thread(target=detach_from_ns_b)
    t.start()
    t.join(60)
    assert seen == [True]
    assert xdp_mode(pair.ns_a, pair.a) is None
    send_udp(pair.ns_b, pair.ip_a, 3)
    assert count(obj, 0) == 4


def test_xdp_skb_mode_collected_detaches_in_its_namespace(pair, loaded):
    obj = loaded("attach_xdp")
    att = obj.program("xdp_count_a").attach_xdp(pair.a, mode="skb", netns=pair.ns_a.path)
    assert xdp_mode(pair.ns_a, pair.a) == XDP_GENERIC
    with pytest.warns(tinybpf.LinkDetachedWarning):
        del att
        import gc

        gc.collect()
    assert xdp_mode(pair.ns_a, pair.a) is None


# --- tc (clsact) and tcx ---------------------------------------------------------------------


def test_tc_filter_and_qdisc_made_and_removed_in_the_namespace(pair, loaded):
    obj = loaded("attach_tc")
    home = thread_ns()
    assert "clsact" not in qdiscs(pair.ns_a, pair.a)
    att = obj.program("tc_count").attach_tc(pair.a, "ingress", netns=pair.ns_a.path)
    assert thread_ns() == home
    assert att.created_hook
    assert "clsact" in qdiscs(pair.ns_a, pair.a)
    send_udp(pair.ns_b, pair.ip_a, 5)
    assert count(obj, 0) == 5
    att.destroy()  # from the test's namespace: the qdisc of ns_a goes
    assert thread_ns() == home
    assert "clsact" not in qdiscs(pair.ns_a, pair.a)
    send_udp(pair.ns_b, pair.ip_a, 2)
    assert count(obj, 0) == 5


def test_tc_same_interface_name_in_two_namespaces(loaded):
    """Two namespaces each with an interface of the same name: each attachment is made on
    (and removed from) the one in its own namespace."""
    _skip_if(netns_unavailable_reason())
    obj = loaded("attach_tc")
    with veth_pair() as p1, veth_pair() as p2:
        name = "tbpfsame0"
        ip("-n", p1.ns_a.name, "link", "set", p1.a, "name", name)
        ip("-n", p2.ns_a.name, "link", "set", p2.a, "name", name)
        att1 = obj.program("tc_count").attach_tc(name, netns=p1.ns_a.path)
        att2 = obj.program("tc_drop").attach_tc(name, netns=p2.ns_a.path)
        send_udp(p1.ns_b, p1.ip_a, 3)
        send_udp(p2.ns_b, p2.ip_a, 2)
        assert (count(obj, 0), count(obj, 1)) == (3, 2)
        att1.destroy()
        assert "clsact" not in qdiscs(p1.ns_a, name)
        assert "clsact" in qdiscs(p2.ns_a, name)
        att2.destroy()
        assert "clsact" not in qdiscs(p2.ns_a, name)


def test_an_attachment_keeps_its_namespace_after_ip_netns_del(pair, loaded):
    """``ip netns del`` removes the name; the attachment holds the namespace, so the filter
    keeps counting, and destroy() still goes back into it."""
    obj = loaded("attach_tc")
    home = thread_ns()
    att = obj.program("tc_count").attach_tc(pair.a, netns=pair.ns_a.path)
    ip("netns", "del", pair.ns_a.name)
    send_udp(pair.ns_b, pair.ip_a, 3)
    assert count(obj, 0) == 3
    att.destroy()
    assert thread_ns() == home
    # the namespace goes with the last reference (asynchronously), the veth pair with it:
    # the datagram is dropped or refused (ENETUNREACH), and nothing counts it
    send_udp(pair.ns_b, pair.ip_a, 1, check=False)
    assert count(obj, 0) == 3


def test_tcx_link_in_the_namespace(pair, loaded):
    _skip_if(tcx_unavailable_reason())
    obj = loaded("attach_tc")
    home = thread_ns()
    link = obj.program("tcx_count").attach_tcx(pair.a, "ingress", netns=pair.ns_a.path)
    assert thread_ns() == home
    assert link.info.ifindex == link_json(pair.ns_a, pair.a)["ifindex"]
    send_udp(pair.ns_b, pair.ip_a, 4)
    assert count(obj, 2) == 4
    link.destroy()
    send_udp(pair.ns_b, pair.ip_a, 2)
    assert count(obj, 2) == 4


# --- netfilter -------------------------------------------------------------------------------


def test_netfilter_hook_of_the_namespace(pair, loaded):
    """A netfilter hook belongs to one namespace: attached with netns=ns_a it sees what
    arrives in ns_a, not what stays inside ns_b."""
    _skip_if(prog_type_unavailable_reason(BpfProgType.NETFILTER, "netfilter programs"))
    obj = loaded("attach_nf")
    home = thread_ns()
    link = obj.program("nf_count").attach_netfilter(
        socket.AF_INET, "local_in", 100, netns=pair.ns_a.path
    )
    assert thread_ns() == home
    send_udp(pair.ns_b, pair.ip_a, 5)
    send_udp(pair.ns_b, pair.ip_b, 4)  # local to ns_b: another namespace's hooks
    assert count(obj, 0) == 5
    link.destroy()
    send_udp(pair.ns_b, pair.ip_a, 3)
    assert count(obj, 0) == 5


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["attach_xdp", "attach_tc", "attach_tcx"])
def test_unknown_interface_names_interface_and_namespace(pair, loaded, how):
    obj = loaded("attach_tc" if how != "attach_xdp" else "attach_xdp")
    prog = obj.program({"attach_xdp": "xdp_count_a", "attach_tc": "tc_count"}.get(how, "tcx_count"))
    home = thread_ns()
    # pair.b exists, but in ns_b
    with pytest.raises(tinybpf.BpfError) as ei:
        getattr(prog, how)(pair.b, netns=pair.ns_a.path)
    assert ei.value.errno == errno.ENODEV
    assert (
        f"no network interface named '{pair.b}' in network namespace {pair.ns_a.path}"
        in ei.value.message
    )
    assert thread_ns() == home


def test_unknown_index_names_index_and_namespace(pair, loaded):
    obj = loaded("attach_xdp")
    with pytest.raises(tinybpf.BpfError) as ei:
        obj.program("xdp_count_a").attach_xdp(99999, netns=pair.ns_a.path)
    assert ei.value.errno == errno.ENODEV
    assert f"no network interface with index 99999 in network namespace {pair.ns_a.path}" in str(
        ei.value
    )


def test_a_failure_inside_the_namespace_restores_the_thread(pair, loaded):
    obj = loaded("attach_xdp")
    home = thread_ns()
    first = obj.program("xdp_count_a").attach_xdp(pair.a, mode="skb", netns=pair.ns_a.path)
    try:
        with pytest.raises(tinybpf.BpfError) as ei:  # no replace: the kernel refuses
            obj.program("xdp_count_b").attach_xdp(pair.a, mode="skb", netns=pair.ns_a.path)
        assert f"in network namespace {pair.ns_a.path} failed" in ei.value.message
        assert thread_ns() == home
    finally:
        first.destroy()


def test_a_missing_namespace_path(loaded):
    obj = loaded("attach_xdp")
    with pytest.raises(tinybpf.BpfFileNotFoundError) as ei:
        obj.program("xdp_count_a").attach_xdp("lo", netns="/run/netns/tinybpf-no-such-ns")
    assert isinstance(ei.value, FileNotFoundError)
    assert "/run/netns/tinybpf-no-such-ns" in str(ei.value)
    assert "ip netns add" in str(ei.value)


@pytest.mark.parametrize(
    ("target", "why"),
    [("/proc/self/ns/mnt", "a namespace of another type"), ("file", "not a namespace")],
)
def test_not_a_network_namespace(loaded, tmp_path, target, why):
    obj = loaded("attach_xdp")
    if target == "file":
        target = str(tmp_path / "plain")
        Path(target).write_text("x")
    home = thread_ns()
    with pytest.raises(ValueError, match="is not a network namespace") as ei:
        obj.program("xdp_count_a").attach_xdp("lo", netns=target)
    assert target in str(ei.value) and why in str(ei.value)
    assert thread_ns() == home


def test_bad_fds_and_types(loaded):
    prog = loaded("attach_nf").program("nf_count")
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    os.close(fd)
    with pytest.raises(ValueError, match=f"netns fd {fd} is not an open file descriptor"):
        prog.attach_netfilter(socket.AF_INET, "local_in", 100, netns=fd)
    with pytest.raises(ValueError, match="not -1"):
        prog.attach_netfilter(socket.AF_INET, "local_in", 100, netns=-1)
    for bad in (True, 1.5, b"/proc/self/ns/net", None.__class__):
        with pytest.raises(TypeError, match="netns must be a path"):
            prog.attach_netfilter(socket.AF_INET, "local_in", 100, netns=bad)


# --- threads and in_netns --------------------------------------------------------------------


def test_threads_attach_in_different_namespaces_at_once(loaded):
    """Threads attaching in their own namespaces at the same time, each to an interface
    whose index is the same in every namespace (2: the first after lo): they all hold their
    links at once, so an attach in another thread's namespace would find that ifindex
    taken (EBUSY). Every thread (the main one too) stays in its namespace. (No process is
    spawned while the threads run: a fork copies the link fds and delays their release.)"""
    _skip_if(netns_unavailable_reason())
    obj = loaded("attach_xdp")
    prog = obj.program("xdp_count_a")
    home = thread_ns()
    with veth_pair() as p1, veth_pair() as p2:
        targets = [(p1.a, p1.ns_a), (p1.b, p1.ns_b), (p2.a, p2.ns_a)]
        for dev, ns in targets:
            with tinybpf.in_netns(ns.path):
                assert socket.if_nametoindex(dev) == 2
        errors: list[str] = []
        rounds = threading.Barrier(len(targets))

        def worker(dev: str, ns: NetNs) -> None:
            mine = thread_ns()
            try:
                for _ in range(20):
                    rounds.wait(30)
                    link = prog.attach_xdp(dev, netns=ns.path)
                    if thread_ns() != mine:
                        errors.append(f"{dev}: thread left its namespace")
                    rounds.wait(30)  # every thread holds its link now
                    link.destroy()
            except Exception as e:
                errors.append(f"{dev}: {type(e).__name__}: {e}")
                rounds.abort()

        threads = [threading.Thread(target=worker, args=t) for t in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert thread_ns() == home


def test_in_netns_moves_the_thread_for_the_block(pair):
    home = thread_ns()
    with tinybpf.in_netns(pair.ns_a.path):
        assert thread_ns() == ns_ino(pair.ns_a)
        assert socket.if_nametoindex(pair.a) > 0
    assert thread_ns() == home
    with pytest.raises(KeyError), tinybpf.in_netns(pair.ns_a.path):
        raise KeyError("inside")
    assert thread_ns() == home
    # nested: back to the outer namespace, then home
    with tinybpf.in_netns(pair.ns_a.path):
        with tinybpf.in_netns(pair.ns_b.path):
            assert thread_ns() == ns_ino(pair.ns_b)
        assert thread_ns() == ns_ino(pair.ns_a)
    assert thread_ns() == home
