"""JSON rendering of ledger objects, shared by the HTTP API and the CLI.

Binary ids, keys, hashes and signatures become lowercase hex strings.  Plain
msgpack values (contract args, receipt results, state values) keep their JSON
shape, with three rules so that every value has a JSON form:

  * bytes              -> {"hex": "<lowercase hex>"}
  * map keys           -> str as is, int as its decimal text, bytes as hex text
  * nan / +inf / -inf  -> the strings "NaN", "Infinity", "-Infinity"

The rendering is one-way (for people and scripts reading results); the wire
form of a transaction is always its msgpack encoding.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ledger.block import Block, BlockHeader
from ledger.certificate import CommitCertificate
from ledger.receipt import Receipt
from ledger.tx import Transaction

_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def plain_to_json(value: Any) -> Any:
    """Render a plain msgpack value (see the module docstring for the rules)."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is bytes:
        return {"hex": value.hex()}
    if kind is float:
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else _NON_FINITE[value]
    if kind is list or kind is tuple:
        return [plain_to_json(item) for item in value]
    if kind is dict:
        return {_key_to_json(k): plain_to_json(v) for k, v in value.items()}
    raise TypeError(f"{kind.__name__} is not plain msgpack data")


def _key_to_json(key: Any) -> str:
    if type(key) is bytes:
        return key.hex()
    return str(key)


def tx_to_json(tx: Transaction) -> dict[str, Any]:
    return {
        "chain_id": tx.chain_id,
        "sender": tx.sender.hex(),
        "nonce": tx.nonce,
        "valid_until": tx.valid_until,
        "contract": tx.contract,
        "method": tx.method,
        "args": plain_to_json(tx.args),
        "signature": tx.signature.hex(),
    }


def receipt_to_json(receipt: Receipt) -> dict[str, Any]:
    return {
        "status": receipt.status_name,
        "code": receipt.status,
        "message": receipt.message,
        "result": plain_to_json(receipt.result),
    }


def header_to_json(header: BlockHeader) -> dict[str, Any]:
    return {
        "chain_id": header.chain_id,
        "height": header.height,
        "view": header.view,
        "prev_hash": header.prev_hash.hex(),
        "tx_root": header.tx_root.hex(),
        "state_root": header.state_root.hex(),
        "receipt_root": header.receipt_root.hex(),
        "proposer": header.proposer,
        "timestamp_ms": header.timestamp_ms,
    }


def certificate_to_json(cert: CommitCertificate, validator_names: Sequence[str]) -> dict[str, Any]:
    """`validator_names`: the set of the certificate's height, in index order
    (a vote names its validator by index in that set)."""
    return {
        "view": cert.view,
        "height": cert.height,
        "digest": cert.digest.hex(),
        "votes": [
            {
                "validator": vote.validator,
                "name": validator_names[vote.validator] if vote.validator < len(validator_names) else None,
                "signature": vote.signature.hex(),
            }
            for vote in cert.votes
        ],
    }


def block_to_json(block: Block, cert: CommitCertificate, validator_names: Sequence[str]) -> dict[str, Any]:
    return {
        "height": block.height,
        "hash": block.hash.hex(),
        "header": header_to_json(block.header),
        "txs": [tx.id.hex() for tx in block.txs],
        "certificate": certificate_to_json(cert, validator_names),
    }


def block_summary_to_json(header: BlockHeader, tx_count: int) -> dict[str, Any]:
    """The short form of a block: streamed to subscribers, listed by GET /blocks."""
    return {
        "height": header.height,
        "hash": header.hash.hex(),
        "txs": tx_count,
        "proposer": header.proposer,
        "timestamp_ms": header.timestamp_ms,
    }


def committed_tx_to_json(tx: Transaction, height: int, index: int, receipt: Receipt) -> dict[str, Any]:
    return {
        "id": tx.id.hex(),
        "status": "committed",
        "height": height,
        "index": index,
        "receipt": receipt_to_json(receipt),
        "tx": tx_to_json(tx),
    }
