"""``import``: export files back into a store, all of them or nothing.

    agent-persist import --url redis://localhost:6379/0 backup/
    agent-persist import --replace --url sqlite:///agents.db essay-1.json

Every file is read and checked first (:mod:`._import_plan`); a damaged file, or a thread
that exists without ``--replace``, refuses the whole import before the store is touched.
A write that still fails (the store goes away, or refuses something only it checks) undoes
the import: the threads it wrote are deleted and the ones it replaced are written back from
the copy read before deleting them, so a refused import leaves the store as it was.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from .._json import JSON
from ..maintenance import Progress
from ..stores.base import BaseStore
from ._app import (
    EXIT_CODES,
    Command,
    StoreOptions,
    echo_json,
    fail,
    one_line,
    run,
    shown,
    store_options,
)
from ._errors import describe
from ._import_plan import Plan, PlannedThread, plan_records, plan_thread, read_records
from ._keys import with_keys
from ._output import plural, progress_bar
from ._sealed import open_sealed, sealed_namespace
from ._transfer import export_thread

__all__ = ["import_", "import_thread"]


async def _shrink(store: BaseStore, thread_id: str, name: str, have: int, keep: int) -> None:
    """Pop or clear the log down to ``keep`` items, as the source did."""
    if keep == 0 and have:
        await store.clear_log(thread_id, name)
    else:
        for _ in range(have - keep):
            await store.pop(thread_id, name)


async def import_thread(
    store: BaseStore, thread_id: str, plan: Plan, *, written: set[str] | None = None
) -> int:
    """Write a planned thread into an empty thread of ``store``; returns its checkpoints.

    Each checkpoint is put with the items its log changes add (pops and clears before it
    are replayed), so every checkpoint sees its logs exactly as it did in the source.
    ``written`` gets ``thread_id`` once a first write landed (what an undo must delete).
    """
    lengths: dict[str, int] = {}
    for envelope, changes in plan:
        appends: dict[str, list[JSON]] = {}
        for name, (keep, added) in changes.items():
            await _shrink(store, thread_id, name, lengths.get(name, 0), keep)
            lengths[name] = keep + len(added)
            appends[name] = added
        if envelope is not None:
            await store.put(envelope, appends=appends)
        else:
            for name, added in appends.items():
                if added:
                    await store.append(thread_id, name, added)
        if written is not None:
            written.add(thread_id)
    return len(plan) - 1


async def open_records(records: list[tuple[Any, str]], source: StoreOptions) -> None:
    """Open the sealed values of the records with the data keys of the store they came from.

    Each sealed thread names the namespace it was sealed in; its data key is read from
    that namespace's key store (of ``source``), so a thread shredded there stays unreadable.
    The source is only read: opened without ``setup`` (no DDL, no migration there).
    """
    stores: dict[str, BaseStore] = {}
    read_only = _without_setup(source)
    try:
        for record, where in records:
            namespace = sealed_namespace(record)
            if namespace is None:
                continue
            if namespace not in stores:
                stores[namespace] = dataclasses.replace(read_only, namespace=namespace).open()
            await _open_record(record, stores[namespace], where)
    finally:
        for opened in stores.values():
            await opened.close()


def _without_setup(source: StoreOptions) -> StoreOptions:
    """``source`` opening its SQL or Redis store (and default key store) without setup."""
    if source.url.lower().startswith("memory"):
        return source  # no schema to set up, and no such option
    extra = {**source.config.store_options, "auto_setup": False}
    return dataclasses.replace(
        source, config=dataclasses.replace(source.config, store_options=extra)
    )


async def _open_record(record: dict[str, Any], store: BaseStore, where: str) -> None:
    from ..crypto._codec import SealingCodec  # the crypto extra: only with --keys-env

    codec = store.codec
    if not isinstance(codec, SealingCodec):  # pragma: no cover - opened with keys
        raise TypeError("the source store must be opened with encryption")
    thread_id = record.get("thread_id")
    if not isinstance(thread_id, str):
        return  # refused by the plan, with its place
    await codec.load(thread_id, create=False)

    async def open_item(log: str, sealed: bytes, position: int, spot: str) -> bytes:
        return codec.for_log(thread_id, log).unseal_item(sealed, position, where=spot)

    async def open_payload(checkpoint: dict[str, Any], sealed: bytes, spot: str) -> bytes:
        checkpoint_id = str(checkpoint.get("checkpoint_id"))
        bound = codec.for_checkpoint(thread_id, checkpoint_id, checkpoint)
        return bound.unseal(sealed, where=spot)

    await open_sealed(record, open_item=open_item, open_payload=open_payload, where=where)


class _Import:
    """One import's writes, and how to undo them."""

    def __init__(self, store: BaseStore, threads: list[PlannedThread]) -> None:
        self.store = store
        self.threads = threads
        self.written: set[str] = set()
        self.copies: dict[str, dict[str, Any] | None] = {}
        """Threads replaced: their export before deleting (``None``: it could not be read)."""

    async def keep_copies(self, thread_ids: list[str]) -> None:
        """Read each thread about to be replaced, to write it back if the import fails."""
        for thread_id in thread_ids:
            try:
                self.copies[thread_id] = await export_thread(self.store, thread_id)
            except Exception:  # a damaged thread: replacing it from a backup is the point
                self.copies[thread_id] = None

    async def write(self, progress: Progress | None = None) -> int:
        """Write every thread (deleting those replaced first); returns the checkpoints.

        ``progress`` is called with ``(threads written, threads)``.
        """
        count = 0
        if progress is not None:
            progress(0, len(self.threads))
        for done, thread in enumerate(self.threads, start=1):
            if thread.thread_id in self.copies:
                self.written.add(thread.thread_id)
                await self.store.delete_thread(thread.thread_id)
            count += await import_thread(
                self.store, thread.thread_id, thread.plan, written=self.written
            )
            if progress is not None:
                progress(done, len(self.threads))
        return count

    async def undo(self) -> str:
        """Delete what was written and write back what was replaced; says how it went."""
        lost: list[str] = []
        for thread_id in sorted(self.written):
            try:
                await self.store.delete_thread(thread_id)
                if thread_id not in self.copies:
                    continue
                copy = self.copies[thread_id]
                if copy is None:
                    lost.append(f"{shown(thread_id)} (unreadable before the import)")
                    continue
                planned = plan_thread(copy, where=f"the copy of thread {thread_id!r}")
                await import_thread(self.store, thread_id, planned.plan)
            except Exception as exc:
                lost.append(f"{shown(thread_id)} ({type(exc).__name__}: {one_line(exc)})")
        if lost:
            return "undoing it failed for " + ", ".join(lost)
        return "nothing of it was kept"


@click.command(
    "import",
    cls=Command,
    epilog=EXIT_CODES,
    short_help="Import threads from export files, all or nothing.",
)
@store_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=False, path_type=Path))
@click.option(
    "--replace", is_flag=True, help="Delete an existing thread of the same id before importing."
)
@click.option(
    "--keys-env",
    "keys_prefix",
    default=None,
    help="The key ring of the environment (PREFIXKEY_<ID>, PREFIXPRIMARY_KEY): opens sealed "
    "exports, and the store is written encrypted (each thread sealed under its own key).",
)
@click.option(
    "--key-store",
    default=None,
    help="With --keys-env: URL of the key store, if not the store's own.",
)
@click.option(
    "--source-url",
    default=None,
    help="With --keys-env: the store a sealed export came from, if not this one (its data "
    "keys are read from its key store, namespace <namespace>.keys).",
)
def import_(
    options: StoreOptions,
    paths: tuple[Path, ...],
    replace: bool,
    keys_prefix: str | None,
    key_store: str | None,
    source_url: str | None,
) -> None:
    """Import threads from export files or directories (- reads stdin), all or nothing.

    Every file is checked before anything is written; a damaged file is refused whole
    (exit 1, naming the file, thread and checkpoint). A thread that already exists refuses
    the import (exit 1, nothing written) unless --replace is given. A sealed export (of an
    encrypted store, without --decrypt) needs --keys-env: its values are opened with the
    source thread's data key and sealed again under the target thread's own key; without
    keys it is refused (exit 1, nothing written).
    """
    for path in paths:
        if str(path) != "-" and not path.exists():
            raise click.BadParameter(f"{path} does not exist", param_hint="PATHS")
    if keys_prefix is None and (key_store is not None or source_url is not None):
        raise click.UsageError("--key-store and --source-url need --keys-env")
    records = read_records(paths)
    sealed = any(sealed_namespace(record) is not None for record, _ in records)
    threads = [] if sealed and keys_prefix is not None else plan_records(records)
    source = options
    if keys_prefix is not None:
        if source_url is not None:
            source = dataclasses.replace(options, url=source_url)
        options, _ = with_keys(options, keys_prefix, key_store)
        source, _ = with_keys(source, keys_prefix, key_store)

    async def work(store: BaseStore) -> tuple[int, list[str]]:
        nonlocal threads
        if sealed and keys_prefix is not None:
            await open_records(records, source)
            threads = plan_records(records)
        existing = {t.thread_id for t in await store.list_threads()}
        clashes = [t.thread_id for t in threads if t.thread_id in existing]
        if clashes and not replace:
            return 0, clashes
        job = _Import(store, threads)
        await job.keep_copies(clashes)
        try:
            with progress_bar("importing", force=options.config.terminal) as advance:
                return await job.write(advance), []
        except BaseException as exc:
            outcome = await job.undo()
            if not isinstance(exc, Exception):
                raise
            message, code = describe(exc)
            raise fail(f"import failed, {outcome}: {message}", code) from None

    checkpoints, refused = run(options, work, must_exist=False)
    imported = 0 if refused else len(threads)
    if options.as_json:
        echo_json({"threads": imported, "checkpoints": checkpoints, "refused": refused})
    else:
        options.out.line(
            f"imported {plural(imported, 'thread')}, {plural(checkpoints, 'checkpoint')}"
        )
    if refused:
        listed = ", ".join(shown(thread_id) for thread_id in refused[:5])
        more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        exist = "1 thread exists" if len(refused) == 1 else f"{len(refused)} threads exist"
        raise fail(f"{exist} ({listed}{more}); nothing imported (pass --replace to overwrite them)")
