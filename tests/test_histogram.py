"""bcc-style text histograms: exact layout, edge cases, input forms (sequences, mappings,
per-CPU lists, raw bytes, real BPF maps) and the plot data."""

from __future__ import annotations

import ctypes
import io
import os
import sys

import pytest
from conftest import bpf_obj

import tinybpf
import tinybpf.map
from tinybpf.histogram import (
    hist_data,
    linear_hist_text,
    log2_hist_text,
    print_linear_hist,
    print_log2_hist,
)

HEADER = "     value               : count    distribution"


def bar(stars: int, width: int = 40) -> str:
    return "|" + "*" * stars + " " * (width - stars) + "|"


def test_log2_exact_layout() -> None:
    # slot 0 is empty: stripped; max 8 -> 1:5, 3:15, 8:40, 0:0, 2:10 stars
    text = log2_hist_text([0, 1, 3, 8, 0, 2])
    assert text == (
        "     value               : count    distribution\n"
        "         2 -> 3          : 1        |*****                                   |\n"
        "         4 -> 7          : 3        |***************                         |\n"
        "         8 -> 15         : 8        |****************************************|\n"
        "        16 -> 31         : 0        |                                        |\n"
        "        32 -> 63         : 2        |**********                              |\n"
    )


def test_log2_slot_zero_and_val_type() -> None:
    text = log2_hist_text([5, 0, 10, 0, 0], "usecs")
    assert text.splitlines() == [
        "     usecs               : count    distribution",
        "         0 -> 1          : 5        " + bar(20),
        "         2 -> 3          : 0        " + bar(0),
        "         4 -> 7          : 10       " + bar(40),
    ]


def test_log2_keep_leading_zeros() -> None:
    lines = log2_hist_text([0, 0, 4], strip_leading_zeros=False).splitlines()
    assert lines == [
        HEADER,
        "         0 -> 1          : 0        " + bar(0),
        "         2 -> 3          : 0        " + bar(0),
        "         4 -> 7          : 4        " + bar(40),
    ]


@pytest.mark.parametrize("empty", [[], [0, 0, 0], {}, {3: 0}, ()])
def test_empty_input(empty: object) -> None:
    assert log2_hist_text(empty) == ""
    assert linear_hist_text(empty) == ""
    assert hist_data(empty) == []
    out = io.StringIO()
    print_log2_hist(empty, file=out)
    print_linear_hist(empty, file=out)
    assert out.getvalue() == ""


def test_single_bucket() -> None:
    assert (
        log2_hist_text([0, 0, 7])
        == HEADER + "\n         4 -> 7          : 7        " + bar(40) + "\n"
    )
    assert log2_hist_text({10: 1}).splitlines()[1:] == [
        "      1024 -> 2047       : 1        " + bar(40)
    ]


def test_huge_counts_and_narrow_bars() -> None:
    big = 10**15
    lines = log2_hist_text([big, big // 2, 1, big // 40]).splitlines()
    assert lines[1] == "         0 -> 1          : 1000000000000000 " + bar(40)
    assert lines[2] == "         2 -> 3          : 500000000000000 " + bar(20)
    assert lines[3] == "         4 -> 7          : 1        " + bar(0)
    assert lines[4] == "         8 -> 15         : 25000000000000 " + bar(1)
    assert log2_hist_text([1, 3], width=4).splitlines()[1:] == [
        "         0 -> 1          : 1        |*   |",
        "         2 -> 3          : 3        |****|",
    ]
    with pytest.raises(ValueError):
        log2_hist_text([1], width=0)


def test_log2_wide_layout_past_slot_32() -> None:
    lines = log2_hist_text({33: 2, 35: 1}, "nsecs").splitlines()
    assert lines == [
        "               nsecs                         : count    distribution",
        "          8589934592 -> 17179869183          : 2        " + bar(20, 20),
        "         17179869184 -> 34359738367          : 0        " + bar(0, 20),
        "         34359738368 -> 68719476735          : 1        " + bar(10, 20),
    ]
    # up to slot 32 the narrow layout still holds the bounds
    assert log2_hist_text({32: 1}).splitlines()[1] == (
        "4294967296 -> 8589934591 : 1        " + bar(40)
    )


def test_linear_hist() -> None:
    text = linear_hist_text({0: 0, 1: 4, 2: 0, 3: 2}, "msecs", step=10, base=100)
    assert text == (
        "     msecs         : count     distribution\n"
        "        110        : 4        |****************************************|\n"
        "        120        : 0        |                                        |\n"
        "        130        : 2        |********************                    |\n"
    )
    assert linear_hist_text([3], strip_leading_zeros=False).splitlines() == [
        "     value         : count     distribution",
        "        0          : 3        " + bar(40),
    ]
    with pytest.raises(ValueError):
        linear_hist_text([1], step=0)


def test_print_functions(capsys: pytest.CaptureFixture[str]) -> None:
    print_log2_hist([1, 2], "bytes")
    print_linear_hist([1, 2], "slots", 2, 5)
    assert capsys.readouterr().out == log2_hist_text([1, 2], "bytes") + linear_hist_text(
        [1, 2], "slots", 2, 5
    )
    out = io.StringIO()
    print_log2_hist({1: 1}, "x", file=out, width=10)
    assert out.getvalue() == log2_hist_text({1: 1}, "x", width=10)


def test_hist_data_ranges() -> None:
    assert hist_data([0, 1, 3, 0, 2]) == [(2, 3, 1), (4, 7, 3), (8, 15, 0), (16, 31, 2)]
    assert hist_data([4, 0, 1]) == [(0, 1, 4), (2, 3, 0), (4, 7, 1)]
    assert hist_data([0, 0, 1], strip_leading_zeros=False) == [(0, 1, 0), (2, 3, 0), (4, 7, 1)]
    assert hist_data({63: 1}) == [(1 << 63, (1 << 64) - 1, 1)]
    assert hist_data({2: 5, 4: 1}, "linear", step=10, base=100) == [
        (120, 129, 5),
        (130, 139, 0),
        (140, 149, 1),
    ]
    with pytest.raises(ValueError):
        hist_data([1], "log10")  # type: ignore[arg-type]


def test_per_cpu_lists_are_summed() -> None:
    percpu = {0: [1, 2, 3], 1: [0, 0, 0], 2: [4, 0, 8]}
    assert hist_data(percpu) == [(0, 1, 6), (2, 3, 0), (4, 7, 12)]
    assert log2_hist_text(percpu) == log2_hist_text([6, 0, 12])
    assert linear_hist_text([[1, 1], (2, 2)]) == linear_hist_text([2, 4])


class MapLike:
    """Anything with items(), as BpfMap (whose keys may be unhashable ctypes values)."""

    def __init__(self, pairs: list[tuple[object, object]]) -> None:
        self._pairs = pairs

    def items(self) -> object:
        return iter(self._pairs)


def test_ctypes_and_bytes_slots_and_counts() -> None:
    raw = (7).to_bytes(8, sys.byteorder)
    pairs = MapLike([((1).to_bytes(4, sys.byteorder), 2), (ctypes.c_uint32(3), raw)])
    assert hist_data(pairs) == [(2, 3, 2), (4, 7, 0), (8, 15, 7)]
    assert hist_data(MapLike([(ctypes.c_uint32(3), ctypes.c_uint64(7))])) == [(8, 15, 7)]
    assert hist_data({3: raw}) == [(8, 15, 7)]
    assert hist_data({3: [raw, raw]}) == [(8, 15, 14)]


def test_map_like_object() -> None:
    assert hist_data(MapLike([(1, [1, 1]), (3, [0, 5])])) == [(2, 3, 2), (4, 7, 0), (8, 15, 5)]


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        log2_hist_text([1, -1])
    with pytest.raises(ValueError):
        log2_hist_text({-1: 3})
    with pytest.raises(TypeError):
        log2_hist_text([1.5])
    with pytest.raises(TypeError):
        log2_hist_text("123")
    with pytest.raises(TypeError):
        log2_hist_text(42)


create_map = getattr(tinybpf.map, "create_map", None)


@pytest.mark.root
@pytest.mark.skipif(create_map is None, reason="tinybpf.map.create_map is not available")
def test_real_array_maps() -> None:
    assert create_map is not None
    ncpu = tinybpf.possible_cpus()
    with create_map(tinybpf.BpfMapType.ARRAY, 4, 8, 8, name="hist") as hist:
        hist[2] = (3).to_bytes(8, sys.byteorder)
        hist[4] = (6).to_bytes(8, sys.byteorder)
        assert hist_data(hist) == [(4, 7, 3), (8, 15, 0), (16, 31, 6)]
        assert log2_hist_text(hist) == log2_hist_text([0, 0, 3, 0, 6])
    with create_map(tinybpf.BpfMapType.PERCPU_ARRAY, 4, 8, 4, name="hist_pc") as pc:
        pc[1] = [(cpu + 1).to_bytes(8, sys.byteorder) for cpu in range(ncpu)]
        assert hist_data(pc) == [(2, 3, ncpu * (ncpu + 1) // 2)]


def test_ctypes_arrays_and_typed_memoryviews_are_sequences() -> None:
    slots = (ctypes.c_uint32 * 26)()
    slots[1], slots[3] = 2, 7
    assert hist_data(slots) == [(2, 3, 2), (4, 7, 0), (8, 15, 7)]
    assert log2_hist_text(slots) == log2_hist_text([0, 2, 0, 7])
    assert linear_hist_text(slots) == linear_hist_text([0, 2, 0, 7])
    assert hist_data(memoryview(slots).cast("B").cast("I")) == hist_data(slots)
    assert hist_data({1: (ctypes.c_uint64 * 2)(1, 2)}) == [(2, 3, 3)]  # per-CPU as ctypes
    with pytest.raises(TypeError, match="raw bytes"):
        hist_data(bytes(slots))


def test_a_struct_with_one_array_member_is_its_array() -> None:
    class Hist(ctypes.Structure):
        _fields_ = [("slots", ctypes.c_uint32 * 4)]

    class Two(ctypes.Structure):
        _fields_ = [("slots", ctypes.c_uint32 * 4), ("total", ctypes.c_uint64)]

    assert hist_data(Hist((ctypes.c_uint32 * 4)(0, 1))) == [(2, 3, 1)]
    with pytest.raises(TypeError, match=r"value\.slots"):
        hist_data(Two())


@pytest.mark.root
def test_struct_hist_read_from_a_real_map(capsys: pytest.CaptureFixture[str]) -> None:
    """libbpf-tools' struct hist { __u32 slots[26]; }, as a map value tinybpf generates from
    BTF, filled by a BPF program."""
    obj = tinybpf.open(bpf_obj("hist_slots"))
    obj.globals["target_pid"] = os.getpid()
    obj.load()
    with obj, obj.program("count_getpid").attach():
        for slot, calls in ((2, 3), (5, 1)):
            obj.globals["slot"] = slot
            for _ in range(calls):
                os.getpid()
        value = obj.maps["hists"][0]
        assert isinstance(value, tinybpf.BtfStruct)
        expected = [(4, 7, 3), (8, 15, 0), (16, 31, 0), (32, 63, 1)]
        assert hist_data(value) == expected
        assert hist_data(value.slots) == expected
        print_log2_hist(value.slots, "usecs")
        assert capsys.readouterr().out == log2_hist_text([0, 0, 3, 0, 0, 1], "usecs")
