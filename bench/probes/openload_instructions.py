"""Probe: user-space instructions per open + load + close cycle (valgrind's callgrind),
libbpf through the extension vs tinybpf.load(). Instruction counts do not move with the
machine's load the way times do. Each variant runs twice (200 and 400 cycles after a
warm-up) and the difference over 200 is the per-cycle count. Needs valgrind; from the
repo root after bench/run.py built bench/build:

    .venv/bin/python bench/probes/openload_instructions.py
"""

import re
import subprocess
import sys
import tempfile

CHILD = """
import sys, tinybpf
from tinybpf._core import ffi, lib
p = "bench/build/small.bpf.o"; pb = p.encode()
def raw():
    o = lib.bpf_object__open_file(pb, ffi.NULL); lib.bpf_object__load(o); lib.bpf_object__close(o)
def public():
    tinybpf.load(p).close()
f = raw if sys.argv[1] == "raw" else public
for _ in range(5 + int(sys.argv[2])):
    f()
"""


def instructions(variant: str, cycles: int) -> int:
    with tempfile.NamedTemporaryFile(suffix=".out") as out:
        p = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out.name}",
                *(sys.executable, "-c", CHILD, variant, str(cycles)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    m = re.search(r"Collected : (\d+)", p.stderr)
    assert m, p.stderr
    return int(m.group(1))


for variant in ("raw", "public"):
    per = (instructions(variant, 400) - instructions(variant, 200)) / 200
    print(f"{variant:7s} {per:9.0f} instructions per cycle")
