"""Generate docs/api.md from the package's docstrings: `python docs/gen_api.py`.

tests/test_api_docs.py checks that docs/api.md is up to date.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "api.md"


def _doc(obj: object) -> str:
    return inspect.cleandoc(inspect.getdoc(obj) or "(no docstring)")


def _sig(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"


def _members(cls: type) -> list[tuple[str, object]]:
    """Public methods and properties of a class, also those it inherits from tinybpf's own
    base classes (not from object, ctypes or typing bases), in name order."""
    seen: dict[str, object] = {}
    for base in reversed(cls.__mro__):
        if not base.__module__.startswith("tinybpf"):
            continue
        for mname, member in vars(base).items():
            if mname.startswith("_") and (mname != "__init__" or base is not cls):
                continue
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if inspect.isfunction(member) or isinstance(member, property):
                seen[mname] = member
            else:
                seen.pop(mname, None)  # overridden by something that is not documented
    return sorted(seen.items())


def _member_line(mname: str, member: object) -> str:
    doc = inspect.getdoc(member)
    first = f": {doc.splitlines()[0]}" if doc else ""
    if isinstance(member, property):
        return f"- `{mname}` (property){first}"
    return f"- `{mname}{_sig(member)}`{first}"


def render() -> str:
    import tinybpf

    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/gen_api.py`; do not edit by hand.",
        "",
    ]
    public = [*tinybpf.__all__, *tinybpf._PUBLIC_NOT_IN_ALL]
    for name in sorted(public, key=str.lower):
        obj = getattr(tinybpf, name)
        if inspect.isclass(obj):
            lines += [f"## class `{name}`", "", _doc(obj), ""]
            lines += [_member_line(mname, member) for mname, member in _members(obj)]
            lines.append("")
        elif callable(obj):
            lines += [f"## `{name}{_sig(obj)}`", "", _doc(obj), ""]
        else:
            lines += [f"## `{name}` = `{obj!r}`", ""]
    # public names of tinybpf.errors that the package does not re-export
    import tinybpf.errors as errors

    for name in sorted(set(errors.__all__) - set(public)):
        obj = getattr(errors, name)
        lines += [f"## `tinybpf.errors.{name}{_sig(obj)}`", "", _doc(obj), ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.exists() and OUT.read_text() == text else 1)
    OUT.write_text(text)
    print(f"wrote {OUT}")
