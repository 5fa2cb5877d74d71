"""Reuse of the C drain's batch buffers (ring and perf buffers).

Every batch hands its buffers (the records, their sizes and CPUs) to Python, and the C
side starts new ones, so views of an earlier batch stay valid. New buffers of a few MiB
are fresh pages: the kernel faults and zeroes every one of them on the first write, which
cost perf buffers (whose batches hold a whole per-CPU ring) more than the copy itself.
Here a batch's buffers, once nothing refers to them any more, go back to their poller
(one spare set) and the next drain fills them again.

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
    """At most one spare set of batch buffers for one poller's ``struct tinybpf_batch``."""

    __slots__ = ("_open", "_spare")

    def __init__(self) -> None:
        self._spare: list[tuple[Any, Any, Any, int, int]] = []
        self._open = True

    def take(self, b: Any) -> tuple[memoryview, memoryview, memoryview]:
        """The filled buffers of ``b`` as memoryviews (records, sizes, cpus), as
        :func:`tinybpf._core.drain.take` gives them; the three buffers come back here (or
        are freed) when the last view of any of them is gone. ``b`` is empty afterwards,
        with the spare buffers installed when there are any."""
        count = int(b.count)
        nbytes = int(b.len)
        data = ffi.new("char **")
        sizes = ffi.new("__u32 **")
        cpus = ffi.new("__u32 **")
        cap = int(b.cap)
        scap = int(b.sizes_cap)
        lib.tinybpf_batch_take(b, data, sizes, cpus)
        s, c = sizes[0], cpus[0]
        owned = ffi.gc(data[0], functools.partial(self._release, s, c, cap, scap))
        keep = functools.partial(_keep, _owner=owned)
        self.install(b)
        return (
            memoryview(ffi.buffer(owned, nbytes)),
            memoryview(ffi.buffer(ffi.gc(s, keep), 4 * count)).cast("I"),
            memoryview(ffi.buffer(ffi.gc(c, keep), 4 * count)).cast("I"),
        )

    def _release(
        self,
        sizes: Any,
        cpus: Any,
        cap: int,
        scap: int,
        data: Any,
        _free: Any = lib.tinybpf_free,  # (bound now: destructors may run at shutdown)
        _cast: Any = ffi.cast,
    ) -> None:
        # (list.append is atomic: no lock; an ffi.gc destructor must not raise)
        if self._open and not self._spare:
            self._spare.append((_cast("char *", data), sizes, cpus, cap, scap))
            if not self._open:  # closed meanwhile (another thread): free it after all
                self.close()
            return
        _free(data)
        _free(sizes)
        _free(cpus)

    def install(self, b: Any) -> None:
        """Give ``b`` the spare buffers if it has none (under the poller's poll lock)."""
        if self._spare and b.data == NULL:
            try:
                data, sizes, cpus, cap, scap = self._spare.pop()
            except IndexError:
                return
            b.data, b.cap, b.sizes, b.cpus, b.sizes_cap = data, cap, sizes, cpus, scap

    def close(self) -> None:
        """Free the spare; buffers released later are freed at once."""
        self._open = False
        while self._spare:
            try:
                data, sizes, cpus, _, _ = self._spare.pop()
            except IndexError:
                return
            lib.tinybpf_free(data)
            lib.tinybpf_free(sizes)
            lib.tinybpf_free(cpus)
