"""HTTP routes of the consortium configuration and its governance:

    GET /config[?height=H]             the configuration in force after block H
                                       (default: the last committed one)
    GET /gov/proposals[?status=S]      proposals in number order, paginated
    GET /gov/proposals/{id}            one proposal with its votes

Read from committed state (ledger.contracts.gov for proposals, the node's
config history for past configurations); documented in node/api/openapi_gov.py.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ledger.consortium import config_view
from ledger.contracts import QueryReader, gov
from ledger.contracts.paging import DEFAULT_PAGE, MAX_PAGE

from .facade import NodeFacade
from .http import MAX_INT_PARAM, bad_request, not_found

Handler = Callable[[Request], Awaitable[Response]]


def _number(text: str | None, what: str, minimum: int, maximum: int) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 20 or not minimum <= int(text) <= maximum:
        raise bad_request(f"{what}: expected an integer from {minimum} to {maximum}, got {text[:40]!r}")
    return int(text)


class GovRoutes:
    def __init__(self, facade: NodeFacade) -> None:
        self.facade = facade

    def table(self) -> list[tuple[str, Handler, str]]:
        return [
            ("/config", self.config, "GET"),
            ("/gov/proposals", self.proposals, "GET"),
            ("/gov/proposals/{id}", self.proposal, "GET"),
        ]

    async def config(self, request: Request) -> Response:
        height = _number(request.query_params.get("height"), "height", 0, MAX_INT_PARAM)
        found = self.facade.config_at(height)
        if found is None:
            raise not_found(f"height {height} is not committed yet (the chain is at height "
                            f"{self.facade.height()})")
        config, at = found
        return JSONResponse(config_view(config, at))

    def _reader(self):
        config, height = self.facade.config_at(None)
        return config, height, QueryReader(gov.CONTRACT.name, self.facade.state_reader())

    async def proposals(self, request: Request) -> Response:
        status = request.query_params.get("status")
        if status is not None and status not in gov.STATUSES:
            raise bad_request(f"status: expected one of {', '.join(gov.STATUSES)}, got {status[:40]!r}")
        limit = _number(request.query_params.get("limit"), "limit", 1, MAX_PAGE) or DEFAULT_PAGE
        after = _number(request.query_params.get("after"), "after", 0, gov.MAX_ID)
        config, height, reader = self._reader()
        items, cursor = gov.list_proposals(reader, config, height, status, after, limit)
        return JSONResponse({"proposals": items, "next": cursor, "height": height})

    async def proposal(self, request: Request) -> Response:
        pid = _number(request.path_params["id"], "id", 1, gov.MAX_ID)
        config, height, reader = self._reader()
        view = gov.proposal_view(reader, config, height, pid)
        if view is None:
            raise not_found(f"no proposal {pid}")
        return JSONResponse({**view, "height": height})


def gov_routes(facade: NodeFacade) -> list[tuple[str, Handler, str]]:
    return GovRoutes(facade).table()
