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


def render() -> str:
    import tinybpf

    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/gen_api.py`; do not edit by hand.",
        "",
    ]
    for name in sorted(tinybpf.__all__, key=str.lower):
        obj = getattr(tinybpf, name)
        if inspect.isclass(obj):
            lines += [f"## class `{name}`", "", _doc(obj), ""]
            members = []
            for mname, member in inspect.getmembers(obj):
                if mname.startswith("_") and mname not in ("__init__",):
                    continue
                if mname in vars(obj) and (
                    inspect.isfunction(member) or isinstance(vars(obj)[mname], property)
                ):
                    members.append((mname, vars(obj)[mname]))
            for mname, member in members:
                if isinstance(member, property):
                    doc = inspect.getdoc(member)
                    first = f": {doc.splitlines()[0]}" if doc else ""
                    lines.append(f"- `{mname}` (property){first}")
                else:
                    doc = inspect.getdoc(member)
                    first = f": {doc.splitlines()[0]}" if doc else ""
                    lines.append(f"- `{mname}{_sig(member)}`{first}")
            lines.append("")
        elif callable(obj):
            lines += [f"## `{name}{_sig(obj)}`", "", _doc(obj), ""]
        else:
            lines += [f"## `{name}` = `{obj!r}`", ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.exists() and OUT.read_text() == text else 1)
    OUT.write_text(text)
    print(f"wrote {OUT}")
