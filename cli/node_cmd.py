"""`ynchain node start`: run the daemon in the foreground; `ynchain node resync`:
rebuild a damaged or lost store, keeping the node's safety record."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import CliError


@click.group()
def node():
    """Run a node."""


@node.command("start")
@click.option("--home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Node home directory (holds config.toml).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Override the log format of config.toml.")
def node_start(home, log_format):
    """Run the node until SIGINT/SIGTERM."""
    try:
        from node.main import run_node  # the daemon and its deps load only here
    except ImportError as exc:
        raise CliError(f"the node daemon cannot be loaded: {exc}") from None
    code = run_node(home, log_format)
    if code:
        raise click.exceptions.Exit(code)


@node.command("resync")
@click.option("--home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Node home directory (holds config.toml).")
def node_resync(home):
    """Rebuild a damaged or lost data directory: it is moved aside, and a fresh
    store holding only this node's kept safety record (its votes) is created.
    The node, started again, refetches the chain from its peers, checking
    every block against its certificate.  Run it with the node stopped."""
    try:
        from ledger.errors import LedgerError
        from node.config import ConfigError
        from node.main import resync_node
        from storage.errors import StoreError
    except ImportError as exc:
        raise CliError(f"the node daemon cannot be loaded: {exc}") from None
    try:
        moved = resync_node(home)
    except (ConfigError, LedgerError, StoreError) as exc:
        raise CliError(str(exc)) from None
    if moved is not None:
        click.echo(f"moved the old data directory to {moved}")
    click.echo(f"created a fresh store holding this node's safety record; start the node "
               f"(ynchain node start --home {home}) and it refetches the chain from its peers")
