"""JSON lines for the tools: one event per line, through ``to_dict()`` where it exists.

Everything that renders a value JSON cannot hold (bytes, ctypes values, enums) goes
through :func:`json_default`, so the rendering of bytes lives in one place.
"""

from __future__ import annotations

import ctypes
import enum
import json
from typing import Any

__all__ = ["bytes_text", "json_default", "json_line"]


def bytes_text(data: bytes | bytearray | memoryview) -> str:
    """How bytes appear in JSON: a C string (up to the first NUL) when it is UTF-8 text,
    otherwise the hex of every byte."""
    raw = bytes(data)
    text = raw.split(b"\0", 1)[0]
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()


def json_default(value: Any) -> Any:
    """``json.dumps(..., default=json_default)``: to_dict(), bytes, ctypes, enums."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes_text(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, ctypes.Array):
        if isinstance(value, ctypes.Array) and getattr(value, "_type_", None) is ctypes.c_char:
            return bytes_text(bytes(value))
        return list(value)
    if isinstance(value, ctypes._SimpleCData):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_line(value: Any) -> str:
    """One compact JSON line (no newline) for an event: what ``to_dict()`` gives for
    events decoded from BTF (nested structs as objects, arrays as lists), with bytes as
    text up to the first NUL when they are UTF-8 (hex otherwise), ctypes values as
    numbers, IntEnums as numbers and other enums by name.

    Example::

        def on_event(ev):
            print(tinybpf.json_line(ev), flush=True)   # JSON lines: one event per line
    """
    return json.dumps(value, default=json_default, separators=(",", ":"))
