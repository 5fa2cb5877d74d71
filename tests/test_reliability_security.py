"""Security: pins stay in bpffs, pins are private, no shell, pinned objects are validated.

* BpfMap.pin / BpfProgram.pin / BpfLink.pin / KernelProgram.pin to a path outside a BPF
  filesystem raise BpfError before anything is written (also through ``..`` and through a
  symlink that leads out of bpffs).
* A pinned file gets mode 0600 (owner only) by default: the kernel applies
  ``S_IRUSR | S_IWUSR`` minus the umask; the library adds nothing and removes nothing.
* No shell: src/tinybpf never uses shell=True, os.system, os.popen, or spawns a command
  built from a string.
* open_pinned_map / open_pinned_program / open_pinned_link check what the path holds: a
  pinned object of another kind, a regular file, a directory or a missing path raise
  BpfError, and no fd is leaked.
"""

from __future__ import annotations

import ast
import ctypes
import os
import shutil
import stat
import uuid
from pathlib import Path

import pytest

import tinybpf
from tinybpf import BpfError, BpfFileNotFoundError

pytestmark = pytest.mark.root

SRC = Path(tinybpf.__file__).resolve().parent
BPFFS = Path("/sys/fs/bpf")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def pindir():
    if not os.path.ismount(BPFFS):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf (run 'make mounts')")
    d = BPFFS / f"tinybpf-rel-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def objs(obj_path):
    ev = tinybpf.load(obj_path("rel_events"))
    tiny = tinybpf.load(obj_path("rel_tiny"))
    link = tiny.program("raw_rename").attach()
    yield ev, tiny, link
    link.destroy()
    tiny.close()
    ev.close()


def _pinners(ev, link):
    prog = ev.program("produce_ring")
    kprog = tinybpf.open_program_by_id(prog.kernel_info().id)
    return kprog, {
        "BpfMap.pin": lambda p: ev.maps["h1"].pin(p),
        "BpfProgram.pin": lambda p: prog.pin(p),
        "BpfLink.pin": lambda p: link.pin(p),
        "KernelProgram.pin": lambda p: kprog.pin(p),
    }


def _outside_paths(tmp_path: Path, pindir: Path) -> dict[str, Path]:
    escape = pindir / "out"
    escape.symlink_to(tmp_path) if _can_symlink(pindir) else None
    paths = {
        "/tmp file": tmp_path / "x",
        "relative": Path(os.path.relpath(tmp_path / "rel", Path.cwd())),
        "dot-dot out of bpffs": pindir.joinpath("..", "..", "..", "..")
        / tmp_path.relative_to("/")
        / "y",
        "/dev/shm": Path("/dev/shm") / f"tinybpf-{uuid.uuid4().hex[:8]}",
        "/proc": Path("/proc/self/tinybpf"),
    }
    if escape.is_symlink():
        paths["symlink in bpffs to /tmp"] = escape / "z"
    return paths


def _can_symlink(d: Path) -> bool:
    try:
        (d / "symprobe").symlink_to("/")
        (d / "symprobe").unlink()
        return True
    except OSError:
        return False


def test_pins_outside_bpffs_are_refused(objs, tmp_path, pindir):
    ev, _, link = objs
    kprog, pinners = _pinners(ev, link)
    wrong = []
    paths = _outside_paths(tmp_path, pindir)
    for what, pin in pinners.items():
        for label, path in paths.items():
            try:
                pin(str(path))
            except BpfError as e:
                if "bpf" not in str(e).lower():
                    wrong.append(f"{what} to {label}: unclear message {e}")
            except Exception as e:
                wrong.append(f"{what} to {label}: {type(e).__name__}: {e}")
            else:
                wrong.append(f"{what} to {label} ({path}): accepted")
            real = Path(os.path.realpath(path))
            if real.exists() and not str(real).startswith(str(BPFFS)):
                wrong.append(f"{what} to {label}: created {real}")
    kprog.close()
    print(f"\nchecked {len(pinners)} pin methods x {len(paths)} paths: {sorted(paths)}")
    assert wrong == []


def test_pin_error_is_clear_and_names_bpffs(objs, tmp_path):
    ev, _, _ = objs
    with pytest.raises(BpfError) as ei:
        ev.maps["h1"].pin(str(tmp_path / "x"))
    msg = str(ei.value)
    print(f"\n{msg}")
    assert str(tmp_path / "x") in msg
    assert "BPF filesystem" in msg or "bpffs" in msg


def test_auto_pin_path_outside_bpffs_never_writes(obj_path, tmp_path):
    """BpfMap.pin_path (pinning at load) to a non-bpffs path: refused (at set or at load),
    nothing created."""
    obj = tinybpf.open(obj_path("rel_events"))
    target = tmp_path / "auto"
    try:
        try:
            obj.maps["h1"].pin_path = str(target)
        except BpfError:
            pass
        else:
            with pytest.raises(BpfError):
                obj.load()
    finally:
        obj.close()
    assert not target.exists()


def test_pin_root_path_outside_bpffs_is_not_used_silently(obj_path, tmp_path):
    obj = tinybpf.open(obj_path("rel_events"), pin_root_path=str(tmp_path))
    try:
        obj.load()  # no map asks for pinning: nothing to do
    finally:
        obj.close()
    assert list(tmp_path.iterdir()) == []


def test_pins_inside_bpffs_work_and_are_private(objs, pindir):
    ev, _, link = objs
    kprog, pinners = _pinners(ev, link)
    modes = {}
    old = os.umask(0o022)
    try:
        for what, pin in pinners.items():
            path = pindir / what.replace(".", "_")
            pin(str(path))
            st = os.stat(path)
            assert stat.S_ISREG(st.st_mode)
            modes[what] = oct(stat.S_IMODE(st.st_mode))
    finally:
        os.umask(old)
        kprog.close()
    print(f"\npin modes with umask 022: {modes}")
    for what, mode in modes.items():
        assert int(mode, 8) & 0o077 == 0, f"{what}: pinned file is {mode}, readable by others"
    # and the pins hold what they should
    m = tinybpf.open_pinned_map(str(pindir / "BpfMap_pin"))
    assert m.type == tinybpf.BpfMapType.HASH
    m.close()
    tinybpf.open_pinned_program(str(pindir / "BpfProgram_pin")).close()
    tinybpf.open_pinned_link(str(pindir / "BpfLink_pin")).destroy()


def test_no_shell_in_the_library():
    """Nothing in src/tinybpf runs a shell or a command line built from a string."""
    bad = []
    for py in sorted(SRC.rglob("*.py")):
        text = py.read_text()
        tree = ast.parse(text, str(py))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("os.system", "os.popen", "os.execl", "os.execlp", "os.spawnl"):
                    bad.append(f"{py.name}:{node.lineno}: {name}")
                if name.startswith("os.exec") or name.startswith("os.spawn"):
                    bad.append(f"{py.name}:{node.lineno}: {name}")
                if name in ("pty.spawn", "commands.getoutput", "commands.getstatusoutput"):
                    bad.append(f"{py.name}:{node.lineno}: {name}")
                for kw in node.keywords:
                    if kw.arg == "shell" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        bad.append(f"{py.name}:{node.lineno}: {name}(shell=...)")
                if name.startswith("subprocess.") and node.args:
                    first = node.args[0]
                    if isinstance(first, (ast.JoinedStr, ast.BinOp)) or (
                        isinstance(first, ast.Constant) and isinstance(first.value, str)
                    ):
                        bad.append(f"{py.name}:{node.lineno}: {name} with a command string")
        if "shell=True" in text:
            bad.append(f"{py.name}: 'shell=True' in the text")
    assert bad == []


# --------------------------------------------------------------------------- open pinned


def _pin_all(ev, link, pindir):
    ev.maps["h1"].pin(str(pindir / "map"))
    ev.program("produce_ring").pin(str(pindir / "prog"))
    link.pin(str(pindir / "link"))
    (pindir / "dir").mkdir()


def test_open_pinned_checks_what_the_path_holds(objs, pindir, tmp_path):
    ev, _, link = objs
    _pin_all(ev, link, pindir)
    regular = tmp_path / "regular"
    regular.write_bytes(b"\0" * 64)
    devnull = "/dev/null"
    cases = {
        "open_pinned_map": tinybpf.open_pinned_map,
        "open_pinned_program": tinybpf.open_pinned_program,
        "open_pinned_link": tinybpf.open_pinned_link,
    }
    good = {
        "open_pinned_map": "map",
        "open_pinned_program": "prog",
        "open_pinned_link": "link",
    }
    candidates = {
        "pinned map": pindir / "map",
        "pinned program": pindir / "prog",
        "pinned link": pindir / "link",
        "bpffs directory": pindir / "dir",
        "missing in bpffs": pindir / "missing",
        "regular file": regular,
        "/dev/null": Path(devnull),
        "missing file": tmp_path / "missing",
    }
    wrong = []
    fds0 = fd_count()
    for fname, fn in cases.items():
        for label, path in candidates.items():
            should_work = path == pindir / good[fname]
            try:
                h = fn(str(path))
            except BpfError as e:
                if should_work:
                    wrong.append(f"{fname}({label}): {e}")
                elif "missing" in label and not isinstance(e, BpfFileNotFoundError):
                    wrong.append(f"{fname}({label}): {type(e).__name__}, not FileNotFound")
                continue
            except Exception as e:
                wrong.append(f"{fname}({label}): {type(e).__name__}: {e}")
                continue
            if not should_work:
                wrong.append(f"{fname}({label}): accepted")
            (h.destroy if hasattr(h, "destroy") else h.close)()
    assert wrong == []
    assert fd_count() == fds0, "an fd leaked on a refused open"


def test_open_pinned_map_with_wrong_types_leaks_nothing(objs, pindir):
    ev, _, link = objs
    _pin_all(ev, link, pindir)
    fds0 = fd_count()
    for _ in range(50):
        with pytest.raises((TypeError, BpfError)):
            tinybpf.open_pinned_map(str(pindir / "map"), key_type=ctypes.c_uint64)
        with pytest.raises((TypeError, BpfError)):
            tinybpf.open_pinned_map(str(pindir / "map"), value_type=str)
    assert fd_count() == fds0


def test_pin_paths_with_nul_bytes_are_refused(objs, pindir):
    ev, _, _ = objs
    with pytest.raises((ValueError, BpfError)):
        ev.maps["h1"].pin(str(pindir / "a\0b"))
    with pytest.raises((ValueError, BpfError)):
        tinybpf.open_pinned_map(str(pindir) + "/a\0/../x")
    assert list(pindir.iterdir()) == []
