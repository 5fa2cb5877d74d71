"""``make kernels``: the kernel-dependent tests on several Debian kernels, each in a VM.

For each kernel (5.10, 6.1, 6.12, newest; see vm/fetch.py) this fetches and caches the
Debian packages, boots the kernel with virtme-ng (the host's root file system, read-only;
one result directory shared read-write), runs vm/guest.py inside, and prints one line:

    kernel X: N passed, M failed, K skipped

The exit status is non-zero when any test failed or a VM did not produce a report. KVM is
used when a KVM boot works; otherwise (nested KVM fails on some hosts) qemu's TCG.
docs/kernels.md is regenerated from the results of every kernel that has them (see
vm/table.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fetch
import table

REPO = Path(__file__).resolve().parent.parent

# The kernel-dependent part of the suite, sized for TCG on a busy 2-core machine (Python
# runs 12-40x slower there; building C helpers with gcc takes minutes): the attach kinds
# whose support differs between kernels (kprobes, fentry/fexit/fmod_ret, LSM, iterators,
# struct_ops, freplace, netkit, sockmap, tcx, netfilter, sk_lookup, perf events), the
# kernel refusal errors, BPF tokens in a user namespace (6.9+), the type probes against
# real loads, every map type, map iteration read ahead on a thread, ring buffers read by
# tinybpf's reader (its records, wraps, discards, a concurrent producer, two maps), a perf
# buffer test and kernel BTF. What behaves the same on every kernel (codegen, CLI, docs,
# fuzzing, API shape, most map and buffer semantics, uprobes on gcc-built targets) runs
# natively in make test. Override with --tests (KERNELS_ARGS="--tests ...").
KERNEL_TESTS = (
    "tests/test_attach.py::TestKernelProbes",
    "tests/test_attach.py::TestIterator",
    "tests/test_attach.py::TestPerfEvent",
    "tests/test_attach.py::TestTcx",
    "tests/test_attach.py::TestNetfilter",
    "tests/test_attach.py::TestSkLookup",
    "tests/test_attach2.py",
    "tests/test_kernel_refusals.py",
    "tests/test_introspect.py::TestProbes",
    "tests/test_map_types.py",
    "tests/test_map_readahead.py",
    "tests/test_btf.py::TestVmlinux",
    "tests/test_ringbuf.py::test_large_burst_delivered_complete_and_in_order",
    "tests/test_ringbuf.py::test_batch_cpus_of_a_ring_buffer_name_the_map_each_record_came_from",
    "tests/test_batch_records.py",
    "tests/test_perfbuf.py::test_lost_callback_reports_overflow",
    "tests/test_token.py",
)


def log(msg: str) -> None:
    print(f"kernels: {msg}", file=sys.stderr, flush=True)


def _vng() -> list[str]:
    exe = Path(sys.executable).parent / "vng"
    if not exe.exists():
        raise SystemExit(f"{exe} is missing: run 'make kernels' (it installs virtme-ng)")
    return [str(exe)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # vng runs virtme-run from PATH
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def _boot(img: Path, out: Path, command: str, kvm: bool, timeout: float, append: list[str]) -> int:
    """Boot ``img`` running ``command``; the console goes to out/console.log as it comes.
    Returns the VM's exit status (-1 when it was killed at ``timeout``)."""
    cmd = [*_vng(), "--run", str(img), "--cpus", "2", "--memory", "2G", "--rwdir", str(out)]
    if not kvm:
        cmd.append("--disable-kvm")
    for a in append:
        cmd += ["--append", a]
    cmd += ["--verbose", "--exec", command]
    with open(out / "console.log", "w") as console:
        # its own session: on a timeout the whole group (vng, virtme-run, qemu) is killed
        proc = subprocess.Popen(
            cmd, env=_env(), stdin=subprocess.DEVNULL, stdout=console,
            stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
        )  # fmt: skip
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            console.write(f"\n[timed out after {timeout:.0f}s]\n")
            return -1


def kvm_works(img: Path, scratch: Path) -> bool:
    """Whether a KVM boot works here (TINYBPF_VM_ACCEL=kvm|tcg decides without trying).

    Nested KVM can fail at run time ("emulation failure") although /dev/kvm exists: one
    short boot tells, and the answer is kept for this host boot (scratch/verdict)."""
    choice = os.environ.get("TINYBPF_VM_ACCEL", "auto")
    if choice in ("tcg", "kvm"):
        return choice == "kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    verdict = scratch / "verdict"
    if verdict.exists():
        seen_boot, _, answer = verdict.read_text().partition(" ")
        if seen_boot == boot_id:
            return answer.strip() == "kvm"
    scratch.mkdir(parents=True, exist_ok=True)
    marker = scratch / "kvm-ok"
    marker.unlink(missing_ok=True)
    rc = _boot(img, scratch, f"touch {marker}", True, 60, [])
    ok = rc == 0 and marker.exists()
    verdict.write_text(f"{boot_id} {'kvm' if ok else 'tcg'}\n")
    return ok


def counts(junit: Path) -> dict[str, object]:
    """passed/failed/skipped and each test's outcome from a JUnit XML report."""
    root = ET.parse(junit).getroot()
    tests: dict[str, dict[str, str]] = {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag == "skipped":
                outcome, message = "skipped", child.get("message", "")
            elif child.tag in ("failure", "error"):
                outcome, message = "failed", (child.get("message") or "")[:300]
        tests[name] = {"outcome": outcome, "message": message}
    n = {
        k: sum(1 for t in tests.values() if t["outcome"] == k)
        for k in ("passed", "failed", "skipped")
    }
    return {**n, "tests": tests}


def run_kernel(
    name: str, cache: Path, results: Path, kvm: bool | None, tests: list[str], timeout: float
) -> tuple[dict[str, object], bool | None]:
    base, _, variant = name.partition("+")
    root = fetch.fetch(base, cache)
    img = fetch.image(root)
    if kvm is None:
        kvm = kvm_works(img, results / "kvm-check")
        forced = os.environ.get("TINYBPF_VM_ACCEL") in ("tcg", "kvm")
        why = " (TINYBPF_VM_ACCEL)" if forced else "" if kvm else " (a KVM boot failed here)"
        log(f"accelerator: {'KVM' if kvm else 'TCG'}{why}")
    out = results / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    append = []
    if variant == "bpflsm":
        append.append(f"lsm={table.BPF_LSM_LIST}")
    ipdir = fetch.fetch_iproute2(cache)
    guest = f"{sys.executable} {REPO / 'vm' / 'guest.py'} {out} {ipdir or '-'} {' '.join(tests)}"
    log(f"{name}: booting {img.name} ({'KVM' if kvm else 'TCG'})")
    t0 = time.monotonic()
    rc = _boot(img, out, guest, kvm, timeout, append)
    retried = None
    oops = None if kvm or (out / "junit.xml").exists() else _emulator_oops(out / "console.log")
    if oops is not None:
        # The guest kernel died on a breakpoint trap of its own text patching (static keys,
        # alternatives) with no test report: seen with the newest kernel under TCG's
        # multi-threaded emulation, at boot as well as later. One more boot, said aloud.
        retried = f"guest kernel oops under TCG ({oops}); first console: console.first.log"
        log(f"{name}: {retried}: booting once more")
        shutil.move(out / "console.log", out / "console.first.log")
        for leftover in ("pytest.log", "facts.json"):
            if (out / leftover).exists():
                shutil.move(out / leftover, out / f"{leftover}.first")
        rc = _boot(img, out, guest, kvm, timeout, append)
    wall = time.monotonic() - t0
    res: dict[str, object] = {"kernel": name, "image": img.name, "wall": round(wall), "vm_rc": rc}
    if retried is not None:
        res["retried"] = retried
    res["accel"] = "KVM" if kvm else "TCG"
    if (out / "facts.json").exists():
        res["facts"] = json.loads((out / "facts.json").read_text())
    if (out / "junit.xml").exists():
        res.update(counts(out / "junit.xml"))
    (out / "result.json").write_text(json.dumps(res, indent=1) + "\n")
    return res, kvm


def _emulator_oops(console: Path) -> str | None:
    """The first line of a guest kernel "Oops: int3" in ``console``, or None."""
    try:
        text = console.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if "Oops: int3" in line:
            rip = next((x for x in text.splitlines() if "RIP: " in x), "")
            return (line.split("]", 1)[-1].strip() + " " + rip.split("]", 1)[-1].strip()).strip()
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("kernels", nargs="*", default=["5.10", "6.1", "6.12", "newest"])
    ap.add_argument("--cache", type=Path, default=REPO / ".kernels")
    ap.add_argument("--tests", nargs="*", default=None, help="test files or node ids")
    ap.add_argument("--timeout", type=float, default=2400, help="seconds per VM")
    ap.add_argument("--no-table", action="store_true", help="leave docs/kernels.md alone")
    args = ap.parse_args()
    tests = args.tests or list(KERNEL_TESTS)
    results = args.cache.resolve() / "results"
    kvm: bool | None = None
    t0 = time.monotonic()
    ok = True
    lines = []
    for name in args.kernels:
        try:
            res, kvm = run_kernel(name, args.cache.resolve(), results, kvm, tests, args.timeout)
        except (fetch.FetchError, subprocess.CalledProcessError) as e:
            ok = False
            lines.append(f"kernel {name}: not run: {e}")
            print(lines[-1], flush=True)
            continue
        if "passed" in res:
            line = (
                f"kernel {name}: {res['passed']} passed, {res['failed']} failed, "
                f"{res['skipped']} skipped ({res['image']}, {res['accel']}, {res['wall']} s)"
            )
            if "retried" in res:
                line += f"; retried once: {res['retried']}"
            ok = ok and res["failed"] == 0
        else:
            ok = False
            log_path = results / name / "console.log"
            line = f"kernel {name}: no test report (VM exit {res['vm_rc']}; see {log_path})"
        lines.append(line)
        print(line, flush=True)
    if not args.no_table:
        table.write(results, REPO / "docs" / "kernels.md")
    print("\n".join(lines))
    log(f"done in {time.monotonic() - t0:.0f} s (fetching, booting and testing)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
