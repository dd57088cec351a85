"""`ynchain bench --catch-up BLOCKS`: how fast a crashed node catches up.

The last node is killed (SIGKILL), the others commit BLOCKS blocks of --batch
transactions each (one msgpack batch per block, waited for), then the node is
started again; the clock runs from its first /status answer until its height
reaches the others'.  The figure is blocks (and txs) per second of block sync:
fetch, certificate check, re-execution and a synced write per block.
"""

from __future__ import annotations

import os
import time

import click

from . import procs
from .bench import Workload, make_batches, sign_all, time_left
from .client import NodeClient
from .errors import CliError, NodeError
from .layout import Testnet
from .submit import chain_head, load_key_file

POLL_S = 0.05
CATCH_UP_TIMEOUT_S = 600.0
START_TIMEOUT_S = 30.0


def _height(url: str) -> int | None:
    try:
        with NodeClient(url, timeout=2.0) as client:
            return chain_head(client)[1]
    except NodeError:
        return None


def _eta(done: int, total: int, elapsed: float) -> str:
    left = time_left(done, total, elapsed, None)
    return "" if left is None else f", about {left:.0f}s left"


def measure_catch_up(net: Testnet, blocks: int, txs_per_block: int, progress: bool) -> dict:
    if len(net.nodes) < 4:
        raise CliError("--catch-up needs at least 4 nodes (the others must keep committing)")
    victim = net.nodes[-1]
    pid = procs.running_pid(victim)
    if pid is None:
        raise CliError(f"{victim.name} is not running")
    procs.stop_processes([(victim, pid)], grace_s=0, hard=True)
    url = net.nodes[0].api_url
    load = Workload("kv", seeds=[load_key_file(p).seed for p in net.account_key_files("writer")])
    with NodeClient(url, timeout=60.0) as client:
        chain_id, height = chain_head(client)
        signed = sign_all(load, chain_id, height + net.genesis.consensus.tx_validity_window,
                          os.urandom(4).hex(), blocks * txs_per_block)
        began = time.monotonic()
        for k, batch in enumerate(make_batches(signed, txs_per_block, 1)):
            client.post_msgpack("/txs?wait=true&timeout=30", batch.body)
            if progress:
                click.echo(f"\rcommitting while {victim.name} is down: {k + 1}/{blocks}"
                           f"{_eta(k + 1, blocks, time.monotonic() - began)}\033[K", err=True, nl=False)
        target = chain_head(client)[1]
    if progress:
        click.echo("", err=True)
    procs.start_node(victim)
    deadline = time.monotonic() + START_TIMEOUT_S
    while (start_height := _height(victim.api_url)) is None:
        if time.monotonic() > deadline:
            raise CliError(f"{victim.name} did not answer within {START_TIMEOUT_S:g}s of its restart:\n"
                           f"{procs.log_tail(victim)}")
        time.sleep(POLL_S)
    started = time.monotonic()
    while (h := _height(victim.api_url) or 0) < target:
        if time.monotonic() - started > CATCH_UP_TIMEOUT_S:
            raise CliError(f"{victim.name} reached only height {h} of {target} "
                           f"in {CATCH_UP_TIMEOUT_S:g}s")
        if progress:
            click.echo(f"\r{victim.name} catching up: {h}/{target}"
                       f"{_eta(h - start_height, target - start_height, time.monotonic() - started)}\033[K",
                       err=True, nl=False)
        time.sleep(POLL_S)
    took = max(time.monotonic() - started, 1e-9)
    if progress:
        click.echo("", err=True)
    synced = target - start_height
    return {"node": victim.name, "blocks": synced, "txs_per_block": txs_per_block,
            "seconds": round(took, 3), "blocks_per_s": round(synced / took, 1),
            "txs_per_s": round(synced * txs_per_block / took, 1)}
