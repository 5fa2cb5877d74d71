"""BpfLink: fd, destroy, context manager, repr, lifetime against its object and GC."""

from __future__ import annotations

import errno
import gc
import os
import subprocess
import sys
import uuid
import warnings
import weakref

import pytest
from helpers.kernel import bpffs, tracepoint_unavailable_reason

import tinybpf
from tinybpf import BpfLink

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def _needs_getpid_tracepoint():
    reason = tracepoint_unavailable_reason("syscalls", "sys_enter_getpid")
    if reason:
        pytest.skip(reason)


def _load(obj_path) -> tinybpf.BpfObject:
    obj = tinybpf.load(obj_path("minimal"))
    obj.maps["config_map"][0] = os.getpid()
    return obj


@pytest.fixture
def minimal(obj_path):
    obj = _load(obj_path)
    yield obj
    obj.close()


def hits(obj: tinybpf.BpfObject) -> int:
    return int(obj.maps["counter"][0])


def call_getpid(n: int) -> None:
    for _ in range(n):
        os.getpid()


class TestBasics:
    def test_fd_is_a_bpf_link(self, minimal):
        link = minimal.program("handle_getpid").attach()
        try:
            assert isinstance(link, BpfLink)
            assert link.fd > 0
            assert os.readlink(f"/proc/self/fd/{link.fd}") == "anon_inode:bpf_link"
        finally:
            link.destroy()
        assert link.fd == -1

    def test_repr_attached_and_destroyed(self, minimal):
        link = minimal.program("handle_getpid").attach()
        fd = link.fd
        assert repr(link) == f"<BpfLink fd={fd} (auto-attach handle_getpid)>"
        link.destroy()
        assert repr(link) == "<BpfLink destroyed (auto-attach handle_getpid)>"

    def test_tracepoint_description(self, minimal):
        prog = minimal.program("handle_getpid")
        with prog.attach_tracepoint("syscalls", "sys_enter_getpid") as link:
            assert repr(link) == f"<BpfLink fd={link.fd} (tracepoint:syscalls/sys_enter_getpid)>"

    def test_destroy_is_idempotent(self, minimal):
        link = minimal.program("handle_getpid").attach()
        link.destroy()
        link.destroy()
        assert link.fd == -1
        assert "destroyed" in repr(link)

    def test_destroy_detaches(self, minimal):
        link = minimal.program("handle_getpid").attach()
        call_getpid(4)
        assert hits(minimal) == 4
        link.destroy()
        call_getpid(4)
        assert hits(minimal) == 4

    def test_context_manager_detaches_on_exit(self, minimal):
        with minimal.program("handle_getpid").attach() as link:
            assert isinstance(link, BpfLink)
            call_getpid(2)
        assert link.fd == -1
        call_getpid(2)
        assert hits(minimal) == 2

    def test_context_manager_detaches_on_exception(self, minimal):
        with pytest.raises(RuntimeError), minimal.program("handle_getpid").attach() as link:
            raise RuntimeError("boom")
        assert "destroyed" in repr(link)
        call_getpid(2)
        assert hits(minimal) == 0

    def test_one_program_two_links(self, minimal):
        prog = minimal.program("handle_getpid")
        with prog.attach(), prog.attach_tracepoint("syscalls", "sys_enter_getppid"):
            call_getpid(3)
            for _ in range(2):
                os.getppid()
        assert hits(minimal) == 5

    def test_same_tracepoint_twice_is_refused(self, minimal):
        # the kernel attaches a program to a tracepoint at most once
        prog = minimal.program("handle_getpid")
        with prog.attach(), pytest.raises(tinybpf.BpfError) as ei:
            prog.attach_tracepoint("syscalls", "sys_enter_getpid")
        assert ei.value.errno == errno.EEXIST
        assert ei.value.message.startswith(
            "attach tracepoint to 'syscalls/sys_enter_getpid' failed: "
        )
        assert ei.value.libbpf_log and "-EEXIST" in ei.value.libbpf_log

    def test_link_keeps_a_reference_to_its_program(self, minimal):
        prog = minimal.program("handle_getpid")
        with prog.attach() as link:
            assert link.program is prog


class TestLifetime:
    def test_link_outlives_closed_object(self, obj_path):
        fs = bpffs()
        if fs is None:
            pytest.skip("no bpf filesystem mounted at /sys/fs/bpf (run 'make mounts')")
        pin = fs / f"tinybpf-test-{uuid.uuid4().hex[:12]}"
        obj = _load(obj_path)
        try:
            obj.maps["counter"].pin(str(pin))
            link = obj.program("handle_getpid").attach()
            obj.close()
            # the program stays attached until the link is destroyed
            call_getpid(5)
            with tinybpf.open_pinned_map(str(pin)) as counter:
                assert int(counter[0]) == 5
                link.destroy()
                call_getpid(5)
                assert int(counter[0]) == 5
        finally:
            obj.close()
            if pin.exists():
                os.unlink(pin)

    def test_destroy_after_object_close(self, obj_path):
        obj = _load(obj_path)
        link = obj.program("handle_getpid").attach()
        obj.close()
        link.destroy()
        assert link.fd == -1

    def test_link_keeps_the_object_alive(self, obj_path):
        obj = _load(obj_path)
        obj_ref = weakref.ref(obj)
        link = obj.program("handle_getpid").attach()
        counter = obj.maps["counter"]
        del obj
        gc.collect()
        # the link holds the program, which holds the object: still open and attached
        assert obj_ref() is not None
        call_getpid(3)
        assert int(counter[0]) == 3
        link.destroy()
        obj_ref().close()

    def test_garbage_collected_link_detaches_with_a_warning(self, minimal):
        link = minimal.program("handle_getpid").attach()
        call_getpid(2)
        assert hits(minimal) == 2
        with pytest.warns(tinybpf.LinkDetachedWarning, match="auto-attach handle_getpid"):
            del link
            gc.collect()
        call_getpid(3)
        assert hits(minimal) == 2

    def test_collected_link_warning_is_shown_by_default(self, obj_path):
        """Issue 14 item 7: the warning was a ResourceWarning, which Python hides by
        default, so a loop of attach() calls traced nothing and told nobody."""
        code = (
            "import tinybpf\n"
            f"obj = tinybpf.load({str(obj_path('minimal'))!r})\n"
            "for p in obj.programs.values():\n"
            "    p.attach()\n"
            "obj.close()\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
        )
        assert r.returncode == 0, r.stderr
        assert "LinkDetachedWarning: BpfLink (auto-attach handle_getpid) was garbage " in r.stderr
        assert "the program has been detached" in r.stderr
        assert issubclass(tinybpf.LinkDetachedWarning, RuntimeWarning)
        assert not issubclass(tinybpf.LinkDetachedWarning, ResourceWarning)

    def test_destroyed_link_collects_silently(self, minimal):
        link = minimal.program("handle_getpid").attach()
        link.destroy()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            del link
            gc.collect()

    def test_links_of_a_closed_object_are_independent(self, obj_path):
        obj = _load(obj_path)
        a = obj.program("handle_getpid").attach()
        b = obj.program("handle_getpid").attach_tracepoint("syscalls", "sys_enter_getppid")
        obj.close()
        a.destroy()
        assert b.fd > 0
        assert "destroyed" not in repr(b)
        b.destroy()
