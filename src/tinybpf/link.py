"""BpfLink: an attachment of a program to a hook.

A link detaches its program when it is destroyed (``destroy()``, ``with``, or garbage
collection). Keep a reference to the link for as long as the program should stay attached,
or pin it (a pinned link survives the process).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from tinybpf._ffi import NULL, capture_log, check_int, lib

if TYPE_CHECKING:
    from tinybpf.program import BpfProgram

__all__ = ["BpfLink"]


class BpfLink:
    """An attached program. ``destroy()`` detaches it; so does garbage collection.

    Example::

        with prog.attach_tracepoint("syscalls", "sys_enter_getpid") as link:
            ...  # attached here
        # detached here
    """

    def __init__(
        self, link_ptr: Any, description: str = "", program: BpfProgram | None = None
    ) -> None:
        self._ptr = link_ptr
        self._description = description
        # The program (and through it the object) stays alive as long as the link.
        self._program = program

    @property
    def description(self) -> str:
        return self._description

    @property
    def program(self) -> BpfProgram | None:
        """The program this link attaches (None for links opened from a pin)."""
        return self._program

    @property
    def fd(self) -> int:
        """The link's file descriptor, or -1 once destroyed."""
        if self._ptr is NULL or self._ptr is None:
            return -1
        return int(lib.bpf_link__fd(self._ptr))

    @property
    def destroyed(self) -> bool:
        return self._ptr is None

    def destroy(self) -> None:
        """Detach and free the link. Idempotent."""
        ptr = self._ptr
        if ptr is None:
            return
        self._ptr = None
        with capture_log() as log:
            ret = lib.bpf_link__destroy(ptr)
        check_int(ret, f"destroy link ({self._description}) failed", log)

    detach = destroy

    def __enter__(self) -> BpfLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __del__(self) -> None:
        if getattr(self, "_ptr", None) is None:
            return
        try:
            warnings.warn(
                f"BpfLink ({self._description}) was garbage collected while attached; the "
                "program has been detached. Keep a reference to the link (or use 'with') "
                "for as long as it should stay attached.",
                ResourceWarning,
                stacklevel=2,
            )
            self.destroy()
        except Exception:
            pass

    def __repr__(self) -> str:
        if self._ptr is None:
            return f"<BpfLink destroyed ({self._description})>"
        return f"<BpfLink fd={self.fd} ({self._description})>"
