"""Reuse of the C drain's batch buffers (ring and perf buffers).

Every batch hands its buffers (the records, their sizes and CPUs) to Python, and the C
side starts new ones, so views of an earlier batch stay valid. New buffers of a few MiB
are fresh pages: the kernel faults and zeroes every one of them on the first write, which
cost perf buffers (whose batches hold a whole per-CPU ring) more than the copy itself.
Here a batch's buffers, once nothing refers to them any more, go back to their poller
(one spare set) and the next drain fills them again. A batch whose records all have one
size and one cpu (the common case) hands over its records only: the C side writes no
per-record sizes or cpus for it (``detail`` in ffi_build/shim_events.c).

The C side never sees a spare before the poller installs it under its poll lock
(``install``): the release happens wherever the last reference dies, possibly on another
thread while the poller is inside C with the GIL released.
"""

from __future__ import annotations

import functools
from typing import Any

from ._binding import NULL, ffi, lib

__all__ = ["BatchPool"]


def _keep(_ptr: Any, _owner: Any = None) -> None:
    """The 'destructor' of the sizes and cpus views: it frees nothing, it only keeps the
    records' owner (which frees or recycles all three buffers) alive as long as they are."""


class BatchPool:
    """At most one spare records buffer (and one spare pair of sizes/cpus arrays) for one
    poller's ``struct tinybpf_batch``."""

    __slots__ = ("_detail", "_open", "_out", "_spare")

    def __init__(self) -> None:
        self._spare: list[tuple[Any, int]] = []  # (records, capacity)
        self._detail: list[tuple[Any, Any, int]] = []  # (sizes, cpus, capacity)
        self._open = True
        # the out-parameters of tinybpf_batch_take, made once (take runs under the
        # poller's poll lock, never twice at a time)
        self._out = (ffi.new("char **"), ffi.new("__u32 **"), ffi.new("__u32 **"))

    def take(self, b: Any, count: int, nbytes: int) -> tuple[Any, Any, Any]:
        """The filled buffers of ``b`` (``count`` records, ``nbytes`` bytes) as memoryviews:
        the records, and each record's size and cpu when ``b`` kept them (``detail``; None
        otherwise: every record has the size ``b.uniform`` and the cpu ``b.cpu0``, read
        them before). The buffers come back here (or are freed) when the last view of any
        of them is gone. ``b`` is empty afterwards, with the spare buffers installed when
        there are any."""
        pd, ps, pc = self._out
        cap = int(b.cap)
        scap = int(b.sizes_cap)
        lib.tinybpf_batch_take(b, pd, ps, pc)
        s = ps[0]
        if s == NULL:
            owned = ffi.gc(pd[0], functools.partial(self._release, cap, None, None, 0))
            self.install(b)
            return memoryview(ffi.buffer(owned, nbytes)), None, None
        c = pc[0]
        owned = ffi.gc(pd[0], functools.partial(self._release, cap, s, c, scap))
        keep = functools.partial(_keep, _owner=owned)
        self.install(b)
        return (
            memoryview(ffi.buffer(owned, nbytes)),
            memoryview(ffi.buffer(ffi.gc(s, keep), 4 * count)).cast("I"),
            memoryview(ffi.buffer(ffi.gc(c, keep), 4 * count)).cast("I"),
        )

    def _release(
        self,
        cap: int,
        sizes: Any,
        cpus: Any,
        scap: int,
        data: Any,
        _free: Any = lib.tinybpf_free,  # (bound now: destructors may run at shutdown)
        _cast: Any = ffi.cast,
    ) -> None:
        # (list.append is atomic: no lock; an ffi.gc destructor must not raise)
        if self._open and not self._spare:
            self._spare.append((_cast("char *", data), cap))
        else:
            _free(data)
        if sizes is not None:
            if self._open and not self._detail:
                self._detail.append((sizes, cpus, scap))
            else:
                _free(sizes)
                _free(cpus)
        if not self._open:  # closed meanwhile (another thread): free them after all
            self.close()

    def install(self, b: Any) -> None:
        """Give ``b`` the spare buffers where it has none (under the poller's poll lock)."""
        if self._spare and b.data == NULL:
            try:
                data, cap = self._spare.pop()
            except IndexError:
                pass
            else:
                b.data, b.cap = data, cap
        if self._detail and b.sizes == NULL:
            try:
                sizes, cpus, scap = self._detail.pop()
            except IndexError:
                return
            b.sizes, b.cpus, b.sizes_cap = sizes, cpus, scap

    def close(self) -> None:
        """Free the spares; buffers released later are freed at once."""
        self._open = False
        while self._spare:
            try:
                data, _ = self._spare.pop()
            except IndexError:
                break
            lib.tinybpf_free(data)
        while self._detail:
            try:
                sizes, cpus, _ = self._detail.pop()
            except IndexError:
                return
            lib.tinybpf_free(sizes)
            lib.tinybpf_free(cpus)
