"""``audit backfill``: fill the SQL audit tables from audit log items written before them.

    agent-persist audit backfill --url sqlite:///agents.db --namespace audit --dry-run
    agent-persist audit backfill --url postgresql://... --namespace audit
    agent-persist audit backfill --url sqlite:///agents.db --thread session-1 --json
    agent-persist audit backfill --url sqlite:///agents.db --keys-env AGENT_PERSIST_  # sealed

The work is the store's own ``SQLStore.backfill_audit``: one transaction per thread, rows
already there kept, so running it twice adds nothing. Memory and Redis stores have no
tables (their audit report is read through the API), so the command refuses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..stores.base import BaseStore
from ._app import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_USAGE,
    Command,
    StoreOptions,
    echo_json,
    fail,
    run,
    shown,
    store_options,
)
from ._errors import OneLineErrors
from ._keys import key_options
from ._output import plural, progress_bar

if TYPE_CHECKING:
    from ..stores.sql import AuditBackfill

__all__ = ["audit"]


@click.group(cls=OneLineErrors, epilog=EXIT_CODES, short_help="The SQL audit tables.")
def audit() -> None:
    """The audit tables of the SQL stores (sessions, messages, tool calls)."""


@audit.command(
    cls=Command,
    epilog=EXIT_CODES,
    short_help="Fill the audit tables from existing audit logs.",
)
@store_options
@key_options
@click.option("--thread", "thread_id", default=None, help="Only this thread (session).")
@click.option("--dry-run", is_flag=True, help="Count what would be added; write nothing.")
def backfill(options: StoreOptions, thread_id: str | None, dry_run: bool) -> None:
    """Fill the audit tables from the audit log items written before them (SQL stores).

    Every audit event already in a thread's "audit" log gets its row in
    agent_persist_audit_messages or agent_persist_audit_tool_calls, and the thread its
    row in agent_persist_audit_sessions. Idempotent: rows already there are kept, so a
    second run adds nothing. Items that are damaged or not audit events are left as they
    are and counted as skipped (exit 1). --dry-run counts and writes nothing. On an
    encrypted store give --keys-env: sealed items are opened, and the rows' content,
    input and output are sealed under each thread's data key (without it they are skipped).
    """

    async def work(store: BaseStore) -> AuditBackfill:
        from ..stores.sql import SQLStore

        if not isinstance(store, SQLStore):
            raise fail(
                f"audit backfill: a {store.backend} store has no audit tables (only the SQL "
                "stores do); its audit report is read through the API, nothing to backfill",
                EXIT_USAGE,
            )
        with progress_bar("backfilling", force=options.config.terminal) as advance:
            try:
                return await store.backfill_audit(thread_id, dry_run=dry_run, progress=advance)
            except (TypeError, ValueError) as exc:  # a --thread no store can hold
                raise fail(f"--thread: {exc}", EXIT_USAGE) from None

    found = run(options, work)
    _report(options, found, thread_id, dry_run)
    if thread_id is not None and not found.threads:
        raise fail(f"no audit log in thread {shown(thread_id)}", EXIT_FAILED)
    if found.skipped:
        raise fail(
            f"{plural(found.skipped, 'audit item')} could not be read as audit events "
            "(damaged or not audit events): left as they are",
            EXIT_FAILED,
        )


def _report(options: StoreOptions, found: AuditBackfill, thread_id: str | None, dry: bool) -> None:
    if options.as_json:
        echo_json(
            {
                "dry_run": dry,
                "thread": thread_id,
                "threads": found.threads,
                "sessions": found.sessions,
                "messages": found.messages,
                "tool_calls": found.tool_calls,
                "skipped": found.skipped,
            }
        )
        return
    added = (
        f"{plural(found.messages, 'message')}, {plural(found.tool_calls, 'tool call')} and "
        f"{plural(found.sessions, 'session')} in {plural(found.threads, 'thread')}"
    )
    line = f"dry run: would add {added} (nothing written)" if dry else f"added {added}"
    if found.skipped:
        line += f"; skipped {plural(found.skipped, 'item')}"
    options.out.line(line)
