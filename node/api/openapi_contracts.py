"""The OpenAPI part of the business contracts: their query routes
(node/api/contracts.py) and, as components `<contract>.<method>`, the
arguments of every method a transaction can call, rendered from the one
description each method carries (ledger.contracts.schema).
"""

from __future__ import annotations

from typing import Any

from ledger.contracts import REGISTRY, fiscal, receivable, trace
from ledger.contracts.paging import DEFAULT_PAGE, MAX_CURSOR_LEN, MAX_PAGE
from ledger.contracts.schema import Field

from .contracts import CHECK_CODE, GTIN_DIGITS, ORG, PAYER_HASH
from .openapi import HASH, UINT, _json, _obj, _ref, _responses

STR = {"type": "string"}
NULLABLE_STR = {"type": ["string", "null"]}
TIME = {"type": "string", "description": "block time, ISO 8601 in UTC+8"}
HEIGHT = {**UINT, "description": "the committed height the answer was read at"}
NEXT = {"type": ["string", "null"], "description": "cursor of the next page (pass as `after`); null on the last"}
CENTS = {"type": "integer", "minimum": 0, "description": "cents"}


def _page_params() -> list[dict[str, Any]]:
    return [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE,
                                                     "default": DEFAULT_PAGE}},
        {"name": "after", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR_LEN},
         "description": "the `next` cursor of the previous page"},
    ]


def _param(name: str, where: str, field: Field, required: bool) -> dict[str, Any]:
    """A parameter documented from the very Field the route checks it with."""
    schema = field.json_schema()
    return {"name": name, "in": where, "required": required, "description": schema.pop("description"),
            "schema": schema}


def _path(name: str, field: Field) -> dict[str, Any]:
    return _param(name, "path", field, True)


def _query(name: str, field: Field, required: bool = False) -> dict[str, Any]:
    return _param(name, "query", field, required)


def contract_schemas() -> dict[str, Any]:
    claim = _obj({"org": STR, "account": STR, "amount_cents": CENTS,
                  "state": {"enum": ["locked", "reimbursed"]}, "height": UINT, "tx_id": HASH,
                  "time": TIME, "done_height": {"type": ["integer", "null"]},
                  "done_tx_id": {"type": ["string", "null"]}})
    item = _obj({"name": STR, "quantity": UINT, "unit": STR, "unit_price_cents": CENTS,
                 "amount_cents": CENTS})
    amounts = {"total_cents": CENTS, "locked_cents": CENTS, "reimbursed_cents": CENTS,
               "available_cents": CENTS}
    status = {"enum": ["valid", "locked", "partially_reimbursed", "reimbursed", "voided", "red"],
              "description": "red: a red receipt (冲红); voided: voided by one"}
    receipt = _obj({
        "receipt": {"type": "string", "pattern": "^[0-9]{8}-[0-9]{10}$"}, "code": STR, "number": STR,
        "kind": {"enum": ["blue", "red"]}, "status": status, "issuer_org": STR, "issuer_account": STR,
        "payer_name": STR, "payer_id_hash": HASH, "items": {"type": "array", "items": _ref("FiscalItem")},
        **amounts, "check_code": STR, "issued_time": TIME, "issued_ms": UINT, "issued_height": UINT,
        "issued_tx_id": HASH, "red_of": NULLABLE_STR, "voided_by": NULLABLE_STR,
        "void": {"type": ["object", "null"], "description": "reason, account, height, tx_id, time"},
        "claims": {"type": "array", "items": _ref("FiscalClaim")},
        "height": HEIGHT,
    }, required=["receipt", "code", "number", "kind", "status", "issuer_org", "items", "total_cents",
                 "available_cents", "check_code", "issued_height", "claims"])
    verify = _obj({"found": {"type": "boolean"}, "receipt": STR, "kind": {"enum": ["blue", "red"]},
                   "status": status, "issuer_org": STR, **amounts, "issued_time": TIME,
                   "issued_height": UINT, "red_of": NULLABLE_STR, "voided_by": NULLABLE_STR,
                   "height": HEIGHT},
                  required=["found", "receipt", "height"],
                  description="found=false also when the check code or amount does not match")
    event = _obj({"event": STR, "org": STR, "account": STR, "time_ms": UINT, "time": TIME,
                  "height": UINT, "tx_id": HASH},
                 description="plus what happened: quantity, unit, shipment, to, from, into, inputs, "
                             "result, report_hash, reason, ... depending on the event")
    lot = _obj({
        "lot": STR, "kind": {"enum": ["commissioned", "transformed", "package"]}, "product": STR,
        "gtin": {"type": ["string", "null"], "pattern": "^[0-9]{14}$"}, "unit": STR, "quantity": UINT,
        "status": {"enum": ["ok", "failed_inspection"]},
        "failed_inspection": {"type": ["object", "null"],
                              "description": "the failed lot (this one or one it is made from), lab, "
                                             "report_hash, height, tx_id, time"},
        "origin": {"type": ["object", "null"], "description": "base, plot, harvest_date"},
        "origins": {"type": "array", "items": STR}, "creator": STR, "created_height": UINT,
        "created_time": TIME, "created_tx_id": HASH,
        "inputs": {"type": "array", "items": _obj({"lot": STR, "quantity": UINT})},
        "holdings": {"type": "array", "items": _obj({"org": STR, "quantity": UINT})},
        "in_transit": UINT, "used": UINT, "packed": UINT, "sold": UINT, "retired": UINT,
        "events": {"type": "array", "items": _ref("TraceEvent"), "description": "provenance view only"},
        "event_count": UINT,
    }, required=["lot", "kind", "product", "unit", "quantity", "status", "creator", "holdings"])
    rcv = _obj({
        "id": STR, "debtor": STR, "holder": STR, "amount_cents": CENTS, "maturity_date": STR,
        "status": {"enum": ["open", "split", "settled"]}, "parent": NULLABLE_STR,
        "parts": {"type": "array", "items": STR},
        "financed": {"type": ["object", "null"],
                     "description": "bank, advance_cents, height, tx_id, time, receivable (financed "
                                    "itself, or as part of this one)"},
        "settled": {"type": ["object", "null"], "description": "paid_to, height, tx_id, time"},
        "issued_height": UINT, "issued_time": TIME, "issued_tx_id": HASH,
        "events": {"type": "array", "items": _ref("TraceEvent")}, "event_count": UINT, "height": HEIGHT,
    }, required=["id", "debtor", "holder", "amount_cents", "maturity_date", "status"])
    schemas: dict[str, Any] = {
        "FiscalItem": item, "FiscalClaim": claim, "FiscalReceipt": receipt, "FiscalVerify": verify,
        "FiscalReceiptPage": _obj({"issuer": STR, "payer_hash": HASH,
                                   "receipts": {"type": "array", "items": _ref("FiscalReceipt")},
                                   "next": NEXT, "height": HEIGHT}, required=["receipts", "next", "height"]),
        "TraceEvent": event, "TraceLot": lot,
        "TraceProvenance": _obj({
            "lot": _ref("TraceLot"),
            "upstream": {"type": "array", "items": _ref("TraceLot"),
                         "description": "every lot it is made from, nearest first"},
            "truncated": {"type": "boolean"},
            "organisations": {"type": "object", "description": "name -> display name"},
            "height": HEIGHT}),
        "TraceLotPage": _obj({"product": STR, "origin": STR,
                              "lots": {"type": "array", "items": _ref("TraceLot")},
                              "next": NEXT, "height": HEIGHT}, required=["lots", "next", "height"]),
        "Receivable": rcv,
        "Holdings": _obj({"org": STR, "count": UINT, "total_cents": CENTS,
                          "receivables": {"type": "array", "items": _ref("Receivable")},
                          "next": NEXT, "height": HEIGHT}),
    }
    for name, contract in sorted(REGISTRY.items()):
        for method_name, method in sorted(contract.methods.items()):
            schema = method.args.json_schema()
            who = f"any account with the {method.role} role" if method.role else "any account"
            schema["description"] = (f"{contract.name}.{method_name} (version {contract.version}): "
                                     f"{method.summary}. Caller: {who}.")
            schema["x-role"] = method.role
            schemas[f"{name}.{method_name}"] = schema
    return schemas


def contract_paths() -> dict[str, Any]:
    page = "; paginated"
    return {
        "/fiscal/verify": {"get": {
            "summary": "查验: does a receipt with this code, number, check code and amount exist, "
                       "and what is its status?",
            "parameters": [_query("code", fiscal.CODE, True), _query("number", fiscal.NUMBER, True),
                           _query("check_code", CHECK_CODE, True),
                           {"name": "amount_cents", "in": "query", "required": True,
                            "description": "the receipt's total in cents",
                            "schema": {"type": "integer", "minimum": 0}}],
            "responses": _responses(_json(_ref("FiscalVerify"), "found, and if so status and amounts"),
                                    e400="A parameter is missing or malformed (the message says which)"),
        }},
        "/fiscal/issuers/{org}/receipts": {"get": {
            "summary": "Receipts an issuing unit issued, in issue order" + page,
            "parameters": [_path("org", ORG), *_page_params()],
            "responses": _responses(_json(_ref("FiscalReceiptPage"), "One page"),
                                    e400="A malformed organisation, limit or after"),
        }},
        "/fiscal/payers/{payer_hash}/receipts": {"get": {
            "summary": "Receipts of one payer (fiscal.payer_id_hash of the identity number; "
                       "`ynchain receipt list --payer-id` computes it), in issue order" + page,
            "parameters": [_path("payer_hash", PAYER_HASH), *_page_params()],
            "responses": _responses(_json(_ref("FiscalReceiptPage"), "One page"),
                                    e400="A malformed payer hash, limit or after"),
        }},
        "/fiscal/receipts/{code}/{number}": {"get": {
            "summary": "One receipt: items, payer (name, id hash), status, claims, void",
            "parameters": [_path("code", fiscal.CODE), _path("number", fiscal.NUMBER)],
            "responses": _responses(_json(_ref("FiscalReceipt"), "The receipt"),
                                    e400="Malformed code or number", e404="No such receipt"),
        }},
        "/trace/products/{product}/lots": {"get": {
            "summary": "Lots of one product code, oldest first" + page,
            "parameters": [_path("product", trace.PRODUCT), *_page_params()],
            "responses": _responses(_json(_ref("TraceLotPage"), "One page"),
                                    e400="A malformed product, limit or after"),
        }},
        "/trace/origins/{base}/lots": {"get": {
            "summary": "Lots from one production base, including lots made from them" + page,
            "parameters": [_path("base", trace.BASE), *_page_params()],
            "responses": _responses(_json(_ref("TraceLotPage"), "One page"),
                                    e400="A malformed base, limit or after"),
        }},
        "/trace/{lot}": {"get": {
            "summary": "The consumer's view of a lot: the lot and every lot it is made from, "
                       "recursively, with each event's organisation, time, height and tx id",
            "parameters": [_path("lot", trace.LOT)],
            "responses": _responses(_json(_ref("TraceProvenance"), "Provenance"),
                                    e400="Malformed lot id", e404="No such lot"),
        }},
        "/01/{gtin}/10/{lot}": {"get": {
            "summary": "GS1 Digital Link form of /trace/{lot} (what a QR code on the package holds)",
            "parameters": [_path("gtin", GTIN_DIGITS), _path("lot", trace.LOT)],
            "responses": _responses(_json(_ref("TraceProvenance"), "Provenance"),
                                    e400="Malformed GTIN or lot",
                                    e404="No such lot with that GTIN (also: a GTIN whose check digit is wrong)"),
        }},
        "/receivables/holdings/{org}": {"get": {
            "summary": "What an organisation holds: count and total of its open receivables" + page,
            "parameters": [_path("org", ORG), *_page_params()],
            "responses": _responses(_json(_ref("Holdings"), "Balance and one page of receivables"),
                                    e400="Malformed organisation, limit or after"),
        }},
        "/receivables/{id}": {"get": {
            "summary": "One receivable with its history",
            "parameters": [_path("id", receivable.ID)],
            "responses": _responses(_json(_ref("Receivable"), "The receivable and its events"),
                                    e400="Malformed id", e404="No such receivable"),
        }},
    }
