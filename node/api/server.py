"""The node's HTTP API: Starlette routes over a NodeFacade, served by
hypercorn's trio worker inside the node's own nursery.  The chain explorer
(node/api/explorer.py) is served from the same routes table.

    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_api, node, "127.0.0.1", 8545)

Every answer is JSON (errors are {"error": "<one line>", "code": "<short>"}),
except /metrics (Prometheus text), /events/blocks (server-sent events) and
the explorer's pages and files (also the answer to a browser that opens a
receipt's, a lot's or a receivable's URL).
The routes and their shapes are documented in node/openapi.py, and a test
keeps the two in step.
"""

from __future__ import annotations

import functools
import logging
import socket
from typing import Any, Awaitable, Callable

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .browse import browse_routes
from .contracts import contract_routes
from .explorer import PAGE_ROUTES, Explorer
from .gov import gov_routes
from .proofs import proof_routes
from .events import HEARTBEAT_S, BlockEventStream
from .http import (DEFAULT_MAX_BODY_BYTES, INTERNAL, MEMPOOL_FULL, METHOD_NOT_ALLOWED, NOT_FOUND,
                   UNAVAILABLE, ApiError,
                       bad_request, error_response, hex_segment, not_found, parse_positive_int,
                       query_bool, query_seconds, read_body)
from .txs import RETRY_AFTER_S, add_outcomes, all_refused_for_now, decode_submission, submission_results
from .facade import NodeFacade
from .jsonview import block_to_json, committed_tx_to_json, plain_to_json
from ..metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .openapi import openapi_document

log = logging.getLogger(__name__)

TX_ID_LEN = 32

DEFAULT_WAIT_S = 10.0
MAX_WAIT_S = 60.0
MAX_STATE_NAME_LEN = 1024
LISTEN_BACKLOG = 128

Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """Answer ApiError with its JSON error and anything unexpected with a
    logged 500: a client never sees a traceback."""
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, str(exc), exc.headers)
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return error_response(500, INTERNAL, "internal error (details are in the node's log)")
    return endpoint


class _Routes:
    def __init__(self, facade: NodeFacade, max_body_bytes: int, heartbeat_s: float) -> None:
        self.facade = facade
        self.max_body_bytes = max_body_bytes
        self.heartbeat_s = heartbeat_s
        self.openapi_body = JSONResponse(openapi_document()).body
        self.explorer = Explorer()

    def routes(self) -> list[Route]:
        table: list[tuple[str, Handler, str]] = [
            ("/status", self.status, "GET"),
            ("/txs", self.submit, "POST"),
            ("/txs/{tx_id}", self.get_tx, "GET"),
            ("/blocks/latest", self.latest_block, "GET"),
            ("/blocks/{height}", self.get_block, "GET"),
            ("/state/{contract}/{key:path}", self.get_state, "GET"),
            ("/validators", self.validators, "GET"),
            ("/metrics", self.metrics, "GET"),
            ("/events/blocks", self.block_events, "GET"),
            ("/openapi.json", self.openapi, "GET"),
            *browse_routes(self.facade),
            *[(path, self.explorer.negotiated(handler) if path in PAGE_ROUTES else handler, method)
              for path, handler, method in (*contract_routes(self.facade), *gov_routes(self.facade))],
            *proof_routes(self.facade),
            *self.explorer.routes(),
        ]
        return [Route(path, _guarded(handler), methods=[method]) for path, handler, method in table]

    async def status(self, request: Request) -> Response:
        return JSONResponse(self.facade.status())

    async def submit(self, request: Request) -> Response:
        wait = query_bool(request, "wait", False)
        timeout = query_seconds(request, "timeout", DEFAULT_WAIT_S, MAX_WAIT_S)
        body = await read_body(request, self.max_body_bytes)
        decoded = await decode_submission(request.headers.get("content-type", ""), body)
        txs = [item for item in decoded if not isinstance(item, Exception)]
        admissions = await self.facade.submit(txs) if txs else []
        if len(admissions) != len(txs):
            raise RuntimeError(f"facade.submit answered {len(admissions)} admissions for {len(txs)} txs")
        if all_refused_for_now(decoded, admissions):
            raise ApiError(429, MEMPOOL_FULL,
                           f"the mempool is full: none of the {len(txs)} transactions was accepted; "
                           f"retry after {RETRY_AFTER_S} s",
                           {"Retry-After": str(RETRY_AFTER_S)})
        results = submission_results(decoded, admissions)
        if wait:
            accepted = [adm.tx_id for adm in admissions if adm.accepted]
            outcomes = await self.facade.wait_settled(accepted, timeout) if accepted else {}
            add_outcomes(results, outcomes)
        return JSONResponse({"results": results})

    async def get_tx(self, request: Request) -> Response:
        tx_id = hex_segment(request.path_params["tx_id"], TX_ID_LEN, "no transaction has id", "an id")
        record = self.facade.get_tx(tx_id)
        if record is not None:
            return JSONResponse(committed_tx_to_json(record.tx, record.height, record.index, record.receipt))
        status = self.facade.uncommitted_status(tx_id)
        if status is not None:
            return JSONResponse({"id": tx_id.hex(), "status": status})
        raise not_found(f"transaction {tx_id.hex()} not found")

    async def latest_block(self, request: Request) -> Response:
        height = self.facade.height()
        if height < 1:
            raise not_found("no block has been committed yet")
        return self._block(height)

    async def get_block(self, request: Request) -> Response:
        return self._block(parse_positive_int(request.path_params["height"], "height"))

    def _block(self, height: int) -> Response:
        committed = self.facade.get_block(height)
        if committed is None:
            raise not_found(f"block {height} not found")
        names = self.facade.validator_names_at(height)
        return JSONResponse(block_to_json(committed.block, committed.certificate, names))

    async def get_state(self, request: Request) -> Response:
        contract, key = request.path_params["contract"], request.path_params["key"]
        if len(contract) > MAX_STATE_NAME_LEN or len(key) > MAX_STATE_NAME_LEN:
            raise bad_request(f"contract and key are at most {MAX_STATE_NAME_LEN} characters")
        found = self.facade.get_state(contract, key)
        if found is None:
            raise not_found(f"key {key!r} not found in contract {contract!r}")
        value, height = found
        return JSONResponse({"contract": contract, "key": key, "value": plain_to_json(value), "height": height})

    async def validators(self, request: Request) -> Response:
        return JSONResponse({"validators": self.facade.validators()})

    async def metrics(self, request: Request) -> Response:
        return Response(self.facade.metrics_text(), media_type=METRICS_CONTENT_TYPE)

    async def block_events(self, request: Request) -> Any:
        if request.method == "HEAD":   # headers only; never start an endless stream
            return Response(media_type="text/event-stream")
        start = request.query_params.get("from")
        tx_ids = query_bool(request, "tx_ids", False)
        resume = request.headers.get("last-event-id")
        after = None if resume is None else parse_positive_int(resume, "Last-Event-ID")
        if start is not None:
            height: int | None = parse_positive_int(start, "from")
        else:
            height = None if after is None else after + 1
        subscription = self.facade.reserve_subscription()
        if subscription is None:
            raise ApiError(503, UNAVAILABLE, "too many block event streams on this node; try again later")
        return BlockEventStream(self.facade, subscription, height, self.heartbeat_s, tx_ids)

    async def openapi(self, request: Request) -> Response:
        return Response(self.openapi_body, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, NOT_FOUND, f"no such endpoint: {request.method} {request.url.path}")
    if exc.status_code == 405:
        return error_response(405, METHOD_NOT_ALLOWED,
                              f"method {request.method} not allowed on {request.url.path}", exc.headers)
    return error_response(exc.status_code, "http_error", str(exc.detail), exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Only reached for failures outside the routes (they guard themselves).
    return error_response(500, INTERNAL, "internal error (details are in the node's log)")


def create_app(facade: NodeFacade, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               heartbeat_s: float = HEARTBEAT_S) -> Starlette:
    app = Starlette(routes=_Routes(facade, max_body_bytes, heartbeat_s).routes(),
                    exception_handlers={HTTPException: _http_error, Exception: _server_error})
    app.router.redirect_slashes = False  # /status/ is an unknown route, not a redirect
    return app


class _BoundConfig(Config):
    """A hypercorn Config serving one socket we bound ourselves, so port 0
    works and the socket's lifetime is ours."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def create_sockets(self) -> Sockets:
        return Sockets(secure_sockets=[], insecure_sockets=[self._sock], quic_sockets=[])


async def _listen(host: str, port: int) -> socket.socket:
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise OSError(f"API: cannot resolve {host!r}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"API: cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


async def serve_api(facade: NodeFacade, host: str, port: int, *,
                    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, heartbeat_s: float = HEARTBEAT_S,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the API until cancelled; task_status.started(actual_port) once listening."""
    app = create_app(facade, max_body_bytes=max_body_bytes, heartbeat_s=heartbeat_s)
    sock = await _listen(host, port)
    try:
        config = _BoundConfig(sock)
        config.accesslog = None
        config.errorlog = logging.getLogger(f"{__name__}.server")  # hypercorn's own messages
        config.backlog = LISTEN_BACKLOG
        config.graceful_timeout = 1.0
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve, app, config, mode="asgi"))
            task_status.started(sock.getsockname()[1])
    finally:
        sock.close()
