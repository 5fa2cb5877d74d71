"""numpy views (the optional extra tinybpf[numpy]): EventBatch.to_numpy() over the batch's
memory with a dtype from BTF, BpfMap.to_numpy() from batch reads, and the live view of an
mmap-able array that a program writes (tests/bpf/mmap_array.bpf.c)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest
from helpers.mmap_array import mmap_array_obj, run
from helpers.mmap_array import unavailable_reason as _skip_reason

import tinybpf

np = pytest.importorskip("numpy", reason="numpy is not installed (pip install 'tinybpf[numpy]')")


obj = mmap_array_obj  # the loaded tests/bpf/mmap_array.bpf.o (helpers/mmap_array.py)


@pytest.mark.root
def test_event_batch_to_numpy_shares_memory_with_btf_dtype(obj):
    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True, event_type="rec")
    try:
        run(obj, "emit", 1000, 50)
        batch = rb.consume_batch()
        assert len(batch) == 50
        arr = batch.to_numpy()
        assert np.shares_memory(arr, np.frombuffer(batch.buffer, dtype=np.uint8))
        dt = arr.dtype
        assert dt.names == ("a", "b", "tag", "c", "pair", "inner")
        ct = type(batch.decode()[0])
        assert dt.itemsize == ctypes.sizeof(ct)
        for name in dt.names:  # offsets as the compiler laid them out (BTF)
            assert dt.fields[name][1] == getattr(ct, name).offset
        assert dt["a"] == np.uint32 and dt["c"] == np.int64 and dt["tag"] == np.dtype("S3")
        assert dt["pair"].shape == (2,) and dt["pair"].base == np.uint16
        assert dt["inner"].names == ("x", "y")
        assert arr["a"].tolist() == list(range(1000, 1050))
        assert arr["c"].tolist() == [-i for i in range(50)]
        assert arr["pair"][7].tolist() == [7, 14]
        assert arr["inner"]["y"][5] == 50 and arr["tag"][0] == b"ev"
        assert batch.column("a") == arr["a"].tolist()
    finally:
        rb.close()


@pytest.mark.root
def test_event_batch_to_numpy_empty_and_mismatch(obj):
    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True, event_type="rec")
    try:
        empty = rb.consume_batch().to_numpy()
        assert empty.shape == (0,) and empty.dtype.names[0] == "a"
        run(obj, "emit", 0, 3)
        batch = rb.consume_batch()

        class Small(ctypes.Structure):
            _fields_ = [("a", ctypes.c_uint32)]

        with pytest.raises(ValueError, match="not all 4 bytes"):
            batch.to_numpy(Small)
    finally:
        rb.close()


@pytest.mark.root
def test_map_to_numpy_live_view_of_an_mmapable_array(obj):
    u64s = obj.maps["u64s"]
    keys, values = u64s.to_numpy()
    assert keys.tolist() == list(range(1000)) and values.dtype == np.uint64
    run(obj, "fill", 5, 1000)  # written by the program: visible without reading again
    assert values[:3].tolist() == [5, 6, 7] and values[999] == 1004
    values[10] = 77  # and a write through the view reaches the map
    assert u64s[10] == 77 and u64s.lookup(10) == 77
    _, s32 = obj.maps["s32s"].to_numpy()  # 4-byte values 8 bytes apart: a strided view
    assert s32.dtype == np.int32 and s32[:3].tolist() == [-5, -6, -7]
    _, recs = obj.maps["recs"].to_numpy()
    assert recs["c"][:2].tolist() == [-5, -6] and recs["inner"]["y"][0] == 7
    ro = obj.maps[next(n for n in obj.maps if n.endswith(".rodata"))]
    _, rov = ro.to_numpy()
    assert not rov.flags.writeable


@pytest.mark.root
def test_live_view_outlives_close_safely(obj_path):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    o = tinybpf.load(obj_path("mmap_array"))
    _, values = o.maps["u64s"].to_numpy()
    run(o, "fill", 9, 10)
    o.close()
    assert values[:2].tolist() == [9, 10]  # the view keeps the memory mapped


@pytest.mark.root
def test_map_to_numpy_of_a_hash_from_batch_reads():
    m = tinybpf.create_map(
        tinybpf.BpfMapType.HASH, 4, 8, 5000, key_type=ctypes.c_uint32, value_type=ctypes.c_int64
    )
    try:
        for k in range(3000):
            m[k] = -k
        keys, values = m.to_numpy()
        assert keys.dtype == np.uint32 and values.dtype == np.int64
        assert len(keys) == 3000
        assert dict(zip(keys.tolist(), values.tolist(), strict=True)) == {
            k: -k for k in range(3000)
        }
    finally:
        m.close()


def test_missing_numpy_names_the_extra(tmp_path):
    """Without numpy, importing tinybpf works and to_numpy() names the extra."""
    (tmp_path / "numpy.py").write_text("raise ImportError('no numpy here')\n")
    code = (
        "import ctypes, tinybpf\n"
        "b = tinybpf.EventBatch(None, 0, None, None, 0)\n"
        "try:\n"
        "    b.to_numpy(ctypes.c_uint32)\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "pip install 'tinybpf[numpy]'" in out.stdout
