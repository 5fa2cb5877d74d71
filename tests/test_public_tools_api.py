"""The public functions the tools are built on (issue 15: tools use only the public API):
what is pinned where (bpffs_mounts, pinned_info, open_pinned), libbpf's linker
(link_objects), a loaded program's full name (KernelProgramInfo.full_name), record layouts
(Btf.layout) and the public flag constants. Real kernel objects throughout."""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tinybpf
from tinybpf import BpfError, BpfFileNotFoundError, BtfKind

LONG = "count_getpid_calls_with_a_long_name"  # tests/bpf/ergo_longname.bpf.c
BPFFS = Path("/sys/fs/bpf")


@pytest.fixture
def pindir() -> Iterator[Path]:
    if not os.path.ismount(BPFFS):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf (run 'make mounts')")
    d = BPFFS / f"tinybpf-pubapi-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --- bpffs mounts and pinned objects --------------------------------------------------------


def test_bpffs_mounts_are_the_bpf_filesystems_of_mountinfo():
    with open("/proc/self/mountinfo") as f:
        expected = [
            line.split(" ")[4] for line in f if line.partition(" - ")[2].split(" ")[0] == "bpf"
        ]
    assert tinybpf.bpffs_mounts() == expected
    if os.path.ismount(BPFFS):
        assert str(BPFFS) in tinybpf.bpffs_mounts()


@pytest.mark.root
def test_pinned_info_and_open_pinned_tell_each_kind(obj_path, pindir):
    with tinybpf.load(obj_path("ergo_longname")) as obj:
        prog = obj.program(LONG)
        m = obj.maps["ps_calls"]
        link = prog.attach()
        try:
            prog.pin(str(pindir / "prog"))
            m.pin(str(pindir / "map"))
            link.pin(str(pindir / "link"))
            prog_id = prog.kernel_info().id
            m[0] = 1234

            pi = tinybpf.pinned_info(pindir / "prog")
            assert isinstance(pi, tinybpf.KernelProgramInfo)
            assert pi.id == prog_id and pi.full_name() == LONG
            mi = tinybpf.pinned_info(str(pindir / "map"))
            assert isinstance(mi, tinybpf.KernelMapInfo)
            assert (mi.id, mi.name) == (m.id, "ps_calls")
            li = tinybpf.pinned_info(pindir / "link")
            assert isinstance(li, tinybpf.LinkInfo)
            assert li.prog_id == prog_id and li.id == link.info.id

            with tinybpf.open_pinned(pindir / "map") as pm:
                assert isinstance(pm, tinybpf.BpfMap)
                assert pm.id == m.id and pm[0] == 1234
            with tinybpf.open_pinned(pindir / "prog") as pp:
                assert isinstance(pp, tinybpf.KernelProgram)
                assert pp.kernel_info().id == prog_id
            pl = tinybpf.open_pinned(pindir / "link")
            assert isinstance(pl, tinybpf.BpfLink)
            assert pl.info.prog_id == prog_id
            pl.close()  # only this handle: the pin keeps the program attached
            assert tinybpf.pinned_info(pindir / "link").prog_id == prog_id
        finally:
            link.destroy()


@pytest.mark.root
def test_pinned_info_and_open_pinned_refuse_what_is_not_pinned(pindir, tmp_path):
    with pytest.raises(BpfFileNotFoundError):
        tinybpf.pinned_info(pindir / "nothing")
    with pytest.raises(BpfFileNotFoundError):
        tinybpf.open_pinned(pindir / "nothing")
    (pindir / "sub").mkdir()
    with pytest.raises(BpfError):
        tinybpf.pinned_info(pindir / "sub")  # a directory of the bpffs
    plain = tmp_path / "plain"
    plain.write_text("x")
    with pytest.raises(BpfError):
        tinybpf.open_pinned(plain)  # not in a BPF filesystem


# --- libbpf's linker ------------------------------------------------------------------------


@pytest.mark.root
def test_link_objects_links_two_objects_that_load_and_run(obj_path, tmp_path):
    out = tmp_path / "linked.bpf.o"
    tinybpf.link_objects([obj_path("minimal"), obj_path("ergo_longname")], out)
    with tinybpf.load(out) as obj:
        assert {"handle_getpid", LONG} <= set(obj.programs)
        assert {"counter", "config_map", "ps_calls"} <= set(obj.maps)
        obj.maps["config_map"][0] = os.getpid()
        links = [obj.program(name).attach() for name in ("handle_getpid", LONG)]
        try:
            for _ in range(3):
                os.getpid()
        finally:
            for link in links:
                link.destroy()
        assert obj.maps["counter"][0] >= 3  # minimal's program, counting this process
        assert obj.maps["ps_calls"][0] >= 3  # ergo_longname's, counting every getpid


def test_link_objects_of_one_file_drops_debug_sections(obj_path, tmp_path):
    src = obj_path("minimal")
    out = tmp_path / "one.bpf.o"
    tinybpf.link_objects([src], out)
    assert 0 < out.stat().st_size < src.stat().st_size  # the DWARF of -g is gone
    with tinybpf.open(out) as obj:
        assert set(obj.programs) == {"handle_getpid"}


def test_link_objects_errors(obj_path, tmp_path):
    out = tmp_path / "x.bpf.o"
    with pytest.raises(BpfError) as e:  # both define the map config_map
        tinybpf.link_objects([obj_path("minimal"), obj_path("xdp_count")], out)
    assert "config_map" in e.value.libbpf_log
    with pytest.raises(BpfFileNotFoundError, match=r"missing\.bpf\.o"):
        tinybpf.link_objects([obj_path("minimal"), tmp_path / "missing.bpf.o"], out)
    with pytest.raises(ValueError, match="at least one"):
        tinybpf.link_objects([], out)
    with pytest.raises(TypeError, match="list"):
        tinybpf.link_objects(str(obj_path("minimal")), out)  # type: ignore[arg-type]
    notbpf = tmp_path / "not.o"
    notbpf.write_bytes(b"not an ELF file")
    with pytest.raises(BpfError):
        tinybpf.link_objects([notbpf], out)


# --- full names -----------------------------------------------------------------------------


@pytest.mark.root
def test_full_name_of_a_program_with_a_long_name(obj_path):
    with tinybpf.load(obj_path("ergo_longname")) as obj:
        info = obj.program(LONG).kernel_info()
        assert info.name == LONG[:15]  # what the kernel keeps
        assert info.func_type_id > 0 and info.btf_id > 0
        assert info.full_name() == LONG
        listed = next(p for p in tinybpf.loaded_programs() if p.id == info.id)
        assert listed.full_name() == LONG
        with tinybpf.open_program_by_id(info.id) as kp:
            assert kp.kernel_info().full_name() == LONG


@pytest.mark.root
def test_full_name_of_a_short_name_is_the_name(obj_path):
    with tinybpf.load(obj_path("minimal")) as obj:
        info = obj.program("handle_getpid").kernel_info()
        assert info.full_name() == info.name == "handle_getpid"


@pytest.mark.root
def test_kernel_info_lists_every_map_of_a_program_that_uses_many(obj_path):
    """The map ids come with the first info call up to a guess; more take a second."""
    with tinybpf.load(obj_path("minimal")) as obj:
        info = obj.program("handle_getpid").kernel_info()
        ids = {obj.maps[n].id for n in ("config_map", "counter")}
        assert ids <= set(info.map_ids)
    # a program of tests/bpf using the most maps: every id is one of a loaded map
    with tinybpf.load(obj_path("maps")) as obj:
        own = {m.id for m in obj.maps.values()}
        for p in obj.programs.values():
            assert set(p.kernel_info().map_ids) <= own


# --- record layouts -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plain", "flags", "with_array", "number", "small", "nested"])
def test_layout_matches_the_ctypes_type(obj_path, name):
    with tinybpf.Btf.from_file(obj_path("btf_types")) as btf:
        layout = btf.layout(name)
        ct = btf.ctype(name)
        bt = btf.find_struct(name)
        assert layout.size == bt.size == ctypes.sizeof(ct)
        assert layout.is_union == (bt.kind == BtfKind.UNION)
        assert btf.layout(bt) == layout == btf.layout(bt.type_id)
        fields = [s for s in layout.slots if s.kind == "field"]
        assert [s.field.name for s in fields if s.field] == [
            f.name for f in bt.fields or () if not f.bitfield_size
        ]
        for s in fields:
            assert s.field is not None
            assert getattr(ct, s.field.name).offset == s.offset == s.field.offset
            assert getattr(ct, s.field.name).size == s.size
        bits = [b for s in layout.slots if s.kind == "bits" for b in s.bitfields]
        if name == "flags":
            assert [(b.name, b.shift, b.bits) for b in bits] == [
                ("kind", 0, 4),
                ("level", 4, 3),
                ("on", 7, 1),
                ("rest", 8, 24),
            ]
            value = ct()
            value.level = 5
            assert int.from_bytes(bytes(value)[:4], "little") == 5 << 4
        # every byte of a struct is in exactly one slot
        if not layout.is_union:
            covered = sorted((s.offset, s.offset + s.size) for s in layout.slots)
            assert covered[0][0] == 0 and covered[-1][1] == layout.size
            assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))


def test_layout_of_a_data_section_and_refusals(obj_path):
    with tinybpf.open(obj_path("minimal")) as obj:
        btf = obj.btf
        assert btf is not None
        bss = btf.layout(".bss")
        assert [s.field.name for s in bss.slots if s.kind == "field" and s.field] == ["bss_hits"]
        with pytest.raises(ValueError, match="only structs, unions and data sections"):
            btf.layout(btf.find("handle_getpid", "func"))
        with pytest.raises(KeyError):
            btf.layout("no_such_struct")
        with pytest.raises(TypeError):
            btf.layout(1.5)  # type: ignore[arg-type]


# --- public constants -----------------------------------------------------------------------


@pytest.mark.root
def test_bpf_f_mmapable_creates_a_mappable_array():
    m = tinybpf.create_map(
        tinybpf.BpfMapType.ARRAY, 4, 4, 4, flags=tinybpf.BPF_F_MMAPABLE, value_type=int
    )
    try:
        assert m.map_flags & tinybpf.BPF_F_MMAPABLE
        info = next(i for i in tinybpf.loaded_maps() if i.id == m.id)
        assert info.flags == tinybpf.BPF_F_MMAPABLE
    finally:
        m.close()


@pytest.mark.root
def test_bpf_f_no_prealloc_creates_an_lpm_trie():
    trie = tinybpf.create_map(
        tinybpf.BpfMapType.LPM_TRIE, 8, 4, 16, flags=tinybpf.BPF_F_NO_PREALLOC
    )
    try:
        assert trie.map_flags == tinybpf.BPF_F_NO_PREALLOC
    finally:
        trie.close()


def test_btf_int_encodings_describe_char_bool_and_signed(obj_path):
    with tinybpf.Btf.from_file(obj_path("btf_types")) as btf:
        enc = {
            t.name: t.encoding for t in btf if t.kind == BtfKind.INT and t.name in ("char", "int")
        }
    assert enc["char"] & tinybpf.BTF_INT_CHAR or enc["char"] & tinybpf.BTF_INT_SIGNED
    assert enc["int"] & tinybpf.BTF_INT_SIGNED and not enc["int"] & tinybpf.BTF_INT_CHAR
    assert tinybpf.BTF_INT_BOOL not in (tinybpf.BTF_INT_SIGNED, tinybpf.BTF_INT_CHAR)
