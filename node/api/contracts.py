"""HTTP routes of the business contracts: receipt verification and lookup,
the consumer's provenance view of a lot (also as a GS1 Digital Link), and
receivables with holdings; paginated lists by issuer, payer, product, origin
and holder.

Everything is read from committed state through `facade.state_reader()`
(a get/scan view at one height); every answer carries that height.  Query
parameters are checked with the contracts' own argument descriptions
(ledger.contracts.schema), so a bad code or lot id is refused here with the
same words a transaction would get.  Documented in node/api/openapi_contracts.py.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ledger.contracts import CommittedState, QueryReader, fiscal, receivable, trace
from ledger.contracts.paging import DEFAULT_PAGE, MAX_CURSOR_LEN, MAX_PAGE
from ledger.contracts.schema import HASH_HEX_PATTERN, Field, Str, organisation
from ledger.errors import ContractError

from .http import bad_request, not_found, query_int
from .facade import NodeFacade

Handler = Callable[[Request], Awaitable[Response]]

PAYER_HASH = Str("salted hash of the payer's identity number", "ab" * 32, min_len=64, max_len=64,
                 pattern=HASH_HEX_PATTERN, pattern_help="64 lowercase hex digits")
ORG = organisation("an organisation", "kunming-first-hospital")
CHECK_CODE = Str("校验码, the check code printed on the receipt", "0123456789", min_len=10,
                 max_len=10, pattern=r"[0-9]{10}", pattern_help="10 digits")
GTIN_DIGITS = Str("GS1 GTIN-8/12/13/14 (AI 01)", "06901234567892", min_len=8, max_len=14,
                  pattern=r"[0-9]{8}|[0-9]{12,14}", pattern_help="8, 12, 13 or 14 digits")
MAX_AMOUNT_TEXT = 20


def checked(value: Any, field: Field, name: str) -> Any:
    try:
        field.check(value, name)
    except ContractError as exc:
        raise bad_request(exc.message) from None
    return value


def path_param(request: Request, name: str, field: Field) -> str:
    return checked(request.path_params[name], field, name)


def query_param(request: Request, name: str, field: Field) -> str | None:
    value = request.query_params.get(name)
    return None if value is None else checked(value, field, name)


def required_query(request: Request, name: str, field: Field) -> str:
    value = query_param(request, name, field)
    if value is None:
        raise bad_request(f"{name}: missing (query parameter)")
    return value


def query_cents(request: Request, name: str) -> int:
    text = request.query_params.get(name)
    if text is None:
        raise bad_request(f"{name}: missing (query parameter)")
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_AMOUNT_TEXT:
        raise bad_request(f"{name}: expected an amount in cents (digits only), got {text[:40]!r}")
    return int(text)


def paging(request: Request) -> tuple[str | None, int]:
    after = request.query_params.get("after")
    if after is not None and not 1 <= len(after) <= MAX_CURSOR_LEN:
        raise bad_request(f"after: expected a cursor of 1..{MAX_CURSOR_LEN} characters "
                          "(the `next` of the previous page)")
    return after, query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)


def organisations_of(committed: CommittedState, names: set[str]) -> dict[str, str]:
    """Display names of the organisations a view mentions."""
    out = {}
    for name in sorted(names):
        org = committed.directory.organisation(name)
        if org is not None:
            out[name] = org.display_name
    return out


class ContractRoutes:
    def __init__(self, facade: NodeFacade) -> None:
        self.facade = facade

    def table(self) -> list[tuple[str, Handler, str]]:
        return [
            ("/fiscal/verify", self.fiscal_verify, "GET"),
            ("/fiscal/issuers/{org}/receipts", self.receipts_by_issuer, "GET"),
            ("/fiscal/payers/{payer_hash}/receipts", self.receipts_by_payer, "GET"),
            ("/fiscal/receipts/{code}/{number}", self.fiscal_receipt, "GET"),
            ("/trace/products/{product}/lots", self.lots_by_product, "GET"),
            ("/trace/origins/{base}/lots", self.lots_by_origin, "GET"),
            ("/trace/{lot}", self.trace_provenance, "GET"),
            ("/01/{gtin}/10/{lot}", self.digital_link, "GET"),
            ("/receivables/holdings/{org}", self.holdings, "GET"),
            ("/receivables/{id}", self.receivable, "GET"),
        ]

    def _reader(self, contract: str) -> tuple[CommittedState, QueryReader]:
        committed = self.facade.state_reader()
        return committed, QueryReader(contract, committed)

    # -- fiscal -----------------------------------------------------------------------
    async def fiscal_verify(self, request: Request) -> Response:
        code = required_query(request, "code", fiscal.CODE)
        number = required_query(request, "number", fiscal.NUMBER)
        check_code = required_query(request, "check_code", CHECK_CODE)
        amount = query_cents(request, "amount_cents")
        committed, reader = self._reader("fiscal")
        return JSONResponse({**fiscal.verify(reader, code, number, check_code, amount),
                             "height": committed.height})

    async def fiscal_receipt(self, request: Request) -> Response:
        code = path_param(request, "code", fiscal.CODE)
        number = path_param(request, "number", fiscal.NUMBER)
        committed, reader = self._reader("fiscal")
        found = fiscal.find(reader, code, number)
        if found is None:
            raise not_found(f"no fiscal receipt {fiscal.receipt_key(code, number)}")
        return JSONResponse({**fiscal.receipt_view(found), "height": committed.height})

    def _receipts(self, request: Request, by: str, group: str) -> Response:
        after, limit = paging(request)
        committed, reader = self._reader("fiscal")
        lister = fiscal.by_issuer if by == "issuer" else fiscal.by_payer
        items, cursor = lister(reader, group, after, limit)
        return JSONResponse({by: group, "receipts": items, "next": cursor, "height": committed.height})

    async def receipts_by_issuer(self, request: Request) -> Response:
        return self._receipts(request, "issuer", path_param(request, "org", ORG))

    async def receipts_by_payer(self, request: Request) -> Response:
        return self._receipts(request, "payer_hash", path_param(request, "payer_hash", PAYER_HASH))

    # -- trace --------------------------------------------------------------------------
    def _lots(self, request: Request, by: str, group: str) -> Response:
        after, limit = paging(request)
        committed, reader = self._reader("trace")
        lister = trace.by_product if by == "product" else trace.by_origin
        items, cursor = lister(reader, group, after, limit)
        return JSONResponse({by: group, "lots": items, "next": cursor, "height": committed.height})

    async def lots_by_product(self, request: Request) -> Response:
        return self._lots(request, "product", path_param(request, "product", trace.PRODUCT))

    async def lots_by_origin(self, request: Request) -> Response:
        return self._lots(request, "origin", path_param(request, "base", trace.BASE))

    def _provenance(self, lot_id: str, gtin: str | None = None) -> Response:
        committed, reader = self._reader("trace")
        view = trace.provenance(reader, lot_id)
        if view is None or (gtin is not None and view["lot"]["gtin"] != trace.normalize_gtin(gtin)):
            what = f"lot {lot_id}" if gtin is None else f"lot {lot_id} of GTIN {gtin}"
            raise not_found(f"no {what} on this chain")
        names = {e["org"] for item in (view["lot"], *view["upstream"]) for e in item["events"]}
        names |= {item["creator"] for item in (view["lot"], *view["upstream"])}
        return JSONResponse({**view, "organisations": organisations_of(committed, names),
                             "height": committed.height})

    async def trace_provenance(self, request: Request) -> Response:
        return self._provenance(path_param(request, "lot", trace.LOT))

    async def digital_link(self, request: Request) -> Response:
        # Only the shape is checked here: a GTIN whose check digit is wrong names no lot on
        # this chain, so the lookup answers 404 like any other GTIN without that lot.
        gtin = path_param(request, "gtin", GTIN_DIGITS)
        return self._provenance(path_param(request, "lot", trace.LOT), gtin)

    # -- receivables ------------------------------------------------------------------------
    async def receivable(self, request: Request) -> Response:
        rid = path_param(request, "id", receivable.ID)
        committed, reader = self._reader("receivable")
        found = receivable.detail(reader, rid)
        if found is None:
            raise not_found(f"no receivable {rid}")
        return JSONResponse({**found, "height": committed.height})

    async def holdings(self, request: Request) -> Response:
        org = path_param(request, "org", ORG)
        after, limit = paging(request)
        committed, reader = self._reader("receivable")
        return JSONResponse({**receivable.holdings(reader, org, after, limit), "height": committed.height})


def contract_routes(facade: NodeFacade) -> list[tuple[str, Handler, str]]:
    return ContractRoutes(facade).table()
