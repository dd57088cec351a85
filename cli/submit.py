"""Signing a transaction locally and submitting it (shared by `tx submit` and the demo)."""

from __future__ import annotations

import os
from typing import Any

from ledger.codec import DecodeError, check_plain
from ledger.crypto import KeyPair, load_key
from ledger.errors import KeyFileError
from ledger.tx import MAX_TX_BYTES, Transaction

from .errors import CliError, NodeError
from .client import NodeClient

MAX_WAIT_S = 60.0          # the API's cap on ?timeout=


def load_key_file(path: str | os.PathLike) -> KeyPair:
    try:
        return load_key(path)
    except KeyFileError as exc:
        raise CliError(str(exc)) from None


def random_nonce() -> int:
    # Random, not a counter: resubmitting the same command makes a new transaction.
    return int.from_bytes(os.urandom(8), "big")


def chain_head(client: NodeClient) -> tuple[str, int]:
    status = client.get("/status")
    try:
        chain_id, height = status["chain_id"], status["height"]
    except (TypeError, KeyError):
        raise NodeError(f"node at {client.url} sent a /status without chain_id/height") from None
    if not isinstance(chain_id, str) or type(height) is not int:
        raise NodeError(f"node at {client.url} sent a malformed /status")
    return chain_id, height


def sign(key: KeyPair, chain_id: str, height: int, valid_for: int,
         contract: str, method: str, args: Any) -> Transaction:
    try:
        check_plain(args, "args")
    except DecodeError as exc:
        raise CliError(str(exc)) from None
    tx = Transaction.create(key, chain_id, random_nonce(), height + valid_for, contract, method, args)
    if len(tx.encode()) > MAX_TX_BYTES:
        raise CliError(f"transaction is larger than {MAX_TX_BYTES} bytes")
    return tx


def submit(client: NodeClient, tx: Transaction, wait: bool, timeout_s: float) -> dict:
    """POST one tx; returns its result object from the node's answer."""
    path = f"/txs?wait=true&timeout={timeout_s:g}" if wait else "/txs"
    doc = client.post_json(path, {"tx": tx.encode().hex()},
                           timeout=(timeout_s + client.timeout) if wait else None)
    try:
        result = doc["results"][0]
        result["accepted"]
    except (TypeError, KeyError, IndexError):
        raise NodeError(f"node at {client.url} sent an unexpected answer to POST /txs") from None
    return result


def outcome_problem(result: dict, waited: bool, timeout_s: float) -> str | None:
    """Why a submission did not succeed (None if it did): refused, not committed in
    time, or committed with an error receipt."""
    tx_id = result.get("id")
    if not result.get("accepted"):
        return f"transaction {tx_id} refused: {result.get('reason') or 'no reason given'}"
    if not waited:
        return None
    if not result.get("committed"):
        return (f"transaction {tx_id} was accepted but not committed within {timeout_s:g}s; "
                f"check later with `ynchain tx status {tx_id}`")
    receipt = result.get("receipt") or {}
    if receipt.get("status") != "ok":
        return (f"transaction {tx_id} failed at height {result.get('height')}: "
                f"{receipt.get('status')}: {receipt.get('message')}")
    return None
