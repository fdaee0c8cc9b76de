"""The ``agent-persist`` command: inspect, move, migrate, verify and prune stored agent state.

    $ export AGENT_PERSIST_URL=sqlite:///agents.db
    $ agent-persist ls
    $ agent-persist migrate --dry-run
    $ agent-persist migrate --report migration.json
    $ agent-persist export --all -o backup/ && agent-persist import --url redis://... backup/

Every command takes ``--url`` (default: ``$AGENT_PERSIST_URL``), ``--namespace``,
``--schema`` (PostgreSQL), ``--prefix`` (Redis) and ``--json``. Exit codes: 0 success,
1 problems found or envelopes failed, 2 usage error, 3 store unavailable or bad URL.

Embedding it (or testing it) with a registry of your own kinds::

    from click.testing import CliRunner
    from agent_persist.cli import CliConfig, cli

    CliRunner().invoke(cli, ["migrate", "--url", url], obj=CliConfig(registry=registry))
"""

from __future__ import annotations

import click

from ._app import EXIT_FAILED, EXIT_OK, EXIT_STORE, EXIT_USAGE, CliConfig
from ._inspect import diff, history, ls, show
from ._maintain import prune, verify
from ._migrate import migrate
from ._quarantine import quarantine
from ._transfer import export, import_

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_STORE", "EXIT_USAGE", "CliConfig", "cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agent-persist")
@click.pass_context
def cli(ctx: click.Context) -> None:
    r"""Inspect, export, import, migrate, verify and prune agent-persist stores.

    \b
    Exit codes:
      0  success
      1  problems found, envelopes failed, or a thread/checkpoint not found
      2  usage error (bad option or argument)
      3  store unavailable, bad URL, missing extra, or store schema too new
      130  interrupted (Ctrl-C); migrate still writes its --report
    """
    if not isinstance(ctx.obj, CliConfig):
        ctx.obj = CliConfig()


for _command in (ls, show, history, diff, export, import_, migrate, verify, prune, quarantine):
    cli.add_command(_command)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="agent-persist")
