#!/usr/bin/env python3
"""tinybpf benchmark: C + libbpf baseline vs tinybpf vs bcc, in one run.

    python bench/run.py [--quick] [--reps N] [--markdown] [--only NAMES] [--no-bcc]
                        [--fetch-bcc-headers]

Builds what is missing into bench/build/ (BPF objects with ``python -m tinybpf compile``,
the C baseline against build/libbpf-1.7.0/obj/libbpf.a, the raw-cffi prototype), runs every
workload REPS times in a fresh process per implementation, prints a table of medians and
ratios against the targets of the performance issue, and writes bench/build/results.json.

bcc (Debian's python3-bpfcc, for /usr/bin/python3) is measured when ``import bcc`` works and
kernel headers are found (BCC_KERNEL_SOURCE, /lib/modules/$(uname -r)/build, or
bench/build/kheaders made by --fetch-bcc-headers). Wall-time targets never fail the run: the
exit status is 0 whenever every workload ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUILD = BENCH / "build"
LIBBPF = ROOT / "build" / "libbpf-1.7.0"
VENV_PY = ROOT / ".venv" / "bin" / "python"
SYS_PY = Path("/usr/bin/python3")
OBJ = BUILD / "bench.bpf.o"
SMALL = BUILD / "small.bpf.o"
BENCH_C = BUILD / "bench_c"

# Figures of the issue for implementations that cannot run here (the first generation).
GEN1_RING_PER_S = 1.1e6
GEN1_PERF_PER_S = 0.74e6
BCC_REF = {"ring": 1.1e6, "perf": 1.2e6}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- build ------------------------------------------------------------------------------------
def _stale(out: Path, *deps: Path) -> bool:
    return not out.exists() or any(d.stat().st_mtime > out.stat().st_mtime for d in deps)


def python() -> str:
    return str(VENV_PY if VENV_PY.exists() else Path(sys.executable))


def build() -> None:
    BUILD.mkdir(exist_ok=True)
    if not (LIBBPF / "obj" / "libbpf.a").exists():
        log("libbpf.a missing: running `make build`")
        subprocess.run(["make", "-C", str(ROOT), "build"], check=True)
    srcs = [BENCH / "bpf" / "bench.bpf.c", BENCH / "bpf" / "small.bpf.c"]
    for src, out in zip(srcs, (OBJ, SMALL), strict=True):
        if _stale(out, src):
            log(f"compiling {src.relative_to(ROOT)}")
            subprocess.run(
                [python(), "-m", "tinybpf", "compile", str(src), "-o", str(BUILD) + "/"],
                check=True,
                cwd=ROOT,
            )
    csrc = BENCH / "c" / "bench_c.c"
    if _stale(BENCH_C, csrc, LIBBPF / "obj" / "libbpf.a"):
        log("building the C baseline")
        subprocess.run(
            [
                "gcc",
                "-O2",
                "-Wall",
                "-I",
                str(LIBBPF / "include"),
                str(csrc),
                str(LIBBPF / "obj" / "libbpf.a"),
                "-lelf",
                "-lz",
                "-o",
                str(BENCH_C),
            ],
            check=True,
        )
    proto = BUILD / "_bench_proto.so"
    psrc = [BENCH / "proto" / "proto.c", BENCH / "proto" / "build.py"]
    if _stale(proto, *psrc, LIBBPF / "obj" / "libbpf.a"):
        log("building the raw-cffi prototype")
        subprocess.run(
            [python(), str(BENCH / "proto" / "build.py"), str(ROOT)],
            check=True,
            stdout=subprocess.DEVNULL,
        )


# --- bcc availability -----------------------------------------------------------------------
def _headers_ok(path: Path) -> bool:
    return (path / "include" / "linux").is_dir() or (path / "include" / "generated").is_dir()


def bcc_env() -> tuple[dict[str, str] | None, str]:
    """(environment for the bcc subprocess, or None) and a reason/description."""
    if not SYS_PY.exists():
        return None, f"{SYS_PY} not found"
    r = subprocess.run([str(SYS_PY), "-c", "import bcc"], capture_output=True, text=True)
    if r.returncode:
        return None, "import bcc fails for /usr/bin/python3 (apt install python3-bpfcc)"
    env = dict(os.environ)
    src = os.environ.get("BCC_KERNEL_SOURCE")
    if src and _headers_ok(Path(src)):
        return env, f"kernel headers from BCC_KERNEL_SOURCE={src}"
    mod = Path("/lib/modules") / platform.release() / "build"
    if _headers_ok(mod):
        return env, f"kernel headers from {mod}"
    local = BUILD / "kheaders"
    if _headers_ok(local):
        env["BCC_KERNEL_SOURCE"] = str(local)
        version = (
            (local / ".tinybpf-source").read_text().strip()
            if (local / ".tinybpf-source").exists()
            else "?"
        )
        return env, f"kernel headers from {local.relative_to(ROOT)} ({version})"
    return None, (
        "bcc needs kernel headers: set BCC_KERNEL_SOURCE or run "
        "`python bench/run.py --fetch-bcc-headers`"
    )


def fetch_bcc_headers() -> None:
    """Unpack the newest distribution kernel headers into bench/build/kheaders (apt-get
    download + dpkg-deb -x: nothing is installed). bcc only needs them to compile its C;
    map, ring and perf buffer code does not depend on the exact kernel version."""
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    out = subprocess.run(
        ["apt-cache", "search", "--names-only", rf"^linux-headers-[0-9.]+-[0-9]+-{arch}$"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = sorted(
        (line.split()[0] for line in out.splitlines()),
        key=lambda n: [int(x) for x in n.split("-")[2].split(".")] + [int(n.split("-")[3])],
    )
    if not names:
        raise SystemExit(f"no linux-headers-*-{arch} package found (apt-get update?)")
    pkg = names[-1]
    common = pkg[: -len(arch)] + "common"
    dest = BUILD / "kheaders"
    with tempfile.TemporaryDirectory() as tmp:
        log(f"downloading {pkg} and {common}")
        subprocess.run(["apt-get", "download", pkg, common], cwd=tmp, check=True)
        root = Path(tmp) / "root"
        for deb in Path(tmp).glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        srcdir = root / "usr" / "src"
        for part in (common, pkg):  # the arch tree (generated headers, .config) wins
            d = srcdir / part
            subprocess.run(["cp", "-a", "--remove-destination", f"{d}/.", str(dest)], check=True)
        for link in ("scripts", "tools"):
            p = dest / link
            if p.is_symlink():
                p.unlink()
        (dest / ".tinybpf-source").write_text(pkg + "\n")
    log(f"kernel headers in {dest}")


# --- running --------------------------------------------------------------------------------
def run_json(
    cmd: list[str], env: dict[str, str] | None = None, timeout: int = 600
) -> list[dict[str, Any]]:
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    took = time.monotonic() - t0
    if r.returncode:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-8:])
        raise RuntimeError(f"{' '.join(cmd[:3])}... exit {r.returncode}:\n{tail}")
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    log(
        f"  {Path(cmd[1]).name if len(cmd) > 1 else cmd[0]} {cmd[2] if len(cmd) > 2 else ''}"
        f": {len(rows)} rows in {took:.1f}s"
    )
    return rows


def med(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else None


def paired(a: list[dict[str, Any]], ka: str, b: list[dict[str, Any]], kb: str) -> str:
    """The median of the per-round ratios a/b: the two variants of a round ran one after
    the other, so on a shared machine this is steadier than the ratio of the medians."""
    rs = [x[ka] / y[kb] for x, y in zip(a, b, strict=False) if x.get(ka) and y.get(kb)]
    return f"; median of per-round ratios {statistics.median(rs):.2f}" if rs else ""


def check_events(rows: list[dict[str, Any]], what: str) -> None:
    for r in rows:
        if "events" in r and (r["events"] != r["expected"] or r.get("dropped") or r.get("lost")):
            raise RuntimeError(
                f"{what}: events lost: got {r['events']} of {r['expected']} "
                f"(producer drops {r.get('dropped')}, perf lost {r.get('lost')})"
            )


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        q = args.quick
        self.reps = args.reps or (2 if q else 5)
        self.map_passes = 2 if q else 5
        self.ring_total = 1_000_000 if q else 2_000_000
        self.ring_batch_total = 2_000_000 if q else 8_000_000
        self.ring_chunk = 1_000_000  # 40 MB of a 64 MiB ring: never overflows
        self.perf_total = 400_000 if q else 1_000_000
        self.perf_chunk = 131_072  # one 8 MiB per-CPU ring holds 174k 48-byte records
        self.perf_period = 1024
        self.perf_pages = 2048
        self.openload_iters = 200 if q else 1000
        self.rss_total = 2_000_000 if q else 10_000_000
        self.import_runs = 5 if q else 11
        self.raw: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.bcc_env: dict[str, str] | None = None
        self.bcc_note = "disabled (--no-bcc)"

    def wanted(self, name: str) -> bool:
        return not self.args.only or name in self.args.only

    def _safe(self, key: str, fn: Any) -> list[dict[str, Any]]:
        try:
            rows = fn()
            self.raw[key] = {"rows": rows}
            return rows
        except Exception as e:  # keep going: the table shows the error
            self.errors[key] = str(e)
            log(f"  {key}: ERROR {e}")
            return []

    def c(self, *args: Any) -> list[str]:
        return [str(BENCH_C), *map(str, args)]

    def t(self, *args: Any) -> list[str]:
        return [python(), str(BENCH / "tinybpf_bench.py"), *map(str, args)]

    def b(self, *args: Any) -> list[str]:
        return [str(SYS_PY), str(BENCH / "bcc_bench.py"), *map(str, args)]

    def run_bcc(self, key: str, *args: Any) -> list[dict[str, Any]]:
        if self.bcc_env is None:
            return []
        return self._safe(key, lambda: run_json(self.b(*args), self.bcc_env))

    def interleaved(self, specs: list[tuple[str, Any]], rounds: int | None = None) -> None:
        """Run the C / tinybpf / raw variants of one workload in rounds, one repetition per
        process, so that load changes on a shared machine hit them alike."""
        rows: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in specs}
        for _ in range(rounds or self.reps):
            for key, build_cmd in specs:
                if key in self.errors:
                    continue
                try:
                    rows[key] += run_json(build_cmd(1))
                except Exception as e:  # keep going: the table shows the error
                    self.errors[key] = str(e)
                    log(f"  {key}: ERROR {e}")
        for key, got in rows.items():
            if key not in self.errors:
                self.raw[key] = {"rows": got}

    def run_all(self) -> None:
        r, obj = self.reps, OBJ
        c, t = self.c, self.t
        if not self.args.no_bcc:
            self.bcc_env, self.bcc_note = bcc_env()
        log(f"bcc: {self.bcc_note}")
        if self.wanted("openload"):
            # First, on a settled machine: measured right after the ring and perf
            # workloads of the same run it read 1.19-1.23 x C with raw cffi itself at
            # 1.11-1.13 x, against 1.11-1.15 x and 1.04-1.09 x on its own (two runs each;
            # docs/performance.md, "open + load + close").
            log("open + load + close (small object)")
            it = self.openload_iters
            self.interleaved(
                [
                    ("c.openload", lambda k: c("openload", SMALL, k, it)),
                    ("t.openload", lambda k: t("openload", SMALL, k, it)),
                    ("raw.openload", lambda k: t("openload_raw", SMALL, k, it)),
                ],
                # a round takes about a second: twice the rounds for a steadier median of
                # a ratio whose processes spread by several percent
                rounds=2 * self.reps - 1,
            )
        if self.wanted("map"):
            log("map lookup/update (10k u32->u64 hash)")
            p = self.map_passes
            self.interleaved(
                [
                    ("c.map", lambda k: c("map", obj, k, p)),
                    ("t.map", lambda k: t("map", obj, k, p)),
                    ("raw.map", lambda k: t("map_raw", obj, k, p)),
                ]
            )
            self.run_bcc("bcc.map", "map", r, p)
        if self.wanted("mmap"):
            log("mmap-able array m[k]/m[k]=v (10k u32->u64) vs syscalls vs C")
            p = self.map_passes
            self.interleaved(
                [
                    ("c.mmap", lambda k: c("mmap", obj, k, p)),
                    ("t.mmap", lambda k: t("mmap", obj, k, p)),
                ]
            )
        if self.wanted("iter"):
            log("iteration (100k u32->u64 hash)")
            self.interleaved(
                [
                    ("c.iter", lambda k: c("iter", obj, k)),
                    ("t.iter", lambda k: t("iter", obj, k)),
                    ("raw.iter", lambda k: t("iter_raw", obj, k)),
                ]
            )
            self.run_bcc("bcc.iter", "iter", r)
        if self.wanted("numpy"):
            log("to_numpy() (100k hash, mmap-able array view)")
            self.interleaved([("t.numpy", lambda k: t("numpy", obj, k))])
        if self.wanted("ring"):
            log("ring buffer (32-byte events)")
            n, ch = self.ring_total, self.ring_chunk
            nb = self.ring_batch_total
            self.interleaved(
                [
                    ("c.ring", lambda k: c("ring", obj, k, nb, ch)),
                    ("t.ring", lambda k: t("ring", obj, k, n, ch)),
                    ("t.ring_batch", lambda k: t("ring_batch", obj, k, nb, ch)),
                    ("t.ring_batch_16k", lambda k: t("ring_batch_max", obj, k, nb, ch, 16384)),
                    ("raw.ring", lambda k: t("ring_raw", obj, k, nb, ch)),
                    ("raw.ring_events", lambda k: t("ring_raw_events", obj, k, n, ch)),
                    ("t.ring_produce", lambda k: t("ring_produce", obj, k, nb, ch)),
                ]
            )
            self.run_bcc("bcc.ring", "ring", r, n, ch)
        if self.wanted("perf"):
            log("perf buffer (32-byte events)")
            n, ch, per, pg = self.perf_total, self.perf_chunk, self.perf_period, self.perf_pages
            self.interleaved(
                [
                    ("c.perf", lambda k: c("perf", obj, k, 4 * n, ch, per, pg)),
                    ("t.perf", lambda k: t("perf", obj, k, n, ch, per, pg)),
                    ("t.perf_batch", lambda k: t("perf_batch", obj, k, 4 * n, ch, per, pg)),
                    ("raw.perf", lambda k: t("perf_raw", obj, k, 4 * n, ch, per, pg)),
                    ("raw.perf_events", lambda k: t("perf_raw_events", obj, k, n, ch, per, pg)),
                ]
            )
            self.run_bcc("bcc.perf", "perf", r, n, ch, per, pg)
        if self.wanted("import"):
            log("import time")
            self._safe("t.import", self.import_tinybpf)
            if self.bcc_env is not None:
                self._safe("bcc.import", lambda: self.import_times(str(SYS_PY), "bcc", {}))
        if self.wanted("rss"):
            log(f"RSS over {self.rss_total:,} ring buffer events")
            self._safe(
                "t.rss",
                lambda: run_json(
                    self.t("rss", obj, 1, self.rss_total, self.ring_chunk), timeout=900
                ),
            )

    def import_times(self, py: str, module: str, env_extra: dict[str, str]) -> list[dict[str, Any]]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(env_extra)
        rows = []
        subprocess.run([py, "-c", f"import {module}"], env=env, check=True)  # write .pyc
        selfs: dict[str, list[int]] = {}
        for _ in range(self.import_runs):
            r = subprocess.run(
                [py, "-X", "importtime", "-c", f"import {module}"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            for line in r.stderr.splitlines():
                parts = [p.strip() for p in line.split("|")]
                if len(parts) != 3 or not parts[1].isdigit():
                    continue
                selfs.setdefault(parts[2], []).append(int(parts[0].split(":")[-1].strip()))
                if parts[2] == module:
                    rows.append({"import_ms": int(parts[1]) / 1000})
        # where the time goes: the modules with the largest median self time
        top = sorted(((statistics.median(v) / 1000, k) for k, v in selfs.items()), reverse=True)
        rows.append({"top_self_ms": [[k, round(ms, 2)] for ms, k in top[:15]]})
        return rows

    def import_tinybpf(self) -> list[dict[str, Any]]:
        # .pyc under bench/build (this environment may set PYTHONDONTWRITEBYTECODE)
        warm = self.import_times(
            python(), "tinybpf", {"PYTHONPYCACHEPREFIX": str(BUILD / "pycache")}
        )
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=tmp)
            cold = []
            for _ in range(3):
                r = subprocess.run(
                    [python(), "-X", "importtime", "-c", "import tinybpf"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                last = r.stderr.strip().splitlines()[-1].split("|")
                cold.append({"import_cold_ms": int(last[1]) / 1000})
        return warm + cold


# --- the table --------------------------------------------------------------------------------
def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "M/s":
        return f"{v / 1e6:.3g}" if v < 1e8 else f"{v / 1e6:.0f}"
    if unit == "s":
        return f"{v:.3f}"
    if unit == "ms":
        return f"{v:.3g}"
    return f"{v:.3g}"


def build_rows(b: Bench) -> list[dict[str, Any]]:
    R = lambda k: b.raw.get(k, {}).get("rows", [])  # noqa: E731
    rows: list[dict[str, Any]] = []

    def row(
        name: str,
        unit: str,
        c: Any,
        t: Any,
        bcc: Any,
        raw: Any,
        ratio: float | None,
        ratio_txt: str,
        target: str,
        ok: bool | None,
        note: str = "",
    ) -> None:
        rows.append(
            dict(
                workload=name,
                unit=unit,
                c=c,
                tinybpf=t,
                bcc=bcc,
                raw=raw,
                ratio=ratio,
                ratio_txt=ratio_txt,
                target=target,
                result="info" if ok is None else ("PASS" if ok else "FAIL"),
                note=note,
            )
        )

    def rate_row(name: str, key: str, metric: str) -> None:
        c, t = med(R(f"c.{key}"), metric), med(R(f"t.{key}"), metric)
        bc, raw = med(R(f"bcc.{key}"), metric), med(R(f"raw.{key}"), metric)
        ratio = t / c if c and t else None
        row(
            name,
            "M/s",
            c,
            t,
            bc,
            raw,
            ratio,
            f"{ratio:.2f} x C" if ratio else "n/a",
            ">= 0.6 x C",
            ratio is not None and ratio >= 0.6,
        )

    if b.wanted("map"):
        rate_row("map lookup m[k] (10k hash)", "map", "lookup_per_s")
        rate_row("map update m[k]=v (10k hash)", "map", "update_per_s")
    if b.wanted("mmap"):
        for what, key, skey in (
            ("read m[k]", "read_per_s", "syscall_lookup_per_s"),
            ("write m[k]=v", "write_per_s", "syscall_update_per_s"),
        ):
            t = med(R("t.mmap"), key)
            sys_path = med(R("t.mmap"), skey)
            c = med(R("c.mmap"), key)
            ratio = t / sys_path if t and sys_path else None
            row(
                f"mmap-able array {what} (10k)",
                "M/s",
                c,
                t,
                None,
                sys_path,
                ratio,
                f"{ratio:.2f} x syscall path" if ratio else "n/a",
                ">= 2 x syscall path",
                ratio is not None and ratio >= 2,
                note="C = plain loads/stores on the mapping; raw column = tinybpf on an "
                "ordinary array of the same shape (one syscall per element)"
                + paired(R("t.mmap"), key, R("t.mmap"), skey)
                + (
                    f"; C through syscalls {cs / 1e6:.3g} M/s"
                    if (cs := med(R("c.mmap"), "syscall_lookup_per_s")) and key == "read_per_s"
                    else ""
                ),
            )
    if b.wanted("numpy"):
        nrows = R("t.numpy")
        unsupported = next((x["unsupported"] for x in nrows if "unsupported" in x), None)
        hs = med(nrows, "hash_s")
        vs = med(nrows, "view_s")
        cb = med(R("c.iter"), "batch_s")
        ratio = hs / cb if hs and cb else None
        row(
            "to_numpy() of 100k hash (keys, values)",
            "s",
            cb,
            hs,
            None,
            None,
            ratio,
            f"{ratio:.2f} x C batched" if ratio else (unsupported or "n/a"),
            "info",
            None,
            note="batch reads into two arrays, then values.sum(); C = bpf_map_lookup_batch"
            + (f"; live view of the 10k mmap-able array + sum: {vs * 1e6:.0f} us" if vs else ""),
        )
    if b.wanted("iter"):
        cb = med(R("c.iter"), "batch_s")
        ck = med(R("c.iter"), "keybykey_s")
        bi, bb = med(R("bcc.iter"), "items_s"), med(R("bcc.iter"), "items_batch_s")
        raw = med(R("raw.iter"), "items_s")
        for what, key in (("items()", "items_s"), ("keys()", "keys_s")):
            t = med(R("t.iter"), key)
            ratio = t / cb if t and cb else None
            row(
                f"{what} of 100k hash, converted",
                "s",
                cb,
                t,
                bi if what == "items()" else None,
                raw if what == "items()" else None,
                ratio,
                f"{ratio:.2f} x C batched" if ratio else "n/a",
                "<= 1.5 x C batched",
                ratio is not None and ratio <= 1.5,
                note=(f"C key by key {ck:.3f} s" if ck else "")
                + (f"; bcc batched {bb:.3f} s" if bb and what == "items()" else "")
                + (
                    "; raw column = one thread: batch, decode, repeat (tinybpf reads ahead "
                    "on a second one)"
                    if raw and what == "items()"
                    else ""
                )
                + paired([x for x in R("t.iter") if key in x], key, R("c.iter"), "batch_s"),
            )
        mem = next((x for x in R("t.iter") if x.get("mem")), None)
        if mem:
            blocks, peak = mem["retained_blocks_per_entry"], mem["iter_peak_bytes"]
            kept = mem.get("kept_bytes", 0)
            ok = blocks <= 3.05 and peak < kept / 5
            row(
                "items() memory per entry",
                "blocks",
                None,
                blocks,
                None,
                None,
                None,
                f"{blocks:.2f} blocks/entry kept; peak {peak / 1024:.0f} KiB when not kept",
                "3 blocks (tuple + 2 ints); peak O(chunk)",
                ok,
                note=f"keeping all 100k items takes {kept / 2**20:.1f} MiB; the peak of an "
                "iteration that keeps nothing must stay under a fifth of that; transient "
                "per-entry temporaries are not counted by this check",
            )

    def buffer_rows(kind: str, gen1: float) -> None:
        floor = 0.95 if kind == "ring" else 0.9
        c = med(R(f"c.{kind}"), "consume_per_s")
        t = med(R(f"t.{kind}"), "consume_per_s")
        bc = med(R(f"bcc.{kind}"), "consume_per_s")
        raw = med(R(f"raw.{kind}"), "consume_per_s")
        raw_ev = med(R(f"raw.{kind}_events"), "consume_per_s")
        r1 = t / gen1 if t else None
        row(
            f"{kind} buffer per-event callback, typed",
            "M/s",
            c,
            t,
            bc,
            raw_ev,
            r1,
            f"{r1:.2f} x gen1" if r1 else "n/a",
            ">= 3 x gen1",
            r1 is not None and r1 >= 3,
            note=f"gen1 = {gen1 / 1e6:.2f} M/s (issue figure); raw = C drain "
            + ("of up to 4096 samples" if kind == "ring" else "of the per-CPU rings")
            + ", then Event.from_buffer_copy + callback per event (bench/proto)",
        )
        bref = bc or BCC_REF[kind]
        r2 = t / bref if t else None
        row(
            f"{kind} buffer per-event vs bcc",
            "M/s",
            None,
            t,
            bc,
            None,
            r2,
            f"{r2:.2f} x bcc" if r2 else "n/a",
            ">= 2.5 x bcc",
            r2 is not None and r2 >= 2.5,
            note="" if bc else f"bcc not run here: issue figure {bref / 1e6:.2f} M/s",
        )
        tb_rows = R(f"t.{kind}_batch")
        unsupported = next((x["unsupported"] for x in tb_rows if "unsupported" in x), None)
        tb = med(tb_rows, "consume_per_s")
        row(
            f"{kind} buffer batch mode",
            "M/s",
            c,
            tb,
            None,
            raw,
            tb,
            f"{tb / raw:.2f} x raw" if tb and raw else "no batch API",
            f">= {floor} x raw",
            tb is not None and raw is not None and tb >= floor * raw,
            note=f"{tb / 1e6 if tb else 0:.3g} M/s"
            + paired(tb_rows, "consume_per_s", R(f"raw.{kind}"), "consume_per_s")
            + "; consume_batch() + "
            "sum(batch.column_view('seq')) (zero-copy), library defaults; "
            "raw = C drain prototype (bench/proto), seq read via memoryview"
            + (f"; {unsupported}" if unsupported else "")
            + (
                f"; with max_batch=16384: {small / 1e6:.3g} M/s"
                if (small := med(R(f"t.{kind}_batch_16k"), "consume_per_s"))
                else ""
            ),
        )
        key = "t.ring_produce" if kind == "ring" else f"t.{kind}"
        row(
            f"{kind} producer alone (test_run, bpf_loop)",
            "M/s",
            med(R(f"c.{kind}"), "produce_per_s"),
            med(R(key), "produce_per_s"),
            med(R(f"bcc.{kind}"), "produce_per_s"),
            None,
            None,
            "",
            "not the bottleneck",
            None,
            note="bcc: tracepoint, bounded loop of 1024 per getppid()",
        )

    if b.wanted("ring"):
        buffer_rows("ring", GEN1_RING_PER_S)
    if b.wanted("perf"):
        buffer_rows("perf", GEN1_PERF_PER_S)
    if b.wanted("openload"):
        c = med(R("c.openload"), "per_iter_s")
        t = med(R("t.openload"), "per_iter_s")
        raw = med(R("raw.openload"), "per_iter_s")
        ratio = t / c if c and t else None
        row(
            "open+load+close small object",
            "ms",
            c * 1e3 if c else None,
            t * 1e3 if t else None,
            None,
            raw * 1e3 if raw else None,
            ratio,
            f"{ratio:.2f} x C" if ratio else "n/a",
            "<= 1.15 x C",
            ratio is not None and ratio <= 1.15,
            note=f"medians of {len(R('t.openload'))} rounds of {b.openload_iters} cycles, "
            "run before the other workloads",
        )
    if b.wanted("import"):
        t = med(R("t.import"), "import_ms")
        cold = med(R("t.import"), "import_cold_ms")
        bi = med(R("bcc.import"), "import_ms")
        top = next((x["top_self_ms"] for x in R("t.import") if "top_self_ms" in x), [])
        row(
            "import tinybpf (-X importtime, .pyc cached)",
            "ms",
            None,
            t,
            bi,
            None,
            t,
            f"{t:.1f} ms" if t else "n/a",
            "<= 15 ms",
            t is not None and t <= 15,
            note=(f"without .pyc: {cold:.0f} ms; " if cold else "")
            + "largest self times: "
            + ", ".join(f"{k} {ms:.1f}" for k, ms in top[:8]),
        )
    if b.wanted("rss"):
        x = next(iter(R("t.rss")), None)
        if x:
            growth = (x["anon_after_kb"] - x["anon_before_kb"]) / 1024
            rss_growth = (x["rss_after_kb"] - x["rss_before_kb"]) / 1024
            ok = growth <= 1.0 and x["events"] == x["expected"]
            row(
                f"RSS over {x['expected'] / 1e6:.0f}M ring events (per-event callback)",
                "MiB",
                None,
                growth,
                None,
                None,
                growth,
                f"+{growth:.2f} MiB anon (+{rss_growth:.2f} RSS)",
                "flat (<= 1 MiB growth)",
                ok,
                note=f"RSS {x['rss_before_kb'] / 1024:.1f} -> {x['rss_after_kb'] / 1024:.1f} MiB "
                "after a 2M-event warm-up",
            )
    return rows


def render(rows: list[dict[str, Any]], markdown: bool) -> str:
    head = ["workload", "unit", "C", "tinybpf", "bcc", "raw cffi", "ratio", "target", "result"]
    body = []
    for r in rows:
        u = r["unit"]
        cells = [r["workload"], u]
        for k in ("c", "tinybpf", "bcc", "raw"):
            v = r[k]
            cells.append("" if v is None else (f"{v:.2f}" if u in ("blocks", "MiB") else fmt(v, u)))
        cells += [r["ratio_txt"], r["target"], r["result"]]
        body.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in body]
        return "\n".join(out)
    widths = [
        max(len(h), *(len(c[i]) for c in body)) if body else len(h) for i, h in enumerate(head)
    ]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(c) for c in body])


def machine(b: Bench) -> dict[str, Any]:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        except Exception:
            return ""

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in out(["lscpu"]).splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    info = json.loads(
        out(
            [
                python(),
                "-c",
                "import json, platform, cffi, tinybpf; print(json.dumps("
                "dict(python=platform.python_version(), cffi=cffi.__version__, "
                "tinybpf=tinybpf.version(), libbpf=tinybpf.libbpf_release())))",
            ]
        )
        or "{}"
    )
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        **info,
        "gcc": out(["gcc", "-dumpfullversion"]),
        "clang": out(["clang", "--version"]).splitlines()[0] if shutil.which("clang") else "",
        "bcc": out([str(SYS_PY), "-c", "import bcc; print(bcc.__version__)"]) if b.bcc_env else "",
        "bcc_note": b.bcc_note,
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="1-2 repetitions, smaller sizes")
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 5, quick 2)")
    ap.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    ap.add_argument(
        "--only",
        type=lambda s: s.split(","),
        default=None,
        help="comma list of: map,mmap,iter,numpy,ring,perf,openload,import,rss",
    )
    ap.add_argument("--no-bcc", action="store_true", help="skip bcc")
    ap.add_argument(
        "--fetch-bcc-headers",
        action="store_true",
        help="unpack distribution kernel headers for bcc into bench/build/kheaders",
    )
    ap.add_argument("--json", default=str(BUILD / "results.json"), help="results file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        log("warning: not root; loading BPF objects will probably fail")
    t0 = time.monotonic()
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        log(f"warning: load average {load1:.2f}: other work on this machine skews the figures")
    build()
    if args.fetch_bcc_headers:
        fetch_bcc_headers()
    b = Bench(args)
    b.run_all()
    rows = build_rows(b)
    took = time.monotonic() - t0
    m = machine(b)
    result = {
        "machine": m,
        "settings": {k: v for k, v in vars(b).items() if isinstance(v, (int, float, bool))},
        "quick": args.quick,
        "seconds": round(took, 1),
        "loadavg_start": load1,
        "loadavg_end": os.getloadavg()[0],
        "table": rows,
        "raw": b.raw,
        "errors": b.errors,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"\n{m['cpu']}, {m['cpus']} CPUs, Linux {m['kernel']}, Python {m.get('python')}, "
        f"cffi {m.get('cffi')}, libbpf {m.get('libbpf')}; bcc: {b.bcc_note}; "
        f"medians of {b.reps} ({took:.0f} s)\n"
    )
    print(render(rows, args.markdown))
    notes = [f"- {r['workload']}: {r['note']}" for r in rows if r["note"]]
    if notes:
        print("\nNotes:\n" + "\n".join(notes))
    if b.errors:
        print("\nErrors:\n" + "\n".join(f"- {k}: {v}" for k, v in b.errors.items()))
    print(f"\nresults: {args.json}")
    return 1 if b.errors else 0


if __name__ == "__main__":
    sys.exit(main())
