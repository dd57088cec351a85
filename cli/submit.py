"""Signing a call locally and submitting it, through the Python SDK (ynchain.Client):
shared by `tx submit`, the contract commands and the demo, so the CLI is the
SDK's first user.  What comes back is the node's result object (what `--json`
prints), and `outcome_problem` turns it into the one line a person reads."""

from __future__ import annotations

import os
from typing import Any, Callable

import ynchain
from ledger.crypto import KeyPair, load_key
from ledger.errors import KeyFileError
from ynchain.protocol import MAX_WAIT_S  # noqa: F401  (the --timeout cap of the commands)
from ynchain.signing import build_tx, random_nonce  # noqa: F401  (bench and demo sign with these)

from .client import NodeClient
from .errors import CliError, NodeError
from .target import resolve_node_url

# A busy node (429/503) or a dropped connection is asked again this often: safe,
# the same signed bytes can never commit twice.
CLI_RETRIES = 2


def load_key_file(path: str | os.PathLike) -> KeyPair:
    try:
        return load_key(path)
    except KeyFileError as exc:
        raise CliError(str(exc)) from None


def chain_head(client: NodeClient) -> tuple[str, int]:
    status = client.get("/status")
    try:
        chain_id, height = status["chain_id"], status["height"]
    except (TypeError, KeyError):
        raise NodeError(f"node at {client.url} sent a /status without chain_id/height") from None
    if not isinstance(chain_id, str) or type(height) is not int:
        raise NodeError(f"node at {client.url} sent a malformed /status")
    return chain_id, height


def send_call(node_url: str | None, key: KeyPair, contract: str, method: str, args: Any, *,
              wait: bool, timeout_s: float, valid_for: int,
              prepare: Callable[[Any, str], Any] | None = None) -> dict:
    """Sign CONTRACT.METHOD(ARGS) with `key` for the node's chain and height and
    submit it; the node's result object for it (refusals included, see
    outcome_problem).  `prepare(args, chain_id)` may complete and check the
    args first (e.g. a payer hash salted with the chain id)."""
    try:
        url = resolve_node_url(node_url)
        with ynchain.Client(url, retries=CLI_RETRIES) as node:
            status = node.status()
            if prepare is not None:
                args = prepare(args, status.chain_id)
            tx = build_tx(key, status.chain_id, status.height, contract, method, args, valid_for)
            try:
                outcome = node.submit(tx, wait=wait, timeout=timeout_s, check=False)
            except ynchain.TxRefused as exc:
                return {"id": exc.tx_id or tx.id.hex(), "accepted": False, "reason": exc.reason}
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except ynchain.ApiError as exc:
        raise NodeError(str(exc), exc.status, exc.code) from None
    except ynchain.YnchainError as exc:
        raise NodeError(str(exc)) from None
    return result_json(outcome)


def result_json(outcome: ynchain.Submission | ynchain.TxResult) -> dict:
    """The API's JSON result object for an SDK outcome."""
    if isinstance(outcome, ynchain.Submission):
        return {"id": outcome.tx_id, "accepted": outcome.accepted, "reason": outcome.reason}
    doc: dict[str, Any] = {"id": outcome.tx_id, "accepted": True, "reason": None,
                           "committed": outcome.committed, "status": outcome.status}
    if outcome.committed:
        receipt = outcome.receipt
        assert receipt is not None
        doc.update(height=outcome.height, index=outcome.index,
                   receipt={"status": receipt.status, "code": receipt.code,
                            "message": receipt.message, "result": receipt.result})
    return doc


def outcome_problem(result: dict, waited: bool, timeout_s: float) -> str | None:
    """Why a submission did not succeed (None if it did): refused, not committed in
    time, or committed with an error receipt."""
    tx_id = result.get("id")
    if not result.get("accepted"):
        return f"transaction {tx_id} refused: {result.get('reason') or 'no reason given'}"
    if not waited:
        return None
    if not result.get("committed"):
        if result.get("status") not in (None, "pending"):
            return f"transaction {tx_id} was accepted but dropped by the node: {result['status']}"
        return (f"transaction {tx_id} was accepted but not committed within {timeout_s:g}s; "
                f"check later with `ynchain tx status {tx_id}`")
    receipt = result.get("receipt") or {}
    if receipt.get("status") != "ok":
        return (f"transaction {tx_id} failed at height {result.get('height')}: "
                f"{receipt.get('status')}: {receipt.get('message')}")
    return None
