"""Every label decoder of ebpf_exporter's schema, on real inputs from this machine."""

from __future__ import annotations

import errno
import os
import socket
import sys

import pytest
from conftest import requires_root

pytest.importorskip("yaml", reason="the export extra (PyYAML) is not installed")

from tinybpf.export import DECODERS, DecodeError, DecoderSpec, SkipLabelSet, set_pci_ids_path
from tinybpf.export.decoders import DecoderSet

ORDER = sys.byteorder


def dec(data: bytes, *specs: DecoderSpec | str) -> str:
    chain = tuple(DecoderSpec(s) if isinstance(s, str) else s for s in specs)
    return DecoderSet.decode(data, chain)


def u(n: int, size: int = 8) -> bytes:
    return n.to_bytes(size, ORDER)


def test_all_eighteen_decoders_are_known():
    assert set(DECODERS) == {
        "uint", "string", "hex", "inet_ip", "ksym", "kstack", "majorminor", "ifname",
        "dname", "static_map", "regexp", "cgroup", "errno", "syscall",
        "pci_vendor", "pci_device", "pci_class", "pci_subclass",
    }  # fmt: skip


def test_uint_sizes_and_bad_size():
    assert dec(u(1234567890123, 8), "uint") == "1234567890123"
    assert dec(u(70000, 4), "uint") == "70000"
    assert dec(u(513, 2), "uint") == "513"
    assert dec(b"\xff", "uint") == "255"
    with pytest.raises(DecodeError, match="1, 2, 4 or 8 bytes, got 3"):
        dec(b"abc", "uint")


def test_string_stops_at_nul_and_hex():
    assert dec(b"bash\0\0garbage", "string") == "bash"
    assert dec(b"full-16-bytes-xx", "string") == "full-16-bytes-xx"
    assert dec(b"\x00\xab\x10", "hex") == "00ab10"


def test_inet_ip_v4_v6_and_bad_size():
    assert dec(socket.inet_pton(socket.AF_INET, "192.0.2.7"), "inet_ip") == "192.0.2.7"
    v6 = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert dec(v6, "inet_ip") == "2001:db8::1"
    with pytest.raises(DecodeError, match=r"4 .IPv4. or 16 .IPv6. bytes, got 8"):
        dec(u(1), "inet_ip")


@requires_root
def test_ksym_and_kstack_resolve_real_kernel_addresses():
    addrs = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, kind, name = line.split()[:3]
            if name in ("schedule", "do_sys_openat2") and kind in "tT":
                addrs[name] = int(addr, 16)
    assert len(addrs) == 2 and all(addrs.values()), "kallsyms hides addresses"
    assert dec(u(addrs["schedule"]), "ksym") == "schedule"
    assert dec(u(addrs["schedule"] + 4), "ksym") == "schedule"  # inside the function
    assert dec(u(1), "ksym") == "unknown_addr:0x1"
    stack = u(addrs["do_sys_openat2"] + 8) + u(addrs["schedule"]) + u(0) + u(addrs["schedule"])
    assert dec(stack, "kstack") == "do_sys_openat2\nschedule"  # stops at the first 0


def test_majorminor_with_a_real_block_device():
    with open("/proc/partitions") as f:
        rows = [line.split() for line in f.readlines()[2:] if line.strip()]
    if not rows:
        pytest.skip("/proc/partitions lists no block device here")
    major, minor, _, name = rows[0]
    dev = os.makedev(int(major), int(minor))  # new_encode_dev() = glibc's encoding
    assert dec(u(dev, 4), "majorminor") == name
    assert dec(u(os.makedev(4095, 1048000), 4), "majorminor") == "unknown:4095:1048000"


def test_ifname_of_loopback_and_unknown_index():
    idx = socket.if_nametoindex("lo")
    assert dec(u(idx, 4), "ifname") == "lo"
    assert dec(u(0x7FFFFFF0, 4), "ifname") == f"unknown:{0x7FFFFFF0}"


def test_dname_wire_format():
    wire = b"\x07example\x03com\x00padding"
    assert dec(wire, "string", "dname") == "example.com"  # string first, as the README says
    assert dec(b"\x03www\x07example\x03org\x00", "dname") == "www.example.org"
    with pytest.raises(DecodeError, match="runs past the end"):
        dec(b"\x09abc", "dname")


def test_static_map_unknown_and_allow_unknown():
    sm = DecoderSpec("static_map", {"1": "read", "2": "write"})
    assert dec(u(2, 4), "uint", sm) == "write"
    assert dec(u(3, 4), "uint", sm) == "unknown:3"
    loose = DecoderSpec("static_map", {"1": "read"}, allow_unknown=True)
    assert dec(u(3, 4), "uint", loose) == "3"


def test_regexp_keeps_matches_and_skips_the_rest():
    rx = DecoderSpec("regexp", regexps=("^systemd-journal$", "^syslog-ng$"))
    assert dec(b"syslog-ng\0\0\0", "string", rx) == "syslog-ng"
    with pytest.raises(SkipLabelSet):
        dec(b"bash\0", "string", rx)


def test_cgroup_id_to_path():
    from helpers.kernel import cgroup2_root

    root = cgroup2_root()
    if root is None:
        pytest.skip("cgroup v2 is not mounted")
    sub = next((e.path for e in os.scandir(root) if e.is_dir()), str(root))
    ino = os.stat(sub).st_ino  # a cgroup's id is its directory's inode number
    assert dec(u(ino), "uint", "cgroup") == sub
    assert dec(u(987654321987), "uint", "cgroup") == "unknown_cgroup_id:987654321987"
    with pytest.raises(DecodeError, match="put the 'uint' decoder before it"):
        dec(u(ino), "cgroup")


def test_errno_names():
    assert dec(u(errno.ENOENT, 4), "uint", "errno") == "ENOENT"
    assert dec(u(errno.EPERM, 4), "uint", "errno") == "EPERM"
    assert dec(u(4000, 4), "uint", "errno") == "unknown:4000"


def test_syscall_names_of_this_architecture():
    from helpers.kernel import getpid_nr

    nr = getpid_nr()
    if nr is None:
        pytest.skip("no syscall number of getpid known for this architecture")
    assert dec(u(nr), "uint", "syscall") == "getpid"
    assert dec(u(99999), "uint", "syscall") == "unknown_syscall:99999"


PCI_IDS = """\
# a few entries in pci.ids format
8086  Intel Corporation
\t1000  82542 Gigabit Ethernet Controller (Fiber)
\t\t8086 1000  PRO/1000 Gigabit Server Adapter
10de  NVIDIA Corporation
C 02  Network controller
\t00  Ethernet controller
\t80  Network controller
C 03  Display controller
\t00  VGA compatible controller
"""


@pytest.fixture
def pci_ids(tmp_path):
    path = tmp_path / "pci.ids"
    path.write_text(PCI_IDS)
    set_pci_ids_path(path)
    yield path
    set_pci_ids_path(None)


def test_pci_decoders(pci_ids):
    assert dec(u(0x8086, 2), "uint", "pci_vendor") == "Intel Corporation"
    assert dec(u(0x1234, 2), "uint", "pci_vendor") == "unknown pci vendor: 0x1234"
    dev = "82542 Gigabit Ethernet Controller (Fiber)"
    assert dec(u(0x80861000, 4), "uint", "pci_device") == dev
    assert dec(u(0x10DE0001, 4), "uint", "pci_device") == "unknown pci device: 0x10de0001"
    assert dec(u(0x02, 1), "uint", "pci_class") == "Network controller"
    assert dec(u(0x0300, 2), "uint", "pci_subclass") == "VGA compatible controller"
    assert dec(u(0x0299, 2), "uint", "pci_subclass") == "unknown pci subclass: 0x99 (class 0x02)"
    assert dec(u(0x0700, 2), "uint", "pci_subclass") == "unknown pci class: 0x07"


def test_pci_decoders_without_a_database(tmp_path):
    set_pci_ids_path(tmp_path / "missing")
    try:
        assert dec(u(0x8086, 2), "uint", "pci_vendor") == "missing pci.ids db"
    finally:
        set_pci_ids_path(None)


def test_regexp_lists_are_checked_the_same_for_decoders_and_the_cgroup_map():
    """A missing or empty list and a pattern that does not compile, as config issues with
    their key, for the regexp decoder and for cgroup_id_map alike."""
    from tinybpf.export.config import parse_config

    decoders = [{"name": "string"}, {"name": "regexp"}]
    doc = {
        "metrics": {
            "counters": [
                {
                    "name": "c",
                    "help": "h",
                    "labels": [
                        {"name": "comm", "size": 16, "decoders": decoders},
                        {
                            "name": "x",
                            "size": 4,
                            "decoders": [{"name": "regexp", "regexps": ["(", "^ok$"]}],
                        },
                    ],
                }
            ]
        },
        "cgroup_id_map": {"name": "cg", "type": "hash", "regexps": ["[bad"]},
    }
    _, issues = parse_config(doc, "t")
    got = {i.key: i.message for i in issues}
    assert got == {
        "metrics.counters[c].labels[0].decoders[1].regexps": (
            "the regexp decoder needs a non-empty 'regexps' list"
        ),
        "metrics.counters[c].labels[1].decoders[0].regexps[0]": (
            "invalid regular expression '(': missing ), unterminated subpattern at position 0"
        ),
        "cgroup_id_map.regexps[0]": (
            "invalid regular expression '[bad': unterminated character set at position 0"
        ),
    }
    doc["cgroup_id_map"]["regexps"] = []
    _, issues = parse_config(doc, "t")
    assert [(i.key, i.message) for i in issues if i.key.startswith("cgroup")] == [
        ("cgroup_id_map.regexps", "needs a non-empty list of regular expressions")
    ]
