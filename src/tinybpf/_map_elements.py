"""MapElements: the element engine of a BPF map over its fd: lookups, updates, deletes,
iteration, batches, queue/stack operations (the ``m[k]`` fast paths bind their C function once)."""

from __future__ import annotations

import ctypes
import errno as _errno
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._codec import Codec
from ._core import (
    capture_log,
    errnos,
    mapcalls,
    new_opts,
)
from ._core.mapcalls import buffer as _buffer
from ._core.mapcalls import c_view as _c_view
from ._core.mapcalls import chars as _chars
from ._core.mapcalls import copy as _copy
from ._core.mapcalls import new_value as _new_value
from ._core.mapcalls import u32_array as _u32_array
from ._core.mapcalls import u32_ptr as _u32_ptr
from ._mmap import MISS, open_mapped
from ._percpu import sum_structs
from ._types import BPF_ANY, BpfMapType
from .errors import BpfError, BpfNotSupportedError

if TYPE_CHECKING:
    pass


from ._core import mapfd
from ._map_handle import (
    _ALL_INDICES,
    _ARRAY_TYPES,
    _BATCH,
    _BATCH_CHUNK,
    _ERANGE,
    _KEYLESS,
    _LOOKUP_AGAIN,
    _NOT_FOUND,
    _REFUSED,
    _UNSUPPORTED,
    KT,
    VT,
    MapHandle,
    _lookup_scalar,
    _map_delete,
    _map_lookup,
    _map_update,
    _percpu_decoder,
    _raise,
    _update_scalar,
    _value_encoder,
    possible_cpus,
)

__all__ = ["MapElements"]


class MapElements(MapHandle[KT, VT]):
    """The element operations of :class:`~tinybpf.BpfMap`."""

    # --- element access -----------------------------------------------------------------
    def _encode_key(self, key: Any) -> Any:
        if self.key_size == 0:
            return mapcalls.NULL
        return self._kc().encode(key)

    def _decode_percpu(self, buf: Any) -> list[Any]:
        return _percpu_decoder(self)(buf)

    def _lookup_raw(self, key: Any, flags: int = 0) -> Any:
        """The raw value buffer for ``key`` (None if absent); checks open and phase."""
        f = self._fast_state or self._fast()
        if self._closed or (self._obj is not None and self._obj._closed):
            self._check_open()
        k = f.kenc(key) if f.ks else self._no_key(key)
        vbuf = _new_value(f.vtype)
        ret = _map_lookup(f.h, k, vbuf, flags)
        if ret < 0:
            if ret == _NOT_FOUND:
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
            vbuf = _new_value(f.vtype)
        ret = _map_lookup(f.h, k, vbuf, flags)
        if ret < 0:
            pool.append(vbuf)
            if ret == _NOT_FOUND:
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
            if ret == _NOT_FOUND:
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
            if ret == _NOT_FOUND:
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
        return mapcalls.NULL

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
        in_batch = _chars(token)
        out_batch = _chars(token)
        count = _u32_ptr()
        keys = _chars(chunk * ks)
        values = _chars(chunk * per)
        total = 0
        first = True
        while True:
            count[0] = chunk
            ret = mapfd.lookup_batch(
                h, 0, mapcalls.NULL if first else in_batch, out_batch, keys, values, count
            )
            if ret < 0 and ret != _NOT_FOUND:
                if errnos.failed_with(ret, errnos.NO_SPACE) and chunk < limit:
                    chunk = min(chunk * 4, limit)
                    keys = _chars(chunk * ks)
                    values = _chars(chunk * per)
                    continue
                if first and ret in _UNSUPPORTED:
                    return None
                _raise(ret, f"count entries of map '{self._name}' failed")
            n = int(count[0])
            total += n
            if ret == _NOT_FOUND or n == 0 or total > 2 * limit + chunk:
                return total
            first = False
            _copy(in_batch, out_batch, token)

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
                ret = mapfd.lookup_and_delete(h, mapcalls.NULL, vbuf)
                if ret == _NOT_FOUND:
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
                if ret < 0 and ret != _NOT_FOUND:
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
        values = _chars(chunk * per)
        keys = _u32_array(chunk)
        count = _u32_ptr()
        start = 0
        while start < n:
            m = min(chunk, n - start)
            for i in range(m):
                keys[i] = start + i
            count[0] = m
            ret = mapfd.update_batch(h, keys, values, count, mapcalls.NULL)
            if ret in _UNSUPPORTED and start == 0:
                break  # no batch operations here: one update per index
            if ret < 0:
                _raise(ret, f"zero map '{self._name}' failed at index {start + int(count[0])}")
            start += m
        else:
            return
        for i in range(n):
            ret = _map_update(h, _u32_ptr(i), values, BPF_ANY)
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
        first (and stops) when the map type does not support batches.

        When the first batch is not the last, a thread makes the next lookups while this
        one is decoded (mapfd.reader_*: at most two batches ahead of the one decoded);
        lookup-and-delete is never read ahead (a caller who stops would lose the entries
        read for it)."""
        ks = self.key_size
        vs = self.value_size
        percpu = self.is_percpu
        ncpu = possible_cpus() if percpu else 1
        stride = self._value_stride()
        per = stride * ncpu if percpu else vs
        chunk = min(_BATCH_CHUNK, max(self.max_entries, 1))
        token_size = max(ks, 8)
        in_batch = _chars(token_size)
        out_batch = _chars(token_size)
        count = _u32_ptr()
        keys = _chars(chunk * ks)
        values = _chars(chunk * per)
        kc = self._kc()
        vc = self._vc()
        first = True
        produced = 0
        limit = self.max_entries
        fn = mapfd.lookup_batch
        reader: Any = None
        out: Any = None
        try:
            while True:
                if reader is None:
                    count[0] = chunk
                    ret = fn(
                        h,
                        delete,
                        mapcalls.NULL if first else in_batch,
                        out_batch,
                        keys,
                        values,
                        count,
                    )
                    kbuf, vbuf = keys, values
                else:
                    ret = mapfd.reader_next(reader, out, out + 1, count)
                    kbuf, vbuf = out[0], out[1]
                    if h.fd < 0:  # closed meanwhile: what was read ahead is not given out
                        ret = mapfd.CLOSED
                if ret < 0 and ret != _NOT_FOUND:
                    if (
                        reader is None
                        and errnos.failed_with(ret, errnos.NO_SPACE)
                        and chunk < limit
                    ):
                        chunk = min(chunk * 4, max(limit, 1))
                        keys = _chars(chunk * ks)
                        values = _chars(chunk * per)
                        continue
                    if first and ret in _UNSUPPORTED:
                        yield None  # not supported here: the caller walks the keys instead
                        return
                    if ret == mapfd.READER_FORKED:
                        raise BpfError(
                            f"Map iteration of '{self._name}' was started before fork(): "
                            "its read-ahead thread stayed in the parent; iterate again here"
                        )
                    _raise(ret, f"Map iteration failed for '{self._name}'")
                n = int(count[0])
                if first and ret == 0 and 0 < n < limit and not delete:
                    # more to come: read the next batches ahead while this one is decoded
                    reader = mapfd.reader_new(
                        h, ks, max(per, 1), chunk, max(limit, 1), out_batch, token_size
                    )
                    out = mapfd.reader_out() if reader is not None else None
                if n and raw:  # undecoded: (keys, values) bytes, for to_numpy()
                    yield _buffer(kbuf, n * ks)[:], _buffer(vbuf, n * per)[:]
                elif n:
                    # (numbers straight from the C buffers; other types decode from a copy)
                    kb = _buffer(kbuf, n * ks)
                    klist = self._bulk(kc, kb if kc.bulk else kb[:], n, ks, ks)
                    vraw = _buffer(vbuf, n * per)
                    vraw = vraw if vc.bulk and not percpu else vraw[:]
                    if percpu:
                        flat = self._bulk(vc, vraw, n * ncpu, vs, stride)
                        vlist = [flat[i * ncpu : (i + 1) * ncpu] for i in range(n)]
                    else:
                        vlist = self._bulk(vc, vraw, n, vs, vs)
                    yield klist, vlist
                produced += n
                if ret == _NOT_FOUND or n == 0 or produced > 2 * limit + chunk:
                    return
                if reader is None:
                    _copy(in_batch, out_batch, token_size)
                elif first:  # the thread's buffers from now on
                    keys = values = kbuf = vbuf = None
                first = False
        finally:
            if reader is not None:
                mapfd.reader_free(reader)

    def _iter_keys(self, h: Any) -> Iterator[bytes]:
        ks = self.key_size
        if ks == 0:
            return
        cur = _chars(ks)
        nxt = _chars(ks)
        prev: Any = mapcalls.NULL
        seen: set[bytes] = set()
        # The kernel restarts from the first key when the previous one was deleted: bound
        # the walk and skip repeats so a map modified meanwhile never loops forever.
        budget = 2 * max(self.max_entries, 1) + 16
        while budget > 0:
            budget -= 1
            ret = mapfd.get_next_key(h, prev, nxt)
            if ret < 0:
                if ret == _NOT_FOUND:
                    return
                _raise(ret, f"Map iteration failed for '{self._name}'")
            kb = _buffer(nxt, ks)[:]
            _copy(cur, nxt, ks)
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
        """Every (key, value) pair.

        Read in batches where the map type allows (a thread reads up to two batches ahead
        of the one being returned): an entry is as it was when its batch was read, so one
        changed or deleted after that shows as it was. Elsewhere keys are walked one by
        one and keys deleted meanwhile are skipped."""
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
                yield kb, _buffer(raw, vs)[:]

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
        vbuf = _chars(max(size, 1))
        ret = _map_lookup(h, kb, vbuf, 0)
        if ret < 0:
            if ret == _NOT_FOUND:
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
                raise BpfNotSupportedError(
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
        count = _u32_ptr(len(pairs))
        opts = new_opts("bpf_map_batch_opts", elem_flags=flags)
        ret = mapfd.update_batch(self._handle(), _c_view(keys), _c_view(vals), count, opts.ptr)
        if ret < 0:
            done = int(count[0])
            # the kernel rejects a whole batch before writing anything with EINVAL/EPERM;
            # otherwise count says how many entries it wrote before the error
            written = 0 if done == len(pairs) and errnos.failed_with(ret, _REFUSED) else done
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
        count = _u32_ptr(len(klist))
        ret = mapfd.delete_batch(self._handle(), _c_view(raw), count)
        if ret < 0 and ret != _NOT_FOUND:
            done = int(count[0])
            deleted = 0 if done == len(klist) and errnos.failed_with(ret, _REFUSED) else done
            _raise(
                ret,
                f"delete_batch on map '{self._name}' failed after {deleted} of {len(klist)} keys",
            )
        return int(count[0])

    # --- queue, stack, bloom filter, lookup-and-delete ------------------------------------
    def _value_buf(self) -> Any:
        size = self._value_stride() * possible_cpus() if self.is_percpu else self.value_size
        return _chars(max(size, 1))

    def _decode_value_buf(self, vbuf: Any) -> Any:
        if self.is_percpu:
            return self._decode_percpu(vbuf)
        return self._vc().decode(_buffer(vbuf, self.value_size)[:])

    def lookup_and_delete(self, key: KT | None = None) -> VT | None:
        """Remove ``key`` and return its value (None if absent). Queue/stack maps: ``pop()``."""
        self._check_open()
        if self.key_size == 0:
            k = self._no_key(key)
        else:
            k = mapcalls.NULL if key is None else self._encode_key(key)
        vbuf = self._value_buf()
        ret = mapfd.lookup_and_delete(self._handle(), k, vbuf)
        if ret < 0:
            if ret == _NOT_FOUND:
                return None
            _raise(ret, f"lookup_and_delete on map '{self._name}' failed")
        return self._decode_value_buf(vbuf)  # type: ignore[no-any-return]

    def push(self, value: VT, flags: int = BPF_ANY) -> None:
        """Queue/stack: push ``value`` (``BPF_EXIST`` overwrites the oldest when full).
        Bloom filter: add ``value``."""
        self._check_open()
        v = self._encode_value(value)
        ret = _map_update(self._handle(), mapcalls.NULL, v, flags)
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
        ret = _map_lookup(h, mapcalls.NULL, vbuf, 0)
        if ret < 0:
            if ret == _NOT_FOUND:
                return None
            _raise(ret, f"peek on map '{self._name}' failed")
        return self._decode_value_buf(vbuf)  # type: ignore[no-any-return]

    def contains(self, value: VT) -> bool:
        """Bloom filter: whether ``value`` may be in the set (False means certainly not);
        ``value in bloom`` is the same test."""
        self._check_open()
        vb = _chars(self._encode_value(value))
        ret = _map_lookup(self._handle(), mapcalls.NULL, vb, 0)
        if ret < 0:
            if ret == _NOT_FOUND:
                return False
            _raise(ret, f"bloom filter lookup in '{self._name}' failed")
        return True

    def freeze(self) -> None:
        """Make the map read-only for user space (programs can still write it)."""
        h = self._handle()
        remap = self._mapped is not None
        self._drop_mapped()  # (the kernel refuses to freeze a map mapped writable)
        with capture_log() as log:
            ret = mapfd.freeze(h)
        if remap:
            self._set_mapped(open_mapped(self))  # now read-only
        _raise(ret, f"freeze map '{self._name}' failed", log)
