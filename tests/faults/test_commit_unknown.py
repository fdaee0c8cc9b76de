"""A commit whose outcome is unknown: the write happened, its acknowledgement was lost.

The proxy lets PostgreSQL's ``COMMIT`` (or the Redis put script) run and swallows the
reply, then drops the connection. ``put`` raises ``StoreUnavailableError``; the checkpoint
is stored all the same, and putting the same envelope again returns it (put is idempotent
by checkpoint id) instead of a ``ConflictError``, without appending its items twice. A
different envelope with the same parent still conflicts.
"""

from __future__ import annotations

import pytest
from fault_matrix import Proxied

from agent_persist.errors import ConflictError, StoreUnavailableError
from agent_persist.testing.conformance import envelope


async def test_a_put_retried_after_a_lost_commit_reply_returns_the_stored_checkpoint(
    proxied: Proxied,
) -> None:
    store, proxy, commit = proxied
    first = await store.put(envelope("t"), appends={"log": ["a"]})
    second = envelope("t", parent=first, payload={"turn": 2})

    proxy.drop_reply(match=commit)
    with pytest.raises(StoreUnavailableError):
        await store.put(second, appends={"log": ["b"]})
    assert proxy.fired == 1

    assert (await store.get("t")).checkpoint_id == second.checkpoint_id  # it was committed
    again = await store.put(second, appends={"log": ["b"]})
    assert again.checkpoint_id == second.checkpoint_id
    assert again.payload == {"turn": 2}
    assert await store.read_log("t", "log") == ["a", "b"]  # not appended twice
    assert [e.checkpoint_id for e in await store.list_checkpoints("t")] == [
        second.checkpoint_id,
        first.checkpoint_id,
    ]

    rival = envelope("t", parent=first, payload={"turn": "rival"})
    with pytest.raises(ConflictError):
        await store.put(rival)


async def test_a_first_checkpoint_whose_commit_reply_was_lost_is_found_on_retry(
    proxied: Proxied,
) -> None:
    store, proxy, commit = proxied
    first = envelope("fresh", payload={"n": 1})
    proxy.drop_reply(match=commit)
    with pytest.raises(StoreUnavailableError):
        await store.put(first, appends={"log": ["x"]})
    assert (await store.put(first, appends={"log": ["x"]})).checkpoint_id == first.checkpoint_id
    assert await store.read_log("fresh", "log") == ["x"]
    with pytest.raises(ConflictError):
        await store.put(envelope("fresh", payload={"n": "another first"}))
