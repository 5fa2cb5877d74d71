"""obj.attach_all(): libbpf's auto-attach for every program whose section says where.

The fixture holds a tracepoint and a raw tracepoint (both attached and seen firing) and an
XDP program (skipped: it needs an interface).
"""

from __future__ import annotations

import os

import pytest
from helpers.kernel import getpid_nr, tracepoint_unavailable_reason

import tinybpf

pytestmark = pytest.mark.root


@pytest.fixture
def ergo(obj_path):
    reason = tracepoint_unavailable_reason("syscalls", "sys_enter_getpid")
    if reason:
        pytest.skip(reason)
    nr = getpid_nr()
    if nr is None:
        pytest.skip("no getpid syscall number known for this machine")
    obj = tinybpf.load(obj_path("ergo_attach"))
    obj.globals["target_tgid"] = os.getpid()
    obj.globals["target_nr"] = nr
    try:
        yield obj
    finally:
        obj.close()


def _hits(obj) -> list[int]:
    return list(obj.globals["hits"])


def test_attach_all_attaches_what_the_sections_name_and_skips_xdp(ergo):
    links = ergo.attach_all()
    assert sorted(links) == ["on_raw_tp", "on_tp"]
    assert dict(ergo.links) == links
    assert all(isinstance(v, tinybpf.BpfLink) for v in links.values())
    assert list(ergo.skipped_programs) == ["xdp_pass"]
    assert "attach_xdp(interface)" in ergo.skipped_programs["xdp_pass"]
    for _ in range(5):
        os.getpid()
    tp, raw = _hits(ergo)
    assert tp >= 5 and raw >= 5


def test_close_detaches_the_links_of_attach_all(obj_path):
    obj = tinybpf.load(obj_path("ergo_attach"))
    obj.globals["target_tgid"] = os.getpid()
    obj.globals["target_nr"] = getpid_nr() or 0
    links = obj.attach_all()
    ids = {link.info.id for link in links.values()}
    assert ids <= {li.id for li in tinybpf.loaded_links()}
    obj.close()
    assert all(link.destroyed for link in links.values())
    assert not ids & {li.id for li in tinybpf.loaded_links()}
    assert dict(obj.links) == {}


def test_second_call_attaches_only_what_is_new(ergo):
    first = ergo.attach_all()
    assert ergo.attach_all() == {}
    assert dict(ergo.links) == first


def test_autoattach_off_and_autoload_off_are_skipped_with_the_reason(obj_path):
    obj = tinybpf.open(obj_path("ergo_attach"))
    try:
        obj.program("on_raw_tp").autoload = False
        obj.program("on_tp").autoattach = False
        assert obj.program("on_tp").autoattach is False
        obj.load()
        assert obj.attach_all() == {}
        assert obj.skipped_programs["on_tp"] == "autoattach is off"
        assert obj.skipped_programs["on_raw_tp"] == "not loaded (autoload is off)"
        with pytest.raises(TypeError, match="autoattach must be a bool"):
            obj.program("on_tp").autoattach = 1  # type: ignore[assignment]
    finally:
        obj.close()


def test_attach_all_before_load_is_a_phase_error(obj_path):
    with (
        tinybpf.open(obj_path("ergo_attach")) as obj,
        pytest.raises(tinybpf.BpfPhaseError, match="before load"),
    ):
        obj.attach_all()


def test_attach_all_on_a_closed_object_raises(obj_path):
    obj = tinybpf.load(obj_path("ergo_attach"))
    obj.close()
    with pytest.raises(tinybpf.BpfClosedError):
        obj.attach_all()


def test_a_failed_attach_raises_and_leaves_nothing_attached(obj_path):
    with tinybpf.load(obj_path("ergo_attach_bad")) as obj:
        good_id = obj.program("good_tp").kernel_info().id
        with pytest.raises(tinybpf.BpfError, match="attach program 'bad_tp'") as ei:
            obj.attach_all()
        assert not isinstance(ei.value, tinybpf.BpfClosedError)
        # the link made for good_tp by this call was destroyed again
        assert good_id not in {li.prog_id for li in tinybpf.loaded_links()}
        assert dict(obj.links) == {}
