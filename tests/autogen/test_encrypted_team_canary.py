"""Canary: an AutoGen team on an encrypted store never writes its content in clear.

A marker goes in through the task and a tool's output, so it reaches the team's
checkpoints (payloads), its logs (transcript, model contexts), the call journal
(``$journal``, left holding a turn's completed calls by a model call that fails) and the
audit tables (events appended to the thread). On memory, SQLite, PostgreSQL and Redis the
raw rows, keys and values, audit tables included, never hold it; the run resumes from the
sealed journal and ends as a run that never failed. The same run on a clear store does show
it, so the dump would catch a leak.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import Team
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core.models import CreateResult
from support import normalize, same_result

from agent_persist.crypto import Encryption, KeyRing
from agent_persist.journal import JOURNAL_LOG
from agent_persist.stores import BaseStore
from autogen_persist import DurableTeam
from autogen_persist.testing import HashChatCompletionClient

sys.path.insert(0, str(Path(__file__).parents[1] / "stores"))  # the raw readers of every store
from encryption_raw import BACKENDS, Raw, open_raw

pytestmark = pytest.mark.needs_extras  # the crypto extra

MARKER = "CANARY-autogen-0d5e-never-in-clear"
TASK = f"Fetch the notes and plan the trip. {MARKER}"
KEY = os.urandom(32)


class ModelDown(Exception):
    """A model call that fails (the provider's 429)."""


class _Failing:
    at: int | None = None
    calls = 0


class FailingClient(HashChatCompletionClient):
    """The hash double, failing the ``_Failing.at``-th call of this process once."""

    async def create(self, messages: Sequence[Any], **options: Any) -> CreateResult:
        _Failing.calls += 1
        if _Failing.at == _Failing.calls:
            raise ModelDown("the model is down")
        return await super().create(messages, **options)


def fetch_notes(topic: str) -> str:
    """Fetch the notes on a topic."""
    return f"notes on {topic}: {MARKER}"


def team() -> Team:
    fetcher = AssistantAgent(
        "fetcher",
        model_client=FailingClient(name="fetcher", tool_every=1),
        tools=[fetch_notes],
        system_message="You fetch notes with the tool.",
        reflect_on_tool_use=True,
    )
    planner = AssistantAgent(
        "planner",
        model_client=FailingClient(name="planner"),
        system_message="You plan.",
    )
    return RoundRobinGroupChat([fetcher, planner], termination_condition=MaxMessageTermination(6))


@pytest.fixture(params=BACKENDS)
async def raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    _Failing.at, _Failing.calls = None, 0
    async for value in open_raw(request.param, request, tmp_path):
        yield value


async def sealed(raw: Raw) -> BaseStore:
    return await raw.open(encryption=Encryption(KeyRing({"k": KEY}, primary="k")))


def events() -> list[dict[str, Any]]:
    return [
        {"event": "message", "role": "user", "content": TASK, "model": "m"},
        {"event": "tool_call", "call_id": "c1", "name": "fetch_notes", "input": {"t": MARKER},
         "output": MARKER, "duration_ms": 3.0},
    ]  # fmt: skip


async def test_a_team_run_journal_and_audit_stay_sealed_and_resume(raw: Raw) -> None:
    store = await sealed(raw)
    reference = DurableTeam(team, store=store, thread_id="reference")
    expected = await reference.run(task=TASK)
    expected_state = normalize(await reference.state())
    assert MARKER in str(expected_state)  # the marker is in the checkpointed state
    # The fetcher's reflection (the 2nd model call) fails: the turn's model call and tool
    # run stay in the journal, the marker among them.
    _Failing.at, _Failing.calls = 2, 0
    with pytest.raises((ModelDown, RuntimeError), match="the model is down"):
        await DurableTeam(team, store=store, thread_id="t").run(task=TASK)
    journal = await store.read_log("t", JOURNAL_LOG)
    assert journal
    assert MARKER in str(journal)
    await store.append_audit("t", events())
    dump = await raw.dump()
    assert b"aes256gcm" in dump
    assert MARKER.encode() not in dump
    assert MARKER.encode().hex().encode() not in dump
    # Another store object, same data and ring: resumes from the sealed journal and ends
    # as the run that never failed.
    _Failing.at = None
    again = await sealed(raw)
    resumed = DurableTeam(team, store=again, thread_id="t")
    result = await resumed.run(task=TASK)
    assert same_result(result, expected)
    assert normalize(await resumed.state()) == expected_state
    assert await again.log_length("t", JOURNAL_LOG) == 0
    assert await again.read_log("t", "audit") == await store.read_log("t", "audit")
    read_rows = getattr(again, "read_audit_rows", None)
    if read_rows is not None:  # SQL: the audit rows open under the thread's key
        [call] = await read_rows("t", "tool_calls")
        assert (call["name"], call["output"]) == ("fetch_notes", MARKER)
    assert MARKER.encode() not in await raw.dump()
    # The same run on a clear store shows the marker: the dump would catch a leak.
    clear = await raw.open(namespace="clear")
    await DurableTeam(team, store=clear, thread_id="t").run(task=TASK)
    await clear.append_audit("t", events())
    assert MARKER.encode() in await raw.dump()
