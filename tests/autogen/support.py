"""Comparison helpers: runs are compared without the fields that differ between processes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage

from agent_persist import Envelope

VOLATILE = frozenset({"id", "created_at"})


def normalize(value: Any, *, volatile: frozenset[str] = VOLATILE) -> Any:
    """JSON without message ids and timestamps (new on every run)."""
    value = json.loads(json.dumps(value))

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in volatile}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(value)


def transcript(messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> Any:
    return normalize([message.dump() for message in messages])


def same_result(a: TaskResult, b: TaskResult) -> bool:
    return a.stop_reason == b.stop_reason and transcript(a.messages) == transcript(b.messages)


class Abort(BaseException):
    """Stands for a worker that dies: not an Exception, so nothing handles it as an error."""


def abort_after(count: int) -> Callable[[Envelope], None]:
    """An ``on_checkpoint`` callback that kills the run right after checkpoint ``count``."""
    seen = 0

    def callback(envelope: Envelope) -> None:
        nonlocal seen
        seen += 1
        if seen == count:
            raise Abort(f"killed after checkpoint {count} (step {envelope.step})")

    return callback
