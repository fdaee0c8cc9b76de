"""Our Session equals the SDK's ``SQLiteSession`` on random operation sequences, on every store.

Hypothesis draws a sequence of ``add_items`` / ``get_items(limit)`` / ``pop_item`` /
``clear_session`` calls and a ``session_settings.limit``; both sessions run it and every
result is compared, then the whole history.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents import SessionSettings, SQLiteSession
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oa_support import Backend

from openai_agents_persist import StoreSession

text = st.text(max_size=12)
items = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": text}),
    st.fixed_dictionaries(
        {
            "type": st.just("function_call_output"),
            "call_id": text,
            "output": text,
        }
    ),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(items, max_size=3)),
        st.tuples(st.just("get"), st.one_of(st.none(), st.integers(0, 6))),
        st.tuples(st.just("pop"), st.none()),
        st.tuples(st.just("clear"), st.none()),
    ),
    max_size=25,
)


async def _call(session: Any, operation: str, argument: Any) -> Any:
    if operation == "add":
        return await session.add_items(list(argument))
    if operation == "get":
        return await session.get_items(argument)
    if operation == "pop":
        return await session.pop_item()
    return await session.clear_session()


async def _compare(backend: Backend, ops: list[tuple[str, Any]], limit: int | None) -> None:
    settings_ = SessionSettings(limit=limit)
    reference = SQLiteSession("s", session_settings=settings_)
    async with backend.open() as store:
        ours = StoreSession("s' OR 1=1; -- %_*", store=store, session_settings=settings_)
        await ours.clear_session()  # examples share the backend
        try:
            for operation, argument in ops:
                expected = await _call(reference, operation, argument)
                got = await _call(ours, operation, argument)
                assert got == expected, (operation, argument)
            assert await ours.get_items() == await reference.get_items()
        finally:
            reference.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations, limit=st.one_of(st.none(), st.integers(1, 4)))
def test_same_results_as_sqlite_session(
    backend: Backend, ops: list[tuple[str, Any]], limit: int | None
) -> None:
    asyncio.run(_compare(backend, ops, limit))
