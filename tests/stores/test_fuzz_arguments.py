"""Fuzzing every public store method's arguments with random types and values.

Allowed outcomes: a result, an ``AgentPersistError``, or a ``TypeError`` / ``ValueError``
(misuse of an argument). Anything else fails, and so does a refused call that changed the
store: its raw state (memory objects, SQLite rows) or, on the servers, everything the API
shows, is compared before and after. Calls mix plausible values (existing threads, logs, the
real head and lease) with anything at all, so both the checks and the back ends are reached.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_reads import (  # the harness fixtures are shared with the read fuzzers
    Harness,
    MemoryHarness,
    SQLiteHarness,
    examples,
    json_values,
    local,  # noqa: F401 - a fixture
    server,  # noqa: F401 - a fixture
)

from agent_persist.envelope import Envelope
from agent_persist.errors import AgentPersistError
from agent_persist.stores.base import BaseStore, Lease
from agent_persist.testing.bad_input import deep, snapshot
from agent_persist.testing.conformance import envelope

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 2**31, 2**63, 2**64, -(2**63) - 1]),
    st.floats(),
    st.text(max_size=6),
    st.sampled_from(["", "\x00", "a\x00", "\ud800", "x" * 5000, "t", "log"]),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sets(st.integers(), max_size=2),
    st.sampled_from([timedelta(0), timedelta(seconds=-1), timedelta.max, timedelta(seconds=5)]),
    st.sampled_from([datetime(2020, 1, 1), datetime.now(timezone.utc)]),
    st.sampled_from([math.nan, math.inf, object(), (1, 2), deep(300)]),
)
hashable = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=4),
    st.sampled_from(["\x00", "\ud800", "x" * 5000, (1, 2), b"log", 1.5]),
)
thread_ids = st.one_of(st.sampled_from(["t", "u", "held"]), anything)
logs = st.one_of(st.sampled_from(["log", "new-log"]), anything)
counts = st.one_of(st.none(), st.integers(-2, 5), anything)
items = st.one_of(
    json_values,
    st.sampled_from([math.nan, "\ud800", "\x00", {1, 2}, b"x", deep(201), deep(200), 10**5000]),
)
item_lists = st.one_of(st.lists(items, max_size=3), anything)
durations = st.one_of(
    st.timedeltas(min_value=timedelta(seconds=-5), max_value=timedelta(days=40_000)), anything
)
filters = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["user", "n", "\x00"]), st.one_of(json_values, anything)),
    anything,
)


class World:
    """What a call may refer to: the seeded thread's head and a lease on it."""

    def __init__(self, head: Envelope, lease: Lease) -> None:
        self.head = head
        self.lease = lease


Call = Callable[[BaseStore, World], Awaitable[Any]]


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, Call]:
    """One public method with drawn arguments."""
    name = draw(
        st.sampled_from(
            [
                "put",
                "get",
                "list_checkpoints",
                "list_threads",
                "delete_thread",
                "fork",
                "append",
                "read_log",
                "read_log_lines",
                "read_logs",
                "tail",
                "tail_lines",
                "log_length",
                "pop",
                "clear_log",
                "acquire_lease",
                "renew_lease",
                "release_lease",
                "prune",
                "create",
            ]
        )
    )
    t, log = draw(thread_ids), draw(logs)
    if name == "put":
        payload, metadata = draw(st.one_of(json_values, items)), draw(filters)
        appends = draw(
            st.one_of(
                st.none(),
                st.dictionaries(st.one_of(st.just("log"), hashable), item_lists),
                anything,
            )
        )
        fresh = draw(st.booleans())
        lease = draw(st.one_of(st.none(), st.just("real"), anything))
        clear_logs = draw(st.one_of(st.just(()), st.lists(logs, max_size=3), anything))

        async def put(store: BaseStore, world: World) -> Any:
            parent = None if fresh else world.head
            changes = {} if metadata is None else {"metadata": metadata}
            built = envelope("t", parent=parent, payload=payload, **changes)
            return await store.put(
                built,
                appends=appends,
                lease=world.lease if lease == "real" else lease,
                clear_logs=clear_logs,
            )

        return name, put
    if name == "create":
        fields = draw(
            st.dictionaries(
                st.sampled_from(["kind", "schema_version", "step", "thread_id", "metadata"]),
                anything,
            )
        )

        async def create(store: BaseStore, world: World) -> Any:
            return await store.put(world.head.next(payload={}, **fields))

        return name, create
    if name in ("read_log", "read_log_lines"):
        start, stop = draw(counts), draw(counts)
        at = draw(st.one_of(st.none(), st.just("head"), anything))

        async def read(store: BaseStore, world: World) -> Any:
            method = getattr(store, name)
            return await method(
                t, log, start=0 if start is None else start, stop=stop,
                at=world.head if at == "head" else at,
            )  # fmt: skip

        return name, read
    if name == "read_logs":
        wanted = draw(
            st.one_of(
                st.lists(logs, max_size=3),
                st.dictionaries(
                    st.one_of(st.just("log"), hashable),
                    st.one_of(st.tuples(counts, counts), anything),
                    max_size=3,
                ),
                anything,
            )
        )
        at = draw(st.one_of(st.just("head"), anything))

        async def read_logs(store: BaseStore, world: World) -> Any:
            return await store.read_logs(t, wanted, at=world.head if at == "head" else at)

        return name, read_logs
    arguments: dict[str, tuple[Any, ...]] = {
        "get": (t, draw(st.one_of(st.none(), anything))),
        "list_checkpoints": (t,),
        "delete_thread": (t,),
        "log_length": (t, log),
        "pop": (t, log),
        "clear_log": (t, log),
        "tail": (t, log, draw(counts)),
        "tail_lines": (t, log, draw(counts)),
        "append": (t, log, draw(item_lists)),
        "fork": (t, draw(thread_ids)),
        "acquire_lease": (t, draw(st.one_of(st.just("owner"), anything))),
        "renew_lease": (),
        "release_lease": (),
        "prune": (t,),
        "list_threads": (),
    }
    options: dict[str, dict[str, Any]] = {
        "list_checkpoints": {"limit": draw(counts), "metadata": draw(filters)},
        "list_threads": {"limit": draw(counts), "metadata": draw(filters)},
        "fork": {"metadata": draw(filters)},
        "acquire_lease": {"ttl": draw(durations)},
        "renew_lease": {"ttl": draw(durations)},
        "prune": {"keep_last": draw(counts), "older_than": draw(st.one_of(st.none(), durations))},
    }
    lease_arg = draw(st.one_of(st.just("real"), anything))

    async def call(store: BaseStore, world: World) -> Any:
        method = getattr(store, name)
        positional = arguments[name]
        if name in ("renew_lease", "release_lease"):
            positional = (world.lease if lease_arg == "real" else lease_arg,)
        return await method(*positional, **options.get(name, {}))

    return name, call


def _raw_state(harness: Harness) -> Callable[[], Awaitable[Any]]:
    if isinstance(harness, MemoryHarness):
        store: Any = harness.store

        async def memory_state() -> Any:
            return repr(store._namespaces)

        return memory_state
    if isinstance(harness, SQLiteHarness):
        path = harness.path

        async def sqlite_state() -> Any:
            connection = sqlite3.connect(path)
            try:
                tables = [
                    row[0]
                    for row in connection.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                    )
                ]
                return sorted(
                    repr(row)
                    for table in tables
                    if table.startswith("agent_persist_")
                    for row in connection.execute(f'SELECT * FROM "{table}"')
                )
            finally:
                connection.close()

        return sqlite_state
    return lambda: snapshot(harness.store)


async def _call_once(harness: Harness, name: str, call: Call) -> str | None:
    store = harness.store
    world = harness.__dict__.get("world")
    if world is None:
        head = await store.put(envelope("t", metadata={"user": "ada"}), appends={"log": ["a"]})
        lease = await store.acquire_lease("held", "owner", ttl=timedelta(minutes=30))
        world = harness.__dict__["world"] = World(head, lease)
    else:  # the previous call may have moved the head or deleted the thread
        try:
            world.head = await store.get("t")
        except AgentPersistError:
            world.head = await store.put(envelope("t"))
    state = _raw_state(harness)
    before = await state()
    try:
        await call(store, world)
    except (AgentPersistError, TypeError, ValueError) as exc:
        if await state() != before:
            return f"{name} raised {type(exc).__name__}: {exc!s:.200} but changed the store"
    except Exception as exc:
        return f"{name} raised {type(exc).__name__}: {exc!s:.300}"
    return None


@examples(600, 10000)
@given(drawn=calls())
def test_any_arguments_give_a_contract_outcome(local: Harness, drawn: tuple[str, Call]) -> None:  # noqa: F811
    assert local.run(_call_once(local, *drawn)) is None


@examples(150, 3000)
@given(drawn=calls())
def test_any_arguments_give_a_contract_outcome_on_servers(
    server: Harness,  # noqa: F811
    drawn: tuple[str, Call],
) -> None:
    assert server.run(_call_once(server, *drawn)) is None
