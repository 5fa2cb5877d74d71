"""load() and BpfObject: opening, loading, collections, lookup errors and closing."""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path

import pytest
from helpers.kernel import map_type_unavailable_reason

import tinybpf
from tinybpf import BpfClosedError, BpfError, BpfFileNotFoundError, BpfMapType, BpfProgType

pytestmark = pytest.mark.root


@pytest.fixture
def minimal(obj_path):
    obj = tinybpf.load(obj_path("minimal"))
    yield obj
    obj.close()


def getpid_count(obj: tinybpf.BpfObject) -> int:
    return int(obj.maps["counter"][0] or 0)


# --- load() failures ---------------------------------------------------------------------


class TestLoadErrors:
    def test_missing_file_is_file_not_found(self, tmp_path):
        path = tmp_path / "nope.bpf.o"
        with pytest.raises(FileNotFoundError) as ei:
            tinybpf.load(path)
        e = ei.value
        assert isinstance(e, BpfError)
        assert isinstance(e, BpfFileNotFoundError)
        assert str(e) == f"BPF object file not found: {path}"
        assert e.errno == errno.ENOENT

    def test_missing_file_accepts_str(self, tmp_path):
        with pytest.raises(BpfFileNotFoundError, match="BPF object file not found: "):
            tinybpf.load(str(tmp_path / "missing.bpf.o"))

    def test_not_an_elf_file(self, tmp_path):
        path = tmp_path / "garbage.bpf.o"
        path.write_bytes(b"this is not an ELF object\n" * 8)
        with pytest.raises(BpfError) as ei:
            tinybpf.load(path)
        e = ei.value
        assert e.message.startswith(f"open '{path}' failed: ")
        assert e.errno > 0
        assert not isinstance(e, FileNotFoundError)
        # libbpf said why, and it was captured for this call
        assert e.libbpf_log and "elf" in e.libbpf_log.lower()

    def test_verifier_rejection_carries_the_verifier_log(self, obj_path):
        path = obj_path("prog_invalid")
        with pytest.raises(BpfError) as ei:
            tinybpf.load(path)
        e = ei.value
        assert e.message.startswith(f"load '{path}' failed: ")
        assert e.errno == errno.EACCES
        log = e.libbpf_log
        assert log is not None
        assert "BEGIN PROG LOAD LOG" in log
        assert "invalid access to map value" in log
        assert "out_of_bounds" in log
        # str() appends the log after the message
        assert str(e) == f"{e.message}\n\nlibbpf output:\n{log}"

    @pytest.mark.parametrize("how", ["load", "open then load"])
    def test_missing_fentry_target_is_named_not_a_missing_file(self, obj_path, how):
        path = obj_path("missing_fentry")
        with pytest.raises(BpfError) as ei:
            if how == "load":
                tinybpf.load(path)
            else:
                with tinybpf.open(path) as obj:
                    obj.load()
        e = ei.value
        assert not isinstance(e, FileNotFoundError)
        assert e.errno == errno.ESRCH
        assert e.message.startswith(f"load '{path}' failed: ")
        assert (
            "function 'tinybpf_no_such_function' (fentry target of program 'on_missing') "
            "not found in this kernel"
        ) in e.message
        assert "tinybpf_no_such_function" in (e.libbpf_log or "")  # libbpf's words kept

    @pytest.mark.parametrize("how", ["load", "open then load"])
    def test_missing_kfunc_is_named(self, obj_path, how):
        path = obj_path("missing_kfunc")
        with pytest.raises(BpfError) as ei:
            if how == "load":
                tinybpf.load(path)
            else:
                with tinybpf.open(path) as obj:
                    obj.load()
        assert not isinstance(ei.value, FileNotFoundError)
        assert "kfunc 'tinybpf_no_such_kfunc' not found in this kernel" in ei.value.message

    def test_a_directory_is_not_a_bpf_object(self, tmp_path):
        for call in (tinybpf.load, tinybpf.open):
            with pytest.raises(BpfError) as ei:
                call(tmp_path)
            assert ei.value.errno == errno.EISDIR
            assert str(ei.value).startswith(
                f"open '{tmp_path}' failed: not a regular file (a directory); a BPF object is"
            )
            assert "libelf" not in str(ei.value)

    def test_failed_load_can_be_retried(self, obj_path):
        # a failed load frees the half-built object exactly once (W1): nothing crashes and
        # the next loads work
        for _ in range(3):
            with pytest.raises(BpfError):
                tinybpf.load(obj_path("prog_invalid"))
        gc.collect()
        with tinybpf.load(obj_path("minimal")) as obj:
            assert obj.program("handle_getpid").fd > 0


# --- BpfObject -----------------------------------------------------------------------------


class TestBpfObject:
    def test_name_and_path(self, minimal, obj_path):
        assert minimal.name == "minimal"
        assert minimal.path == obj_path("minimal")
        assert isinstance(minimal.path, Path)

    def test_path_given_as_str(self, obj_path):
        with tinybpf.load(str(obj_path("minimal"))) as obj:
            assert obj.path == obj_path("minimal")

    def test_repr_open_then_closed(self, obj_path):
        obj = tinybpf.load(obj_path("minimal"))
        assert repr(obj) == "<BpfObject 'minimal' open programs=1 maps=4>"
        obj.close()
        assert repr(obj) == "<BpfObject 'minimal' closed programs=1 maps=4>"

    def test_context_manager_closes(self, obj_path):
        with tinybpf.load(obj_path("minimal")) as obj:
            assert isinstance(obj, tinybpf.BpfObject)
            assert " open " in repr(obj)
            prog = obj.program("handle_getpid")
        assert " closed " in repr(obj)
        with pytest.raises(BpfClosedError):
            _ = prog.fd

    def test_close_is_idempotent(self, obj_path):
        obj = tinybpf.load(obj_path("minimal"))
        obj.close()
        obj.close()
        assert "closed" in repr(obj)

    def test_name_and_path_work_after_close(self, obj_path):
        obj = tinybpf.load(obj_path("minimal"))
        obj.close()
        assert obj.name == "minimal"
        assert obj.path == obj_path("minimal")

    def test_libbpf_messages_of_a_successful_load_reach_the_logger(self, obj_path, caplog):
        """open + load run in one C call that keeps libbpf's messages in C; they are
        handed to the "tinybpf.libbpf" logger afterwards, with their levels."""
        import logging

        tinybpf.set_libbpf_log_level("debug")
        try:
            with caplog.at_level(logging.DEBUG, logger="tinybpf.libbpf"):
                tinybpf.load(obj_path("minimal")).close()
        finally:
            tinybpf.set_libbpf_log_level("info")
        records = [r for r in caplog.records if r.name == "tinybpf.libbpf"]
        assert records and all(r.levelno == logging.DEBUG for r in records)
        text = "\n".join(r.getMessage() for r in records)
        assert "minimal" in text and "handle_getpid" in text

    def test_more_names_than_the_open_result_holds(self, obj_path):
        """The names come back in a fixed buffer of the open call; an object whose names
        do not fit is indexed by a second call."""
        from tinybpf._core import lib

        with tinybpf.load(obj_path("many_names")) as obj:
            names = list(obj.programs)
            assert sum(len(n) + 1 for n in names) > lib.TINYBPF_INDEX_CAP
            assert len(names) == 48
            assert names[0] == "a_socket_filter_with_a_long_name_10"
            assert names[-1] == "a_socket_filter_with_a_long_name_57"
            assert obj.program(names[-1]).fd > 0

    def test_internal_maps_are_listed(self, minimal):
        assert set(minimal.maps) == {"config_map", "counter", "minimal.rodata", "minimal.bss"}
        assert minimal.maps["minimal.rodata"].type == BpfMapType.ARRAY
        assert minimal.maps["minimal.bss"].type == BpfMapType.ARRAY

    def test_internal_map_prefix_is_eight_chars(self, obj_path):
        # libbpf names internal maps after the first 8 characters of the object name
        with tinybpf.load(obj_path("btf_types")) as obj:
            assert "btf_type.bss" in obj.maps

    def test_newer_map_and_program_types_open(self, obj_path):
        # ARENA (33) and NETFILTER (32) were unknown to the first generation's closed
        # enums, and loading such an object aborted the process (W1)
        with tinybpf.open(obj_path("prog_newtypes")) as obj:
            assert obj.maps["arena"].type is BpfMapType.ARENA
            assert obj.program("nf_accept").type is BpfProgType.NETFILTER

    def test_newer_map_and_program_types_load(self, obj_path):
        skip = map_type_unavailable_reason("ARENA")
        if skip:
            pytest.skip(skip)
        with tinybpf.load(obj_path("prog_newtypes")) as obj:
            assert obj.maps["arena"].type is BpfMapType.ARENA
            assert obj.program("nf_accept").type is BpfProgType.NETFILTER
            assert obj.program("nf_accept").fd > 0


class TestLoadSources:
    def test_load_from_bytes(self, obj_path):
        data = obj_path("minimal").read_bytes()
        with tinybpf.load(data, object_name="minimal") as obj:
            assert obj.name == "minimal"
            assert list(obj.programs) == ["handle_getpid"]
            assert obj.program("handle_getpid").fd > 0

    def test_load_from_empty_bytes(self):
        with pytest.raises(ValueError):
            tinybpf.load(b"")

    def test_open_then_load(self, obj_path):
        obj = tinybpf.open(obj_path("minimal"))
        try:
            assert not obj.loaded
            prog = obj.program("handle_getpid")
            with pytest.raises(tinybpf.BpfPhaseError):
                _ = prog.fd
            with pytest.raises(tinybpf.BpfPhaseError):
                prog.attach()
            assert obj.load() is obj
            assert obj.loaded
            assert prog.fd > 0
            assert repr(obj) == "<BpfObject 'minimal' open programs=1 maps=4>"
        finally:
            obj.close()


class TestCollections:
    def test_unknown_names_list_the_names_that_exist(self, minimal):
        with pytest.raises(KeyError) as ei:
            minimal.maps["nope"]
        assert ei.value.args[0] == (
            "Map 'nope' not found. Available maps: config_map, counter, minimal.rodata, minimal.bss"
        )
        with pytest.raises(KeyError, match="Available programs: handle_getpid"):
            minimal.programs["nope"]
        with pytest.raises(AttributeError, match="Available maps: config_map"):
            minimal.maps.nope  # noqa: B018
        assert "nope" not in minimal.maps and minimal.maps.get("nope") is None

    def test_programs_is_a_new_readonly_mapping_each_access(self, minimal):
        a, b = minimal.programs, minimal.programs
        assert isinstance(a, tinybpf.ProgramCollection)
        assert isinstance(a, Mapping)
        assert a is not b
        assert a == b
        assert a["handle_getpid"] is b["handle_getpid"]
        with pytest.raises(TypeError):
            a["x"] = None  # type: ignore[index]

    def test_maps_is_a_new_readonly_mapping_each_access(self, minimal):
        a, b = minimal.maps, minimal.maps
        assert isinstance(a, tinybpf.MapCollection)
        assert isinstance(a, Mapping)
        assert a is not b
        assert a["counter"] is b["counter"]
        with pytest.raises(TypeError):
            del a["counter"]  # type: ignore[attr-defined]

    def test_mapping_protocol(self, minimal):
        progs = minimal.programs
        assert len(progs) == 1
        assert list(progs) == ["handle_getpid"]
        assert list(progs.keys()) == ["handle_getpid"]
        assert "handle_getpid" in progs
        assert "nope" not in progs
        assert progs.get("nope") is None
        [(name, prog)] = progs.items()
        assert name == "handle_getpid" and prog is minimal.program("handle_getpid")
        assert list(progs.values()) == [prog]
        maps = minimal.maps
        assert len(maps) == 4
        assert dict(maps.items())["counter"] is minimal.map("counter")

    def test_collection_reprs(self, minimal):
        assert repr(minimal.programs) == "<ProgramCollection ['handle_getpid']>"
        assert repr(minimal.maps) == (
            "<MapCollection ['config_map', 'counter', 'minimal.rodata', 'minimal.bss']>"
        )

    def test_program_and_map_accessors_return_the_shared_instances(self, minimal):
        assert minimal.program("handle_getpid") is minimal.programs["handle_getpid"]
        assert minimal.map("counter") is minimal.maps["counter"]

    def test_program_lookup_error_lists_available(self, minimal):
        with pytest.raises(KeyError) as ei:
            minimal.program("nope")
        assert ei.value.args[0] == "Program 'nope' not found. Available programs: handle_getpid"

    def test_map_lookup_error_lists_available(self, minimal):
        with pytest.raises(KeyError) as ei:
            minimal.map("nope")
        assert ei.value.args[0] == (
            "Map 'nope' not found. Available maps: config_map, counter, minimal.rodata, minimal.bss"
        )

    def test_map_lookup_error_of_other_object(self, obj_path):
        with tinybpf.open(obj_path("prog_newtypes")) as obj:
            with pytest.raises(KeyError) as ei:
                obj.map("nope")
            assert ei.value.args[0] == "Map 'nope' not found. Available maps: arena"


class TestAfterClose:
    @pytest.fixture
    def closed(self, obj_path):
        obj = tinybpf.load(obj_path("minimal"))
        prog = obj.program("handle_getpid")
        counter = obj.map("counter")
        obj.close()
        return obj, prog, counter

    def test_program_fd_raises(self, closed):
        _, prog, _ = closed
        with pytest.raises(BpfClosedError) as ei:
            _ = prog.fd
        assert isinstance(ei.value, BpfError)
        assert str(ei.value) == "Cannot use program after BpfObject is closed"

    @pytest.mark.parametrize(
        "call",
        [
            lambda p: p.attach(),
            lambda p: p.attach_tracepoint("syscalls", "sys_enter_getpid"),
            lambda p: p.attach_raw_tracepoint("sys_enter"),
            lambda p: p.attach_uprobe("/bin/true", 0),
            lambda p: p.attach_kprobe("do_nanosleep"),
            lambda p: p.attach_xdp(1),
            lambda p: p.attach_cgroup(0),
        ],
        ids=["attach", "tracepoint", "raw_tp", "uprobe", "kprobe", "xdp", "cgroup"],
    )
    def test_attach_raises(self, closed, call):
        _, prog, _ = closed
        with pytest.raises(BpfError, match=r"^Cannot use program after BpfObject is closed$"):
            call(prog)

    def test_program_metadata_stays_readable(self, closed):
        # name, section, type and info are static facts read at open (reference 1.4), like
        # a map's name/type/info, which also stay readable after close
        _, prog, counter = closed
        assert (prog.name, prog.section) == ("handle_getpid", "tp/syscalls/sys_enter_getpid")
        assert counter.info.type is BpfMapType.ARRAY
        assert prog.type is BpfProgType.TRACEPOINT
        assert prog.info.type is BpfProgType.TRACEPOINT
        assert repr(prog) == "<BpfProgram 'handle_getpid' type=TRACEPOINT>"

    def test_map_use_raises(self, closed):
        _, _, counter = closed
        with pytest.raises(BpfClosedError, match="Cannot use map after BpfObject is closed"):
            counter[0]
        with pytest.raises(BpfClosedError):
            _ = counter.fd

    def test_btf_raises_instead_of_crashing(self, obj_path):
        obj = tinybpf.load(obj_path("btf_types"))
        btf = obj.btf
        assert btf is not None
        assert btf.find("plain") > 0
        obj.close()
        # the object's BTF was freed with it: using it raises, never touches freed memory (W2)
        with pytest.raises(BpfClosedError):
            btf.find("plain")
        with pytest.raises(BpfClosedError):
            obj.btf.find("plain")

    def test_btf_of_closed_object_without_earlier_access(self, obj_path):
        obj = tinybpf.load(obj_path("btf_types"))
        obj.close()
        with pytest.raises(BpfClosedError):
            b = obj.btf
            b.resolve(b.find("plain"))

    def test_register_type_after_close_raises(self, obj_path):
        import ctypes

        class Plain(ctypes.Structure):
            _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint16), ("c", ctypes.c_uint64)]

        obj = tinybpf.load(obj_path("btf_types"))
        obj.close()
        with pytest.raises(BpfClosedError):
            obj.register_type("plain", Plain)


def test_garbage_collected_object_releases_its_programs(obj_path):
    # an object that is never closed is freed by GC; its program fds go away with it
    obj = tinybpf.load(obj_path("minimal"))
    fd = obj.program("handle_getpid").fd
    assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:bpf-prog"
    del obj
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert not os.path.exists(f"/proc/self/fd/{fd}") or (
        os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:bpf-prog"
    )


# --- lifetime: handles keep the object, the object does not keep its handles ---------------


class TestLifetime:
    """Issue 14 item 2. A map, program, collection, globals view, link or buffer keeps its
    object open on its own; an object dropped unclosed is freed by reference counting
    alone (no object <-> children cycle), with the ResourceWarning of an unclosed object."""

    @pytest.fixture(autouse=True)
    def _quiet(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            yield

    def test_collection_keeps_its_object(self, obj_path):
        assert tinybpf.load(obj_path("minimal")).maps["counter"][0] == 0
        gc.collect()
        maps = tinybpf.load(obj_path("minimal")).maps
        gc.collect()
        assert maps.counter[0] == 0
        programs = tinybpf.load(obj_path("minimal")).programs
        gc.collect()
        assert programs["handle_getpid"].fd > 0

    def test_map_program_and_globals_keep_their_object(self, obj_path):
        m = tinybpf.load(obj_path("minimal")).map("counter")
        p = tinybpf.load(obj_path("minimal")).program("handle_getpid")
        g = tinybpf.load(obj_path("minimal")).globals
        sec = tinybpf.load(obj_path("minimal")).globals[".rodata"]
        gc.collect()
        m[0] = 7
        assert m[0] == 7
        assert p.fd > 0 and p.kernel_info().id > 0
        assert g["magic"] == 42
        assert sec["magic"] == 42 and sec.map.name.endswith(".rodata")

    def test_buffer_keeps_its_object(self, obj_path):
        rb = tinybpf.BpfRingBuffer(tinybpf.load(obj_path("ringbuf_events")).maps["events"])
        gc.collect()
        assert rb.poll(timeout_ms=0) == 0
        rb.close()

    def _touch_everything(self, obj: tinybpf.BpfObject) -> None:
        prog = obj.program("handle_getpid")
        assert prog.fd > 0 and prog.type is BpfProgType.TRACEPOINT
        repr(prog)
        with prog.attach():
            pass
        for name, m in obj.maps.items():
            repr(m)
            if m.is_internal:
                continue
            m[0] = 1
            assert m[0] == 1 and 0 in m
            assert list(m.items()) == [(0, 1)]
            m.typed(value=ctypes.c_uint64 if m.value_size == 8 else ctypes.c_uint32)[0] = 2
            assert name in obj.maps
        obj.globals["bss_hits"] = 3
        assert obj.globals.bss_hits == 3 and obj.globals[".bss"]["bss_hits"] == 3
        assert obj.magic == 42
        assert obj.btf is not None and obj.maps["counter"].btf_value is not None
        dir(obj)
        repr(obj)

    def test_unclosed_object_is_freed_by_reference_counting(self, obj_path):
        obj = tinybpf.load(obj_path("minimal"))
        self._touch_everything(obj)
        fd = obj.program("handle_getpid").fd
        ref = weakref.ref(obj)
        gc.collect()
        gc.disable()
        try:
            with pytest.warns(ResourceWarning, match="BpfObject 'minimal' was not closed"):
                del obj
                assert ref() is None
        finally:
            gc.enable()
        assert not os.path.exists(f"/proc/self/fd/{fd}") or (
            os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:bpf-prog"
        )

    def test_unclosed_object_with_map_types_is_freed_by_reference_counting(self, obj_path):
        obj = tinybpf.load(obj_path("maps"))
        pc = obj.maps["pcpu_hash"]
        pc[1] = 5
        assert pc[1] == [5] * tinybpf.possible_cpus()
        assert list(pc.items()) == [(1, [5] * tinybpf.possible_cpus())]
        obj.maps["struct_map"][1] = {"id": 1, "delta": -1}
        assert obj.maps["struct_map"][1].delta == -1
        obj.maps["queue"].push(3)
        assert obj.maps["queue"].pop() is not None
        assert obj.maps["outer"].inner_map(0) is not None
        obj.maps["outer"].inner_map(0).close()
        del pc
        ref = weakref.ref(obj)
        gc.collect()
        gc.disable()
        try:
            with pytest.warns(ResourceWarning, match="was not closed"):
                del obj
                assert ref() is None
        finally:
            gc.enable()

    def test_verifier_log_buffer_lives_with_the_object(self, obj_path):
        obj = tinybpf.open(obj_path("minimal"))
        obj.program("handle_getpid").request_verifier_log()
        gc.collect()  # the program wrapper is gone; the buffer libbpf writes is not
        obj.load()
        assert "processed" in obj.program("handle_getpid").verifier_log
        obj.close()
