"""Quickstart: a chat loop that checkpoints every turn to SQLite and resumes after a restart.

Run it with `uv run examples/quickstart.py`: no API key, no server. The "model" is a
deterministic double whose reply is a hash of the whole prompt, so any lost or duplicated
message would change every later reply; the script checks that a run interrupted after
turn 3 and resumed by a fresh store (a new process would do exactly the same) ends with
the same transcript as a run that was never interrupted.

Set AGENT_PERSIST_URL to try another store, e.g. postgresql://postgres@127.0.0.1/test.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from typing import Any

from agent_persist import Envelope, Producer, Registry, Status, open_store
from agent_persist.errors import ThreadNotFoundError

PRODUCER = Producer(package="quickstart", package_version="1")
QUESTIONS = ["Hi!", "What is a checkpoint?", "And a migration?", "Thanks.", "Bye."]


def model(transcript: list[Any]) -> str:
    """A deterministic model double: the reply depends on every message so far."""
    prompt = "\n".join(f"{m['role']}: {m['content']}" for m in transcript)
    return "reply-" + hashlib.sha256(prompt.encode()).hexdigest()[:10]


async def run_chat(url: str, thread_id: str, *, stop_after: int | None = None) -> list[Any]:
    """Answer the questions, one checkpoint per turn; resume where the thread stopped."""
    async with open_store(url) as store:
        try:
            head: Envelope | None = await store.get(thread_id)
        except ThreadNotFoundError:
            head = None
        turn = 0 if head is None else head.payload["turn"]
        transcript = [] if head is None else await store.read_log(thread_id, "transcript", at=head)
        if head is not None:
            print(f"  resumed {thread_id!r} at turn {turn} ({len(transcript)} messages)")
        while turn < len(QUESTIONS):
            question = {"role": "user", "content": QUESTIONS[turn]}
            answer = {"role": "assistant", "content": model([*transcript, question])}
            transcript += [question, answer]
            turn += 1
            done = turn == len(QUESTIONS)
            state = {"turn": turn, "tokens_left": 1000 - 50 * turn}
            status = Status.DONE if done else Status.RUNNING
            envelope = (
                Envelope.create(
                    kind="quickstart.chat",
                    schema_version=2,
                    thread_id=thread_id,
                    payload=state,
                    producer=PRODUCER,
                    metadata={"user": "ada"},
                )
                if head is None
                else head.next(payload=state, status=status)
            )
            # Only the two new messages are written: the cost of a turn does not grow.
            head = await store.put(envelope, appends={"transcript": [question, answer]})
            if stop_after is not None and turn == stop_after:
                print(f"  worker stopped after turn {turn}")
                return transcript
        return transcript


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = os.environ.get("AGENT_PERSIST_URL", f"sqlite:///{folder}/quickstart.db")
        print(f"store: {url}")
        print("1. an uninterrupted run")
        reference = await run_chat(url, "reference")
        print("2. a run that stops after turn 3, then a fresh worker resumes it")
        await run_chat(url, "interrupted", stop_after=3)
        resumed = await run_chat(url, "interrupted")
        if resumed != reference:
            raise SystemExit("the resumed transcript differs from the uninterrupted run")
        print(f"  same {len(resumed)} messages as the uninterrupted run")

        async with open_store(url) as store:
            print("3. history, newest first")
            for checkpoint in await store.list_checkpoints("interrupted", limit=3):
                print(f"  step {checkpoint.step} {checkpoint.status.value:8} {checkpoint.payload}")

            print("4. a schema change: version 2 renamed 'budget' to 'tokens_left'")
            registry = Registry()
            registry.register_kind("quickstart.chat", version=2)

            @registry.register("quickstart.chat", 1, 2)
            def rename_budget(payload: dict[str, Any]) -> dict[str, Any]:
                payload["tokens_left"] = payload.pop("budget")
                return payload

            legacy = Envelope.create(
                kind="quickstart.chat",
                schema_version=1,
                thread_id="legacy",
                payload={"turn": 1, "budget": 950},
                producer=PRODUCER,
            )
            await store.put(legacy)
            upgraded = registry.upgrade(await store.get("legacy"))
            print(f"  v1 {legacy.payload} -> v{upgraded.schema_version} {upgraded.payload}")
            await store.put(upgraded.next(payload=upgraded.payload))  # write-back is explicit
    print("ok")


if __name__ == "__main__":
    asyncio.run(main())
