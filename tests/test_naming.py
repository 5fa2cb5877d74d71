"""One way to name each thing (issue 15 item 7): every handle has ``close()``/``closed``
(``BpfLink.destroy()`` stays as the first generation's alias), calls that make syscalls are
methods, and the attach family takes its parameters in one order."""

from __future__ import annotations

import inspect
import os

import pytest
from conftest import bpf_obj

import tinybpf
from tinybpf.introspect import PerfEvent, _StatsHandle
from tinybpf.link import SocketFilter, TcAttachment, XdpAttachment


def _handle_classes() -> list[type]:
    public = [getattr(tinybpf, n) for n in [*tinybpf.__all__, *tinybpf._PUBLIC_NOT_IN_ALL]]
    extra = [PerfEvent, _StatsHandle, SocketFilter, TcAttachment, XdpAttachment]
    return [
        c
        for c in [*public, *extra]
        if inspect.isclass(c) and (hasattr(c, "close") or hasattr(c, "destroy"))
    ]


@pytest.mark.parametrize("cls", _handle_classes(), ids=lambda c: c.__name__)
def test_every_handle_has_close_and_closed(cls):
    assert callable(cls.close)
    assert isinstance(inspect.getattr_static(cls, "closed"), property)


def test_a_link_closes_like_every_handle_and_destroy_stays_an_alias():
    with tinybpf.load(bpf_obj("minimal")) as obj:
        link = obj.program("handle_getpid").attach()
        assert not link.closed and not link.destroyed
        assert link.kernel_info() == link.info  # the syscall is a method; the property stays
        link.close()
        assert link.closed and link.destroyed
        link.destroy()  # idempotent alias
        link2 = obj.program("handle_getpid").attach()
        link2.destroy()
        assert link2.closed


def test_closed_follows_close_for_maps_objects_and_buffers():
    m = tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, 4)
    assert not m.closed
    m.close()
    assert m.closed
    obj = tinybpf.load(bpf_obj("minimal"))
    counter = obj.map("counter")
    assert not counter.closed and not obj.closed
    obj.close()
    assert counter.closed and obj.closed


def test_a_kernel_program_and_a_perf_event_close_like_handles():
    with tinybpf.load(bpf_obj("minimal")) as obj:
        kp = tinybpf.open_program_by_id(obj.program("handle_getpid").kernel_info().id)
        assert not kp.closed and kp.kernel_info() == kp.info
        kp.close()
        assert kp.closed
    ev = PerfEvent(os.dup(0), 0)
    assert not ev.closed
    ev.close()
    assert ev.closed


# Positional parameters with a default that the attach family keeps positional: where to
# attach (a pattern, a direction) and the first generation's positional options. Every
# other option is keyword-only, ``cookie``/``cookies`` included.
POSITIONAL_DEFAULTS = {
    "attach_kprobe": {"retprobe"},
    "attach_kprobe_multi": {"pattern"},
    "attach_uprobe": {"offset", "pid", "retprobe"},
    "attach_uretprobe": {"offset", "pid"},
    "attach_uprobe_multi": {"pattern"},
    "attach_tc": {"direction"},
    "attach_tcx": {"direction"},
}


def test_the_attach_family_takes_the_target_first_and_options_by_keyword():
    bad = []
    for name, fn in inspect.getmembers(tinybpf.BpfProgram, inspect.isfunction):
        if not name.startswith("attach"):
            continue
        for p in list(inspect.signature(fn).parameters.values())[1:]:
            positional = p.kind is p.POSITIONAL_OR_KEYWORD
            allowed = POSITIONAL_DEFAULTS.get(name, set())
            if positional and p.default is not p.empty and p.name not in allowed:
                bad.append(f"{name}({p.name}=...) is an option but positional")
            if p.name in ("cookie", "cookies") and p.kind is not p.KEYWORD_ONLY:
                bad.append(f"{name}({p.name}) is not keyword-only")
    assert bad == []
