"""POST /txs: turning a request body into transactions, and admissions (and
commits) into the per-transaction results.

A body of the wrong shape is refused whole (400); one malformed element
inside a good batch only gets its own result {"accepted": false, "reason":
"malformed"} and the others still go in.
"""

from __future__ import annotations

from typing import Any, Callable

from ledger import codec
from ledger.errors import DecodeError
from ledger.tx import MAX_TX_BYTES, Transaction

from .http import ApiError, UNSUPPORTED_MEDIA_TYPE, bad_request, parse_hex, parse_json
from .facade import Admission, TxRecord
from .jsonview import receipt_to_json

MAX_TXS_PER_REQUEST = 10_000
MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")
JSON_TYPES = ("application/json", "")
MALFORMED = "malformed"

# One decoded element: a transaction, or why it could not be decoded.
Decoded = Transaction | DecodeError


def decode_submission(content_type: str, body: bytes) -> list[Decoded]:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in MSGPACK_TYPES:
        return _decode_msgpack(body)
    if media_type in JSON_TYPES:
        return _decode_json(body)
    raise ApiError(415, UNSUPPORTED_MEDIA_TYPE,
                   f"unsupported content type {media_type[:80]!r}: use application/json or application/msgpack")


def _decode_each(items: Any, shape_error: str, decode_one: Callable[[Any], Decoded]) -> list[Decoded]:
    if not isinstance(items, list):
        raise bad_request(shape_error)
    if len(items) > MAX_TXS_PER_REQUEST:
        raise bad_request(f"{len(items)} transactions in one request; at most {MAX_TXS_PER_REQUEST}")
    return [decode_one(item) for item in items]


def _decode_msgpack(body: bytes) -> list[Decoded]:
    try:
        records = codec.unpack(body)
    except DecodeError as exc:
        raise bad_request(f"request body is not valid msgpack: {exc}") from None
    return _decode_each(records, "msgpack body: expected an array of transaction records", _from_record)


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


def _decode_json(body: bytes) -> list[Decoded]:
    doc = parse_json(body)
    if not isinstance(doc, dict) or len(doc) != 1 or not ({"tx", "txs"} & doc.keys()):
        raise bad_request('JSON body: expected {"tx": "<hex>"} or {"txs": ["<hex>", ...]}')
    if "tx" in doc:
        return [_from_hex(doc["tx"])]
    return _decode_each(doc["txs"], 'JSON body: "txs" must be an array of hex strings', _from_hex)


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


def add_commits(results: list[dict[str, Any]], committed: dict[bytes, TxRecord]) -> None:
    """With wait=true: mark every accepted result committed or not."""
    for result in results:
        if not result["accepted"]:
            continue
        record = committed.get(bytes.fromhex(result["id"]))
        result["committed"] = record is not None
        if record is not None:
            result["height"] = record.height
            result["index"] = record.index
            result["receipt"] = receipt_to_json(record.receipt)
