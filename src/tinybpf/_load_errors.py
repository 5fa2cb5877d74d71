"""Why an open or a load failed: the errors of a failed ``BpfObject`` open/load, with the
verifier log, tinybpf's diagnosis of EPERM and of what this kernel lacks."""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Callable
from typing import Any, NoReturn

from ._core import LogCapture, check_int, errnos, objcalls, take_c_log
from ._diagnose import explain_load
from ._kernel import explain_eperm
from .btf import Btf, btf_defect
from .errors import BpfError, BpfFileNotFoundError, BpfPermissionError, BpfVerifierError
from .token import check_token_for_load

# what libbpf returns when a load needs something this kernel lacks (EINVAL: a kfunc)
_MISSING_ERRNOS = errnos.MISSING_OR_INVALID


def _programs_of(obj: Any) -> list[tuple[str, str, bool]]:
    """(name, section, autoload) of each program of a ``BpfObject``."""
    return [(n, p.section, p.autoload) for n, p in obj._programs.items()]


def _raise_missing(programs: list[tuple[str, str, bool]], path: str, e: BpfError) -> None:
    """After a load failed with ENOENT/ESRCH/EINVAL: raise an error naming what this kernel
    lacks (its BTF, an fentry/LSM target, a kfunc) rather than "No such file or directory".
    ENOENT/ESRCH always get a message without a file in it; EINVAL only a found cause."""
    why = explain_load(programs, path)
    if why is None:
        if errnos.is_(e.errno, errnos.INVALID):
            return
        why = (BpfError, "something the object uses is not in this kernel (see libbpf's output)")
    cls, text = why
    err = e.errno or 0
    code = _errno.errorcode.get(err, str(err))
    raise cls(f"load '{path}' failed: {text} ({code})", err, e.libbpf_log) from None


def _file_kind(path: str) -> str:
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        return f"cannot stat it: {e.strerror}"
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _check_custom_btf(path: str | os.PathLike[str]) -> None:
    """libbpf reads ``btf_custom_path`` at load and relocates against it: it gets the same
    check as every other BTF first (a typedef cycle there hangs CO-RE relocation, a 0-byte
    INT divides by zero, a deep chain overflows the stack)."""
    if not os.path.exists(path):
        return  # libbpf's load reports it, as before
    try:
        Btf.from_file(path).close()
    except BpfError as e:
        raise BpfError(
            f"btf_custom_path {os.fspath(path)!r} refused: {e}", e.errno or _errno.EINVAL
        ) from None


def _diagnosed_eperm(e: BpfPermissionError, programs: dict[str, tuple[int, str]]) -> BpfError:
    """A load's EPERM with tinybpf's diagnosis in the message instead of libbpf's generic
    hint ("try raising 'ulimit -l'"), which stays in ``libbpf_log``."""
    if not errnos.is_(e.errno, errnos.PERMISSION):
        return e
    why = explain_eperm(programs, e.libbpf_log or "")
    return BpfPermissionError(f"{e.message}: {why}", e.errno or 0, e.libbpf_log)


def _open_failed(
    path: str,
    from_file: bool,
    err: int,
    res: Any,
    reopen: Callable[[], Any],
    opts: Any = None,
) -> NoReturn:
    log = take_c_log(res.log, res.log_len)
    stage = res.stage
    if stage == objcalls.BTF_INVALID:
        raise BpfError(
            f"open '{path}' failed: malformed BTF: type {res.bad_id} has {btf_defect(err)}", err
        )
    if stage == objcalls.NOT_REGULAR:
        raise BpfError(
            f"open '{path}' failed: not a regular file ({_file_kind(path)}); a BPF object "
            "is an ELF file: pass its path, or its contents as bytes",
            err,
        )
    missing = errnos.is_(err, errnos.NOT_FOUND) and from_file and not os.path.exists(path)
    if stage == objcalls.OPEN_FAILED and missing:
        log.consumed = True  # libbpf's "failed to open" says nothing more
        raise BpfFileNotFoundError(f"BPF object file not found: {path}", _errno.ENOENT)
    verb = "load" if stage == objcalls.LOAD_FAILED else "open"
    if stage == objcalls.LOAD_FAILED:
        verr = _verifier_error(f"load '{path}' failed", err or _errno.EINVAL, log, None)
        if verr is not None:
            raise verr
        check_token_for_load(opts, f"load '{path}' failed", err, log)
    try:
        check_int(-(err or _errno.EINVAL), f"{verb} '{path}' failed", log)
    except BpfError as e:
        if stage == objcalls.LOAD_FAILED and errnos.is_(e.errno, _MISSING_ERRNOS):
            try:
                fresh = reopen()  # the failed object is gone: look at an unloaded copy
            except BpfError:
                raise e from None
            with fresh:
                _raise_missing(_programs_of(fresh), path, e)
        raise
    raise AssertionError("unreachable")


_BEGIN_LOG = "': -- BEGIN PROG LOAD LOG --\n"
_END_LOG = "-- END PROG LOAD LOG --"
_LOAD_FAILED = "': BPF program load failed:"


def _verifier_error(
    message: str, err: int, log: LogCapture, own_log: Callable[[str], str | None] | None
) -> BpfVerifierError | None:
    """The BpfVerifierError of a failed load, when a program's load failed with a verifier
    log (libbpf's "-- BEGIN PROG LOAD LOG --" block, or the program's own log buffer set
    by request_verifier_log()); None otherwise (e.g. EPERM: no verifier ran)."""
    if errnos.is_(err, errnos.PERMISSION) or not log.lines:
        return None
    text = "".join(t for _, t in log.lines)
    at = text.find(_LOAD_FAILED)
    if at < 0:
        return None
    program = text[text.rfind("prog '", 0, at) + len("prog '") : at]
    vlog = ""
    begin = text.find(f"prog '{program}{_BEGIN_LOG}")
    if begin >= 0:
        start = begin + len(f"prog '{program}{_BEGIN_LOG}")
        stop = text.find(_END_LOG, start)
        vlog = text[start : stop if stop >= 0 else len(text)]
    elif own_log is not None:
        vlog = own_log(program) or ""
    if not vlog.strip():
        return None
    from ._core import strerror
    from .errors import verifier_summary

    full = (
        f"{message}: {strerror(err)}: the verifier rejected program '{program}':\n"
        f"{verifier_summary(vlog)}"
    )
    return BpfVerifierError(full, err, log.text, log=vlog, program=program)
