"""Worker A of the SIGKILL tests: runs a scenario and reports each checkpoint on stdout.

    python sigkill_worker.py URL OPTIONS_JSON SCENARIO THREAD_ID

The parent kills it with SIGKILL once it has seen enough checkpoints; it never exits on
its own before the run is over. Its lease options are the defaults: a second worker on this
machine takes the dead worker's lease over at once.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from scenarios import TASK, TEAMS

from agent_persist import Envelope, open_store
from autogen_persist import DurableTeam


async def main(url: str, options: str, scenario: str, thread_id: str) -> None:
    def report(envelope: Envelope) -> None:
        print(f"checkpoint {envelope.step}", flush=True)

    async with open_store(url, **json.loads(options)) as store:
        team = DurableTeam(
            TEAMS[scenario],
            store=store,
            thread_id=thread_id,
            on_checkpoint=report,
        )
        await team.run(task=TASK)
    print("finished", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
