"""Read-only commands: ``ls``, ``show``, ``history`` and ``diff``.

    agent-persist ls --url sqlite:///agents.db --where user=42 --limit 20
    agent-persist show essay-1 --logs
    agent-persist history essay-1 --json
    agent-persist diff essay-1 <older checkpoint id> <newer checkpoint id>

They never write: a store can be inspected while workers keep using it.
"""

from __future__ import annotations

import json
from typing import Any

import click

from .._json import JSON, json_diff
from ..envelope import Envelope
from ..stores.base import BaseStore, ThreadInfo
from ._app import (
    EXIT_CODES,
    MAX_COUNT,
    StoreOptions,
    echo_json,
    iso,
    run,
    shown,
    store_options,
)

__all__ = ["diff", "history", "ls", "show"]

HEADER_FIELDS = (
    "thread_id",
    "checkpoint_id",
    "parent_id",
    "step",
    "status",
    "stop_reason",
    "kind",
    "schema_version",
    "format_version",
    "fingerprint",
    "producer",
    "created_at",
    "metadata",
    "logs",
    "checksum",
)
"""The envelope fields ``show`` and ``diff`` print, in reading order (the payload comes last)."""


def header(envelope: Envelope) -> dict[str, Any]:
    """The envelope without its payload, as plain JSON."""
    dumped = envelope.model_dump(mode="json", exclude={"payload"})
    return {name: dumped[name] for name in HEADER_FIELDS}


def parse_where(pairs: tuple[str, ...]) -> dict[str, JSON] | None:
    """``key=value`` filters; a value that parses as JSON (``1``, ``true``) is that value."""
    if not pairs:
        return None
    wanted: dict[str, JSON] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--where")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, dict | list):
            raise click.BadParameter(
                f"{pair!r}: compare with a text, number, boolean or null", param_hint="--where"
            )
        wanted[key] = value
    return wanted


def _thread_row(info: ThreadInfo) -> dict[str, Any]:
    return {
        "thread_id": info.thread_id,
        "head_id": info.head_id,
        "kind": info.kind,
        "schema_version": info.schema_version,
        "step": info.step,
        "status": None if info.status is None else info.status.value,
        "checkpoints": info.checkpoint_count,
        "updated_at": iso(info.updated_at),
        "metadata": info.metadata,
    }


def _table(rows: list[list[str]], headings: list[str]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headings)]
    for line in [headings, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


@click.command(epilog=EXIT_CODES)
@store_options
@click.option(
    "--limit", type=click.IntRange(min=0, max=MAX_COUNT), default=None, help="At most N threads."
)
@click.option(
    "--where",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only threads whose head metadata has KEY equal to VALUE (JSON or text); repeatable.",
)
def ls(options: StoreOptions, limit: int | None, where: tuple[str, ...]) -> None:
    """List threads, most recently updated first."""
    metadata = parse_where(where)
    threads = run(options, lambda store: store.list_threads(metadata=metadata, limit=limit))
    rows = [_thread_row(info) for info in threads]
    if options.as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no threads")
        return
    _table(
        [
            [
                shown(row["thread_id"]),
                str(row["status"] or "-"),
                str(row["step"]),
                str(row["checkpoints"]),
                str(row["kind"] or "-"),
                "-" if row["schema_version"] is None else str(row["schema_version"]),
                row["updated_at"][:19].replace("T", " "),
            ]
            for row in rows
        ],
        ["THREAD", "STATUS", "STEP", "CPS", "KIND", "SCHEMA", "UPDATED (UTC)"],
    )


async def _read_with_logs(
    store: BaseStore, thread_id: str, checkpoint_id: str | None, with_logs: bool
) -> tuple[Envelope, dict[str, list[JSON]]]:
    envelope = await store.get(thread_id, checkpoint_id)
    logs: dict[str, list[JSON]] = {}
    if with_logs:
        for name in sorted(envelope.logs):
            logs[name] = await store.read_log(thread_id, name, at=envelope)
    return envelope, logs


@click.command(epilog=EXIT_CODES)
@store_options
@click.argument("thread_id", metavar="THREAD")
@click.option(
    "--checkpoint", "checkpoint_id", default=None, help="A checkpoint id (default: head)."
)
@click.option(
    "--logs", "with_logs", is_flag=True, help="Include the logs as the checkpoint saw them."
)
def show(options: StoreOptions, thread_id: str, checkpoint_id: str | None, with_logs: bool) -> None:
    """Show a checkpoint: its header fields and its payload, pretty-printed."""
    envelope, logs = run(
        options, lambda store: _read_with_logs(store, thread_id, checkpoint_id, with_logs)
    )
    if options.as_json:
        document: dict[str, Any] = {**header(envelope), "payload": envelope.payload}
        if with_logs:
            document["log_items"] = logs
        echo_json(document)
        return
    for name, value in header(envelope).items():
        if name == "thread_id":
            text = shown(value)
        elif value is None:
            text = "-"
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        click.echo(f"{name + ':':16}{text}")
    click.echo("payload:")
    click.echo(json.dumps(envelope.payload, indent=2, sort_keys=True, ensure_ascii=False))
    for name, items in logs.items():
        click.echo(f"log {shown(name)} ({len(items)} items):")
        for index, item in enumerate(items):
            click.echo(f"  [{index}] {json.dumps(item, sort_keys=True, ensure_ascii=False)}")


@click.command(epilog=EXIT_CODES)
@store_options
@click.argument("thread_id", metavar="THREAD")
@click.option(
    "--limit",
    type=click.IntRange(min=0, max=MAX_COUNT),
    default=None,
    help="At most N checkpoints.",
)
def history(options: StoreOptions, thread_id: str, limit: int | None) -> None:
    """List a thread's checkpoints, newest first."""
    checkpoints = run(options, lambda store: store.list_checkpoints(thread_id, limit=limit))
    rows: list[dict[str, Any]] = [
        {
            "checkpoint_id": cp.checkpoint_id,
            "parent_id": cp.parent_id,
            "step": cp.step,
            "status": cp.status.value,
            "kind": cp.kind,
            "schema_version": cp.schema_version,
            "created_at": iso(cp.created_at),
        }
        for cp in checkpoints
    ]
    if options.as_json:
        echo_json(rows)
        return
    _table(
        [
            [
                cp.checkpoint_id,
                str(cp.step),
                cp.status.value,
                cp.kind,
                str(cp.schema_version),
                cp.created_at.isoformat()[:23].replace("T", " "),
            ]
            for cp in checkpoints
        ],
        ["CHECKPOINT", "STEP", "STATUS", "KIND", "SCHEMA", "CREATED (UTC)"],
    )


def compare(old: Envelope, new: Envelope) -> dict[str, Any]:
    """What changed from ``old`` to ``new``: header fields (old and new value), payload paths."""
    old_header, new_header = header(old), header(new)
    fields = {
        name: {"old": old_header[name], "new": new_header[name]}
        for name in HEADER_FIELDS
        if old_header[name] != new_header[name]
    }
    return {"header": fields, "payload": json_diff(old.payload, new.payload)}


@click.command(epilog=EXIT_CODES)
@store_options
@click.argument("thread_id", metavar="THREAD")
@click.argument("old_id", metavar="A")
@click.argument("new_id", metavar="B")
def diff(options: StoreOptions, thread_id: str, old_id: str, new_id: str) -> None:
    """Show what changed from checkpoint A to checkpoint B of THREAD.

    Header fields print with their old and new values; payload paths print as ``+`` added,
    ``-`` removed, ``~`` changed.
    """

    async def both(store: BaseStore) -> tuple[Envelope, Envelope]:
        return await store.get(thread_id, old_id), await store.get(thread_id, new_id)

    old, new = run(options, both)
    changes = compare(old, new)
    if options.as_json:
        echo_json({"thread_id": thread_id, "a": old_id, "b": new_id, **changes})
        return
    if not changes["header"] and not changes["payload"]:
        click.echo("no differences")
        return
    for name, values in changes["header"].items():
        before = json.dumps(values["old"], sort_keys=True, ensure_ascii=False)
        after = json.dumps(values["new"], sort_keys=True, ensure_ascii=False)
        click.echo(f"~ {name}: {before} -> {after}")
    for line in changes["payload"]:
        click.echo(f"{line[0]} payload{line[3:]}")
