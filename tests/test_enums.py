"""Enums and constants: kernel values, open enums (UNKNOWN_<n>), BtfKind fallback."""

from __future__ import annotations

import pytest

import tinybpf
from tinybpf import BPF_ANY, BPF_EXIST, BPF_NOEXIST, BpfAttachType, BpfMapType, BpfProgType, BtfKind

# The first generation's members, in kernel order (its enums stopped here).
MAP_TYPES_V1 = [
    "UNSPEC", "HASH", "ARRAY", "PROG_ARRAY", "PERF_EVENT_ARRAY", "PERCPU_HASH", "PERCPU_ARRAY",
    "STACK_TRACE", "CGROUP_ARRAY", "LRU_HASH", "LRU_PERCPU_HASH", "LPM_TRIE", "ARRAY_OF_MAPS",
    "HASH_OF_MAPS", "DEVMAP", "SOCKMAP", "CPUMAP", "XSKMAP", "SOCKHASH", "CGROUP_STORAGE",
    "REUSEPORT_SOCKARRAY", "PERCPU_CGROUP_STORAGE", "QUEUE", "STACK", "SK_STORAGE",
    "DEVMAP_HASH", "STRUCT_OPS", "RINGBUF", "INODE_STORAGE", "TASK_STORAGE", "BLOOM_FILTER",
    "USER_RINGBUF", "CGRP_STORAGE",
]  # fmt: skip
PROG_TYPES_V1 = [
    "UNSPEC", "SOCKET_FILTER", "KPROBE", "SCHED_CLS", "SCHED_ACT", "TRACEPOINT", "XDP",
    "PERF_EVENT", "CGROUP_SKB", "CGROUP_SOCK", "LWT_IN", "LWT_OUT", "LWT_XMIT", "SOCK_OPS",
    "SK_SKB", "CGROUP_DEVICE", "SK_MSG", "RAW_TRACEPOINT", "CGROUP_SOCK_ADDR", "LWT_SEG6LOCAL",
    "LIRC_MODE2", "SK_REUSEPORT", "FLOW_DISSECTOR", "CGROUP_SYSCTL", "RAW_TRACEPOINT_WRITABLE",
    "CGROUP_SOCKOPT", "TRACING", "STRUCT_OPS", "EXT", "LSM", "SK_LOOKUP", "SYSCALL",
]  # fmt: skip
BTF_KINDS = [
    "UNKN", "INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FWD", "TYPEDEF", "VOLATILE",
    "CONST", "RESTRICT", "FUNC", "FUNC_PROTO", "VAR", "DATASEC", "FLOAT", "DECL_TAG", "TYPE_TAG",
    "ENUM64",
]  # fmt: skip


def test_update_flags():
    assert (BPF_ANY, BPF_NOEXIST, BPF_EXIST) == (0, 1, 2)
    assert (tinybpf.BPF_ANY, tinybpf.BPF_NOEXIST, tinybpf.BPF_EXIST) == (0, 1, 2)


def test_map_type_values_follow_the_kernel():
    for value, name in enumerate(MAP_TYPES_V1):
        assert BpfMapType[name] == value, name
        assert BpfMapType(value) is BpfMapType[name]


def test_prog_type_values_follow_the_kernel():
    for value, name in enumerate(PROG_TYPES_V1):
        assert BpfProgType[name] == value, name
        assert BpfProgType(value) is BpfProgType[name]


def test_btf_kind_values():
    for value, name in enumerate(BTF_KINDS):
        assert BtfKind[name] == value
        assert BtfKind(value).name == name


def test_newer_members_exist():
    assert BpfMapType(33) is BpfMapType.ARENA
    assert BpfMapType.ARENA == 33
    assert BpfMapType.INSN_ARRAY == 34
    assert BpfProgType.NETFILTER == 32
    assert BpfProgType(32) is BpfProgType.NETFILTER


class TestOpenEnums:
    # an unknown value becomes UNKNOWN_<n> instead of raising (W1)
    def test_unknown_map_type(self):
        t = BpfMapType(999)
        assert t.name == "UNKNOWN_999"
        assert t == 999
        assert int(t) == 999
        assert isinstance(t, BpfMapType)
        assert t.value == 999

    def test_unknown_prog_type(self):
        t = BpfProgType(4242)
        assert t.name == "UNKNOWN_4242"
        assert t == 4242
        assert isinstance(t, BpfProgType)

    def test_unknown_attach_type(self):
        t = BpfAttachType(7777)
        assert t.name == "UNKNOWN_7777"

    def test_unknown_values_are_not_members(self):
        BpfMapType(999)
        assert "UNKNOWN_999" not in BpfMapType.__members__
        assert 999 not in [m.value for m in BpfMapType]

    def test_non_int_still_rejected(self):
        with pytest.raises(ValueError):
            BpfMapType("HASH")
        with pytest.raises(ValueError):
            BpfMapType(1.5)

    def test_btf_kind_unknown_is_unkn(self):
        assert BtfKind(31) is BtfKind.UNKN
        assert BtfKind(200) is BtfKind.UNKN


def test_attach_type_names_have_no_prefix():
    assert BpfAttachType.CGROUP_INET_SOCK_CREATE == 2
    assert BpfAttachType.XDP > 0
    assert "BPF_XDP" not in BpfAttachType.__members__


def test_enums_are_int_enums_for_old_callers():
    assert BpfMapType.HASH + 1 == 2
    assert f"{BpfProgType.XDP.name}" == "XDP"
    assert str(int(BpfProgType.TRACEPOINT)) == "5"


class TestEnumArguments:
    """Every function taking an enum takes its member, its name (any case, with or without
    the C prefix) or its int, through one conversion."""

    @pytest.mark.parametrize(
        "spelling", ["xdp", "XDP", "Xdp", "BPF_PROG_TYPE_XDP", BpfProgType.XDP, 6]
    )
    def test_probe_prog_type(self, spelling):
        assert tinybpf.probe_prog_type(spelling) is True

    def test_probes_of_maps_and_helpers(self):
        assert tinybpf.probe_map_type("ringbuf") is tinybpf.probe_map_type(BpfMapType.RINGBUF)
        assert tinybpf.probe_map_type("bpf_map_type_hash") is True
        assert tinybpf.probe_helper("xdp", "BPF_FUNC_loop") is True
        assert tinybpf.probe_helper("sk_lookup", "SK_ASSIGN") is True

    def test_bad_spellings_are_refused_with_the_names(self):
        with pytest.raises(ValueError, match=r"unknown program type 'xpd'.*\bxdp\b"):
            tinybpf.probe_prog_type("xpd")
        with pytest.raises(ValueError, match="did you mean loop"):
            tinybpf.probe_helper("xdp", "bpf_lop")
        with pytest.raises(TypeError, match="BpfProgType"):
            tinybpf.probe_prog_type(BpfMapType.HASH)  # a map type where a program type goes
        with pytest.raises(TypeError):
            tinybpf.probe_map_type(True)
        with pytest.raises(TypeError):
            tinybpf.probe_map_type(1.0)

    def test_the_kernels_own_enum_from_btf_is_accepted(self):
        with tinybpf.Btf.from_vmlinux() as btf:
            kernel = btf.enum("bpf_prog_type")
        assert tinybpf.probe_prog_type(kernel.BPF_PROG_TYPE_XDP) is True

    def test_btf_find_takes_a_kind_name(self):
        with tinybpf.Btf.from_vmlinux() as btf:
            assert btf.find("task_struct", "struct") == btf.find("task_struct", BtfKind.STRUCT)
            assert btf.find("task_struct", "BTF_KIND_STRUCT") == btf.find(
                "task_struct", int(BtfKind.STRUCT)
            )

    @pytest.mark.root
    def test_create_map_and_type_setters(self, obj_path):
        with tinybpf.create_map("hash", 4, 8, 4, name="named") as m:
            assert m.type is BpfMapType.HASH
        with tinybpf.open(obj_path("minimal")) as obj:
            prog = next(iter(obj.programs.values()))
            prog.type = "kprobe"
            assert prog.type is BpfProgType.KPROBE
            prog.expected_attach_type = "BPF_TRACE_FENTRY"
            assert prog.expected_attach_type is BpfAttachType.TRACE_FENTRY
            m = obj.maps["config_map"]
            m.type = "lru_hash"
            assert m.type is BpfMapType.LRU_HASH
            with pytest.raises(ValueError, match="unknown attach type 'fentry'"):
                prog.expected_attach_type = "fentry"
