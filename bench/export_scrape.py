#!/usr/bin/env python3
"""Scrape time of ``tinybpf export`` for a 100k-entry hash map: batch reads vs key by key.

    python bench/export_scrape.py [--entries N] [--reps N]

Reports the median of REPS runs of
  - the map read alone: BPF_MAP_LOOKUP_BATCH (what the exporter does) against the walk
    ebpf_exporter does (BPF_MAP_GET_NEXT_KEY + BPF_MAP_LOOKUP_ELEM per key);
  - a whole scrape: read, decode every key into labels (cache cold and warm), build the
    families and render the text exposition; and the same with the key-by-key read.
A benchmark, not a test: it never fails on wall time.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time

import tinybpf
from tinybpf.export import Counter, DecoderSpec, Label
from tinybpf.export.collector import MetricReader, ReadStats
from tinybpf.export.metrics import render


def median_ms(fn, reps: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system of this process) in ms: on a
    shared machine the CPU time is the steadier of the two."""
    wall, cpu = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    n = args.entries
    m = tinybpf.create_map(tinybpf.BpfMapType.HASH, 8, 8, n, name="bench_export")
    try:
        typed = m.typed(key=ctypes.c_uint64, value=ctypes.c_uint64)
        typed.update_batch([(i, i * 3) for i in range(n)])
        raw = m.typed(key=bytes, value=bytes)
        assert sum(1 for _ in raw.items()) == n

        def batch() -> None:
            assert len(list(raw.items())) == n

        def key_by_key() -> None:  # ebpf_exporter's walk: two syscalls per entry
            got = 0
            # the library's bounded get_next_key walk (private: the public iteration batches)
            h = (raw._fast_state or raw._fast()).h
            for kb in raw._iter_keys(h):
                if raw.lookup(kb) is not None:
                    got += 1
            assert got == n

        spec = Counter("bench_total", "h", (Label("key", 8, (DecoderSpec("uint"),)),))

        def scrape(reader: MetricReader) -> None:
            fams = reader.read()
            assert len(fams[0].samples) == n
            render(fams)

        def cold() -> None:
            scrape(MetricReader("bench", spec, m, ReadStats(), cache_size=0))

        warm_reader = MetricReader("bench", spec, m, ReadStats(), cache_size=2 * n)
        scrape(warm_reader)

        class KeyByKey:  # the reader's map view, read as ebpf_exporter reads maps
            def __init__(self, view):
                self.view = view

            def items(self):
                h = (self.view._fast_state or self.view._fast()).h
                for kb in self.view._iter_keys(h):
                    v = self.view.lookup(kb)
                    if v is not None:
                        yield kb, v

        walk_reader = MetricReader("bench", spec, m, ReadStats(), cache_size=2 * n)
        walk_reader.view = KeyByKey(walk_reader.view)
        scrape(walk_reader)

        rows = [
            ("map read, batch (BPF_MAP_LOOKUP_BATCH)", median_ms(batch, args.reps)),
            ("map read, key by key (get_next_key + lookup)", median_ms(key_by_key, args.reps)),
            ("scrape, batch, label cache cold", median_ms(cold, args.reps)),
            ("scrape, batch, label cache warm", median_ms(lambda: scrape(warm_reader), args.reps)),
            (
                "scrape, key by key, label cache warm",
                median_ms(lambda: scrape(walk_reader), args.reps),
            ),
        ]
    finally:
        m.close()
    print(f"{n} entries, median of {args.reps} runs: wall time, CPU time")
    for what, (wall, cpu) in rows:
        print(f"  {what:<48} {wall:9.1f} ms {cpu:9.1f} ms")
    (bw, bc), (kw, kc) = rows[0][1], rows[1][1]
    print(f"  batch read is {kw / bw:.1f}x (wall) / {kc / bc:.1f}x (CPU) faster than key by key")
    (sw, sc), (ww, wc) = rows[3][1], rows[4][1]
    print(f"  whole scrape: key by key takes {ww / sw:.2f}x (wall) / {wc / sc:.2f}x (CPU) of batch")


if __name__ == "__main__":
    main()
