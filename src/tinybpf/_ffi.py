"""The only module that touches the cffi extension directly.

It holds the two C-boundary checks (negative-errno ints and NULL pointers), the opts
builder, str<->bytes helpers and the libbpf log capture. Everything else in the package
calls libbpf through ``lib`` imported from here and checks results with ``check_int`` /
``check_ptr``.
"""

from __future__ import annotations

import errno as _errno
import os
import sys
import threading
from typing import Any

# cffi's module init also files the extension in sys.modules under the name it was built
# with (ffi_build/build_ffi.py), and its lib as "<name>.lib". In a copy vendored under
# another package that name belongs to the installed tinybpf: left there, a later
# ``import tinybpf`` would bind this copy's extension. Put back what was there before.
_BUILT_AS = ("tinybpf._libbpf_cffi", "tinybpf._libbpf_cffi.lib")
_before = {name: sys.modules.get(name) for name in _BUILT_AS}
try:
    from ._libbpf_cffi import ffi, lib
except ModuleNotFoundError as e:  # a vendored copy, or an install without dependencies
    if e.name != "_cffi_backend":
        raise
    raise ModuleNotFoundError(
        f"{__package__} needs the cffi package at run time (its _cffi_backend module is "
        f"not importable here): pip install 'cffi>=1.17'",
        name=e.name,
    ) from e

if f"{__package__}._libbpf_cffi" != _BUILT_AS[0]:
    for _name, _module in _before.items():
        if _module is None:
            sys.modules.pop(_name, None)
        else:
            sys.modules[_name] = _module
del _before

from .errors import error_for_errno  # noqa: E402

__all__ = [
    "NULL",
    "LogCapture",
    "capture_log",
    "check_int",
    "check_ptr",
    "cstr",
    "ffi",
    "lib",
    "new_opts",
    "pystr",
    "strerror",
    "take_c_log",
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
        _logger = logging.getLogger(f"{__package__}.libbpf")
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


def _raise(err: int, message: str, log: LogCapture | None, cls: type[Exception] | None) -> None:
    err = abs(err) or _errno.EINVAL
    full = f"{message}: {strerror(err)}"
    exc_cls = cls or error_for_errno(err)
    if log is not None:
        log.consumed = True
    raise exc_cls(full, err, log.text if log is not None else None)


def check_int(ret: int, message: str, log: LogCapture | None = None) -> int:
    """Check a libbpf int return: negative means -errno. Returns ``ret`` when >= 0."""
    if ret < 0:
        _raise(ret, message, log, None)
    return ret


def check_ptr(ptr: Any, message: str, log: LogCapture | None = None) -> Any:
    """Check a libbpf pointer return: NULL means failure with errno set by that call.

    cffi saves errno right after each call in API mode, so ``ffi.errno`` here is the
    value the failed call left, not one changed by Python code since.
    """
    if ptr == NULL:
        _raise(ffi.errno or _errno.EINVAL, message, log, None)
    return ptr


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
