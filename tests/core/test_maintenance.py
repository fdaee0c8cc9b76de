"""The maintenance module: dry run, store-wide migration, saved configs, and the old names.

``agent_persist.dry_run`` (the module) and ``agent_persist.drift.saved_config`` are
deprecated aliases for one minor release: they warn and still work.
"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from typing import Any

import pytest

import agent_persist
from agent_persist import maintenance
from agent_persist.envelope import Envelope, Producer
from agent_persist.migrations import Registry
from agent_persist.stores.memory import MemoryStore

KIND = "maintenance.test"


def registry() -> Registry:
    found = Registry()
    found.register_kind(KIND, version=2)

    @found.register(KIND, 1, 2)
    def rename(payload: Any) -> Any:
        payload["count"] = payload.pop("n")
        return payload

    return found


def envelope(thread_id: str, version: int = 1) -> Envelope:
    payload = {"n": 1} if version == 1 else {"count": 1}
    return Envelope.create(
        kind=KIND,
        schema_version=version,
        thread_id=thread_id,
        payload=payload,
        producer=Producer(package="tests"),
    )


async def test_migrate_store_reports_progress_and_writes_new_heads() -> None:
    store = MemoryStore()
    await store.put(envelope("old-1"))
    await store.put(envelope("old-2"))
    await store.put(envelope("current", version=2))
    calls: list[tuple[int, int]] = []
    report = await maintenance.migrate_store(
        store, registry(), progress=lambda done, total: calls.append((done, total))
    )
    assert report.completed
    assert report.counts()["migrated"] == 2
    assert report.counts()["skipped_current"] == 1
    assert calls[0] == (0, 2)
    assert calls[-1] == (2, 2)
    head = await store.get("old-1")
    assert (head.schema_version, head.payload, head.metadata["migrated_from"]) == (
        2,
        {"count": 1},
        1,
    )
    assert report.to_json()["counts"]["migrated"] == 2


async def test_migrate_store_refuses_a_concurrency_below_one() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        await maintenance.migrate_store(MemoryStore(), registry(), concurrency=0)


async def test_dry_run_writes_nothing_and_counts_threads() -> None:
    store = MemoryStore()
    await store.put(envelope("a"))
    calls: list[tuple[int, int]] = []
    report = await maintenance.dry_run(
        store, registry(), progress=lambda done, total: calls.append((done, total))
    )
    assert [entry.outcome for entry in report.entries] == ["would migrate"]
    assert report.entries[0].changes == ["+ $.count", "- $.n"]
    assert calls == [(0, 1), (1, 1)]
    assert (await store.get("a")).schema_version == 1


def test_the_package_exports_the_maintenance_api() -> None:
    # in this process another test may have imported the deprecated submodule, which rebinds
    # the package attribute (see the next test); a fresh interpreter has the function itself
    fresh = subprocess.run(  # our own interpreter, a fixed program
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            "import agent_persist as a; assert a.dry_run is a.maintenance.dry_run",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert agent_persist.DryRunReport is maintenance.DryRunReport
    assert agent_persist.DryRunEntry is maintenance.DryRunEntry
    assert agent_persist.saved_config is maintenance.saved_config
    assert agent_persist.migrate_store is maintenance.migrate_store
    assert agent_persist.MigrationReport is maintenance.MigrationReport
    assert agent_persist.HeadOutcome is maintenance.HeadOutcome


async def test_the_old_dry_run_module_warns_and_still_works() -> None:
    sys.modules.pop("agent_persist.dry_run", None)
    old = importlib.import_module("agent_persist.dry_run")
    for name in ("dry_run", "DryRunEntry", "DryRunReport"):
        with pytest.deprecated_call(match=f"agent_persist.maintenance.{name}"):
            assert getattr(old, name) is getattr(maintenance, name)
    # importing the submodule rebinds the package attribute to it: it stays callable
    store = MemoryStore()
    await store.put(envelope("a"))
    report = await agent_persist.dry_run(store, registry())
    assert report.count("would migrate") == 1
    from agent_persist import dry_run as imported

    assert callable(imported)


async def test_drift_saved_config_warns_and_still_works() -> None:
    from agent_persist import drift

    with pytest.deprecated_call(match="agent_persist.maintenance.saved_config"):
        old = drift.saved_config  # pyright: ignore[reportAttributeAccessIssue]
    assert old is maintenance.saved_config
    with pytest.deprecated_call():
        from agent_persist.drift import saved_config  # pyright: ignore

    assert saved_config is maintenance.saved_config
    assert await old(MemoryStore(), envelope("a")) is None  # no fingerprint recorded
    with pytest.raises(AttributeError, match="no_such_name"):
        drift.no_such_name  # pyright: ignore[reportAttributeAccessIssue]  # noqa: B018


async def test_a_store_failure_stops_every_migration_worker() -> None:
    """One worker's StoreUnavailableError cancels the others: nothing writes after the raise."""
    from agent_persist.errors import StoreUnavailableError

    class FailingStore(MemoryStore):
        writes_after_failure = 0
        failed = False

        async def put(self, envelope: Envelope, **kwargs: Any) -> Envelope:
            if self.failed:
                FailingStore.writes_after_failure += 1
            await asyncio.sleep(0.01)
            if not self.failed:  # the first write fails; 39 heads are still to go
                self.failed = True
                raise StoreUnavailableError("the store went away")
            return await super().put(envelope, **kwargs)

    store = FailingStore()
    for n in range(40):
        await MemoryStore.put(store, envelope(f"old-{n}"))
    with pytest.raises(StoreUnavailableError):
        await maintenance.migrate_store(store, registry(), concurrency=4)
    before = FailingStore.writes_after_failure
    await asyncio.sleep(0.2)  # workers left running would keep writing now
    assert FailingStore.writes_after_failure == before
    assert before <= 3  # at most the puts already in flight beside the failing one
