"""Probe: map m[k]/m[k]=v of the library vs raw cffi vs a pool-of-typed-pairs prototype,
interleaved in one process. Run from the repo root after bench/run.py built bench/build:
    .venv/bin/python bench/probes/map_paths.py
"""

import statistics
import time

import tinybpf
from tinybpf._core import ffi, lib

obj = tinybpf.load("bench/build/bench.bpf.o")
m = obj.maps["h10k"]
for k in range(10000):
    m[k] = k
fd = m.fd
lookup = lib.bpf_map_lookup_elem
update = lib.bpf_map_update_elem


class Pool:
    """what __getitem__/__setitem__ could do for scalar keys/values: a pool of typed
    (key, value) cdata pairs (thread safe: each call pops its own pair), no encode frames"""

    __slots__ = ("closed", "fd", "pool")

    def __init__(self, fd):
        self.fd = fd
        self.pool = []
        self.closed = False

    def _pair(self):
        k = ffi.new("__u32[1]")
        v = ffi.new("__u64[1]")
        return (k, v, ffi.cast("void *", k), ffi.cast("void *", v))

    def __getitem__(self, key):
        if self.closed:
            raise ValueError
        pool = self.pool
        p = pool.pop() if pool else self._pair()
        p[0][0] = key
        ret = lookup(self.fd, p[2], p[3])
        value = p[1][0]
        pool.append(p)
        if ret < 0:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value):
        if self.closed:
            raise ValueError
        pool = self.pool
        p = pool.pop() if pool else self._pair()
        p[0][0] = key
        p[1][0] = value
        ret = update(self.fd, p[2], p[3], 0)
        pool.append(p)
        if ret < 0:
            raise OSError(-ret)


kb = ffi.new("__u32 *")
vb = ffi.new("__u64 *")
kp = ffi.cast("void*", kb)
vp = ffi.cast("void*", vb)


def raw_l(n):
    t = 0
    for k in range(n):
        kb[0] = k
        if lookup(fd, kp, vp) < 0:
            raise KeyError
        t += vb[0]


def raw_u(n):
    for k in range(n):
        kb[0] = k
        vb[0] = k
        if update(fd, kp, vp, 0) < 0:
            raise OSError


def dict_l(mm):
    def f(n):
        t = 0
        for k in range(n):
            t += mm[k]

    return f


def dict_u(mm):
    def f(n):
        for k in range(n):
            mm[k] = k

    return f


P = Pool(fd)
res = {}
cases = [
    ("raw lookup", raw_l),
    ("tinybpf m[k]", dict_l(m)),
    ("pool proto m[k]", dict_l(P)),
    ("raw update", raw_u),
    ("tinybpf m[k]=v", dict_u(m)),
    ("pool proto m[k]=v", dict_u(P)),
]
for _rep in range(7):
    for name, f in cases:
        t0 = time.perf_counter()
        f(10000)
        dt = time.perf_counter() - t0
        res.setdefault(name, []).append(10000 / dt)

for name, _ in cases:
    print(f"{name:20s} {statistics.median(res[name]) / 1e6:.3f} M/s")
