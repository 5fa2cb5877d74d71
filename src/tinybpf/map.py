"""BpfMap: a BPF map, with a dict-like interface and BTF-driven conversion."""

from __future__ import annotations

import builtins
import ctypes
import errno as _errno
import functools
import itertools
import operator
import os
import sys
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from ._codec import Codec, make_codec
from ._ffi import (
    NULL,
    capture_log,
    check_int,
    cstr,
    fd_kind,
    ffi,
    lib,
    new_opts,
    pystr,
    strerror,
)
from ._guard import Owner, guarded, unguarded
from ._mmap import MISS, MappedArray, open_mapped
from ._percpu import sum_structs
from ._pin import check_pin_path
from ._types import BPF_ANY, BpfMapType, BtfType, MapInfo, enum_arg
from .btf import Btf
from .errors import BpfClosedError, BpfError, BpfPhaseError, error_for_errno

if TYPE_CHECKING:
    from .object import BpfObject

_ORDER: Literal["little", "big"] = sys.byteorder  # BPF data is in host byte order

__all__ = ["BpfMap", "create_map", "lpm_key", "open_pinned_map", "possible_cpus"]

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
_ENOENT = _errno.ENOENT
_UNSUPPORTED = (-_errno.EINVAL, -_errno.EOPNOTSUPP, -524, -_errno.ENOTSUP)  # 524: ENOTSUPP
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
_lookup_scalar = lib.tinybpf_lookup_scalar
_update_scalar = lib.tinybpf_update_scalar
_map_lookup = lib.tinybpf_map_lookup
_map_update = lib.tinybpf_map_update
_map_delete = lib.tinybpf_map_delete
_LOOKUP_AGAIN = int(lib.TINYBPF_LOOKUP_AGAIN)
_CLOSED = int(lib.TINYBPF_CLOSED)  # a revoked fd handle: the map or its object is closed
_ERANGE = -_errno.ERANGE
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
        _ncpus = check_int(lib.libbpf_num_possible_cpus(), "libbpf_num_possible_cpus failed")
    return _ncpus


def _raise(ret: int, message: str, log: Any = None) -> None:
    if ret == _CLOSED:
        raise BpfClosedError(f"{message}: the map (or its BpfObject) was closed")
    check_int(ret, message, log)


def _fd_handle(fd: int) -> Any:
    """The handle through which element operations borrow ``fd`` (see tinybpf._guard)."""
    return ffi.new("struct tinybpf_fd *", {"fd": fd})


def _u32_setting(name: str, what: str, reset_codecs: bool = False) -> Any:
    """A map attribute read from libbpf (kept for after close) and settable before load."""
    getter = getattr(lib, f"bpf_map__{name}")
    setter = getattr(lib, f"bpf_map__set_{name}")
    attr = f"_{name}"

    def get(self: BpfMap[Any, Any]) -> int:
        return self._u32_prop(getter, attr)

    def set_(self: BpfMap[Any, Any], value: int) -> None:
        p = self._before_load(name)
        check_int(setter(p, value), f"set {name} of '{self._name}' failed")
        if reset_codecs:
            self._reset_codecs()
        if name == "value_size" and self._obj is not None:
            self._obj._layout_changed()  # a data section's BTF may have been resized

    return property(get, set_, doc=f"{what} (settable before load).")


@guarded(
    [
        "type",
        "_u32_prop",
        "key_size",
        "value_size",
        "max_entries",
        "map_flags",
        "numa_node",
        "autocreate",
        "pin_path",
        "reuse_fd",
        "is_internal",
        "_btf_type",
        "_live_fd",
        "kernel_info",
        "mmap",
        "_snapshot",
        "typed",
        "set_inner_map",
        "attach_struct_ops",
        "pin",
        "unpin",
    ]
)
class BpfMap(Generic[KT, VT]):
    """A BPF map. Object-owned maps come from ``obj.maps``; standalone ones from
    :func:`open_pinned_map`.

    Behaves like a dict: ``m[k]``, ``m[k] = v``, ``del m[k]``, ``k in m``, ``keys()``,
    ``values()``, ``items()``, ``get()``. Keys and values convert from BTF (ints, floats;
    structs as ctypes structures, written from one or from a dict of fields) or from the
    types given to :meth:`typed`; anything else is ``bytes``. Queue and stack maps have no
    keys (``push``/``pop``/``peek``; a key raises TypeError); ``v in bloom`` tests a bloom
    filter for ``v``.

    Example::

        counts = obj.maps["counts"]
        counts[1] = 10
        print(dict(counts.items()))
    """

    def __init__(
        self,
        map_ptr: Any = None,
        obj: BpfObject | None = None,
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
            self._name = name if name is not None else pystr(lib.bpf_map__name(map_ptr))
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
        if not lib.bpf_map__autocreate(self._ptr):
            raise BpfError(f"map '{self._name}' was not created (autocreate is off)", 19)
        fd = int(lib.bpf_map__fd(self._ptr))
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
            lib.tinybpf_fd_revoke(h)

    def _set_mapped(self, mapped: MappedArray | None) -> None:
        self._mapped = mapped
        if self._shared is not None:
            self._shared.mapped = mapped

    def _sliced(self, key: slice, values: Any = None, store: bool = False) -> Any:
        """m[a:b] and m[a:b] = values: mmap-able arrays only."""
        self._fast_state or self._fast()
        mapped = self._mapped
        if mapped is None:
            self._check_open()
            raise TypeError(
                f"map '{self._name}' takes no slices (only arrays created with BPF_F_MMAPABLE do)"
            )
        if store:
            mapped.set_slice(key, values)
            return None
        return mapped.get_slice(key)

    def _drop_mapped(self) -> None:
        mapped, self._mapped = self._mapped, None
        if self._shared is not None:
            mapped = mapped or self._shared.mapped
            self._shared.mapped = None
        if mapped is not None:
            mapped.close()

    @property
    def fd(self) -> int:
        return self._live_fd()

    def kernel_info(self) -> Any:
        """The kernel's view of the map (:class:`tinybpf.KernelMapInfo`: id, flags, BTF id)."""
        from .introspect import map_info_by_fd

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
            return BpfMapType(lib.bpf_map__type(self._ptr))
        return BpfMapType(self._static("_type", BpfMapType.UNSPEC))

    @type.setter
    def type(self, value: BpfMapType | str | int) -> None:
        p = self._before_load("type")
        value = enum_arg(BpfMapType, value, "map type")
        check_int(lib.bpf_map__set_type(p, int(value)), f"set type of map '{self._name}' failed")
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
        self._type = BpfMapType(lib.bpf_map__type(p))
        self._key_size = int(lib.bpf_map__key_size(p))
        self._value_size = int(lib.bpf_map__value_size(p))
        self._max_entries = int(lib.bpf_map__max_entries(p))
        self._map_flags = int(lib.bpf_map__map_flags(p))

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
        return bool(lib.bpf_map__autocreate(self._mp()))

    @autocreate.setter
    def autocreate(self, value: bool) -> None:
        p = self._before_load("autocreate")
        check_int(lib.bpf_map__set_autocreate(p, bool(value)), "set autocreate failed")

    @property
    def pin_path(self) -> str | None:
        p = self._mp()
        if p is None:
            return None
        return pystr(lib.bpf_map__pin_path(p)) or None

    @pin_path.setter
    def pin_path(self, path: str | None) -> None:
        p = self._before_load("pin_path")
        check_int(
            lib.bpf_map__set_pin_path(p, cstr(path) if path else NULL),
            f"set pin_path of '{self._name}' failed",
        )

    def reuse_fd(self, fd: int) -> None:
        """Make this map use an existing map fd (e.g. a pinned or created map) at load."""
        p = self._before_load("reuse_fd")
        check_int(lib.bpf_map__reuse_fd(p, fd), f"reuse fd {fd} for map '{self._name}' failed")

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
        return self._ptr is not None and bool(lib.bpf_map__is_internal(self._mp()))

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
            getter = (
                lib.bpf_map__btf_key_type_id if which == "key" else lib.bpf_map__btf_value_type_id
            )
            tid = int(getter(self._ptr))
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

    @overload
    def typed(
        self,
        *,
        key: builtins.type[KT2],
        value: builtins.type[VT2],
        validate_field_names: bool = ...,
    ) -> BpfMap[KT2, VT2]: ...
    @overload
    def typed(
        self, *, key: builtins.type[KT2], value: None = ..., validate_field_names: bool = ...
    ) -> BpfMap[KT2, Any]: ...
    @overload
    def typed(
        self, *, key: None = ..., value: builtins.type[VT2], validate_field_names: bool = ...
    ) -> BpfMap[Any, VT2]: ...
    @overload
    def typed(
        self, *, key: None = ..., value: None = ..., validate_field_names: bool = ...
    ) -> BpfMap[Any, Any]: ...
    def typed(
        self,
        *,
        key: Any = None,
        value: Any = None,
        validate_field_names: bool = True,
    ) -> BpfMap[Any, Any]:
        """A view of this map whose keys/values convert to/from the given Python types.

        Types are checked now against the map's BTF (value first, then key). By default the
        check is strict for struct layouts: kind, size, field count, names, offsets and
        field types must match. ``validate_field_names=False`` checks sizes and offsets
        only (fields may be renamed or retyped), as in the first generation. An explicit
        type of the same size as a scalar BTF type is accepted as a deliberate view: a
        ctypes integer of the other signedness (``typed(key=ctypes.c_int32)`` over a
        ``__u32`` reads and writes signed numbers), or a one-field ``ctypes.Structure``
        over its scalar. A different size is always refused.

        Example::

            signed = obj.map("counts").typed(key=ctypes.c_int32, value=ctypes.c_int64)
            signed[-1] = -5
        """
        self._check_open()
        fd: int | None = None
        if self._owned_fd is not None:
            fd = os.dup(self._live_fd())
        try:
            view: BpfMap[Any, Any] = BpfMap(
                self._ptr,
                self._obj,
                owned_fd=fd,
                name=self._name,
                map_type=self.type,
                key_size=self.key_size,
                value_size=self.value_size,
                max_entries=self.max_entries,
                key_type=key if key is not None else self._key_type,
                value_type=value if value is not None else self._value_type,
                btf=self._btf_obj,
                btf_key_type_id=self._btf_key_id,
                btf_value_type_id=self._btf_value_id,
                validate_field_names=validate_field_names,
            )
            view._owns_btf = False
            view._vc()
            view._kc()
            obj = self._obj
            if obj is not None:  # closed with the object
                if obj._views is None:
                    obj._views = weakref.WeakSet()
                obj._views.add(view)
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        return view

    # --- element access -----------------------------------------------------------------
    def _value_stride(self) -> int:
        return (int(self.value_size) + 7) & ~7

    def _encode_key(self, key: Any) -> Any:
        if self.key_size == 0:
            return NULL
        return self._kc().encode(key)

    def _decode_percpu(self, buf: Any) -> list[Any]:
        return _percpu_decoder(self)(buf)

    def _lookup_raw(self, key: Any, flags: int = 0) -> Any:
        """The raw value buffer for ``key`` (None if absent); checks open and phase."""
        f = self._fast_state or self._fast()
        if self._closed or (self._obj is not None and self._obj._closed):
            self._check_open()
        k = f.kenc(key) if f.ks else self._no_key(key)
        vbuf = ffi.new(f.vtype)
        ret = _map_lookup(f.h, k, vbuf, flags)
        if ret < 0:
            if ret == -_ENOENT:
                return None
            _raise(ret, f"Map lookup failed for '{self._name}'")
        return vbuf

    def lookup(self, key: KT, flags: int = 0) -> VT | None:
        """The value for ``key``, or None. Per-CPU maps return a list, one value per CPU."""
        f = self._fast_state or self._fast()
        if self._closed or (self._obj is not None and self._obj._closed):
            self._check_open()
        k = f.kenc(key) if f.ks else self._no_key(key)
        pool = f.pool
        try:
            vbuf = pool.pop()
        except IndexError:
            vbuf = ffi.new(f.vtype)
        ret = _map_lookup(f.h, k, vbuf, flags)
        if ret < 0:
            pool.append(vbuf)
            if ret == -_ENOENT:
                return None
            _raise(ret, f"Map lookup failed for '{self._name}'")
        value = f.vread(vbuf)
        pool.append(vbuf)
        return value  # type: ignore[no-any-return]

    def lookup_percpu(self, key: KT) -> list[VT] | None:
        """Per-CPU maps: the list of values, one per possible CPU, or None."""
        if not self.is_percpu:
            raise TypeError(
                f"lookup_percpu() is only valid for per-CPU maps, but '{self._name}' is "
                f"{self.type.name}"
            )
        vbuf = self._lookup_raw(key)
        return None if vbuf is None else self._decode_percpu(vbuf)

    def lookup_percpu_sum(self, key: KT) -> Any:
        """Per-CPU maps: the sum of the per-CPU values, or None when ``key`` is absent.

        Numbers add up to a number. Struct values add up field by field (nested structs
        and arrays element by element) into a new struct of the same type; a field that
        is not a number (a char array, a pointer) raises TypeError, a sum that does not
        fit its field raises OverflowError.
        """
        values = self.lookup_percpu(key)
        if values is None:
            return None
        if not values:
            return 0
        if isinstance(values[0], ctypes.Structure | ctypes.Union):
            return sum_structs(values, self._name)
        if not isinstance(values[0], (int, float)):
            raise TypeError(
                f"lookup_percpu_sum() requires numeric values, but got {type(values[0]).__name__}"
            )
        total: int | float = 0
        for v in values:
            total += v  # type: ignore[operator]
        return total

    def _encode_value(self, value: Any) -> bytes:
        return _value_encoder(self)(value)

    def update(self, key: KT, value: VT, flags: int = BPF_ANY) -> None:
        """Insert or replace (``BPF_ANY``), insert only (``BPF_NOEXIST``) or replace only
        (``BPF_EXIST``). Per-CPU maps take a list (one per CPU) or one value for all CPUs."""
        f = self._fast_state or self._fast()
        if self._closed or (self._obj is not None and self._obj._closed):
            self._check_open()
        k = f.kenc(key) if f.ks else self._no_key(key)
        v = f.venc(value)
        ret = _map_update(f.h, k, v, flags)
        if ret < 0:
            _raise(ret, f"update map '{self._name}' failed")

    update_percpu = update

    def delete(self, key: KT) -> bool:
        """Delete ``key``: True if it existed, False if not."""
        f = self._fast_state or self._fast()
        if self._closed or (self._obj is not None and self._obj._closed):
            self._check_open()
        ret = _map_delete(f.h, f.kenc(key) if f.ks else self._no_key(key))
        if ret < 0:
            if ret == -_ENOENT:
                return False
            _raise(ret, f"Map delete failed for '{self._name}'")
        return True

    def get(self, key: KT, default: VT | None = None) -> VT | None:
        if key is None:
            self._dict_key(key)
        value = self.lookup(key)
        return default if value is None else value

    def __getitem__(self, key: KT) -> VT:
        mapped = self._mapped
        if mapped is not None:  # an mmap-able array: a load from its memory, no syscall
            got_mapped: VT = mapped.get(key)
            if got_mapped is not MISS:
                return got_mapped
        get = self._iget
        if get is not None:
            # Integer keys and values: one C call with the key, the value returned as an
            # int. TINYBPF_LOOKUP_AGAIN (a missing key, an error, a closed map, or a value
            # that is that number) and anything C does not take fall through to the
            # general path below, which reports the outcome from its own return code.
            try:
                got: VT = get(key)
            except (OverflowError, TypeError):
                pass
            else:
                if got != _LOOKUP_AGAIN:
                    return got
        # Other scalar values (float, double): the key goes to C as an integer, the value
        # comes back in a pooled typed buffer; item = (value buffer, fd handle, key size,
        # signed).
        # _spool is None until the first general access and again once the map or its
        # object is closed, so the general path raises the closed error.
        sp = self._spool
        if sp is not None and get is None:
            try:
                item = sp.pop()
            except IndexError:
                item = self._new_item()
            try:
                ret = _lookup_scalar(item[1], key, item[2], item[3], item[0])
            except (OverflowError, TypeError):
                ret = _ERANGE  # not an int that C takes: the general path decides
            if ret == 0:
                v: VT = item[0][0]
                sp.append(item)
                return v
            sp.append(item)
            if ret == -_ENOENT:
                raise KeyError(key)
            if ret != _ERANGE:
                _raise(ret, f"Map lookup failed for '{self._name}'")
        if key is None:
            self._dict_key(key)
        if type(key) is slice:
            return self._sliced(key)  # type: ignore[no-any-return, arg-type]
        value = self.lookup(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: KT, value: VT) -> None:
        mapped = self._mapped
        if mapped is not None:  # an mmap-able array: a store to its memory, no syscall
            if mapped.set(key, value):
                return
            if type(key) is slice:
                mapped.set_slice(key, value)  # type: ignore[arg-type]
                return
        iset = self._iset
        if iset is not None:  # integer keys and values: one C call with the two integers
            try:
                ret = iset(key, value)
            except (OverflowError, TypeError):
                ret = _ERANGE  # not an int that C takes: the general path decides
            if ret == 0:
                return
            if ret != _ERANGE:
                _raise(ret, f"update map '{self._name}' failed")
            self.update(key, value)
            return
        sp = self._spool
        if sp is not None:
            try:
                item = sp.pop()
            except IndexError:
                item = self._new_item()
            try:
                item[0][0] = value  # a value of another type raises TypeError here
                ret = _update_scalar(item[1], key, item[2], item[3], item[0], 0)
            except (OverflowError, TypeError):
                ret = _ERANGE  # the general path raises the right error
            sp.append(item)
            if ret == 0:
                return
            if ret != _ERANGE:
                _raise(ret, f"update map '{self._name}' failed")
        if key is None:
            self._dict_key(key)
        if type(key) is slice:
            self._sliced(key, value, True)  # type: ignore[arg-type]
            return
        self.update(key, value)

    def _new_item(self) -> tuple[Any, int, int, int]:
        f = self._fast_state or self._fast()
        return f.new_item()

    def __delitem__(self, key: KT) -> None:
        if key is None:
            self._dict_key(key)
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        f = self._fast_state or self._fast()
        if not f.ks:  # no keys: a bloom filter tests the value, other maps refuse
            if self.type == BpfMapType.BLOOM_FILTER:
                return self.contains(key)  # type: ignore[arg-type]
            self._dict_key(key)
        return self._lookup_raw(key) is not None

    def _no_key(self, key: Any) -> Any:
        """The key argument of a map without keys (queue, stack, bloom filter): only None
        (no key) is accepted; a key would be ignored, so it is an error."""
        if key is not None:
            self._dict_key(key)
        return NULL

    def _dict_key(self, key: Any) -> None:
        """Raise the TypeError of a key used with a map that has no keys."""
        if self.key_size:
            return
        t = self.type
        if t in (BpfMapType.QUEUE, BpfMapType.STACK):
            raise TypeError(
                f"map '{self._name}' is a {t.name}: it has no keys (got {key!r}); use "
                "push(value), pop() or peek()"
            )
        if t == BpfMapType.BLOOM_FILTER:
            raise TypeError(
                f"map '{self._name}' is a BLOOM_FILTER: it has no keys (got {key!r}); add "
                "values with push(value) and test them with 'value in bloom' or contains(value)"
            )
        raise TypeError(f"map '{self._name}' ({t.name}) has no keys (got {key!r})")

    # --- size, clear, zero ----------------------------------------------------------------
    def __len__(self) -> int:
        """The number of entries. ARRAY and PERCPU_ARRAY maps, whose every index exists,
        have ``max_entries``; other maps with keys are counted (batch lookups where the
        kernel has them, else a key walk: O(n), a snapshot of a map that may change).
        Maps without keys (queue, stack, bloom filter, ring buffers) raise TypeError.

        A map is true whatever its size (``bool(m)`` does not count): test
        ``len(m) == 0`` for emptiness.

        Example::

            print(len(obj.maps["counts"]))
        """
        h = self._handle()
        t = self.type
        if t in _ALL_INDICES:
            return int(self.max_entries)
        if t in _KEYLESS or self.key_size == 0:
            raise TypeError(f"len() of map '{self._name}': {t.name} maps have no keys to count")
        if t in _BATCH:
            n = self._count_batch(h)
            if n is not None:
                return n
        return sum(1 for _ in self._iter_keys(h))

    def __bool__(self) -> bool:
        return True

    def _count_batch(self, h: Any) -> int | None:
        """Entries counted with BPF_MAP_LOOKUP_BATCH (nothing decoded), None if the kernel
        has no batch operations for this map."""
        ks = self.key_size
        per = self._value_stride() * possible_cpus() if self.is_percpu else self.value_size
        limit = max(self.max_entries, 1)
        chunk = min(_BATCH_CHUNK, limit)
        token = max(ks, 8)
        in_batch = ffi.new("char[]", token)
        out_batch = ffi.new("char[]", token)
        count = ffi.new("__u32 *")
        keys = ffi.new("char[]", chunk * ks)
        values = ffi.new("char[]", chunk * per)
        total = 0
        first = True
        while True:
            count[0] = chunk
            ret = lib.tinybpf_map_lookup_batch(
                h, 0, NULL if first else in_batch, out_batch, keys, values, count
            )
            if ret < 0 and ret != -_ENOENT:
                if ret == -_errno.ENOSPC and chunk < limit:
                    chunk = min(chunk * 4, limit)
                    keys = ffi.new("char[]", chunk * ks)
                    values = ffi.new("char[]", chunk * per)
                    continue
                if first and ret in _UNSUPPORTED:
                    return None
                _raise(ret, f"count entries of map '{self._name}' failed")
            n = int(count[0])
            total += n
            if ret == -_ENOENT or n == 0 or total > 2 * limit + chunk:
                return total
            first = False
            ffi.memmove(in_batch, out_batch, token)

    def clear(self) -> None:
        """Delete every entry. ARRAY and PERCPU_ARRAY maps cannot lose entries: their
        values are zeroed (:meth:`zero`). Queue and stack maps are emptied. Bloom filters
        and ring buffers cannot be cleared (TypeError).

        Entries added by a program while ``clear()`` runs may remain.

        Example::

            obj.maps["seen"].clear()
            assert len(obj.maps["seen"]) == 0
        """
        h = self._handle()
        t = self.type
        if t in _ALL_INDICES:
            self.zero()
            return
        if t in (BpfMapType.QUEUE, BpfMapType.STACK):
            vbuf = self._value_buf()
            for _ in range(max(self.max_entries, 1) + 1):
                ret = lib.tinybpf_map_lookup_and_delete(h, NULL, vbuf)
                if ret == -_ENOENT:
                    return
                if ret < 0:
                    _raise(ret, f"clear map '{self._name}' failed")
            return
        if t in _KEYLESS or self.key_size == 0:
            raise TypeError(f"clear() of map '{self._name}': {t.name} maps cannot be cleared")
        for _ in range(3):  # keys a program adds meanwhile are caught by the next round
            keys = list(self._iter_keys(h))
            if not keys:
                return
            for kb in keys:
                ret = _map_delete(h, kb)
                if ret < 0 and ret != -_ENOENT:
                    _raise(ret, f"clear map '{self._name}' failed")

    def zero(self) -> None:
        """ARRAY and PERCPU_ARRAY maps: set every value to zero bytes (on every CPU), in
        batches of one syscall where the kernel has them.

        Example::

            obj.maps["hist"].zero()   # e.g. between two intervals of a histogram tool
        """
        h = self._handle()
        if self.type not in _ALL_INDICES:
            raise TypeError(
                f"zero() needs an ARRAY or PERCPU_ARRAY map, but '{self._name}' is "
                f"{self.type.name}: use clear()"
            )
        n = int(self.max_entries)
        per = self._value_stride() * possible_cpus() if self.is_percpu else self.value_size
        chunk = max(1, min(n, (1 << 20) // max(per, 1)))
        values = ffi.new("char[]", chunk * per)
        keys = ffi.new("__u32[]", chunk)
        count = ffi.new("__u32 *")
        start = 0
        while start < n:
            m = min(chunk, n - start)
            for i in range(m):
                keys[i] = start + i
            count[0] = m
            ret = lib.tinybpf_map_update_batch(h, keys, values, count, NULL)
            if ret in _UNSUPPORTED and start == 0:
                break  # no batch operations here: one update per index
            if ret < 0:
                _raise(ret, f"zero map '{self._name}' failed at index {start + int(count[0])}")
            start += m
        else:
            return
        for i in range(n):
            ret = _map_update(h, ffi.new("__u32 *", i), values, BPF_ANY)
            if ret < 0:
                _raise(ret, f"zero map '{self._name}' failed at index {i}")

    # --- iteration ----------------------------------------------------------------------
    def _chunks(self) -> Iterator[tuple[list[Any], list[Any] | None]]:
        """Decoded (keys, values) in chunks: batch lookups where the kernel supports them,
        otherwise a bounded get_next_key walk (values then None: looked up per key)."""
        f = self._fast_state or self._fast()
        if self._closed or (self._obj is not None and self._obj._closed):
            self._check_open()
        mapped = self._mapped
        if mapped is not None and self._kc().bulk is not None:  # values read from memory
            lo = 0
            for chunk in mapped.values():
                hi = lo + len(chunk)
                yield list(range(lo, hi)), chunk
                lo = hi
            return
        if self.type in _BATCH and f.ks:
            batches = self._iter_batch(f.h)
            try:
                first = next(batches)
            except StopIteration:
                return
            if first is not None:
                yield first
                yield from batches  # type: ignore[misc]
                return
        kdec = self._kc().decode
        for kb in self._iter_keys(f.h):
            yield [kdec(kb)], None

    def _bulk(self, codec: Codec, raw: Any, n: int, size: int, stride: int) -> list[Any]:
        if codec.bulk is not None and size == stride:  # (raw is exactly n values)
            view: Any = memoryview(raw)
            return view.cast("B").cast(codec.bulk).tolist()  # type: ignore[no-any-return]
        dec = codec.decode
        return [dec(raw[i * stride : i * stride + size]) for i in range(n)]

    def _iter_batch(
        self, h: Any, delete: bool = False, raw: bool = False
    ) -> Iterator[tuple[Any, Any] | None]:
        """Decoded (keys, values) chunks of BPF_MAP_LOOKUP(_AND_DELETE)_BATCH. Yields None
        first (and stops) when the map type does not support batches."""
        ks = self.key_size
        vs = self.value_size
        percpu = self.is_percpu
        ncpu = possible_cpus() if percpu else 1
        stride = self._value_stride()
        per = stride * ncpu if percpu else vs
        chunk = min(_BATCH_CHUNK, max(self.max_entries, 1))
        token_size = max(ks, 8)
        in_batch = ffi.new("char[]", token_size)
        out_batch = ffi.new("char[]", token_size)
        count = ffi.new("__u32 *")
        keys = ffi.new("char[]", chunk * ks)
        values = ffi.new("char[]", chunk * per)
        kc = self._kc()
        vc = self._vc()
        first = True
        produced = 0
        limit = self.max_entries
        fn = lib.tinybpf_map_lookup_batch
        while True:
            count[0] = chunk
            ret = fn(h, delete, NULL if first else in_batch, out_batch, keys, values, count)
            if ret < 0 and ret != -_ENOENT:
                if ret == -_errno.ENOSPC and chunk < limit:
                    chunk = min(chunk * 4, max(limit, 1))
                    keys = ffi.new("char[]", chunk * ks)
                    values = ffi.new("char[]", chunk * per)
                    continue
                if first and ret in _UNSUPPORTED:
                    yield None  # not supported here: the caller walks the keys instead
                    return
                _raise(ret, f"Map iteration failed for '{self._name}'")
            n = int(count[0])
            if n and raw:  # undecoded: (keys, values) bytes, for to_numpy()
                yield ffi.buffer(keys, n * ks)[:], ffi.buffer(values, n * per)[:]
            elif n:
                # (numbers straight from the C buffers; other types decode from a copy)
                kb = ffi.buffer(keys, n * ks)
                klist = self._bulk(kc, kb if kc.bulk else kb[:], n, ks, ks)
                vraw = ffi.buffer(values, n * per)
                vraw = vraw if vc.bulk and not percpu else vraw[:]
                if percpu:
                    flat = self._bulk(vc, vraw, n * ncpu, vs, stride)
                    vlist = [flat[i * ncpu : (i + 1) * ncpu] for i in range(n)]
                else:
                    vlist = self._bulk(vc, vraw, n, vs, vs)
                yield klist, vlist
            produced += n
            if ret == -_ENOENT or n == 0 or produced > 2 * limit + chunk:
                return
            first = False
            ffi.memmove(in_batch, out_batch, token_size)

    def _iter_keys(self, h: Any) -> Iterator[bytes]:
        ks = self.key_size
        if ks == 0:
            return
        cur = ffi.new("char[]", ks)
        nxt = ffi.new("char[]", ks)
        prev: Any = NULL
        seen: set[bytes] = set()
        # The kernel restarts from the first key when the previous one was deleted: bound
        # the walk and skip repeats so a map modified meanwhile never loops forever.
        budget = 2 * max(self.max_entries, 1) + 16
        while budget > 0:
            budget -= 1
            ret = lib.tinybpf_map_get_next_key(h, prev, nxt)
            if ret < 0:
                if ret == -_ENOENT:
                    return
                _raise(ret, f"Map iteration failed for '{self._name}'")
            kb = ffi.buffer(nxt, ks)[:]
            ffi.memmove(cur, nxt, ks)
            prev = cur
            if kb in seen:
                continue
            seen.add(kb)
            yield kb

    def __iter__(self) -> Iterator[KT]:
        return self.keys()

    def keys(self) -> Iterator[KT]:
        """Every key (batched where supported; bounded if the map changes meanwhile)."""
        return itertools.chain.from_iterable(klist for klist, _ in self._chunks())

    def values(self) -> Iterator[VT]:
        for _, v in self.items():
            yield v

    def items(self) -> Iterator[tuple[KT, VT]]:
        """Every (key, value) pair; keys deleted while iterating are skipped."""
        # (chained in C: no generator frame resumed per item)
        return itertools.chain.from_iterable(self._item_chunks())

    def _item_chunks(self) -> Iterator[Iterator[tuple[KT, VT]]]:
        for klist, vlist in self._chunks():
            if vlist is not None:
                # (one length: both decoded from one count; strict= costs per item)
                yield zip(klist, vlist)  # noqa: B905
            else:
                yield self._looked_up(klist)

    def _looked_up(self, klist: list[Any]) -> Iterator[tuple[KT, VT]]:
        for k in klist:
            v = self.lookup(k)
            if v is not None:
                yield k, v

    def _raw_chunks(self) -> Iterator[tuple[bytes, bytes]]:
        """(keys, values) as packed bytes in chunks, for to_numpy()."""
        f = self._fast_state or self._fast()
        if self.type in _BATCH and f.ks:
            batches = self._iter_batch(f.h, raw=True)
            first: Any = next(batches, False)
            if first is not None:
                if first is not False:
                    yield first
                    yield from batches  # type: ignore[misc]
                return
        vs = self.value_size
        for kb in self._iter_keys(f.h):
            raw = self._lookup_raw_bytes(kb)
            if raw is not None:
                yield kb, ffi.buffer(raw, vs)[:]

    def to_numpy(self) -> tuple[Any, Any]:
        """Keys and values as two numpy arrays (``tinybpf[numpy]``), dtypes from BTF.

        For an mmap-able array the values are a live view of the map's memory: what a
        program writes shows without reading again, and writes to a writable view reach
        the map (read-only for a frozen map; the view keeps the memory mapped after the map
        is closed). Other maps: copies from batch reads."""
        from ._numpy import map_arrays

        return map_arrays(self)

    def _lookup_raw_bytes(self, kb: bytes) -> Any:
        h = self._handle()
        size = self._value_stride() * possible_cpus() if self.is_percpu else self.value_size
        vbuf = ffi.new("char[]", max(size, 1))
        ret = _map_lookup(h, kb, vbuf, 0)
        if ret < 0:
            if ret == -_ENOENT:
                return None
            _raise(ret, f"Map lookup failed for '{self._name}'")
        return vbuf

    def items_percpu(self) -> Iterator[tuple[KT, list[VT]]]:
        if not self.is_percpu:
            raise TypeError(
                f"items_percpu() is only valid for per-CPU maps, but '{self._name}' is "
                f"{self.type.name}"
            )
        yield from self.items()  # type: ignore[misc]

    # --- batch operations ---------------------------------------------------------------
    def lookup_batch(self) -> list[tuple[KT, VT]]:
        """Every entry, read with BPF_MAP_LOOKUP_BATCH (hash and array maps)."""
        return self._batch_all(delete=False)

    def lookup_and_delete_batch(self) -> list[tuple[KT, VT]]:
        """Every entry, read and removed with BPF_MAP_LOOKUP_AND_DELETE_BATCH (hash maps)."""
        return self._batch_all(delete=True)

    def _batch_all(self, delete: bool) -> list[tuple[KT, VT]]:
        op = "lookup_and_delete_batch" if delete else "lookup_batch"
        out: list[tuple[KT, VT]] = []
        for chunk in self._iter_batch(self._handle(), delete):
            if chunk is None:
                if not delete:
                    why = f"{self.type.name} maps have no batch operations"
                elif self.type in _ARRAY_TYPES:
                    why = (
                        f"the kernel does not support lookup_and_delete on {self.type.name} "
                        "maps (array entries cannot be deleted): read them with lookup_batch()"
                    )
                else:
                    why = f"the kernel does not support lookup_and_delete on {self.type.name} maps"
                raise error_for_errno(_errno.EOPNOTSUPP)(
                    f"{op} on map '{self._name}' failed: {why}", _errno.EOPNOTSUPP
                )
            out.extend(zip(*chunk, strict=True))
        return out

    def update_batch(self, items: Any, flags: int = BPF_ANY) -> int:
        """Write many entries with one BPF_MAP_UPDATE_BATCH call; returns the count.

        ``items``: a mapping or an iterable of (key, value) pairs.
        """
        self._check_open()
        pairs = list(items.items() if hasattr(items, "items") else items)
        if not pairs:
            return 0
        kenc = self._kc().encode
        venc = _value_encoder(self)
        keys = b"".join(kenc(k) for k, _ in pairs)
        vals = b"".join(venc(v) for _, v in pairs)
        count = ffi.new("__u32 *", len(pairs))
        opts = new_opts("bpf_map_batch_opts", elem_flags=flags)
        ret = lib.tinybpf_map_update_batch(
            self._handle(), ffi.from_buffer(keys), ffi.from_buffer(vals), count, opts.ptr
        )
        if ret < 0:
            done = int(count[0])
            # the kernel rejects a whole batch before writing anything with EINVAL/EPERM;
            # otherwise count says how many entries it wrote before the error
            written = 0 if done == len(pairs) and ret in (-_errno.EINVAL, -_errno.EPERM) else done
            _raise(
                ret,
                f"update_batch on map '{self._name}' failed after {written} of "
                f"{len(pairs)} entries",
            )
        return int(count[0])

    def delete_batch(self, keys: Any) -> int:
        """Delete many keys with one BPF_MAP_DELETE_BATCH call; returns the count deleted."""
        self._check_open()
        klist = list(keys)
        if not klist:
            return 0
        kenc = self._kc().encode
        raw = b"".join(kenc(k) for k in klist)
        count = ffi.new("__u32 *", len(klist))
        ret = lib.tinybpf_map_delete_batch(self._handle(), ffi.from_buffer(raw), count)
        if ret < 0 and ret != -_ENOENT:
            done = int(count[0])
            deleted = 0 if done == len(klist) and ret in (-_errno.EINVAL, -_errno.EPERM) else done
            _raise(
                ret,
                f"delete_batch on map '{self._name}' failed after {deleted} of {len(klist)} keys",
            )
        return int(count[0])

    # --- queue, stack, bloom filter, lookup-and-delete ------------------------------------
    def _value_buf(self) -> Any:
        size = self._value_stride() * possible_cpus() if self.is_percpu else self.value_size
        return ffi.new("char[]", max(size, 1))

    def _decode_value_buf(self, vbuf: Any) -> Any:
        if self.is_percpu:
            return self._decode_percpu(vbuf)
        return self._vc().decode(ffi.buffer(vbuf, self.value_size)[:])

    def lookup_and_delete(self, key: KT | None = None) -> VT | None:
        """Remove ``key`` and return its value (None if absent). Queue/stack maps: ``pop()``."""
        self._check_open()
        if self.key_size == 0:
            k = self._no_key(key)
        else:
            k = NULL if key is None else self._encode_key(key)
        vbuf = self._value_buf()
        ret = lib.tinybpf_map_lookup_and_delete(self._handle(), k, vbuf)
        if ret < 0:
            if ret == -_ENOENT:
                return None
            _raise(ret, f"lookup_and_delete on map '{self._name}' failed")
        return self._decode_value_buf(vbuf)  # type: ignore[no-any-return]

    def push(self, value: VT, flags: int = BPF_ANY) -> None:
        """Queue/stack: push ``value`` (``BPF_EXIST`` overwrites the oldest when full).
        Bloom filter: add ``value``."""
        self._check_open()
        v = self._encode_value(value)
        ret = _map_update(self._handle(), NULL, v, flags)
        if ret < 0:
            _raise(ret, f"push to map '{self._name}' failed")

    def pop(self) -> VT | None:
        """Queue/stack: remove and return the next value (None when empty)."""
        return self.lookup_and_delete(None)

    def peek(self) -> VT | None:
        """Queue/stack: the next value without removing it (None when empty). Bloom
        filter: use :meth:`contains`."""
        h = self._handle()
        vbuf = self._value_buf()
        ret = _map_lookup(h, NULL, vbuf, 0)
        if ret < 0:
            if ret == -_ENOENT:
                return None
            _raise(ret, f"peek on map '{self._name}' failed")
        return self._decode_value_buf(vbuf)  # type: ignore[no-any-return]

    def contains(self, value: VT) -> bool:
        """Bloom filter: whether ``value`` may be in the set (False means certainly not);
        ``value in bloom`` is the same test."""
        self._check_open()
        vb = ffi.new("char[]", self._encode_value(value))
        ret = _map_lookup(self._handle(), NULL, vb, 0)
        if ret < 0:
            if ret == -_ENOENT:
                return False
            _raise(ret, f"bloom filter lookup in '{self._name}' failed")
        return True

    def freeze(self) -> None:
        """Make the map read-only for user space (programs can still write it)."""
        h = self._handle()
        remap = self._mapped is not None
        self._drop_mapped()  # (the kernel refuses to freeze a map mapped writable)
        with capture_log() as log:
            ret = lib.tinybpf_map_freeze(h)
        if remap:
            self._set_mapped(open_mapped(self))  # now read-only
        _raise(ret, f"freeze map '{self._name}' failed", log)

    # --- map in map, stacks, memory mapping ----------------------------------------------
    def set_inner_map(self, inner: BpfMap[Any, Any] | int) -> None:
        """Before load: the template inner map of an ARRAY_OF_MAPS/HASH_OF_MAPS."""
        p = self._before_load("inner map")
        # libbpf keeps the fd until load: give it a dup of its own (the template's fd may
        # be closed and its number reused by another map meanwhile), closed with the object
        fd = os.dup(inner if isinstance(inner, int) else inner.fd)
        try:
            check_int(
                lib.bpf_map__set_inner_map_fd(p, fd), f"set inner map of '{self._name}' failed"
            )
        except BaseException:
            os.close(fd)
            raise
        assert self._obj is not None  # (_before_load: an object's map)
        self._obj._keep_fd(f"inner map of {self._name}", fd)

    def inner_map(self, key: KT) -> BpfMap[Any, Any] | None:
        """Map-in-map: open the inner map stored at ``key`` (None if the slot is empty)."""
        if self.type not in (BpfMapType.ARRAY_OF_MAPS, BpfMapType.HASH_OF_MAPS):
            raise TypeError(
                f"inner_map() needs a map-in-map, but '{self._name}' is {self.type.name}"
            )
        vbuf = self._lookup_raw(key)
        if vbuf is None:
            return None
        map_id = int.from_bytes(ffi.buffer(vbuf, 4)[:], _ORDER)
        if map_id == 0:
            return None
        from .introspect import open_map_by_id

        return open_map_by_id(map_id)

    def stack_trace(self, stack_id: int) -> list[int]:
        """STACK_TRACE maps: the instruction addresses of a stack id (zeros trimmed)."""
        if self.type != BpfMapType.STACK_TRACE:
            raise TypeError(
                f"stack_trace() needs a STACK_TRACE map, but '{self._name}' is {self.type.name}"
            )
        key = int(stack_id).to_bytes(4, _ORDER)
        h = self._handle()
        vbuf = ffi.new("char[]", self.value_size)
        ret = _map_lookup(h, key, vbuf, 0)
        if ret < 0:
            if ret == -_ENOENT:
                return []
            _raise(ret, f"stack lookup in '{self._name}' failed")
        addrs = ffi.cast("__u64 *", vbuf)
        out = []
        for i in range(self.value_size // 8):
            a = int(addrs[i])
            if not a:
                break
            out.append(a)
        return out

    def mmap(self) -> Any:
        """An ``mmap`` of an array map created with BPF_F_MMAPABLE: reads and writes go
        straight to the map's memory (value i at offset i * round_up(value_size, 8))."""
        import mmap as _mmap

        fd = self._live_fd()
        if self.type != BpfMapType.ARRAY or not (self.map_flags & lib.BPF_F_MMAPABLE):
            raise TypeError(f"map '{self._name}' is not an ARRAY created with BPF_F_MMAPABLE")
        size = self._value_stride() * self.max_entries
        page = _mmap.PAGESIZE
        size = (size + page - 1) // page * page
        prot = _mmap.PROT_READ
        if not (self.map_flags & lib.BPF_F_RDONLY_PROG) and not self._frozen_hint():
            prot |= _mmap.PROT_WRITE
        return _mmap.mmap(fd, size, _mmap.MAP_SHARED, prot)

    def _frozen_hint(self) -> bool:
        return self.is_internal and bool(self._name.endswith(".rodata"))

    def attach_struct_ops(self) -> Any:
        """Register a struct_ops map (its programs implement a kernel ops table); the
        returned link unregisters it when destroyed."""
        from .link import BpfLink

        p = self._mp()
        if p is None:
            raise BpfError("attach_struct_ops() needs a map of a BpfObject")
        if self._obj is not None and not self._obj._loaded:
            raise BpfPhaseError(f"cannot attach struct_ops map '{self._name}' before load()")
        with capture_log() as log:
            ptr = lib.bpf_map__attach_struct_ops(p)
            err = ffi.errno
        if ptr == NULL:
            ffi.errno = err
        from ._ffi import check_ptr

        check_ptr(ptr, f"attach struct_ops map '{self._name}' failed", log)
        return BpfLink(ptr, f"struct_ops:{self._name}")

    # --- pinning ------------------------------------------------------------------------
    def pin(self, path: str) -> None:
        """Pin the map at ``path`` in a BPF filesystem."""
        if self.is_standalone:
            raise BpfError("Cannot pin a standalone map")
        p = self._mp()
        with capture_log() as log:
            ret = lib.bpf_map__pin(
                p, cstr(check_pin_path(path, f"pin map '{self._name}' to '{path}'"))
            )
        check_int(ret, f"pin map '{self._name}' to '{path}' failed", log)

    def unpin(self, path: str) -> None:
        if self.is_standalone:
            raise BpfError("Cannot unpin a standalone map")
        p = self._mp()
        with capture_log() as log:
            ret = lib.bpf_map__unpin(p, cstr(path))
        check_int(ret, f"unpin map '{self._name}' from '{path}' failed", log)

    # --- lifetime -----------------------------------------------------------------------
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

    def __enter__(self) -> BpfMap[KT, VT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_owned_fd", None) is not None and not getattr(self, "_closed", True):
            try:
                warnings.warn(f"unclosed standalone {self!r}", ResourceWarning, stacklevel=2)
                self.close()
            except Exception:
                pass

    def __repr__(self) -> str:
        try:
            t = self.type.name
            text = (
                f"<BpfMap '{self._name}' type={t} key_size={self.key_size} "
                f"value_size={self.value_size}"
            )
        except BpfError:
            return f"<BpfMap '{self._name}' closed>"
        return text + self._entries_hint() + ">"

    def _entries_hint(self) -> str:
        """' entries=N' for a loaded hash-like map of at most 1024 entries (counted with one
        batch lookup), else '': repr() of a big map reads nothing. The first generation's
        repr format is kept otherwise."""
        if (
            self.type not in _COUNTABLE
            or self.max_entries > _REPR_COUNT_LIMIT
            or self._closed
            or (self._obj is not None and (self._obj._closed or not self._obj._loaded))
        ):
            return ""
        try:
            return f" entries={sum(len(k) for k, _ in self._chunks())}"
        except BpfError:
            return ""


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


def _percpu_decoder(m: BpfMap[Any, Any]) -> Callable[[Any], list[Any]]:
    """Decode a per-CPU value buffer into one value per possible CPU."""
    dec = m._vc().decode
    vs = m.value_size
    stride = m._value_stride()
    ncpu = possible_cpus()

    def decode(buf: Any) -> list[Any]:
        raw = ffi.buffer(buf)
        return [dec(raw[i * stride : i * stride + vs]) for i in range(ncpu)]

    return decode


def _value_encoder(m: BpfMap[Any, Any]) -> Callable[[Any], bytes]:
    """Encode a value of ``m`` (a map for map-in-map, one value or a list per CPU for
    per-CPU maps); the function holds no reference to ``m``."""
    name = m._name
    mtype = m.type
    vs = m.value_size
    enc = m._vc().encode
    if not m.is_percpu:

        def encode(value: Any) -> bytes:
            if isinstance(value, BpfMap):
                if mtype not in (BpfMapType.ARRAY_OF_MAPS, BpfMapType.HASH_OF_MAPS):
                    raise TypeError(f"map '{name}' ({mtype.name}) cannot hold a map")
                return value.fd.to_bytes(vs, _ORDER)
            return enc(value)

        return encode
    ncpu = possible_cpus()
    stride = m._value_stride()

    def encode_percpu(value: Any) -> bytes:
        if isinstance(value, BpfMap):
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

    def __init__(self, m: BpfMap[Any, Any], h: Any) -> None:
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
            lookup = (
                lib.tinybpf_lookup_ints_s if vt.startswith("int") else lib.tinybpf_lookup_ints_u
            )
            self.iget = functools.partial(lookup, h, self.ispec)
            self.iset = functools.partial(lib.tinybpf_update_ints, h, self.ispec)
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
                self.vread = lambda b: dec(ffi.buffer(b, vs))
            return
        self.venc = vc.encode
        if vc.scalar is not None:
            self.vtype = f"{vc.scalar}[1]"
            self.vread = operator.itemgetter(0)
        else:
            self.vtype = f"char[{max(vs, 1)}]"
            dec = vc.decode
            if dec is bytes:
                self.vread = lambda b: ffi.buffer(b, vs)[:]
            else:
                self.vread = lambda b: dec(ffi.buffer(b, vs))

    def new_item(self) -> tuple[Any, int, int, int]:
        """(value buffer, fd handle, key size, key is signed): one buffer set of the scalar
        path."""
        kt, vt = self.stypes
        assert kt is not None
        return ffi.new(f"{vt}[1]"), self.h, self.ks, int(kt.startswith("int"))


def _map_info(fd: int) -> Any:
    info = ffi.new("struct bpf_map_info *")
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
    ret = lib.bpf_map_get_info_by_fd(fd, info, size)
    return info, ret


def _map_from_fd(
    fd: int,
    label: str,
    key_type: Any = None,
    value_type: Any = None,
    pinned: bool = False,
) -> BpfMap[Any, Any]:
    """A standalone map owning ``fd`` (closed here on any failure); ``label`` names it in
    errors (the path when ``pinned``)."""
    try:
        info, ret = _map_info(fd)
        if ret < 0:
            what = f"pinned map '{label}'" if pinned else label
            raise error_for_errno(-ret)(f"get info for {what} failed: {strerror(-ret)}", -ret)
        if info.key_size:
            probe = ffi.new("char[]", int(info.key_size))
            r = lib.bpf_map_get_next_key(fd, NULL, probe)
            if r < 0 and r not in (-_ENOENT, -_errno.ENOTSUP, -_errno.EOPNOTSUPP, -524):
                raise BpfError(
                    f"Pinned object at '{label}' is not a usable BPF map "
                    f"(get_next_key failed: {strerror(-r)})",
                    -r,
                )
        btf: Btf | None = None
        if info.btf_id:
            try:
                btf = Btf.from_kernel_id(int(info.btf_id))
            except BpfError:
                btf = None
        m: BpfMap[Any, Any] = BpfMap(
            owned_fd=fd,
            name=ffi.string(info.name).decode("utf-8", "replace"),
            map_type=BpfMapType(int(info.type)),
            key_size=int(info.key_size),
            value_size=int(info.value_size),
            max_entries=int(info.max_entries),
            key_type=key_type,
            value_type=value_type,
            btf=btf,
            btf_key_type_id=int(info.btf_key_type_id),
            btf_value_type_id=int(info.btf_value_type_id),
        )
        m._map_flags = int(info.map_flags)
        if key_type is not None or value_type is not None:
            try:
                m._kc()
                m._vc()
            except BaseException:
                m._owned_fd = None  # the fd is closed below
                m._closed = True
                if btf is not None:
                    btf.close()
                raise
        return m
    except BaseException:
        os.close(fd)
        raise


def open_pinned_map(
    path: str,
    key_type: builtins.type[KT] | None = None,
    value_type: builtins.type[VT] | None = None,
) -> BpfMap[KT, VT]:
    """Open a map pinned in a BPF filesystem as a standalone map that owns its fd.

    Keys and values decode from the kernel's BTF of the map when it has one.

    Example::

        counts = tinybpf.open_pinned_map("/sys/fs/bpf/counts", ctypes.c_uint32, ctypes.c_uint64)
        print(dict(counts.items()))
    """
    with capture_log() as log:
        fd = lib.bpf_obj_get(cstr(path))
    if fd < 0:
        err = -fd
        raise error_for_errno(err)(
            f"open pinned map '{path}' failed: {strerror(err)}", err, log.text
        )
    kind = fd_kind(fd)
    if kind != "map":
        os.close(fd)
        raise BpfError(
            f"Pinned object at '{path}' is not a usable BPF map (it is a "
            f"{kind or 'non-BPF'} object)",
            _errno.EINVAL,
        )
    return _map_from_fd(fd, path, key_type, value_type, pinned=True)


def create_map(
    map_type: BpfMapType | str | int,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    name: str | None = None,
    flags: int = 0,
    inner_map: BpfMap[Any, Any] | None = None,
    numa_node: int | None = None,
    map_extra: int = 0,
    key_type: Any = None,
    value_type: Any = None,
) -> BpfMap[Any, Any]:
    """Create a map from Python (``bpf_map_create``): a standalone map that owns its fd.

    Hand it to an object before load with ``obj.maps[...].reuse_fd(m.fd)`` to share it.

    Example::

        counts = tinybpf.create_map(tinybpf.BpfMapType.HASH, 4, 8, 1024, name="counts")
        counts.typed(key=ctypes.c_uint32, value=ctypes.c_uint64)[1] = 5
    """
    map_type = enum_arg(BpfMapType, map_type, "map type")
    fields: dict[str, Any] = {"map_flags": flags, "map_extra": map_extra}
    if inner_map is not None:
        fields["inner_map_fd"] = inner_map.fd
    if numa_node is not None:
        fields["numa_node"] = numa_node
    opts = new_opts("bpf_map_create_opts", **fields)
    with capture_log() as log:
        fd = int(
            lib.bpf_map_create(
                int(map_type),
                cstr(name) if name else NULL,
                key_size,
                value_size,
                max_entries,
                opts.ptr,
            )
        )
    if fd < 0:
        raise error_for_errno(-fd)(
            f"create map '{name or ''}' ({BpfMapType(int(map_type)).name}) failed: {strerror(-fd)}",
            -fd,
            log.text,
        )
    return _map_from_fd(fd, name or "created map", key_type, value_type)


def lpm_key(network: str | Any, prefixlen: int | None = None) -> bytes:
    """The key of an LPM trie (``struct { __u32 prefixlen; __u8 data[4 or 16]; }``).

    ``network`` is "10.0.0.0/8", "2001:db8::/32", an address (full prefix, or
    ``prefixlen``), or an ``ipaddress`` network/address object.

    Example::

        trie[tinybpf.lpm_key("192.168.0.0/16")] = 1
    """
    import ipaddress

    if isinstance(network, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        net = network
    elif isinstance(network, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        net = ipaddress.ip_network(
            f"{network}/{prefixlen if prefixlen is not None else network.max_prefixlen}"
        )
    else:
        text = str(network)
        if "/" not in text and prefixlen is not None:
            text = f"{text}/{prefixlen}"
        net = ipaddress.ip_network(text, strict=False)
    plen = net.prefixlen if prefixlen is None or "/" in str(network) else prefixlen
    return int(plen).to_bytes(4, _ORDER) + net.network_address.packed
