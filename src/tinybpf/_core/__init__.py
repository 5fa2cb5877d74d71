"""The core: the only code that imports or calls the cffi extension.

* :mod:`._binding` -- ``ffi``/``lib``, the libbpf log capture, the two C-boundary checks
  (``check_int`` for negative-errno ints, ``check_ptr`` for NULL pointers), the one raise
  (``fail``), the call-and-check path (``call``/``call_ptr``: capture the log, call,
  check, raise the right :class:`~tinybpf.errors.BpfError` with the log attached), the
  opts builder, the info-by-fd call and str<->bytes helpers;
* :mod:`.errnos` -- named errno sets and predicates (no other module compares errnos);
* :mod:`.mapfd` -- the map element engine's C side: the fd handle element operations
  borrow in C, and the element calls over it (bound once for the hot paths);
* :mod:`.drain` -- ring/perf/user ring buffers: the C drain into one batch, the buffer calls;
* :mod:`.batchpool` -- the drained batches' buffers reused once nothing refers to them;
* :mod:`.ids` -- kernel objects by id: enumerate, open an fd for an id;
* :mod:`.btfcalls`, :mod:`.kernelcalls`, :mod:`.mapcalls`, :mod:`.progcalls`, :mod:`.objcalls`,
  :mod:`.consts_b` -- per area, the C calls, buffers and constants the library uses
  (nothing outside the core imports ``lib``/``ffi``/``NULL``; the tools use only the
  public API);
* :mod:`.owner` -- the owner/borrow protocol that makes ``close()`` safe.

Hot paths bind a C function once (``_lookup = lib.tinybpf_lookup_ints_s``) and call it
per element: the check is inline there, not another Python call layer.
"""

from __future__ import annotations

from . import errnos
from ._binding import (
    NULL,
    LogCapture,
    Opts,
    call,
    call_ptr,
    capture_log,
    check_int,
    check_ptr,
    cstr,
    fail,
    fd_kind,
    ffi,
    info_by_fd,
    lib,
    new_opts,
    pystr,
    set_print_level,
    strerror,
    take_c_log,
    try_info_by_fd,
)
from .owner import Owner, borrow, new_lock, unguarded

__all__ = [
    "NULL",
    "LogCapture",
    "Opts",
    "Owner",
    "borrow",
    "call",
    "call_ptr",
    "capture_log",
    "check_int",
    "check_ptr",
    "cstr",
    "errnos",
    "fail",
    "fd_kind",
    "ffi",
    "info_by_fd",
    "lib",
    "new_lock",
    "new_opts",
    "pystr",
    "set_print_level",
    "strerror",
    "take_c_log",
    "try_info_by_fd",
    "unguarded",
]
