"""Element access to mmap-able array maps through their memory (tests/bpf/mmap_array.bpf.c):
values, slices and iteration as a BPF program wrote them, writes a program reads, a
program's concurrent updates, read-only frozen maps, bounds, types and closing."""

from __future__ import annotations

import itertools
import struct
import threading

import pytest
from helpers.kernel import mmapable_array_unavailable_reason
from helpers.mmap_array import mmap_array_obj, run
from helpers.mmap_array import unavailable_reason as _skip_reason

import tinybpf

pytestmark = pytest.mark.root

BPF_F_MMAPABLE = tinybpf.BPF_F_MMAPABLE
N = 1000


obj = mmap_array_obj  # the loaded tests/bpf/mmap_array.bpf.o (helpers/mmap_array.py)


def _section(o, suffix: str):
    return o.maps[next(name for name in o.maps if name.endswith(suffix))]


def test_values_a_program_wrote(obj):
    run(obj, "fill", 100, N)
    u64s, s32s, recs = obj.maps["u64s"], obj.maps["s32s"], obj.maps["recs"]
    assert [u64s[i] for i in range(N)] == [100 + i for i in range(N)]
    # 4-byte values sit 8 bytes apart in the mapping
    assert [s32s[i] for i in range(N)] == [-(100 + i) for i in range(N)]
    r = recs[5]
    assert (r.a, r.b, bytes(r.tag), r.c, list(r.pair)) == (105, 5, b"ab", -105, [5, 6])
    assert (r.inner.x, r.inner.y) == (5, 7)
    # the same values as the syscall path reads
    assert recs.lookup(5).c == -105 and bytes(recs[63]) == bytes(recs.lookup(63))


def test_slices_and_iteration(obj):
    run(obj, "fill", 7, N)
    u64s, s32s = obj.maps["u64s"], obj.maps["s32s"]
    assert u64s[2:6] == [9, 10, 11, 12]
    assert u64s[990:] == [997 + i for i in range(10)]
    assert u64s[10:0:-3] == [17, 14, 11, 8]
    assert u64s[5:5] == [] and u64s[-2:] == [1005, 1006]
    assert s32s[0:4:2] == [-7, -9]
    assert obj.maps["recs"][0:2][1].a == 8
    assert list(u64s.items())[:3] == [(0, 7), (1, 8), (2, 9)]
    assert list(u64s.values()) == [7 + i for i in range(N)]
    assert list(u64s) == list(range(N))
    u64s[0:3] = [1, 2, 3]
    assert u64s[0:4] == [1, 2, 3, 10]
    s32s[1:3] = [-1, 2**31 - 1]
    assert s32s[0:3] == [-7, -1, 2**31 - 1]


def test_writes_reach_the_program(obj):
    u64s = obj.maps["u64s"]
    u64s[500] = 2**64 - 1
    run(obj, "fill", 0, 500)  # writes 0..499, reads u64s[500] into .bss seen
    assert obj.globals["seen"] == 2**64 - 1
    assert obj.globals["counter"] == 1
    recs = obj.maps["recs"]
    r = recs[3]
    r.c = -(2**63)
    recs[3] = r
    assert recs.lookup(3).c == -(2**63)
    recs[4] = {"a": 1, "b": 2, "c": -3}
    assert (recs[4].a, recs[4].b, recs[4].c) == (1, 2, -3)


def test_concurrent_updates_by_a_program(obj):
    """A program adds 1 to u64s[7] (atomically) 200k times in another thread while this
    one reads the element through the mapping: every read sees a value between the
    start and the end, never decreasing, and the last read sees every update."""
    u64s = obj.maps["u64s"]
    u64s[7] = 1000
    done = threading.Event()

    def writer() -> None:
        try:
            for _ in range(4):
                run(obj, "bump", 50_000, 7)
        finally:
            done.set()

    t = threading.Thread(target=writer)
    t.start()
    seen = []
    while not done.is_set():
        seen.append(u64s[7])
    t.join()
    seen.append(u64s[7])
    assert seen[-1] == 201_000
    assert all(1000 <= a <= b <= 201_000 for a, b in itertools.pairwise(seen))
    assert u64s.lookup(7) == 201_000


def test_frozen_rodata_reads_and_refuses_writes(obj):
    ro = _section(obj, ".rodata")
    assert ro[0] == struct.pack("=I", 7)
    with pytest.raises(tinybpf.BpfPermissionError, match="read-only"):
        ro[0] = b"\0\0\0\0"
    assert ro[0] == struct.pack("=I", 7)
    bss = _section(obj, ".bss")
    run(obj, "fill", 0, 1)
    run(obj, "fill", 0, 1)
    raw = bss[0]
    assert obj.globals["counter"] == 2 and raw != bytes(len(raw))  # as the program left it
    bss[0] = bytes(len(raw))
    assert obj.globals["counter"] == 0


def test_bounds_and_types(obj):
    u64s, s32s = obj.maps["u64s"], obj.maps["s32s"]
    with pytest.raises(KeyError):
        u64s[N]
    with pytest.raises(ValueError, match="negative"):
        u64s[-1]
    with pytest.raises(ValueError, match="negative"):
        u64s[1] = -1
    with pytest.raises(ValueError, match="does not fit"):
        s32s[1] = 2**31
    with pytest.raises(TypeError):
        u64s[1] = "x"
    with pytest.raises(TypeError):
        u64s[1] = 1.5
    with pytest.raises(TypeError, match="no slices"):
        obj.maps["plain"][0:2]
    with pytest.raises(ValueError, match="takes exactly 3 values, got 2"):
        u64s[0:3] = [1, 2]
    with pytest.raises(tinybpf.BpfError):
        u64s[N] = 1
    assert u64s[1] == 0  # nothing was written by the refused stores


def test_closed_map_raises(obj_path):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    o = tinybpf.load(obj_path("mmap_array"))
    u64s = o.maps["u64s"]
    u64s[1] = 5
    assert u64s[1] == 5
    o.close()
    with pytest.raises(tinybpf.BpfClosedError):
        u64s[1]
    with pytest.raises(tinybpf.BpfClosedError):
        u64s[1] = 2
    with pytest.raises(tinybpf.BpfClosedError):
        u64s[0:2]


def test_standalone_map_freeze_and_close():
    reason = mmapable_array_unavailable_reason()
    if reason:
        pytest.skip(reason)
    m = tinybpf.create_map(tinybpf.BpfMapType.ARRAY, 4, 4, 10, flags=BPF_F_MMAPABLE, value_type=int)
    try:
        m[3] = 77
        assert m[3] == 77 and m.lookup(3) == 77 and m[0:4] == [0, 0, 0, 77]
        m.freeze()  # the writable mapping is dropped first (the kernel requires it)
        assert m[3] == 77
        with pytest.raises(tinybpf.BpfPermissionError, match="frozen"):
            m[3] = 1
        assert m[3] == 77
    finally:
        m.close()
    with pytest.raises(tinybpf.BpfClosedError):
        m[3]


def test_batches_keep_their_records_while_buffers_are_reused(obj):
    """Batch buffers go back to the ring buffer once a batch is gone (_batchpool.py): a
    batch still referenced keeps its records, later batches fill other buffers, and a
    column view of a dropped batch's buffer stays valid."""
    rb = tinybpf.BpfRingBuffer(obj.maps["evs"], batch=True, event_type="rec")
    try:
        kept = []
        view = None
        for round_ in range(6):
            run(obj, "emit", 1000 * round_, 100)
            batch = rb.consume_batch()
            assert batch.column("a") == [1000 * round_ + i for i in range(100)]
            if round_ % 2 == 0:
                kept.append((round_, batch))
            if round_ == 1:
                view = batch.column_view("a")
            del batch
        for round_, batch in kept:
            assert batch.column("a") == [1000 * round_ + i for i in range(100)]
        assert view is not None and view.tolist() == [1000 + i for i in range(100)]
        with pytest.raises(TypeError, match="not a numeric scalar"):
            kept[0][1].column_view("tag")
    finally:
        rb.close()


_COUNT_BPF_CALLS = """
import sys, tinybpf
o = tinybpf.load(sys.argv[1])
m = o.maps[sys.argv[2]]
m[1] = 5
total = 0
for i in range(5000):
    m[i % 1000] = i
    total += m[i % 1000]
print(total)
"""


def test_no_syscall_per_element(obj_path, tmp_path):
    """Under strace: 5000 reads and writes of an mmap-able array make no bpf(2) call each,
    the same loop on an ordinary array makes one per element."""
    import shutil
    import subprocess
    import sys

    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (apt-get install strace)")

    def bpf_calls(map_name: str) -> int:
        out = tmp_path / f"{map_name}.strace"
        subprocess.run(
            [
                strace,
                "-f",
                "-e",
                "trace=bpf",
                "-o",
                str(out),
                sys.executable,
                "-c",
                _COUNT_BPF_CALLS,
                str(obj_path("mmap_array")),
                map_name,
            ],
            check=True,
            capture_output=True,
        )
        return sum(1 for line in out.read_text().splitlines() if "bpf(" in line)

    mapped, plain = bpf_calls("u64s"), bpf_calls("plain")
    assert plain >= 10_000
    assert mapped < plain - 9_900  # only the load and setup calls
