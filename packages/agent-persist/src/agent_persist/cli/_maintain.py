"""``prune``: drop old checkpoints with the store's own retention.

agent-persist prune --url sqlite:///agents.db --all --older-than 30d --keep-last 5
"""

from __future__ import annotations

import re
from datetime import timedelta

import click

from ..stores.base import BaseStore
from ._app import EXIT_CODES, MAX_COUNT, StoreOptions, echo_json, run, shown, store_options

__all__ = ["parse_duration", "prune"]


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1d12h``, ``90m``, ``2w``, ``45s`` as a timedelta."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30d, 12h, 1d12h, 90m)")
    total = timedelta()
    try:
        for number, unit in parts:
            total += timedelta(**{_UNITS[unit]: float(number)})
    except OverflowError:
        raise ValueError(f"not a duration: {text!r} is longer than a timedelta holds") from None
    return total


class Duration(click.ParamType):  # pyright: ignore[reportMissingTypeArgument] (click 8.1/8.5)
    """A click parameter type for :func:`parse_duration`."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        """Parse the option's text, or fail with click's usage error."""
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command(epilog=EXIT_CODES)
@store_options
@click.argument("thread_ids", metavar="[THREAD]...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Prune every thread of the namespace.")
@click.option(
    "--older-than", type=Duration(), default=None, help="Drop checkpoints older than 30d, 12h..."
)
@click.option(
    "--keep-last",
    type=click.IntRange(min=1, max=MAX_COUNT),
    default=None,
    help="Keep the newest N checkpoints.",
)
def prune(
    options: StoreOptions,
    thread_ids: tuple[str, ...],
    every: bool,
    older_than: timedelta | None,
    keep_last: int | None,
) -> None:
    """Delete old checkpoints (never a thread's head) with the store's own prune.

    With both options, a checkpoint goes when it is outside the newest N and older than the
    age. Logs keep what the remaining checkpoints still see.
    """
    if bool(thread_ids) == every:
        raise click.UsageError("name one or more THREADs, or pass --all")
    if older_than is None and keep_last is None:
        raise click.UsageError("pass --older-than, --keep-last or both")

    async def work(store: BaseStore) -> dict[str, int]:
        ids = list(thread_ids)
        if every:
            ids = [t.thread_id for t in await store.list_threads() if t.head_id is not None]
        removed: dict[str, int] = {}
        for thread_id in ids:
            removed[thread_id] = await store.prune(
                thread_id, keep_last=keep_last, older_than=older_than
            )
        return removed

    removed = run(options, work)
    total = sum(removed.values())
    if options.as_json:
        echo_json({"removed": removed, "total": total})
        return
    for thread_id, count in removed.items():
        if count:
            click.echo(f"{shown(thread_id)}: {count} removed")
    click.echo(f"pruned {total} checkpoints in {len(removed)} threads")
