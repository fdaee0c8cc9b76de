"""The ``agent-persist`` command: inspect, move, migrate, verify and prune stored agent state.

    $ export AGENT_PERSIST_URL=sqlite:///agents.db
    $ agent-persist ls
    $ agent-persist migrate --dry-run
    $ agent-persist migrate --report migration.json --plugin myapp.persist:registry
    $ agent-persist export --all -o backup/ && agent-persist import --url redis://... backup/
    $ agent-persist audit backfill --namespace audit --dry-run
    $ agent-persist rekey --dry-run      # encrypted stores: re-wrap data keys after a rotation
    $ agent-persist seal                 # turning encryption on: seal what is still in clear

Every command takes ``--url`` (default: ``$AGENT_PERSIST_URL``), ``--namespace``,
``--schema`` (PostgreSQL), ``--prefix`` (Redis) and ``--json``; ``verify`` and ``migrate``
take ``--plugin MODULE[:ATTR]`` (and read ``$AGENT_PERSIST_PLUGINS``) for a program's own
kinds. Exit codes: 0 success, 1 problems found, envelopes failed or an unexpected error,
2 usage error, 3 store unavailable or bad URL, 130 interrupted. Every error is one line on
stderr (``AGENT_PERSIST_DEBUG=1`` shows the traceback), naming the store URL with its
password hidden. On a terminal, tables and colour come from rich and long commands draw a
progress bar on stderr; piped, or with ``NO_COLOR`` set, the output is plain text
(``FORCE_COLOR=1`` or ``CliConfig(terminal=True)`` forces the terminal look).

Embedding it (or testing it) with a registry of your own kinds::

    from click.testing import CliRunner
    from agent_persist.cli import CliConfig, cli

    CliRunner().invoke(cli, ["migrate", "--url", url], obj=CliConfig(registry=registry))
"""

from __future__ import annotations

import click

from ._app import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STORE,
    EXIT_USAGE,
    URL_ENV,
    CliConfig,
)
from ._audit import audit
from ._diff import diff
from ._errors import OneLineErrors
from ._import import import_
from ._inspect import history, ls, show
from ._maintain import prune
from ._migrate import migrate
from ._plugins import PLUGINS_ENV
from ._quarantine import quarantine
from ._rekey import rekey, seal
from ._transfer import export
from ._verify import verify

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "CliConfig",
    "cli",
    "main",
]


@click.group(
    cls=OneLineErrors,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES,
)
@click.version_option(package_name="agent-persist")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Inspect, export, import, migrate, verify and prune agent-persist stores; audit tables."""
    if not isinstance(ctx.obj, CliConfig):
        ctx.obj = CliConfig()


cli.help = f"""{cli.help}

Every command takes --url (or ${URL_ENV}), --namespace, --schema (PostgreSQL), --prefix
(Redis) and --json. Your own kinds: verify and migrate take --plugin MODULE[:ATTR]
(repeatable) and read ${PLUGINS_ENV} (comma-separated). ATTR (default: registry, else
register) names a Registry, a function taking a registry to register into, or one
returning a Registry."""

for _command in (
    ls,
    show,
    history,
    diff,
    export,
    import_,
    migrate,
    verify,
    prune,
    quarantine,
    audit,
    rekey,
    seal,
):
    cli.add_command(_command)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="agent-persist")
