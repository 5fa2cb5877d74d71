"""``tinybpf gen``: typed Python modules generated from an object's BTF.

The generated modules are checked by ``mypy --strict`` (also against code that uses them
right and wrong), imported, compared with the types tinybpf generates at run time, and
used on loaded objects. The last part runs examples/opensnoop.py, the libbpf-tools-style
tool of the issue: rodata filters, resized maps and a ring buffer of a struct with arrays
and a nested struct, printed with field names.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import bpf_obj

import tinybpf
from tinybpf.codegen import generate_module

root = pytest.mark.root

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
EXAMPLES = REPO / "examples"

try:
    import mypy  # noqa: F401

    HAVE_MYPY = True
except ImportError:
    HAVE_MYPY = False
needs_mypy = pytest.mark.skipif(not HAVE_MYPY, reason="mypy is not installed")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    if (SRC / "tinybpf" / "__init__.py").exists() and not os.environ.get("TINYBPF_TEST_WHEEL"):
        env["MYPYPATH"] = str(SRC)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def run_mypy(cwd: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cwd / ".mypy_cache"), *files],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gendir(tmp_path_factory) -> Path:
    """Generated modules of the fixtures (and of the example when clang can build it)."""
    out = tmp_path_factory.mktemp("gen")
    for name in ("types_events", "config_filter", "types_names"):
        (out / f"{name}_skel.py").write_text(generate_module(bpf_obj(name)))
    # every named type, kernel ones from vmlinux.h included (task_struct & co, via CO-RE)
    text = generate_module(bpf_obj("config_filter"), "ConfigFilterAll", all_types=True)
    (out / "config_filter_all_skel.py").write_text(text)
    clang = shutil.which("clang")
    if clang:
        obj = out / "opensnoop.bpf.o"
        subprocess.run(
            [sys.executable, "-m", "tinybpf", "compile", str(EXAMPLES / "opensnoop.bpf.c"),
             "-o", str(obj)],
            check=True,
            env=_env(),
            timeout=300,
        )  # fmt: skip
        (out / "opensnoop_skel.py").write_text(generate_module(obj))
    return out


@pytest.fixture(scope="module")
def te(gendir) -> ModuleType:
    return import_file(gendir / "types_events_skel.py")


@pytest.fixture(scope="module")
def names(gendir) -> ModuleType:
    return import_file(gendir / "types_names_skel.py")


@pytest.fixture(scope="module")
def cf(gendir) -> ModuleType:
    return import_file(gendir / "config_filter_skel.py")


# --- mypy -----------------------------------------------------------------------------------------

USAGE = """
from __future__ import annotations

import tinybpf
from types_events_skel import Bits, Event, OpKind, StatValue, TaskId, TypesEventsObject

def use(skel: TypesEventsObject) -> None:
    pid: int = skel.globals.target_pid
    skel.globals.target_pid = pid + 1
    op: OpKind = skel.globals.want_op
    skel.globals.want_op = OpKind.TOP_EXEC
    name: bytes = skel.globals.name
    skel.globals.name = "str is accepted"
    arr: list[int] = skel.globals.arr
    grid: list[list[int]] = skel.globals.grid
    tasks: list[TaskId] = skel.globals.tasks
    task: TaskId = skel.globals.last_task
    flag: bool = skel.globals.flag
    ratio: float = skel.globals.ratio
    stats: tinybpf.BpfMap[TaskId, StatValue] = skel.stats
    for key, value in stats.items():
        count: int = value.count
        kind: int = value.flags.kind
        value.flags.small = -1
        comm: bytes = value.comm
        print(key.pid, count, kind, comm, op, name, arr, grid, tasks, task, flag, ratio)
    prog: tinybpf.BpfProgram = skel.record
    skel.op_counts[1] = 2
    ev = Event()
    ev.task.pid = 1
    first: int = ev.args[0]
    lo: int = skel.globals.last_word.lo
    print(prog, first, lo, Bits().rest)
"""

MISUSE = """
from __future__ import annotations

from types_events_skel import Event, TaskId, TypesEventsObject

def misuse(skel: TypesEventsObject) -> None:
    skel.globals.target_pid = "1"
    ev: Event = skel.globals.last_task
    skel.stats[1] = skel.stats[TaskId()]
    skel.no_such_map.max_entries = 1
    e = Event()
    e.task.pid = b"x"
    e.comm = 1
"""


@needs_mypy
class TestMypy:
    def test_generated_modules_pass_mypy_strict(self, gendir):
        files = sorted(p.name for p in gendir.glob("*_skel.py"))
        (gendir / "usage.py").write_text(USAGE)
        r = run_mypy(gendir, *files, "usage.py")
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"no issues found in {len(files) + 1} source files" in r.stdout

    def test_mypy_knows_the_shape(self, gendir):
        (gendir / "misuse.py").write_text(MISUSE)
        r = run_mypy(gendir, "misuse.py")
        assert r.returncode == 1
        errors = [line for line in r.stdout.splitlines() if ": error:" in line]
        lines = sorted({int(line.split(":")[1]) for line in errors})
        # every misuse is reported, nothing else (ctypes' __getattr__ makes unknown field
        # names Any for mypy: typeshed's ctypes stubs, not something a module can change)
        assert lines == [7, 8, 9, 10, 12, 13], r.stdout


# --- the generated module -------------------------------------------------------------------------


class TestGeneratedModule:
    def test_cli_writes_the_module(self, tmp_path):
        out = tmp_path / "skel.py"
        r = subprocess.run(
            [sys.executable, "-m", "tinybpf", "gen", str(bpf_obj("config_filter")),
             "-o", str(out), "--name", "cfg"],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        mod = import_file(out)
        assert mod.CfgObject.__name__ == "CfgObject" and mod.CfgGlobals
        assert str(bpf_obj("config_filter").resolve()) == mod.DEFAULT_PATH

    def test_output_is_deterministic(self):
        assert generate_module(bpf_obj("types_events")) == generate_module(bpf_obj("types_events"))

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            generate_module(tmp_path / "nope.bpf.o")

    def test_dependencies_come_first(self, gendir):
        text = (gendir / "types_events_skel.py").read_text()

        def pos(cls: str) -> int:
            return text.index(f"\nclass {cls}(")

        assert pos("TaskId") < pos("Event") and pos("Bits") < pos("Event")
        assert pos("Value") < pos("Event") and pos("PointT") < pos("Event")
        assert pos("Bits") < pos("StatValue")
        assert pos("WordAnon0Anon0") < pos("WordAnon0") < pos("Word")

    def test_exports(self, te):
        assert te.BTF_TYPES["event"] is te.Event
        assert te.BTF_TYPES["point_t"] is te.PointT  # typedef'd anonymous struct
        assert te.BTF_TYPES["op_kind"] is te.OpKind
        assert set(te.__all__) >= {"Event", "TaskId", "TypesEventsObject", "TypesEventsGlobals"}

    def test_kconfig_externs_are_read_only(self, cf):
        prop = cf.ConfigFilterGlobals.__dict__["CONFIG_TINYBPF_TEST_KNOB"]
        assert prop.fget is not None and prop.fset is None
        assert cf.ConfigFilterGlobals.__dict__["target_pid"].fset is not None

    def test_all_types_follow_btf_layouts(self, gendir):
        mod = import_file(gendir / "config_filter_all_skel.py")
        assert "task_struct" in mod.BTF_TYPES
        checked = 0
        with tinybpf.open(bpf_obj("config_filter")) as obj:
            for cname, cls in mod.BTF_TYPES.items():
                if not issubclass(cls, (ctypes.Structure, ctypes.Union)):
                    continue
                bt = obj.btf.find_struct(cname)
                assert ctypes.sizeof(cls) == bt.size, cname
                inst = cls.from_buffer_copy(bytes(range(256)) * (bt.size // 256 + 1), 0)
                values = inst.to_dict()  # every visible member is readable
                assert list(values) == list(cls._tinybpf_fields_)
                for f in bt.fields:
                    if f.name and not f.bitfield_size and f.name.isidentifier():
                        assert getattr(cls, f.name).offset == f.offset, (cname, f.name)
                checked += 1
        assert checked > 50

    def test_only_types_the_object_uses_by_default(self, te):
        assert "trace_event_raw_sys_enter" not in te.BTF_TYPES
        text = generate_module(bpf_obj("types_events"), all_types=True)
        assert "class Event(" in text  # all_types adds unused named types, keeps these

    def test_layouts_match_btf_and_the_runtime_types(self, te):
        with tinybpf.open(bpf_obj("types_events")) as obj:
            for cname, cls in te.BTF_TYPES.items():
                if not issubclass(cls, (ctypes.Structure, ctypes.Union)):
                    continue
                bt = obj.btf.find_struct(cname)
                assert ctypes.sizeof(cls) == bt.size, cname
                for f in bt.fields:
                    if f.name and not f.bitfield_size:
                        assert getattr(cls, f.name).offset == f.offset, (cname, f.name)
                rt = obj.btf.ctype(cname)
                assert ctypes.sizeof(rt) == ctypes.sizeof(cls)
                assert cls._tinybpf_fields_ == rt._tinybpf_fields_

    def test_values_match_the_runtime_types(self, te):
        data = bytes(range(1, 137))
        with tinybpf.open(bpf_obj("types_events")) as obj:
            for cname in ("event", "stat_value", "bits", "task_id", "value", "point_t"):
                mine = te.BTF_TYPES[cname].from_buffer_copy(
                    data[: ctypes.sizeof(te.BTF_TYPES[cname])]
                )
                rt = obj.btf.ctype(cname).from_buffer_copy(bytes(mine))
                assert mine.to_dict() == rt.to_dict(), cname

    def test_anonymous_members_and_bitfields(self, te):
        w = te.Word.from_buffer_copy((0xFFFFF123).to_bytes(4, "little") + bytes([5, 0, 6, 0]))
        assert (w.raw, w.lo, w.hi, w.a, w.b) == (0xFFFFF123, 0x123, 0xFFFFF, 5, 6)
        assert repr(w) == "Word(raw=4294963491, lo=291, hi=1048575, a=5, b=6)"
        w.lo = 0xABC
        assert w.raw == 0xFFFFFABC
        # own bitfields next to an anonymous member with bitfields of its own
        m = te.Mixed.from_buffer_copy(bytes([0x53, 0, 0, 0, 1, 0xEF, 0xCD, 0xAB]))
        assert (m.a, m.b, m.x, m.lo) == (3, 5, 0xABCDEF01, 1)

    def test_bitfields_are_typed_properties(self, te):
        b = te.Bits(after=2)
        b.small = -3
        b.rest = 0xFFFFFF
        assert (b.small, b.rest, b.after, b.kind) == (-3, 0xFFFFFF, 2, 0)
        assert isinstance(te.Bits.__dict__["small"], property)

    def test_repr_and_dicts(self, te):
        ev = te.Event.from_dict({"task": {"pid": 4}, "comm": "sh", "flags": {"small": -1}})
        text = repr(ev)
        assert text.startswith("Event(task=TaskId(pid=4, tid=0), op=0, flags=Bits(")
        assert "comm=b'sh'" in text and "small=-1" in text
        assert te.Event.from_dict({"task": {"pid": 4}}).to_dict()["task"] == {"pid": 4, "tid": 0}

    def test_enums(self, te):
        assert te.OpKind.TOP_WRITE == 2 and te.OpKind(4) is te.OpKind.TOP_EXEC
        unknown = te.OpKind(7)
        assert unknown == 7 and unknown.name == "UNKNOWN_7"
        assert te.Level.TLVL_HIGH == 1

    def test_globals_before_load(self, te):
        with te.TypesEventsObject.open() as skel:
            assert skel.loaded is False
            g = skel.globals
            assert g.want_op is te.OpKind.TOP_READ
            assert (g.neg, g.greeting, g.prefix, g.ratio, g.precise) == (
                -5,
                b"hi",
                b"ev",
                1.5,
                -2.25,
            )
            g.arr = [4, 3]
            assert g.arr == [4, 3, 0, 0]
            g.grid = [[1, 2], [3, 4]]
            assert g.grid == [[1, 2], [3, 4]]
            g.tasks = [te.TaskId(pid=9)]
            assert [t.pid for t in g.tasks] == [9, 0]
            assert isinstance(g.tasks[0], te.TaskId)
            g.last_word = te.Word(raw=0x1001)
            assert (g.last_word.lo, g.last_word.hi) == (1, 1)
            g.name = "abc"
            assert g.name == b"abc"
            with pytest.raises(ValueError):
                g.arr = [1, 2, 3, 4, 5]

    def test_open_from_bytes_and_options(self, te):
        data = bpf_obj("types_events").read_bytes()
        with te.TypesEventsObject.open(data, object_name="skel_mem") as skel:
            assert skel.obj.name == "skel_mem"


class TestNames:
    def test_keywords_and_mangled_names(self, names):
        k = names.Keywords()
        k.from_, k.lambda_, k.None_ = 1, 2, 3
        k.in_, k.is_, k.flags_, k.reserved_ = 4, 5, 6, 7
        assert (getattr(k, "from"), getattr(k, "in"), getattr(k, "__flags")) == (1, 4, 6)
        assert k.to_dict() == {
            "from": 1,
            "lambda": 2,
            "None": 3,
            "in": 4,
            "is": 5,
            "__flags": 6,
            "__reserved": 7,
            "bytes": 0,
            "str": "",  # a char array: str in to_dict()
            "ctypes": 0,
        }
        assert repr(k).startswith("Keywords(from=1, lambda=2, None=3, in=4, is=5, __flags=6")

    def test_builtin_and_module_names(self, names):
        k = names.Keywords(bytes=5)
        k.str = b"ok"
        k.ctypes_ = 9
        assert (k.bytes, k.str, k.ctypes) == (5, b"ok", 9)

    def test_class_name_clash_with_the_wrapper(self, names):
        assert names.TypesNamesObject.__name__ == "TypesNamesObject"
        assert names.BTF_TYPES["types_names_object"] is names.TypesNamesObject2

    def test_enum_member_names(self, names):
        w = names.PyWords
        assert (w.True_, w.False_, w.None_value, w.V_private_value, w.value_) == (1, 0, 5, 2, 3)

    def test_member_names_of_the_wrappers(self, names):
        g = names.TypesNamesGlobals
        for attr in ("pass_", "yield_", "ctypes_", "bytes_", "secret", "word", "kw", "clash"):
            assert isinstance(g.__dict__[attr], property), attr
        w = names.TypesNamesObject
        for attr in ("load_", "globals_", "lambda_"):
            assert isinstance(w.__dict__[attr], property), attr
        assert callable(w.load) and callable(w.open)


# --- generated wrappers on loaded objects ---------------------------------------------------------


@root
class TestRuntime:
    def test_configure_load_and_read_typed_globals(self, te):
        with te.TypesEventsObject.open() as skel:
            skel.globals.target_pid = os.getpid()
            skel.globals.want_op = te.OpKind.TOP_WRITE
            assert skel.load_opened() is skel and skel.loaded
            with skel.record.attach():
                os.getpid()
            g = skel.globals
            assert isinstance(g.last_task, te.TaskId)
            assert g.last_task.to_dict() == {"pid": os.getpid(), "tid": os.getpid()}
            assert g.last_op is te.OpKind.TOP_WRITE
            assert (g.s8v, g.u16v, g.s64v, g.flag, g.letter) == (
                -8,
                65535,
                -1234567890123,
                True,
                b"Z",
            )
            assert g.arr == [1, 2, 3, 4]
            assert g.grid == [[0, 0], [42, 0]]
            assert [t.pid for t in g.tasks] == [0, os.getpid()]
            assert g.last_bits.small == -3 and g.last_bits.rest == 0xABCDE
            assert (g.last_word.lo, g.last_word.hi, g.last_word.a, g.last_word.b) == (
                0x123,
                0xFFFFF,
                5,
                6,
            )
            assert (g.last_mixed.a, g.last_mixed.b, g.last_mixed.x) == (3, 5, 0xABCDEF01)
            assert g.event_count == 1
            g.event_count = 10
            with skel.record.attach():
                os.getpid()
            assert g.event_count == 11
            with pytest.raises(tinybpf.BpfPhaseError, match="read-only after load"):
                g.target_pid = 1

    def test_ring_buffer_of_generated_events(self, te):
        with te.TypesEventsObject.open() as skel:
            skel.globals.target_pid = os.getpid()
            skel.load_opened()
            events: list = []
            with (
                skel.record.attach(),
                tinybpf.BpfRingBuffer(
                    skel.obj.maps["events"], events.append, event_type=te.Event
                ) as rb,
            ):
                os.getpid()
                rb.poll(timeout_ms=1000)
        (ev,) = events
        assert isinstance(ev, te.Event)
        assert ev.task.pid == os.getpid() and ev.op == te.OpKind.TOP_READ
        assert [list(r) for r in ev.matrix] == [[0, 1, 2], [10, 11, 12]]
        assert ev.flags.small == -3 and ev.val.s == -42 and te.Level(ev.lvl) is te.Level.TLVL_LOW

    def test_typed_scalar_maps_and_resize(self, cf):
        with cf.ConfigFilterObject.open() as skel:
            skel.globals.target_pid = os.getpid()
            skel.counts.max_entries = 256
            skel.load_opened()
            assert skel.counts.max_entries == 256
            with skel.count_getpid.attach():
                os.getpid()
                os.getpid()
            assert dict(skel.counts.items()) == {os.getpid(): 2}
            assert skel.globals.hits == 2 and skel.globals.tag == 7
            assert skel.globals.seen_total >= 2

    def test_load_classmethod(self, cf):
        with cf.ConfigFilterObject.load() as skel:
            assert skel.loaded and skel.count_getpid.fd >= 0
            with pytest.raises(tinybpf.BpfPhaseError):
                skel.counts.max_entries = 1

    def test_names_object_runs(self, names):
        with names.TypesNamesObject.open() as skel:
            skel.globals.target_pid = os.getpid()
            skel.load_opened()
            with skel.load_.attach():
                os.getpid()
            g = skel.globals
            assert (g.pass_, g.yield_, g.ctypes_, g.bytes_, g.secret) == (7, 1, 3, 4, 5)
            assert g.kw.from_ == 1 and g.kw.in_ == 3 and g.kw.flags_ == 5 and g.kw.str == b"ok"
            assert g.word is names.PyWords.value_
            assert skel.globals_[0] == 7

    def test_typed_struct_maps(self, te):
        with te.TypesEventsObject.open() as skel:
            skel.globals.target_pid = os.getpid()
            skel.load_opened()
            with skel.record.attach():
                os.getpid()
            ((key, value),) = list(skel.stats.items())
            assert isinstance(key, te.TaskId) and isinstance(value, te.StatValue)
            assert value.flags.small == -3
            assert skel.words[0].lo == 0xABC


# --- the libbpf-tools-style example ---------------------------------------------------------------


@root
@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
class TestOpensnoopExample:
    def run(self, gendir: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(EXAMPLES / "opensnoop.py"), "--object",
             str(gendir / "opensnoop.bpf.o"), *args],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip

    def test_demo_prints_events_with_field_names(self, gendir):
        r = self.run(gendir, "--demo", "--count", "4", "--seconds", "20")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert len(lines) == 4
        for line in lines:
            for name in (
                "task.pid=",
                "task.tid=",
                "task.uid=",
                "ret=",
                "flags=",
                "comm=",
                "fname=",
            ):
                assert name in line, line
            assert "present.txt" in line or "missing.txt" in line
        assert "start map: max_entries 1024 (compiled 10240)" in r.stderr
        assert "events ring buffer: 512 KiB (compiled 256)" in r.stderr
        assert "4 events printed" in r.stderr

    def test_failed_only_filter(self, gendir):
        r = self.run(gendir, "--demo", "--failed", "--count", "3", "--seconds", "20")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert len(lines) == 3
        assert all("ret=-2" in line and "missing.txt" in line for line in lines)

    def test_resize_options(self, gendir):
        r = self.run(
            gendir, "--demo", "--count", "1", "--max-inflight", "64", "--ringbuf-kib", "64"
        )
        assert r.returncode == 0, r.stderr
        assert "max_entries 64 " in r.stderr and "64 KiB" in r.stderr

    def test_a_filter_that_matches_nothing_exits_1(self, gendir):
        r = self.run(gendir, "--demo", "--pid", "2147483000", "--seconds", "0.5")
        assert r.returncode == 1
        assert r.stdout == ""

    def test_typed_module_of_the_example(self, gendir):
        mod = import_file(gendir / "opensnoop_skel.py")
        ev = mod.Event.from_dict({"task": {"pid": 1}, "fname": "/etc/hosts"})
        assert ev.task.pid == 1 and ev.fname == b"/etc/hosts"
        assert mod.BTF_TYPES["task_ids"] is mod.TaskIds
        with mod.OpensnoopObject.open(gendir / "opensnoop.bpf.o") as skel:
            skel.globals.failed_only = True
            skel.start.max_entries = 32
            skel.load_opened()
            assert skel.start.max_entries == 32 and skel.globals.failed_only is True
