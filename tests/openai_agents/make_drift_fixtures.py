"""Write the frozen drift fixtures once, from a real SDK run: ``uv run python <this file>``.

The "before" of each fixture is what openai-agents wrote (a ``RunState`` of an interrupted
run, the session items as this adapter stores them, the bare items of the SDK's own
``SQLiteSession``); the "after" is what the migrations made of it when the fixture was
frozen, checked by hand. The files are never rewritten (``--force`` to regenerate on
purpose): ``test_drift_fixtures.py`` compares today's migrations against them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from agents import Runner, SQLiteSession, set_tracing_disabled
from drift_graphs import AGENT_RENAME, TOOL_RENAME, graph, migrate_items, migrate_run_state

from agent_persist import MemoryStore
from openai_agents_persist import ITEMS_LOG, StoreSession, agent_config, save_run_state
from openai_agents_persist.items import SDK_VERSION

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai_agents"
MADE_BY = f"openai-agents {SDK_VERSION}, agents.testing.ScriptedModel, drift_graphs.graph()"


async def _saved_run() -> dict[str, Any]:
    triage, _ = graph()
    async with MemoryStore() as store:
        session = StoreSession("fixture", store=store)
        result = await Runner.run(triage, "delete a.txt", session=session)
        saved = await save_run_state(session, result, triage)
        return {
            "fingerprint": saved.fingerprint,
            "config": agent_config(triage),
            "items": await store.read_log("fixture", ITEMS_LOG),
            "before": saved.payload["run_state"],
        }


async def _bare_items() -> list[Any]:
    triage, _ = graph()
    session = SQLiteSession("fixture")  # the SDK's own session: items stored bare (format 0)
    await Runner.run(triage, "delete a.txt", session=session)
    return list(await session.get_items())


def _write(name: str, fixture: dict[str, Any], *, force: bool) -> None:
    path = FIXTURES / f"{name}.json"
    if path.exists() and not force:
        print(f"kept {path} (frozen)")
        return
    path.write_text(json.dumps({"made_by": MADE_BY, **fixture}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


async def main(force: bool) -> None:
    set_tracing_disabled(True)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    run = await _saved_run()
    for which, rename in (("agent", AGENT_RENAME), ("tool", TOOL_RENAME)):
        after = migrate_run_state(run, which)
        _write(f"run_state_{which}_renamed", {**run, "rename": rename, "after": after}, force=force)
        items = {
            "rename": rename,
            "before": run["items"],
            "after": migrate_items(run["items"], which),
        }
        _write(f"session_items_{which}_renamed", items, force=force)
    bare = await _bare_items()
    _write("items_format_0", {"before": bare, "after": migrate_items(bare, None)}, force=force)


if __name__ == "__main__":
    asyncio.run(main("--force" in sys.argv))
