"""What every command shares: store options, running a coroutine, errors, output.

    @click.command()
    @store_options
    def ls(options: StoreOptions) -> None:
        rows = run(options, lambda store: store.list_threads())

Every command opens the store named by ``--url`` (or ``AGENT_PERSIST_URL``), runs one
coroutine against it and closes it. Errors agent-persist raises on purpose become one line
on stderr and an exit code (:data:`EXIT_CODES`), never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import (
    AgentPersistError,
    InvalidStoreURLError,
    MissingDependencyError,
    StoreSchemaError,
    StoreUnavailableError,
)
from ..migrations import Registry, default_registry
from ..stores import open_store
from ..stores.base import BaseStore

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "CliConfig",
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

EXIT_CODES = f"""\b
Exit codes:
  {EXIT_OK}  success
  {EXIT_FAILED}  problems found, envelopes failed, or a thread/checkpoint not found
  {EXIT_USAGE}  usage error (bad option or argument)
  {EXIT_STORE}  store unavailable, bad URL, missing extra, or store schema too new
  130  interrupted (Ctrl-C); migrate still writes its --report"""
"""Appended to every command's help, so a script's author sees them where they look."""

URL_ENV = "AGENT_PERSIST_URL"

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

    def get_registry(self) -> Registry:
        """The injected registry, or the one the installed plugins fill."""
        return self.registry if self.registry is not None else default_registry()


@dataclass(frozen=True)
class StoreOptions:
    """The options every command takes: where the store is and how to print."""

    url: str
    namespace: str
    schema: str | None
    prefix: str | None
    as_json: bool
    config: CliConfig

    def open(self, *, must_exist: bool = True) -> BaseStore:
        """Build the store; a SQLite file that does not exist is refused unless writing.

        Opening a mistyped SQLite path would otherwise create an empty database and report
        "no threads", which hides the mistake.
        """
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
            raise click.UsageError(f"{exc} (store URL {_shown(self.url)})") from exc


def _shown(url: str) -> str:
    """The URL without its credentials, for messages."""
    return url.split("@")[-1] if "@" in url else url


def _check_sqlite_file(url: str) -> None:
    if not url.lower().startswith("sqlite"):
        return
    import sqlalchemy as sa  # here, not at the top: `--help` need not load SQLAlchemy
    from sqlalchemy.exc import ArgumentError

    try:
        database = sa.make_url(url).database
    except ArgumentError as exc:
        raise InvalidStoreURLError(f"not a SQLite URL: {url!r}: {exc}") from exc
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    if not Path(database).exists():
        raise StoreUnavailableError(f"no SQLite database at {database!r} (from {url!r})")


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
        options = StoreOptions(url, namespace, schema, prefix, as_json, config)
        return command(options=options, **kwargs)

    return wrapper


def exit_code_for(exc: AgentPersistError) -> int:
    """The exit code of an error: the store's fault (3) or the data's (1, not found too)."""
    if isinstance(
        exc,
        StoreUnavailableError | InvalidStoreURLError | MissingDependencyError | StoreSchemaError,
    ):
        return EXIT_STORE
    return EXIT_FAILED


def one_line(exc: BaseException) -> str:
    """An error as one line: its message (ids in it are ``repr``-quoted) without line breaks."""
    message = str(exc) or type(exc).__name__
    return " ".join(message.splitlines())


def shown(text: str) -> str:
    """An id as printed for people: as is when printable, else quoted with its escapes."""
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def fail(message: str, code: int = EXIT_FAILED) -> click.exceptions.Exit:
    """Print ``message`` on stderr and return the exit to raise."""
    click.echo(f"agent-persist: {message}", err=True)
    return click.exceptions.Exit(code)


def run(
    options: StoreOptions,
    work: Callable[[BaseStore], Awaitable[T]],
    *,
    must_exist: bool = True,
) -> T:
    """Open the store, run ``work`` on it, close it; errors become a line and an exit code."""

    async def main() -> T:
        store = options.open(must_exist=must_exist)
        try:
            await store.setup()
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except AgentPersistError as exc:
        raise fail(one_line(exc), exit_code_for(exc)) from None
    except ConnectionError as exc:  # a driver error no store translated
        raise fail(one_line(exc), EXIT_STORE) from None
    except OSError as exc:  # a report or export file that cannot be written
        raise fail(f"{exc.filename or ''}: {exc.strerror or one_line(exc)}") from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def iso(value: datetime | None) -> str | None:
    """A datetime as ISO 8601 text (UTC), or ``None``."""
    return None if value is None else value.isoformat()


def echo_json(value: Any) -> None:
    """Print one JSON document on stdout: indented, keys sorted, unicode kept."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def stderr_is_tty() -> bool:
    """Whether a progress bar on stderr would be seen by a person."""
    return sys.stderr.isatty()
