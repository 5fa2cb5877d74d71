"""Ring, perf and user ring buffers (the first generation's module; the code is in
tinybpf.events)."""

from __future__ import annotations

from .events.batch import EventBatch
from .events.perf import BpfPerfBuffer
from .events.ring import BpfRingBuffer
from .events.user_ring import BpfUserRingBuffer

__all__ = ["BpfPerfBuffer", "BpfRingBuffer", "BpfUserRingBuffer", "EventBatch"]
