"""Probe: cost per event of per-event delivery loops over a ctypes array of 4096 events
(the library's ring and perf loop bodies vs leaner variants). No BPF needed:
    .venv/bin/python bench/probes/dispatch_loops.py
"""

# ruff: noqa: B007, SIM102 (the loop bodies mirror the library's on purpose)

import sys
import time

sys.path.insert(0, "bench")
from tinybpf_bench import Event

n = 4096
buf = bytearray(32 * n)
st = [0, 0]


def cb(e):
    st[0] += e.seq
    st[1] += 1


def cb2(cpu, e):
    st[0] += e.seq
    st[1] += 1


class S:
    _halt = False


self = S()


def _is_negative_int(r):
    return type(r) is int and r < 0


def ring_current(arr):
    k = 0
    for ev in arr:
        k += 1
        ret = cb(ev)
        if (type(ret) is int and ret < 0) or self._halt:
            self._halt = True
            break
    return k


def ring_lean(arr):
    for k, ev in enumerate(arr, 1):
        ret = cb(ev)
        if ret is not None or self._halt:
            if self._halt or (type(ret) is int and ret < 0):
                self._halt = True
                break
    return k


cpus = memoryview(bytearray(4 * n)).cast("I")
LOST = 1 << 31


def perf_current(arr):
    k = 0
    samples = 0
    for cpu, ev in zip(cpus.tolist(), arr, strict=True):
        k += 1
        if cpu & LOST:
            pass
        else:
            samples += 1
            if _is_negative_int(cb2(cpu, ev)):
                self._halt = True
        if self._halt:
            break
    return k


def perf_lean(arr):
    # lost records reported apart by the C side: no per-event flag test
    for k, (cpu, ev) in enumerate(zip(cpus.tolist(), arr, strict=True), 1):
        ret = cb2(cpu, ev)
        if ret is not None or self._halt:
            if self._halt or (type(ret) is int and ret < 0):
                self._halt = True
                break
    return k


for f in (ring_current, ring_lean, perf_current, perf_lean):
    best = 1e9
    for _ in range(30):
        arr = (Event * n).from_buffer(buf)
        t0 = time.perf_counter()
        f(arr)
        best = min(best, time.perf_counter() - t0)
    print(f"{f.__name__:14s} {best / n * 1e9:.0f} ns/event  {n / best / 1e6:.2f} M/s (loop only)")
