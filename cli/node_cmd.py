"""`ynchain node start`: run the daemon in the foreground; `ynchain node resync`:
rebuild a damaged or lost store, keeping the node's safety record; `ynchain node
doctor`: what is wrong with a node and what to do (cli.doctor)."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import CliError
from .target import json_option, print_json


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


@node.command("doctor")
@click.option("--home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Node home directory (holds config.toml).")
@click.option("--timeout", type=click.FloatRange(0.1, 120), default=3.0, show_default=True,
              help="Seconds to wait for each peer, API answer or handshake.")
@click.option("--sample", "sample_s", type=click.FloatRange(0.1, 600), default=2.0, show_default=True,
              help="Seconds to watch the heights to see whether the chain commits.")
@json_option
def node_doctor(home, timeout, sample_s, as_json):
    """Check a node and tell what is wrong and what to do about it.

    One line per check: ok, warn or fail, with a fix. Exit status 0 when all
    is ok, 1 with warnings, 2 with failures. Works whether the node runs or
    not: a running node is asked through its API (its store and p2p sessions
    are left alone); a stopped one has its store opened and its peers
    handshaken with under its own key.
    """
    from .doctor import Facts, exit_code, run_checks
    from .doctor.report import print_text, to_json

    facts = Facts(home, timeout_s=timeout, sample_s=sample_s)
    findings = run_checks(facts)
    if as_json:
        print_json(to_json(findings, {"node": facts.name, "home": str(home.resolve())}))
    else:
        print_text(findings, f"ynchain node doctor: {facts.name} ({home.resolve()})")
    raise click.exceptions.Exit(exit_code(findings))
