"""First-generation programs run unchanged (issue 16).

The first part runs the Python examples of the first generation's README and GUIDE (tinybpf
0.3, the ctypes binding) verbatim against fixtures in tests/bpf (firstgen_*.bpf.c declare
the maps and structs those examples use). Only the object path is adapted: "program.bpf.o"
becomes a fixture. Names an example uses without defining them (``obj``, ``BpfRingBuffer``,
``pid``, a ``handle`` callback) are given to it, as the text around it does. Each example
is followed by the real effect it is meant to have: events the fixture's program recorded,
samples polled from a ring or perf buffer.

The second part has one test per first-generation behaviour restored by issue 16: typed()
views and validate_field_names=False, run-elevated -v, the docker-* commands, the error
prefixes and libbpf_version().
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import bpf_obj
from helpers.kernel import (
    kprobe_unavailable_reason,
    tracepoint_unavailable_reason,
    uprobe_unavailable_reason,
)

import tinybpf
from tinybpf import BpfError, BpfPerfBuffer, BpfRingBuffer

# --- the first generation's examples, verbatim ---------------------------------------------

README_USAGE = """\
import tinybpf

with tinybpf.load("program.bpf.o") as obj:
    # Attach a program
    link = obj.program("trace_exec").attach_kprobe("do_execve")

    # Read from a map
    for key, value in obj.maps["events"].items():
        print(key, value)
"""

README_TYPED = """\
import ctypes

class Event(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint32), ("comm", ctypes.c_char * 16)]

for key, event in obj.maps["events"].typed(value=Event).items():
    print(f"PID {event.pid}: {event.comm.decode()}")
"""

README_MAP_ACCESS = """\
# int/float auto-convert when BTF metadata is available
counters = obj.maps["counters"]
value = counters[42]  # int

# Use .typed() for ctypes.Structure
events = obj.maps["events"].typed(value=Event)
event = events[pid]  # Event instance
"""

README_RING = """\
rb = BpfRingBuffer(obj.maps["events"], callback=lambda data: print(len(data)))
rb.poll(timeout_ms=1000)
"""

README_RING_TYPED = """\
class Event(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint32), ("comm", ctypes.c_char * 16)]

def handle(event: Event):
    print(event.pid)

rb = BpfRingBuffer(obj.maps["events"], handle, event_type=Event)
"""

README_PERF = """\
pb = BpfPerfBuffer(obj.maps["events"], sample_callback=lambda cpu, data: print(cpu, len(data)))
pb.poll(timeout_ms=1000)
"""

README_PERF_TYPED = """\
class Event(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint32), ("comm", ctypes.c_char * 16)]

def handle(cpu: int, event: Event) -> None:
    print(cpu, event.pid)

pb = BpfPerfBuffer(obj.maps["events"], handle, event_type=Event)
"""

GUIDE_LOAD_DIAGNOSTICS = """\
try:
    obj = tinybpf.load("program.bpf.o")
except tinybpf.BpfError as e:
    if e.libbpf_log:
        print("libbpf diagnostics:")
        print(e.libbpf_log)
"""

GUIDE_DEBUGGING = """\
try:
    obj = tinybpf.load("program.bpf.o")
except tinybpf.BpfError as e:
    print(f"Error: {e}")
    if e.libbpf_log:
        print("\\nlibbpf output:")
        print(e.libbpf_log)
"""

GUIDE_CONFIG = """\
class Config(ctypes.Structure):
    _fields_ = [
        ("target_pid", ctypes.c_uint32),
        ("enabled", ctypes.c_uint8),
    ]

# Write config to single-entry array map at index 0
config_map = obj.maps["config"].typed(key=ctypes.c_uint32, value=Config)
cfg = Config(target_pid=1234, enabled=1)
config_map[0] = cfg

# Read it back
current = config_map[0]
print(f"Filtering PID: {current.target_pid}")
"""

GUIDE_PORT_STATS = """\
class PortStats(ctypes.Structure):
    _fields_ = [
        ("connections", ctypes.c_uint64),
        ("bytes_sent", ctypes.c_uint64),
    ]

stats_map = obj.maps["port_stats"].typed(key=ctypes.c_uint16, value=PortStats)
for port, stats in stats_map.items():
    print(f"Port {port}: {stats.connections} connections")
"""

GUIDE_EVENT = """\
# Python side
class Event(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("comm", ctypes.c_char * 16),
    ]
"""

GUIDE_ANCHOR = """\
obj.register_type("event", Event)  # Validates against BTF
rb = BpfRingBuffer(obj.maps["events"], handle, event_type=Event)
"""

GUIDE_MULTIPLE = """\
EVENT_EXEC, EVENT_EXIT = 1, 2

class ExecEvent(ctypes.Structure):
    _fields_ = [
        ("timestamp", ctypes.c_uint64),
        ("event_type", ctypes.c_uint8),
        ("_pad", ctypes.c_uint8 * 3),
        ("pid", ctypes.c_uint32),
        ("comm", ctypes.c_char * 16),
    ]

class ExitEvent(ctypes.Structure):
    _fields_ = [
        ("timestamp", ctypes.c_uint64),
        ("event_type", ctypes.c_uint8),
        ("_pad", ctypes.c_uint8 * 3),
        ("pid", ctypes.c_uint32),
        ("exit_code", ctypes.c_int32),
    ]

def handle(data: bytes):
    event_type = data[8]  # Read discriminator at known offset
    if event_type == EVENT_EXEC:
        event = ExecEvent.from_buffer_copy(data)
    elif event_type == EVENT_EXIT:
        event = ExitEvent.from_buffer_copy(data)

rb = BpfRingBuffer(obj.maps["events"], handle)
"""

GUIDE_SEPARATE = """\
rb = BpfRingBuffer()
rb.add(obj.maps["exec_events"], handle_exec, event_type=ExecEvent)
rb.add(obj.maps["exit_events"], handle_exit, event_type=ExitEvent)
"""


def run(code: str, ns: dict[str, Any], obj_path: Path | None = None) -> str:
    """Run an example in ``ns`` (the object path adapted); returns what it printed."""
    if obj_path is not None:
        code = code.replace('"program.bpf.o"', repr(str(obj_path)))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<first-generation example>", "exec"), ns)
    return out.getvalue()


def namespace(**names: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "__name__": "firstgen_example",
        "tinybpf": tinybpf,
        "ctypes": ctypes,
        "BpfRingBuffer": BpfRingBuffer,
        "BpfPerfBuffer": BpfPerfBuffer,
    }
    return {**base, **names}


def comm() -> str:
    """The comm the kernel reports for this thread (bpf_get_current_comm)."""
    return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().rstrip("\n")


@contextlib.contextmanager
def getppid_in_background() -> Iterator[None]:
    """Call getppid(2) every 10 ms from another thread of this process until the end."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            os.getppid()
            stop.wait(0.01)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(5)


@pytest.fixture
def maps_obj() -> Iterator[tinybpf.BpfObject]:
    with tinybpf.load(bpf_obj("firstgen_maps")) as obj:
        yield obj


def _targeted(name: str) -> Iterator[tinybpf.BpfObject]:
    with tinybpf.load(bpf_obj(name)) as obj:
        obj.maps["target"][0] = os.getpid()
        with obj.program("emit").attach():
            yield obj


@pytest.fixture
def ring_obj() -> Iterator[tinybpf.BpfObject]:
    yield from _targeted("firstgen_ring")


@pytest.fixture
def perf_obj() -> Iterator[tinybpf.BpfObject]:
    yield from _targeted("firstgen_perf")


@pytest.fixture
def guide_obj() -> Iterator[tinybpf.BpfObject]:
    yield from _targeted("firstgen_guide")


# --- README ----------------------------------------------------------------------------------


@pytest.mark.root
def test_readme_usage_attaches_a_kprobe_and_reads_a_map():
    reason = kprobe_unavailable_reason()
    if reason:
        pytest.skip(reason)
    ns = namespace()
    run(README_USAGE, ns, bpf_obj("firstgen_maps"))
    assert ns["obj"].name == "firstgen_maps"


@pytest.mark.root
def test_readme_typed_map_examples_read_what_the_program_recorded(maps_obj):
    """README: typed(value=Event) over a hash map, auto-converted ints, events[pid]. The
    GUIDE's config map example writes the filter the program reads."""
    ns = namespace(obj=maps_obj)
    assert run(GUIDE_CONFIG, ns) == "Filtering PID: 1234\n"
    pid = os.getpid()
    ns["config_map"][0] = ns["Config"](target_pid=pid, enabled=1)
    with maps_obj.program("record").attach():
        for _ in range(3):
            os.getpid()
    out = run(README_TYPED, ns)
    assert out == f"PID {pid}: {comm()}\n"
    ns["pid"] = pid
    run(README_MAP_ACCESS, ns)
    assert type(ns["value"]) is int and ns["value"] == 3
    assert isinstance(ns["event"], ns["Event"]) and ns["event"].pid == pid


@pytest.mark.root
def test_guide_port_stats_iteration(maps_obj):
    maps_obj.maps["port_stats"][struct.pack("=H", 443)] = struct.pack("=QQ", 3, 1500)
    ns = namespace(obj=maps_obj)
    assert run(GUIDE_PORT_STATS, ns) == "Port 443: 3 connections\n"


@pytest.mark.root
def test_readme_ring_buffer_examples(ring_obj):
    ns = namespace(obj=ring_obj)
    os.getppid()
    assert run(README_RING, ns) == "20\n"
    ns["rb"].close()
    run(README_RING_TYPED, ns)
    os.getppid()
    with ns["rb"]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert ns["rb"].poll(timeout_ms=1000) == 1
    assert out.getvalue() == f"{os.getpid()}\n"


@pytest.mark.root
def test_readme_perf_buffer_examples(perf_obj):
    ns = namespace(obj=perf_obj)
    with getppid_in_background():
        out = run(README_PERF, ns)
    ns["pb"].close()
    cpu, size = out.splitlines()[0].split()
    assert 0 <= int(cpu) < os.cpu_count() * 64 and int(size) >= 20  # type: ignore[operator]
    run(README_PERF_TYPED, ns)
    with ns["pb"], getppid_in_background():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            ns["pb"].poll(timeout_ms=1000)
    assert out.getvalue().splitlines()[0].split()[1] == str(os.getpid())


# --- GUIDE -----------------------------------------------------------------------------------


@pytest.mark.root
@pytest.mark.parametrize("example", [GUIDE_LOAD_DIAGNOSTICS, GUIDE_DEBUGGING])
def test_guide_load_failure_examples_print_libbpf_diagnostics(example):
    out = run(example, namespace(), bpf_obj("prog_invalid"))
    assert "libbpf diagnostics:" in out or "\nlibbpf output:\n" in out
    assert "out_of_bounds" in out  # the verifier's complaint about the program


@pytest.mark.root
def test_guide_event_struct_and_btf_anchoring(guide_obj):
    ns = namespace(obj=guide_obj, handle=lambda event: None)
    run(GUIDE_EVENT, ns)
    assert ctypes.sizeof(ns["Event"]) == 24
    run(GUIDE_ANCHOR, ns)
    with ns["rb"]:
        assert guide_obj.lookup_type("event") is ns["Event"]


@pytest.mark.root
def test_guide_multiple_event_types_then_separate_buffers(guide_obj):
    ns = namespace(obj=guide_obj)
    run(GUIDE_MULTIPLE, ns)
    os.getppid()
    with ns["rb"]:
        assert ns["rb"].poll(timeout_ms=1000) == 2  # an exec and an exit event, decoded
    execs: list[Any] = []
    exits: list[Any] = []
    ns.update(handle_exec=execs.append, handle_exit=exits.append)
    run(GUIDE_SEPARATE, ns)
    with ns["rb"]:
        assert ns["rb"].poll(timeout_ms=1000) == 2  # this one getppid() filled both rings
    assert [e.pid for e in execs] == [os.getpid()] and execs[0].comm.decode() == comm()
    assert [(e.pid, e.exit_code) for e in exits] == [(os.getpid(), -7)]


# --- typed(): deliberate views, and validate_field_names=False (sizes and offsets) ------------


class Count(ctypes.Structure):
    _fields_ = [("n", ctypes.c_uint64)]


@pytest.mark.root
def test_typed_signed_view_over_unsigned_btf_ints(obj_path):
    """typed(key=c_int32, value=c_int64) over __u32 -> __u64 reads and writes signed."""
    with tinybpf.load(obj_path("maps")) as obj:
        m = obj.map("counts")
        view = m.typed(key=ctypes.c_int32, value=ctypes.c_int64)
        view[-1] = -5
        assert view[-1] == -5 and dict(view.items()) == {-1: -5}
        assert m[2**32 - 1] == 2**64 - 5  # the same bytes, read through the BTF types


@pytest.mark.root
@pytest.mark.parametrize("names", [True, False])
def test_typed_one_field_struct_over_a_scalar_value(maps_obj, names):
    """A one-field ctypes.Structure over a __u64 value reads what the program counted."""
    maps_obj.maps["config"][0] = struct.pack("=IB3x", os.getpid(), 1)
    with maps_obj.program("record").attach():
        for _ in range(4):
            os.getpid()
    view = maps_obj.maps["counters"].typed(value=Count, validate_field_names=names)
    assert isinstance(view[42], Count) and view[42].n == 4
    view[7] = Count(9)
    assert maps_obj.maps["counters"][7] == 9


@pytest.mark.root
def test_typed_views_still_refuse_another_size(maps_obj):
    class Narrow(ctypes.Structure):
        _fields_ = [("n", ctypes.c_uint32)]

    counters = maps_obj.maps["counters"]
    for bad in (ctypes.c_int32, Narrow):
        for names in (True, False):
            with pytest.raises(tinybpf.BtfValidationError, match=r"^Size mismatch"):
                counters.typed(value=bad, validate_field_names=names)


class Renamed(ctypes.Structure):
    """struct rec {__u32 id; __s32 delta; __u64 ts; char comm[16];}: renamed and retyped."""

    _fields_ = [
        ("ident", ctypes.c_int32),
        ("change", ctypes.c_uint32),
        ("when", ctypes.c_double),
        ("name", ctypes.c_uint8 * 16),
    ]


class Shifted(ctypes.Structure):
    """The size and field count of struct rec, but 'change' at offset 8 instead of 4."""

    _fields_ = [
        ("ident", ctypes.c_uint32),
        ("change", ctypes.c_uint64),
        ("when", ctypes.c_uint64),
        ("name", ctypes.c_char * 8),
    ]


@pytest.mark.root
def test_typed_validate_field_names_false_checks_sizes_and_offsets_only(obj_path):
    with tinybpf.load(obj_path("maps")) as obj:
        m = obj.map("struct_map")
        with pytest.raises(tinybpf.BtfValidationError):
            m.typed(value=Renamed)  # strict by default: names and field types
        view = m.typed(value=Renamed, validate_field_names=False)
        view[1] = Renamed(ident=-2, change=3)
        assert (view[1].ident, view[1].change) == (-2, 3)
        assert (m[1].id, m[1].delta) == (2**32 - 2, 3)
        with pytest.raises(tinybpf.BtfValidationError, match=r"^Field 'change' at offset 8"):
            m.typed(value=Shifted, validate_field_names=False)


# --- the command line ----------------------------------------------------------------------


def tinybpf_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinybpf", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.root
def test_run_elevated_verbose_prints_the_command(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint(sys.argv[1:])\n")
    r = tinybpf_cli("run-elevated", "-v", str(script), "a", "-v")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "['a', '-v']\n"
    assert r.stderr == f"Running: {sys.executable} {script} a -v\n"


@pytest.mark.parametrize(
    ("args", "suggested"),
    [
        (["docker-compile", "prog.bpf.c"], "tinybpf compile prog.bpf.c"),
        (["docker-compile", "-v", "-o", "build/", "a.bpf.c"], "tinybpf compile -o build/ a.bpf.c"),
        (["docker-pull"], "tinybpf compile SRC.bpf.c"),
    ],
)
def test_docker_commands_answer_with_their_replacement(args, suggested):
    r = tinybpf_cli(*args)
    assert r.returncode == 1
    assert r.stderr.startswith(f"Error: 'tinybpf {args[0]}' was replaced by 'tinybpf compile'")
    assert suggested in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


# --- error prefixes --------------------------------------------------------------------------


def test_libbpf_version_has_the_first_generation_format():
    assert tinybpf.libbpf_version() == "v" + ".".join(tinybpf.libbpf_release().split(".")[:2])


@pytest.fixture
def attach_tp(obj_path) -> Iterator[tinybpf.BpfObject]:
    with tinybpf.load(obj_path("attach_tp")) as obj:
        yield obj


def _prefix(excinfo: pytest.ExceptionInfo[BpfError]) -> str:
    return excinfo.value.message.split(" failed", 1)[0]


@pytest.mark.root
def test_attach_kprobe_error_prefix(obj_path):
    reason = kprobe_unavailable_reason()
    func = "tinybpf_no_such_function" if reason is None else "do_nanosleep"
    with tinybpf.load(obj_path("prog_trace")) as obj:
        prog = next(p for p in obj.programs.values() if p.type == tinybpf.BpfProgType.KPROBE)
        for retprobe in (False, True):
            with pytest.raises(BpfError) as ei:
                prog.attach_kprobe(func, retprobe=retprobe)
            assert _prefix(ei) == f"attach kprobe to '{func}'"


@pytest.mark.root
def test_attach_tracepoint_error_prefixes(obj_path):
    if tracepoint_unavailable_reason("syscalls", "sys_enter_getpid"):
        pytest.skip(tracepoint_unavailable_reason("syscalls", "sys_enter_getpid"))
    with tinybpf.load(obj_path("prog_trace")) as obj:
        tp = next(p for p in obj.programs.values() if p.type == tinybpf.BpfProgType.TRACEPOINT)
        with pytest.raises(BpfError) as ei:
            tp.attach_tracepoint("syscalls", "tinybpf_no_such_tp")
        assert _prefix(ei) == "attach tracepoint to 'syscalls/tinybpf_no_such_tp'"
        raw = next(p for p in obj.programs.values() if p.type == tinybpf.BpfProgType.RAW_TRACEPOINT)
        with pytest.raises(BpfError) as ei:
            raw.attach_raw_tracepoint("tinybpf_no_such_tp")
        assert _prefix(ei) == "attach raw tracepoint to 'tinybpf_no_such_tp'"


@pytest.mark.root
def test_attach_cgroup_error_prefixes(obj_path, tmp_path):
    with tinybpf.load(obj_path("cgroup_sock")) as obj:
        prog = obj.program("count_sock")
        with pytest.raises(BpfError) as ei:
            prog.attach_cgroup(tmp_path)  # a directory, not a cgroup
        assert _prefix(ei) == f"attach cgroup to '{tmp_path}'"
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            with pytest.raises(BpfError) as ei:
                prog.attach_cgroup(fd)
            assert _prefix(ei) == f"attach cgroup to fd {fd}"
        finally:
            os.close(fd)


@pytest.mark.root
def test_attach_uprobe_error_prefix_uses_path_plus_offset(obj_path):
    reason = uprobe_unavailable_reason()
    if reason:
        pytest.skip(reason)
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()  # a pid that no longer exists: perf_event_open fails with ESRCH
    with tinybpf.load(obj_path("attach_uprobe")) as obj:
        prog = next(p for p in obj.programs.values() if p.type == tinybpf.BpfProgType.KPROBE)
        for retprobe in (False, True):
            with pytest.raises(BpfError) as ei:
                prog.attach_uprobe("/bin/true", 0, pid=dead.pid, retprobe=retprobe)
            assert _prefix(ei) == "attach uprobe to '/bin/true+0'"


@pytest.mark.root
def test_attach_xdp_error_prefix(obj_path):
    with tinybpf.load(obj_path("xdp_count")) as obj:
        with pytest.raises(BpfError) as ei:
            obj.program("xdp_count_udp").attach_xdp(987654)
        assert _prefix(ei) == "attach XDP to interface 987654"
