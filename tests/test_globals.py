"""Global variables: const volatile configuration before load, live .bss/.data after load,
custom sections, every BTF kind of variable, and the errors.

Fixtures: tests/bpf/config_filter.bpf.c (a getpid counter filtered by target_pid/invert)
and tests/bpf/types_events.bpf.c (globals of every kind, written by the program).
"""

from __future__ import annotations

import ctypes
import os

import pytest
from conftest import bpf_obj

import tinybpf
from tinybpf import BpfPhaseError, BtfKind

root = pytest.mark.root


def getpid_n(n: int) -> None:
    for _ in range(n):
        os.getpid()


@pytest.fixture
def cfg():
    obj = tinybpf.open(bpf_obj("config_filter"))
    yield obj
    obj.close()


@pytest.fixture
def types_obj():
    obj = tinybpf.open(bpf_obj("types_events"))
    yield obj
    obj.close()


@pytest.fixture
def types_run():
    """types_events loaded for this process, after one getpid() went through it."""
    obj = tinybpf.open(bpf_obj("types_events"))
    obj.globals["target_pid"] = os.getpid()
    obj.load()
    with obj.program("record").attach():
        getpid_n(1)
    yield obj
    obj.close()


def run_filter(target_pid: int, invert: bool, calls: int = 5) -> tuple[int, dict[int, int]]:
    """Load config_filter with this configuration; (hits, counts) after ``calls`` getpid()."""
    with tinybpf.open(bpf_obj("config_filter")) as obj:
        obj.globals["target_pid"] = target_pid
        obj.globals["invert"] = invert
        obj.load()
        with obj.program("count_getpid").attach():
            getpid_n(calls)
        return obj.globals["hits"], dict(obj.maps["counts"].items())


# --- sections and names -----------------------------------------------------------------------


class TestSections:
    def test_sections_of_the_object(self, cfg):
        assert set(cfg.globals.sections) == {
            ".rodata",
            ".rodata.cfg",
            ".bss",
            ".data",
            ".data.stats",
            ".kconfig",
        }

    def test_variables_by_section(self, cfg):
        g = cfg.globals
        assert set(g[".rodata"]) == {"target_pid", "invert"}
        assert set(g[".rodata.cfg"]) == {"tag"}
        assert set(g[".bss"]) >= {"hits", "last_pid", "last_ppid", "knob"}
        assert set(g[".data"]) == {"calls"}
        assert set(g[".data.stats"]) == {"seen_total"}

    def test_initial_values_before_load(self, cfg):
        g = cfg.globals
        assert g["target_pid"] == 0
        assert g["invert"] is False
        assert g["tag"] == 7
        assert g["calls"] == 100
        assert g["hits"] == 0
        assert g[".data"]["calls"] == 100

    def test_attribute_access(self, cfg):
        assert cfg.globals.calls == 100
        cfg.globals.calls = 5
        assert cfg.globals["calls"] == 5
        assert "calls" in dir(cfg.globals)

    def test_unknown_variable_lists_what_exists(self, cfg):
        with pytest.raises(KeyError) as exc:
            cfg.globals["no_such_var"]
        text = str(exc.value)
        assert "no_such_var" in text and "target_pid" in text and "hits" in text
        with pytest.raises(KeyError):
            cfg.globals["no_such_var"] = 1
        with pytest.raises(AttributeError):
            _ = cfg.globals.no_such_var

    def test_unknown_variable_in_a_section(self, cfg):
        with pytest.raises(KeyError) as exc:
            cfg.globals[".bss"]["target_pid"]  # lives in .rodata
        assert "hits" in str(exc.value)

    def test_unknown_section_lists_the_sections(self, cfg):
        with pytest.raises(KeyError) as exc:
            cfg.globals[".data.nope"]
        assert ".data.stats" in str(exc.value)

    def test_type_of(self, cfg):
        t = cfg.globals.type_of("target_pid")
        assert (t.kind, t.size, t.signed) == (BtfKind.INT, 4, False)

    def test_readonly_flags(self, cfg):
        assert cfg.globals[".rodata"].readonly is False  # before load: writable
        assert cfg.globals[".bss"].readonly is False


# --- configuration before load ----------------------------------------------------------------


@root
class TestConfiguration:
    def test_target_pid_selects_this_process(self):
        hits, counts = run_filter(os.getpid(), invert=False)
        assert hits == 5
        assert counts == {os.getpid(): 5}

    def test_invert_excludes_the_target(self):
        hits, counts = run_filter(os.getpid(), invert=True)
        assert os.getpid() not in counts
        assert hits == sum(counts.values())

    def test_no_target_records_every_process(self):
        _, counts = run_filter(0, invert=False)
        assert counts.get(os.getpid()) == 5

    def test_a_pid_that_does_not_call_records_nothing(self):
        hits, counts = run_filter(0x7FFFFFF0, invert=False)
        assert (hits, counts) == (0, {})

    def test_custom_rodata_section(self, cfg):
        cfg.globals["target_pid"] = os.getpid()
        cfg.globals[".rodata.cfg"]["tag"] = 99
        cfg.load()
        with cfg.program("count_getpid").attach():
            getpid_n(1)
        assert cfg.maps["tags"][0] == 99  # the program copied the tag it saw
        assert cfg.globals["tag"] == 99
        with pytest.raises(BpfPhaseError, match="read-only after load"):
            cfg.globals["tag"] = 1

    def test_data_initial_value_written_before_load(self, cfg):
        cfg.globals["target_pid"] = os.getpid()
        cfg.globals["calls"] = 500
        cfg.load()
        with cfg.program("count_getpid").attach():
            getpid_n(3)
        assert cfg.globals["calls"] == 503


# --- live memory after load -------------------------------------------------------------------


@root
class TestLive:
    def test_bss_counters_are_read_live(self, cfg):
        cfg.globals["target_pid"] = os.getpid()
        cfg.load()
        with cfg.program("count_getpid").attach():
            assert cfg.globals["hits"] == 0
            getpid_n(2)
            assert cfg.globals["hits"] == 2
            getpid_n(3)
            assert cfg.globals["hits"] == 5
        assert cfg.globals["last_pid"] == os.getpid()
        assert cfg.globals["seen_total"] >= 5  # custom .data.stats section
        assert cfg.globals[".data.stats"]["seen_total"] == cfg.globals["seen_total"]

    def test_bss_writes_reach_the_program(self, cfg):
        cfg.globals["target_pid"] = os.getpid()
        cfg.load()
        with cfg.program("count_getpid").attach():
            getpid_n(2)
            cfg.globals["hits"] = 1000
            getpid_n(1)
        assert cfg.globals["hits"] == 1001

    def test_rodata_reads_after_load_but_refuses_writes(self, cfg):
        cfg.globals["target_pid"] = 4242
        cfg.load()
        assert cfg.globals["target_pid"] == 4242
        assert cfg.globals[".rodata"].readonly is True
        with pytest.raises(BpfPhaseError) as exc:
            cfg.globals["target_pid"] = 1
        assert "read-only after load" in str(exc.value) and "target_pid" in str(exc.value)
        assert cfg.globals["target_pid"] == 4242

    def test_values_are_snapshots_after_close(self, cfg):
        cfg.load()
        g = cfg.globals
        cfg.close()
        with pytest.raises(tinybpf.BpfClosedError):
            g["hits"]


# --- every kind of variable -------------------------------------------------------------------


class TestKindsBeforeLoad:
    def test_initialised_values(self, types_obj):
        g = types_obj.globals
        assert g["neg"] == -5
        assert g["greeting"] == b"hi"
        assert g["prefix"] == b"ev"
        assert g["want_op"] == 1  # TOP_READ
        assert g["arr"] == [0, 0, 0, 0]

    def test_bss_zero_values(self, types_obj):
        g = types_obj.globals
        assert g["flag"] is False
        assert g["letter"] == b"\0"
        assert g["name"] == b""
        assert g["s8v"] == 0 and g["wide"] == 0
        assert g["last_task"].pid == 0

    def test_ints_signed_and_unsigned_of_every_width(self, types_obj):
        g = types_obj.globals
        for name, value in [
            ("s8v", -128),
            ("u16v", 65535),
            ("s64v", -(2**63)),
            ("wide", 2**128 - 1),
            ("neg", -(2**31)),
        ]:
            g[name] = value
            assert g[name] == value

    def test_ints_out_of_range(self, types_obj):
        with pytest.raises(ValueError, match="out of range"):
            types_obj.globals["s8v"] = 128
        with pytest.raises(ValueError):
            types_obj.globals["u16v"] = -1
        with pytest.raises(TypeError):
            types_obj.globals["u16v"] = "1"

    def test_bool(self, types_obj):
        types_obj.globals["flag"] = True
        assert types_obj.globals["flag"] is True

    def test_char_and_char_arrays_take_bytes_or_str(self, types_obj):
        g = types_obj.globals
        g["letter"] = b"Q"
        assert g["letter"] == b"Q"
        g["name"] = "hello"
        assert g["name"] == b"hello"
        g["greeting"] = b"bye"
        assert g["greeting"] == b"bye"
        with pytest.raises(ValueError):
            g["greeting"] = b"123456789"  # 8 bytes

    def test_enum(self, types_obj):
        g = types_obj.globals
        op_kind = types_obj.btf.enum("op_kind")
        g["want_op"] = op_kind.TOP_EXEC
        assert g["want_op"] == op_kind.TOP_EXEC == 4
        assert g.type_of("want_op").kind == BtfKind.ENUM

    def test_arrays(self, types_obj):
        g = types_obj.globals
        g["arr"] = [1, 2, 3, 4]
        assert g["arr"] == [1, 2, 3, 4]
        with pytest.raises(ValueError):
            g["arr"] = [1, 2]

    def test_struct_from_generated_type_dict_and_bytes(self, types_obj):
        g = types_obj.globals
        task_id = types_obj.btf.ctype("task_id")
        g["last_task"] = task_id(pid=1, tid=2)
        assert (g["last_task"].pid, g["last_task"].tid) == (1, 2)
        g["last_task"] = {"pid": 3, "tid": 4}
        assert g["last_task"].to_dict() == {"pid": 3, "tid": 4}
        g["last_task"] = (5).to_bytes(4, "little") + (6).to_bytes(4, "little")
        assert g["last_task"].tid == 6

    def test_struct_with_bitfields(self, types_obj):
        g = types_obj.globals
        g["last_bits"] = {"kind": 9, "small": -2, "after": 7}
        b = g["last_bits"]
        assert (b.kind, b.small, b.after, b.level) == (9, -2, 7, 0)

    def test_array_of_structs(self, types_obj):
        g = types_obj.globals
        tasks = g["tasks"]
        assert len(tasks) == 2 and tasks[0].pid == 0

    def test_pointer_anchor_reads_as_int(self, types_obj):
        assert types_obj.globals["event_anchor"] == 0
        assert types_obj.globals.type_of("event_anchor").kind == BtfKind.PTR

    def test_two_dimensional_array(self, types_obj):
        g = types_obj.globals
        g["grid"] = [[1, 2], [3, 4]]
        assert g["grid"] == [[1, 2], [3, 4]]


@root
class TestKindsWrittenByTheProgram:
    def test_scalars(self, types_run):
        g = types_run.globals
        assert g["s8v"] == -8
        assert g["u16v"] == 65535
        assert g["s64v"] == -1234567890123
        assert g["flag"] is True
        assert g["letter"] == b"Z"
        assert g["event_count"] == 1

    def test_enum_written_by_the_program(self, types_run):
        op_kind = types_run.btf.enum("op_kind")
        assert op_kind(types_run.globals["last_op"]) is op_kind.TOP_READ

    def test_char_array_from_the_kernel(self, types_run):
        with open("/proc/self/comm", "rb") as f:
            comm = f.read().strip()
        assert types_run.globals["name"] == comm  # bpf_get_current_comm()

    def test_arrays_and_structs(self, types_run):
        g = types_run.globals
        assert g["arr"] == [1, 2, 3, 4]
        assert g["last_task"].to_dict() == {"pid": os.getpid(), "tid": os.getpid()}
        assert [t.pid for t in g["tasks"]] == [0, os.getpid()]
        bits = g["last_bits"]
        assert bits.to_dict() == {
            "kind": 3,
            "level": 5,
            "on": 1,
            "rest": 0xABCDE,
            "after": 0x1234,
            "small": -3,
        }

    def test_struct_value_is_a_ctypes_copy(self, types_run):
        task = types_run.globals["last_task"]
        assert isinstance(task, ctypes.Structure)
        task.pid = 1  # a copy: the global is unchanged until assigned back
        assert types_run.globals["last_task"].pid == os.getpid()
        types_run.globals["last_task"] = task
        assert types_run.globals["last_task"].pid == 1

    def test_anonymous_members_with_bitfields(self, types_run):
        w = types_run.globals["last_word"]
        assert (w.lo, w.hi, w.a, w.b) == (0x123, 0xFFFFF, 5, 6)

    def test_own_bitfields_next_to_an_anonymous_member(self, types_run):
        m = types_run.globals["last_mixed"]
        assert (m.a, m.b, m.x) == (3, 5, 0xABCDEF01)


# --- a data section resized before load ------------------------------------------------------


@root
def test_resized_section_resizes_its_last_array():
    """Issue 14 item 5: after ``value_size`` of a ``.data.*`` map changes before load
    (libbpf then resizes the section's last variable, an array), views of the globals
    follow it: they read and write the new length, and the program sees the writes."""
    with tinybpf.open(bpf_obj("globals_resize")) as obj:
        g = obj.globals  # a view taken before the resize
        sec = g[".data.counters"]
        assert g["counters"] == [0, 0]
        m = sec.map
        assert m.value_size == 8 + 2 * 8
        m.value_size = 8 + 6 * 8
        assert g["counters"] == [0] * 6
        assert sec["counters"] == [0] * 6
        assert g.type_of("counters").size == 6 * 8
        g["counters"] = [1, 2, 3, 4, 5, 6]
        with pytest.raises(ValueError, match="6 elements, got 2"):
            g["counters"] = [1, 2]
        g["target_pid"] = os.getpid()
        g["n_counters"] = 6
        obj.load()
        assert m.kernel_info().value_size == 8 + 6 * 8
        with obj.program("bump_last").attach():
            getpid_n(3)
        assert g["calls"] == 3
        assert obj.globals["counters"] == [1, 2, 3, 4, 5, 6 + 3]
        # and back down, on a fresh object
    with tinybpf.open(bpf_obj("globals_resize")) as obj:
        g = obj.globals
        obj.globals[".data.counters"].map.value_size = 8 + 1 * 8
        assert g["counters"] == [0]
        g["counters"] = [7]
        assert dict(g[".data.counters"]) == {"calls": 0, "counters": [7]}
