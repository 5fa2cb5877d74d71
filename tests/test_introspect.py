"""What is loaded in the kernel (programs, maps, links, BTF), objects opened by id, run-time
statistics, verifier logs on request, and feature probes checked against real loads."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from helpers.kernel import (
    FENTRY_TARGET,
    btf_function_unavailable_reason,
    helper_unavailable_reason,
    tracepoint_unavailable_reason,
)

import tinybpf
from tinybpf import BpfLinkType, BpfMapType, BpfProgType

pytestmark = pytest.mark.root


@pytest.fixture
def tp(obj_path):
    reason = tracepoint_unavailable_reason("syscalls", "sys_enter_getppid")
    if reason:
        pytest.skip(reason)
    obj = tinybpf.load(obj_path("attach_tp"))
    obj.maps["target_pid"][0] = os.getpid()
    yield obj
    obj.close()


def getppid(n: int) -> None:
    for _ in range(n):
        os.getppid()


class TestEnumeration:
    def test_loaded_programs_include_ours(self, tp):
        mine = {tp.program(n).kernel_info().id: n for n in ("tp_a", "tp_b")}
        found = {p.id: p for p in tinybpf.loaded_programs() if p.id in mine}
        assert set(found) == set(mine)
        for pid, name in mine.items():
            assert found[pid].name == name
            assert found[pid].type is BpfProgType.TRACEPOINT
            assert found[pid].created_by_uid == 0
            assert found[pid].xlated_size > 0
            assert len(found[pid].tag) == 16

    def test_loaded_maps_include_ours_by_id_and_name(self, tp):
        ids = set(tp.program("tp_a").kernel_info().map_ids)
        maps = {m.id: m for m in tinybpf.loaded_maps() if m.id in ids}
        assert sorted(m.name for m in maps.values()) == ["hits", "target_pid"]
        hits = next(m for m in maps.values() if m.name == "hits")
        assert (hits.type, hits.key_size, hits.value_size, hits.max_entries) == (
            BpfMapType.ARRAY,
            4,
            8,
            2,
        )
        assert hits.btf_id == tp.program("tp_a").kernel_info().btf_id

    def test_loaded_links_include_ours(self, tp):
        with tp.program("tp_a").attach() as a, tp.program("tp_b").attach() as b:
            ids = {a.info.id: a, b.info.id: b}
            found = {i.id: i for i in tinybpf.loaded_links() if i.id in ids}
            assert set(found) == set(ids)
            for lid, link in ids.items():
                assert found[lid].type is BpfLinkType.PERF_EVENT
                assert found[lid].prog_id == link.program.kernel_info().id
            gone = a.info.id
        assert all(i.id != gone for i in tinybpf.loaded_links())

    def test_loaded_btfs_include_vmlinux_and_ours(self, tp):
        btfs = tinybpf.loaded_btfs()
        assert any(b.kernel and b.name == "vmlinux" for b in btfs)
        ours = tp.program("tp_a").kernel_info().btf_id
        mine = [b for b in btfs if b.id == ours]
        assert len(mine) == 1 and not mine[0].kernel and mine[0].size > 0


class TestOpenById:
    def test_open_map_by_id_decodes_values(self, tp):
        with tp.program("tp_a").attach():
            getppid(3)
        ids = tp.program("tp_a").kernel_info().map_ids
        hits_id = next(m.id for m in tinybpf.loaded_maps() if m.id in ids and m.name == "hits")
        with tinybpf.open_map_by_id(hits_id) as m:
            assert m.name == "hits"
            assert m.type is BpfMapType.ARRAY
            assert m[0] == 3  # an int, decoded through the map's BTF
            assert dict(m.items()) == {0: 3, 1: 0}
            m[1] = 11  # the same kernel map
        assert tp.maps["hits"][1] == 11

    def test_open_program_by_id(self, obj_path):
        with tinybpf.load(obj_path("attach_testrun")) as obj:
            prog = obj.program("xdp_swap")
            with tinybpf.open_program_by_id(prog.kernel_info().id) as kp:
                assert kp.info == prog.kernel_info()
                assert kp.info.name == "xdp_swap"
                frame = bytes(12) + b"\x88\xb5Drop"
                assert kp.test_run(frame).retval == 1  # XDP_DROP
                assert repr(kp).startswith(f"<KernelProgram id={kp.info.id} 'xdp_swap'")
            assert "closed" in repr(kp)
            for use in (lambda: kp.fd, lambda: kp.info, lambda: kp.test_run(bytes(14))):
                with pytest.raises(tinybpf.BpfClosedError, match="closed"):
                    use()

    def test_open_link_by_id(self, tp):
        with tp.program("tp_b").attach() as link:
            info = tinybpf.open_link_by_id(link.info.id)
            assert info == link.info

    def test_unknown_ids(self):
        big = 0x7FFFFFF0
        for fn in (tinybpf.open_program_by_id, tinybpf.open_map_by_id, tinybpf.open_link_by_id):
            with pytest.raises(tinybpf.BpfError) as ei:
                fn(big)
            assert ei.value.errno == errno.ENOENT


class TestStats:
    def test_enable_stats_counts_runs(self, tp):
        prog = tp.program("tp_a")
        stats_sysctl = Path("/proc/sys/kernel/bpf_stats_enabled")
        if stats_sysctl.exists() and stats_sysctl.read_text().strip() == "0":
            with prog.attach():
                getppid(2)
            assert prog.kernel_info().run_count == 0  # not counted without stats
        with tinybpf.enable_stats() as handle, prog.attach():
            before = prog.kernel_info().run_count
            getppid(5)
            info = prog.kernel_info()
            # the tracepoint runs for every getppid() on the machine, ours included
            assert info.run_count - before >= 5
            assert info.run_time_ns > 0
        handle.close()  # idempotent


class TestVerifierLog:
    def test_log_on_request(self, obj_path):
        obj = tinybpf.open(obj_path("attach_tp"))
        try:
            prog = obj.program("tp_a")
            prog.request_verifier_log()
            obj.load()
            log = prog.verifier_log
            assert "processed" in log
            assert "insns" in log
            assert obj.program("tp_b").verifier_log == ""  # only where requested
        finally:
            obj.close()

    def test_log_level_2_is_longer(self, obj_path):
        logs = []
        for level in (1, 2):
            obj = tinybpf.open(obj_path("attach_tp"))
            try:
                obj.program("tp_a").request_verifier_log(level=level)
                obj.load()
                logs.append(obj.program("tp_a").verifier_log)
            finally:
                obj.close()
        assert len(logs[1]) > len(logs[0])

    def test_request_after_load_is_a_phase_error(self, obj_path):
        with tinybpf.load(obj_path("attach_tp")) as obj, pytest.raises(tinybpf.BpfPhaseError):
            obj.program("tp_a").request_verifier_log()


# --- feature probes against real loads -------------------------------------------------------

# program type -> (fixture, program) of that type
FIXTURE_OF = {
    BpfProgType.XDP: ("attach_xdp", "xdp_count_a"),
    BpfProgType.SCHED_CLS: ("attach_tc", "tc_count"),
    BpfProgType.SOCKET_FILTER: ("attach_sockfilter", "drop_marked"),
    BpfProgType.PERF_EVENT: ("attach_perf", "on_sample"),
    BpfProgType.NETFILTER: ("attach_nf", "nf_count"),
    BpfProgType.SK_LOOKUP: ("attach_sklookup", "steer"),
    BpfProgType.SYSCALL: ("attach_testrun", "sys_add"),
    BpfProgType.CGROUP_SOCK: ("attach_cgroup", "count_a"),
    BpfProgType.KPROBE: ("attach_kprobe", "on_kprobe"),
    BpfProgType.TRACING: ("attach_fentry", "on_entry"),
    BpfProgType.LSM: ("attach_lsm", "deny_open"),
}


class TestProbes:
    @pytest.mark.parametrize("ptype", list(FIXTURE_OF), ids=lambda t: t.name)
    def test_probe_prog_type_agrees_with_loading(self, obj_path, ptype):
        fixture, name = FIXTURE_OF[ptype]
        if ptype is BpfProgType.TRACING:
            reason = btf_function_unavailable_reason(FENTRY_TARGET)
            if reason:
                pytest.skip(reason)
        supported = tinybpf.probe_prog_type(ptype)
        # the one program of that type alone (others of the fixture may need more features)
        obj = tinybpf.open(obj_path(fixture))
        try:
            for prog_name, prog in obj.programs.items():
                prog.autoload = prog_name == name
            if ptype is BpfProgType.TRACING:
                obj.program(name).set_attach_target(FENTRY_TARGET)
            if supported:
                obj.load()
                assert obj.program(name).type is ptype
                assert obj.program(name).fd > 0
            else:
                # this kernel refuses the type (fentry/fexit and LSM here): so does a real load
                with pytest.raises(tinybpf.BpfError):
                    obj.load()
        finally:
            obj.close()

    def test_common_types_are_supported(self):
        for ptype in (BpfProgType.XDP, BpfProgType.SOCKET_FILTER, BpfProgType.SCHED_CLS):
            assert tinybpf.probe_prog_type(ptype) is True

    def test_probe_map_type(self, obj_path):
        reason = helper_unavailable_reason(BpfProgType.TRACEPOINT, "bpf_loop")
        if reason:  # the ring buffer fixture emits with bpf_loop
            pytest.skip(reason)
        assert tinybpf.probe_map_type(BpfMapType.RINGBUF) is True
        assert tinybpf.probe_map_type(BpfMapType.HASH) is True
        with tinybpf.load(obj_path("ringbuf_events")) as obj:
            assert any(m.type is BpfMapType.RINGBUF for m in obj.maps.values())

    def test_probe_helper(self):
        for ptype, helper in (
            (BpfProgType.XDP, "bpf_loop"),
            (BpfProgType.KPROBE, "bpf_get_attach_cookie"),
        ):
            reason = helper_unavailable_reason(ptype, helper)
            if reason:  # bpf_loop: 5.17+, bpf_get_attach_cookie: 5.15+
                pytest.skip(reason)
        assert tinybpf.probe_helper(BpfProgType.XDP, "bpf_loop") is True
        assert tinybpf.probe_helper(BpfProgType.XDP, "loop") is True  # without "bpf_"
        assert tinybpf.probe_helper(BpfProgType.KPROBE, "bpf_get_attach_cookie") is True
        # bpf_sk_assign is for sk_lookup and tc, never for XDP
        assert tinybpf.probe_helper(BpfProgType.SK_LOOKUP, "bpf_sk_assign") is True
        assert tinybpf.probe_helper(BpfProgType.XDP, "bpf_sk_assign") is False

    def test_probe_helper_by_id(self):
        from tinybpf.btf import Btf

        reason = helper_unavailable_reason(BpfProgType.XDP, "bpf_loop")
        if reason:
            pytest.skip(reason)
        with Btf.from_vmlinux() as btf:
            loop_id = int(btf.enum("bpf_func_id").__members__["BPF_FUNC_loop"])
        assert tinybpf.probe_helper(BpfProgType.XDP, loop_id) is True

    def test_unknown_helper_name(self):
        with pytest.raises(ValueError, match="no_such_helper"):
            tinybpf.probe_helper(BpfProgType.XDP, "bpf_no_such_helper")

    def test_what_the_probes_say_here(self, capsys):
        # recorded in the test output: the answers the skips of test_attach.py rely on
        answers = {
            t.name: tinybpf.probe_prog_type(t)
            for t in (BpfProgType.KPROBE, BpfProgType.TRACING, BpfProgType.LSM)
        }
        with capsys.disabled():
            print(f"\nprobe_prog_type: {answers}")
        assert all(isinstance(v, bool) for v in answers.values())


class TestPerfEventOpen:
    def test_one_cpu_clock_event_per_online_cpu(self):
        events = tinybpf.perf_event_open_cpu_clock(freq=10)
        try:
            online = os.sched_getaffinity(0) | {ev.cpu for ev in events}
            assert len(events) >= 1
            assert len({ev.cpu for ev in events}) == len(events)
            assert {ev.cpu for ev in events} <= online
            for ev in events:
                assert os.readlink(f"/proc/self/fd/{ev.fd}") == "anon_inode:[perf_event]"
        finally:
            for ev in events:
                ev.close()
        assert all(ev.fd == -1 for ev in events)

    def test_selected_cpus(self):
        events = tinybpf.perf_event_open_cpu_clock(freq=10, cpus=[0])
        try:
            assert [ev.cpu for ev in events] == [0]
        finally:
            events[0].close()
