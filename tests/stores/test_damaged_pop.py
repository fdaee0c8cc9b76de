"""A pop that meets a damaged newest item raises and removes nothing, on every store.

The Redis store used to remove the item and then fail to decode it, so a session's rollback
(``pop_item``) silently lost the damaged item while the SQL stores kept it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_persist import open_store
from agent_persist.errors import CorruptCheckpointError
from damage_support import TRUNCATED, damage_log_item


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db", {}
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url"), {
            "schema": request.getfixturevalue("postgres_schema")
        }
    return request.getfixturevalue("redis_url"), {"prefix": request.getfixturevalue("redis_prefix")}


async def test_pop_of_a_damaged_item_keeps_it(location: tuple[str, dict[str, str]]) -> None:
    url, options = location
    async with open_store(url, **options) as store:
        await store.append("t", "items", ["a", "b", "c"])
    await damage_log_item(url, "t", "items", 2, TRUNCATED, **options)
    async with open_store(url, **options) as store:
        with pytest.raises(CorruptCheckpointError, match="items"):
            await store.pop("t", "items")
        assert await store.log_length("t", "items") == 3
        assert await store.read_log("t", "items", stop=2) == ["a", "b"]
        with pytest.raises(CorruptCheckpointError):
            await store.pop("t", "items")
        assert await store.log_length("t", "items") == 3
