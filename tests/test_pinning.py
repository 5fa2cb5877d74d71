"""Pinning maps in bpffs and reopening them with open_pinned_map (standalone maps).

Every test works in its own directory under /sys/fs/bpf and removes it afterwards.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tinybpf
from tinybpf import BpfError, BpfMapType

pytestmark = pytest.mark.root

BPFFS = Path("/sys/fs/bpf")


class Rec(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint32),
        ("delta", ctypes.c_int32),
        ("ts", ctypes.c_uint64),
        ("comm", ctypes.c_char * 16),
    ]


def possible_cpus() -> int:
    with open("/sys/devices/system/cpu/possible") as f:
        spec = f.read().strip()
    return max(int(p.partition("-")[2] or p) for p in spec.split(",")) + 1


def open_fds() -> set[int]:
    """The fds open in this process (without the one used to list them)."""
    fds = set()
    for x in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(x))
        except OSError:
            continue  # the directory fd listdir used, already closed
        fds.add(int(x))
    return fds


@pytest.fixture
def pindir() -> Iterator[Path]:
    if not os.path.ismount(BPFFS):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf (run 'make mounts')")
    d = BPFFS / f"tinybpf-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def obj(obj_path) -> Iterator[tinybpf.BpfObject]:
    o = tinybpf.load(obj_path("maps"))
    try:
        yield o
    finally:
        o.close()


def pin_fd(fd: int, path: Path) -> None:
    """BPF_OBJ_PIN through the raw syscall (to pin something that is not a map)."""
    nr = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
    if nr is None:
        pytest.skip(f"no bpf syscall number known for {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    p = ctypes.create_string_buffer(os.fsencode(str(path)))
    attr = (ctypes.c_uint8 * 128)()
    ctypes.c_uint64.from_buffer(attr, 0).value = ctypes.addressof(p)
    ctypes.c_uint32.from_buffer(attr, 8).value = fd
    rc = libc.syscall(ctypes.c_long(nr), ctypes.c_int(6), attr, ctypes.c_uint(128))  # OBJ_PIN
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


# --------------------------------------------------------------------------- pin / unpin


def test_pin_creates_file(obj, pindir):
    path = pindir / "counts"
    obj.map("counts").pin(str(path))
    assert path.exists()


def test_unpin_removes_file(obj, pindir):
    path = pindir / "counts"
    m = obj.map("counts")
    m.pin(str(path))
    m.unpin(str(path))
    assert not path.exists()
    m[1] = 1  # the map itself is untouched
    assert m[1] == 1


def test_pin_twice_to_same_path_fails(obj, pindir):
    path = pindir / "counts"
    obj.map("counts").pin(str(path))
    with pytest.raises(BpfError) as ei:
        obj.map("arr").pin(str(path))
    assert str(ei.value).startswith("pin map 'arr' to '")
    assert ei.value.errno == errno.EEXIST


def test_pin_outside_bpffs_fails(obj, tmp_path):
    with pytest.raises(BpfError) as ei:
        obj.map("counts").pin(str(tmp_path / "counts"))
    assert str(ei.value).startswith("pin map 'counts' to '")
    assert not (tmp_path / "counts").exists()


# --------------------------------------------------------------------------- open_pinned_map


def test_open_pinned_map_shares_data(obj, pindir):
    path = pindir / "counts"
    m = obj.map("counts")
    m.pin(str(path))
    with tinybpf.open_pinned_map(str(path)) as pm:
        m[1] = 100
        assert pm[1] == 100
        pm[2] = 200
        assert m[2] == 200
        del pm[1]
        assert 1 not in m
        assert sorted(pm.keys()) == [2]


def test_open_pinned_map_metadata(obj, pindir):
    path = pindir / "counts"
    obj.map("counts").pin(str(path))
    with tinybpf.open_pinned_map(str(path)) as pm:
        assert pm.is_standalone
        assert pm.name == "counts"
        assert pm.type == BpfMapType.HASH
        assert (pm.key_size, pm.value_size, pm.max_entries) == (4, 8, 16384)
        assert pm.info == obj.map("counts").info
        assert not pm.is_percpu
        # (16384 entries: too many for repr() to count)
        assert repr(pm) == "<BpfMap 'counts' type=HASH key_size=4 value_size=8>"
        assert pm.fd != obj.map("counts").fd


def test_open_pinned_map_accepts_pathlike(obj, pindir):
    path = pindir / "arr"
    obj.map("arr").pin(str(path))
    obj.map("arr")[2] = 5
    with tinybpf.open_pinned_map(path) as pm:
        assert pm[2] == 5


def test_open_pinned_map_decodes_with_kernel_btf(obj, pindir):
    """A pinned map is decoded from the kernel's BTF of the map: signed ints round-trip."""
    path = pindir / "signed_map"
    obj.map("signed_map").pin(str(path))
    with tinybpf.open_pinned_map(str(path)) as pm:
        pm[-3] = -5
        assert pm[-3] == -5
        assert obj.map("signed_map")[-3] == -5
        assert list(pm.keys()) == [-3]


def test_open_pinned_map_with_types(obj, pindir):
    path = pindir / "struct_map"
    obj.map("struct_map").pin(str(path))
    obj.map("struct_map").typed(value=Rec)[4] = Rec(id=4, delta=-1, comm=b"pinned")
    with tinybpf.open_pinned_map(str(path), key_type=ctypes.c_uint32, value_type=Rec) as pm:
        r = pm[4]
        assert isinstance(r, Rec)
        assert (r.id, r.delta, r.comm) == (4, -1, b"pinned")
        assert list(pm.keys()) == [4]


def test_open_pinned_map_with_int_types(obj, pindir):
    path = pindir / "counts"
    obj.map("counts").pin(str(path))
    obj.map("counts")[9] = 2**64 - 1
    with tinybpf.open_pinned_map(str(path), key_type=int, value_type=int) as pm:
        assert pm[9] == 2**64 - 1
        assert dict(pm.items()) == {9: 2**64 - 1}


def test_open_pinned_percpu_map(obj, pindir):
    ncpu = possible_cpus()
    path = pindir / "pcpu_hash"
    obj.map("pcpu_hash").pin(str(path))
    obj.map("pcpu_hash")[1] = list(range(ncpu))
    with tinybpf.open_pinned_map(str(path)) as pm:
        assert pm.is_percpu
        assert pm.lookup_percpu(1) == list(range(ncpu))
        assert pm[1] == list(range(ncpu))
        assert pm.lookup_percpu_sum(1) == sum(range(ncpu))
        pm[2] = 3
        assert obj.map("pcpu_hash")[2] == [3] * ncpu


def test_open_pinned_map_missing_path(pindir):
    path = pindir / "does-not-exist"
    with pytest.raises(BpfError) as ei:
        tinybpf.open_pinned_map(str(path))
    assert isinstance(ei.value, FileNotFoundError)
    assert ei.value.errno == errno.ENOENT
    assert str(ei.value).startswith("open pinned map '")


def test_open_pinned_map_on_program_fails_without_leak(obj, pindir):
    """A pinned program is not a map: BpfError, and no fd is leaked (W10)."""
    path = pindir / "prog"
    pin_fd(obj.program("count_getpid").fd, path)
    before = open_fds()
    for _ in range(3):
        with pytest.raises(BpfError):
            tinybpf.open_pinned_map(str(path))
    assert open_fds() == before


def test_open_pinned_map_on_regular_file_fails(tmp_path):
    f = tmp_path / "plain"
    f.write_bytes(b"x")
    with pytest.raises(BpfError) as ei:
        tinybpf.open_pinned_map(str(f))
    assert str(ei.value).startswith("open pinned map '")


def test_open_pinned_map_without_btf(obj, pindir):
    """W12: no BTF -> values are bytes, ints are unsigned, negatives are refused."""
    path = pindir / "nobtf"
    obj.map("nobtf").pin(str(path))
    with tinybpf.open_pinned_map(str(path)) as pm:
        assert pm.btf_key is None and pm.btf_value is None
        pm[1] = 2
        assert pm[1] == (2).to_bytes(8, "little")
        with pytest.raises(ValueError):
            pm[1] = -2
        with pytest.raises(ValueError):
            pm[-1] = 2
    with tinybpf.open_pinned_map(str(path), key_type=int, value_type=int) as pm:
        assert dict(pm.items()) == {1: 2}


def test_open_pinned_map_bad_type_raises_without_leak(obj, pindir):
    """A value type that does not match the map's kernel BTF fails at open; no fd leaks."""
    path = pindir / "struct_map"
    obj.map("struct_map").pin(str(path))
    before = open_fds()
    with pytest.raises(tinybpf.BtfValidationError):
        tinybpf.open_pinned_map(str(path), value_type=ctypes.c_uint64)
    with pytest.raises(tinybpf.BtfValidationError):
        tinybpf.open_pinned_map(str(path), key_type=ctypes.c_uint16)
    assert open_fds() == before


# --------------------------------------------------------------------------- standalone maps


def test_standalone_cannot_pin_or_unpin(obj, pindir):
    path = pindir / "counts"
    obj.map("counts").pin(str(path))
    with tinybpf.open_pinned_map(str(path)) as pm:
        with pytest.raises(BpfError, match="Cannot pin a standalone map"):
            pm.pin(str(pindir / "again"))
        with pytest.raises(BpfError, match="Cannot unpin a standalone map"):
            pm.unpin(str(path))
    assert path.exists()
    assert not (pindir / "again").exists()


def test_standalone_close_closes_fd(obj, pindir):
    path = pindir / "counts"
    obj.map("counts").pin(str(path))
    pm = tinybpf.open_pinned_map(str(path))
    fd = pm.fd
    os.fstat(fd)
    pm.close()
    with pytest.raises(OSError) as ei:
        os.fstat(fd)
    assert ei.value.errno == errno.EBADF
    pm.close()  # idempotent
    with pytest.raises(BpfError) as be:
        pm[1]
    assert isinstance(be.value, tinybpf.BpfClosedError)
    assert "Map is closed" in str(be.value)


def test_standalone_with_closes_fd(obj, pindir):
    path = pindir / "counts"
    obj.map("counts").pin(str(path))
    before = open_fds()
    with tinybpf.open_pinned_map(str(path)) as pm:
        fd = pm.fd
        os.fstat(fd)
        assert open_fds() == before | {fd}
    assert open_fds() == before


def test_standalone_gc_closes_fd(obj, pindir):
    import gc

    path = pindir / "counts"
    obj.map("counts").pin(str(path))
    gc.collect()  # leftovers of earlier tests must not close fds during the check below
    pm = tinybpf.open_pinned_map(str(path))
    fd = pm.fd
    target = os.readlink(f"/proc/self/fd/{fd}")
    assert fd in open_fds()
    del pm
    gc.collect()
    # the fd number is closed (or reused by something that is not this map)
    assert fd not in open_fds() or os.readlink(f"/proc/self/fd/{fd}") != target


def test_standalone_typed_dups_fd(obj, pindir):
    path = pindir / "counts"
    obj.map("counts").pin(str(path))
    pm = tinybpf.open_pinned_map(str(path))
    t = pm.typed(key=ctypes.c_uint32, value=ctypes.c_uint64)
    assert t is not pm
    assert t.is_standalone
    assert t.fd != pm.fd
    t[1] = 11
    assert pm[1] == 11
    t.close()  # closes only the view's own fd
    assert pm[1] == 11
    t2 = pm.typed(key=ctypes.c_uint32, value=ctypes.c_uint64)
    pm.close()
    assert t2[1] == 11  # the view outlives the map it came from
    t2.close()


def test_pinned_map_survives_object_close(obj_path, pindir):
    path = pindir / "counts"
    o = tinybpf.load(obj_path("maps"))
    o.map("counts")[7] = 70
    o.map("counts").pin(str(path))
    pm = tinybpf.open_pinned_map(str(path))
    o.close()
    assert path.exists()
    assert pm[7] == 70  # the standalone map keeps working after the object is closed
    pm.close()
    with tinybpf.open_pinned_map(str(path)) as again:
        assert again[7] == 70
        again[8] = 80
    with tinybpf.open_pinned_map(str(path)) as again:
        assert dict(again.items()) == {7: 70, 8: 80}


def test_program_writes_visible_through_pinned_map(obj, pindir):
    import threading

    path = pindir / "counts"
    obj.map("counts").pin(str(path))
    pm = tinybpf.open_pinned_map(str(path))
    link = obj.program("count_getpid").attach()
    try:
        obj.map("cfg")[0] = threading.get_native_id()
        for _ in range(12):
            os.getpid()
        obj.map("cfg")[0] = 0
    finally:
        link.destroy()
    assert pm[os.getpid()] == 12
    pm.close()
