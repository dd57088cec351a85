"""`ynchain testnet`: a local consortium of node processes in one directory."""

from __future__ import annotations

from pathlib import Path

import click

from . import procs
from .errors import CliError
from .launch import bring_down, bring_up, describe, testnet_states
from .layout import (DEFAULT_BASE_PORT, DEFAULT_CHAIN_ID, NodeHome, Testnet, init_testnet,
                     load_testnet)
from .target import json_option, print_json, print_table

dir_option = click.option("--dir", "root", required=True,
                          type=click.Path(file_okay=False, path_type=Path),
                          help="Testnet directory.")


@click.group()
def testnet():
    """Create and run a local multi-node testnet."""


def print_states(testnet: Testnet, states: list[dict]) -> None:
    rows = [[s["name"], s["pid"], s["api"], s["height"], s["view"],
             ",".join(s["peers"]) or None, describe(s, testnet)] for s in states]
    print_table(["NAME", "PID", "API", "HEIGHT", "VIEW", "PEERS", "STATUS"], rows)


def print_first_steps(testnet: Testnet) -> None:
    first = testnet.nodes[0]
    key = testnet.accounts_dir / f"{testnet.genesis.accounts[0].name}.key" \
        if testnet.genesis.accounts else Path("KEYFILE")
    click.echo("\nsubmit a first transaction:")
    click.echo(f"  ynchain tx submit --node {first.api_url} --key {key} --wait "
               "kv put '{\"key\": \"hello\", \"value\": \"world\"}'")
    click.echo(f"  ynchain query state --node {first.api_url} kv hello")
    click.echo(f"stop it with: ynchain testnet down --dir {testnet.dir}")


def _refuse_if_running(root: Path) -> None:
    if not (root / "genesis.json").is_file():
        return
    try:
        running = [n.name for n in load_testnet(root).nodes if procs.running_pid(n)]
    except CliError:
        return       # an unreadable old genesis: nothing we could have started
    if running:
        raise CliError(f"the testnet in {root} is running ({', '.join(running)}); "
                       f"stop it first: ynchain testnet down --dir {root}")


@testnet.command("init")
@dir_option
@click.option("--nodes", type=int, default=4, show_default=True, help="Number of validators.")
@click.option("--base-port", type=int, default=DEFAULT_BASE_PORT, show_default=True,
              help="Node i listens on p2p BASE+2i and API BASE+2i+1.")
@click.option("--chain-id", default=DEFAULT_CHAIN_ID, show_default=True)
@click.option("--empty-blocks", "empty_blocks_ms", type=click.IntRange(0, 3_600_000), default=0,
              show_default=True, metavar="MS",
              help="Propose an empty block after MS idle milliseconds (a heartbeat; "
                   "0: blocks only carry transactions). With it, `up` also waits for a first block.")
@click.option("--force", is_flag=True, help="Replace an existing testnet (deletes its chain data).")
@json_option
def testnet_init(root, nodes, base_port, chain_id, empty_blocks_ms, force, as_json):
    """Write genesis, node configs and keys, and one account key per department."""
    if force:
        _refuse_if_running(root)
    net = init_testnet(root, nodes, base_port, chain_id, force, empty_blocks_ms=empty_blocks_ms)
    if as_json:
        print_json({"dir": str(net.dir), "chain_id": net.genesis.chain_id,
                    "nodes": [{"name": n.name, "org": n.org, "home": str(n.home),
                               "api": n.api_url, "p2p": f"{n.p2p[0]}:{n.p2p[1]}"}
                              for n in net.nodes],
                    "accounts": [str(p) for p in net.account_key_files()]})
        return
    click.echo(f"testnet {net.genesis.chain_id} with {len(net.nodes)} nodes written to {net.dir}")
    print_table(["NAME", "ORG", "P2P", "API"],
                [[n.name, n.org, f"{n.p2p[0]}:{n.p2p[1]}", n.api_url] for n in net.nodes])
    click.echo(f"account keys: {net.accounts_dir}/<department>.key")
    click.echo(f"start it with: ynchain testnet up --dir {net.dir}")


@testnet.command("up")
@dir_option
@click.option("--timeout", type=click.FloatRange(1), default=60.0, show_default=True,
              help="Seconds to wait for every node to be ready.")
def testnet_up(root, timeout):
    """Start every node in the background and wait until all are connected.

    Ready means each node answers /status and is connected to all its peers (the
    testnet proposes no empty blocks, so the height stays 0 until a first tx).
    """
    net = load_testnet(root)
    if all(procs.running_pid(n) for n in net.nodes):
        click.echo(f"the testnet in {net.dir} is already running")
        print_states(net, testnet_states(net))
        return
    started, states = bring_up(net, timeout)
    click.echo(f"started {', '.join(started)}; all {len(net.nodes)} nodes ready")
    print_states(net, states)
    print_first_steps(net)


@testnet.command("status")
@dir_option
@json_option
def testnet_status(root, as_json):
    """Show each node's process, height, view and peers."""
    net = load_testnet(root)
    states = testnet_states(net)
    if as_json:
        print_json({"dir": str(net.dir), "chain_id": net.genesis.chain_id, "nodes": states})
    else:
        print_states(net, states)


@testnet.command("down")
@dir_option
@click.option("--grace", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Seconds between SIGTERM and SIGKILL.")
def testnet_down(root, grace):
    """Stop every node (SIGTERM, then SIGKILL after --grace seconds)."""
    net = load_testnet(root)
    outcome = bring_down(net, grace)
    if not outcome:
        click.echo(f"no node of the testnet in {net.dir} was running")
    for node, how in outcome:
        click.echo(f"{node.name}: {how}")


def _node_and_pid(root: Path, name: str) -> tuple[NodeHome, int | None]:
    node = load_testnet(root).node(name)
    return node, procs.running_pid(node)


@testnet.command("kill")
@dir_option
@click.argument("name", metavar="NODE")
def testnet_kill(root, name):
    """Kill NODE at once (SIGKILL), as a crash would."""
    node, pid = _node_and_pid(root, name)
    if pid is None:
        raise CliError(f"{name} is not running")
    procs.stop_processes([(node, pid)], grace_s=0, hard=True)
    click.echo(f"{name}: killed (pid {pid})")


@testnet.command("start")
@dir_option
@click.argument("name", metavar="NODE")
def testnet_start(root, name):
    """Start one stopped NODE in the background."""
    node, pid = _node_and_pid(root, name)
    if pid is not None:
        click.echo(f"{name} is already running (pid {pid})")
        return
    procs.check_ports_free(node)
    click.echo(f"{name}: started (pid {procs.start_node(node)}, log {node.log_file})")
