"""What a durable team tells an operator: an info line and a span when it resumes a thread,
an info line when it takes a lease another worker let expire."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from scenarios import TASK, round_robin_max
from support import Abort, abort_after

from agent_persist import telemetry
from agent_persist.stores import BaseStore
from autogen_persist import DurableTeam

LOGGER = "autogen_persist"


@pytest.fixture
def spans() -> Iterator[object]:
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    exporters = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    exporter = exporters.InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    telemetry.configure(tracer_provider=provider)
    try:
        yield exporter
    finally:
        telemetry.configure()
        provider.shutdown()


async def test_a_resumed_team_logs_and_traces_the_checkpoint_it_resumed_from(
    memory_store: BaseStore, caplog: pytest.LogCaptureFixture, spans: object
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER), pytest.raises(Abort):
        await DurableTeam(
            round_robin_max, store=memory_store, thread_id="t", on_checkpoint=abort_after(3)
        ).run(task=TASK)
    assert not [r for r in caplog.records if "resumed" in r.getMessage()]  # a new thread
    head = await memory_store.get("t")

    with caplog.at_level(logging.INFO, logger=LOGGER):
        await DurableTeam(round_robin_max, store=memory_store, thread_id="t").run(task=TASK)
    resumed = [r for r in caplog.records if "resumed from checkpoint" in r.getMessage()]
    assert [(r.name, r.levelno) for r in resumed] == [(LOGGER, logging.INFO)]
    assert resumed[0].getMessage() == (
        f"thread 't': resumed from checkpoint {head.checkpoint_id!r} "
        f"(step {head.step}, kind 'autogen.team', schema version {head.schema_version})"
    )

    finished = spans.get_finished_spans()  # type: ignore[attr-defined]
    resumes = [s for s in finished if s.name == "agent_persist.resume"]
    assert [s.attributes["agent_persist.resumed"] for s in resumes] == [False, True]
    assert resumes[1].attributes["agent_persist.checkpoint.id"] == head.checkpoint_id
    reads = [
        s
        for s in finished
        if s.name == "agent_persist.get" and s.parent is not None
        if s.parent.span_id == resumes[1].context.span_id
    ]
    assert len(reads) == 1, "the head is read inside the resume span"


async def test_a_lease_taken_after_waiting_is_an_info_line(
    memory_store: BaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    await memory_store.acquire_lease("t", "a worker elsewhere", ttl=timedelta(milliseconds=300))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        await DurableTeam(round_robin_max, store=memory_store, thread_id="t").run(task=TASK)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "lease" in r.getMessage()]
    assert [level for level, _ in lines] == [logging.WARNING, logging.INFO]
    assert lines[1][1].startswith("thread 't': lease of a worker elsewhere taken after waiting ")
