"""The package is relocatable: a daemon copies it under its own package and uses it there.

Every test copies the package under test (the package directory as a whole, the compiled
extension included) into a temporary tree as ``daemon/_vendor/tinybpf`` and runs a fresh
interpreter there. Most make ``import tinybpf`` impossible in it (``sys.modules["tinybpf"] =
None``), so any reference to the package by its installed name fails; one runs the vendored
copy and the installed one side by side in one process. The cycles are real: the ring buffer
fixture is loaded, configured through a map, its tracepoint attached and triggered, a map read
and ring-buffer events streamed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import BPF_BUILD, TESTS, bpf_obj
from helpers.kernel import helper_unavailable_reason

import tinybpf
from tinybpf.codegen import generate_module

pytestmark = pytest.mark.root

VENDORED = "daemon._vendor.tinybpf"
PACKAGE_DIR = Path(tinybpf.__file__).resolve().parent

# One load/attach/trigger/map/ring-buffer cycle, as a function of the package it is given.
CYCLE = '''
import os, struct


def cycle(pkg, tag, burst=3):
    """Load, configure, attach, trigger, read a map, stream events; return what was seen."""
    events = []
    with pkg.load({path!r}) as obj:
        obj.maps["cfg"][0] = struct.pack("<IIII", os.getpid(), burst, 1, tag)
        link = obj.program("on_getppid").attach()
        rb = pkg.BpfRingBuffer(obj.maps["events"], events.append)
        os.getppid()
        n = 0
        while n < burst:
            got = rb.poll(5000)
            assert got, "no events within 5 s"
            n += got
        rb.close()
        link.destroy()
        triggers = int(obj.maps["stats"][3])
    assert all(struct.unpack_from("<I", e)[0] == os.getpid() for e in events), events
    return [struct.unpack_from("<I", e, 4)[0] for e in events], triggers
'''

UNIMPORTABLE = 'import sys\nsys.modules["tinybpf"] = None  # any "import tinybpf" now fails\n'


def _skip_unless_bpf_loop() -> None:
    reason = helper_unavailable_reason(tinybpf.BpfProgType.TRACEPOINT, "bpf_loop")
    if reason:
        pytest.skip(reason)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """tmp_path/daemon/_vendor/tinybpf: a copy of the package under test."""
    dest = tmp_path / "daemon" / "_vendor" / "tinybpf"
    shutil.copytree(PACKAGE_DIR, dest, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "daemon" / "__init__.py").write_text("")
    (tmp_path / "daemon" / "_vendor" / "__init__.py").write_text("")
    (tmp_path / "daemon" / "cycle.py").write_text(CYCLE.format(path=str(bpf_obj("ringbuf_events"))))
    return tmp_path


def _python(
    root: Path,
    *args: str,
    code: str | None = None,
    unimportable: bool = False,
    timeout: float = 120,
) -> str:
    """Run this interpreter in ``root`` with only ``root`` added to the path; its stdout.
    ``unimportable``: ``code`` runs with ``import tinybpf`` made impossible."""
    if code is not None:
        code = (UNIMPORTABLE if unimportable else "") + textwrap.dedent(code)
    cmd = [sys.executable, *(["-c", code] if code is not None else []), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(root)
    proc = subprocess.run(
        cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{cmd[1:3]} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _vendored_main(root: Path, *argv: str, timeout: float = 120) -> str:
    """``python -m daemon._vendor.tinybpf ARGV`` with ``tinybpf`` unimportable."""
    code = (
        "import runpy\n"
        f"sys.argv = [{VENDORED!r}, *sys.argv[1:]]\n"
        f"runpy.run_module({VENDORED!r}, run_name='__main__', alter_sys=True)\n"
    )
    return _python(root, *argv, code=code, unimportable=True, timeout=timeout)


def test_vendored_copy_runs_a_full_cycle_with_tinybpf_unimportable(root):
    _skip_unless_bpf_loop()
    out = _python(
        root,
        unimportable=True,
        code=f"""
        import logging
        from daemon._vendor import tinybpf as tb
        from daemon.cycle import cycle

        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.DEBUG)
        tb.set_libbpf_log_level("debug")
        seqs, triggers = cycle(tb, tag=1)
        assert seqs == [0, 1, 2] and triggers == 1, (seqs, triggers)
        import gc; gc.collect()
        names = {{r.name for r in records}}
        assert names and all(n.startswith("{VENDORED}.") for n in names), names
        assert "{VENDORED}.libbpf" in names, names
        leaked = sorted(m for m, v in sys.modules.items() if m.startswith("tinybpf") and v)
        assert not leaked, leaked
        assert tb.BpfError.__module__.startswith("{VENDORED}."), tb.BpfError.__module__
        print("ok", tb.version(), tb.libbpf_release())
        """,
    )
    assert out.startswith(f"ok {tinybpf.version()} {tinybpf.libbpf_release()}"), out


def test_python_m_version_under_the_vendored_name(root):
    # as docs/vendoring.md tells a daemon to check its copy
    out = _python(root, "-m", VENDORED, "version")
    assert out.split() == ["tinybpf", tinybpf.version(), "libbpf", tinybpf.libbpf_release()]
    # and with the installed name unimportable
    assert _vendored_main(root, "version") == out


def test_without_cffi_the_first_use_says_what_to_install(root):
    # cffi's _cffi_backend is the one thing besides libc a copy needs (docs/vendoring.md)
    out = _python(
        root,
        unimportable=True,
        code="""
        sys.modules["_cffi_backend"] = None  # not installed
        from daemon._vendor import tinybpf as tb
        try:
            tb.libbpf_release()
        except ModuleNotFoundError as e:
            print(e.name, "|", e)
        """,
    )
    assert out.startswith("_cffi_backend | daemon._vendor.tinybpf needs the cffi package"), out
    assert "pip install 'cffi>=1.17'" in out


def test_cli_under_the_vendored_name(root):
    usage = _vendored_main(root, "--help")
    assert usage.startswith(f"usage: python -m {VENDORED} "), usage
    summary = json.loads(_vendored_main(root, "inspect", "--json", str(bpf_obj("ringbuf_events"))))
    assert "on_getppid" in json.dumps(summary)
    header = _vendored_main(root, "vmlinux")
    assert "struct task_struct {" in header


def test_gen_output_imports_the_package_that_generated_it(root):
    _skip_unless_bpf_loop()
    obj = str(bpf_obj("ringbuf_events"))
    text = _vendored_main(root, "gen", obj, "--name", "Rb")
    assert f"\nimport {VENDORED} as tinybpf\n" in text
    assert "\nimport tinybpf\n" not in text
    # the installed copy writes the same module when told the package, and plain
    # "import tinybpf" by default
    installed = [sys.executable, "-m", "tinybpf", "gen", obj, "--name", "Rb"]
    told = subprocess.run([*installed, "--package", VENDORED], capture_output=True, text=True)
    assert told.returncode == 0 and told.stdout == text, told.stderr
    assert "\nimport tinybpf\n" in generate_module(obj, "Rb")
    for bad in ("daemon.-vendor", "daemon..tinybpf", "import", ""):
        with pytest.raises(ValueError, match="dotted module name"):
            generate_module(obj, "Rb", package=bad)
    (root / "daemon" / "rb_skel.py").write_text(text)
    out = _python(
        root,
        unimportable=True,
        code="""
        import os
        from daemon.rb_skel import RbObject, RbConfig

        with RbObject.load() as skel:
            skel.cfg[0] = RbConfig(pid=os.getpid(), burst=2, targets=1, tag=7)
            link = skel.on_getppid.attach()
            events = []
            rb = type(skel.obj).__module__  # the vendored package's class
            from daemon._vendor import tinybpf as tb
            ring = tb.BpfRingBuffer(skel.events, events.append)
            os.getppid()
            n = 0
            while n < 2:
                got = ring.poll(5000)
                assert got, "no events within 5 s"
                n += got
            ring.close()
            link.destroy()
            print(rb, skel.stats[3], len(events))
        """,
    )
    assert out.split() == [f"{VENDORED}.object", "1", "2"], out


def test_export_under_the_vendored_name(root, tmp_path):
    pytest.importorskip("yaml", reason="the export extra (PyYAML) is not installed")
    pytest.importorskip("prometheus_client", reason="the export extra is not installed")
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "export_basic.bpf.o").symlink_to(BPF_BUILD / "export_basic.bpf.o")
    shutil.copy(TESTS / "bpf" / "export" / "export_basic.yaml", configs)
    out = _vendored_main(
        root, "export", f"--config.dir={configs}", "--config.names=export_basic", "--config.check"
    )
    assert "configs ok" in out
    # the Python API of the vendored copy: a real attach, a real count, a rendered scrape
    out = _python(
        root,
        unimportable=True,
        code=f"""
        import subprocess
        from daemon._vendor.tinybpf.export import Exporter

        with Exporter.from_dir({str(configs)!r}, ["export_basic"]) as ex:
            subprocess.run([sys.executable, "-c",
                "import ctypes, os; ctypes.CDLL(None).prctl(15, b'tbx-vendor', 0, 0, 0); "
                "[os.getppid() for _ in range(5)]"], check=True)
            text = ex.render()
        if isinstance(text, bytes):
            text = text.decode()
        print([line for line in text.splitlines() if line.startswith(
            "ebpf_exporter_percpu_summed_total")])
        leaked = sorted(m for m, v in sys.modules.items() if m.startswith("tinybpf") and v)
        assert not leaked, leaked
        """,
    )
    assert 'ebpf_exporter_percpu_summed_total{kind="1"} 5' in out, out


TWO_COPIES = """
import gc, logging, os, sys

records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.DEBUG)

# the vendored copy first: its extension must not take the installed name's place
from daemon._vendor import tinybpf as vt
vt.libbpf_release()
sys.path.append({installed!r})
import tinybpf as it
from daemon.cycle import cycle

assert it is not vt and it.BpfError is not vt.BpfError and it.BpfMap is not vt.BpfMap
maps = open("/proc/self/maps").read()
for pkg in (it, vt):
    sos = sorted(p for p in Path(pkg.__file__).parent.rglob("*.so"))
    assert sos and all(str(p) in maps for p in sos), (pkg.__name__, sos)

# libbpf's print level and callback are per copy: debug for the vendored one only
vt.set_libbpf_log_level("debug")
it.set_libbpf_log_level("warn")
results = {{"tinybpf": [], "daemon._vendor.tinybpf": []}}
for i in range(5):  # alternately (the fixture tells processes apart, not threads)
    for pkg, tag in ((it, 1), (vt, 2)):
        results[pkg.__name__].append(cycle(pkg, tag, burst=2 + i % 3))
gc.collect()
for name, got in sorted(results.items()):
    # sequence numbers restart in each freshly loaded object: nothing crossed
    assert got == [(list(range(2 + i % 3)), 1) for i in range(5)], (name, got)
debug = {{r.name for r in records if r.levelno == logging.DEBUG}}
assert debug == {{"daemon._vendor.tinybpf.libbpf"}}, debug

# both at once: two objects loaded, attached and streamed alternately
a, b = it.load({path!r}), vt.load({path!r})
assert type(a).__module__.startswith("tinybpf.") and type(b).__module__.startswith("daemon.")
got = {{"a": [], "b": []}}
rings = []
for obj, pkg, key in ((a, it, "a"), (b, vt, "b")):
    obj.maps["cfg"][0] = struct.pack("<IIII", os.getpid(), 1, 1, 0)
    ring = pkg.BpfRingBuffer(obj.maps["events"], got[key].append)
    rings.append((ring, obj.program("on_getppid").attach()))
for _ in range(3):
    os.getppid()
for ring, _link in rings:
    n = 0
    while n < 3:
        m = ring.poll(5000)
        assert m, "no events within 5 s"
        n += m
assert [len(got["a"]), len(got["b"])] == [3, 3], got

# a fork: each copy's at-fork handlers run; both work in the child
pid = os.fork()
if pid == 0:
    code = 1
    try:
        for obj in (a, b):
            assert int(obj.maps["stats"][3]) == 3
        for pkg, tag in ((it, 3), (vt, 4)):
            assert cycle(pkg, tag) == ([0, 1, 2], 1)
        code = 0
    finally:
        os._exit(code)
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
for ring, link in rings:
    ring.close()
    link.destroy()
a.close()
b.close()
# one copy closed: the other still works
assert cycle(vt, 5) == ([0, 1, 2], 1)
print("ok")
"""


def test_vendored_and_installed_copies_side_by_side(root):
    _skip_unless_bpf_loop()
    installed = str(PACKAGE_DIR.parent)
    code = "import struct\nfrom pathlib import Path\n" + TWO_COPIES.format(
        installed=installed, path=str(bpf_obj("ringbuf_events"))
    )
    assert _python(root, code=code, timeout=180).split() == ["ok"]
