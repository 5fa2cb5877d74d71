"""bpf_printk() output: the kernel's trace pipe, parsed.

``bpf_printk()``/``bpf_trace_printk()`` write to the tracing ring buffer, read through
``trace_pipe`` in tracefs (``/sys/kernel/tracing``, or ``/sys/kernel/debug/tracing``).
Reading it consumes what is read: two readers share the lines between them.

Example::

    for ev in tinybpf.trace_pipe(timeout=5):
        print(ev.pid, ev.task, ev.message)
"""

from __future__ import annotations

import errno as _errno
import os
import re
import select
import time
from dataclasses import asdict, dataclass
from typing import Any

from .errors import BpfError, BpfFileNotFoundError, error_from_oserror

__all__ = ["TraceEvent", "TracePipe", "trace_pipe"]

TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

# "<task>-<pid> (<tgid>)? [<cpu>] <flags> <timestamp>: <event>: <message>"; the task name
# may hold spaces and dashes, so the pid is the last "-<digits>" before the CPU column.
_LINE = re.compile(
    r"^\s*(?P<task>.*?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s\[\]]+)\s+)?(?P<ts>\d+\.\d+):\s+(?P<event>[^:\s]+):\s?(?P<message>.*)$"
)
_LOST = re.compile(r"^CPU:(?P<cpu>\d+) \[LOST (?P<n>\d+) EVENTS\]")
_POLL_MS = 100  # trace_pipe's poll() waits for buffer_percent: re-read at least this often


@dataclass(frozen=True)
class TraceEvent:
    """One line of the trace pipe.

    ``event`` is the trace event (``"bpf_trace_printk"`` for ``bpf_printk()``), ``flags``
    the kernel's irq/preempt flags column, ``timestamp`` seconds since boot (the trace
    clock). ``task`` is ``"<...>"`` when the kernel's command-name cache missed. A line
    the kernel reports lost events with has ``event == "lost"`` and the CPU;
    a line of another format has ``event == ""`` and the whole line in ``message``.

    Example::

        ev = next(iter(tinybpf.trace_pipe(timeout=1)), None)
        if ev is not None:
            print(ev.task, ev.pid, ev.cpu, ev.timestamp, ev.message)
    """

    task: str
    pid: int
    cpu: int
    flags: str
    timestamp: float
    event: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (JSON-serializable)."""
        return asdict(self)


def parse_trace_line(line: str) -> TraceEvent:
    """A trace pipe line as a :class:`TraceEvent` (never raises for odd lines).

    Example::

        >>> ev = parse_trace_line("  python-12 [001] ...21  25.5: bpf_trace_printk: hi")
        >>> (ev.task, ev.pid, ev.cpu, ev.message)
        ('python', 12, 1, 'hi')
    """
    m = _LINE.match(line)
    if m is not None:
        return TraceEvent(
            task=m["task"],
            pid=int(m["pid"]),
            cpu=int(m["cpu"]),
            flags=m["flags"] or "",
            timestamp=float(m["ts"]),
            event=m["event"],
            message=m["message"],
        )
    m = _LOST.match(line)
    if m is not None:
        return TraceEvent("", 0, int(m["cpu"]), "", 0.0, "lost", line)
    return TraceEvent("", 0, -1, "", 0.0, "", line)


def _tracefs() -> str:
    for d in TRACEFS_DIRS:
        if os.path.exists(os.path.join(d, "trace_pipe")):
            return d
    raise BpfFileNotFoundError(
        "tracefs is not mounted (no trace_pipe in /sys/kernel/tracing or "
        "/sys/kernel/debug/tracing): mount it with 'mount -t tracefs nodev /sys/kernel/tracing'",
        _errno.ENOENT,
    )


class TracePipe:
    """An iterator over the trace pipe's lines as :class:`TraceEvent`; see
    :func:`trace_pipe`. Close it (or use ``with``) to release the file.

    Example::

        pipe = tinybpf.TracePipe(timeout=1)
        try:
            lines = [ev.message for ev in pipe if ev.event == "bpf_trace_printk"]
        finally:
            pipe.close()
    """

    def __init__(self, timeout: float | None = None, path: str | None = None) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout}")
        self._fd = -1
        self._path = path or os.path.join(_tracefs(), "trace_pipe")
        try:
            self._fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise error_from_oserror(e, f"open {self._path} failed") from e
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._buf = b""
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)

    @property
    def path(self) -> str:
        return self._path

    def fileno(self) -> int:
        if self._fd < 0:
            raise BpfError("the trace pipe is closed")
        return self._fd

    def __iter__(self) -> TracePipe:
        return self

    def __next__(self) -> TraceEvent:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
                if not line.strip():
                    continue
                return parse_trace_line(line.decode("utf-8", "replace"))
            fd = self.fileno()
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                data = None
            if data:
                self._buf += data
                continue
            if self._deadline is None:
                wait = _POLL_MS
            else:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    raise StopIteration
                wait = min(_POLL_MS, max(1, int(left * 1000)))
            self._poll.poll(wait)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        """Close the trace pipe. Idempotent."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> TracePipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def trace_pipe(timeout: float | None = None) -> TracePipe:
    """Iterate over ``bpf_printk()`` output (the tracefs trace pipe), parsed into
    :class:`TraceEvent` (task, pid, cpu, flags, timestamp, event, message).

    ``timeout``: seconds after which the iteration ends (None: never; stop with ``break``
    or Ctrl-C). Reading consumes the lines (as ``cat trace_pipe`` does); lines printed
    before the pipe was opened and not yet read by anyone are delivered too. Raises
    ``BpfFileNotFoundError`` when tracefs is not mounted, ``BpfPermissionError`` without
    the right to read it.

    Example::

        with tinybpf.trace_pipe(timeout=2) as pipe:
            for ev in pipe:
                if ev.event == "bpf_trace_printk":
                    print(f"{ev.task}-{ev.pid} [{ev.cpu}] {ev.message}")
    """
    return TracePipe(timeout)
