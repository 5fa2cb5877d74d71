"""MapHandle: what a BPF map is apart from its elements: its fd and libbpf handle,
metadata and open-phase settings, BTF and the key/value codecs, close()."""

from __future__ import annotations

import builtins
import functools
import operator
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ._codec import Codec, make_codec
from ._core import (
    call,
    check_int,
    cstr,
    errnos,
    mapcalls,
    mapfd,
    pystr,
)
from ._core.mapcalls import buffer as _buffer
from ._core.mapcalls import new_value as _new_value
from ._core.owner import Borrower, Owner, unguarded
from ._kernel_info import map_info_by_fd
from ._mmap import MappedArray, open_mapped
from ._types import BpfMapType, BtfType, MapInfo, enum_arg
from .btf import Btf
from .errors import BpfClosedError, BpfError, BpfPhaseError

if TYPE_CHECKING:
    from ._protocols import ObjectLike

_ORDER: Literal["little", "big"] = sys.byteorder  # BPF data is in host byte order

__all__ = ["MapHandle", "possible_cpus"]

KT = TypeVar("KT")
VT = TypeVar("VT")
KT2 = TypeVar("KT2")
VT2 = TypeVar("VT2")

_PERCPU = frozenset(
    {
        BpfMapType.PERCPU_HASH,
        BpfMapType.PERCPU_ARRAY,
        BpfMapType.LRU_PERCPU_HASH,
        BpfMapType.PERCPU_CGROUP_STORAGE,
    }
)
_BATCH = frozenset(
    {
        BpfMapType.HASH,
        BpfMapType.PERCPU_HASH,
        BpfMapType.LRU_HASH,
        BpfMapType.LRU_PERCPU_HASH,
        BpfMapType.ARRAY,
        BpfMapType.PERCPU_ARRAY,
    }
)
_NOT_FOUND = errnos.RET_NOT_FOUND
_UNSUPPORTED = tuple(-e for e in errnos.UNSUPPORTED_OR_INVALID)
_COUNTABLE = frozenset(
    {BpfMapType.HASH, BpfMapType.LRU_HASH, BpfMapType.PERCPU_HASH, BpfMapType.LRU_PERCPU_HASH}
)
_REPR_COUNT_LIMIT = 1024  # repr() counts entries of maps this small: one cheap batch read
_ALL_INDICES = frozenset({BpfMapType.ARRAY, BpfMapType.PERCPU_ARRAY})
_KEYLESS = frozenset(
    {
        BpfMapType.QUEUE,
        BpfMapType.STACK,
        BpfMapType.BLOOM_FILTER,
        BpfMapType.RINGBUF,
        BpfMapType.USER_RINGBUF,
    }
)
_lookup_scalar = mapfd.lookup_scalar
_update_scalar = mapfd.update_scalar
_map_lookup = mapfd.lookup
_map_update = mapfd.update
_map_delete = mapfd.delete
_LOOKUP_AGAIN = mapfd.LOOKUP_AGAIN
_CLOSED = mapfd.CLOSED  # a revoked fd handle: the map or its object is closed
_ERANGE = errnos.RET_OUT_OF_RANGE
_REFUSED = errnos.BATCH_REFUSED
_BATCH_CHUNK = 4096

_ncpus: int = 0


# maps whose entries always exist (delete is refused)
_ARRAY_TYPES = frozenset(
    {
        BpfMapType.ARRAY,
        BpfMapType.PERCPU_ARRAY,
        BpfMapType.PROG_ARRAY,
        BpfMapType.PERF_EVENT_ARRAY,
        BpfMapType.CGROUP_ARRAY,
        BpfMapType.ARRAY_OF_MAPS,
    }
)


def possible_cpus() -> int:
    """Number of possible CPUs (the length of per-CPU value lists).

    Example::

        values = obj.maps["percpu_counts"].lookup_percpu(0)
        assert values is None or len(values) == tinybpf.possible_cpus()
    """
    global _ncpus
    if not _ncpus:
        _ncpus = call("libbpf_num_possible_cpus", what="libbpf_num_possible_cpus")
    return _ncpus


def _raise(ret: int, message: str, log: Any = None) -> None:
    if ret == _CLOSED:
        raise BpfClosedError(f"{message}: the map (or its BpfObject) was closed")
    check_int(ret, message, log)


def _fd_handle(fd: int) -> Any:
    """The handle through which element operations borrow ``fd`` (tinybpf._core.mapfd)."""
    return mapfd.new_handle(fd)


def _u32_setting(name: str, what: str, reset_codecs: bool = False) -> Any:
    """A map attribute read from libbpf (kept for after close) and settable before load."""
    getter = mapcalls.getter(name)
    setter = mapcalls.setter(name)
    attr = f"_{name}"

    def get(self: MapHandle[Any, Any]) -> int:
        return self._u32_prop(getter, attr)

    def set_(self: MapHandle[Any, Any], value: int) -> None:
        p = self._before_load(name)
        check_int(setter(p, value), f"set {name} of '{self._name}' failed")
        if reset_codecs:
            self._reset_codecs()
        if name == "value_size" and self._obj is not None:
            self._obj._layout_changed()  # a data section's BTF may have been resized

    return property(get, set_, doc=f"{what} (settable before load).")


class MapHandle(Generic[KT, VT], Borrower):
    """The handle half of :class:`~tinybpf.BpfMap` (see tinybpf.map)."""

    # raw fd / pointer helpers (see tinybpf._core.owner.Borrower)
    _handles = frozenset({"_live_fd", "fd", "_before_load"})

    def __init__(
        self,
        map_ptr: Any = None,
        obj: ObjectLike | None = None,
        *,
        owned_fd: int | None = None,
        name: str | None = None,
        map_type: BpfMapType | None = None,
        key_size: int | None = None,
        value_size: int | None = None,
        max_entries: int | None = None,
        key_type: builtins.type[KT] | None = None,
        value_type: builtins.type[VT] | None = None,
        btf: Btf | None = None,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
        validate_field_names: bool = True,
        shared: _Shared | None = None,
    ) -> None:
        self._closed = False
        self._ptr = map_ptr
        self._obj = obj
        # an object's map borrows the object's owner; a standalone map is its own
        self._guard = obj._guard if obj is not None else Owner()
        self._owned_fd = owned_fd
        self._fdh: Any = None if owned_fd is None else _fd_handle(owned_fd)
        if map_ptr is not None:
            self._name = name if name is not None else pystr(mapcalls.map_name(map_ptr))
        else:
            self._name = name or ""
            self._type = BpfMapType(map_type if map_type is not None else 0)
            self._key_size = key_size or 0
            self._value_size = value_size or 0
            self._max_entries = max_entries or 0
        self._btf_obj = btf
        self._btf_key_id = btf_key_type_id
        self._btf_value_id = btf_value_type_id
        self._key_type = key_type
        self._value_type = value_type
        self._validate_names = validate_field_names
        self._key_codec: Codec | None = None
        self._value_codec: Codec | None = None
        self._fd_cache = owned_fd if owned_fd is not None else -1
        self._btf_cache: dict[str, BtfType | None] = {}
        self._fast_state: _Fast | None = None
        self._spool: list[Any] | None = None  # the scalar fast path's buffers
        self._ispec: int | None = None  # integer keys and values: see _Fast.ispec
        self._iget: Callable[[Any], Any] | None = None  # and their lookup
        self._iset: Callable[[Any, Any], int] | None = None  # and update
        self._owns_btf = btf is not None  # typed() views share their map's BTF
        self._shared = shared
        self._mapped: MappedArray | None = None  # mmap-able arrays: _mmap.py
        if shared is not None:  # an object's map: start from what an earlier wrapper built
            self._btf_cache = shared.btf
            self._key_codec = shared.kc
            self._value_codec = shared.vc
            f = shared.fast
            if f is not None:
                self._fast_state = f
                self._spool = f.spool
                self._ispec = f.ispec
                self._iget = f.iget
                self._iset = f.iset
                self._mapped = shared.mapped

    # --- state --------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise BpfClosedError("Map is closed")
        if self._obj is not None and self._obj._closed:
            raise BpfClosedError("Cannot use map after BpfObject is closed")

    def _mp(self) -> Any:
        self._check_open()
        if not self._guard.held():
            raise unguarded("BpfMap._mp()")
        return self._ptr

    def _before_load(self, what: str) -> Any:
        p = self._mp()
        if p is None or (self._obj is not None and self._obj._loaded):
            raise BpfPhaseError(
                f"cannot set {what} of map '{self._name}' after load (open phase only)"
            )
        return p

    def _live_fd(self) -> int:
        fd = self._fd_cache
        if fd >= 0:
            if self._closed or (self._obj is not None and self._obj._closed):
                self._check_open()
            return fd
        self._check_open()
        if self._obj is not None and not self._obj._loaded:
            raise BpfPhaseError(f"map '{self._name}' has no fd before load()")
        if not mapcalls.autocreate(self._ptr):
            raise BpfError(f"map '{self._name}' was not created (autocreate is off)", 19)
        fd = int(mapcalls.fd(self._ptr))
        if fd < 0:
            raise BpfError(f"map '{self._name}' has no fd (not created)", -fd)
        shared = self._shared
        if shared is None:
            self._fdh = _fd_handle(fd)  # (before the fd is published: close revokes it)
        else:  # an object's map: one handle for every wrapper, revoked by the object
            if shared.fdh is None:
                shared.fdh = _fd_handle(fd)
            self._fdh = shared.fdh
        self._fd_cache = fd
        return fd

    def _handle(self) -> Any:
        """The fd handle element operations pass to C (checks open and phase)."""
        self._live_fd()
        return self._fdh

    def _revoke(self) -> None:
        """No element operation reaches the fd after this returns (calls in flight in
        other threads are waited for); called before the fd is closed."""
        self._fast_state = None
        self._spool = None
        self._ispec = None
        self._iget = None
        self._iset = None
        self._drop_mapped()
        h = self._fdh
        if h is not None:
            mapfd.revoke(h)

    @property
    def fd(self) -> int:
        return self._live_fd()

    def kernel_info(self) -> Any:
        """The kernel's view of the map (:class:`tinybpf.KernelMapInfo`: id, flags, BTF id)."""

        return map_info_by_fd(self._live_fd())

    @property
    def id(self) -> int:
        """The map's kernel id."""
        return int(self.kernel_info().id)

    @property
    def is_standalone(self) -> bool:
        return self._owned_fd is not None

    @property
    def name(self) -> str:
        return self._name

    @property
    def type(self) -> BpfMapType:
        if self._ptr is not None and not self._obj_closed():
            return BpfMapType(mapcalls.map_type(self._ptr))
        return BpfMapType(self._static("_type", BpfMapType.UNSPEC))

    @type.setter
    def type(self, value: BpfMapType | str | int) -> None:
        p = self._before_load("type")
        value = enum_arg(BpfMapType, value, "map type")
        call("bpf_map__set_type", p, int(value), what=f"set type of map '{self._name}'")
        self._reset_codecs()

    def _snapshot(self) -> None:
        """Cache the metadata so it stays readable after the object is closed (and drop
        the fast-path state, whose fd dies with the object)."""
        if self._shared is not None:
            self._shared.fast = None
        self._fast_state = None
        self._spool = None
        self._ispec = None
        self._iget = None
        self._iset = None
        if self._ptr is None or self._obj_closed():
            return
        p = self._ptr
        mtype, self._key_size, self._value_size, self._max_entries, self._map_flags = (
            mapcalls.shape(p)
        )
        self._type = BpfMapType(mtype)

    def _obj_closed(self) -> bool:
        return self._obj is not None and self._obj._closed

    def _static(self, attr: str, default: Any) -> Any:
        return getattr(self, attr, default)

    def _u32_prop(self, getter: Any, attr: str) -> int:
        if self._ptr is not None and not self._obj_closed():
            value = int(getter(self._ptr))
            setattr(self, attr, value)
            return value
        return int(self._static(attr, 0))

    key_size = _u32_setting("key_size", "Size of a key in bytes", reset_codecs=True)
    value_size = _u32_setting("value_size", "Size of a value in bytes", reset_codecs=True)
    max_entries = _u32_setting("max_entries", "Maximum number of entries")
    map_flags = _u32_setting("map_flags", "BPF_F_* flags the map is created with")
    numa_node = _u32_setting("numa_node", "NUMA node of the map's memory")

    @property
    def autocreate(self) -> bool:
        return bool(mapcalls.autocreate(self._mp()))

    @autocreate.setter
    def autocreate(self, value: bool) -> None:
        p = self._before_load("autocreate")
        call("bpf_map__set_autocreate", p, bool(value), what="set autocreate")

    @property
    def pin_path(self) -> str | None:
        p = self._mp()
        if p is None:
            return None
        return pystr(mapcalls.pin_path(p)) or None

    @pin_path.setter
    def pin_path(self, path: str | None) -> None:
        p = self._before_load("pin_path")
        call(
            "bpf_map__set_pin_path",
            p,
            cstr(path) if path else mapcalls.NULL,
            what=f"set pin_path of '{self._name}'",
        )

    def reuse_fd(self, fd: int) -> None:
        """Make this map use an existing map fd (e.g. a pinned or created map) at load."""
        p = self._before_load("reuse_fd")
        call("bpf_map__reuse_fd", p, fd, what=f"reuse fd {fd} for map '{self._name}'")

    @property
    def info(self) -> MapInfo:
        return MapInfo(
            name=self._name,
            type=self.type,
            key_size=self.key_size,
            value_size=self.value_size,
            max_entries=self.max_entries,
        )

    @property
    def is_percpu(self) -> bool:
        return self.type in _PERCPU

    @property
    def is_internal(self) -> bool:
        """True for the maps libbpf makes for global data (.data, .bss, .rodata, .kconfig)."""
        return self._ptr is not None and bool(mapcalls.is_internal(self._mp()))

    # --- BTF ----------------------------------------------------------------------------
    def _btf(self) -> Btf | None:
        if self._btf_obj is not None:
            return self._btf_obj
        if self._obj is not None:
            return self._obj._btf_model()
        return None

    def _btf_type(self, which: str) -> BtfType | None:
        self._check_open()
        if which in self._btf_cache:
            return self._btf_cache[which]
        btf = self._btf()
        if self._ptr is not None:
            tid = mapcalls.btf_type_id(self._ptr, which)
        else:
            tid = self._btf_key_id if which == "key" else self._btf_value_id
        result = btf.resolve(tid) if btf is not None and tid else None
        self._btf_cache[which] = result
        return result

    @property
    def btf_key(self) -> BtfType | None:
        """The resolved BTF type of keys, or None."""
        return self._btf_type("key")

    @property
    def btf_value(self) -> BtfType | None:
        """The resolved BTF type of values, or None."""
        return self._btf_type("value")

    def _ctype_for(self, bt: BtfType) -> Any:
        btf = self._btf()
        return None if btf is None else btf.ctype(bt.type_id)

    def _reset_codecs(self) -> None:
        if self._shared is not None:
            self._shared.reset()
        self._key_codec = None
        self._value_codec = None
        self._fast_state = None
        self._spool = None
        self._ispec = None
        self._iget = None
        self._iset = None
        self._drop_mapped()
        self._btf_cache.clear()

    def _set_mapped(self, mapped: MappedArray | None) -> None:
        self._mapped = mapped
        if self._shared is not None:
            self._shared.mapped = mapped

    def _drop_mapped(self) -> None:
        mapped, self._mapped = self._mapped, None
        if self._shared is not None:
            mapped = mapped or self._shared.mapped
            self._shared.mapped = None
        if mapped is not None:
            mapped.close()

    def _fast(self) -> _Fast:
        """Everything the element operations need, computed once after load."""
        f = self._fast_state
        if f is None:
            h = self._handle()
            f = self._fast_state = _Fast(self, h)
            if self._shared is not None:
                self._shared.fast = f
            self._set_mapped(open_mapped(self))
            self._spool = f.spool
            self._ispec = f.ispec
            self._iget = f.iget
            self._iset = f.iset
        return f

    def _kc(self) -> Codec:
        c = self._key_codec
        if c is None:
            c = self._key_codec = make_codec(
                self.key_size,
                self._key_type,
                self.btf_key,
                "Key",
                self._name,
                self._validate_names,
                self._ctype_for,
            )
            if self._shared is not None:
                self._shared.kc = c
        return c

    def _vc(self) -> Codec:
        c = self._value_codec
        if c is None:
            c = self._value_codec = make_codec(
                self.value_size,
                self._value_type,
                self.btf_value,
                "Value",
                self._name,
                self._validate_names,
                self._ctype_for,
            )
            if self._shared is not None:
                self._shared.vc = c
        return c

    def _value_stride(self) -> int:
        return (int(self.value_size) + 7) & ~7

    # --- lifetime -----------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """Whether the map can no longer be used: a standalone map was closed, or the object
        of an object's map was."""
        return self._closed or (self._obj is not None and self._obj._closed)

    def close(self) -> None:
        """Close a standalone map's fd. For an object's map this is a no-op: the object
        owns it. Element operations in flight in other threads end first; later ones raise
        ``BpfClosedError``."""
        if self._owned_fd is None or self._closed:
            return
        g = self._guard
        with g.lock:
            if self._closed:
                return
            self._closed = True
            self._revoke()
            fd, self._fd_cache = self._owned_fd, -1
            btf = self._btf_obj if self._obj is None and self._owns_btf else None
            g.release(functools.partial(_close_fd, fd, btf))

    def __del__(self) -> None:
        if getattr(self, "_owned_fd", None) is not None and not getattr(self, "_closed", True):
            try:
                warnings.warn(f"unclosed standalone {self!r}", ResourceWarning, stacklevel=2)
                self.close()
            except Exception:
                pass


class _Shared:
    """What the wrapper of an object's map computes once (codecs, the fast-path state, BTF
    types), kept by the object for the next wrapper of that map: the object holds its
    wrappers weakly, and one built anew starts warm. Nothing here refers to the map or
    its object."""

    __slots__ = ("btf", "fast", "fdh", "kc", "mapped", "vc")

    def __init__(self) -> None:
        self.btf: dict[str, BtfType | None] = {}
        self.kc: Codec | None = None
        self.vc: Codec | None = None
        self.fast: _Fast | None = None
        # the map's fd handle, made once after load and revoked by the object's close()
        # (whether or not a wrapper of the map is alive then)
        self.fdh: Any = None
        self.mapped: MappedArray | None = None  # mmap-able arrays: _mmap.py

    def reset(self) -> None:
        self.btf.clear()
        self.kc = self.vc = self.fast = None
        if self.mapped is not None:
            self.mapped.close()
            self.mapped = None


def _percpu_decoder(m: MapHandle[Any, Any]) -> Callable[[Any], list[Any]]:
    """Decode a per-CPU value buffer into one value per possible CPU."""
    dec = m._vc().decode
    vs = m.value_size
    stride = m._value_stride()
    ncpu = possible_cpus()

    def decode(buf: Any) -> list[Any]:
        raw = _buffer(buf)
        return [dec(raw[i * stride : i * stride + vs]) for i in range(ncpu)]

    return decode


def _value_encoder(m: MapHandle[Any, Any]) -> Callable[[Any], bytes]:
    """Encode a value of ``m`` (a map for map-in-map, one value or a list per CPU for
    per-CPU maps); the function holds no reference to ``m``."""
    name = m._name
    mtype = m.type
    vs = m.value_size
    enc = m._vc().encode
    if not m.is_percpu:

        def encode(value: Any) -> bytes:
            if isinstance(value, MapHandle):
                if mtype not in (BpfMapType.ARRAY_OF_MAPS, BpfMapType.HASH_OF_MAPS):
                    raise TypeError(f"map '{name}' ({mtype.name}) cannot hold a map")
                return value.fd.to_bytes(vs, _ORDER)
            return enc(value)

        return encode
    ncpu = possible_cpus()
    stride = m._value_stride()

    def encode_percpu(value: Any) -> bytes:
        if isinstance(value, MapHandle):
            raise TypeError(f"map '{name}' ({mtype.name}) cannot hold a map")
        buf = bytearray(stride * ncpu)
        if isinstance(value, (list, tuple)):
            if len(value) != ncpu:
                raise ValueError(
                    f"per-CPU value for '{name}' needs {ncpu} items (one per possible "
                    f"CPU), got {len(value)}"
                )
            items: Sequence[Any] = value
        else:
            items = [value] * ncpu
        for i, v in enumerate(items):
            buf[i * stride : i * stride + vs] = enc(v)
        return bytes(buf)

    return encode_percpu


def _close_fd(fd: int, btf: Btf | None) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    if btf is not None:
        btf.close()


class _Fast:
    """Per-map state of the element operations, built once after load."""

    __slots__ = (
        "h",
        "iget",
        "iset",
        "ispec",
        "kenc",
        "ks",
        "pool",
        "spool",
        "stypes",
        "venc",
        "vread",
        "vtype",
    )

    vread: Callable[[Any], Any]
    venc: Callable[[Any], bytes]

    def __init__(self, m: MapHandle[Any, Any], h: Any) -> None:
        kc = m._kc()
        vc = m._vc()
        self.h = h  # the map's fd handle (struct tinybpf_fd): C borrows the fd per call
        self.ks = m.key_size
        vs = m.value_size
        self.kenc = kc.encode
        self.pool: list[Any] = []
        # scalar keys and values: pooled typed buffers, no encoding or decoding calls
        self.spool: list[Any] | None = None
        self.stypes = (kc.scalar, vc.scalar)
        if kc.scalar is not None and vc.scalar is not None and not m.is_percpu and self.ks:
            self.spool = []
        # integer keys and values of up to 8 bytes: m[k] = v passes the fd handle and
        # (sizes, signs) as one integer to tinybpf_update_ints (layout in ffi_build/shim.c)
        self.ispec: int | None = None
        self.iget: Callable[[Any], Any] | None = None
        self.iset: Callable[[Any, Any], int] | None = None
        kt, vt = self.stypes
        if self.spool is not None and kt and vt and 0 < vs <= 8 and vt.startswith(("int", "uint")):
            self.ispec = (
                self.ks | (kt.startswith("int") << 4) | (vs << 8) | (vt.startswith("int") << 12)
            )
            lookup = mapfd.lookup_ints_s if vt.startswith("int") else mapfd.lookup_ints_u
            self.iget = functools.partial(lookup, h, self.ispec)
            self.iset = functools.partial(mapfd.update_ints, h, self.ispec)
        if m.is_percpu or m.type in (BpfMapType.ARRAY_OF_MAPS, BpfMapType.HASH_OF_MAPS):
            total = m._value_stride() * possible_cpus() if m.is_percpu else vs
            self.vtype = f"char[{max(total, 1)}]"
            # closures, not bound methods: the map's state must not point back at the map
            # (a cycle would keep the map, and through it the object, alive until the GC)
            self.venc = _value_encoder(m)
            if m.is_percpu:
                self.vread = _percpu_decoder(m)
            else:
                dec = vc.decode
                self.vread = lambda b: dec(_buffer(b, vs))
            return
        self.venc = vc.encode
        if vc.scalar is not None:
            self.vtype = f"{vc.scalar}[1]"
            self.vread = operator.itemgetter(0)
        else:
            self.vtype = f"char[{max(vs, 1)}]"
            dec = vc.decode
            if dec is bytes:
                self.vread = lambda b: _buffer(b, vs)[:]
            else:
                self.vread = lambda b: dec(_buffer(b, vs))

    def new_item(self) -> tuple[Any, int, int, int]:
        """(value buffer, fd handle, key size, key is signed): one buffer set of the scalar
        path."""
        kt, vt = self.stypes
        assert kt is not None
        return _new_value(f"{vt}[1]"), self.h, self.ks, int(kt.startswith("int"))
