"""Probe: cost per event of per-event delivery loops over a ctypes array of 4096 events
(the library's ring and perf loop bodies vs leaner variants). No BPF needed:
    .venv/bin/python bench/probes/dispatch_loops.py
"""

# ruff: noqa: B007 (the loop bodies mirror the library's on purpose)

import operator
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


def ring_before(arr):
    # the loop before 2026-11-26: a counter and an int test per event
    k = 0
    for ev in arr:
        k += 1
        ret = cb(ev)
        if (type(ret) is int and ret < 0) or self._halt:
            self._halt = True
            break
    return k


def _stops(buf, ret):
    if buf._halt or (type(ret) is int and ret < 0):
        buf._halt = True
        return True
    return False


def ring_current(arr):
    # tinybpf.buffers: the index reached comes from the iterator's remaining length
    events = iter(arr)
    for ev in events:
        ret = cb(ev)
        if (ret is not None or self._halt) and _stops(self, ret):
            break
    return n - operator.length_hint(events)


cpus = memoryview(bytearray(4 * n)).cast("I")


def perf_before(arr):
    k = 0
    for cpu, ev in zip(cpus.tolist(), arr, strict=True):
        k += 1
        ret = cb2(cpu, ev)
        if (type(ret) is int and ret < 0) or self._halt:
            self._halt = True
            break
    return k


def perf_current(arr):
    cpu_iter = iter(cpus.tolist())
    for cpu, ev in zip(cpu_iter, arr, strict=True):
        ret = cb2(cpu, ev)
        if (ret is not None or self._halt) and _stops(self, ret):
            break
    return n - operator.length_hint(cpu_iter)


def views_only(arr):
    # the floor of a typed per-event loop: ctypes creates one view object per event
    for ev in arr:
        pass
    return n


for f in (ring_before, ring_current, perf_before, perf_current, views_only):
    best = 1e9
    for _ in range(30):
        arr = (Event * n).from_buffer(buf)
        t0 = time.perf_counter()
        f(arr)
        best = min(best, time.perf_counter() - t0)
    print(f"{f.__name__:14s} {best / n * 1e9:.0f} ns/event  {n / best / 1e6:.2f} M/s (loop only)")
