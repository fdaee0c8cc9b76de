"""OpenTelemetry spans and metrics, read back through the SDK's in-memory exporter and reader.

Each test gets its own providers through ``telemetry.configure`` (never the global ones), on
every built-in store: the memory and SQLite stores always, PostgreSQL and Redis when their
servers answer.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the telemetry tests need opentelemetry-sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agent_persist import Envelope, Producer, Registry, _otel, open_store, telemetry
from agent_persist.errors import ConflictError, LeaseHeldError, MigrationFailedError
from agent_persist.stores import BaseStore

PRODUCER = Producer(package="tests")
STORES = [
    "memory",
    "sqlite",
    pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.needs_extras]),
    pytest.param("redis", marks=[pytest.mark.redis, pytest.mark.needs_extras]),
]


@dataclass
class Recorded:
    """What the instrumented code sent, as the SDK holds it."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = list(self.exporter.get_finished_spans())
        return [s for s in found if name is None or s.name == name]

    def span(self, name: str) -> ReadableSpan:
        (found,) = self.spans(name)
        return found

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            if scope.scope.name == "agent_persist"
            for found in scope.metrics
            if found.name == metric
            for point in found.data.data_points
        ]


@pytest.fixture
def otel() -> Iterator[Recorded]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Recorded(exporter, reader)
    finally:
        telemetry.configure()  # back to the global providers
        tracer_provider.shutdown()
        meter_provider.shutdown()


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BaseStore]:
    name: str = request.param
    if name == "memory":
        opened = open_store("memory://")
    elif name == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'otel.db'}")
    elif name == "postgresql":
        url = request.getfixturevalue("postgres_url")
        opened = open_store(url, schema=request.getfixturevalue("postgres_schema"))
    else:
        url = request.getfixturevalue("redis_url")
        opened = open_store(url, prefix=request.getfixturevalue("redis_prefix"))
    async with opened:
        assert opened.backend == name
        yield opened


def envelope(thread_id: str = "t-1", *, payload: Any = None, **fields: Any) -> Envelope:
    return Envelope.create(
        kind="tests.kind",
        schema_version=2,
        thread_id=thread_id,
        payload={"n": 1} if payload is None else payload,
        producer=PRODUCER,
        **fields,
    )


async def test_put_and_get_spans_carry_the_checkpoint(otel: Recorded, store: BaseStore) -> None:
    first = envelope()
    stored = await store.put(first, appends={"transcript": ["hello", {"role": "user"}]})
    head = await store.get("t-1")

    put = otel.span("agent_persist.put")
    attributes = dict(put.attributes or {})
    expected_bytes = len(store.codec.seal(first.payload, what="x")) + sum(
        len(store.codec.seal(item, what="x")) for item in ["hello", {"role": "user"}]
    )
    assert attributes == {
        "agent_persist.store": store.backend,
        "agent_persist.namespace": "default",
        "agent_persist.thread.id": "t-1",
        "agent_persist.checkpoint.id": stored.checkpoint_id,
        "agent_persist.checkpoint.kind": "tests.kind",
        "agent_persist.checkpoint.schema_version": 2,
        "agent_persist.checkpoint.step": 0,
        "agent_persist.checkpoint.bytes": expected_bytes,
    }
    assert put.status.status_code is StatusCode.UNSET
    get = otel.span("agent_persist.get")
    assert get.attributes is not None
    assert get.attributes["agent_persist.checkpoint.id"] == head.checkpoint_id
    assert get.attributes["agent_persist.checkpoint.kind"] == "tests.kind"
    assert get.attributes["agent_persist.thread.id"] == "t-1"

    (duration,) = otel.points("agent_persist.checkpoint.write.duration")
    assert duration.count == 1
    assert duration.sum > 0
    labels = {"agent_persist.store": store.backend, "agent_persist.checkpoint.kind": "tests.kind"}
    assert dict(duration.attributes) == labels  # never a thread id or a namespace
    (size,) = otel.points("agent_persist.checkpoint.size")
    assert (size.count, size.sum) == (1, expected_bytes)
    assert dict(size.attributes) == labels


async def test_a_conflict_is_an_error_span_and_counted(otel: Recorded, store: BaseStore) -> None:
    private = "the payload must never reach telemetry"
    await store.put(envelope())
    with pytest.raises(ConflictError):
        await store.put(envelope(payload={"private": private}))  # parent None: not the head

    failed = [
        s for s in otel.spans("agent_persist.put") if s.status.status_code is StatusCode.ERROR
    ]
    (span,) = failed
    assert span.status.description == "ConflictError"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ConflictError"
    assert span.events == ()  # no exception event: its message could quote stored data
    assert private not in repr(span.to_json())
    (conflicts,) = otel.points("agent_persist.checkpoint.conflicts")
    assert conflicts.value == 1
    assert "agent_persist.thread.id" not in conflicts.attributes
    errors = [
        p
        for p in otel.points("agent_persist.checkpoint.write.duration")
        if "error.type" in p.attributes
    ]
    assert [p.attributes["error.type"] for p in errors] == ["ConflictError"]


async def test_a_retried_put_that_was_committed_is_no_conflict(
    otel: Recorded, store: BaseStore
) -> None:
    first = envelope()
    await store.put(first)
    await store.put(first)  # a retry after an unknown commit outcome returns the stored one
    assert [s.status.status_code for s in otel.spans("agent_persist.put")] == [StatusCode.UNSET] * 2
    assert otel.points("agent_persist.checkpoint.conflicts") == []


async def test_log_reads_have_spans_with_counts(otel: Recorded, store: BaseStore) -> None:
    await store.append("t-1", "items", [1, 2, 3])
    assert await store.read_log("t-1", "items") == [1, 2, 3]
    assert await store.tail("t-1", "items", 2) == [2, 3]
    lines = await store.read_log_lines("t-1", "items")
    tail = await store.tail_lines("t-1", "items", 1)

    for name, key, value in [
        ("agent_persist.read_log", "agent_persist.log.items", 3),
        ("agent_persist.tail", "agent_persist.log.items", 2),
        ("agent_persist.read_log_lines", "agent_persist.log.bytes", len(lines)),
        ("agent_persist.tail_lines", "agent_persist.log.bytes", len(tail)),
    ]:
        attributes = otel.span(name).attributes
        assert attributes is not None
        assert attributes[key] == value, name
        assert attributes["agent_persist.log.name"] == "items"
        assert attributes["agent_persist.thread.id"] == "t-1"
        assert attributes["agent_persist.store"] == store.backend


async def test_lease_spans_and_the_takeover_counter(otel: Recorded, store: BaseStore) -> None:
    minute = timedelta(minutes=1)
    dead = await store.acquire_lease("t-1", "dead-worker", ttl=minute)
    await store.renew_lease(dead, ttl=minute)
    with pytest.raises(LeaseHeldError):
        await store.acquire_lease("t-1", "new-worker", ttl=minute)
    taken = await store.acquire_lease("t-1", "new-worker", ttl=minute, take_over="dead-worker")
    await store.release_lease(taken)

    acquires = otel.spans("agent_persist.acquire_lease")
    assert [s.status.status_code for s in acquires] == [
        StatusCode.UNSET,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert acquires[1].attributes is not None
    assert acquires[1].attributes["error.type"] == "LeaseHeldError"
    assert acquires[2].attributes is not None
    assert acquires[2].attributes["agent_persist.lease.take_over"] is True
    assert len(otel.spans("agent_persist.renew_lease")) == 1
    assert len(otel.spans("agent_persist.release_lease")) == 1
    (takeovers,) = otel.points("agent_persist.lease.takeovers")
    assert takeovers.value == 1
    assert dict(takeovers.attributes) == {"agent_persist.store": store.backend}


def registry() -> Registry:
    migrations = Registry()
    migrations.register_kind("tests.kind", version=3)

    @migrations.register("tests.kind", 2, 3)
    def add_turn(payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("fail"):
            raise RuntimeError(f"cannot migrate {payload}")
        return {**payload, "turn": 0}

    return migrations


async def test_a_resume_span_is_the_parent_of_its_reads_and_migration(
    otel: Recorded, store: BaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    stored = await store.put(envelope(), appends={"transcript": ["hi"]})
    logger = logging.getLogger("tests.resume")
    with (
        caplog.at_level(logging.INFO, logger="tests.resume"),
        telemetry.resuming(logger, kind="tests.kind", thread_id="t-1") as resume,
    ):
        head = registry().upgrade(await store.get("t-1"))
        await store.read_log("t-1", "transcript", at=head)
        resume.found(head)

    parent = otel.span("agent_persist.resume")
    assert parent.attributes is not None
    assert parent.attributes["agent_persist.resumed"] is True
    assert parent.attributes["agent_persist.checkpoint.id"] == stored.checkpoint_id
    assert parent.attributes["agent_persist.checkpoint.schema_version"] == 3
    assert parent.context is not None
    for name in ("agent_persist.get", "agent_persist.read_log", "agent_persist.migrate"):
        child = otel.span(name)
        assert child.parent is not None, name
        assert child.parent.span_id == parent.context.span_id, name
    migrate = otel.span("agent_persist.migrate").attributes
    assert migrate is not None
    assert migrate["agent_persist.migration.from_version"] == 2
    assert migrate["agent_persist.migration.to_version"] == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"thread 't-1': resumed from checkpoint {stored.checkpoint_id!r} "
        "(step 0, kind 'tests.kind', schema version 3)"
    ]


def test_a_failed_migration_is_an_error_span_without_the_payload(otel: Recorded) -> None:
    with pytest.raises(MigrationFailedError):
        registry().upgrade(envelope(payload={"fail": "secret-value"}))
    span = otel.span("agent_persist.migrate")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "MigrationFailedError"
    assert "secret-value" not in repr(span.to_json())


async def test_disabled_telemetry_records_nothing(otel: Recorded) -> None:
    telemetry.configure(enabled=False)
    store = open_store("memory://")
    await store.put(envelope())
    await store.get("t-1")
    assert otel.spans() == []
    assert otel.points("agent_persist.checkpoint.write.duration") == []


SETUP_IMPORTS = """
import asyncio, sys
from agent_persist import open_store

store = open_store("memory://")
before = "opentelemetry.trace" in sys.modules
asyncio.run(store.setup())
print(before, "opentelemetry.trace" in sys.modules)
"""


def test_setup_imports_opentelemetry_so_the_first_call_does_not() -> None:
    """Importing it holds the event loop for tens of ms: at setup, not in a first put."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SETUP_IMPORTS],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False True"


IDLE_THEN_SET_UP = """
import asyncio, time
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from agent_persist import Envelope, Producer, _otel, open_store

store = open_store("memory://")
envelope = Envelope.create(kind="k", schema_version=1, thread_id="t", payload={},
                           producer=Producer(package="x"))
assert _otel.checkpoint_write(store, envelope) is _otel.NOOP, "no SDK: the no-op"
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
time.sleep(_otel._IDLE_RECHECK * 2)  # past the window an idle verdict is kept
asyncio.run(store.put(envelope))
print([span.name for span in exporter.get_finished_spans()])
"""


def test_the_global_providers_are_used_once_an_sdk_is_set_up() -> None:
    """Idle until the application sets a global provider, then traced (in its own process)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", IDLE_THEN_SET_UP],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['agent_persist.put']"


async def test_an_opentelemetry_that_cannot_be_set_up_never_stops_a_write(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise AttributeError("module 'opentelemetry.metrics' has no attribute 'get_meter'")

    monkeypatch.setattr(_otel, "_Otel", broken)
    telemetry.configure()
    try:
        with caplog.at_level(logging.WARNING, logger="agent_persist"):
            async with open_store("memory://") as store:
                await store.put(envelope())
                assert (await store.get("t-1")).thread_id == "t-1"
    finally:
        monkeypatch.undo()
        telemetry.configure()
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("OpenTelemetry could not be set up, so it is not used: ")


class _BrokenProcessor(SimpleSpanProcessor):
    """An exporter pipeline with a bug: it raises when a span starts or ends."""

    def __init__(self, *, at: str) -> None:
        super().__init__(InMemorySpanExporter())
        self._at = at

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self._at == "start":
            raise RuntimeError("exporter bug at start")

    def on_end(self, span: ReadableSpan) -> None:
        if self._at == "end":
            raise RuntimeError("exporter bug at end")


@pytest.mark.parametrize("at", ["start", "end"])
async def test_a_raising_span_processor_never_fails_a_call(
    at: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(_BrokenProcessor(at=at))
    monkeypatch.setattr(_otel, "_failure_logged", False)
    telemetry.configure(tracer_provider=tracer_provider)
    try:
        with caplog.at_level(logging.WARNING, logger="agent_persist"):
            async with open_store("memory://") as store:
                head = await store.put(envelope(), appends={"log": [1, 2]})
                assert (await store.get("t-1")).checkpoint_id == head.checkpoint_id
                assert await store.read_log("t-1", "log") == [1, 2]
                with pytest.raises(ConflictError):  # our own errors still come through
                    await store.put(envelope())
    finally:
        telemetry.configure()
        tracer_provider.shutdown()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # logged once, not per call
    assert f"exporter bug at {at}" in warnings[0]
