"""POST /txs: turning a request body into transactions, and admissions (and
commits) into the per-transaction results.

A body of the wrong shape is refused whole (400); one malformed element
inside a good batch only gets its own result {"accepted": false, "reason":
"malformed"} and the others still go in.  A batch the mempool refused whole
for want of room (every element "mempool_full") is answered 429 with
Retry-After instead: nothing in it needs a per-element answer, and clients
and proxies know what 429 means.
"""

from __future__ import annotations

from typing import Any

import trio

from ledger import admission, codec
from ledger.errors import DecodeError
from ledger.tx import MAX_TX_BYTES, Transaction

from .http import ApiError, UNSUPPORTED_MEDIA_TYPE, bad_request, parse_hex, parse_json
from .facade import Admission, TxCommitted, TxOutcome
from .jsonview import receipt_to_json

MAX_TXS_PER_REQUEST = 10_000
MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")
JSON_TYPES = ("application/json", "")
MALFORMED = admission.MALFORMED
RETRY_AFTER_S = 1              # a full mempool drains at block pace
DECODE_CHUNK = 1024            # elements decoded between two yields to the event loop

# One decoded element: a transaction, or why it could not be decoded.
Decoded = Transaction | DecodeError


async def decode_submission(content_type: str, body: bytes) -> list[Decoded]:
    """The body's transactions, decoded DECODE_CHUNK at a time with a yield to
    the event loop in between (10,000 of them take ~0.15 s)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in MSGPACK_TYPES:
        items, decode_one = _msgpack_items(body), _from_record
    elif media_type in JSON_TYPES:
        items, decode_one = _json_items(body), _from_hex
    else:
        raise ApiError(415, UNSUPPORTED_MEDIA_TYPE,
                       f"unsupported content type {media_type[:80]!r}: use application/json or application/msgpack")
    decoded: list[Decoded] = []
    for start in range(0, len(items), DECODE_CHUNK):
        if start:
            await trio.sleep(0)
        decoded += [decode_one(item) for item in items[start:start + DECODE_CHUNK]]
    return decoded


def _checked_batch(items: Any, shape_error: str) -> list[Any]:
    if not isinstance(items, list):
        raise bad_request(shape_error)
    if len(items) > MAX_TXS_PER_REQUEST:
        raise bad_request(f"{len(items)} transactions in one request; at most {MAX_TXS_PER_REQUEST}")
    return items


def _msgpack_items(body: bytes) -> list[Any]:
    try:
        records = codec.unpack(body)
    except DecodeError as exc:
        raise bad_request(f"request body is not valid msgpack: {exc}") from None
    return _checked_batch(records, "msgpack body: expected an array of transaction records")


def _from_record(rec: Any) -> Decoded:
    try:
        tx = Transaction.from_record(rec)
    except DecodeError as exc:
        return exc
    # Transaction.decode bounds the encoded size; records bypass it, so bound the
    # signed bytes instead (computed anyway for the id).
    if len(tx.signing_bytes()) > MAX_TX_BYTES:
        return DecodeError(f"transaction larger than {MAX_TX_BYTES} bytes")
    return tx


def _json_items(body: bytes) -> list[Any]:
    doc = parse_json(body)
    if not isinstance(doc, dict) or len(doc) != 1 or not ({"tx", "txs"} & doc.keys()):
        raise bad_request('JSON body: expected {"tx": "<hex>"} or {"txs": ["<hex>", ...]}')
    if "tx" in doc:
        return [doc["tx"]]
    return _checked_batch(doc["txs"], 'JSON body: "txs" must be an array of hex strings')


def _from_hex(item: Any) -> Decoded:
    try:
        return Transaction.decode(parse_hex(item, "tx"))
    except ValueError as exc:
        return DecodeError(str(exc))
    except DecodeError as exc:
        return exc


def submission_results(decoded: list[Decoded], admissions: list[Admission]) -> list[dict[str, Any]]:
    """Merge the facade's admissions (one per decoded transaction, in order)
    back into the order of the request."""
    results: list[dict[str, Any]] = []
    answers = iter(admissions)
    for item in decoded:
        if isinstance(item, DecodeError):
            results.append({"id": None, "accepted": False, "reason": MALFORMED, "detail": str(item)})
        else:
            adm = next(answers)
            results.append({"id": adm.tx_id.hex(), "accepted": adm.accepted, "reason": adm.reason})
    return results


def all_refused_for_now(decoded: list[Decoded], admissions: list[Admission]) -> bool:
    """True when every element was a transaction the mempool refused only
    because it is full (a transient refusal: the same batch may go in later)."""
    return (bool(admissions) and len(admissions) == len(decoded)
            and all(adm.reason == admission.MEMPOOL_FULL for adm in admissions))


def add_outcomes(results: list[dict[str, Any]], outcomes: dict[bytes, TxOutcome]) -> None:
    """With wait=true: mark every accepted result committed (with where and
    its receipt) or not, and say why when the node dropped it."""
    for result in results:
        if not result["accepted"]:
            continue
        outcome = outcomes.get(bytes.fromhex(result["id"]))
        result["committed"] = isinstance(outcome, TxCommitted)
        if isinstance(outcome, TxCommitted):
            result["status"] = "committed"
            result["height"] = outcome.height
            result["index"] = outcome.index
            result["receipt"] = receipt_to_json(outcome.receipt)
        elif outcome is not None:
            result["status"] = outcome.reason
        else:
            result["status"] = "pending"
