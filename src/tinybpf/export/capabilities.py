"""``--capabilities.keep``: drop the process's capabilities once the programs are attached.

As ebpf_exporter does it: ``all`` (the default) keeps them, ``none`` drops every one, and a
comma separated list of names (``cap_bpf,cap_perfmon``) keeps those in the permitted and
effective sets; the inheritable set is emptied (so is the ambient set with it, by the
kernel's rule that an ambient capability must be permitted and inheritable).

Through libcap (``libcap.so.2``, present wherever systemd is) with ctypes: capability sets
are its opaque ``cap_t`` handles and its text form (``cap_bpf,cap_perfmon=ep``), so no
structure layout is written here. Capabilities belong to a thread: the exporter drops them
before it starts its own threads, and :func:`drop` reports threads that kept more.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = ["current_text", "drop", "parse_keep"]

_lib: ctypes.CDLL | None = None


def _libcap() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("cap") or "libcap.so.2"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError as e:
            raise OSError(
                f"--capabilities.keep needs libcap ({name}: {e}); install libcap2 "
                "(Debian/Ubuntu) or libcap (Fedora), or leave --capabilities.keep=all"
            ) from None
        lib.cap_from_name.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
        lib.cap_from_name.restype = ctypes.c_int
        lib.cap_from_text.argtypes = [ctypes.c_char_p]
        lib.cap_from_text.restype = ctypes.c_void_p
        lib.cap_get_proc.argtypes = []
        lib.cap_get_proc.restype = ctypes.c_void_p
        lib.cap_set_proc.argtypes = [ctypes.c_void_p]
        lib.cap_set_proc.restype = ctypes.c_int
        lib.cap_to_text.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.cap_to_text.restype = ctypes.c_void_p
        lib.cap_free.argtypes = [ctypes.c_void_p]
        lib.cap_free.restype = ctypes.c_int
        _lib = lib
    return _lib


def parse_keep(text: str) -> list[str] | None:
    """``--capabilities.keep``'s value: None for ``all``, [] for ``none``, else the
    capability names (lower case, each checked against libcap). Raises ValueError naming
    an unknown capability."""
    text = text.strip()
    if text == "all":
        return None
    if text == "none":
        return []
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(
            "--capabilities.keep is empty: give 'all', 'none' or names like cap_bpf,cap_perfmon"
        )
    lib = _libcap()
    for n in names:
        value = ctypes.c_int()
        if not n.startswith("cap_") or lib.cap_from_name(n.encode(), ctypes.byref(value)) != 0:
            raise ValueError(
                f"--capabilities.keep: unknown capability '{n}' (names as in capabilities(7), "
                "e.g. cap_bpf, cap_perfmon, cap_syslog; or 'all' or 'none')"
            )
    return names


def _text(cap: int | None) -> str:
    lib = _libcap()
    if not cap:
        err = ctypes.get_errno()
        raise OSError(err, f"libcap: {os.strerror(err)}")
    raw = lib.cap_to_text(cap, None)
    try:
        return ctypes.string_at(raw).decode() if raw else "?"
    finally:
        if raw:
            lib.cap_free(raw)


def current_text() -> str:
    """This thread's capabilities in libcap's text form (``=`` when it has none)."""
    lib = _libcap()
    cap = lib.cap_get_proc()
    try:
        return _text(cap)
    finally:
        if cap:
            lib.cap_free(cap)


def _status_mask(status: str, field: str) -> int:
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    return 0


def drop(keep: Sequence[str]) -> tuple[str, list[str]]:
    """Keep only ``keep`` (names from :func:`parse_keep`) in this thread's permitted and
    effective sets; empty the others. Returns (the new text form, the names of other
    threads of the process that still hold capabilities beyond those: started before the
    drop, they keep theirs). Raises OSError when the kernel refuses (e.g. a capability to
    keep that the process does not have)."""
    lib = _libcap()
    spec = (",".join(keep) + "=ep") if keep else "="
    want = lib.cap_from_text(spec.encode())
    if not want:
        err = ctypes.get_errno()
        raise ValueError(f"--capabilities.keep: libcap refused '{spec}': {os.strerror(err)}")
    try:
        if lib.cap_set_proc(want) != 0:
            err = ctypes.get_errno()
            raise OSError(
                err,
                f"--capabilities.keep: cannot set capabilities to '{spec}' (from "
                f"'{current_text()}'): {os.strerror(err)}",
            )
    finally:
        lib.cap_free(want)
    me = Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text()
    allowed = _status_mask(me, "CapEff") | _status_mask(me, "CapPrm")
    others: list[str] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended
            continue
        if _status_mask(status, "CapEff") & ~allowed or _status_mask(status, "CapPrm") & ~allowed:
            name = next(ln.split(None, 1)[1] for ln in status.splitlines() if ln[:5] == "Name:")
            others.append(f"{name.strip()} (tid {task.name})")
    return current_text(), others
