"""A process that imports everything once, then forks one child per kill: fast SIGKILL tests.

    python kill_zygote.py        # then one JSON request per line on stdin

A fresh interpreter per kill costs 1-2 s of imports; a fork of this one costs milliseconds.
It starts no event loop and no thread (a fork of a threaded process may deadlock): it says
so on its first line, ``{"ready": true, "threads": 1}``, and refuses to fork otherwise.
Each request is::

    {"scenario": "selector", "url": ..., "options": {...}, "thread_id": ...,
     "counts": "/tmp/.../child.counts", "kill": ["model", 3], "journal": false}

The child counts completed calls into ``counts`` and SIGKILLs itself inside the k-th model
call or tool run it starts (journal_scenarios.py); it runs the scenario with
``asyncio.run`` and default lease options, so a worker in another process takes its lease
over at once. The answer is ``{"signal": 9}`` for a killed child, or ``{"exit": code}`` if
it finished (0) or failed (1, its traceback on stderr).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import importlib

import journal_scenarios as js

from agent_persist import open_store

_PRELOAD = [
    "agent_persist.stores.redis",
    "agent_persist.stores.sql",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "asyncpg",
    "redis.asyncio",
]
"""What the stores import lazily: imported once here rather than in every child (0.3 s)."""


async def _run(request: dict[str, Any]) -> None:
    scenario = js.SCENARIOS[request["scenario"]]
    async with open_store(request["url"], **request["options"]) as store:
        durable = scenario.durable(
            store, request["thread_id"], **js.journal_options(bool(request["journal"]))
        )
        await js.finish(scenario, durable)


def _warm_up() -> None:
    """Import lazy modules, build every scenario once and describe it, before any fork."""
    for module in _PRELOAD:
        importlib.import_module(module)
    for scenario in js.SCENARIOS.values():
        scenario.factory().dump_component()


def _child(request: dict[str, Any]) -> None:
    """Run the request in this forked child; never returns."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)  # stdout is the zygote's answer channel
        kind, k = request["kill"]
        js.configure(Path(request["counts"]), (kind, int(k)))
        asyncio.run(_run(request))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _answer(answer: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def main() -> None:
    _warm_up()
    gc.freeze()  # the children's collections then leave the shared pages alone
    threads = threading.active_count()
    _answer({"ready": threads == 1, "threads": threads})
    for line in sys.stdin:
        request = json.loads(line)
        threads = threading.active_count()
        if threads != 1:
            _answer({"error": f"{threads} threads: refusing to fork"})
            continue
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            _answer({"signal": os.WTERMSIG(status), "pid": pid})
        else:
            _answer({"exit": os.WEXITSTATUS(status), "pid": pid})


if __name__ == "__main__":
    main()
