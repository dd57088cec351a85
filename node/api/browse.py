"""Read routes for people browsing the chain (what the explorer needs; any
client may use them): block summaries newest first, one block's
transactions with their senders and outcomes, the accounts and
organisations of the directory, and one search over heights, tx ids,
account keys, receipts, lots and receivables.

Block lists decode headers only (Block.decode_header); a block's tx page
decodes that one block and reads outcomes from the tx index.  Documented in
node/api/openapi_browse.py.
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ledger.contracts import QueryReader, fiscal, receivable, trace
from ledger.contracts.schema import Field
from ledger.errors import ContractError
from ledger.genesis import Account

from .facade import NodeFacade, TxCommitted
from .http import MAX_INT_PARAM, bad_request, hex_segment, not_found, parse_positive_int, query_int
from .jsonview import block_summary_to_json

Handler = Callable[[Request], Awaitable[Response]]

DEFAULT_BLOCKS = 20
MAX_BLOCKS = 100
DEFAULT_BLOCK_TXS = 50
MAX_BLOCK_TXS_PAGE = 100
MAX_QUERY_LEN = 200
KEY_LEN = 32
MAX_HEIGHT_DIGITS = 19
RECEIPT_QUERY = re.compile(r"([0-9]{8})\s*[-/\s]?\s*([0-9]{10})")
# A GS1 Digital Link as printed in a QR code, with or without scheme and host.
DIGITAL_LINK_QUERY = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://[^/]+)?/01/([0-9]{8,14})/10/([^/?#]+)(?:[/?#].*)?")
HEX_ID = re.compile(r"[0-9a-fA-F]{64}")


def account_to_json(account: Account, org_names: dict[str, str]) -> dict[str, Any]:
    return {"public_key": account.public_key.hex(), "name": account.name, "org": account.org,
            "org_name": org_names.get(account.org, account.org), "roles": list(account.roles)}


def _fits(value: str, field: Field) -> bool:
    try:
        field.check(value, "q")
    except ContractError:
        return False
    return True


class BrowseRoutes:
    def __init__(self, facade: NodeFacade) -> None:
        self.facade = facade

    def table(self) -> list[tuple[str, Handler, str]]:
        return [
            ("/blocks", self.blocks, "GET"),
            ("/blocks/{height}/txs", self.block_txs, "GET"),
            ("/accounts/{public_key}", self.account, "GET"),
            ("/organisations", self.organisations, "GET"),
            ("/search", self.search, "GET"),
        ]

    def _org_names(self) -> dict[str, str]:
        return {o.name: o.display_name for o in self.facade.organisations()}

    # -- blocks -------------------------------------------------------------------------
    async def blocks(self, request: Request) -> Response:
        tip = self.facade.height()
        before = query_int(request, "before", None, 1, MAX_INT_PARAM)
        limit = query_int(request, "limit", DEFAULT_BLOCKS, 1, MAX_BLOCKS)
        top = tip if before is None else min(tip, before - 1)
        items = []
        for height in range(top, max(0, top - limit), -1):
            found = self.facade.get_block_header(height)
            if found is None:
                break
            items.append(block_summary_to_json(*found))
        last = items[-1]["height"] if items else None
        return JSONResponse({"height": tip, "blocks": items,
                             "next": last if last is not None and last > 1 else None})

    async def block_txs(self, request: Request) -> Response:
        height = parse_positive_int(request.path_params["height"], "height")
        after = query_int(request, "after", None, 0, MAX_INT_PARAM)
        limit = query_int(request, "limit", DEFAULT_BLOCK_TXS, 1, MAX_BLOCK_TXS_PAGE)
        committed = self.facade.get_block(height)
        if committed is None:
            raise not_found(f"block {height} not found")
        txs = committed.block.txs
        start = 0 if after is None else after + 1
        page = txs[start:start + limit]
        # Committed ids settle at once: this reads their outcomes from the tx index.
        outcomes = await self.facade.wait_settled([tx.id for tx in page], 0.0)
        org_names = self._org_names()
        items = []
        for index, tx in enumerate(page, start):
            outcome = outcomes.get(tx.id)
            account = self.facade.account(tx.sender)
            items.append({
                "index": index, "id": tx.id.hex(), "sender": tx.sender.hex(),
                "account": None if account is None else account.name,
                "org": None if account is None else account.org,
                "org_name": None if account is None else org_names.get(account.org, account.org),
                "contract": tx.contract, "method": tx.method,
                "status": self._status_here(outcome, height, index),
            })
        end = start + len(page)
        return JSONResponse({"height": height, "count": len(txs), "txs": items,
                             "next": end - 1 if end < len(txs) else None})

    @staticmethod
    def _status_here(outcome: Any, height: int, index: int) -> str:
        """The receipt status of the tx at (height, index).  The tx index keeps a
        tx id's first commit; a later copy of it (which only a faulty primary
        proposes) was executed as a duplicate."""
        if isinstance(outcome, TxCommitted) and (outcome.height, outcome.index) == (height, index):
            return outcome.receipt.status_name
        return "duplicate"

    # -- the directory ---------------------------------------------------------------------
    async def account(self, request: Request) -> Response:
        key = hex_segment(request.path_params["public_key"], KEY_LEN, "no account has key", "a key")
        account = self.facade.account(key)
        if account is None:
            raise not_found(f"no account has key {key.hex()}")
        return JSONResponse(account_to_json(account, self._org_names()))

    async def organisations(self, request: Request) -> Response:
        return JSONResponse({"organisations": [{"name": o.name, "display_name": o.display_name}
                                               for o in self.facade.organisations()]})

    # -- search ------------------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        query = (request.query_params.get("q") or "").strip()
        if not 1 <= len(query) <= MAX_QUERY_LEN:
            raise bad_request(f"q: expected 1..{MAX_QUERY_LEN} characters (a height, tx id, account key, "
                              "receipt code and number, lot id, GS1 Digital Link or receivable id)")
        results: list[dict[str, Any]] = []
        if query.isascii() and query.isdigit() and len(query) <= MAX_HEIGHT_DIGITS:
            self._find_block(int(query), results)
        if HEX_ID.fullmatch(query):
            await self._find_hex(bytes.fromhex(query), results)
        if match := RECEIPT_QUERY.fullmatch(query):
            self._find_receipt(*match.groups(), results)
        if match := DIGITAL_LINK_QUERY.fullmatch(query):
            self._find_lot(unquote(match.group(2)), results, gtin=match.group(1))
        elif _fits(query, trace.LOT):
            self._find_lot(query, results)
        if _fits(query, receivable.ID):
            self._find_receivable(query, results)
        return JSONResponse({"query": query, "results": results, "height": self.facade.height()})

    def _find_block(self, height: int, results: list) -> None:
        found = self.facade.get_block_header(height) if height >= 1 else None
        if found is not None:
            header, count = found
            proposer = f"proposed by {header.proposer}" if header.proposer else "a null block"
            results.append({"kind": "block", "id": str(height),
                            "summary": f"block {height}: {count} txs, {proposer}"})

    async def _find_hex(self, key: bytes, results: list) -> None:
        outcome = (await self.facade.wait_settled([key], 0.0)).get(key)
        if isinstance(outcome, TxCommitted):
            results.append({"kind": "tx", "id": key.hex(), "summary":
                            f"transaction in block {outcome.height} ({outcome.receipt.status_name})"})
        elif (status := self.facade.uncommitted_status(key)) is not None:
            results.append({"kind": "tx", "id": key.hex(), "summary": f"transaction, {status}"})
        account = self.facade.account(key)
        if account is not None:
            results.append({"kind": "account", "id": key.hex(),
                            "summary": f"account {account.name} of {account.org}"})

    def _find_receipt(self, code: str, number: str, results: list) -> None:
        found = fiscal.find(QueryReader("fiscal", self.facade.state_reader()), code, number)
        if found is not None:
            results.append({"kind": "receipt", "id": found.key,
                            "summary": f"fiscal receipt {found.key} of {found.issuer_org}: {found.status()}"})

    def _find_lot(self, lot_id: str, results: list, gtin: str | None = None) -> None:
        if not _fits(lot_id, trace.LOT):
            return
        lot = trace.find(QueryReader("trace", self.facade.state_reader()), lot_id)
        if lot is None or (gtin is not None and lot.gtin != trace.normalize_gtin(gtin)):
            return
        results.append({"kind": "lot", "id": lot.lot,
                        "summary": f"lot {lot.lot}: {lot.quantity} {lot.unit} of {lot.product}"})

    def _find_receivable(self, rid: str, results: list) -> None:
        found = receivable.view(QueryReader("receivable", self.facade.state_reader()), rid)
        if found is not None:
            results.append({"kind": "receivable", "id": found["id"], "summary":
                            f"receivable {found['id']}: {found['amount_cents']} cents owed by "
                            f"{found['debtor']}, {found['status']}"})


def browse_routes(facade: NodeFacade) -> list[tuple[str, Handler, str]]:
    return BrowseRoutes(facade).table()
