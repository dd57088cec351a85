"""`python -m cli.demo --dir DIR` (what `make testnet` runs).

Creates the testnet if DIR has none, brings it up (or notes that it is running),
issues a fiscal receipt from the finance department, waits for its commit and
shows that every node holds the same block and the same state. The testnet is
left running.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from . import procs
from .errors import CliError, NodeError
from .group import YnCommand
from .client import NodeClient, path_segment
from .launch import bring_up
from .layout import DEFAULT_BASE_PORT, Testnet, init_testnet, load_testnet
from .submit import chain_head, load_key_file, outcome_problem, sign, submit
from .target import print_table

CATCH_UP_S = 15.0


def _account_key(net: Testnet) -> Path:
    finance = net.accounts_dir / "finance.key"
    if finance.is_file():
        return finance
    files = net.account_key_files()
    if not files:
        raise CliError(f"no account key files in {net.accounts_dir}")
    return files[0]


def _block_on(url: str, height: int) -> dict:
    """The block at `height` from one node, waiting briefly for it to catch up."""
    deadline = time.monotonic() + CATCH_UP_S
    with NodeClient(url) as client:
        while True:
            try:
                return client.get(f"/blocks/{height}")
            except NodeError as exc:
                if exc.status != 404 or time.monotonic() >= deadline:
                    raise
            time.sleep(0.1)


@click.command(cls=YnCommand)
@click.option("--dir", "root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Testnet directory (created if it holds no testnet).")
@click.option("--base-port", type=int, default=DEFAULT_BASE_PORT, show_default=True,
              help="First port of a new testnet.")
def demo(root, base_port):
    """Start a local 4-node testnet and commit a demo fiscal receipt."""
    if (root / "genesis.json").is_file():
        net = load_testnet(root)
        click.echo(f"using the testnet in {net.dir}")
    else:
        net = init_testnet(root, 4, base_port)
        click.echo(f"created a {len(net.nodes)}-node testnet in {net.dir}")
    if all(procs.running_pid(n) for n in net.nodes):
        click.echo("it is already running")
    else:
        started, _ = bring_up(net, timeout_s=60.0)
        click.echo(f"started {', '.join(started)}")

    key_file = _account_key(net)
    key = load_key_file(key_file)
    receipt_no = f"DEMO-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{os.urandom(2).hex()}"
    args = {"receipt_no": receipt_no, "amount_cents": 12_550, "payer": "Hotel Riverside Ltd."}
    first = net.nodes[0]
    with NodeClient(first.api_url) as client:
        chain_id, height = chain_head(client)
        tx = sign(key, chain_id, height, 500, "fiscal", "issue", args)
        click.echo(f"\nissuing fiscal receipt {receipt_no} from {key_file.stem} via {first.name}...")
        result = submit(client, tx, wait=True, timeout_s=30.0)
    problem = outcome_problem(result, True, 30.0)
    if problem:
        raise CliError(problem)
    block_height = result["height"]
    click.echo(f"tx {result['id']} committed in block {block_height}\n")

    rows, hashes = [], set()
    for node in net.nodes:
        block = _block_on(node.api_url, block_height)
        with NodeClient(node.api_url) as client:
            state = client.get(f"/state/fiscal/{path_segment(receipt_no)}")
        hashes.add(block.get("hash"))
        value = state.get("value")
        rows.append([node.name, block_height, block.get("hash"),
                     value.get("amount_cents") if isinstance(value, dict) else value])
    print_table(["NODE", "BLOCK", "HASH", "AMOUNT_CENTS"], rows)
    if len(hashes) != 1:
        raise CliError(f"the nodes disagree on block {block_height}: {sorted(map(str, hashes))}")
    click.echo(f"\nall {len(net.nodes)} nodes hold the same block and receipt.")

    ynchain = "ynchain" if os.environ.get("VIRTUAL_ENV") else ".venv/bin/ynchain"
    click.echo(f"""
the testnet keeps running. Try:
  {ynchain} testnet status --dir {root}
  {ynchain} query state --node {first.api_url} fiscal {receipt_no}
  {ynchain} tx submit --node {first.api_url} --key {net.accounts_dir / 'tax.key'} --wait \\
      fiscal reimburse '{{"receipt_no": "{receipt_no}", "claimant": "Hotel Riverside Ltd."}}'
  {ynchain} watch --node {first.api_url}
stop it with:
  {ynchain} testnet down --dir {root}""")


if __name__ == "__main__":
    demo.main(prog_name="python -m cli.demo")
