"""Which run a call continues: resume the unfinished one, replay the finished one, or start.

    messages = task_messages("Write a poem.")
    match decide(record, task_digest(messages), resume=True, where="thread 't-1'"):
        case Decision.RESUME: ...     # continue the unfinished run (no task is re-sent)
        case Decision.FINISHED: ...   # return the finished run's result; nobody talks
        case Decision.NEW: ...        # start a run with this task

Starting the same code again must resume, so a call whose task equals the recorded run's
(or that has no task) continues that run, or returns its result if it finished. A different
task while a run is unfinished is an error, not a silent restart; ``resume=False`` asks for
AutoGen's own behaviour: always start a new run with the given task.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from autogen_agentchat.messages import BaseChatMessage, TextMessage

from agent_persist import fingerprint

from ._payload import RunRecord
from .errors import RunInProgressError

__all__ = ["Decision", "Task", "decide", "new_run", "task_digest", "task_messages"]

Task = str | BaseChatMessage | Sequence[BaseChatMessage] | None
"""What ``run(task=...)`` accepts, as in AutoGen."""

_VOLATILE = frozenset({"id", "created_at", "models_usage", "metadata"})


class Decision(enum.Enum):
    """What a ``run()`` call does with the thread's recorded run."""

    RESUME = "resume"
    FINISHED = "finished"
    NEW = "new"


def task_messages(task: Task) -> list[BaseChatMessage] | None:
    """The task as messages, the way AutoGen's ``run()`` turns it into messages."""
    if task is None:
        return None
    if isinstance(task, str):
        return [TextMessage(content=task, source="user")]
    if isinstance(task, BaseChatMessage):
        return [task]
    items: list[object] = list(task)
    messages = [m for m in items if isinstance(m, BaseChatMessage)]
    if not messages or len(messages) != len(items):
        raise ValueError("a task list must be a non-empty list of chat messages")
    return messages


def task_digest(messages: Sequence[BaseChatMessage] | None) -> str | None:
    """What identifies a task across processes: its messages without ids and timestamps."""
    if messages is None:
        return None
    stable: list[Any] = [
        {k: v for k, v in message.dump().items() if k not in _VOLATILE} for message in messages
    ]
    return fingerprint(stable)


def decide(record: RunRecord | None, digest: str | None, *, resume: bool, where: str) -> Decision:
    """Resume, replay or start; ``RunInProgressError`` for a new task over an unfinished run."""
    if record is None or not resume:
        return Decision.NEW
    same = digest is None or digest == record.task
    if not record.done:
        if same:
            return Decision.RESUME
        raise RunInProgressError(
            f"{where} has an unfinished run (run {record.index}, turn {record.turn}) of "
            "another task. Call run() with no task (or the same task) to finish it, or pass "
            "resume=False to start the new task on top of it"
        )
    return Decision.FINISHED if same else Decision.NEW


def new_run(
    previous: RunRecord | None, messages: Sequence[BaseChatMessage] | None, *, start: int
) -> RunRecord:
    """The record of a run starting at transcript position ``start``."""
    return RunRecord(
        index=0 if previous is None else previous.index + 1,
        task=task_digest(messages),
        task_messages=len(messages or ()),
        start=start,
    )
