#!/usr/bin/env python3
"""Long fuzz campaigns against tinybpf.open()/load() and Btf.from_file()/to_c().

Not part of the pytest run (the default suite runs a bounded campaign through
tests/test_reliability_fuzz.py). Examples, from the repository root, as root::

    .venv/bin/python tests/fuzz/campaign.py --cases 50000             # own mutator
    .venv/bin/python tests/fuzz/campaign.py --cases 50000 --target btf
    .venv/bin/python tests/fuzz/campaign.py --engine atheris --cases 20000
    .venv/bin/python tests/fuzz/campaign.py --replay object:7:1017 --save case.o
    .venv/bin/python tests/fuzz/campaign.py --minimize crash.bin --target btf

Engines:

* ``own`` (default): the structure-aware mutator of objfuzz.py (bit flips, truncation,
  ELF/section header, symbol, relocation, instruction and BTF/BTF.ext corruption of the
  real fixtures, raw random bytes). Cases run in worker subprocesses in batches; a worker
  that dies (signal) or hangs is reported with the case it was running, the input is saved
  under ``--out`` and the campaign resumes with the next case.
* ``atheris``: libFuzzer (through atheris, if installed) over the fixtures as corpus, with
  objfuzz's mutator as the custom mutator half of the time. Stops at the first crash and
  leaves libFuzzer's ``crash-*`` file in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(FUZZ_DIR))

import objfuzz  # noqa: E402

WORKER = FUZZ_DIR / "objfuzz.py"


def _signame(rc: int) -> str:
    if rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return f"signal {-rc}"
    return f"exit {rc}"


def run_batch(
    seed: int,
    start: int,
    count: int,
    target: str,
    timeout: float,
    load: bool = True,
    case_timeout: float = 20.0,
) -> tuple[dict | None, dict | None]:
    """Run cases [start, start+count) in one worker. Returns (summary, failure): summary
    when the worker finished, failure (index, how, stderr tail) when it died or hung."""
    with tempfile.NamedTemporaryFile(prefix="tinybpf-fuzz-status-", delete=False) as st:
        status = st.name
    cmd = [
        sys.executable,
        str(WORKER),
        "--worker",
        "--seed",
        str(seed),
        "--start",
        str(start),
        "--count",
        str(count),
        "--status",
        status,
        "--target",
        target,
        "--case-timeout",
        str(case_timeout),
    ]
    if not load:
        cmd.append("--no-load")
    pin_root = None
    if load and target == "object" and os.path.ismount("/sys/fs/bpf"):
        pin_root = tempfile.mkdtemp(prefix="tinybpf-fuzz-", dir="/sys/fs/bpf")
        cmd += ["--pin-root", pin_root]
    try:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            rc, out, err = p.returncode, p.stdout, p.stderr
            how = _signame(rc)
            if rc == 1 and "Timeout (" in err:  # faulthandler's per-case watchdog
                how = "hang (one case > --case-timeout)"
        except subprocess.TimeoutExpired as e:
            rc, how = None, f"hang (> {timeout:.0f} s)"
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        summary = None
        for line in out.splitlines():
            if line.startswith("SUMMARY "):
                summary = json.loads(line[len("SUMMARY ") :])
        if rc == 0 and summary is not None:
            return summary, None
        try:
            index = int(Path(status).read_text().strip() or start)
        except (OSError, ValueError):
            index = start
        return summary, {
            "seed": seed,
            "target": target,
            "index": index,
            "how": how,
            "stderr": err[-3000:],
        }
    finally:
        os.unlink(status)
        if pin_root:
            shutil.rmtree(pin_root, ignore_errors=True)


def _merge(total: Counter, examples: dict, summary: dict) -> None:
    total.update(summary["outcomes"])
    for k, v in summary.get("examples", {}).items():
        examples.setdefault(k, v)


def campaign(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = ["object", "btf"] if args.target == "both" else [args.target]
    load = os.geteuid() == 0 and not args.no_load
    total: Counter = Counter()
    examples: dict[str, str] = {}
    failures: list[dict] = []
    t0 = time.monotonic()
    # work items: (target, start, count) chunks; run --jobs of them at a time
    for target in targets:
        pending = [(s, min(args.batch, args.cases - s)) for s in range(0, args.cases, args.batch)]
        while pending:
            running = []
            while pending and len(running) < args.jobs:
                start, count = pending.pop(0)
                running.append((start, count))
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(running)) as ex:
                futs = {
                    ex.submit(
                        run_batch, seed, s, c, target, args.timeout, load, args.case_timeout
                    ): (s, c)
                    for s, c in running
                }
                for fut, (s, c) in futs.items():
                    summary, failure = fut.result()
                    if summary is not None:
                        _merge(total, examples, summary)
                    if failure is None:
                        continue
                    failures.append(failure)
                    idx = failure["index"]
                    data, desc, _ = objfuzz.make_case(seed, idx, target)
                    name = f"crash-{target}-{seed}-{idx}.bin"
                    (out_dir / name).write_bytes(data)
                    failure["desc"] = desc
                    failure["saved"] = str(out_dir / name)
                    print(
                        f"!! {failure['how']} at {target}:{seed}:{idx} ({desc}) -> {name}",
                        flush=True,
                    )
                    total["cases"] += idx - s + 1  # the ones before it ran, and it
                    rest = s + c - idx - 1
                    if rest > 0:
                        pending.insert(0, (idx + 1, rest))
            done = total["cases"]
            rate = done / max(time.monotonic() - t0, 1e-9)
            print(f"   {target}: {done} cases, {len(failures)} failures, {rate:.0f}/s", flush=True)
    elapsed = time.monotonic() - t0
    report = {
        "seed": seed,
        "targets": targets,
        "cases": total["cases"],
        "seconds": round(elapsed, 1),
        "load": load,
        "outcomes": dict(sorted(total.items())),
        "examples": examples,
        "failures": [{k: v for k, v in f.items() if k != "stderr"} for f in failures],
    }
    print(json.dumps(report, indent=2))
    for f in failures:
        print(f"\n--- {f['how']} at {f['target']}:{f['seed']}:{f['index']}: {f['desc']}")
        print(f["stderr"])
    return 1 if failures else 0


# --------------------------------------------------------------------------- atheris


def atheris_child(args: argparse.Namespace) -> int:
    import atheris  # type: ignore[import-not-found]

    with atheris.instrument_imports():
        import tinybpf  # noqa: F401

    import logging
    import random

    logging.getLogger("tinybpf").setLevel(logging.CRITICAL + 1)
    load = os.geteuid() == 0 and not args.no_load
    tmpdir = tempfile.mkdtemp(prefix="tinybpf-atheris-")
    pin_root = args.pin_root
    out = objfuzz.Outcomes()
    counter = [0]

    def one(data: bytes) -> None:
        counter[0] += 1
        target = "btf" if args.target == "btf" else "object"
        objfuzz.run_case(
            data,
            target,
            via_path=(counter[0] % 4 == 3),
            load=load,
            tmpdir=tmpdir,
            pin_root=pin_root,
            out=out,
        )

    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        r = random.Random(seed)
        if r.random() < 0.5:
            try:
                e = objfuzz.Elf("corpus", data)
                buf = bytearray(data)
                m = r.choices(objfuzz._FUNCS, objfuzz._WEIGHTS)[0]
                m(r, e, buf)
                return bytes(buf[:max_size])
            except Exception:
                pass
        return atheris.Mutate(data, max_size)

    atheris.Setup(sys.argv[:1] + args.libfuzzer_args, one, custom_mutator=mutate)
    atheris.Fuzz()
    return 0


def atheris_campaign(args: argparse.Namespace) -> int:
    try:
        import atheris  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        print("atheris is not installed (pip install atheris); use --engine own", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = Path(tempfile.mkdtemp(prefix="tinybpf-corpus-"))
    for e in objfuzz.fixtures():
        if args.target == "btf":
            (corpus / f"{e.name}.btf").write_bytes(e.data[e.btf_off : e.btf_off + e.btf_size])
        else:
            (corpus / f"{e.name}.bpf.o").write_bytes(e.data)
    cmd = [
        sys.executable,
        __file__,
        "--atheris-child",
        "--target",
        args.target,
        "--",
        f"-runs={args.cases}",
        f"-artifact_prefix={out_dir}/",
        "-max_len=65536",
        f"-timeout={int(args.case_timeout)}",
        "-print_final_stats=1",
        str(corpus),
    ]
    if args.no_load:
        cmd.insert(3, "--no-load")
    pin_root = None
    if os.geteuid() == 0 and not args.no_load and os.path.ismount("/sys/fs/bpf"):
        pin_root = tempfile.mkdtemp(prefix="tinybpf-fuzz-", dir="/sys/fs/bpf")
        cmd[3:3] = ["--pin-root", pin_root]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        if pin_root:
            shutil.rmtree(pin_root, ignore_errors=True)
    elapsed = time.monotonic() - t0
    tail = "\n".join((p.stderr or "").splitlines()[-25:])
    print(tail)
    print(f"atheris: exit {p.returncode} ({_signame(p.returncode)}) after {elapsed:.1f} s")
    shutil.rmtree(corpus, ignore_errors=True)
    return p.returncode


# --------------------------------------------------------------------------- replay / minimize


def _crashes(data: bytes, target: str, timeout: float = 60) -> str | None:
    """Run one input in a fresh interpreter: the failure ("SIGSEGV", "hang"...) or None."""
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
        f.write(data)
        path = f.name
    code = (
        f"import sys, os, tempfile; sys.path.insert(0, {str(FUZZ_DIR)!r}); import objfuzz;"
        "out = objfuzz.Outcomes(); d = tempfile.mkdtemp();"
        f"objfuzz.run_case(open({path!r}, 'rb').read(), {target!r}, via_path=False,"
        " load=os.geteuid() == 0, tmpdir=d, pin_root=None, out=out); print(dict(out))"
    )
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=timeout)
        return None if p.returncode == 0 else _signame(p.returncode)
    except subprocess.TimeoutExpired:
        return "hang"
    finally:
        os.unlink(path)


def minimize(data: bytes, target: str, budget: int = 400) -> bytes:
    """Shrink a crashing input while it still fails the same way (chunk removal, then
    zeroing of chunks, then of single bytes: simple delta debugging)."""
    want = _crashes(data, target)
    if want is None:
        raise SystemExit("the input does not crash")
    tries = 0
    for op in ("cut", "zero"):
        chunk = max(1, len(data) // 2)
        while chunk >= 1 and tries < budget:
            i, progress = 0, False
            while i < len(data) and tries < budget:
                if op == "cut":
                    cand = data[:i] + data[i + chunk :]
                else:
                    if not any(data[i : i + chunk]):
                        i += chunk
                        continue
                    cand = data[:i] + bytes(len(data[i : i + chunk])) + data[i + chunk :]
                tries += 1
                if cand and _crashes(cand, target) == want:
                    data, progress = cand, True
                    if op == "zero":
                        i += chunk
                else:
                    i += chunk
            if not progress:
                chunk //= 2
    print(f"minimized to {len(data)} bytes in {tries} runs ({want})", file=sys.stderr)
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--target", choices=("object", "btf", "both"), default="object")
    ap.add_argument("--engine", choices=("own", "atheris"), default="own")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per batch")
    ap.add_argument("--case-timeout", type=float, default=20.0, help="seconds per case")
    ap.add_argument("--out", default="/tmp/tinybpf-fuzz")
    ap.add_argument("--no-load", action="store_true", help="open only (no kernel)")
    ap.add_argument("--replay", metavar="TARGET:SEED:INDEX", help="regenerate one case")
    ap.add_argument("--save", metavar="FILE", help="with --replay: write the case there")
    ap.add_argument("--minimize", metavar="FILE", help="shrink a crashing input")
    ap.add_argument("--atheris-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pin-root", default=None, help=argparse.SUPPRESS)
    ap.add_argument("libfuzzer_args", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.atheris_child:
        return atheris_child(args)
    if args.replay:
        target, seed, index = args.replay.split(":")
        data, desc, kind = objfuzz.make_case(int(seed), int(index), target)
        print(f"{target}:{seed}:{index}: {len(data)} bytes: {desc}")
        if args.save:
            Path(args.save).write_bytes(data)
        result = _crashes(data, kind)
        print("result:", result or "no crash")
        return 1 if result else 0
    if args.minimize:
        data = minimize(Path(args.minimize).read_bytes(), args.target)
        dest = args.save or args.minimize + ".min"
        Path(dest).write_bytes(data)
        print(dest)
        return 0
    if args.engine == "atheris":
        return atheris_campaign(args)
    return campaign(args)


if __name__ == "__main__":
    sys.exit(main())
