"""``tinybpf shell``: an interactive Python shell around an object, with tab completion of
attributes (``obj.<TAB>``: programs, maps, globals) and of names in subscripts
(``obj.maps["<TAB>``, ``obj.globals["<TAB>``, ``obj.programs["<TAB>``)."""

from __future__ import annotations

import re
import rlcompleter
from collections.abc import Mapping
from typing import Any

__all__ = ["ShellCompleter", "run_shell"]

_SUBSCRIPT = re.compile(r"^(?P<expr>[A-Za-z_][\w.]*)\[(?P<quote>['\"])(?P<prefix>[^'\"]*)$")


class ShellCompleter(rlcompleter.Completer):
    """rlcompleter's attribute and name completion, plus the keys of mappings in
    ``expr["prefix`` (the expression is only looked up by attribute, never called)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        super().__init__(namespace)
        self._ns = namespace
        self._matches: list[str] = []

    def complete(self, text: str, state: int) -> str | None:
        m = _SUBSCRIPT.match(text)
        if m is None:
            return super().complete(text, state)
        if state == 0:
            self._matches = self._keys(m["expr"], m["quote"], m["prefix"])
        return self._matches[state] if state < len(self._matches) else None

    def _keys(self, expr: str, quote: str, prefix: str) -> list[str]:
        head, *attrs = expr.split(".")
        if head not in self._ns:
            return []
        value = self._ns[head]
        try:
            for attr in attrs:
                value = getattr(value, attr)
            keys = list(value) if isinstance(value, Mapping) or hasattr(value, "keys") else []
        except Exception:
            return []
        return [
            f"{expr}[{quote}{k}{quote}]"
            for k in sorted(str(k) for k in keys)
            if isinstance(k, str) and k.startswith(prefix)
        ]


def run_shell(namespace: dict[str, Any], banner: str) -> None:
    """code.interact() with tab completion (when the readline module exists)."""
    import code

    try:
        import readline
    except ImportError:  # a Python built without readline: no completion, say so
        banner += "\n(no readline module here: tab completion is off)"
    else:
        readline.set_completer(ShellCompleter(namespace).complete)
        readline.set_completer_delims(" \t\n`~!@#$%^&*()=+{}\\|;:,<>/?")
        readline.parse_and_bind("tab: complete")
    code.interact(banner=banner, local=namespace, exitmsg="")
