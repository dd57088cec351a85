"""`ynchain node start`: run the daemon in the foreground."""

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
