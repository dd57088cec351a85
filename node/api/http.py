"""HTTP plumbing of the API: the error type and body, bounded body reading,
and strict parsing of path and query parameters.

Every refusal is an `ApiError`, answered as {"error": "<one line>", "code":
"<short_code>"} by the route wrapper in node/api/server.py.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

# The short codes a client can branch on (documented in node/openapi.py).
BAD_REQUEST = "bad_request"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
INTERNAL = "internal"
UNAVAILABLE = "unavailable"
MEMPOOL_FULL = "mempool_full"      # 429: nothing in the batch was accepted, retry later
NOT_PROVABLE = "not_provable"      # 409: not covered by a stable checkpoint yet, or a value changed since
ERROR_CODES = (BAD_REQUEST, NOT_FOUND, METHOD_NOT_ALLOWED, PAYLOAD_TOO_LARGE, UNAVAILABLE,
               UNSUPPORTED_MEDIA_TYPE, MEMPOOL_FULL, NOT_PROVABLE, INTERNAL)


class ApiError(Exception):
    """A request the API refuses; `str(self)` is the one-line message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers


def bad_request(message: str) -> ApiError:
    return ApiError(400, BAD_REQUEST, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, NOT_FOUND, message)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes
    (Content-Length is only an early hint; chunked bodies are counted too)."""
    too_large = ApiError(413, PAYLOAD_TOO_LARGE, f"request body larger than {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with aclosing(request.stream()) as stream:
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except ClientDisconnect:  # nobody to answer; not worth a traceback in the log
        raise bad_request("client disconnected while sending the body") from None
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise bad_request("request body is not valid JSON") from None


def parse_hex(text: Any, what: str, length: int | None = None) -> bytes:
    """Strict hex: an even number of hex digits and nothing else (bytes.fromhex
    alone would also accept spaces)."""
    if type(text) is not str:
        raise ValueError(f"{what}: expected a hex string")
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what}: not a hex string") from None
    if len(text) != 2 * len(data):
        raise ValueError(f"{what}: not a hex string")
    if length is not None and len(data) != length:
        raise ValueError(f"{what}: expected {length} bytes ({2 * length} hex digits), got {len(data)}")
    return data


def hex_segment(text: str, length: int, missing: str, noun: str) -> bytes:
    """A fixed-length hex id from a path segment.  Any text is a valid segment
    (as documented), so text that is not an id names nothing: 404, e.g.
    "no transaction has id 'xyz': an id is 64 hex digits"."""
    try:
        return parse_hex(text, noun, length)
    except ValueError:
        raise not_found(f"{missing} {text[:80]!r}: {noun} is {2 * length} hex digits") from None


MAX_INT_PARAM = 2**63 - 1     # heights in paths, queries and headers (as documented)


def parse_positive_int(text: str, what: str) -> int:
    # isdigit() alone accepts non-ASCII digits such as "²"; int() would then fail.
    if not (text.isascii() and text.isdigit()) or len(text) > 20 or not 1 <= int(text) <= MAX_INT_PARAM:
        raise bad_request(f"{what}: expected an integer from 1 to {MAX_INT_PARAM}, got {text[:40]!r}")
    return int(text)


def query_int(request: Request, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
    """An optional integer query parameter in minimum..maximum (`default` when absent)."""
    text = request.query_params.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 20 or not minimum <= int(text) <= maximum:
        raise bad_request(f"{name}: expected an integer in {minimum}..{maximum}, got {text[:40]!r}")
    return int(text)


def query_bool(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return default
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise bad_request(f"{name}: expected true or false, got {value[:40]!r}")


def query_seconds(request: Request, name: str, default: float, maximum: float) -> float:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= maximum:  # also false for nan
        raise bad_request(f"{name}: expected seconds between 0 and {maximum:g}, got {value[:40]!r}")
    return seconds
