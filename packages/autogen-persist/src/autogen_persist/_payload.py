"""The payload schema (version 1) of the ``autogen.team`` and ``autogen.agent`` kinds.

    payload = TeamPayload.model_validate(envelope.payload)   # CorruptCheckpointError via parse()
    print(payload.run.turn if payload.run else "no run yet")

A payload holds AutoGen's own state (``TeamState`` or an agent's state) with its growing lists
replaced by log references (:mod:`autogen_persist._logs`), plus what AutoGen leaves out: the
termination condition's state, the run in progress (task, turn, done flag, stop reason), the
layout and the extras (GraphFlow activation groups, SocietyOfMind model contexts).
Version 0 is raw state saved by hand, adopted by :mod:`autogen_persist._plugin`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_persist import Envelope
from agent_persist.errors import CorruptCheckpointError

from ._layout import Layout

__all__ = ["SCHEMA_VERSION", "AgentPayload", "Payload", "RunRecord", "TeamPayload", "parse"]

SCHEMA_VERSION = 1
"""The payload schema version this code writes for both kinds."""


class RunRecord(BaseModel):
    """The current (or last) run of a thread: what AutoGen has no notion of."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    task: str | None
    """Digest of the task's messages (``None``: run without a task)."""
    task_messages: int = Field(ge=0)
    start: int = Field(ge=0)
    """Position in the output transcript where the run's messages begin."""
    turn: int = Field(default=0, ge=0)
    done: bool = False
    stop_reason: str | None = None
    resumable: bool = True
    """``False`` when the team cannot continue this run mid-way (MagenticOne)."""


class Payload(BaseModel):
    """What both kinds' payloads hold besides the native state."""

    model_config = ConfigDict(extra="forbid")

    extras: dict[str, Any] = Field(default_factory=dict[str, Any])
    layout: Layout | None = None
    run: RunRecord | None = None


class TeamPayload(Payload):
    """Payload of an ``autogen.team`` checkpoint."""

    team: dict[str, Any]
    termination: dict[str, Any] | None = None
    output: Any = None
    """Every message the runs yielded (a log reference), to rebuild a run's ``TaskResult``."""


class AgentPayload(Payload):
    """Payload of an ``autogen.agent`` checkpoint."""

    agent: dict[str, Any]
    transcript: Any = None
    """The runs' messages (a log reference), kept by durable agents to replay a finished run."""


_P = TypeVar("_P", bound=Payload)


def parse(model: type[_P], envelope: Envelope) -> _P:
    """Validate ``envelope``'s payload; a wrong shape is a ``CorruptCheckpointError``."""
    try:
        return model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise CorruptCheckpointError(
            f"checkpoint {envelope.checkpoint_id!r} of thread {envelope.thread_id!r}: its "
            f"{envelope.kind!r} payload does not have the schema-{envelope.schema_version} "
            f"shape: {exc}"
        ) from exc
