"""``export``: threads as JSON files that move between stores (``import`` reads them back).

    agent-persist export --url sqlite:///agents.db --all -o backup/      # one file per thread
    agent-persist export --url sqlite:///agents.db essay-1 > essay-1.json
    agent-persist import --url redis://localhost:6379/0 backup/

A file holds every checkpoint of its threads, oldest first, with its payload and the
changes that turn each log as the previous checkpoint saw it into the log as this one saw
it (``{"keep": K, "add": [...]}``: pops and clears show as a smaller K), then the changes
since the head (items appended after it, such as session items). Log versions are
store-specific and left out; checkpoint ids,
parents, steps and times are kept, so an export of an import is identical to the first
export. One exception: a pruned thread's oldest checkpoint points to a parent that no longer
exists, and a store only accepts a thread's first checkpoint without a parent, so it is
imported as a root (``parent_id`` null).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from .._json import JSON
from ..envelope import Envelope
from ..stores.base import BaseStore
from ._app import (
    EXIT_CODES,
    Command,
    StoreOptions,
    echo_json,
    fail,
    one_line,
    run,
    store_options,
)
from ._keys import with_keys
from ._output import plural, progress_bar
from ._sealed import SEALED_FIELD, KeepSealed

__all__ = ["FORMAT", "FORMAT_VERSION", "LogView", "export", "export_thread", "file_name"]

FORMAT = "agent-persist-export"
FORMAT_VERSION = 1


LogChange = dict[str, Any]
"""``{"keep": K, "add": [...]}``: the first K items of the previous view, then ``add``."""


class LogView:
    """What the exporter knows of one log: the items and version the last checkpoint saw."""

    def __init__(self) -> None:
        self.items: list[JSON] = []
        self.version = 0

    async def change_to(
        self, store: BaseStore, thread_id: str, name: str, at: Envelope | None, version: int | None
    ) -> LogChange:
        """The change from this view to the log as ``at`` saw it (now, for ``None``).

        Reads only the new items when the version moved by exactly their count (each
        appended item, pop or clear bumps a log's version, so nothing was popped or
        cleared); otherwise reads the whole view and keeps the common prefix.
        """
        kept = len(self.items)
        added = await store.read_log(thread_id, name, start=kept, at=at)
        if version is None or version - self.version != len(added):
            view = await store.read_log(thread_id, name, at=at)
            kept = _common_prefix(self.items, view)
            added = view[kept:]
        self.items = self.items[:kept] + added
        if version is not None:
            self.version = version
        return {"keep": kept, "add": added}


async def export_thread(store: BaseStore, thread_id: str) -> dict[str, Any]:
    """One thread as plain JSON: its checkpoints oldest first, each with its log changes.

    A checkpoint's ``log_changes`` turn the logs as the previous checkpoint saw them into
    the logs as it saw them, so a file grows with the data, not with checkpoints x log size,
    and diffs well in version control. ``log_changes_after_head`` bring them to now.
    """
    checkpoints = list(reversed(await store.list_checkpoints(thread_id)))
    views: dict[str, LogView] = {}
    exported: list[dict[str, Any]] = []
    for envelope in checkpoints:
        record = envelope.model_dump(mode="json", exclude={"logs"})
        record["log_changes"] = {
            name: await views.setdefault(name, LogView()).change_to(
                store, thread_id, name, envelope, version
            )
            for name, version in sorted(envelope.logs.items())
        }
        exported.append(record)
    after = {
        name: await view.change_to(store, thread_id, name, None, None)
        for name, view in sorted(views.items())
    }
    return {
        "thread_id": thread_id,
        "checkpoints": exported,
        "log_changes_after_head": after,
    }


def _document(threads: list[dict[str, Any]]) -> str:
    body = {"format": FORMAT, "version": FORMAT_VERSION, "threads": threads}
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def file_name(thread_id: str) -> str:
    """A safe, unique file name for a thread: a readable slug plus a digest of the id.

    Thread ids are arbitrary text (slashes, newlines, a kilobyte long), so the name keeps
    only a short readable part and the digest makes it unique; the id itself is in the file.
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", thread_id)[:60].strip("._") or "thread"
    digest = hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{slug}-{digest}.json"


@click.command(cls=Command, epilog=EXIT_CODES)
@store_options
@click.argument("thread_ids", metavar="[THREAD]...", nargs=-1)
@click.option(
    "--decrypt",
    is_flag=True,
    help="Open sealed data (needs --keys-env): the export holds it in clear.",
)
@click.option(
    "--keys-env",
    "keys_prefix",
    default=None,
    help="With --decrypt: the key ring of the environment, PREFIXKEY_<ID> (base64) and "
    "PREFIXPRIMARY_KEY.",
)
@click.option(
    "--key-store",
    default=None,
    help="With --decrypt: URL of the key store, if not the store's own.",
)
@click.option("--all", "every", is_flag=True, help="Export every thread of the namespace.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="A directory (one file per thread), a .json file, or - for stdout (the default).",
)
def export(
    options: StoreOptions,
    thread_ids: tuple[str, ...],
    every: bool,
    output: Path | None,
    decrypt: bool,
    keys_prefix: str | None,
    key_store: str | None,
) -> None:
    """Export threads (every checkpoint, payloads and logs) as JSON.

    Output to a directory writes one file per thread, named by a slug and a digest of its id
    (the id itself is inside), which suits version control. Data an encrypted store sealed
    stays sealed in the export (bound to its namespace and thread; unreadable once the
    thread is deleted there), unless --decrypt is given with the key ring.
    """
    if bool(thread_ids) == every:
        raise click.UsageError("name one or more THREADs, or pass --all")
    keep = KeepSealed()
    if decrypt:
        if keys_prefix is None:
            raise click.UsageError("--decrypt needs --keys-env PREFIX (the key ring)")
        options, _ = with_keys(options, keys_prefix, key_store)
    elif keys_prefix is not None or key_store is not None:
        raise click.UsageError(
            "--keys-env and --key-store open sealed data only with --decrypt; "
            "without it, sealed data is exported sealed"
        )
    else:
        config = dataclasses.replace(
            options.config, store_options={**options.config.store_options, "codec": keep}
        )
        options = dataclasses.replace(options, config=config)

    async def work(store: BaseStore) -> list[dict[str, Any]]:
        ids = list(thread_ids)
        if every:
            ids = [t.thread_id for t in await store.list_threads() if t.head_id is not None]
        ids = sorted(set(ids))
        exported: list[dict[str, Any]] = []
        with progress_bar("exporting", force=options.config.terminal) as advance:
            advance(0, len(ids))
            for thread_id in ids:
                record = await export_thread(store, thread_id)
                if thread_id in keep.sealed_threads:
                    record[SEALED_FIELD] = {"namespace": store.namespace}
                exported.append(record)
                advance(len(exported), len(ids))
        return exported

    threads = run(options, work)
    try:
        _write(threads, output)
    except OSError as exc:
        raise fail(f"{exc.filename or output}: {exc.strerror or one_line(exc)}") from None
    count = sum(len(thread["checkpoints"]) for thread in threads)
    summary = f"exported {plural(len(threads), 'thread')}, {plural(count, 'checkpoint')}"
    if options.as_json and output is not None and str(output) != "-":
        echo_json({"threads": len(threads), "checkpoints": count})
    else:
        click.echo(summary, err=True)


def _write(threads: list[dict[str, Any]], output: Path | None) -> None:
    """Stdout (``None`` or ``-``), a directory (one file per thread) or one ``.json`` file.

    A path that does not exist yet is a directory unless it ends in ``.json``.
    """
    if output is None or str(output) == "-":
        sys.stdout.write(_document(threads))
        return
    is_dir = output.is_dir() or (not output.exists() and output.suffix.lower() != ".json")
    if not is_dir:
        output.write_text(_document(threads), encoding="utf-8")
        return
    output.mkdir(parents=True, exist_ok=True)
    for thread in threads:
        (output / file_name(thread["thread_id"])).write_text(_document([thread]), encoding="utf-8")


def _common_prefix(old: list[JSON], new: list[JSON]) -> int:
    count = 0
    for a, b in zip(old, new, strict=False):
        if a != b:
            break
        count += 1
    return count
