"""The OpenAPI 3.1 document of the node's HTTP API (served at /openapi.json).

tests/node/test_api.py keeps it true: every route the app serves is here,
every path here is served, and the tests' responses validate against the
schemas below.
"""

from __future__ import annotations

from typing import Any

from ledger.consortium import NODE_ROLES

from .http import DEFAULT_MAX_BODY_BYTES, ERROR_CODES, MAX_INT_PARAM
from .txs import MAX_TXS_PER_REQUEST, RETRY_AFTER_S

HEX = {"type": "string", "pattern": "^([0-9a-f]{2})*$", "description": "lowercase hex"}
HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "32 bytes, lowercase hex"}
UINT = {"type": "integer", "minimum": 0}
HEIGHT_PARAM = {"type": "integer", "minimum": 1, "maximum": MAX_INT_PARAM}
# What a submitted element may be: anything.  An element that is not the hex of
# an encoded transaction gets its own result {"accepted": false, "reason":
# "malformed"} and the rest of the batch still goes in, so no element makes the
# request itself invalid.
SUBMITTED_TX = {"description": "lowercase hex of Transaction.encode(); anything else is "
                               "answered per element as malformed"}
TX_STATUSES = ["committed", "pending", "expired"]
PLAIN = {
    "description": (
        "A plain msgpack value rendered as JSON: nil, bool, int, float and str as is; "
        'arrays as arrays; bytes as {"hex": "<lowercase hex>"}; map keys as text '
        "(ints in decimal, bytes in hex); non-finite floats as \"NaN\", \"Infinity\", \"-Infinity\"."),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(properties) if required is None else required,
            "properties": properties, **extra}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_COMMON_ERRORS = {
    "405": _error("Wrong method for this path (code method_not_allowed; Allow header lists the right one)"),
    "500": _error("Unexpected failure; logged on the node (code internal)"),
}


def _proof_paths() -> dict[str, Any]:
    """node/api/proofs.py; each answer is one proof file."""
    text = {"type": "string"}
    ok = _json(_ref("ProofFile"), "The proof file and the height it proves at")
    e409 = ("Not provable yet (above the newest stable checkpoint), or any more (the value changed "
            "since the height asked for; the node keeps the newest values only; a state height below "
            "the newest stable checkpoint, whose state tree is pruned), or not by this node "
            "(it keeps no checkpoint at a validator-set change the proof must walk through: it synced "
            "across it) (code not_provable)")
    return {
        "/proofs/tx/{tx_id}": {"get": {
            "summary": "Proof that a transaction and its receipt are in a certified block",
            "parameters": [{"name": "tx_id", "in": "path", "required": True, "schema": text}],
            "responses": _responses(ok, e404="No committed transaction has this id", e409=e409),
        }},
        "/proofs/state/{contract}/{key}": {"get": {
            "summary": "Proof of what a state key (TABLE/KEY, may contain '/') holds, or that it is absent",
            "parameters": [
                {"name": "contract", "in": "path", "required": True, "schema": text},
                {"name": "key", "in": "path", "required": True, "schema": text},
                {"name": "height", "in": "query",
                 "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INT_PARAM},
                 "description": "prove at this height (default: the newest stable checkpoint)"}],
            "responses": _responses(ok, e400="height is not an integer from 0 to 2^63-1",
                                    e404="No such contract, a key without TABLE/, or a height not committed",
                                    e409=e409),
        }},
        "/proofs/receipt/{code}/{number}": {"get": {
            "summary": "Proof of a fiscal receipt as of the newest stable checkpoint: issued (by which "
                       "transaction), voided or not, reimbursement status; or that it does not exist",
            "parameters": [{"name": "code", "in": "path", "required": True, "schema": text},
                           {"name": "number", "in": "path", "required": True, "schema": text}],
            "responses": _responses(ok, e409=e409),
        }},
    }


def _responses(ok: dict[str, Any], **errors: str) -> dict[str, Any]:
    return {"200": ok, **{code.removeprefix("e"): _error(text) for code, text in errors.items()},
            **_COMMON_ERRORS}


def _schemas() -> dict[str, Any]:
    receipt = _obj({
        "status": {"type": "string", "description": '"ok" or the error status name (ledger.receipt)'},
        "code": {"type": "integer", "minimum": 0, "maximum": 255, "description": "0 is ok"},
        "message": {"type": "string"},
        "result": PLAIN,
    })
    tx = _obj({
        "chain_id": {"type": "string"}, "sender": HASH, "nonce": UINT, "valid_until": UINT,
        "contract": {"type": "string"}, "method": {"type": "string"}, "args": PLAIN,
        "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
    })
    vote = _obj({"validator": UINT, "name": {"type": ["string", "null"]},
                 "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}})
    validator = _obj({
        "name": {"type": "string"}, "org": {"type": ["string", "null"]}, "public_key": HASH,
        "p2p": {"type": ["string", "null"]}, "api": {"type": ["string", "null"]},
        "connected": {"type": "boolean"}, "primary": {"type": "boolean"},
        "last_error": {"type": ["string", "null"],
                       "description": "why this node's last attempt to connect to it failed "
                                      "(validators this node dials); null when connected or unknown"},
    })
    return {
        "ProofFile": _obj({
            "kind": {"enum": ["tx", "state", "receipt"]},
            "height": {**UINT, "description": "the height proved at (a tx: its block)"},
            "bytes": UINT,
            "proof": {"type": "string", "contentEncoding": "base64",
                      "description": "the proof file (ledger/proof_file.py); check it offline with "
                                     "`ynchain verify FILE --genesis genesis.json`"}}),
        "Error": _obj({"error": {"type": "string"},
                       "code": {"type": "string", "enum": [*ERROR_CODES, "http_error"]}}),
        "Status": _obj({
            "chain_id": {"type": "string"}, "node": {"type": "string"},
            "role": {"type": "string", "enum": list(NODE_ROLES),
                     "description": "validator (votes) or observer (follows the chain, never votes)"},
            "height": UINT, "last_block_hash": HEX,
            "view": {**UINT, "description": "the current view (an observer: the last block's)"},
            "primary": {"type": ["string", "null"],
                        "description": "name of the current primary (an observer: the proposer of the "
                                       "last block, its best guess; null if unknown)"},
            "peers": {"type": "array", "items": {"type": "string"},
                      "description": "names of connected nodes (validators and observers)"},
            "mempool": UINT, "syncing": {"type": "boolean"},
            "genesis_hash": HASH,
            "time": {"type": "number", "description": "the node's clock, Unix seconds"},
            "sync": {"oneOf": [{"type": "null"}, _obj({
                "target": UINT, "height": UINT,
                "rate": {"type": ["number", "null"], "description": "blocks per second"},
                "eta_s": {"type": ["number", "null"], "description": "seconds left at that rate"},
            })], "description": "block sync progress while syncing, else null"},
            "key_expiry": {"type": "array", "description": "keys of this node's organisation that "
                                                           "expire soon (or did)",
                           "items": _obj({"account": {"type": "string"}, "valid_until": {"type": "string"},
                                          "seconds_left": {"type": "integer"}})},
        }, required=["chain_id", "node", "role", "height", "last_block_hash", "view", "primary", "peers",
                     "mempool", "syncing", "genesis_hash", "time", "sync"]),
        "SubmitJson": {
            "oneOf": [
                _obj({"tx": SUBMITTED_TX}, additionalProperties=False),
                _obj({"txs": {"type": "array", "items": SUBMITTED_TX, "maxItems": MAX_TXS_PER_REQUEST}},
                     additionalProperties=False),
            ],
            "description": "hex of Transaction.encode(): one, or a batch",
        },
        "SubmitMsgpack": {
            "type": "array", "maxItems": MAX_TXS_PER_REQUEST,
            "description": "msgpack array of transaction records (Transaction.to_record(): "
                           "[chain_id, sender, nonce, valid_until, contract, method, args, signature])",
        },
        "SubmitResult": _obj({
            "id": {"type": ["string", "null"], "description": "null when the element was malformed"},
            "accepted": {"type": "boolean"},
            "reason": {"type": ["string", "null"],
                       "description": 'why refused: "malformed", or the mempool\'s reason '
                                      '("duplicate", "bad_signature", ...)'},
            "detail": {"type": "string", "description": "what was malformed (malformed elements only)"},
            "committed": {"type": "boolean", "description": "wait=true, accepted only"},
            "status": {"type": "string", "enum": TX_STATUSES,
                       "description": 'wait=true, accepted only: "committed", "pending" (the wait '
                                      'ended first) or why the node dropped it ("expired": the chain '
                                      'passed its valid_until before it was committed)'},
            "height": UINT, "index": UINT, "receipt": _ref("Receipt"),
        }, required=["id", "accepted", "reason"]),
        "SubmitResponse": _obj({"results": {"type": "array", "items": _ref("SubmitResult"),
                                            "description": "one per element, in request order"}}),
        "Receipt": receipt,
        "Transaction": tx,
        "CommittedTx": _obj({"id": HASH, "status": {"const": "committed"}, "height": UINT,
                             "index": UINT, "receipt": _ref("Receipt"), "tx": _ref("Transaction")}),
        "PendingTx": _obj({"id": HASH, "status": {"const": "pending"}}),
        "DroppedTx": _obj({"id": HASH, "status": {"type": "string", "enum": TX_STATUSES[2:],
                                                  "description": "why the node dropped it"}},
                          description="admitted by this node, then dropped without being committed "
                                      "(remembered for the most recent drops only)"),
        "BlockHeader": _obj({
            "chain_id": {"type": "string"}, "height": UINT, "view": UINT, "prev_hash": HASH,
            "tx_root": HASH, "state_root": HASH, "receipt_root": HASH,
            "proposer": {"type": "string", "description": 'empty for a null block'},
            "timestamp_ms": UINT,
        }),
        "Vote": vote,
        "Certificate": _obj({"view": UINT, "height": UINT, "digest": HASH,
                             "votes": {"type": "array", "items": _ref("Vote")}}),
        "Block": _obj({"height": UINT, "hash": HASH, "header": _ref("BlockHeader"),
                       "txs": {"type": "array", "items": HASH, "description": "transaction ids"},
                       "certificate": _ref("Certificate")}),
        "StateEntry": _obj({"contract": {"type": "string"}, "key": {"type": "string"},
                            "value": PLAIN, "height": UINT}),
        "Validator": validator,
        "Validators": _obj({"validators": {"type": "array", "items": _ref("Validator"),
                                           "description": "in genesis order"}}),
        "BlockEvent": _obj({"height": UINT, "hash": HASH, "txs": UINT,
                            "proposer": {"type": "string"}, "timestamp_ms": UINT,
                            "tx_ids": {"type": "array", "items": HASH,
                                       "description": "the block's tx ids, with ?tx_ids=true"}},
                           required=["height", "hash", "txs", "proposer", "timestamp_ms"]),
    }


def _paths() -> dict[str, Any]:
    tx_id = {"name": "tx_id", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "64 hex digits; any other text names no transaction (404)"}
    height = {"name": "height", "in": "path", "required": True, "schema": HEIGHT_PARAM}
    return {
        "/status": {"get": {
            "summary": "The node's view of the chain",
            "responses": _responses(_json(_ref("Status"), "Node status")),
        }},
        "/txs": {"post": {
            "summary": "Submit one or many signed transactions",
            "description": (
                f"At most {MAX_TXS_PER_REQUEST} transactions and {DEFAULT_MAX_BODY_BYTES} body bytes "
                "(the node's default) per request. A malformed element gets its own result "
                '{"accepted": false, "reason": "malformed", "id": null}; the others still go in.'),
            "parameters": [
                {"name": "wait", "in": "query", "schema": {"type": "boolean", "default": False},
                 "description": "wait until the accepted transactions commit (or the timeout)"},
                {"name": "timeout", "in": "query",
                 "schema": {"type": "number", "minimum": 0, "maximum": 60, "default": 10},
                 "description": "seconds to wait with wait=true"},
            ],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("SubmitJson")},
                "application/msgpack": {"schema": _ref("SubmitMsgpack")},
            }},
            "responses": {
                **_responses(
                    _json(_ref("SubmitResponse"), "One result per element"),
                    e400="Body not JSON/msgpack, wrong shape, too many transactions or bad query parameter",
                    e413="Body larger than the node's limit",
                    e415="Content type neither application/json nor application/msgpack"),
                "429": {**_error("The mempool is full: every transaction of the batch was refused "
                                 "for want of room (code mempool_full); send it again later. A batch "
                                 "only partly refused gets 200 with per-element results."),
                        "headers": {"Retry-After": {
                            "description": f"seconds to wait before retrying ({RETRY_AFTER_S})",
                            "schema": {"type": "integer", "minimum": 0}}}},
            },
        }},
        "/txs/{tx_id}": {"get": {
            "summary": "A transaction by id: committed (with receipt), pending in the mempool, "
                       "or dropped by this node (e.g. expired)",
            "parameters": [tx_id],
            "responses": _responses(
                _json({"oneOf": [_ref("CommittedTx"), _ref("PendingTx"), _ref("DroppedTx")]},
                      "Committed, pending or dropped"),
                e404="Not a transaction this node knows (or not 64 hex digits)"),
        }},
        "/blocks/latest": {"get": {
            "summary": "The last committed block",
            "responses": _responses(_json(_ref("Block"), "Block with its commit certificate"),
                                    e404="No block committed yet"),
        }},
        "/blocks/{height}": {"get": {
            "summary": "A committed block by height",
            "parameters": [height],
            "responses": _responses(_json(_ref("Block"), "Block with its commit certificate"),
                                    e400=f"Height not an integer from 1 to {MAX_INT_PARAM}",
                                    e404="No block at that height"),
        }},
        "/state/{contract}/{key}": {"get": {
            "summary": "One key of a contract's state (the key may contain '/')",
            "parameters": [
                {"name": "contract", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "responses": _responses(_json(_ref("StateEntry"), "Value and the height it was read at"),
                                    e400="Contract or key too long", e404="Key absent"),
        }},
        **_proof_paths(),
        "/validators": {"get": {
            "summary": "The validator set and who is connected / primary",
            "responses": _responses(_json(_ref("Validators"), "Validators in genesis order")),
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics",
            "responses": _responses({
                "description": "Prometheus text exposition format 0.0.4",
                "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}},
            }),
        }},
        "/events/blocks": {"get": {
            "summary": "Committed blocks as server-sent events",
            "description": (
                "Each block is `id: <height>`, `event: block`, `data: <BlockEvent JSON>`. "
                "A comment line `: subscribed` marks the switch to live blocks and `: heartbeat` "
                "comes every 15 s of silence. With `from` (or Last-Event-ID) stored blocks are "
                "replayed first, with no gap or repeat before the live ones. The stream ends when "
                "the client goes away, or if it reads too slowly for the node (resume with `from`)."),
            "parameters": [
                {"name": "from", "in": "query", "schema": HEIGHT_PARAM,
                 "description": "replay committed blocks from this height first"},
                {"name": "Last-Event-ID", "in": "header", "schema": HEIGHT_PARAM,
                 "description": "resume after this height (checked, but not used, when `from` is given)"},
                {"name": "tx_ids", "in": "query", "schema": {"type": "boolean", "default": False},
                 "description": "each event also lists the block's tx ids (`tx_ids`): a client "
                                "following its txs needs no GET /blocks/{height} per block"},
            ],
            "responses": _responses({
                "description": "Event stream; each event's data is a BlockEvent",
                "content": {"text/event-stream": {"schema": {"type": "string"},
                                                  "x-event-data": _ref("BlockEvent")}},
            }, e400=f"`from` or Last-Event-ID not an integer from 1 to {MAX_INT_PARAM}, "
                    "or `tx_ids` not true/false",
                e503="The node serves as many event streams as it will (code unavailable)"),
        }},
        "/openapi.json": {"get": {
            "summary": "This document",
            "responses": _responses(_json({"type": "object"}, "OpenAPI 3.1 document")),
        }},
    }


def openapi_document() -> dict[str, Any]:
    # They build on the helpers above.
    from .openapi_browse import browse_paths, browse_schemas, explorer_paths, with_pages
    from .openapi_contracts import contract_paths, contract_schemas
    from .openapi_gov import gov_paths, gov_schemas
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ynchain node API",
            "version": "1",
            "description": (
                "HTTP API of one ynchain node. Binary ids, keys, hashes and signatures are lowercase "
                "hex. Every error is JSON {\"error\": \"<one line>\", \"code\": \"<short_code>\"}; "
                "unknown paths answer 404 (code not_found). The arguments of each contract method "
                "a transaction may call are the components named <contract>.<method>. The chain "
                "explorer is served at / (HTML pages that read this API)."),
        },
        "paths": {**_paths(), **browse_paths(), **with_pages({**contract_paths(), **gov_paths()}),
                  **explorer_paths()},
        "components": {"schemas": {**_schemas(), **contract_schemas(), **gov_schemas(), **browse_schemas()}},
    }
