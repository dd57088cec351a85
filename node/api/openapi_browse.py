"""The OpenAPI part of the browsing routes (node/api/browse.py) and of the
explorer (node/api/explorer.py): its pages, its files, and the HTML answer
that the domain routes give a browser.
"""

from __future__ import annotations

import copy
from typing import Any

from .browse import DEFAULT_BLOCK_TXS, DEFAULT_BLOCKS, MAX_BLOCK_TXS_PAGE, MAX_BLOCKS, MAX_QUERY_LEN
from .explorer import CONTENT_TYPES, PAGE_ROUTES
from .http import MAX_INT_PARAM
from .openapi import HASH, HEIGHT_PARAM, UINT, _json, _obj, _ref, _responses

STR = {"type": "string"}
NULLABLE_STR = {"type": ["string", "null"]}
HTML = {"text/html": {"schema": {"type": "string"}}}
SEARCH_KINDS = ["block", "tx", "account", "receipt", "lot", "receivable"]


def browse_schemas() -> dict[str, Any]:
    return {
        "BlockPage": _obj({
            "height": {**UINT, "description": "the chain's height when read"},
            "blocks": {"type": "array", "items": _ref("BlockEvent"), "description": "newest first"},
            "next": {"type": ["integer", "null"],
                     "description": "pass as `before` for the next (older) page; null on the last"}}),
        "BlockTx": _obj({
            "index": UINT, "id": HASH, "sender": HASH,
            "account": {**NULLABLE_STR, "description": "the sender's account; null if not in the directory"},
            "org": NULLABLE_STR, "org_name": {**NULLABLE_STR, "description": "the organisation's display name"},
            "contract": STR, "method": STR,
            "status": {"type": "string", "description": 'its receipt status ("ok" or the error status '
                                                        'name); "duplicate" for a repeat of a tx committed '
                                                        'before it'}}),
        "BlockTxPage": _obj({
            "height": UINT, "count": {**UINT, "description": "transactions in the block"},
            "txs": {"type": "array", "items": _ref("BlockTx"), "description": "in block order"},
            "next": {"type": ["integer", "null"],
                     "description": "pass as `after` for the next page; null on the last"}}),
        "Account": _obj({
            "public_key": HASH, "name": STR, "org": STR,
            "org_name": {"type": "string", "description": "the organisation's display name"},
            "roles": {"type": "array", "items": STR}}),
        "Organisations": _obj({"organisations": {"type": "array", "items": _obj({
            "name": STR, "display_name": STR})}}),
        "SearchResults": _obj({
            "query": STR,
            "results": {"type": "array", "items": _obj({
                "kind": {"enum": SEARCH_KINDS},
                "id": {"type": "string", "description": "height, tx id, account key, receipt "
                                                        "<code>-<number>, lot id or receivable id"},
                "summary": STR})},
            "height": UINT}),
    }


def browse_paths() -> dict[str, Any]:
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}}
    return {
        "/blocks": {"get": {
            "summary": "Summaries of committed blocks, newest first (headers only)",
            "parameters": [
                {"name": "before", "in": "query", "schema": HEIGHT_PARAM,
                 "description": "list blocks below this height (the `next` of the previous page)"},
                {**limit, "schema": {**limit["schema"], "maximum": MAX_BLOCKS, "default": DEFAULT_BLOCKS}}],
            "responses": _responses(_json(_ref("BlockPage"), "One page of blocks"),
                                    e400="`before` or `limit` out of range"),
        }},
        "/blocks/{height}/txs": {"get": {
            "summary": "A block's transactions with their senders (account, organisation), calls and "
                       "outcomes, in block order",
            "parameters": [
                {"name": "height", "in": "path", "required": True, "schema": HEIGHT_PARAM},
                {"name": "after", "in": "query",
                 "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INT_PARAM},
                 "description": "list transactions after this index (the `next` of the previous page)"},
                {**limit, "schema": {**limit["schema"], "maximum": MAX_BLOCK_TXS_PAGE,
                                     "default": DEFAULT_BLOCK_TXS}}],
            "responses": _responses(_json(_ref("BlockTxPage"), "One page of the block's transactions"),
                                    e400=f"Height not an integer from 1 to {MAX_INT_PARAM}, or `after` "
                                         "or `limit` out of range",
                                    e404="No block at that height"),
        }},
        "/accounts/{public_key}": {"get": {
            "summary": "The account that signs with a key: name, organisation, roles",
            "parameters": [{"name": "public_key", "in": "path", "required": True, "schema": STR,
                            "description": "64 hex digits; any other text names no account (404)"}],
            "responses": _responses(_json(_ref("Account"), "The account"),
                                    e404="No account has that key (or it is not 64 hex digits)"),
        }},
        "/organisations": {"get": {
            "summary": "The consortium's organisations with their display names",
            "responses": _responses(_json(_ref("Organisations"), "Every organisation")),
        }},
        "/search": {"get": {
            "summary": "What a text names on this chain: a block height, a transaction id, an account "
                       "key, a receipt's code and number, a lot id or GS1 Digital Link, a receivable id",
            "parameters": [{"name": "q", "in": "query", "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_LEN}}],
            "responses": _responses(_json(_ref("SearchResults"), "Everything the text names (often one "
                                                                  "thing, possibly none)"),
                                    e400=f"q missing, blank or longer than {MAX_QUERY_LEN} characters"),
        }},
    }


def explorer_paths() -> dict[str, Any]:
    page = {"description": "The explorer (an HTML page whose scripts read this API)", "content": HTML}
    assets = {"description": "A file of the explorer",
              "content": {kind: {"schema": {"type": "string"}} for kind in sorted(set(CONTENT_TYPES.values()))}}
    return {
        "/": {"get": {"summary": "The chain explorer: overview", "responses": _responses(page)}},
        "/explorer": {"get": {"summary": "The chain explorer", "responses": _responses(page)}},
        "/explorer/{page}": {"get": {
            "summary": "A page of the chain explorer (its scripts route on the path)",
            "parameters": [{"name": "page", "in": "path", "required": True, "schema": STR}],
            # A segment the router cannot take as one path parameter (e.g. one that
            # decodes to a line break) reaches no route at all.
            "responses": _responses(page, e404="No such endpoint"),
        }},
        "/explorer/assets/{name}": {"get": {
            "summary": "The explorer's scripts, stylesheet and icon",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": STR}],
            "responses": _responses(assets, e404="The explorer has no such file"),
        }},
    }


def with_pages(paths: dict[str, Any]) -> dict[str, Any]:
    """The domain routes of PAGE_ROUTES also answer the explorer's page, to a
    client whose Accept header ranks text/html above JSON (a browser)."""
    out = copy.deepcopy(paths)
    for path in PAGE_ROUTES:
        op = out[path]["get"]
        op["description"] = (op.get("description", "") + " A browser (Accept ranking text/html above "
                             "application/json) gets the explorer's page for it instead.").strip()
        op["responses"]["200"]["content"].update(HTML)
    return out
