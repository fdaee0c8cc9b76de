"""How the command prints: rich tables and colour on a terminal, plain text anywhere else.

    out = Output.for_stdout(force=None)
    out.table(["THREAD", "STEP"], [["essay", "2"]])
    out.line("verified 3 threads: ok", style="green")
    with progress_bar("verifying", force=None) as advance:
        advance(0, 3); ...; advance(3, 3)

Plain output (simple aligned columns, no ANSI codes, no box drawing) is what ``grep``,
``awk`` and a log file get: whenever stdout is not a terminal, ``NO_COLOR`` is set (to
anything but the empty string, as https://no-color.org says) or ``TERM=dumb``.
``FORCE_COLOR`` (or ``CliConfig(terminal=True)``) forces the terminal look. Progress bars
go to stderr and only when stderr is a terminal, so they never mix with data.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Generator, Sequence
from datetime import datetime, timezone
from typing import IO, Any

import click

__all__ = [
    "Output",
    "colour_disabled",
    "is_terminal",
    "plural",
    "progress_bar",
    "stamp",
    "terminal_forced",
]


def colour_disabled() -> bool:
    """Whether the user asked for no colour (``NO_COLOR``) or the terminal cannot show it."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM", "") == "dumb"


def terminal_forced() -> bool:
    """Whether ``FORCE_COLOR`` asks for the terminal look on a pipe (rich's convention)."""
    return bool(os.environ.get("FORCE_COLOR"))


def is_terminal(stream: IO[str], force: bool | None) -> bool:
    """Whether a person sees ``stream``: ``force``, else ``FORCE_COLOR``, else the stream."""
    if force is not None:
        return force
    if terminal_forced():
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 thread``, ``2 threads``; ``many`` for an irregular plural."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def stamp(value: datetime | None, *, precise: bool = False) -> str | None:
    """A time as the command prints it everywhere: ISO 8601 in UTC, ``2026-12-02T10:04:05Z``.

    ``precise`` keeps the microseconds (for two times within the same second).
    """
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    text = value.isoformat(timespec="microseconds" if precise else "seconds")
    return text.removesuffix("+00:00") + "Z"


def _console(stream: IO[str], *, colour: bool) -> Any:
    from rich.console import Console  # here: `--help` and plain output need not load rich

    return Console(
        file=stream,
        force_terminal=True,
        no_color=not colour,
        highlight=False,
        emoji=False,
        markup=False,
    )


class Output:
    """Stdout, fancy (rich) or plain; commands print through it, never with ANSI codes by hand."""

    def __init__(self, *, fancy: bool) -> None:
        self.fancy = fancy
        self._console: Any = None

    @classmethod
    def for_stdout(cls, *, force: bool | None = None) -> Output:
        """The output for this process's stdout: fancy only on a terminal without NO_COLOR."""
        return cls(fancy=is_terminal(sys.stdout, force) and not colour_disabled())

    @property
    def console(self) -> Any:
        """The rich console on stdout (fancy mode only)."""
        if self._console is None:
            self._console = _console(sys.stdout, colour=True)
        return self._console

    def line(self, text: str, *, style: str | None = None) -> None:
        """One line of text, in ``style`` (a rich style such as ``"bold red"``) when fancy."""
        if not self.fancy:
            click.echo(text)
            return
        from rich.text import Text

        self.console.print(Text(text, style=style or ""), soft_wrap=True)

    def table(
        self,
        headings: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        styles: Sequence[str | None] | None = None,
        cell_style: Callable[[int, str], str | None] | None = None,
    ) -> None:
        """Rows under headings: a rich table when fancy, aligned columns when plain.

        ``styles`` gives each column a style, ``cell_style(column, text)`` a cell its own
        (fancy only).
        """
        if not self.fancy:
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headings)]
            for row in [headings, *rows]:
                cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                click.echo("  ".join(cells).rstrip())
            return
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        for index, heading in enumerate(headings):
            style = styles[index] if styles is not None else None
            first = index == 0  # the id column folds (past a readable width); the rest never wrap
            longest = max((len(row[index]) for row in rows), default=0)
            table.add_column(
                heading,
                style=style or "",
                overflow="fold",
                no_wrap=not first,
                min_width=min(max(len(heading), longest), 24) if first else None,
            )
        for row in rows:
            cells = [
                Text(text, style=(cell_style(index, text) if cell_style else None) or "")
                for index, text in enumerate(row)
            ]
            table.add_row(*cells)
        self.console.print(table)

    def json(self, text: str) -> None:
        """A JSON document already formatted: highlighted when fancy."""
        if not self.fancy:
            click.echo(text)
            return
        from rich.json import JSON

        self.console.print(JSON(text, sort_keys=True, ensure_ascii=False), soft_wrap=True)


STATUS_STYLES = {"done": "green", "running": "cyan", "interrupted": "yellow", "error": "red"}
"""The colour of each checkpoint status in tables."""


@contextlib.contextmanager
def progress_bar(label: str, *, force: bool | None = None) -> Generator[Callable[[int, int], None]]:
    """A bar on stderr while the block runs; yields ``advance(done, total)``.

    Nothing is drawn when stderr is not a terminal (a pipe, a log file, a test), so a script
    sees only what the command prints. The bar disappears when the block ends.
    """
    if not is_terminal(sys.stderr, force) or os.environ.get("TERM", "") == "dumb":
        yield lambda done, total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_console(sys.stderr, colour=not colour_disabled()),
        transient=True,
    )
    task = bar.add_task(label, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield advance
