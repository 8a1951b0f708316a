"""Long statements live in ``.sql`` files beside the module that runs them (docs/architecture.md, "SQL").

A file holds one statement, or a fragment of one that several statements share (the SCD2 validity ranges, a
rounding rule): ``{name}`` in a file is replaced by the text of ``name.sql`` in the same folder, and
``{name(a=<sql>, b=<sql>)}`` by that text with its own ``{a}`` and ``{b}`` replaced by the SQL written there (a
column, an expression without braces), in parentheses. Nothing else is ever put into the text: values are bound
parameters, and data a statement needs from Python is staged in a temporary table (``WarehouseTx.staged``). The
files are written in the SQL both warehouse engines accept.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_INCLUDE = re.compile(r"\{([a-z_][a-z0-9_]*)(?:\(([^{}()]*(?:\([^{}()]*\)[^{}()]*)*)\))?\}")
_ARGUMENT = re.compile(r"\s*([a-z_][a-z0-9_]*)\s*=\s*(.+?)\s*$", re.S)


def sql_file(anchor: str, name: str) -> str:
    """The statement in the file ``name`` beside the module whose ``__file__`` is ``anchor``, its fragments in."""
    return _load(Path(anchor).resolve().parent / name, ())


def _arguments(text: str) -> dict[str, str]:
    """``a=x, b=f(y, z)``: split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    out = {}
    for part in parts:
        match = _ARGUMENT.fullmatch(part)
        if not match:
            raise ValueError(f"a fragment's argument is written name=<sql>, not {part.strip()!r}")
        out[match[1]] = match[2]
    return out


@cache
def _load(path: Path, outer: tuple[Path, ...]) -> str:
    """The text of ``path`` with its includes in; a ``{name}`` with no ``name.sql`` beside it is an argument of
    the fragment, left for the including file to fill (an error in a statement's own file)."""
    if path in outer:
        raise ValueError(f"{path.name} includes itself through {' -> '.join(p.name for p in outer)}")
    text = path.read_text(encoding="utf-8")
    if outer:  # a fragment: its own comments would swallow what follows it on the including line
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()

    def include(match: re.Match) -> str:
        source = path.with_name(match[1] + ".sql")
        if not source.is_file():
            if outer and match[2] is None:
                return match[0]
            raise ValueError(f"{path.name}: {match[0]} names no file {source.name}")
        fragment = _load(source, (*outer, path))
        for name, sql in (_arguments(match[2]) if match[2] is not None else {}).items():
            if "{" + name + "}" not in fragment:
                raise ValueError(f"{source.name} has no {{{name}}}")
            fragment = fragment.replace("{" + name + "}", f"({sql})")  # an expression keeps its own precedence
        return fragment

    return _INCLUDE.sub(include, text)
