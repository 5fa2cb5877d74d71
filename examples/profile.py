#!/usr/bin/env python3
"""profile: sample on-CPU stacks (kernel and user) at a fixed frequency, show the hottest.

Run as root: ``python examples/profile.py [--pid PID] [--seconds N] [--freq HZ] [--top N]``.
It loads examples/build/profile.bpf.o (``tinybpf compile examples/profile.bpf.c -o
examples/build/``), opens a CPU-clock perf event on every CPU, attaches the
SEC("perf_event") program to each and, at the end, names the sampled addresses with
tinybpf.Symbolizer (ELF symbols of the mapped files, /proc/kallsyms for the kernel). With
``--demo`` it builds examples/profile_burn.c with gcc (into a temporary directory), profiles
it while it spins in its function ``burn_cpu`` and checks that ``burn_cpu`` shows up.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import tinybpf

HERE = Path(__file__).resolve().parent


def build_burner(out_dir: Path) -> Path:
    out = out_dir / "profile_burn"
    subprocess.run(
        ["gcc", "-O1", "-fno-omit-frame-pointer", "-o", str(out), str(HERE / "profile_burn.c")],
        check=True,
    )
    return out


def frame_names(sym: tinybpf.Symbolizer, addrs: list[int], pid: int | None) -> tuple[str, ...]:
    """Function names (offsets left out, so samples at any point of a function add up)."""
    out = []
    for addr, s in zip(addrs, sym.resolve_stack(addrs, pid), strict=True):
        if s is None:
            out.append(f"0x{addr:x}")
        elif s.name:
            out.append(s.name + (f" [{s.module}]" if s.module else ""))
        else:
            out.append(str(s))
    return tuple(out)


def report(obj: tinybpf.BpfObject, top: int) -> str:
    """The ``top`` most sampled stacks, symbolized, hottest first."""
    stacks = obj.maps["stacks"]
    sym = tinybpf.Symbolizer()
    folded: Counter[tuple[str, int, tuple[str, ...], tuple[str, ...]]] = Counter()
    for key, n in obj.maps["counts"].items():
        comm = bytes(key.comm).split(b"\0")[0].decode(errors="replace")
        kstack: tuple[str, ...] = ()
        ustack: tuple[str, ...] = ()
        if key.kernel_stack_id >= 0:
            try:
                kstack = frame_names(sym, stacks.stack_trace(key.kernel_stack_id), None)
            except tinybpf.KernelSymbolsRestrictedError:
                kstack = ("[kernel addresses hidden by kptr_restrict]",)
        if key.user_stack_id >= 0:
            ustack = frame_names(sym, stacks.stack_trace(key.user_stack_id), key.pid)
        folded[(comm, key.pid, kstack, ustack)] += n
    total = sum(folded.values())
    lines = [f"{total} samples, {len(folded)} distinct stacks"]
    for (comm, pid, kstack, ustack), n in folded.most_common(top):
        lines.append(f"\n{n:>6} samples ({100 * n / total:.1f}%)  {comm} pid {pid}")
        lines += [f"    {f}" for f in kstack]
        if ustack:
            lines += ["    --"] + [f"    {f}" for f in ustack]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", default=str(HERE / "build" / "profile.bpf.o"))
    ap.add_argument("--pid", type=int, default=0, help="only this process (default: all)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--freq", type=int, default=99, help="samples per second and CPU")
    ap.add_argument("--top", type=int, default=5, help="how many stacks to show")
    ap.add_argument("--demo", action="store_true", help="profile a gcc-built CPU burner")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="tinybpf-profile-")) if args.demo else None
    burner = None
    try:
        pid = args.pid
        if tmp is not None:
            burner = subprocess.Popen(
                [str(build_burner(tmp)), str(args.seconds)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert burner.stdin and burner.stdout
            if burner.stdout.readline() != "ready\n":
                return 1
            pid = burner.pid
        obj = tinybpf.open(args.object)
        obj.globals["target_pid"] = pid  # const volatile: set before load
        obj.load()
        with obj:
            prog = obj.program("do_sample")
            # each link owns its perf event fd and closes it when destroyed
            links = [
                prog.attach_perf_event(ev.detach_fd())
                for ev in tinybpf.perf_event_open_cpu_clock(args.freq)
            ]
            try:
                who = f"pid {pid}" if pid else "all processes"
                print(f"sampling {who} at {args.freq} Hz for {args.seconds:g}s...", flush=True)
                if burner is not None:
                    burner.stdin.write("go\n")  # type: ignore[union-attr]
                    burner.stdin.flush()  # type: ignore[union-attr]
                    burner.stdout.readline()  # type: ignore[union-attr]  # "done": it burned
                else:
                    try:
                        time.sleep(args.seconds)
                    except KeyboardInterrupt:
                        pass
            finally:
                for link in links:
                    link.destroy()
            text = report(obj, args.top)  # while the burner still runs: its maps are readable
        print(text)
    finally:
        if burner is not None:
            burner.stdin.close()  # type: ignore[union-attr]
            try:
                burner.wait(timeout=5)
            except subprocess.TimeoutExpired:
                burner.kill()
                burner.wait()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.demo:
        return 0 if "burn_cpu" in text else 1
    return 0 if not text.startswith("0 samples") else 1


if __name__ == "__main__":
    sys.exit(main())
