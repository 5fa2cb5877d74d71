"""Probe: where open + load + close spends its time above libbpf. Interleaved rounds,
medians of 15 x 500 cycles: libbpf through the extension, tinybpf's one C call
(tinybpf_open_object: open, BTF check, names, load) without any Python object, and the
public API. Run from the repo root after bench/run.py built bench/build:

    .venv/bin/python bench/probes/openload_split.py
"""

import statistics
import time
from collections.abc import Callable

import tinybpf
from tinybpf._core import ffi, lib

P = "bench/build/small.bpf.o"
PB = P.encode()
N = 500
RESULT = ffi.typeof("struct tinybpf_open_result *")


def raw() -> None:
    o = lib.bpf_object__open_file(PB, ffi.NULL)
    lib.bpf_object__load(o)
    lib.bpf_object__close(o)


def shim() -> None:
    res = ffi.new(RESULT)
    lib.bpf_object__close(lib.tinybpf_open_object(PB, ffi.NULL, 0, ffi.NULL, True, res))


def public() -> None:
    tinybpf.load(P).close()


def per_cycle_us(f: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    for _ in range(N):
        f()
    return (time.perf_counter() - t0) / N * 1e6


variants = {"libbpf via the extension": raw, "tinybpf_open_object": shim, "tinybpf.load": public}
times: dict[str, list[float]] = {k: [] for k in variants}
for _ in range(15):
    for name, f in variants.items():
        for _ in range(5):
            f()
        times[name].append(per_cycle_us(f))
base = statistics.median(times["libbpf via the extension"])
for name, ts in times.items():
    m = statistics.median(ts)
    print(f"{name:26s} {m:7.1f} us  (+{m - base:.1f})")
