"""bcc side of the benchmark: run by bench/run.py with the system python3 (Debian's
python3-bpfcc), when ``import bcc`` works there.

    /usr/bin/python3 bench/bcc_bench.py WORKLOAD REPS [ARGS...]

bcc compiles its C at run time and needs kernel headers: /lib/modules/$(uname -r)/build,
or a tree named by BCC_KERNEL_SOURCE. bcc cannot run bpf_loop callbacks (no BPF-to-BPF
calls), so its producer is a syscall tracepoint emitting up to 1024 events per getppid()
in a bounded loop; only the consumer side is compared.
"""

from __future__ import annotations

import ctypes as ct
import json
import os
import sys
import time

from bcc import BPF  # type: ignore[import-not-found]

now = time.perf_counter
BURST = 1024

SRC = r"""
struct event {
    u32 pid;
    u32 seq;
    u64 ts;
    u64 a;
    u64 b;
};

BPF_HASH(h10k, u32, u64, 10000);
BPF_HASH(h100k, u32, u64, 100000);
BPF_ARRAY(cfg, u32, 3);      /* [0] pid, [1] events per trigger, [2] 1: ring, 2: perf */
BPF_ARRAY(drops, u64, 1);
#ifdef WITH_RING
BPF_RINGBUF_OUTPUT(rb, 16384);  /* 64 MiB */
#endif
#ifdef WITH_PERF
BPF_PERF_OUTPUT(pb);
#endif

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 k = 0;
    u32 *pid = cfg.lookup(&k);
    if (!pid || *pid != (u32)(bpf_get_current_pid_tgid() >> 32))
        return 0;
    k = 1;
    u32 *np = cfg.lookup(&k);
    if (!np)
        return 0;
    u32 n = *np;
    u32 zero = 0;
    #pragma clang loop unroll(disable)
    for (u32 i = 0; i < BURST; i++) {
        if (i >= n)
            break;
#ifdef WITH_RING
        struct event *e = rb.ringbuf_reserve(sizeof(struct event));
        if (!e) {
            drops.increment(zero);
            break;
        }
        e->pid = 1; e->seq = i; e->ts = i; e->a = 0; e->b = 0;
        rb.ringbuf_submit(e, 0);
#endif
#ifdef WITH_PERF
        struct event ev = {};
        ev.pid = 1; ev.seq = i; ev.ts = i;
        if (pb.perf_submit(args, &ev, sizeof(ev))) {
            drops.increment(zero);
            break;
        }
#endif
    }
    return 0;
}
"""


class Event(ct.Structure):
    _fields_ = [
        ("pid", ct.c_uint32),
        ("seq", ct.c_uint32),
        ("ts", ct.c_uint64),
        ("a", ct.c_uint64),
        ("b", ct.c_uint64),
    ]


EventP = ct.POINTER(Event)


def emit(**kw: object) -> None:
    print(json.dumps(kw), flush=True)


def make(*defines: str) -> BPF:
    cflags = [f"-DBURST={BURST}"] + [f"-D{d}" for d in defines]
    return BPF(text=SRC, cflags=cflags)


def wl_map(reps: int, passes: int) -> None:
    b = make()
    t = b["h10k"]
    K, L = t.Key, t.Leaf
    n = 10000
    for k in range(n):
        t[K(k)] = L(k * 3)
    for _ in range(reps):
        total = 0
        t0 = now()
        for _p in range(passes):
            for k in range(n):
                total += t[K(k)].value
        t1 = now()
        for p in range(passes):
            for k in range(n):
                t[K(k)] = L(k + p)
        t2 = now()
        ops = n * passes
        emit(lookup_per_s=ops / (t1 - t0), update_per_s=ops / (t2 - t1))


def wl_iter(reps: int) -> None:
    b = make()
    t = b["h100k"]
    K, L = t.Key, t.Leaf
    n = 100000
    for k in range(n):
        t[K(k)] = L(k * 7)
    for _ in range(reps):
        t0 = now()
        c1 = 0
        for k, v in t.items():  # key by key, converted
            c1 += (k.value, v.value)[1] >= 0
        t1 = now()
        c2 = 0
        for k, v in t.items_lookup_batch():  # batched (ctypes arrays: already ints)
            c2 += (k, v)[1] >= 0
        t2 = now()
        if c1 != n or c2 != n:
            raise SystemExit(f"bcc iteration saw {c1}/{c2} of {n}")
        emit(items_s=t1 - t0, items_batch_s=t2 - t1, entries=n)


def _set_cfg(b: BPF, n: int) -> None:
    cfg = b["cfg"]
    cfg[ct.c_int(0)] = ct.c_uint(os.getpid())
    cfg[ct.c_int(1)] = ct.c_uint(n)


def _produce(b: BPF, n: int) -> None:
    for _ in range(n // BURST):
        os.getppid()
    if n % BURST:
        cfg = b["cfg"]
        cfg[ct.c_int(1)] = ct.c_uint(n % BURST)
        os.getppid()
        cfg[ct.c_int(1)] = ct.c_uint(BURST)


def _drops(b: BPF) -> int:
    return int(b["drops"][ct.c_int(0)].value)


def wl_ring(reps: int, total: int, chunk: int) -> None:
    b = make("WITH_RING")
    _set_cfg(b, BURST)
    state = [0, 0]

    def on_event(ctx: int, data: int, size: int) -> None:
        e = ct.cast(data, EventP).contents
        state[0] += e.seq
        state[1] += 1

    b["rb"].open_ring_buffer(on_event)
    for _ in range(2):  # warm-up: touch the whole ring
        _produce(b, chunk)
        b.ring_buffer_consume()
    for _ in range(reps):
        state[0] = state[1] = 0
        pt = ctime = 0.0
        done = 0
        while done < total:
            n = min(chunk, total - done)
            t0 = now()
            _produce(b, n)
            t1 = now()
            b.ring_buffer_consume()
            t2 = now()
            pt += t1 - t0
            ctime += t2 - t1
            done += n
        emit(
            events=state[1],
            expected=total,
            dropped=_drops(b),
            produce_per_s=total / pt,
            consume_per_s=state[1] / ctime,
        )


def wl_perf(reps: int, total: int, chunk: int, period: int, pages: int) -> None:
    b = make("WITH_PERF")
    _set_cfg(b, BURST)
    state = [0, 0]
    lost = [0]

    def on_event(cpu: int, data: int, size: int) -> None:
        e = ct.cast(data, EventP).contents
        state[0] += e.seq
        state[1] += 1

    def on_lost(cnt: int) -> None:
        lost[0] += cnt

    b["pb"].open_perf_buffer(on_event, page_cnt=pages, lost_cb=on_lost, wakeup_events=period)
    for _ in range(4):  # warm-up
        _produce(b, chunk)
        b.perf_buffer_consume()
    for _ in range(reps):
        state[0] = state[1] = 0
        pt = ctime = 0.0
        done = 0
        while done < total:
            n = min(chunk, total - done)
            t0 = now()
            _produce(b, n)
            t1 = now()
            b.perf_buffer_consume()
            t2 = now()
            pt += t1 - t0
            ctime += t2 - t1
            done += n
        emit(
            events=state[1],
            expected=total,
            dropped=_drops(b),
            lost=lost[0],
            produce_per_s=total / pt,
            consume_per_s=state[1] / ctime,
        )


WORKLOADS = {
    "map": (wl_map, [int]),
    "iter": (wl_iter, []),
    "ring": (wl_ring, [int, int]),
    "perf": (wl_perf, [int, int, int, int]),
}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in WORKLOADS:
        print(__doc__, file=sys.stderr)
        return 2
    fn, types = WORKLOADS[argv[0]]
    extra = argv[2:]
    if len(extra) != len(types):
        print(f"{argv[0]}: expected {len(types)} extra arguments", file=sys.stderr)
        return 2
    fn(int(argv[1]), *(t(a) for t, a in zip(types, extra, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
