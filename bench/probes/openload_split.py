"""Probe: open+load+close through raw extension calls vs tinybpf, and open+close alone
(best of 5 x 500). Run from the repo root after bench/run.py built bench/build:

    .venv/bin/python bench/probes/openload_split.py
"""

import gc
import time
from collections.abc import Callable
from pathlib import Path

import tinybpf
from tinybpf._ffi import capture_log, ffi, lib

P = "bench/build/small.bpf.o"
PB = P.encode()
N = 500


def best_us(f: Callable[[], object]) -> float:
    for _ in range(20):
        f()
    best = 1e9
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(N):
            f()
        best = min(best, (time.perf_counter() - t0) / N * 1e6)
    return best


def raw() -> None:
    o = lib.bpf_object__open_file(PB, ffi.NULL)
    lib.bpf_object__load(o)
    lib.bpf_object__close(o)


def raw_open_close() -> None:
    lib.bpf_object__close(lib.bpf_object__open_file(PB, ffi.NULL))


def cl() -> None:
    with capture_log():
        pass


print(f"raw open+load+close           {best_us(raw):.1f} us")
print(f"tinybpf load+close            {best_us(lambda: tinybpf.load(P).close()):.1f} us")
print(f"raw open+close                {best_us(raw_open_close):.1f} us")
print(f"tinybpf open+close            {best_us(lambda: tinybpf.open(P).close()):.1f} us")
gc.disable()
print(f"tinybpf load+close, no gc     {best_us(lambda: tinybpf.load(P).close()):.1f} us")
gc.enable()
print(f"Path(p).exists()              {best_us(lambda: Path(P).exists()):.1f} us")
print(f"capture_log()                 {best_us(cl):.1f} us")
