"""The one place where a command's error becomes one line on stderr and an exit code.

    @click.group(cls=OneLineErrors)
    def cli() -> None: ...

Every command runs inside :meth:`OneLineErrors.invoke`, so whatever escapes a command (an
``AgentPersistError`` raised on purpose, a raw driver error, a ``RecursionError`` on data
nested too deeply, a bug) prints ``agent-persist: <what went wrong>`` and exits with its
documented code; click's own usage errors keep click's handling (exit 2). Set
``AGENT_PERSIST_DEBUG=1`` to get the traceback instead, when the one line is not enough.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import click

from ..errors import (
    AgentPersistError,
    InvalidStoreURLError,
    MissingDependencyError,
    StoreSchemaError,
    StoreUnavailableError,
)
from ._app import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_STORE,
    URL_META,
    VerbatimEpilog,
    fail,
    one_line,
)
from ._urls import hide_password

__all__ = ["DEBUG_ENV", "OneLineErrors", "describe", "exit_code_for", "for_people"]

DEBUG_ENV = "AGENT_PERSIST_DEBUG"
"""Set to ``1`` to let an error's traceback through (for developers and bug reports)."""

_CLICK_OWN = (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)
_MAX_MESSAGE = 2000
"""Characters of an unexpected error's message kept on its one line."""


def exit_code_for(exc: AgentPersistError) -> int:
    """The exit code of an error: the store's fault (3) or the data's (1, not found too)."""
    if isinstance(
        exc,
        StoreUnavailableError | InvalidStoreURLError | MissingDependencyError | StoreSchemaError,
    ):
        return EXIT_STORE
    return EXIT_FAILED


def describe(exc: Exception) -> tuple[str, int]:
    """The one line and the exit code for an exception a command let through."""
    if isinstance(exc, AgentPersistError):
        return one_line(exc), exit_code_for(exc)
    if isinstance(exc, ConnectionError | TimeoutError):  # a driver error no store translated
        return f"store unavailable: {_named(exc)}", EXIT_STORE
    if isinstance(exc, RecursionError):
        return f"data nested too deeply to read or write ({_named(exc)})", EXIT_FAILED
    if isinstance(exc, MemoryError):
        return "out of memory (MemoryError)", EXIT_FAILED
    if isinstance(exc, OSError) and exc.strerror:  # a file that cannot be read or written
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return f"{where}{exc.strerror}", EXIT_FAILED
    hint = f" (set {DEBUG_ENV}=1 for the traceback)"
    return _named(exc) + hint, EXIT_FAILED


def _named(exc: BaseException) -> str:
    message = one_line(exc)
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "..."
    name = type(exc).__name__
    return name if message == name else f"{name}: {message}"


def for_people(message: str, code: int, url: Any) -> str:
    """``message``, naming the store URL the user typed when the store is at fault.

    The password is hidden in the URL, and :func:`~._app.fail` masks it anywhere else.
    """
    if not isinstance(url, str):
        return message
    shown = hide_password(url)
    if code != EXIT_STORE:
        return message
    typed = shown.partition("://")[2]
    for named in _URL.findall(message):  # the driver's spelling of it (postgresql+asyncpg://)
        if named.partition("://")[2] == typed:
            message = message.replace(named, shown)
    if shown not in message:
        message = f"{message} (store URL {shown})"
    return message


_URL = re.compile(r"[A-Za-z][\w+.-]*://[^\s,;)]+")
"""A URL inside an error message, up to the punctuation that ends it."""


def _stop_writing_stdout() -> None:
    """Point stdout at the null device, so flushing it at exit cannot raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's capture)
        pass


def _debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


class OneLineErrors(VerbatimEpilog, click.Group):
    """A command group whose commands never print a traceback (unless debugging)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; turn anything it raises into one line and an exit code."""
        try:
            return super().invoke(ctx)
        except _CLICK_OWN:
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", EXIT_INTERRUPTED) from None
        except BrokenPipeError:  # the reader went away (`agent-persist ls | head`): not an error
            _stop_writing_stdout()
            raise click.exceptions.Exit(0) from None
        except Exception as exc:
            if _debugging():
                raise
            message, code = describe(exc)
            raise fail(for_people(message, code, ctx.meta.get(URL_META)), code) from None
