"""BpfMap: a BPF map, with a dict-like interface and BTF-driven conversion.

The map is built in three layers: tinybpf._map_handle (fd, metadata, settings, codecs),
tinybpf._map_elements (the element engine), and here: typed views, map-in-map, stacks,
memory mapping, struct_ops, pins, and the functions that open or create standalone maps."""

from __future__ import annotations

import builtins
import errno as _errno
import os
import weakref
from typing import TYPE_CHECKING, Any, overload

from ._core import (
    call,
    capture_log,
    cstr,
    errnos,
    fail,
    fd_kind,
    kernelcalls,
    mapcalls,
    new_opts,
    strerror,
    try_info_by_fd,
)
from ._pin import check_pin_path
from ._types import BpfMapType, enum_arg
from .btf import Btf
from .errors import BpfError, BpfPhaseError
from .token import eperm_hint

if TYPE_CHECKING:
    pass


from ._core import ids
from ._map_elements import MapElements
from ._map_handle import (
    _COUNTABLE,
    _NOT_FOUND,
    _ORDER,
    _REPR_COUNT_LIMIT,
    KT,
    KT2,
    VT,
    VT2,
    _map_lookup,
    _raise,
    possible_cpus,
)

__all__ = ["BpfMap", "create_map", "lpm_key", "open_map_by_id", "open_pinned_map", "possible_cpus"]


class BpfMap(MapElements[KT, VT]):
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

    # --- map in map, stacks, memory mapping ----------------------------------------------
    def set_inner_map(self, inner: BpfMap[Any, Any] | int) -> None:
        """Before load: the template inner map of an ARRAY_OF_MAPS/HASH_OF_MAPS."""
        p = self._before_load("inner map")
        # libbpf keeps the fd until load: give it a dup of its own (the template's fd may
        # be closed and its number reused by another map meanwhile), closed with the object
        fd = os.dup(inner if isinstance(inner, int) else inner.fd)
        try:
            call("bpf_map__set_inner_map_fd", p, fd, what=f"set inner map of '{self._name}'")
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
        map_id = int.from_bytes(mapcalls.bytes_at(vbuf, 4), _ORDER)
        if map_id == 0:
            return None

        return open_map_by_id(map_id)

    def stack_trace(self, stack_id: int) -> list[int]:
        """STACK_TRACE maps: the instruction addresses of a stack id (zeros trimmed)."""
        if self.type != BpfMapType.STACK_TRACE:
            raise TypeError(
                f"stack_trace() needs a STACK_TRACE map, but '{self._name}' is {self.type.name}"
            )
        key = int(stack_id).to_bytes(4, _ORDER)
        h = self._handle()
        vbuf = mapcalls.chars(self.value_size)
        ret = _map_lookup(h, key, vbuf, 0)
        if ret < 0:
            if ret == _NOT_FOUND:
                return []
            _raise(ret, f"stack lookup in '{self._name}' failed")
        addrs = mapcalls.u64_items(vbuf)
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
        if self.type != BpfMapType.ARRAY or not (self.map_flags & kernelcalls.BPF_F_MMAPABLE):
            raise TypeError(f"map '{self._name}' is not an ARRAY created with BPF_F_MMAPABLE")
        size = self._value_stride() * self.max_entries
        page = _mmap.PAGESIZE
        size = (size + page - 1) // page * page
        prot = _mmap.PROT_READ
        if not (self.map_flags & mapcalls.RDONLY_PROG) and not self._frozen_hint():
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
        log = capture_log()
        ptr = mapcalls.attach_struct_ops(p, log)
        from ._core import check_ptr

        check_ptr(ptr, f"attach struct_ops map '{self._name}' failed", log)
        return BpfLink(ptr, f"struct_ops:{self._name}")

    # --- pinning ------------------------------------------------------------------------
    def pin(self, path: str) -> None:
        """Pin the map at ``path`` in a BPF filesystem."""
        if self.is_standalone:
            raise BpfError("Cannot pin a standalone map")
        p = self._mp()
        call(
            "bpf_map__pin",
            p,
            cstr(check_pin_path(path, f"pin map '{self._name}' to '{path}'")),
            what=f"pin map '{self._name}' to '{path}'",
        )

    def unpin(self, path: str) -> None:
        if self.is_standalone:
            raise BpfError("Cannot unpin a standalone map")
        p = self._mp()
        call("bpf_map__unpin", p, cstr(path), what=f"unpin map '{self._name}' from '{path}'")

    def __enter__(self) -> BpfMap[KT, VT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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


def _map_info(fd: int) -> Any:
    return try_info_by_fd("map", fd)


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
            fail(ret, f"get info for {what} failed")
        if info.key_size:
            r = mapcalls.get_next_key(fd, int(info.key_size))
            if r < 0 and -r not in errnos.NOT_FOUND_OR_UNSUPPORTED:
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
            name=mapcalls.name_of(info),
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


def open_map_by_id(map_id: int) -> BpfMap[Any, Any]:
    """A standalone map for a map id (decoded through its kernel BTF when it has one).

    Example::

        with tinybpf.open_map_by_id(map_id) as m:
            print(m.name, dict(m.items()))
    """
    fd = ids.fd_by_id("map", map_id, f"open map id {map_id}")
    return _map_from_fd(fd, f"map id {map_id}")


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
    fd = call("bpf_obj_get", cstr(path), what=f"open pinned map '{path}'")
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
    token_fd: int | None = None,
) -> BpfMap[Any, Any]:
    """Create a map from Python (``bpf_map_create``): a standalone map that owns its fd.

    Hand it to an object before load with ``obj.maps[...].reuse_fd(m.fd)`` to share it.
    ``token_fd``: a BPF token's fd (``tinybpf.create_token(path).fd``) to create the map
    with what a delegated BPF filesystem allows, in a user namespace (Linux 6.9+).

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
    if token_fd is not None:
        if isinstance(token_fd, bool) or not isinstance(token_fd, int):
            raise TypeError(f"token_fd must be an int (a BPF token's fd), not {token_fd!r}")
        if token_fd < 0:
            raise ValueError(f"token_fd must be a file descriptor (>= 0), not {token_fd}")
        fields["token_fd"] = token_fd
        fields["map_flags"] = flags | mapcalls.TOKEN_FD
    opts = new_opts("bpf_map_create_opts", **fields)
    with capture_log() as log:
        fd = mapcalls.create(
            int(map_type),
            cstr(name) if name else None,
            key_size,
            value_size,
            max_entries,
            opts.ptr,
        )
    if fd < 0:
        refused = errnos.failed_with(fd, errnos.PERMISSION) and token_fd is None
        hint = eperm_hint() if refused else ""
        fail(
            fd,
            f"create map '{name or ''}' ({BpfMapType(int(map_type)).name}) failed",
            log,
            hint=hint,
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
