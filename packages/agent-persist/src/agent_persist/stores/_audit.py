"""Audit events: what :meth:`~.base.BaseStore.append_audit` accepts, and how one becomes a row.

    events = check_audit_events([{"event": "tool_call", "name": "add", "duration_ms": 1.5}])
    table, row = audit_row(events[0])      # ("tool_calls", {"name": "add", ...})

Every store keeps the events as items of the thread's :data:`AUDIT_LOG` log, so the report
through the API works everywhere; the SQL stores also project them into the audit tables
(see ``stores/sql/_audit.py``). The checks run once, before anything is written, so an
event a table could not hold is refused by every store alike (``ValueError`` naming it).

Kinds (every field but ``event`` optional; ``at`` is seconds since the epoch):

* ``message``: ``role``, ``content`` (any JSON; the column holds text), ``model``,
  ``input_tokens``, ``output_tokens``, ``cost_usd`` (of the model call that produced it);
* ``llm``: a model call with no message of its own (it only called tools): ``model``,
  tokens and cost; projected as an ``assistant`` row with no content;
* ``tool_call``: ``call_id``, ``name`` (required), ``input``, ``output``, ``duration_ms``;
* ``session``: ``user``, the user the session belongs to.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

from .._json import INT64_MAX

__all__ = ["AUDIT_LOG", "MAX_AUDIT_NAME", "audit_row", "check_audit_events", "clear_text"]

AUDIT_LOG = "audit"
"""The log of a thread that holds its audit events."""

MAX_AUDIT_NAME = 256
"""The longest role, model, tool name, call id or user: they are indexed or grouped by."""

_NAMES = {
    "message": ("role", "model"),
    "llm": ("model",),
    "tool_call": ("name", "call_id"),
    "session": ("user",),
}
_COUNTS = ("input_tokens", "output_tokens")
_NUMBERS = ("cost_usd", "duration_ms", "at")


def _problem(event: Mapping[str, Any]) -> str | None:
    """What makes one event unstorable, or ``None``."""
    kind = event.get("event")
    if kind not in _NAMES:
        return f"'event' must be one of {sorted(_NAMES)}, got {kind!r}"
    if kind == "tool_call" and "name" not in event:
        return "a tool_call needs a 'name'"
    for field in _NAMES[kind]:
        value = event.get(field)
        if field in event and not (isinstance(value, str) and 0 < len(value) <= MAX_AUDIT_NAME):
            return f"{field!r} must be a str of 1 to {MAX_AUDIT_NAME} characters"
    for field in _COUNTS:
        value = event.get(field, 0)
        if type(value) is not int or not 0 <= value <= INT64_MAX:
            return f"{field!r} must be an int from 0 to {INT64_MAX}"
    for field in _NUMBERS:
        value = event.get(field, 0)
        if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
            return f"{field!r} must be a finite number >= 0"
    return None


def check_audit_events(events: object) -> list[dict[str, Any]]:
    """The events as a list, or ``TypeError``/``ValueError`` naming the first bad one."""
    if isinstance(events, str | bytes) or not isinstance(events, Sequence):
        raise TypeError(f"events must be a sequence of dicts, got {type(events).__name__}")
    checked: list[dict[str, Any]] = []
    for index, event in enumerate(cast("Sequence[object]", events)):
        if not isinstance(event, Mapping):
            raise TypeError(f"events[{index}] must be a dict, got {type(event).__name__}")
        found = dict(cast("Mapping[str, Any]", event))
        problem = _problem(found)
        if problem is not None:
            raise ValueError(f"events[{index}]: {problem}")
        checked.append(found)
    return checked


def clear_text(value: object) -> str | None:
    """Text for a table column: other JSON as its JSON text, NUL as U+FFFD.

    PostgreSQL text holds no NUL; the log item keeps the exact value, the column is for
    reading and querying.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("\x00", "\ufffd")


def audit_row(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The table (``messages``, ``tool_calls`` or ``sessions``) and row of a checked event."""
    kind = event.get("event")
    at = event.get("at")
    if kind in ("message", "llm"):
        return "messages", {
            "role": clear_text(
                event.get("role", "assistant") if kind == "message" else "assistant"
            ),
            "model": clear_text(event.get("model")),
            "content": clear_text(event.get("content")) if kind == "message" else None,
            "input_tokens": event.get("input_tokens", 0),
            "output_tokens": event.get("output_tokens", 0),
            "cost_usd": float(event.get("cost_usd", 0.0)),
            "created_at": at,
        }
    if kind == "tool_call":
        duration = event.get("duration_ms")
        return "tool_calls", {
            "call_id": clear_text(event.get("call_id")),
            "name": clear_text(event["name"]),
            "input": clear_text(event.get("input")),
            "output": clear_text(event.get("output")),
            "duration_ms": None if duration is None else float(duration),
            "created_at": at,
        }
    if kind == "session":
        return "sessions", {"user_id": clear_text(event.get("user")), "created_at": at}
    return None
