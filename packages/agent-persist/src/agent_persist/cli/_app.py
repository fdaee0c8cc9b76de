"""What every command shares: store options, running a coroutine, output.

    @click.command()
    @store_options
    def ls(options: StoreOptions) -> None:
        rows = run(options, lambda store: store.list_threads())

Every command opens the store named by ``--url`` (or ``AGENT_PERSIST_URL``), runs one
coroutine against it and closes it, whatever happens. What a command lets escape becomes
one line on stderr and an exit code (:data:`EXIT_CODES`) in ``_errors``, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from ..errors import AgentPersistError, InvalidStoreURLError, StoreUnavailableError
from ..maintenance import DATA_ERRORS
from ..migrations import Registry
from ..stores import open_store
from ..stores.base import BaseStore
from ._output import Output, colour_disabled, is_terminal, stamp
from ._urls import hide_password, without_password

__all__ = [
    "DATA_ERRORS",
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "MAX_COUNT",
    "CliConfig",
    "Command",
    "StoreOptions",
    "echo_json",
    "fail",
    "iso",
    "one_line",
    "run",
    "shown",
    "store_options",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_INTERRUPTED = 130

EXIT_CODES = f"""Exit codes:
  {EXIT_OK}    success
  {EXIT_FAILED}    problems found, envelopes failed, a thread/checkpoint not found,
       or an unexpected error (named by its type)
  {EXIT_USAGE}    usage error (bad option or argument, a --plugin that does not load)
  {EXIT_STORE}    store unavailable, bad URL, missing extra, or store schema too new
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); migrate still writes its --report
Errors are one line on stderr; AGENT_PERSIST_DEBUG=1 shows the traceback.
Output is plain text when stdout is not a terminal or NO_COLOR is set;
progress bars go to stderr, only on a terminal."""
"""Every command's epilog, printed as written, so a script's author sees them where they look."""


class VerbatimEpilog:
    """Print the epilog line by line as written: click would rewrap the exit-code list.

    Click's no-rewrap marker (a backspace line) does the same, but it has been printed
    literally where click did not expect it; this needs no marker.
    """

    epilog: str | None

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The epilog, indented like the help text, its lines kept."""
        if not self.epilog:
            return
        formatter.write_paragraph()
        with formatter.indentation():
            for line in self.epilog.splitlines():
                formatter.write(f"{'':>{formatter.current_indent}}{line}".rstrip() + "\n")


class Command(VerbatimEpilog, click.Command):
    """Every ``agent-persist`` subcommand: its epilog is the exit codes, printed as written."""


MAX_COUNT = 2**31 - 1
"""The largest ``--limit`` or ``--keep-last`` (every store's counters hold it)."""

URL_ENV = "AGENT_PERSIST_URL"
URL_META = "agent_persist.url"
"""``ctx.meta`` key of the store URL, so an error message never shows its password."""

T = TypeVar("T")


@dataclass
class CliConfig:
    """What an embedding program (or a test) passes as click's ``obj``.

    ``CliRunner().invoke(cli, args, obj=CliConfig(registry=my_registry))`` runs the command
    with ``my_registry`` instead of :func:`~agent_persist.default_registry`, so kinds that
    no installed plugin registers can be migrated and verified.
    """

    registry: Registry | None = None
    store_options: dict[str, Any] = field(default_factory=dict[str, Any])
    """Extra keyword options for ``open_store`` (a codec, a pool size...)."""
    terminal: bool | None = None
    """Behave as on a terminal (tables, colour, progress bars on stderr, ``prune`` asking
    before it deletes) or not; ``None``: ask the streams. ``NO_COLOR`` still turns the
    colour and the tables off."""

    def get_registry(self, plugins: Sequence[str] = ()) -> Registry:
        """The injected registry (or the installed plugins'), plus the user's ``plugins``.

        ``plugins`` are ``MODULE[:ATTR]`` specs (see :mod:`agent_persist.cli._plugins`),
        added after those named by ``AGENT_PERSIST_PLUGINS``.
        """
        from ._plugins import load_registry

        return load_registry(self.registry, plugins)


@dataclass(frozen=True)
class StoreOptions:
    """The options every command takes: where the store is and how to print."""

    url: str
    namespace: str
    schema: str | None
    prefix: str | None
    as_json: bool
    config: CliConfig

    @property
    def out(self) -> Output:
        """Stdout for this command: fancy on a terminal, plain anywhere else."""
        return Output.for_stdout(force=self.config.terminal)

    def open(self, *, must_exist: bool = True) -> BaseStore:
        """Build the store; a SQLite file that does not exist is refused unless writing.

        Opening a mistyped SQLite path would otherwise create an empty database and report
        "no threads", which hides the mistake.
        """
        _check_url(self.url)
        if must_exist:
            _check_sqlite_file(self.url)
        options: dict[str, Any] = {"namespace": self.namespace, **self.config.store_options}
        if self.schema is not None:
            options["schema"] = self.schema
        if self.prefix is not None:
            options["prefix"] = self.prefix
        try:
            return open_store(self.url, **options)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, AgentPersistError):
                raise
            given = [f"--{name}" for name in ("schema", "prefix") if name in options]
            if isinstance(exc, TypeError) and given:  # an option this kind of store lacks
                problem = f"{' and '.join(given)} does not apply to this store ({exc})"
            else:
                problem = str(exc)
            raise fail(f"{problem} (store URL {hide_password(self.url)})", EXIT_USAGE) from exc


def _check_url(url: str) -> None:
    """Refuse a URL that cannot be split (a bad IPv6 host) or names a port beyond 65535.

    The stores would fail on them later with a raw ``ValueError`` or a driver's
    ``OverflowError``. The port is read as SQLAlchemy reads it: after the last ``@``, so a
    password may hold ``/`` or ``:``. SQLite paths are not looked at.
    """
    try:
        urlsplit(url)
    except ValueError as exc:
        raise InvalidStoreURLError(f"not a valid store URL {hide_password(url)!r}: {exc}") from exc
    found = _NETWORK_PORT.match(url)
    if found and int(found["port"]) > 65535:
        raise InvalidStoreURLError(
            f"not a valid store URL {hide_password(url)!r}: "
            f"port {found['port']} is out of range 0-65535"
        )


_NETWORK_PORT = re.compile(
    r"(?i)(?:postgres|postgresql|redis|rediss)(?:\+\w+)?://(?:[^@]*@)?"
    r"(?:\[[^\]/?]*\]|[^/:?\[]*):(?P<port>\d+)(?:[/?]|$)"
)


def _check_sqlite_file(url: str) -> None:
    if not url.lower().startswith("sqlite"):
        return
    import sqlalchemy as sa  # here, not at the top: `--help` need not load SQLAlchemy
    from sqlalchemy.exc import ArgumentError

    try:
        database = sa.make_url(url).database
    except ArgumentError as exc:
        raise InvalidStoreURLError(f"not a SQLite URL {url!r}: {exc}") from exc
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    if not Path(database).exists():
        raise StoreUnavailableError(f"no SQLite database at {database!r} (store URL {url})")


def store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: add ``--url``, ``--namespace``, ``--schema``, ``--prefix`` and ``--json``.

    The decorated function receives one :class:`StoreOptions` as ``options``, so every
    command spells and checks them the same way.
    """

    @click.option(
        "--url",
        envvar=URL_ENV,
        show_envvar=True,
        help="Store URL: sqlite:///path.db, postgresql://..., redis://..., memory://",
    )
    @click.option("--namespace", default="default", show_default=True, help="Tenant namespace.")
    @click.option("--schema", default=None, help="PostgreSQL schema holding the tables.")
    @click.option("--prefix", default=None, help="Redis key prefix.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @click.pass_context
    @functools.wraps(command)
    def wrapper(
        ctx: click.Context,
        url: str | None,
        namespace: str,
        schema: str | None,
        prefix: str | None,
        as_json: bool,
        **kwargs: Any,
    ) -> Any:
        if not url:
            raise click.UsageError(
                f"no store URL: pass --url or set {URL_ENV} (e.g. sqlite:///agents.db)", ctx
            )
        config = ctx.find_object(CliConfig) or CliConfig()
        ctx.meta[URL_META] = url
        options = StoreOptions(url, namespace, schema, prefix, as_json, config)
        return command(options=options, **kwargs)

    return wrapper


def one_line(exc: BaseException) -> str:
    """An error as one line: its message (ids in it are ``repr``-quoted) without line breaks."""
    message = str(exc) or type(exc).__name__
    return " ".join(message.splitlines())


def shown(text: str) -> str:
    """An id as printed for people: as is when printable, else quoted with its escapes."""
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def fail(message: str, code: int = EXIT_FAILED) -> click.exceptions.Exit:
    """Print ``message`` on stderr (one line, the store URL's password masked); return the exit.

    In red when stderr is a terminal and colour is not turned off.
    """
    ctx = click.get_current_context(silent=True)
    url = ctx.meta.get(URL_META) if ctx is not None else None
    if isinstance(url, str):
        message = without_password(message, url)
    line = f"agent-persist: {' '.join(message.splitlines())}"
    colour = _stderr_colour(ctx)
    click.echo(click.style(line, fg="red") if colour else line, err=True, color=colour)
    return click.exceptions.Exit(code)


def _stderr_colour(ctx: click.Context | None) -> bool:
    config = ctx.find_object(CliConfig) if ctx is not None else None
    force = config.terminal if config is not None else None
    return is_terminal(sys.stderr, force) and not colour_disabled()


def run(
    options: StoreOptions,
    work: Callable[[BaseStore], Awaitable[T]],
    *,
    must_exist: bool = True,
) -> T:
    """Open the store, run ``work`` on it and close it, whatever happens.

    Errors go through (``_errors`` prints them); an error while closing never hides the one
    that made the command fail.
    """

    async def main() -> T:
        store = options.open(must_exist=must_exist)
        try:
            await store.setup()
            result = await work(store)
        except BaseException:
            with contextlib.suppress(Exception):
                await store.close()
            raise
        await store.close()
        return result

    return asyncio.run(main())


def iso(value: datetime | None, *, precise: bool = False) -> str | None:
    """A datetime as every output prints it (``2026-12-02T10:04:05Z``), or ``None``.

    ``precise`` keeps the microseconds (``--json`` output is data).
    """
    return stamp(value, precise=precise)


def echo_json(value: Any) -> None:
    """Print one JSON document on stdout: indented, keys sorted, unicode kept."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
