"""Whether two function sources differ only by the function's own name.

    only_function_renamed(old_source, new_source)   # True: def lookup_customer -> def find_customer

AutoGen records a ``FunctionTool`` by its function's source (``config.source_code``), so
renaming the Python function changes the source as well as the tool's name. A declared tool
rename covers that change, and only that change: everything but the name in the ``def``
line must be the same text (comments and spacing included), and the code must not use
either name anywhere else. A function that calls itself, or one that now shares its name
with a function it calls, would behave differently under the new name, so that is a body
change. Tokens, not text search, find the name: a docstring or comment naming the function
is text like any other and must stay the same.
"""

from __future__ import annotations

import io
import tokenize
from dataclasses import dataclass

__all__ = ["only_function_renamed"]


@dataclass(frozen=True, slots=True)
class _Def:
    """Where a source's function name is, and the names its code uses besides it."""

    row: int
    start: int
    end: int
    name: str
    others: frozenset[str]


def _function_def(source: str) -> _Def | None:
    """The first ``def`` of ``source`` (the function itself: decorators come before it)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):  # not Python: nothing to compare by name
        return None
    for index, token in enumerate(tokens[:-1]):
        name = tokens[index + 1]
        if token.type == tokenize.NAME and token.string == "def" and name.type == tokenize.NAME:
            others = frozenset(
                t.string for i, t in enumerate(tokens) if t.type == tokenize.NAME and i != index + 1
            )
            return _Def(name.start[0], name.start[1], name.end[1], name.string, others)
    return None


def only_function_renamed(before: object, after: object) -> bool:
    """Whether source ``after`` is ``before`` with only the function's ``def`` name changed.

    Also false when either is not a string or not Python, when the name did not change, and
    when the code uses the old or the new name besides the ``def`` line.
    """
    if not isinstance(before, str) or not isinstance(after, str):
        return False
    old, new = _function_def(before), _function_def(after)
    if old is None or new is None or old.name == new.name:
        return False
    if {old.name, new.name} & (old.others | new.others):
        return False
    lines = io.StringIO(before).readlines()
    line = lines[old.row - 1]
    lines[old.row - 1] = line[: old.start] + new.name + line[old.end :]
    return "".join(lines) == after
