"""``rekey`` and ``seal``: re-wrap data keys under the primary; seal what is still in clear.

    agent-persist rekey --url postgresql://... --dry-run
    agent-persist rekey --url postgresql://...            # resumable: run it again if cut
    agent-persist seal --url postgresql://...             # turn encryption on: seal the rest

The key ring comes from the environment (``AGENT_PERSIST_KEY_<ID>`` holds each key in
base64, ``AGENT_PERSIST_PRIMARY_KEY`` names the primary; ``--keys-env`` changes the prefix).
Only the small wrapped keys are rewritten, never the data; a key already wrapped by the
primary is skipped, so an interrupted run is finished by running it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ._app import (
    EXIT_CODES,
    Command,
    StoreOptions,
    echo_json,
    run,
    store_options,
)
from ._keys import DEFAULT_PREFIX, with_keys
from ._output import plural, progress_bar

__all__ = ["rekey", "seal"]


def _ring_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``rekey`` and ``seal`` share: the key ring, the key store, concurrency."""
    for option in reversed(
        (
            click.option(
                "--keys-env",
                "keys_prefix",
                default=DEFAULT_PREFIX,
                show_default=True,
                help="Prefix of the key ring's variables: PREFIXKEY_<ID> (base64), "
                "PREFIXPRIMARY_KEY.",
            ),
            click.option(
                "--key-store",
                default=None,
                help="URL of the key store, if not the store's own (namespace <namespace>.keys).",
            ),
            click.option(
                "--concurrency",
                type=click.IntRange(min=1),
                default=8,
                show_default=True,
                help="Threads worked on at once.",
            ),
        )
    ):
        command = option(command)
    return command


def _over_threads(
    options: StoreOptions, label: str, operation: Any, dry_run: bool, concurrency: int
) -> Any:
    """Run ``rekey`` or ``seal`` over every thread, with a progress bar on a terminal."""

    async def work(store: Any) -> Any:
        with progress_bar(label, force=options.config.terminal) as advance:
            return await operation(
                store, dry_run=dry_run, progress=advance, concurrency=concurrency
            )

    return run(options, work)


@click.command(
    cls=Command,
    epilog=EXIT_CODES,
    short_help="Re-wrap every thread's data key under the primary key.",
)
@store_options
@_ring_options
@click.option("--dry-run", is_flag=True, help="Count the keys to re-wrap; write nothing.")
def rekey(
    options: StoreOptions,
    keys_prefix: str,
    key_store: str | None,
    dry_run: bool,
    concurrency: int,
) -> None:
    """Re-wrap every thread's data key under the primary key of the key ring.

    Run it after adding a new primary key to the ring (keep the old keys in it until the
    run ends): data keys wrapped by an old key are unwrapped and wrapped again by the
    primary; the data itself is not read or rewritten. Keys already under the primary
    are skipped, so the command is resumable. Once it has run, the old keys can be
    destroyed, and with them what any backup of the key store held of deleted threads.
    """
    from ..crypto import rekey as rekey_store

    encrypted, primary = with_keys(options, keys_prefix, key_store)
    report = _over_threads(encrypted, "re-wrapping", rekey_store, dry_run, concurrency)
    if options.as_json:
        echo_json(
            {
                "threads": report.threads,
                "rewrapped": report.rewrapped,
                "already_primary": report.already_primary,
                "primary": primary,
                "dry_run": dry_run,
            }
        )
        return
    keys = plural(report.rewrapped, "data key")
    verb = "would re-wrap" if dry_run else "re-wrapped"
    prefix = "dry run: " if dry_run else ""
    options.out.line(
        f"{prefix}{verb} {keys} under key {primary!r}; "
        f"{report.already_primary} of {plural(report.threads, 'thread')} already under it"
    )


@click.command(
    cls=Command,
    epilog=EXIT_CODES,
    short_help="Seal every payload and log item still in clear, or sealed without its place.",
)
@store_options
@_ring_options
@click.option("--dry-run", is_flag=True, help="Count the values to seal; write nothing.")
def seal(
    options: StoreOptions,
    keys_prefix: str,
    key_store: str | None,
    dry_run: bool,
    concurrency: int,
) -> None:
    """Seal, in place, every payload and log item the store still holds in clear.

    Log items sealed by development builds before positions were bound are sealed again,
    bound to their positions; the counts include them.

    Run it once after turning encryption on for an existing store (workers may keep
    running): each thread gets its data key, and its clear values are replaced by sealed
    ones with the same content, so checkpoint ids, headers and log versions do not change.
    A value is replaced only if it still holds what was read, so a concurrent writer is
    never overwritten; sealed values are skipped, so the command is resumable.
    """
    from ..crypto import seal as seal_store

    encrypted, primary = with_keys(options, keys_prefix, key_store)
    report = _over_threads(encrypted, "sealing", seal_store, dry_run, concurrency)
    if options.as_json:
        echo_json(
            {
                "threads": report.threads,
                "threads_sealed": report.threads_sealed,
                "values": report.values,
                "primary": primary,
                "dry_run": dry_run,
            }
        )
        return
    verb = "would seal" if dry_run else "sealed"
    prefix = "dry run: " if dry_run else ""
    options.out.line(
        f"{prefix}{verb} {plural(report.values, 'value')} in "
        f"{plural(report.threads_sealed, 'thread')} of {report.threads}"
    )
