"""What the parts of an object use of each other, as protocols: the one module that
type-only imports may point back to (tests/test_architecture.py).

``tinybpf.object`` imports maps, programs and globals at runtime; they know their
``BpfObject`` only through :class:`ObjectLike`. ``tinybpf.program`` imports links at
runtime; a link knows its program through :class:`ProgramLike`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import weakref

    from ._core.owner import Owner
    from ._kernel_info import KernelProgramInfo
    from .btf import Btf
    from .globals import _Layout
    from .map import BpfMap

__all__ = ["ObjectLike", "ProgramLike"]


class ObjectLike(Protocol):
    """The state of a ``BpfObject`` that its maps, programs, globals, BTF and event
    buffers read."""

    _guard: Owner
    _closed: bool
    _loaded: bool
    _load_failed: bool
    _failed_logs: Mapping[str, str]
    _log_bufs: dict[str, Any] | None
    _views: weakref.WeakSet[BpfMap[Any, Any]] | None

    @property
    def _maps(self) -> Mapping[str, BpfMap[Any, Any]]: ...

    def _btf_model(self) -> Btf | None: ...

    def _check_open(self) -> None: ...

    def _globals_layout(self) -> tuple[dict[str, _Layout], dict[str, _Layout]]: ...

    def _layout_changed(self) -> None: ...

    def _keep_fd(self, what: str, fd: int | None) -> None: ...

    def _validate_event_type(
        self, event_type: Any, validate_btf_struct: str | None, validate_field_names: bool
    ) -> None: ...


class ProgramLike(Protocol):
    """What a link uses of the ``BpfProgram`` it attaches."""

    _guard: Owner

    def _p(self) -> Any: ...

    @property
    def name(self) -> str: ...

    @property
    def fd(self) -> int: ...

    def kernel_info(self) -> KernelProgramInfo: ...
