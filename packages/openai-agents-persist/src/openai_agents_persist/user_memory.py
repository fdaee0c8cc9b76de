"""Cross-session memory: facts about a user, scored by importance, fed to the next session.

    memory = UserMemory(open_store("sqlite:///agents.db", namespace="memory"))
    await memory.remember("ann", "prefers metric units", importance=0.9)
    agent = Agent(name="helper", instructions=memory.instructions("Be helpful.", user="ann"))

Facts live in the ``facts`` log of the user's thread: remembering appends, so a fact said
again with a new importance replaces the old score when read. The ``top`` N facts by
importance (the newest first among equals) are appended to the agent's instructions at
the start of every run, so a new session starts knowing them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from agents import Agent, RunContextWrapper

from agent_persist import BaseStore

__all__ = ["Fact", "UserMemory"]

FACTS_LOG = "facts"


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing known about a user; ``importance`` between 0 and 1."""

    text: str
    importance: float
    at: float


class UserMemory:
    """Facts per user in a store (best in a namespace of its own)."""

    def __init__(self, store: BaseStore) -> None:
        self.store = store

    async def remember(self, user: str, text: str, *, importance: float = 0.5) -> None:
        """Store a fact; saying it again updates its importance."""
        if not 0.0 <= importance <= 1.0:
            raise ValueError(f"importance must be between 0 and 1, got {importance}")
        entry = {"text": text, "importance": importance, "at": time.time()}
        await self.store.append(user, FACTS_LOG, [entry])

    async def facts(self, user: str) -> list[Fact]:
        """Every fact of the user, the latest score of each, most important first."""
        latest: dict[str, Fact] = {}
        for raw in await self.store.read_log(user, FACTS_LOG):
            entry = cast("dict[str, Any]", raw)
            fact = Fact(str(entry["text"]), float(entry["importance"]), float(entry["at"]))
            latest[fact.text] = fact
        return sorted(latest.values(), key=lambda f: (-f.importance, -f.at))

    async def top(self, user: str, count: int = 5) -> list[Fact]:
        """The ``count`` most important facts."""
        return (await self.facts(user))[:count]

    async def forget(self, user: str) -> None:
        """Drop every fact about the user."""
        await self.store.clear_log(user, FACTS_LOG)

    def instructions(
        self, base: str, *, user: str, count: int = 5
    ) -> Callable[[RunContextWrapper[Any], Agent[Any]], Awaitable[str]]:
        """Dynamic ``Agent(instructions=...)``: ``base`` plus the user's top facts."""

        async def build(context: RunContextWrapper[Any], agent: Agent[Any]) -> str:
            facts = await self.top(user, count)
            if not facts:
                return base
            lines = "\n".join(f"- {fact.text}" for fact in facts)
            return f"{base}\n\nWhat you know about this user:\n{lines}"

        return build
