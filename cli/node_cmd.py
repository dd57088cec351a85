"""`ynchain node init`: write a node's config.toml; `ynchain node start`: run the
daemon in the foreground; `ynchain node resync`: rebuild a damaged or lost
store, keeping the node's safety record; `ynchain node doctor`: what is wrong
with a node and what to do (cli.doctor)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ledger.errors import GenesisError
from ledger.genesis import load_genesis, parse_address

from .errors import CliError
from .submit import load_key_file
from .target import json_option, print_json


@click.group()
def node():
    """Set up and run a node."""


def _listen(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_address(value, param.name)
    except GenesisError as exc:
        raise click.BadParameter(str(exc).removeprefix("genesis.")) from None


@node.command("init")
@click.option("--home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Node home directory (created if missing).")
@click.option("--genesis", "genesis_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The chain's genesis file (every node uses the same bytes).")
@click.option("--name", required=True, help="This node's name in the genesis.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="This node's key file, made here with `ynchain keys gen`  [default: HOME/node.key]")
@click.option("--p2p-listen", callback=_listen, default=None, metavar="HOST:PORT",
              help="Where to accept peers  [default: 0.0.0.0 and the port of its genesis p2p address]")
@click.option("--api-listen", callback=_listen, default=None, metavar="HOST:PORT",
              help="Where to serve the API  [default: 127.0.0.1 and the port of its genesis api address; "
                   "use 0.0.0.0:PORT to serve other hosts]")
@click.option("--force", is_flag=True, help="Replace an existing config.toml.")
def node_init(home, genesis_path, name, key_path, p2p_listen, api_listen, force):
    """Write HOME/config.toml for node NAME of the genesis, whose key file exists
    here: the key must be the one the genesis gives NAME.  A node governance
    adds later (`gov propose add-node`) is not in the genesis: give its
    --p2p-listen and --api-listen; it starts as an observer that syncs."""
    from node.config import render_config
    try:
        genesis = load_genesis(genesis_path)
    except GenesisError as exc:
        raise CliError(str(exc)) from None
    entry = genesis.node_by_name(name)
    if entry is None and not (p2p_listen and api_listen):
        raise CliError(f"{genesis_path}: no node {name!r} (nodes: {', '.join(n.name for n in genesis.nodes)}); "
                       "for a node governance adds later, give --p2p-listen and --api-listen")
    key_path = key_path or home / "node.key"
    if not key_path.exists():
        raise CliError(f"{key_path}: no key file; create it on this host with "
                       f"`ynchain keys gen --out {key_path}` and send only its public key to the coordinator")
    key = load_key_file(key_path)
    if entry is None:
        if genesis.config.key_user(key.public_key) is not None:
            raise CliError(f"{key_path} holds the key of genesis {genesis.config.key_user(key.public_key)}; "
                           f"a new node needs a key of its own")
    elif key.public_key != entry.public_key:
        raise CliError(f"{key_path} holds key {key.public_key.hex()[:16]}..., but the genesis gives node "
                       f"{name} key {entry.public_key.hex()[:16]}...; use the key file made for {name}")
    config = home / "config.toml"
    if config.exists() and not force:
        raise CliError(f"{config} exists; pass --force to replace it")
    home = home.resolve()
    text = render_config(name, p2p_listen or ("0.0.0.0", entry.p2p[1]), api_listen or ("127.0.0.1", entry.api[1]),
                         genesis=os.path.relpath(genesis_path.resolve(), home),
                         key_file=os.path.relpath(key_path.resolve(), home))
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(text)
    except OSError as exc:
        raise CliError(f"cannot write {config}: {exc.strerror}") from None
    if entry is None:
        click.echo(f"wrote {config} for {name}, a node the genesis does not list: it starts as an observer "
                   f"that syncs, and its peers accept it once `gov propose add-node {name} ...` has passed; "
                   f"start it with `ynchain node start --home {home}`")
    else:
        click.echo(f"wrote {config} for {entry.role} {name} of {entry.org}; start it with "
                   f"`ynchain node start --home {home}`")


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
