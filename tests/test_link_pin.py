"""Pinned links and programs: a link pinned by a process that has exited keeps its program
attached; a new process reopens it (info, detach, unpin, update_program).

Each test pins under its own directory of /sys/fs/bpf and removes it afterwards.
"""

from __future__ import annotations

import errno
import gc
import os
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.attach_env import cgroup_dir, sockets_in_cgroup
from helpers.kernel import bpffs, cgroup2_root, tracepoint_unavailable_reason

import tinybpf
from tinybpf import BpfAttachType, BpfLinkType, BpfProgType

pytestmark = pytest.mark.root


@pytest.fixture
def pindir() -> Iterator[Path]:
    fs = bpffs()
    if fs is None:
        pytest.skip("no bpf filesystem mounted at /sys/fs/bpf (run 'make mounts')")
    d = fs / f"tinybpf-linkpin-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def getppid_tp():
    reason = tracepoint_unavailable_reason("syscalls", "sys_enter_getppid")
    if reason:
        pytest.skip(reason)


@pytest.fixture
def cg():
    if cgroup2_root() is None:
        pytest.skip("no writable cgroup v2 hierarchy (/sys/fs/cgroup/unified or /sys/fs/cgroup)")
    with cgroup_dir() as d:
        yield d


def getppid(n: int) -> None:
    for _ in range(n):
        os.getppid()


def wait_detached(read: Callable[[], int], trigger: Callable[[], None], timeout: float = 5) -> None:
    """Wait until ``trigger()`` no longer moves the counter ``read()``.

    The last reference of a link may be a pin: the kernel drops it when the bpffs inode is
    freed, after an RCU grace period, so the program goes away shortly after unpin/close,
    not during the call.
    """
    deadline = time.monotonic() + timeout
    while True:
        before = read()
        trigger()
        if read() == before:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"program still attached {timeout} s after its link went")
        time.sleep(0.01)


# A separate process: loads, attaches, pins link + program + counter map, then exits
# without detaching anything.
PINNER = """
import sys
import tinybpf

mode, obj_file, pindir, arg = sys.argv[1:5]
obj = tinybpf.load(obj_file)
if mode == "tracepoint":
    obj.maps["target_pid"][0] = int(arg)
    prog = obj.program("tp_a")
    link = prog.attach()
    obj.maps["hits"].pin(pindir + "/counter")
else:
    prog = obj.program("count_a")
    link = prog.attach_cgroup(arg)
    obj.maps["counts"].pin(pindir + "/counter")
link.pin(pindir + "/link")
prog.pin(pindir + "/prog")
info = link.info
print(info.id, info.prog_id, flush=True)
"""


def pin_in_another_process(obj_file: Path, pindir: Path, mode: str, arg: str) -> tuple[int, int]:
    """(link id, program id) of what the exited process left pinned."""
    out = subprocess.run(
        [sys.executable, "-c", PINNER, mode, str(obj_file), str(pindir), arg],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    return int(out[0]), int(out[1])


class TestAcrossProcesses:
    def test_tracepoint_link_outlives_its_process_until_unpinned(
        self, obj_path, pindir, getppid_tp
    ):
        link_id, prog_id = pin_in_another_process(
            obj_path("attach_tp"), pindir, "tracepoint", str(os.getpid())
        )
        assert sorted(p.name for p in pindir.iterdir()) == ["counter", "link", "prog"]
        assert any(i.id == link_id and i.prog_id == prog_id for i in tinybpf.loaded_links())
        with tinybpf.open_pinned_map(str(pindir / "counter")) as counter:
            getppid(4)
            assert int(counter[0]) == 4  # still attached, its process gone

            link = tinybpf.open_pinned_link(str(pindir / "link"))
            assert link.program is None
            assert link.pin_path == str(pindir / "link")
            info = link.info
            assert (info.id, info.prog_id) == (link_id, prog_id)
            assert info.type is BpfLinkType.PERF_EVENT
            with tinybpf.open_pinned_program(str(pindir / "prog")) as prog:
                assert prog.info.id == prog_id
                assert prog.info.name == "tp_a"
                assert prog.info.type is BpfProgType.TRACEPOINT

            link.unpin()
            assert not (pindir / "link").exists()
            getppid(1)
            assert int(counter[0]) == 5  # our handle still holds the link
            link.destroy()
            wait_detached(lambda: int(counter[0]), lambda: getppid(1))
            settled = int(counter[0])
            getppid(3)
            assert int(counter[0]) == settled
        assert all(i.id != link_id for i in tinybpf.loaded_links())

    def test_cgroup_link_detached_from_a_new_process(self, obj_path, pindir, cg):
        link_id, prog_id = pin_in_another_process(
            obj_path("attach_cgroup"), pindir, "cgroup", str(cg)
        )
        with tinybpf.open_pinned_map(str(pindir / "counter")) as counter:
            sockets_in_cgroup(sys.executable, cg, 2)
            assert int(counter[0]) == 2

            link = tinybpf.open_pinned_link(str(pindir / "link"))
            info = link.info
            assert (info.id, info.prog_id, info.type) == (link_id, prog_id, BpfLinkType.CGROUP)
            assert info.attach_type is BpfAttachType.CGROUP_INET_SOCK_CREATE
            assert info.cgroup_id == os.stat(cg).st_ino
            link.detach()
            assert link.destroyed
            # detached although the pin still exists
            assert (pindir / "link").exists()
            sockets_in_cgroup(sys.executable, cg, 3)
            assert int(counter[0]) == 2

    def test_update_program_of_a_link_pinned_by_another_process(self, obj_path, pindir, cg):
        pin_in_another_process(obj_path("attach_cgroup"), pindir, "cgroup", str(cg))
        with (
            tinybpf.load(obj_path("attach_cgroup")) as mine,
            tinybpf.open_pinned_map(str(pindir / "counter")) as theirs,
        ):
            link = tinybpf.open_pinned_link(str(pindir / "link"))
            try:
                sockets_in_cgroup(sys.executable, cg, 1)
                link.update_program(mine.program("count_b"))
                assert link.program is mine.program("count_b")
                assert link.info.prog_id == mine.program("count_b").kernel_info().id
                sockets_in_cgroup(sys.executable, cg, 2)
                assert int(theirs[0]) == 1  # the old program's counter stopped
                assert [int(mine.maps["counts"][i]) for i in range(2)] == [0, 2]
            finally:
                link.unpin()
                link.destroy()
            wait_detached(
                lambda: int(mine.maps["counts"][1]),
                lambda: sockets_in_cgroup(sys.executable, cg, 1),
            )

    def test_detach_of_a_pinned_tracepoint_link_detaches_or_raises(
        self, obj_path, pindir, getppid_tp
    ):
        pin_in_another_process(obj_path("attach_tp"), pindir, "tracepoint", str(os.getpid()))
        with tinybpf.open_pinned_map(str(pindir / "counter")) as counter:
            link = tinybpf.open_pinned_link(str(pindir / "link"))
            try:
                link.detach()
            except tinybpf.BpfError:
                return  # an honest refusal is fine
            getppid(2)
            assert int(counter[0]) == 0


class TestInProcess:
    @pytest.fixture
    def tp(self, obj_path, getppid_tp):
        obj = tinybpf.load(obj_path("attach_tp"))
        obj.maps["target_pid"][0] = os.getpid()
        yield obj
        obj.close()

    def test_destroy_of_a_pinned_link_leaves_it_attached(self, tp, pindir):
        path = str(pindir / "link")
        link = tp.program("tp_a").attach()
        link.pin(path)
        assert link.pin_path == path
        link.destroy()
        getppid(3)
        assert int(tp.maps["hits"][0]) == 3
        reopened = tinybpf.open_pinned_link(path)
        reopened.unpin()
        reopened.destroy()
        wait_detached(lambda: int(tp.maps["hits"][0]), lambda: getppid(1))
        settled = int(tp.maps["hits"][0])
        getppid(2)
        assert int(tp.maps["hits"][0]) == settled

    def test_garbage_collected_pinned_link_stays_attached_silently(self, tp, pindir):
        path = str(pindir / "link")
        link = tp.program("tp_b").attach()
        link.pin(path)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            del link
            gc.collect()
        getppid(2)
        assert int(tp.maps["hits"][1]) == 2
        os.unlink(path)  # removing the pin file releases the link too
        wait_detached(lambda: int(tp.maps["hits"][1]), lambda: getppid(1))

    def test_unpin_then_destroy_detaches(self, tp, pindir):
        link = tp.program("tp_a").attach()
        link.pin(str(pindir / "link"))
        link.unpin()
        assert link.pin_path is None
        assert not (pindir / "link").exists()
        link.destroy()
        wait_detached(lambda: int(tp.maps["hits"][0]), lambda: getppid(1))

    def test_pin_to_an_existing_path_fails(self, tp, pindir):
        (pindir / "taken").mkdir()
        with tp.program("tp_a").attach() as link:
            with pytest.raises(tinybpf.BpfError) as ei:
                link.pin(str(pindir / "taken"))
            assert ei.value.errno == errno.EEXIST
            assert link.pin_path is None

    def test_open_pinned_link_missing(self, pindir):
        with pytest.raises(tinybpf.BpfError) as ei:
            tinybpf.open_pinned_link(str(pindir / "nothing"))
        assert ei.value.errno == errno.ENOENT


class TestProgramPin:
    def test_pin_open_run_unpin(self, obj_path, pindir):
        path = str(pindir / "prog")
        with tinybpf.load(obj_path("attach_testrun")) as obj:
            prog = obj.program("xdp_swap")
            prog.pin(path)
            assert Path(path).exists()
            with tinybpf.open_pinned_program(path) as kp:
                info = kp.info
                assert info.id == prog.kernel_info().id
                assert info.name == "xdp_swap"
                assert info.type is BpfProgType.XDP
                assert info.tag == prog.kernel_info().tag
                frame = bytes(6) + bytes.fromhex("020000000002") + b"\x88\xb5keep"
                assert kp.test_run(frame).retval == 2  # XDP_PASS
            prog.unpin(path)
            assert not Path(path).exists()

    def test_pinned_program_outlives_its_object(self, obj_path, pindir):
        path = str(pindir / "prog")
        with tinybpf.load(obj_path("attach_testrun")) as obj:
            obj.program("tc_swap").pin(path)
            prog_id = obj.program("tc_swap").kernel_info().id
        with tinybpf.open_pinned_program(path) as kp:
            assert kp.info.id == prog_id
            # re-pin the same program elsewhere through the opened handle
            kp.pin(str(pindir / "again"))
        with tinybpf.open_pinned_program(str(pindir / "again")) as kp:
            assert kp.info.id == prog_id

    def test_open_pinned_program_on_a_map_is_refused(self, obj_path, pindir):
        path = str(pindir / "map")
        with tinybpf.load(obj_path("attach_tp")) as obj:
            obj.maps["hits"].pin(path)
        with pytest.raises(tinybpf.BpfError) as ei:
            tinybpf.open_pinned_program(path)
        assert ei.value.errno == errno.EINVAL
        assert "not a BPF program" in ei.value.message


def test_open_pinned_link_on_a_map_is_refused(obj_path, pindir):
    path = str(pindir / "map")
    with tinybpf.load(obj_path("attach_tp")) as obj:
        obj.maps["hits"].pin(path)
    with pytest.raises(tinybpf.BpfError):
        link = tinybpf.open_pinned_link(path)
        try:
            link.info  # noqa: B018 - an error at the latest here
        finally:
            link.destroy()
