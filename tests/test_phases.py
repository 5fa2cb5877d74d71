"""Phases of an object: open (configure) -> load, open options, and wrong-phase errors.

Fixtures: tests/bpf/config_filter.bpf.c (a getpid counter configured through globals, with
a CO-RE read and a __kconfig extern) and tests/bpf/config_pinned.bpf.c (a map pinned by
name). Opening and inspecting needs no privileges; loading needs root.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import uuid
from pathlib import Path

import pytest
from conftest import bpf_obj

import tinybpf
from tinybpf import BpfError, BpfMapType, BpfPhaseError, BpfProgType

root = pytest.mark.root

VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")
BPFFS = Path("/sys/fs/bpf")


def getpid_n(n: int) -> None:
    for _ in range(n):
        os.getpid()  # one getpid(2) each: glibc does not cache it


@pytest.fixture
def opened():
    obj = tinybpf.open(bpf_obj("config_filter"))
    yield obj
    obj.close()


@pytest.fixture
def loaded():
    obj = tinybpf.open(bpf_obj("config_filter"))
    obj.globals["target_pid"] = os.getpid()
    obj.load()
    yield obj
    obj.close()


# --- open / load ------------------------------------------------------------------------------


class TestOpen:
    def test_open_returns_an_object_that_is_not_loaded(self, opened):
        assert opened.loaded is False
        assert "not loaded" in repr(opened)
        assert set(opened.programs) == {"count_getpid", "count_getppid"}
        assert {"counts", "tags", "spare"} <= set(opened.maps)

    def test_reading_works_before_load(self, opened):
        counts = opened.maps["counts"]
        assert (counts.type, counts.key_size, counts.value_size) == (BpfMapType.HASH, 4, 8)
        assert counts.max_entries == 16
        prog = opened.program("count_getpid")
        assert prog.type == BpfProgType.TRACEPOINT
        assert prog.autoload is True
        assert opened.program("count_getppid").autoload is False  # SEC("?...")

    def test_no_fds_before_load(self, opened):
        with pytest.raises(BpfPhaseError, match="before load"):
            _ = opened.maps["counts"].fd
        with pytest.raises(BpfPhaseError, match="before load"):
            _ = opened.program("count_getpid").fd

    def test_attach_before_load_is_a_phase_error(self, opened):
        with pytest.raises(BpfPhaseError, match="before load"):
            opened.program("count_getpid").attach()

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            tinybpf.open(tmp_path / "nope.bpf.o")

    def test_open_from_bytes_without_a_name(self):
        data = bpf_obj("config_filter").read_bytes()
        with tinybpf.open(data) as obj:
            assert obj.loaded is False
            assert "count_getpid" in obj.programs

    def test_object_name_option(self):
        data = bpf_obj("config_filter").read_bytes()
        with tinybpf.open(data, object_name="from_mem") as obj:
            assert obj.name == "from_mem"
            # internal maps take their names from the object name
            assert any(n.startswith("from_mem") for n in obj.maps)

    def test_unknown_option_is_rejected(self):
        with pytest.raises(TypeError):
            tinybpf.open(bpf_obj("config_filter"), no_such_option=1)

    def test_kernel_log_level_becomes_the_programs_default(self):
        with tinybpf.open(bpf_obj("config_filter"), kernel_log_level=1) as obj:
            assert obj.program("count_getpid").log_level == 1


@root
class TestLoad:
    def test_open_then_load(self, opened):
        opened.globals["target_pid"] = os.getpid()
        assert opened.load() is opened
        assert opened.loaded is True
        assert opened.maps["counts"].fd >= 0
        with opened.program("count_getpid").attach():
            getpid_n(3)
        assert opened.maps["counts"][os.getpid()] == 3

    def test_load_twice_is_a_phase_error(self, loaded):
        with pytest.raises(BpfPhaseError, match="already loaded"):
            loaded.load()

    def test_tinybpf_load_is_open_plus_load(self):
        with tinybpf.load(bpf_obj("config_filter")) as obj:
            assert obj.loaded is True
            assert obj.program("count_getpid").fd >= 0

    def test_load_accepts_the_open_options(self):
        data = bpf_obj("config_filter").read_bytes()
        with tinybpf.load(data, object_name="loaded_mem") as obj:
            assert obj.loaded and obj.name == "loaded_mem"

    def test_open_from_bytes_loads_and_runs(self):
        data = bpf_obj("config_filter").read_bytes()
        with tinybpf.open(data, object_name="cfg_mem") as obj:
            obj.globals["target_pid"] = os.getpid()
            obj.load()
            with obj.program("count_getpid").attach():
                getpid_n(2)
            assert obj.maps["counts"][os.getpid()] == 2

    def test_bytes_buffer_may_be_dropped_after_open(self):
        data = bytearray(bpf_obj("config_filter").read_bytes())
        obj = tinybpf.open(data)
        data[:] = b"\0" * len(data)  # libbpf copied what it needs at open
        with obj:
            obj.load()
            assert obj.loaded

    def test_kconfig_option_sets_kconfig_externs(self):
        with tinybpf.open(bpf_obj("config_filter"), kconfig="CONFIG_TINYBPF_TEST_KNOB=42") as obj:
            obj.globals["target_pid"] = os.getpid()
            obj.load()
            assert obj.globals["CONFIG_TINYBPF_TEST_KNOB"] == 42
            with obj.program("count_getpid").attach():
                getpid_n(1)
            assert obj.globals["knob"] == 42

    def test_weak_kconfig_extern_defaults_to_zero(self, loaded):
        with loaded.program("count_getpid").attach():
            getpid_n(1)
        assert loaded.globals["knob"] == 0

    def test_bpf_token_path_reaches_libbpf(self, tmp_path):
        # an explicit token path that is not a BPF filesystem: libbpf must refuse it
        obj = tinybpf.open(bpf_obj("config_filter"), bpf_token_path=str(tmp_path))
        with obj, pytest.raises(BpfError):
            obj.load()


@root
@pytest.mark.skipif(not VMLINUX_BTF.exists(), reason="kernel has no /sys/kernel/btf/vmlinux")
class TestBtfCustomPath:
    def test_core_relocations_use_the_given_btf_file(self, tmp_path):
        btf_file = tmp_path / "vmlinux.btf"
        shutil.copyfile(VMLINUX_BTF, btf_file)
        with tinybpf.open(bpf_obj("config_filter"), btf_custom_path=str(btf_file)) as obj:
            obj.globals["target_pid"] = os.getpid()
            obj.load()
            with obj.program("count_getpid").attach():
                getpid_n(1)
            # BPF_CORE_READ(task, real_parent, tgid), relocated against the file's BTF
            assert obj.globals["last_ppid"] == os.getppid()

    def test_a_btf_without_the_types_fails_the_relocation(self):
        # the BTF of a small object has no task_struct: the CO-RE read cannot resolve
        with tinybpf.open(bpf_obj("config_filter"), btf_custom_path=str(bpf_obj("minimal"))) as obj:
            with pytest.raises(BpfError) as exc:
                obj.load()
            assert "load" in str(exc.value)

    def test_missing_btf_file(self, tmp_path):
        with (
            tinybpf.open(
                bpf_obj("config_filter"), btf_custom_path=str(tmp_path / "none.btf")
            ) as obj,
            pytest.raises(BpfError),
        ):
            obj.load()


@root
@pytest.mark.skipif(not BPFFS.is_dir(), reason="no BPF filesystem at /sys/fs/bpf")
class TestPinRootPath:
    def test_maps_pinned_by_name_are_shared_under_the_root(self):
        pin_root = BPFFS / f"tinybpf-test-{uuid.uuid4().hex[:8]}"
        try:
            with tinybpf.open(bpf_obj("config_pinned"), pin_root_path=str(pin_root)) as a:
                assert a.maps["shared_counts"].pin_path == str(pin_root / "shared_counts")
                a.load()
                assert (pin_root / "shared_counts").exists()
                a.maps["shared_counts"][1] = 1234
                with tinybpf.load(bpf_obj("config_pinned"), pin_root_path=str(pin_root)) as b:
                    assert b.maps["shared_counts"][1] == 1234  # the same kernel map
                    b.maps["shared_counts"][2] = 5
                assert a.maps["shared_counts"][2] == 5
        finally:
            (pin_root / "shared_counts").unlink(missing_ok=True)
            if pin_root.exists():
                pin_root.rmdir()


# --- configuring programs before load ---------------------------------------------------------


@root
class TestProgramSetters:
    def test_autoload_off_skips_a_program(self, opened):
        opened.program("count_getpid").autoload = False
        opened.load()
        with pytest.raises(BpfError, match="autoload"):
            _ = opened.program("count_getpid").fd

    def test_autoload_on_loads_an_optional_program(self, opened):
        opened.globals["target_pid"] = os.getpid()
        prog = opened.program("count_getppid")
        prog.autoload = True
        assert prog.autoload is True
        opened.load()
        with prog.attach():
            os.getppid()
        assert opened.globals["hits"] >= 1000  # count_getppid adds 1000 per call

    def test_type_and_expected_attach_type_before_load(self, opened):
        prog = opened.program("count_getpid")
        prog.type = BpfProgType.KPROBE
        assert prog.type == BpfProgType.KPROBE
        prog.type = BpfProgType.TRACEPOINT
        prog.expected_attach_type = tinybpf.BpfAttachType.TRACE_FENTRY
        assert prog.expected_attach_type == tinybpf.BpfAttachType.TRACE_FENTRY
        prog.expected_attach_type = 0
        opened.load()  # restored: loads as a tracepoint again
        assert prog.type == BpfProgType.TRACEPOINT

    def test_program_log_level_logs_the_verifier_output(self, opened, caplog):
        prog = opened.program("count_getpid")
        prog.log_level = 1
        assert prog.log_level == 1
        tinybpf.set_libbpf_log_level("debug")
        try:
            with caplog.at_level(logging.DEBUG, logger="tinybpf.libbpf"):
                opened.load()
        finally:
            tinybpf.set_libbpf_log_level("info")
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "processed" in text and "count_getpid" in text

    def test_set_attach_target_resolves_the_kernel_function(self, opened):
        prog = opened.program("count_getpid")
        prog.type = BpfProgType.TRACING
        prog.expected_attach_type = tinybpf.BpfAttachType.TRACE_FENTRY
        prog.set_attach_target("do_unlinkat")  # a function in vmlinux BTF: accepted
        with pytest.raises(BpfError) as exc:
            prog.set_attach_target("tinybpf_no_such_kernel_function")
        assert exc.value.errno == errno.ESRCH
        assert "function 'tinybpf_no_such_kernel_function' not found in this kernel's BTF" in (
            exc.value.message
        )


# --- configuring maps before load ------------------------------------------------------------


@root
class TestMapSetters:
    def test_resized_map_is_visible_in_max_entries_and_in_the_kernel(self, opened):
        counts = opened.maps["counts"]
        counts.max_entries = 1024
        assert counts.max_entries == 1024  # before load, from libbpf
        opened.load()
        assert counts.max_entries == 1024
        assert counts.kernel_info().max_entries == 1024

    def test_resized_map_has_the_capacity(self, opened):
        opened.maps["counts"].max_entries = 100
        opened.load()
        counts = opened.maps["counts"]
        for k in range(100):
            counts[k + 1_000_000] = k
        assert len(list(counts.keys())) == 100
        with pytest.raises(BpfError) as exc:
            counts[2_000_000] = 1  # full
        assert exc.value.errno == errno.E2BIG

    def test_compiled_size_limits_without_resize(self, loaded):
        counts = loaded.maps["counts"]
        for k in range(16):
            counts[k + 1_000_000] = k
        with pytest.raises(BpfError):
            counts[2_000_000] = 1

    def test_value_and_key_size_type_and_flags(self, opened):
        spare = opened.maps["spare"]
        spare.type = BpfMapType.LRU_HASH
        spare.map_flags = 0
        spare.key_size = 8
        spare.value_size = 16
        spare.numa_node = 0
        assert (spare.type, spare.key_size, spare.value_size) == (BpfMapType.LRU_HASH, 8, 16)
        opened.load()
        info = spare.kernel_info()
        assert (info.type, info.key_size, info.value_size) == (BpfMapType.LRU_HASH, 8, 16)
        spare[b"k" * 8] = b"v" * 16
        assert spare[b"k" * 8] == b"v" * 16

    def test_map_flags(self, opened):
        spare = opened.maps["spare"]
        no_prealloc = tinybpf.BPF_F_NO_PREALLOC
        spare.map_flags = no_prealloc
        assert spare.map_flags == no_prealloc
        opened.load()
        assert spare.kernel_info().flags & no_prealloc

    def test_autocreate_off(self, opened):
        spare = opened.maps["spare"]
        assert spare.autocreate is True
        spare.autocreate = False
        assert spare.autocreate is False
        opened.load()
        with pytest.raises(BpfError):
            spare[1] = 2  # no kernel map behind it

    def test_autocreate_off_map_has_no_fd(self, opened):
        spare = opened.maps["spare"]
        spare.autocreate = False
        opened.load()
        with pytest.raises(BpfError, match=r"autocreate|not created"):
            _ = spare.fd

    def test_pin_path(self, opened):
        if not BPFFS.is_dir():
            pytest.skip("no BPF filesystem at /sys/fs/bpf")
        path = BPFFS / f"tinybpf-test-spare-{uuid.uuid4().hex[:8]}"
        spare = opened.maps["spare"]
        spare.pin_path = str(path)
        assert spare.pin_path == str(path)
        try:
            opened.load()
            assert path.exists()
        finally:
            path.unlink(missing_ok=True)

    def test_reuse_fd_shares_the_kernel_map(self, loaded):
        with tinybpf.open(bpf_obj("config_filter")) as other:
            other.maps["counts"].reuse_fd(loaded.maps["counts"].fd)
            other.load()
            loaded.maps["counts"][7] = 70
            assert other.maps["counts"][7] == 70
            assert other.maps["counts"].kernel_info().id == loaded.maps["counts"].kernel_info().id


# --- wrong phase ------------------------------------------------------------------------------

MAP_SETTERS = [
    ("max_entries", 32),
    ("value_size", 8),
    ("key_size", 4),
    ("type", BpfMapType.HASH),
    ("map_flags", 0),
    ("numa_node", 0),
    ("autocreate", True),
    ("pin_path", "/sys/fs/bpf/x"),
]
PROGRAM_SETTERS = [
    ("autoload", True),
    ("type", BpfProgType.TRACEPOINT),
    ("expected_attach_type", 0),
    ("log_level", 1),
]


@root
class TestWrongPhase:
    @pytest.mark.parametrize(("attr", "value"), MAP_SETTERS)
    def test_map_setters_after_load(self, loaded, attr, value):
        m = loaded.maps["spare"]
        before = getattr(m, attr)
        with pytest.raises(BpfPhaseError) as exc:
            setattr(m, attr, value)
        msg = str(exc.value)
        assert "after load" in msg and "open phase" in msg and "spare" in msg
        assert getattr(m, attr) == before  # reading still works

    def test_map_reuse_fd_after_load(self, loaded):
        with pytest.raises(BpfPhaseError, match="after load"):
            loaded.maps["spare"].reuse_fd(loaded.maps["counts"].fd)

    def test_map_set_inner_map_after_load(self, loaded):
        with pytest.raises(BpfPhaseError, match="after load"):
            loaded.maps["spare"].set_inner_map(loaded.maps["counts"])

    @pytest.mark.parametrize(("attr", "value"), PROGRAM_SETTERS)
    def test_program_setters_after_load(self, loaded, attr, value):
        prog = loaded.program("count_getpid")
        before = getattr(prog, attr)
        with pytest.raises(BpfPhaseError) as exc:
            setattr(prog, attr, value)
        msg = str(exc.value)
        assert "after load" in msg and "open phase" in msg and "count_getpid" in msg
        assert getattr(prog, attr) == before

    def test_set_attach_target_after_load(self, loaded):
        with pytest.raises(BpfPhaseError, match="after load"):
            loaded.program("count_getpid").set_attach_target("do_sys_open")

    def test_rodata_write_after_load(self, loaded):
        with pytest.raises(BpfPhaseError, match=r"read-only after load"):
            loaded.globals["target_pid"] = 1

    def test_phase_error_is_a_bpf_error(self):
        assert issubclass(BpfPhaseError, BpfError)
