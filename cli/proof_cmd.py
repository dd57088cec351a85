"""`ynchain proof ...` fetches a proof file from a node; `ynchain verify FILE
--genesis genesis.json` checks one offline, with no node and no network
(ledger.proof_file: the file carries the headers, the checkpoint signatures
and the Merkle paths; the genesis gives the validator keys)."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import click

from ledger.errors import LedgerError
from ledger.genesis import load_genesis
from ledger.proof_file import MAX_FILE_BYTES, ProofError, describe, verify
from ledger.proof_file import as_json as proof_json

from .client import path_segment
from .errors import CliError
from .target import client_for, json_option, node_option, print_json

OUTPUT = click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
                      metavar="FILE", help="Where to write the proof file.")


@click.group()
def proof():
    """Fetch a proof file that anyone can check offline with `ynchain verify`.

    Proofs are anchored by stable checkpoints (every few blocks): the newest
    blocks are provable once the next checkpoint is reached.
    """


def _fetch(node_url: str | None, path: str, output: str, as_json: bool) -> None:
    with client_for(node_url) as client:
        answer = client.get(path)
    try:
        data = base64.b64decode(answer["proof"], validate=True)
        height, kind = int(answer["height"]), answer["kind"]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise CliError("the node answered something that is not a proof file") from None
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}") from None
    if as_json:
        print_json({"file": output, "kind": kind, "height": height, "bytes": len(data)})
    else:
        click.echo(f"wrote {output}: a {kind} proof at height {height:,} ({len(data):,} bytes); "
                   f"check it with: ynchain verify {output} --genesis genesis.json")


@proof.command("tx")
@click.argument("tx_id")
@OUTPUT
@node_option
@json_option
def proof_tx(tx_id: str, output: str, node_url: str | None, as_json: bool):
    """Prove a transaction, its receipt and its block."""
    _fetch(node_url, f"/proofs/tx/{path_segment(tx_id)}", output, as_json)


@proof.command("state")
@click.argument("contract")
@click.argument("key", metavar="TABLE/KEY")
@click.option("--height", type=click.IntRange(1), default=None,
              help="Prove at this height (default: the newest stable checkpoint).")
@OUTPUT
@node_option
@json_option
def proof_state(contract: str, key: str, height: int | None, output: str, node_url: str | None,
                as_json: bool):
    """Prove what a state key holds, or that it is absent (e.g. fiscal receipt/CODE-NUMBER)."""
    query = "" if height is None else f"?height={height}"
    path = "/".join(path_segment(part) for part in key.split("/"))
    _fetch(node_url, f"/proofs/state/{path_segment(contract)}/{path}{query}", output, as_json)


@proof.command("receipt")
@click.argument("code")
@click.argument("number")
@OUTPUT
@node_option
@json_option
def proof_receipt(code: str, number: str, output: str, node_url: str | None, as_json: bool):
    """Prove a fiscal receipt: issued (and by which transaction), voided or not, and its
    reimbursement status as of the newest stable checkpoint."""
    _fetch(node_url, f"/proofs/receipt/{path_segment(code)}/{path_segment(number)}", output, as_json)


@click.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--genesis", "genesis_path", required=True, type=click.Path(dir_okay=False),
              help="The chain's genesis.json (its validator keys are what the proof is checked against).")
@json_option
def verify_cmd(file: str, genesis_path: str, as_json: bool):
    """Check a proof file offline and say what it proves; exit 1 if it does not hold."""
    try:
        genesis = load_genesis(genesis_path)
    except LedgerError as exc:
        raise CliError(str(exc)) from None
    try:
        with open(file, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)     # verify refuses anything longer
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror}") from None
    try:
        proved = verify(data, genesis)
    except ProofError as exc:
        if as_json:
            print_json({"valid": False, "reason": str(exc)})
            raise SystemExit(1) from None
        raise CliError(f"the proof does not hold: {exc}") from None
    if as_json:
        print_json(proof_json(proved))
    else:
        click.echo(describe(proved))

