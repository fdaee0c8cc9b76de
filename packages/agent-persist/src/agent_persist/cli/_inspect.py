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

from .._json import JSON
from ..envelope import Envelope
from ..errors import CheckpointNotFoundError
from ..stores.base import BaseStore, ThreadInfo
from ._app import (
    EXIT_CODES,
    MAX_COUNT,
    Command,
    StoreOptions,
    echo_json,
    iso,
    run,
    shown,
    store_options,
)
from ._keys import key_options
from ._output import STATUS_STYLES

__all__ = ["header", "history", "ls", "resolve_checkpoint", "show"]

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

CANDIDATES_SHOWN = 5
"""How many matching ids an ambiguous prefix's error lists."""


def header(envelope: Envelope, *, precise: bool = False) -> dict[str, Any]:
    """The envelope without its payload, as plain JSON (times as the command prints them).

    ``precise`` keeps the microseconds, as ``--json`` does.
    """
    dumped = envelope.model_dump(mode="json", exclude={"payload"})
    dumped["created_at"] = iso(envelope.created_at, precise=precise)
    return {name: dumped[name] for name in HEADER_FIELDS}


async def resolve_checkpoint(store: BaseStore, thread_id: str, given: str) -> str:
    """The checkpoint id ``given`` names in the thread: itself, or the one id it begins.

    As git takes a commit's unique prefix. An exact id is looked up directly (a damaged
    checkpoint elsewhere in the thread does not matter); a prefix reads the thread's ids.

    Raises:
        CheckpointNotFoundError: No id, or several, begin with ``given``; the message lists
            a few of them.
        ThreadNotFoundError: The thread does not exist.
    """
    try:
        return (await store.get(thread_id, given)).checkpoint_id
    except CheckpointNotFoundError:
        pass
    wanted = given.lower()
    ids = [cp.checkpoint_id for cp in await store.list_checkpoints(thread_id)]
    found = [cid for cid in ids if wanted and cid.lower().startswith(wanted)]
    if len(found) == 1:
        return found[0]
    where = f"thread {shown(thread_id)}"
    if not found:
        raise CheckpointNotFoundError(f"no checkpoint of {where} has an id beginning {given!r}")
    listed = ", ".join(found[:CANDIDATES_SHOWN])
    more = f" and {len(found) - CANDIDATES_SHOWN} more" if len(found) > CANDIDATES_SHOWN else ""
    raise CheckpointNotFoundError(
        f"{given!r} is ambiguous in {where}: {len(found)} checkpoints begin with it "
        f"({listed}{more}); type more of the id"
    )


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


def _thread_row(info: ThreadInfo, *, precise: bool) -> dict[str, Any]:
    return {
        "thread_id": info.thread_id,
        "head_id": info.head_id,
        "kind": info.kind,
        "schema_version": info.schema_version,
        "step": info.step,
        "status": None if info.status is None else info.status.value,
        "checkpoints": info.checkpoint_count,
        "updated_at": iso(info.updated_at, precise=precise),
        "metadata": info.metadata,
    }


def _status_style(column: int) -> Any:
    """Colour the status cell of a table by its value."""

    def style(index: int, text: str) -> str | None:
        return STATUS_STYLES.get(text) if index == column else None

    return style


@click.command(cls=Command, epilog=EXIT_CODES)
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
    """List threads, most recently updated first.

    Columns: thread, status, step, checkpoints, kind, schema version, last update (UTC).
    """
    metadata = parse_where(where)
    threads = run(options, lambda store: store.list_threads(metadata=metadata, limit=limit))
    rows = [_thread_row(info, precise=options.as_json) for info in threads]
    if options.as_json:
        echo_json(rows)
        return
    out = options.out
    if not rows:
        out.line("no threads")
        return
    out.table(
        ["THREAD", "STATUS", "STEP", "CHECKPOINTS", "KIND", "SCHEMA", "UPDATED"],
        [
            [
                shown(row["thread_id"]),
                str(row["status"] or "-"),
                str(row["step"]),
                str(row["checkpoints"]),
                str(row["kind"] or "-"),
                "-" if row["schema_version"] is None else str(row["schema_version"]),
                row["updated_at"] or "-",
            ]
            for row in rows
        ],
        styles=["bold", None, None, None, None, None, "dim"],
        cell_style=_status_style(1),
    )


async def _read_with_logs(
    store: BaseStore, thread_id: str, checkpoint_id: str | None, with_logs: bool
) -> tuple[Envelope, dict[str, list[JSON]]]:
    if checkpoint_id is not None:
        checkpoint_id = await resolve_checkpoint(store, thread_id, checkpoint_id)
    envelope = await store.get(thread_id, checkpoint_id)
    logs: dict[str, list[JSON]] = {}
    if with_logs:
        for name in sorted(envelope.logs):
            logs[name] = await store.read_log(thread_id, name, at=envelope)
    return envelope, logs


def _field_text(name: str, value: Any) -> str:
    if name == "thread_id":
        return shown(value)
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


@click.command(cls=Command, epilog=EXIT_CODES, short_help="Show a checkpoint's header and payload.")
@store_options
@key_options
@click.argument("thread_id", metavar="THREAD")
@click.option(
    "--checkpoint",
    "checkpoint_id",
    default=None,
    metavar="ID",
    help="A checkpoint id, or a unique prefix of one (default: the head).",
)
@click.option(
    "--logs", "with_logs", is_flag=True, help="Include the logs as the checkpoint saw them."
)
def show(options: StoreOptions, thread_id: str, checkpoint_id: str | None, with_logs: bool) -> None:
    """Show a checkpoint: its header fields, then its payload as indented JSON."""
    envelope, logs = run(
        options, lambda store: _read_with_logs(store, thread_id, checkpoint_id, with_logs)
    )
    if options.as_json:
        document: dict[str, Any] = {**header(envelope, precise=True), "payload": envelope.payload}
        if with_logs:
            document["log_items"] = logs
        echo_json(document)
        return
    out = options.out
    for name, value in header(envelope).items():
        text = _field_text(name, value)
        style = STATUS_STYLES.get(text) if name == "status" else None
        out.line(f"{name + ':':16}{text}", style=style)
    out.line("payload:", style="bold")
    out.json(json.dumps(envelope.payload, indent=2, sort_keys=True, ensure_ascii=False))
    for name, items in logs.items():
        out.line(f"log {shown(name)} ({len(items)} {'item' if len(items) == 1 else 'items'}):")
        for index, item in enumerate(items):
            out.line(f"  [{index}] {json.dumps(item, sort_keys=True, ensure_ascii=False)}")


@click.command(cls=Command, epilog=EXIT_CODES)
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
            "created_at": iso(cp.created_at, precise=options.as_json),
        }
        for cp in checkpoints
    ]
    if options.as_json:
        echo_json(rows)
        return
    options.out.table(
        ["CHECKPOINT", "STEP", "STATUS", "KIND", "SCHEMA", "CREATED"],
        [
            [
                row["checkpoint_id"],
                str(row["step"]),
                row["status"],
                row["kind"],
                str(row["schema_version"]),
                row["created_at"],
            ]
            for row in rows
        ],
        styles=["bold", None, None, None, None, "dim"],
        cell_style=_status_style(2),
    )
