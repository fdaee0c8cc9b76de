"""The durable layers retry a checkpoint write whose connection broke, and lose nothing.

``put_retrying`` puts the same envelope again while the store is unavailable: a first
attempt whose commit went through although its reply was lost is found by the next one
(``put`` is idempotent by checkpoint id). An AutoGen team whose connection is cut right
after a checkpoint's ``COMMIT`` mid-run finishes as if nothing happened; an OpenAI Agents
session with checkpoints stores the turn once.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from fault_matrix import Proxied

from agent_persist import Envelope
from agent_persist.errors import StoreUnavailableError
from agent_persist.retry import put_retrying
from agent_persist.stores import CheckpointStore, MemoryStore
from agent_persist.testing.conformance import envelope

sys.path.insert(0, str(Path(__file__).parent.parent / "autogen"))  # the shared scenarios

from scenarios import TASK, round_robin_max
from support import same_result

from autogen_persist import DurableTeam
from openai_agents_persist import StoreSession

logger = logging.getLogger("agent_persist.tests.retry")


def contents(items: list[Any]) -> list[str]:
    """The session items' texts."""
    return [cast("dict[str, str]", item)["content"] for item in items]


async def test_a_retried_put_after_a_lost_commit_reply_returns_the_stored_checkpoint(
    proxied: Proxied, caplog: pytest.LogCaptureFixture
) -> None:
    store, proxy, commit = proxied
    first = await store.put(envelope("t"), appends={"log": ["a"]})
    second = envelope("t", parent=first)
    proxy.drop_reply(match=commit)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        saved = await put_retrying(store, second, appends={"log": ["b"]}, logger=logger)
    assert proxy.fired == 1
    assert saved.checkpoint_id == second.checkpoint_id
    assert await store.read_log("t", "log") == ["a", "b"]
    retries = [r for r in caplog.records if r.name == logger.name]
    assert len(retries) == 1
    assert retries[0].levelno == logging.WARNING
    assert "attempt 2 of 3" in retries[0].getMessage()


async def test_retries_are_bounded_and_end_with_the_typed_error(
    proxied: Proxied, caplog: pytest.LogCaptureFixture
) -> None:
    store, proxy, _ = proxied
    first = await store.put(envelope("t"))
    proxy.refusing = True
    proxy.cut_all()
    with caplog.at_level(logging.WARNING, logger=logger.name), pytest.raises(StoreUnavailableError):
        await put_retrying(store, envelope("t", parent=first), attempts=4, logger=logger)
    assert len([r for r in caplog.records if r.name == logger.name]) == 3
    proxy.refusing = False
    assert (await store.get("t")).checkpoint_id == first.checkpoint_id  # nothing written


async def test_a_retried_put_that_clears_a_log_clears_it_with_the_checkpoint_once(
    proxied: Proxied,
) -> None:
    store, proxy, commit = proxied
    first = await store.put(envelope("t"), appends={"$journal": ["pinned"]})
    await store.append("t", "$journal", ["call"])
    second = envelope("t", parent=first)
    proxy.drop_reply(match=commit)
    saved = await put_retrying(
        store, second, appends={"log": ["b"]}, clear_logs=["$journal"], logger=logger
    )
    assert proxy.fired == 1
    assert saved.checkpoint_id == second.checkpoint_id
    assert await store.read_log("t", "$journal", at=saved) == []
    assert await store.read_log("t", "$journal") == []
    assert await store.read_log("t", "$journal", at=first) == ["pinned"]
    assert await store.read_log("t", "log") == ["b"]


class _RecordingStore:
    """A store's ``put`` that records the keywords it is given (a store without them)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def put(self, envelope: Envelope, **options: Any) -> Envelope:
        self.calls.append(options)
        return envelope


async def test_put_retrying_passes_lease_and_clear_logs_only_when_given() -> None:
    recording = _RecordingStore()
    store = cast("CheckpointStore", recording)
    await put_retrying(store, envelope("t"), logger=logger)
    await put_retrying(store, envelope("t"), clear_logs=["$journal"], logger=logger)
    await put_retrying(store, envelope("t"), clear_logs=[], logger=logger)
    assert recording.calls == [
        {"appends": None},
        {"appends": None, "clear_logs": ["$journal"]},
        {"appends": None, "clear_logs": []},
    ]
    with pytest.raises(TypeError, match="clear_logs"):
        await put_retrying(MemoryStore(), envelope("t"), clear_logs="$journal", logger=logger)


@pytest.mark.parametrize("attempts", [0, -1, 1.5, True])
async def test_attempts_must_be_a_positive_int(attempts: object) -> None:
    with pytest.raises((TypeError, ValueError), match="write_attempts"):
        await put_retrying(MemoryStore(), envelope("t"), attempts=attempts, logger=logger)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("journal", "loggers"),
    [
        pytest.param(False, {"autogen_persist"}, id="checkpoint"),
        # The next write after the third checkpoint: the fourth turn's journal entry where
        # the proxy's commit pattern matches appends too (SQL), else the checkpoint (Redis).
        pytest.param(True, {"agent_persist", "autogen_persist"}, id="journal"),
    ],
)
async def test_a_durable_team_whose_commit_reply_is_lost_mid_run_equals_the_uninterrupted_run(
    proxied: Proxied,
    caplog: pytest.LogCaptureFixture,
    journal: bool,
    loggers: set[str],
) -> None:
    store, proxy, commit = proxied
    expected = await DurableTeam(round_robin_max, store=MemoryStore(), thread_id="ref").run(
        task=TASK
    )
    seen: list[Envelope] = []

    def cut_after_the_third(checkpoint: Envelope) -> None:
        seen.append(checkpoint)
        if len(seen) == 3:
            proxy.drop_reply(match=commit)  # the next write's reply is lost

    team = DurableTeam(
        round_robin_max,
        store=store,
        thread_id="t",
        on_checkpoint=cut_after_the_third,
        journal=journal,
    )
    with caplog.at_level(logging.WARNING):
        result = await team.run(task=TASK)

    assert proxy.fired == 1
    assert same_result(result, expected)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name in loggers
    assert "retrying" in warnings[0].getMessage()
    stored = await store.list_checkpoints("t")
    assert [e.checkpoint_id for e in reversed(stored)] == [e.checkpoint_id for e in seen]
    assert len({e.step for e in stored}) == len(stored)  # one checkpoint per step
    assert await store.log_length("t", "$journal") == 0


async def test_a_session_turn_whose_commit_reply_is_lost_is_stored_once(
    proxied: Proxied, caplog: pytest.LogCaptureFixture
) -> None:
    store, proxy, commit = proxied
    session = StoreSession("s", store=store, checkpoints=True)
    await session.add_items([{"role": "user", "content": "first"}])
    proxy.drop_reply(match=commit)
    with caplog.at_level(logging.WARNING, logger="openai_agents_persist"):
        await session.add_items([{"role": "assistant", "content": "second"}])
    assert proxy.fired == 1
    assert contents(await session.get_items()) == ["first", "second"]
    assert len(await store.list_checkpoints("s")) == 2
    warnings = [r for r in caplog.records if r.name == "openai_agents_persist"]
    assert len(warnings) == 1
    await session.add_items([{"role": "user", "content": "third"}])  # the head is right
    assert len(await store.list_checkpoints("s")) == 3


async def test_a_session_gives_up_after_its_attempts_and_rereads_the_head(
    proxied: Proxied,
) -> None:
    store, proxy, _ = proxied
    session = StoreSession("s", store=store, checkpoints=True, write_attempts=2)
    await session.add_items([{"role": "user", "content": "first"}])
    proxy.refusing = True
    proxy.cut_all()
    with pytest.raises(StoreUnavailableError):
        await session.add_items([{"role": "user", "content": "lost"}])
    proxy.refusing = False
    await session.add_items([{"role": "user", "content": "again"}])
    assert contents(await session.get_items()) == ["first", "again"]
