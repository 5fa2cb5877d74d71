"""Label decoders of ebpf_exporter's schema: bytes of a map key field in, label text out.

Decoders chain: each takes the previous one's output (the first one the raw key bytes).
Numbers travel between decoders as decimal text (``uint`` first, then ``errno``,
``syscall``, ``cgroup``, ``static_map``...). A decoder raises :class:`SkipLabelSet` to drop
the whole entry (``regexp`` without a match) and :class:`DecodeError` for input it cannot
decode (counted in ``ebpf_exporter_decoder_errors_total``).
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import os
import platform
import re
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from .schema import DecoderSpec, Label

__all__ = [
    "DECODERS",
    "DecodeError",
    "DecoderSet",
    "SkipLabelSet",
    "decode_uint",
    "set_pci_ids_path",
]

_ORDER = sys.byteorder


class SkipLabelSet(Exception):
    """The entry is dropped (e.g. a regexp decoder without a match)."""


class DecodeError(ValueError):
    """A decoder could not decode its input."""


Decoder = Callable[[bytes, DecoderSpec], bytes]


def _number(data: bytes, what: str) -> int:
    try:
        return int(data.decode("ascii"), 0 if data[:2] in (b"0x", b"0o", b"0b") else 10)
    except (UnicodeDecodeError, ValueError):
        raise DecodeError(
            f"{what} expects a decimal number (put the 'uint' decoder before it), got {data!r}"
        ) from None


def decode_uint(data: bytes, spec: DecoderSpec | None = None) -> bytes:
    """An unsigned 1, 2, 4 or 8 byte integer in host byte order, as decimal text."""
    if len(data) not in (1, 2, 4, 8):
        raise DecodeError(f"uint decodes 1, 2, 4 or 8 bytes, got {len(data)}")
    return str(int.from_bytes(data, _ORDER)).encode()


def _string(data: bytes, spec: DecoderSpec) -> bytes:
    nul = data.find(b"\0")
    return data if nul < 0 else data[:nul]


def _hex(data: bytes, spec: DecoderSpec) -> bytes:
    return data.hex().encode()


def _inet_ip(data: bytes, spec: DecoderSpec) -> bytes:
    if len(data) == 4:
        return str(ipaddress.IPv4Address(data)).encode()
    if len(data) == 16:
        return str(ipaddress.IPv6Address(data)).encode()
    raise DecodeError(f"inet_ip decodes 4 (IPv4) or 16 (IPv6) bytes, got {len(data)}")


def _dname(data: bytes, spec: DecoderSpec) -> bytes:
    parts: list[bytes] = []
    i = 0
    while i < len(data):
        n = data[i]
        if n == 0:
            break
        if n & 0xC0:
            raise DecodeError(f"dname: compressed or invalid label length {n:#x} at {i}")
        if i + 1 + n > len(data):
            raise DecodeError(f"dname: label of {n} bytes at {i} runs past the end")
        parts.append(data[i + 1 : i + 1 + n])
        i += 1 + n
    return b".".join(parts)


def _static_map(data: bytes, spec: DecoderSpec) -> bytes:
    key = data.decode(errors="replace")
    value = (spec.static_map or {}).get(key)
    if value is not None:
        return value.encode()
    return data if spec.allow_unknown else f"unknown:{key}".encode()


def _regexp(data: bytes, spec: DecoderSpec) -> bytes:
    text = data.decode(errors="replace")
    for pat in spec.regexps:
        if re.search(pat, text):
            return data
    raise SkipLabelSet


def _errno_name(data: bytes, spec: DecoderSpec) -> bytes:
    n = _number(data, "errno")
    return _errno.errorcode.get(n, f"unknown:{n}").encode()


def _syscall_table() -> dict[int, str]:
    from ._syscalls import GENERIC, X86_64

    return X86_64 if platform.machine() == "x86_64" else GENERIC


def _syscall(data: bytes, spec: DecoderSpec) -> bytes:
    n = _number(data, "syscall")
    name = _syscall_table().get(n)
    return (name or f"unknown_syscall:{n}").encode()


def _ifname(data: bytes, spec: DecoderSpec) -> bytes:
    if len(data) < 4:
        raise DecodeError(f"ifname decodes a 4 byte interface index, got {len(data)} bytes")
    idx = int.from_bytes(data[:4], _ORDER)
    try:
        return socket.if_indextoname(idx).encode()
    except OSError:
        return f"unknown:{idx}".encode()


def _majorminor_name(major: int, minor: int) -> str | None:
    try:
        with open("/proc/partitions") as f:
            for line in f:
                fields = line.split()
                if len(fields) == 4 and fields[0] == str(major) and fields[1] == str(minor):
                    return fields[3]
    except OSError:
        return None
    return None


def _majorminor(data: bytes, spec: DecoderSpec) -> bytes:
    if len(data) < 4:
        raise DecodeError(f"majorminor decodes a 4 byte device number, got {len(data)} bytes")
    dev = int.from_bytes(data[:4], _ORDER)
    # the kernel's new_encode_dev(): minor's low byte, major, then minor's high bits
    major = (dev & 0xFFF00) >> 8
    minor = (dev & 0xFF) | ((dev >> 12) & 0xFFF00)
    name = _majorminor_name(major, minor)
    return (name or f"unknown:{major}:{minor}").encode()


# --- kernel symbols -------------------------------------------------------------------------


class _Ksyms:
    def __init__(self) -> None:
        self._table: object = None
        self._lock = threading.Lock()

    def name(self, addr: int) -> str | None:
        from .. import KernelSymbols

        with self._lock:
            if self._table is None:
                self._table = KernelSymbols()
            table: KernelSymbols = self._table  # type: ignore[assignment]
        sym = table.resolve(addr)
        if sym is None or not sym.name:
            return None
        return f"{sym.name}\t[{sym.module}]" if sym.module else sym.name


_KSYMS = _Ksyms()


def preload_kernel_symbols() -> None:
    """Read /proc/kallsyms now (the ksym and kstack decoders read it on first use): before
    the process drops CAP_SYSLOG, without which the kernel shows every address as 0."""
    _KSYMS.name(0)


def _ksym(data: bytes, spec: DecoderSpec) -> bytes:
    if len(data) < 8:
        raise DecodeError(f"ksym decodes an 8 byte address, got {len(data)} bytes")
    addr = int.from_bytes(data[:8], _ORDER)
    name = _KSYMS.name(addr)
    return (name or f"unknown_addr:0x{addr:x}").encode()


def _kstack(data: bytes, spec: DecoderSpec) -> bytes:
    if len(data) % 8:
        raise DecodeError(f"kstack decodes 8 byte addresses, got {len(data)} bytes")
    frames: list[str] = []
    for off in range(0, len(data), 8):
        addr = int.from_bytes(data[off : off + 8], _ORDER)
        if addr == 0:
            break
        frames.append(_KSYMS.name(addr) or "??")
    return "\n".join(f.split("\t")[0] for f in frames).encode()


# --- cgroups --------------------------------------------------------------------------------

_cgroup_cache: dict[int, str] = {}
_cgroup_lock = threading.Lock()


def _cgroup2_mounts() -> list[str]:
    """Where cgroup v2 is mounted (the ids of bpf_get_current_cgroup_id() live there)."""
    found: list[str] = []
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "cgroup2":
                    found.append(parts[1])
    except OSError:
        pass
    return found or ["/sys/fs/cgroup"]


def _refresh_cgroups() -> None:
    found: dict[int, str] = {}
    for root in _cgroup2_mounts():
        _walk_cgroups(root, found)
    _cgroup_cache.update(found)


def cgroup_paths() -> dict[int, str]:
    """Every cgroup v2 directory by its id (the inode number)."""
    found: dict[int, str] = {}
    for root in _cgroup2_mounts():
        _walk_cgroups(root, found)
    return found


def _walk_cgroups(root: str, found: dict[int, str]) -> None:
    for dirpath, _dirnames, _files in os.walk(root):
        try:
            found.setdefault(os.stat(dirpath).st_ino, dirpath)
        except OSError:
            continue


def _cgroup(data: bytes, spec: DecoderSpec) -> bytes:
    cid = _number(data, "cgroup")
    with _cgroup_lock:
        path = _cgroup_cache.get(cid)
        if path is None:
            _refresh_cgroups()  # a cgroup id is the inode number of its cgroupfs directory
            path = _cgroup_cache.get(cid)
    return (path or f"unknown_cgroup_id:{cid}").encode()


# --- PCI ids --------------------------------------------------------------------------------

_PCI_PATHS = ["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids", "/usr/share/pci.ids"]
_MISSING_PCI = b"missing pci.ids db"


class _PciDb:
    def __init__(self) -> None:
        self.vendors: dict[int, str] = {}
        self.devices: dict[int, str] = {}
        self.classes: dict[int, str] = {}
        self.subclasses: dict[int, str] = {}


_pci: _PciDb | None = None
_pci_path: str | None = None
_pci_lock = threading.Lock()


def set_pci_ids_path(path: str | os.PathLike[str] | None) -> None:
    """Read PCI names from ``path`` (a pci.ids file) instead of the system's copy."""
    global _pci, _pci_path
    with _pci_lock:
        _pci = None
        _pci_path = os.fspath(path) if path is not None else None


def _parse_pci_ids(text: str) -> _PciDb:
    db = _PciDb()
    vendor: int | None = None
    klass: int | None = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("C "):
            parts = line[2:].split(None, 1)
            klass, vendor = int(parts[0], 16), None
            db.classes[klass] = parts[1].strip() if len(parts) > 1 else ""
        elif not line.startswith("\t"):
            parts = line.split(None, 1)
            try:
                vendor, klass = int(parts[0], 16), None
            except ValueError:
                vendor = klass = None
                continue
            db.vendors[vendor] = parts[1].strip() if len(parts) > 1 else ""
        elif not line.startswith("\t\t"):
            parts = line.strip().split(None, 1)
            name = parts[1].strip() if len(parts) > 1 else ""
            try:
                num = int(parts[0], 16)
            except ValueError:
                continue
            if vendor is not None:
                db.devices[(vendor << 16) | num] = name
            elif klass is not None:
                db.subclasses[(klass << 8) | num] = name
    return db


def _pci_db() -> _PciDb | None:
    global _pci
    with _pci_lock:
        if _pci is None:
            for p in [_pci_path] if _pci_path else _PCI_PATHS:
                try:
                    _pci = _parse_pci_ids(Path(p).read_text(errors="replace"))
                    break
                except OSError:
                    continue
        return _pci


def _pci_vendor(data: bytes, spec: DecoderSpec) -> bytes:
    db = _pci_db()
    if db is None:
        return _MISSING_PCI
    n = _number(data, "pci_vendor")
    name = db.vendors.get(n)
    return (name or f"unknown pci vendor: 0x{n:04x}").encode()


def _pci_device(data: bytes, spec: DecoderSpec) -> bytes:
    db = _pci_db()
    if db is None:
        return _MISSING_PCI
    n = _number(data, "pci_device")
    name = db.devices.get(n)
    return (name or f"unknown pci device: 0x{n:08x}").encode()


def _pci_class(data: bytes, spec: DecoderSpec) -> bytes:
    db = _pci_db()
    if db is None:
        return _MISSING_PCI
    n = _number(data, "pci_class") & 0xFF
    name = db.classes.get(n)
    return (name or f"unknown pci class: 0x{n:02x}").encode()


def _pci_subclass(data: bytes, spec: DecoderSpec) -> bytes:
    db = _pci_db()
    if db is None:
        return _MISSING_PCI
    n = _number(data, "pci_subclass") & 0xFFFF
    if (n >> 8) not in db.classes:
        return f"unknown pci class: 0x{n >> 8:02x}".encode()
    name = db.subclasses.get(n)
    return (name or f"unknown pci subclass: 0x{n & 0xFF:02x} (class 0x{n >> 8:02x})").encode()


DECODERS: dict[str, Decoder] = {
    "cgroup": _cgroup,
    "dname": _dname,
    "errno": _errno_name,
    "hex": _hex,
    "ifname": _ifname,
    "inet_ip": _inet_ip,
    "ksym": _ksym,
    "kstack": _kstack,
    "majorminor": _majorminor,
    "pci_class": _pci_class,
    "pci_device": _pci_device,
    "pci_subclass": _pci_subclass,
    "pci_vendor": _pci_vendor,
    "regexp": _regexp,
    "static_map": _static_map,
    "string": _string,
    "syscall": _syscall,
    "uint": decode_uint,
}


class DecoderSet:
    """Decodes map keys into label values with a bounded cache of decoded keys.

    ``cache_size`` bounds the keys remembered per metric (0 disables the cache); ``dropped``
    counts entries evicted to keep that bound.
    """

    def __init__(self, cache_size: int = 100_000) -> None:
        self.cache_size = cache_size
        self.evicted = 0

    @staticmethod
    def decode(data: bytes, decoders: tuple[DecoderSpec, ...]) -> str:
        out = data
        for spec in decoders:
            fn = DECODERS.get(spec.name)
            if fn is None:
                raise DecodeError(f"unknown decoder '{spec.name}'")
            try:
                out = fn(out, spec)
            except (SkipLabelSet, DecodeError):
                raise
            except (ValueError, OverflowError, UnicodeError) as e:
                raise DecodeError(f"decoder '{spec.name}' failed on {out!r}: {e}") from e
        return out.decode("utf-8", errors="replace")

    @staticmethod
    def decode_labels(data: bytes, labels: tuple[Label, ...]) -> tuple[str, ...]:
        """Label values of ``data``: each label's ``size`` bytes through its decoders, its
        ``padding`` skipped. Raises SkipLabelSet or DecodeError."""
        values: list[str] = []
        off = 0
        decode = DecoderSet.decode
        for lb in labels:
            values.append(decode(data[off : off + lb.size], lb.decoders))
            off += lb.size + lb.padding
        return tuple(values)
