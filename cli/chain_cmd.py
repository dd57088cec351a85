"""Commands that talk to one node's HTTP API: status, tx, query, watch."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timezone

import click

from .errors import CliError
from .client import path_segment
from .submit import MAX_WAIT_S, load_key_file, outcome_problem, send_call
from .target import (client_for, json_option, node_option, print_fields, print_json, print_table,
                     sync_text)

_TX_ID = re.compile(r"[0-9a-fA-F]{64}")


def _json_arg(ctx, param, value):
    if value is None:
        return {}
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None


def _tx_id(ctx, param, value):
    if not _TX_ID.fullmatch(value):
        raise click.BadParameter("expected a transaction id of 64 hex digits")
    return value.lower()


def _block_ref(ctx, param, value):
    if value == "latest" or (value.isdigit() and int(value) >= 1):
        return value
    raise click.BadParameter("expected a height >= 1 or 'latest'")


def show(node_url: str | None, path: str, as_json: bool, render: Callable[[dict], None]) -> None:
    """GET `path` and print the answer: as is with --json, else through `render`."""
    doc = client_for(node_url).get(path)
    if as_json:
        print_json(doc)
    elif not isinstance(doc, dict):
        raise CliError(f"unexpected answer to GET {path}: expected a JSON object")
    else:
        render(doc)


def _receipt_fields(receipt: dict) -> list[tuple[str, object]]:
    return [("receipt", receipt.get("status")), ("message", receipt.get("message") or None),
            ("result", receipt.get("result"))]


def _when(timestamp_ms) -> str:
    if type(timestamp_ms) is not int:
        return "-"
    return datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


@click.command()
@node_option
@json_option
def status(node_url, as_json):
    """Show a node's chain id, role, height, view, primary, peers and mempool size."""
    show(node_url, "/status", as_json, _print_status)


def _print_status(doc: dict) -> None:
    keys = ("chain_id", "node", "role", "height", "last_block_hash", "view", "primary", "peers",
            "mempool", "syncing")
    fields = [(k, ", ".join(doc[k]) if k == "peers" and isinstance(doc.get(k), list)
               else doc.get(k)) for k in keys]
    if isinstance(doc.get("sync"), dict):       # block sync progress, with an estimate
        fields[-1] = ("syncing", sync_text(doc["sync"]))
    print_fields(fields)
    for k in doc.get("key_expiry") or []:
        left = k.get("seconds_left")
        when = "expired" if not isinstance(left, int) or left <= 0 else f"expires in {left / 86400:.1f} days"
        click.echo(f"warning: the key of account {k.get('account')} {when} ({k.get('valid_until')}); "
                   "renew it (gov propose update-account) or rotate it (gov rotate-key)")


@click.group()
def tx():
    """Submit transactions and look them up."""


@tx.command("submit")
@node_option
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="Key file of the sending account.")
@click.argument("contract")
@click.argument("method")
@click.argument("args", metavar="[ARGS_JSON]", required=False, callback=_json_arg)
@click.option("--wait", is_flag=True, help="Wait until the transaction is committed.")
@click.option("--timeout", type=click.FloatRange(0.1, MAX_WAIT_S), default=10.0,
              show_default=True, help="Seconds to wait for the commit (with --wait).")
@click.option("--valid-for", type=click.IntRange(1), default=500, show_default=True,
              help="Blocks from the current height during which the tx may be committed.")
@json_option
def tx_submit(node_url, key_file, contract, method, args, wait, timeout, valid_for, as_json):
    """Sign CONTRACT.METHOD(ARGS_JSON) with --key and submit it.

    Prints the transaction id; with --wait, also its receipt. Exits 1 if the node
    refuses the transaction, it is not committed in time, or it fails.

    \b
    Example:
      ynchain tx submit --key accounts/finance.key kv put '{"key": "a", "value": 1}'
    """
    key = load_key_file(key_file)
    result = send_call(node_url, key, contract, method, {} if args is None else args,
                       wait=wait, timeout_s=timeout, valid_for=valid_for)
    problem = outcome_problem(result, wait, timeout)
    if as_json:
        print_json(result)
    else:
        click.echo(result["id"])
        if wait and result.get("committed"):
            receipt = result.get("receipt") or {}
            print_fields([("height", result.get("height")), ("index", result.get("index")),
                          *_receipt_fields(receipt)])
    if problem:
        raise CliError(problem)


@tx.command("status")
@click.argument("tx_id", metavar="TXID", callback=_tx_id)
@node_option
@json_option
def tx_status(tx_id, node_url, as_json):
    """Show whether transaction TXID is committed (and its receipt) or pending."""
    show(node_url, f"/txs/{tx_id}", as_json, _print_tx)


def _print_tx(doc: dict) -> None:
    pairs = [("id", doc.get("id")), ("status", doc.get("status"))]
    if doc.get("status") == "committed":
        receipt, body = doc.get("receipt") or {}, doc.get("tx") or {}
        pairs += [("height", doc.get("height")), ("index", doc.get("index")),
                  ("call", f"{body.get('contract')}.{body.get('method')}"),
                  ("args", body.get("args")), ("sender", body.get("sender")),
                  *_receipt_fields(receipt)]
    print_fields(pairs)


@click.group()
def query():
    """Read blocks, contract state, validators and the consortium configuration."""


@query.command("block")
@click.argument("ref", metavar="HEIGHT|latest", callback=_block_ref)
@node_option
@json_option
def query_block(ref, node_url, as_json):
    """Show a committed block, its transaction ids and its commit certificate."""
    show(node_url, f"/blocks/{ref}", as_json, _print_block)


def _print_block(doc: dict) -> None:
    header, cert = doc.get("header") or {}, doc.get("certificate") or {}
    txs = doc.get("txs") or []
    print_fields([("height", doc.get("height")), ("hash", doc.get("hash")),
                  ("prev_hash", header.get("prev_hash")), ("proposer", header.get("proposer") or None),
                  ("time", _when(header.get("timestamp_ms"))), ("view", header.get("view")),
                  ("state_root", header.get("state_root")), ("txs", len(txs)),
                  ("signed by", ", ".join(str(v.get("name")) for v in cert.get("votes") or []))])
    for tx_id in txs:
        click.echo(f"  {tx_id}")


@query.command("state")
@click.argument("contract")
@click.argument("key")
@node_option
@json_option
def query_state(contract, key, node_url, as_json):
    """Show the value stored under KEY by CONTRACT (e.g. `fiscal R-0001`)."""
    show(node_url, f"/state/{path_segment(contract)}/{path_segment(key)}", as_json, _print_state)


def _print_state(doc: dict) -> None:
    print_fields([("contract", doc.get("contract")), ("key", doc.get("key")),
                  ("height", doc.get("height")), ("value", json.dumps(doc.get("value")))])


@query.command("config")
@click.option("--height", type=click.IntRange(0), default=None,
              help="As in force after this block (default: the last committed one).")
@node_option
@json_option
def query_config(height, node_url, as_json):
    """Show the consortium's configuration: organisations, accounts, nodes,
    governance policy, consensus parameters and the validator-set history."""
    show(node_url, "/config" + (f"?height={height}" if height is not None else ""), as_json, _print_config)


def _print_config(doc: dict) -> None:
    governance = doc.get("governance") or {}
    rule = governance.get("threshold") or {}
    print_fields([("chain_id", doc.get("chain_id")), ("height", doc.get("height")),
                  ("governance", f"{'more than' if rule.get('strict') else 'at least'} "
                                 f"{rule.get('num')}/{rule.get('den')} of "
                                 f"{len(governance.get('voting_orgs') or [])} voting organisations "
                                 f"({governance.get('needed')} needed); proposals live "
                                 f"{governance.get('proposal_lifetime_blocks')} blocks"),
                  ("pending boundary", doc.get("pending_boundary"))])
    click.echo("")
    print_table(["ORGANISATION", "STATUS", "VOTES", "NAME"],
                [[o.get("name"), o.get("status"), "yes" if o.get("voting") else "no", o.get("display_name")]
                 for o in doc.get("organisations") or []])
    click.echo("")
    print_table(["NODE", "ORG", "ROLE", "P2P", "API", "PUBLIC KEY"],
                [[n.get("name"), n.get("org"), n.get("role"), n.get("p2p"), n.get("api"),
                  str(n.get("public_key"))[:16] + "..."] for n in doc.get("nodes") or []])
    click.echo("")
    print_table(["ACCOUNT", "ORG", "ROLES", "STATUS", "VALID UNTIL", "PUBLIC KEY"],
                [[a.get("name"), a.get("org"), ",".join(a.get("roles") or []), a.get("status"),
                  a.get("valid_until"), str(a.get("public_key"))[:16] + "..."]
                 for a in doc.get("accounts") or []])
    click.echo("")
    print_table(["EPOCH", "FROM HEIGHT", "VALIDATORS"],
                [[e.get("number"), (e.get("start") or 0) + 1,
                  ", ".join(v.get("name") for v in e.get("validators") or [])]
                 for e in doc.get("epochs") or []])


@query.command("validators")
@node_option
@json_option
def query_validators(node_url, as_json):
    """List the validators, whether the node is connected to each, and the primary."""
    show(node_url, "/validators", as_json, _print_validators)


def _print_validators(doc: dict) -> None:
    rows = [[v.get("name"), v.get("org"), v.get("p2p"), v.get("api"),
             "yes" if v.get("connected") else "no", "*" if v.get("primary") else ""]
            for v in (doc or {}).get("validators") or []]
    print_table(["NAME", "ORG", "P2P", "API", "CONNECTED", "PRIMARY"], rows)


@click.command()
@node_option
@click.option("--from", "from_height", type=click.IntRange(1), default=None,
              help="Replay committed blocks from this height first.")
@json_option
def watch(node_url, from_height, as_json):
    """Print one line per committed block until Ctrl-C."""
    client = client_for(node_url)
    path = "/events/blocks" + (f"?from={from_height}" if from_height else "")
    try:
        # Three missed 15 s heartbeats: the node is gone.
        for event, data in client.events(path, idle_timeout=45.0):
            if event != "block" or not isinstance(data, dict):
                continue
            if as_json:
                click.echo(json.dumps(data))
            else:
                click.echo(f"height {data.get('height')}  hash {data.get('hash')}  "
                           f"txs {data.get('txs')}  proposer {data.get('proposer') or '-'}  "
                           f"{_when(data.get('timestamp_ms'))}")
    except KeyboardInterrupt:
        return
