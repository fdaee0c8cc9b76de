"""The bad-input table on every store: same error type, a message naming the argument, no write.

The cases are the conformance suite's (``agent_persist.testing.bad_input``), grouped by
category; here each group runs on memory, SQLite, PostgreSQL and Redis, and "no write" is
proven on the raw stored data (Python objects, SQL rows, Redis keys), not only through the
API. Envelope constructions are refused without any store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from backends import BACKENDS, Backend, open_backend

from agent_persist._json import INT64_MAX, INT64_MIN
from agent_persist._limits import MAX_DURATION, MAX_INT32, MAX_NAMESPACE_BYTES, MAX_TEXT_LENGTH
from agent_persist.envelope import Envelope, Producer
from agent_persist.testing.bad_input import (
    BAD_ENVELOPES,
    BAD_INPUTS,
    BAD_STORE_OPTIONS,
    refusal,
    seed,
    snapshot,
)

CATEGORIES = sorted({case.category for case in BAD_INPUTS})


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async for opened in open_backend(request.param, request, tmp_path):
        yield opened


@pytest.mark.parametrize("category", CATEGORIES)
async def test_bad_calls_are_refused_alike_and_write_nothing(
    backend: Backend, category: str
) -> None:
    store = backend.store
    seeded = await seed(store)
    raw_before, api_before = await backend.raw_state(), await snapshot(store)
    cases = [case for case in BAD_INPUTS if case.category == category]
    assert cases
    failures: list[str] = []
    for case in cases:
        failure = await refusal(case, store, seeded)
        if failure is not None:
            failures.append(failure)
    assert failures == []
    # Every call above was refused; had any written, the raw data would differ now (read
    # once per category: reading every row after every case tripled the table's time).
    assert await backend.raw_state() == raw_before, f"a refused {category} call wrote"
    assert await snapshot(store) == api_before


async def test_bad_store_options_are_refused_alike(backend: Backend) -> None:
    for label, options, error, says in BAD_STORE_OPTIONS:
        with pytest.raises(error, match=says) as raised:
            await backend.make(**options)
        assert type(raised.value) is error, label


@pytest.mark.parametrize("case", BAD_ENVELOPES, ids=lambda case: case.label)
def test_bad_envelopes_are_refused_on_construction(case: object) -> None:
    from agent_persist.testing.bad_input import BadEnvelope

    assert isinstance(case, BadEnvelope)
    with pytest.raises(case.error) as raised:
        case.build()
    assert type(raised.value) is case.error
    assert case.says in str(raised.value)


async def test_the_longest_allowed_text_works_everywhere(backend: Backend) -> None:
    """The limits are the most every store holds: 4-byte characters at the maximum length."""
    store = await backend.make(namespace="🤖" * (MAX_NAMESPACE_BYTES // 4))
    thread, log, owner, kind = ("🤖" * (MAX_TEXT_LENGTH - 1) + suffix for suffix in "tlok")
    first = Envelope.create(
        kind=kind,
        schema_version=MAX_INT32,
        thread_id=thread,
        payload={"n": 0},
        producer=Producer(package="p"),
        step=MAX_INT32,
        metadata={"big": INT64_MAX, "small": INT64_MIN},
    )
    saved = await store.put(first, appends={log: ["x"]})
    assert await store.get(thread) == saved
    assert await store.read_log(thread, log, at=saved) == ["x"]
    assert [t.thread_id for t in await store.list_threads(metadata={"small": INT64_MIN})] == [
        thread
    ]
    lease = await store.acquire_lease(thread, owner, ttl=MAX_DURATION)
    await store.release_lease(lease)
    assert await store.prune(thread, keep_last=MAX_INT32, older_than=MAX_DURATION) == 0
    assert await store.list_checkpoints(thread, limit=MAX_INT32) == [saved]
    assert await store.tail(thread, log, MAX_INT32) == ["x"]
    assert await store.read_log(thread, log, start=MAX_INT32) == []
