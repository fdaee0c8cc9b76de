"""The audit tables of an encrypted SQL store: every row, names in clear, content sealed.

Read around the store with plain SQL (:mod:`encryption_raw`), as a BI tool would: the
message and tool-call rows are all there with their roles, models, names, tokens, cost and
durations, while ``content``, ``input`` and ``output`` hold only sealed text, which
``SQLStore.read_audit_rows`` opens under the thread's data key.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from encryption_raw import BACKENDS, SQLRaw, open_raw

from agent_persist.crypto import Encryption, KeyRing
from agent_persist.errors import DecryptionError
from agent_persist.stores.sql import AuditBackfill, SQLStore
from agent_persist.testing.conformance import envelope

pytestmark = pytest.mark.needs_extras  # the crypto extra

MARKER = "MARKER-audit-91c2-never-in-clear"
KEY = os.urandom(32)
DAY = 1_795_953_600.0

SQL = [b for b in BACKENDS if getattr(b, "values", (b,))[0] in ("sqlite", "postgres")]


def events() -> list[dict[str, Any]]:
    return [
        {"event": "session", "user": "ann", "at": DAY},
        {"event": "message", "role": "user", "content": f"hi {MARKER}", "at": DAY},
        {"event": "llm", "model": "m", "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.5,
         "at": DAY + 1},
        {"event": "tool_call", "call_id": "c1", "name": "lookup", "input": {"q": MARKER},
         "output": f"found {MARKER}", "duration_ms": 12.5, "at": DAY + 2},
        {"event": "message", "role": "assistant", "content": [MARKER], "model": "m",
         "input_tokens": 20, "output_tokens": 7, "cost_usd": 1.25, "at": DAY + 3},
    ]  # fmt: skip


@pytest.fixture(params=SQL)
async def raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLRaw]:
    async for value in open_raw(request.param, request, tmp_path):
        assert isinstance(value, SQLRaw)
        yield value


async def sealed(raw: SQLRaw) -> SQLStore:
    store = await raw.open(encryption=Encryption(KeyRing({"k": KEY}, primary="k")))
    assert isinstance(store, SQLStore)
    return store


async def clear_columns(raw: SQLRaw, thread_id: str) -> tuple[list[Any], list[Any]]:
    messages = await raw.q(
        "SELECT seq, role, model, input_tokens, output_tokens, cost_usd, created_at, content "
        f"FROM {raw.table('audit_messages')} WHERE thread_id = :t ORDER BY seq",
        t=thread_id,
    )
    calls = await raw.q(
        "SELECT seq, call_id, name, duration_ms, created_at, input, output "
        f"FROM {raw.table('audit_tool_calls')} WHERE thread_id = :t ORDER BY seq",
        t=thread_id,
    )
    return messages, calls


def check_rows(messages: list[Any], calls: list[Any]) -> None:
    """Every row with its clear columns; every content column sealed text."""
    assert [row[:7] for row in messages] == [
        (2, "user", None, 0, 0, 0.0, DAY),
        (3, "assistant", "m", 10, 5, 0.5, DAY + 1),
        (5, "assistant", "m", 20, 7, 1.25, DAY + 3),
    ]
    assert [row[:5] for row in calls] == [(4, "c1", "lookup", 12.5, DAY + 2)]
    assert [row[7] is None for row in messages] == [False, True, False]
    for value in [messages[0][7], messages[2][7], *calls[0][5:]]:
        assert value.startswith("aes256gcm:")
        assert MARKER not in value


async def test_every_row_is_projected_with_its_content_sealed(raw: SQLRaw) -> None:
    store = await sealed(raw)
    await store.append_audit("s", events())
    check_rows(*await clear_columns(raw, "s"))
    assert MARKER.encode() not in await raw.dump()
    sessions = await raw.q(
        f"SELECT user_id, first_at, last_at FROM {raw.table('audit_sessions')} "
        "WHERE thread_id = 's'"
    )
    assert sessions == [("ann", DAY, DAY + 3)]
    # the store opens the sealed columns: the same text a clear store's columns hold
    messages = await store.read_audit_rows("s", "messages")
    assert [row["content"] for row in messages] == [f"hi {MARKER}", None, f'["{MARKER}"]']
    assert [(row["seq"], row["role"], row["cost_usd"]) for row in messages] == [
        (2, "user", 0.0),
        (3, "assistant", 0.5),
        (5, "assistant", 1.25),
    ]
    [call] = await store.read_audit_rows("s", "tool_calls")
    assert (call["name"], call["input"], call["output"]) == (
        "lookup",
        f'{{"q": "{MARKER}"}}',
        f"found {MARKER}",
    )
    # the report through the API reads the same events from the sealed log
    assert await store.read_log("s", "audit") == events()
    # a fork re-projects under the new thread's key
    await store.put(envelope("s"))
    await store.fork("s", "copy")
    check_rows(*await clear_columns(raw, "copy"))
    assert await store.read_audit_rows("copy", "messages") == [
        {**row, "thread_id": "copy"} for row in messages
    ]
    with pytest.raises(ValueError, match="table"):
        await store.read_audit_rows("s", "sessions")  # pyright: ignore[reportArgumentType]


async def test_a_sealed_column_copied_to_another_row_or_thread_does_not_open(
    raw: SQLRaw,
) -> None:
    store = await sealed(raw)
    await store.append_audit("a", events())
    await store.append_audit("b", events())
    table = raw.table("audit_messages")
    [(moved,)] = await raw.q(f"SELECT content FROM {table} WHERE thread_id = 'a' AND seq = 2")
    await raw.q(f"UPDATE {table} SET content = :v WHERE thread_id = 'a' AND seq = 5", v=moved)
    with pytest.raises(DecryptionError, match="'a'"):
        await store.read_audit_rows("a", "messages")
    await raw.q(f"UPDATE {table} SET content = :v WHERE thread_id = 'b' AND seq = 2", v=moved)
    with pytest.raises(DecryptionError, match="'b'"):
        await store.read_audit_rows("b", "messages")


async def test_backfill_of_sealed_items_writes_the_same_rows(raw: SQLRaw) -> None:
    store = await sealed(raw)
    await store.append_audit("s", events())
    await store.append("s", "audit", ["not an event"])
    before = await clear_columns(raw, "s")
    for name in ("audit_messages", "audit_tool_calls", "audit_sessions"):
        await raw.q(f"DELETE FROM {raw.table(name)}")
    # without the key ring the sealed items cannot be read: skipped, nothing written
    blind = await raw.open()
    assert isinstance(blind, SQLStore)
    assert await blind.backfill_audit() == AuditBackfill(threads=1, sessions=1, skipped=6)
    assert await clear_columns(raw, "s") == ([], [])
    other = await sealed(raw)
    assert await other.backfill_audit(dry_run=True) == AuditBackfill(
        threads=1, sessions=0, messages=3, tool_calls=1, skipped=1
    )
    assert await other.backfill_audit() == AuditBackfill(
        threads=1, sessions=0, messages=3, tool_calls=1, skipped=1
    )
    after = await clear_columns(raw, "s")
    check_rows(*after)
    assert [row[:7] for row in after[0]] == [row[:7] for row in before[0]]
    assert await other.read_audit_rows("s", "tool_calls") == await store.read_audit_rows(
        "s", "tool_calls"
    )
    assert MARKER.encode() not in await raw.dump()


async def test_seal_seals_the_audit_columns_written_in_clear(raw: SQLRaw) -> None:
    """Turning encryption on: rows projected in clear are sealed too, by ``seal_thread``."""
    before = await raw.open()
    assert isinstance(before, SQLStore)
    await before.append_audit("s", events())
    assert MARKER.encode() in await raw.dump()  # the check below can fail
    clear_rows = await before.read_audit_rows("s", "messages")
    store = await sealed(raw)
    assert await store.seal_thread("s", dry_run=True) == 5 + 4  # 5 items, 4 columns
    assert await store.seal_thread("s") == 9
    check_rows(*await clear_columns(raw, "s"))
    assert MARKER.encode() not in await raw.dump()
    assert await store.read_audit_rows("s", "messages") == clear_rows
    [call] = await store.read_audit_rows("s", "tool_calls")
    assert call["output"] == f"found {MARKER}"
    assert await store.seal_thread("s") == 0  # resumable: nothing left in clear
