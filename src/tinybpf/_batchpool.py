"""Reuse of the C drain's batch buffers (ring and perf buffers).

Every batch hands its buffers (the records, their sizes and CPUs) to Python, and the C
side starts new ones, so views of an earlier batch stay valid. New buffers of a few MiB
are fresh pages: the kernel faults and zeroes every one of them on the first write, which
cost perf buffers (whose batches hold a whole per-CPU ring) more than the copy itself.
Here a batch's buffers, once nothing refers to them any more, go back to their buffer
(one spare set) and the next drain fills them again.

The C side never sees a spare before the poller installs it under its poll lock
(``install``): the release happens wherever the last reference dies, possibly on another
thread while the poller is inside C with the GIL released.
"""

from __future__ import annotations

import functools
from typing import Any

from ._ffi import NULL, ffi, lib

__all__ = ["BatchPool"]


class BatchPool:
    """At most one spare set of batch buffers for one poller's ``struct tinybpf_batch``."""

    __slots__ = ("_open", "_spare")

    def __init__(self) -> None:
        self._spare: list[tuple[Any, Any, Any, int, int]] = []
        self._open = True

    def take(self, b: Any) -> tuple[Any, Any, Any]:
        """The filled buffers of ``b`` as (data, sizes, cpus) cdata pointers; ``data`` owns
        all three: when it is collected they come back here (or are freed)."""
        data = ffi.new("char **")
        sizes = ffi.new("__u32 **")
        cpus = ffi.new("__u32 **")
        cap = int(b.cap)
        scap = int(b.sizes_cap)
        lib.tinybpf_batch_take(b, data, sizes, cpus)
        s, c = sizes[0], cpus[0]
        owned = ffi.gc(data[0], functools.partial(self._release, s, c, cap, scap))
        self.install(b)
        return owned, s, c

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
