"""The chain explorer, served by every node from the ledger it holds.

    GET /, /explorer, /explorer/{page}   the one HTML shell; its ES modules
                                          (node/explorer/) route on the path
    GET /explorer/assets/{name}          the explorer's CSS, JS and icon
    the domain routes of PAGE_ROUTES     the shell for a browser, JSON for API clients

The pages are static files shipped in the package (no build step, no CDN)
and read the same JSON API as any client; nothing is rendered on the server.
The scripts build the DOM with textContent and never parse markup, so text
from the chain (tx args, names, receipt lines) cannot become HTML, and the
Content-Security-Policy below refuses inline and foreign scripts besides.

A link or QR code that names a receipt, a lot or a receivable is the API's
own URL (the GS1 Digital Link /01/{gtin}/10/{lot} above all): a browser asks
for text/html first and gets the page, a client asking for JSON (or for
anything, */*) keeps getting JSON.  Both answers say `Vary: Accept`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from .http import ApiError, not_found

Handler = Callable[[Request], Awaitable[Response]]

# Domain routes a person opens from a link or QR code; node/explorer/app.js has a page for each.
PAGE_ROUTES = frozenset({
    "/fiscal/verify", "/fiscal/receipts/{code}/{number}", "/trace/{lot}", "/01/{gtin}/10/{lot}",
    "/receivables/{id}", "/gov/proposals", "/gov/proposals/{id}",
})
SHELL_PATHS = ("/", "/explorer", "/explorer/{page:path}")
ASSETS_PATH = "/explorer/assets/{name:path}"
SHELL = "index.html"
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml"}
MAX_ACCEPT_PARTS = 32
HTML_TYPES = ("text/html", "application/xhtml+xml")
ANY_JSON = ("*/*", "application/*")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _asset(body: bytes, content_type: str) -> Asset:
    return Asset(body, content_type, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')


def load_assets() -> tuple[Asset, dict[str, Asset]]:
    """The shell and the assets by path under node/explorer/, read once from
    the installed package (a handful of small files); only these are served."""
    root = resources.files("node").joinpath("explorer")
    assets: dict[str, Asset] = {}

    def walk(folder, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif (suffix := "." + entry.name.rpartition(".")[2]) in CONTENT_TYPES:
                assets[prefix + entry.name] = _asset(entry.read_bytes(), CONTENT_TYPES[suffix])
    walk(root, "")
    return _asset(root.joinpath(SHELL).read_bytes(), "text/html; charset=utf-8"), assets


def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks HTML above JSON.  Browsers name
    text/html; API clients name application/json, */* or nothing, and a
    wildcard never counts as asking for HTML."""
    if not accept:
        return False
    html = named_json = wildcard = 0.0
    json_named = False
    for part in accept.split(",")[:MAX_ACCEPT_PARTS]:
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media in HTML_TYPES:
            html = max(html, q)
        elif media == "application/json":
            json_named, named_json = True, max(named_json, q)
        elif media in ANY_JSON:
            wildcard = max(wildcard, q)
    return html > 0 and html > (named_json if json_named else wildcard)


class Explorer:
    def __init__(self) -> None:
        self.shell, self.assets = load_assets()

    def routes(self) -> list[tuple[str, Handler, str]]:
        # The assets route comes first: /explorer/{page:path} would take it.
        return [(ASSETS_PATH, self.asset, "GET"), *((path, self.page, "GET") for path in SHELL_PATHS)]

    def _send(self, asset: Asset, request: Request, extra: dict[str, str] | None = None) -> Response:
        headers = {**SECURITY_HEADERS, "ETag": asset.etag, **(extra or {})}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.content_type, headers=headers)

    async def page(self, request: Request) -> Response:
        return self._send(self.shell, request)

    async def asset(self, request: Request) -> Response:
        asset = self.assets.get(request.path_params["name"])
        if asset is None:
            raise not_found(f"the explorer has no file {request.path_params['name'][:80]!r}")
        return self._send(asset, request)

    def negotiated(self, handler: Handler) -> Handler:
        """`handler` for API clients, the explorer's page for browsers."""
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            if prefers_html(request.headers.get("accept")):
                return self._send(self.shell, request, {"Vary": "Accept"})
            try:
                response = await handler(request)
            except ApiError as exc:
                exc.headers = {**(exc.headers or {}), "Vary": "Accept"}
                raise
            response.headers["Vary"] = "Accept"
            return response
        return endpoint
