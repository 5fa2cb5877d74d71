"""The binding: the one module that imports the cffi extension.

It holds the two C-boundary checks (negative-errno ints and NULL pointers) and the one
function that raises for a failed C call (:func:`fail`), the call-and-check helpers
(:func:`call`, :func:`call_ptr`: capture libbpf's log, call, check, raise), the opts
builder, str<->bytes helpers and the libbpf log capture. The rest of the package reaches
libbpf only through :mod:`tinybpf._core`.
"""

from __future__ import annotations

import errno as _errno
import os
import sys
import threading
from typing import Any, NoReturn

# cffi's module init also files the extension in sys.modules under the name it was built
# with (ffi_build/build_ffi.py), and its lib as "<name>.lib". In a copy vendored under
# another package that name belongs to the installed tinybpf: left there, a later
# ``import tinybpf`` would bind this copy's extension. Put back what was there before.
_TOP = (__package__ or "tinybpf._core").rsplit(".", 1)[0]  # the tinybpf package, any name
_BUILT_AS = ("tinybpf._libbpf_cffi", "tinybpf._libbpf_cffi.lib")
_before = {name: sys.modules.get(name) for name in _BUILT_AS}
try:
    from .._libbpf_cffi import ffi, lib
except ModuleNotFoundError as e:  # a vendored copy, or an install without dependencies
    if e.name != "_cffi_backend":
        raise
    raise ModuleNotFoundError(
        f"{_TOP} needs the cffi package at run time (its _cffi_backend module is "
        f"not importable here): pip install 'cffi>=1.17'",
        name=e.name,
    ) from e

if f"{_TOP}._libbpf_cffi" != _BUILT_AS[0]:
    for _name, _module in _before.items():
        if _module is None:
            sys.modules.pop(_name, None)
        else:
            sys.modules[_name] = _module
del _before

from ..errors import error_for_errno  # noqa: E402

__all__ = [
    "NULL",
    "LogCapture",
    "call",
    "call_ptr",
    "capture_log",
    "check_int",
    "check_ptr",
    "cstr",
    "fail",
    "ffi",
    "info_by_fd",
    "lib",
    "new_opts",
    "pystr",
    "strerror",
    "take_c_log",
    "try_info_by_fd",
]

NULL: Any = ffi.NULL
_local = threading.local()
_logger: Any = None
_LEVELS: dict[int, int] = {}


def _libbpf_logger() -> Any:
    """logging.getLogger("tinybpf.libbpf"), imported on the first libbpf message."""
    global _logger
    if _logger is None:
        import logging

        _LEVELS.update(
            {
                lib.LIBBPF_WARN: logging.WARNING,
                lib.LIBBPF_INFO: logging.INFO,
                lib.LIBBPF_DEBUG: logging.DEBUG,
            }
        )
        _logger = logging.getLogger(f"{_TOP}.libbpf")
    return _logger


class LogCapture:
    """libbpf messages printed on this thread while the capture is active.

    ``with capture_log() as log:`` around a libbpf call; ``log.text`` is what it printed.
    If the call fails, the error raised through ``check_int``/``check_ptr`` carries the
    text (and it is not logged again); otherwise the messages go to the
    ``tinybpf.libbpf`` logger when the capture is dropped.
    """

    __slots__ = ("consumed", "lines")

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []
        self.consumed = False

    @property
    def text(self) -> str | None:
        """The captured text; reading it (to put it in an error) means it is reported."""
        self.consumed = True
        return "".join(t for _, t in self.lines).rstrip("\n") or None

    def __enter__(self) -> LogCapture:
        stack: list[LogCapture] | None = getattr(_local, "captures", None)
        if stack is None:
            stack = _local.captures = []
        stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _local.captures.pop()

    def __del__(self) -> None:
        if self.lines and not self.consumed:
            try:
                logger = _libbpf_logger()
                for level, text in self.lines:
                    logger.log(_LEVELS.get(level, 10), "%s", text.rstrip("\n"))
            except Exception:
                pass


@ffi.def_extern()  # type: ignore[untyped-decorator]
def _tinybpf_log_sink(level: int, msg: Any) -> None:
    text = ffi.string(msg).decode("utf-8", "replace")
    stack: list[LogCapture] | None = getattr(_local, "captures", None)
    if stack:
        stack[-1].lines.append((level, text))  # logged later, unless an error carries it
        return
    logger = _libbpf_logger()
    logger.log(_LEVELS.get(level, 10), "%s", text.rstrip("\n"))


capture_log = LogCapture  # ``with capture_log() as log:``


def take_c_log(data: Any, size: int) -> LogCapture:
    """The messages a capture in the C shim collected (``struct tinybpf_capture``: a level
    byte, the text and a NUL per message) as a LogCapture; frees the C buffer."""
    log = LogCapture()
    if data != NULL:
        try:
            raw = ffi.unpack(data, size)
        finally:
            lib.tinybpf_free(data)
        log.lines = [(m[0] - 48, m[1:].decode("utf-8", "replace")) for m in raw.split(b"\0") if m]
    return log


_PRINT_LEVEL_NAMES = {"warn": lib.LIBBPF_WARN, "info": lib.LIBBPF_INFO, "debug": lib.LIBBPF_DEBUG}


def set_print_level(level: int | str) -> None:
    """Which libbpf messages reach Python (``"warn"``, ``"info"`` or ``"debug"``).

    Example::

        logging.basicConfig(level=logging.DEBUG)
        tinybpf.set_libbpf_log_level("debug")   # to the "tinybpf.libbpf" logger
    """
    if isinstance(level, str):
        try:
            level = _PRINT_LEVEL_NAMES[level.lower()]
        except KeyError:
            raise ValueError(
                f"unknown libbpf log level {level!r}; expected one of {sorted(_PRINT_LEVEL_NAMES)}"
            ) from None
    lib.tinybpf_set_print_level(int(level))


set_print_level("info")


def strerror(err: int) -> str:
    """libbpf's text for an errno value (covers libbpf's own error codes too)."""
    buf = ffi.new("char[]", 256)
    lib.libbpf_strerror(abs(err), buf, 256)
    text: str = ffi.string(buf).decode("utf-8", "replace")
    return text or os.strerror(abs(err))


def fail(
    err: int,
    message: str,
    log: LogCapture | None = None,
    cls: type[Exception] | None = None,
    hint: str = "",
) -> NoReturn:
    """Raise the error of a failed C call: ``err`` is the errno (either sign; 0 means
    EINVAL), the class is ``cls`` or the one :func:`~tinybpf.errors.error_for_errno`
    picks, the message gets libbpf's text for the errno (then ``hint``, if any) and the
    error carries the log lines captured during the call."""
    err = abs(err) or _errno.EINVAL
    full = f"{message}: {strerror(err)}{hint}"
    exc_cls = cls or error_for_errno(err)
    if log is not None:
        log.consumed = True
    raise exc_cls(full, err, log.text if log is not None else None)


def check_int(
    ret: int,
    message: str,
    log: LogCapture | None = None,
    tolerate: frozenset[int] = frozenset(),
) -> int:
    """Check a libbpf int return: negative means -errno. Returns ``ret`` when >= 0 or when
    ``-ret`` is in ``tolerate`` (a named set of :mod:`tinybpf._core.errnos`)."""
    if ret < 0 and -ret not in tolerate:
        fail(ret, message, log)
    return ret


def check_ptr(ptr: Any, message: str, log: LogCapture | None = None) -> Any:
    """Check a libbpf pointer return: NULL means failure with errno set by that call.

    cffi saves errno right after each call in API mode, so ``ffi.errno`` here is the
    value the failed call left, not one changed by Python code since.
    """
    if ptr == NULL:
        fail(ffi.errno or _errno.EINVAL, message, log)
    return ptr


def call(name: str, *args: Any, what: str, tolerate: frozenset[int] = frozenset()) -> int:
    """The call-and-check path for a libbpf function returning an int (negative errno on
    failure): capture libbpf's log, call ``lib.<name>(*args)``, check, raise the right
    :class:`~tinybpf.errors.BpfError` with the captured log. ``what`` names the operation
    ("set type of map 'x'"); " failed: <strerror>" is appended."""
    fn = getattr(lib, name)
    with LogCapture() as log:
        ret: int = fn(*args)
    if ret < 0 and -ret in tolerate:
        log.consumed = True  # an expected failure: its messages are no news
    return check_int(ret, f"{what} failed", log, tolerate)


def call_ptr(name: str, *args: Any, what: str) -> Any:
    """:func:`call` for a libbpf function returning a pointer (NULL and errno on failure)."""
    fn = getattr(lib, name)
    with LogCapture() as log:
        ptr = fn(*args)
    return check_ptr(ptr, f"{what} failed", log)


_INFO = {
    "prog": ("struct bpf_prog_info", "bpf_prog_get_info_by_fd"),
    "map": ("struct bpf_map_info", "bpf_map_get_info_by_fd"),
    "btf": ("struct bpf_btf_info", "bpf_btf_get_info_by_fd"),
}


def try_info_by_fd(kind: str, fd: int, **fields: Any) -> tuple[Any, int]:
    """``bpf_obj_get_info_by_fd`` for a ``"prog"``, ``"map"`` or ``"btf"`` fd: the
    ``struct bpf_<kind>_info`` (``fields`` set first, e.g. a buffer for the names the kernel
    writes back; the caller keeps such buffers alive) and the call's return, unchecked."""
    ctype, fn = _INFO[kind]
    info = ffi.new(f"{ctype} *")
    for name, value in fields.items():
        setattr(info, name, value)
    size = ffi.new("__u32 *", ffi.sizeof(ctype))
    ret: int = getattr(lib, fn)(fd, info, size)
    return info, ret


def info_by_fd(kind: str, fd: int, what: str, **fields: Any) -> Any:
    """:func:`try_info_by_fd` through the call-and-check path: raises the right error."""
    ctype, fn = _INFO[kind]
    info = ffi.new(f"{ctype} *")
    for name, value in fields.items():
        setattr(info, name, value)
    size = ffi.new("__u32 *", ffi.sizeof(ctype))
    call(fn, fd, info, size, what=what)
    return info


class Opts:
    """A libbpf ``*_opts`` struct with ``sz`` set and its referenced buffers kept alive."""

    __slots__ = ("_keep", "ptr")

    def __init__(self, ptr: Any, keep: list[Any]) -> None:
        self.ptr = ptr
        self._keep = keep


def new_opts(ctype: str, **fields: Any) -> Opts:
    """Build ``struct <ctype>`` with ``sz`` filled in and only known fields set.

    Strings become NUL-terminated buffers and bytes become buffers; both stay alive as long
    as the returned ``Opts``. ``None`` values are left zeroed. Unknown fields raise TypeError.
    """
    ptr = ffi.new(f"struct {ctype} *")
    ptr.sz = ffi.sizeof(f"struct {ctype}")
    keep: list[Any] = []
    for name, value in fields.items():
        if name == "sz":
            raise TypeError("sz is set by the opts builder")
        if value is None:
            continue
        if isinstance(value, (str, os.PathLike)):
            value = cstr(value)
        if isinstance(value, bytes):
            buf = ffi.new("char[]", value)
            keep.append(buf)
            value = buf
        try:
            setattr(ptr, name, value)
        except AttributeError:
            raise TypeError(f"struct {ctype} has no field {name!r}") from None
        if isinstance(value, ffi.CData):
            keep.append(value)
    return Opts(ptr, keep)


def fd_kind(fd: int) -> str:
    """What kind of BPF object an fd refers to: "prog", "map", "link", "btf" or ""."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""
    return {
        "anon_inode:bpf-prog": "prog",
        "anon_inode:bpf-map": "map",
        "anon_inode:bpf_link": "link",
        "anon_inode:bpf-link": "link",
        "anon_inode:btf": "btf",
    }.get(target, "")


def cstr(value: str | bytes | os.PathLike[str]) -> bytes:
    """A Python str/path as bytes for a ``const char *`` argument (NUL bytes refused)."""
    data = os.fsencode(value) if not isinstance(value, bytes) else value
    if b"\0" in data:
        raise ValueError(f"embedded NUL byte in {value!r}")
    return data


def pystr(ptr: Any) -> str:
    """A ``const char *`` result as str ("" for NULL)."""
    if ptr == NULL:
        return ""
    text: str = ffi.string(ptr).decode("utf-8", "replace")
    return text
