"""Without OpenTelemetry the package works and never imports it.

The check runs in a fresh interpreter whose import system refuses ``opentelemetry``, so it
means the same in the minimal environment (where it is not installed) and in the dev one
(where a framework's dependencies installed it).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import timedelta

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    if sys.argv[2] == "block":
        sys.meta_path.insert(0, Refuse())

    from agent_persist import Envelope, Producer, Registry, open_store
    from agent_persist.telemetry import resuming
    import logging

    async def main():
        registry = Registry()
        registry.register_kind("k", version=2)
        registry.register("k", 1, 2)(lambda payload: {**payload, "v": 2})
        for url in ("memory://", f"sqlite:///{sys.argv[1]}"):
            async with open_store(url) as store:
                envelope = Envelope.create(kind="k", schema_version=1, thread_id="t",
                                           payload={"n": 1}, producer=Producer(package="x"))
                await store.put(envelope, appends={"log": [1, 2]})
                with resuming(logging.getLogger("x"), kind="k", thread_id="t") as resume:
                    head = registry.upgrade(await store.get("t"))
                    resume.found(head)
                assert head.payload == {"n": 1, "v": 2}
                assert await store.read_log("t", "log", at=head) == [1, 2]
                assert await store.tail_lines("t", "log", 1) == b"2"
                lease = await store.acquire_lease("t", "me", ttl=timedelta(minutes=1))
                await store.renew_lease(lease, ttl=timedelta(minutes=1))
                await store.release_lease(lease)

    asyncio.run(main())
    print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
    """
)


def run(tmp_path: Path, mode: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SCRIPT, str(tmp_path / "absent.db"), mode],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "absence is not worth a warning"
    return done.stdout.strip()


def test_without_opentelemetry_nothing_of_it_is_imported(tmp_path: Path) -> None:
    assert run(tmp_path, "block") == "[]"


def test_the_blocker_would_see_an_import(tmp_path: Path) -> None:
    """Where OpenTelemetry is installed the same script imports it: the check can fail."""
    pytest.importorskip("opentelemetry.trace", reason="the minimal environment lacks it")
    assert "opentelemetry.trace" in run(tmp_path, "allow")
