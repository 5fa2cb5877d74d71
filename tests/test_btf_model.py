"""The BTF model's less common kinds: functions and prototypes, variables, decl tags, FWD."""

from __future__ import annotations

import pytest
from conftest import bpf_obj

import tinybpf
from tinybpf import Btf, BtfKind


@pytest.fixture(scope="module")
def vmlinux():
    with Btf.from_vmlinux() as btf:
        yield btf


def test_func_and_its_prototype(vmlinux) -> None:
    func = vmlinux.type(vmlinux.find("do_sys_openat2", BtfKind.FUNC))
    assert func.kind == BtfKind.FUNC and func.name == "do_sys_openat2"
    assert func.linkage in (0, 1)  # static or global
    proto = vmlinux.type(func.ref_id)
    assert proto.kind == BtfKind.FUNC_PROTO
    assert proto.params is not None
    assert [p.name for p in proto.params] == ["dfd", "filename", "how"]
    assert proto.params[0].type is not None and proto.params[0].type.name == "int"
    assert proto.params[1].type is not None and proto.params[1].type.kind == BtfKind.PTR
    assert vmlinux.resolve(proto.ref_id).kind == BtfKind.INT  # the return type


def test_decl_tags_point_at_their_target(vmlinux) -> None:
    tags = [t for t in vmlinux if t.kind == BtfKind.DECL_TAG]
    if not tags:
        pytest.skip("this kernel's BTF has no DECL_TAG (built without kfunc tags)")
    tag = tags[0]
    target = vmlinux.type(tag.ref_id)
    assert target.kind in (
        BtfKind.FUNC,
        BtfKind.STRUCT,
        BtfKind.UNION,
        BtfKind.VAR,
        BtfKind.TYPEDEF,
    )
    assert tag.component_idx >= -1


def test_vars_of_an_object_have_linkage_and_size() -> None:
    with Btf.from_file(bpf_obj("minimal")) as btf:
        var_types = [t for t in btf if t.kind == BtfKind.VAR]
        assert var_types, "the fixture has globals"
        for v in var_types:
            assert v.linkage in (0, 1, 2)
            assert v.size is not None and v.size > 0
            assert v.ref_id > 0


def test_every_kind_of_a_real_btf_is_modelled(vmlinux) -> None:
    seen = {t.kind for t in vmlinux}
    assert BtfKind.UNKN not in seen
    for kind in (
        BtfKind.INT,
        BtfKind.PTR,
        BtfKind.ARRAY,
        BtfKind.STRUCT,
        BtfKind.UNION,
        BtfKind.ENUM,
        BtfKind.FWD,
        BtfKind.TYPEDEF,
        BtfKind.FUNC,
        BtfKind.FUNC_PROTO,
    ):
        assert kind in seen, kind


def test_fwd_kind_flag_tells_struct_from_union(vmlinux) -> None:
    fwds = [t for t in vmlinux if t.kind == BtfKind.FWD]
    assert fwds
    assert {t.kind_flag for t in fwds} <= {False, True}


def test_model_is_exported() -> None:
    assert tinybpf.BtfType and tinybpf.BtfField
