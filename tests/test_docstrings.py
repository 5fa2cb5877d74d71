"""Every public class and function of tinybpf has a docstring with an example."""

from __future__ import annotations

import inspect

import tinybpf


def test_public_items_have_examples() -> None:
    missing = []
    for name in [*tinybpf.__all__, *tinybpf._PUBLIC_NOT_IN_ALL]:
        obj = getattr(tinybpf, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and "Example" not in (
            inspect.getdoc(obj) or ""
        ):
            missing.append(name)
    assert not missing, f"public items without an Example in their docstring: {missing}"
