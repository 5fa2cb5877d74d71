"""Field-wise sums of struct values (per-CPU maps' ``lookup_percpu_sum``)."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

__all__ = ["sum_structs"]


def _field_names(value: Any) -> list[str]:
    names = getattr(type(value), "_tinybpf_fields_", None)  # BtfStruct: no padding fields
    if names is not None:
        return list(names)
    return [f[0] for f in type(value)._fields_ if not f[0].startswith("_")]


def _add(values: Sequence[Any], where: str) -> Any:
    first = values[0]
    if isinstance(first, ctypes.Union):
        raise TypeError(f"lookup_percpu_sum(): {where} is a union, whose fields cannot be added")
    if isinstance(first, ctypes.Structure):
        out = type(first)()
        for name in _field_names(first):
            total = _add([getattr(v, name) for v in values], f"{where}.{name}")
            _store(out, name, total, where)
        return out
    if isinstance(first, ctypes.Array):
        arr = type(first)()
        for i in range(len(first)):
            total = _add([v[i] for v in values], f"{where}[{i}]")
            arr[i] = total
            if arr[i] != total:
                raise OverflowError(f"lookup_percpu_sum(): the sum of {where}[{i}] overflows")
        return arr
    if isinstance(first, bool) or not isinstance(first, (int, float)):
        raise TypeError(
            f"lookup_percpu_sum(): field {where} is {type(first).__name__}, not a number"
        )
    return sum(values)


def _store(out: Any, name: str, total: Any, where: str) -> None:
    if isinstance(total, ctypes.Structure | ctypes.Union | ctypes.Array):
        ctypes.memmove(
            ctypes.addressof(getattr(out, name)), ctypes.addressof(total), ctypes.sizeof(total)
        )
        return
    setattr(out, name, total)
    if getattr(out, name) != total:
        raise OverflowError(
            f"lookup_percpu_sum(): the sum of {where}.{name} ({total}) does not fit the field"
        )


def sum_structs(values: Sequence[Any], map_name: str) -> Any:
    """The field-wise sum of struct (or union) values, as a new value of their type."""
    return _add(values, f"'{map_name}' value")
