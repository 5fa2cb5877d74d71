"""Probe: ring buffer batch mode rate against max_batch, split into consume_batch() and
column("seq") + sum per event. Run from the repo root after bench/run.py built bench/build:

    .venv/bin/python bench/probes/ring_batch_size.py
"""

import sys
import time

sys.path.insert(0, "bench")

from tinybpf_bench import _produce

import tinybpf

obj = tinybpf.load("bench/build/bench.bpf.o")
prog = obj.programs["produce_ring"]
for mb in (1 << 20, 1 << 18, 1 << 16, 1 << 14, 1 << 12):
    rb = tinybpf.BpfRingBuffer(obj.maps["rb"], batch=True, event_type="event", max_batch=mb)
    take = column = 0.0
    n = s = 0
    for rep in range(4):  # the first round is a warm-up
        _produce(prog, 1_000_000)
        while True:
            t0 = time.perf_counter()
            b = rb.consume_batch()
            t1 = time.perf_counter()
            if not len(b):
                break
            s += sum(b.column("seq"))
            t2 = time.perf_counter()
            if rep:
                take += t1 - t0
                column += t2 - t1
                n += len(b)
    rb.close()
    print(
        f"max_batch={mb:8d}: {n / (take + column) / 1e6:5.1f} M/s  "
        f"take {take / n * 1e9:5.1f} ns/event  column+sum {column / n * 1e9:5.1f} ns/event"
    )
