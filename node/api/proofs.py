"""HTTP routes of proof files (ledger.proof_file), for outsiders who trust no node:

    GET /proofs/tx/{id}                            a transaction, its receipt and block
    GET /proofs/state/{contract}/{key}[?height=H]  what a state key holds, or that it is
                                                   absent (default: the newest checkpoint)
    GET /proofs/receipt/{code}/{number}            a fiscal receipt as of the newest checkpoint

Each answer carries the file base64-encoded (`proof`), the height it proves
at, and its size; `ynchain proof ... -o FILE` writes the bytes and `ynchain
verify FILE --genesis genesis.json` checks them offline.  404: the thing or
the height does not exist; 409: it is not provable yet (above the newest
stable checkpoint), or no longer (a value changed since the height asked for;
a state height below the newest checkpoint, from which up the node keeps its
state tree), or not by this node (it keeps no checkpoint at a validator-set change the file
must walk through).
Documented in node/api/openapi.py.
"""

from __future__ import annotations

import base64
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .facade import NodeFacade, ProofAnswer
from .http import MAX_INT_PARAM, NOT_PROVABLE, ApiError, bad_request, hex_segment, not_found

Handler = Callable[[Request], Awaitable[Response]]
TX_ID_LEN = 32


def _answer(found: ProofAnswer) -> Response:
    if found.problem is not None:
        if found.missing:
            raise not_found(found.problem)
        raise ApiError(409, NOT_PROVABLE, found.problem)
    return JSONResponse({"kind": found.kind, "height": found.height, "bytes": len(found.data),
                         "proof": base64.b64encode(found.data).decode("ascii")})


class ProofRoutes:
    def __init__(self, facade: NodeFacade) -> None:
        self.facade = facade

    def table(self) -> list[tuple[str, Handler, str]]:
        return [
            ("/proofs/tx/{tx_id}", self.tx, "GET"),
            ("/proofs/state/{contract}/{key:path}", self.state, "GET"),
            ("/proofs/receipt/{code}/{number}", self.receipt, "GET"),
        ]

    async def tx(self, request: Request) -> Response:
        tx_id = hex_segment(request.path_params["tx_id"], TX_ID_LEN, "no transaction has id", "an id")
        return _answer(self.facade.prove("tx", (tx_id,)))

    async def state(self, request: Request) -> Response:
        text = request.query_params.get("height")
        height = None
        if text is not None:
            if not (text.isascii() and text.isdigit()) or len(text) > 20 or int(text) > MAX_INT_PARAM:
                raise bad_request(f"height: expected an integer from 0 to {MAX_INT_PARAM}, got {text[:40]!r}")
            height = int(text)
        return _answer(self.facade.prove("state", (request.path_params["contract"],
                                                   request.path_params["key"], height)))

    async def receipt(self, request: Request) -> Response:
        return _answer(self.facade.prove("receipt", (request.path_params["code"],
                                                     request.path_params["number"])))


def proof_routes(facade: NodeFacade) -> list[tuple[str, Handler, str]]:
    return ProofRoutes(facade).table()
