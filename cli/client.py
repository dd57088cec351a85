"""A small HTTP client for a node's API, on the standard library only.

One `NodeClient` keeps one persistent connection (http.client), so a benchmark
thread can reuse it for thousands of requests.  Every failure (refused, timeout,
non-2xx, a body that is not JSON) becomes one `NodeError` line that names the node.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

from .errors import NodeError

DEFAULT_TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 64 * 1024 * 1024     # a block with 100k tx ids is ~7 MB of JSON
MAX_SSE_LINE = 1024 * 1024
# A stale keep-alive connection fails like this before the server saw the request;
# such a request is simply sent again once on a fresh connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def normalize_url(url: str) -> str:
    """'127.0.0.1:26651' or 'http://127.0.0.1:26651/' -> 'http://127.0.0.1:26651'."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NodeError(f"invalid node URL {url!r}: expected http://HOST:PORT")
    try:
        parts.port
    except ValueError:
        raise NodeError(f"invalid node URL {url!r}: bad port") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def path_segment(value: str) -> str:
    return quote(value, safe="")


class NodeClient:
    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_S):
        self.url = normalize_url(url)
        parts = urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    # -- connection ------------------------------------------------------------------

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "NodeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _unreachable(self, exc: BaseException, timeout: float) -> NodeError:
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return NodeError(f"node at {self.url} did not answer within {timeout:g}s")
        if isinstance(exc, ConnectionRefusedError):
            return NodeError(f"cannot reach node at {self.url}: connection refused")
        if isinstance(exc, socket.gaierror):
            return NodeError(f"cannot reach node at {self.url}: unknown host {self._host}")
        if isinstance(exc, http.client.HTTPException):
            return NodeError(f"node at {self.url} broke the connection: {type(exc).__name__}")
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return NodeError(f"cannot reach node at {self.url}: {reason}")

    # -- requests --------------------------------------------------------------------

    def request_raw(self, method: str, path: str, body: bytes | None = None,
                    content_type: str | None = None, timeout: float | None = None
                    ) -> tuple[int, bytes]:
        timeout = self.timeout if timeout is None else timeout
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in (0, 1):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = self._connect(timeout)
            conn = self._conn
            try:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                conn.request(method, self._prefix + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read(MAX_RESPONSE_BYTES + 1)
                if len(data) > MAX_RESPONSE_BYTES:
                    self.close()
                    raise NodeError(f"node at {self.url} sent more than "
                                    f"{MAX_RESPONSE_BYTES} bytes for {path}")
                if resp.length:
                    # read(amt) returns short, without IncompleteRead, when the
                    # connection ends before Content-Length: a cut answer, not an answer.
                    self.close()
                    raise NodeError(f"node at {self.url} broke the connection in the middle of "
                                    f"its answer to {method} {path}")
                if resp.will_close:
                    self.close()
                return resp.status, data
            except NodeError:
                raise
            except _STALE as exc:
                self.close()
                if reused and attempt == 0:
                    continue
                raise self._unreachable(exc, timeout) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise self._unreachable(exc, timeout) from None
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str | None = None, timeout: float | None = None) -> Any:
        status, data = self.request_raw(method, path, body, content_type, timeout)
        try:
            doc = json.loads(data) if data else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            doc = None
            if 200 <= status < 300:
                raise NodeError(f"node at {self.url} sent a response that is not JSON "
                                f"for {method} {path}", status) from None
        if not 200 <= status < 300:
            if isinstance(doc, dict) and isinstance(doc.get("error"), str):
                raise NodeError(f"node at {self.url}: {doc['error']}", status,
                                doc.get("code") if isinstance(doc.get("code"), str) else None)
            raise NodeError(f"node at {self.url} answered HTTP {status} for {method} {path}",
                            status)
        return doc

    def get(self, path: str, timeout: float | None = None) -> Any:
        return self.request("GET", path, timeout=timeout)

    def post_json(self, path: str, doc: Any, timeout: float | None = None) -> Any:
        return self.request("POST", path, json.dumps(doc).encode(), "application/json", timeout)

    def post_msgpack(self, path: str, body: bytes, timeout: float | None = None) -> Any:
        return self.request("POST", path, body, "application/msgpack", timeout)

    # -- server-sent events ------------------------------------------------------------

    def events(self, path: str, idle_timeout: float | None = None) -> Iterator[tuple[str, Any]]:
        """Yield (event, data) from an SSE stream on a connection of its own.

        `idle_timeout` bounds the silence between lines (the server sends a heartbeat
        comment every 15 s); None waits forever."""
        conn = self._connect(idle_timeout)
        try:
            try:
                conn.request("GET", self._prefix + path, headers={"Accept": "text/event-stream"})
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise self._unreachable(exc, idle_timeout or self.timeout) from None
            if resp.status != 200:
                body = resp.read(64 * 1024)
                try:
                    message = json.loads(body)["error"]
                except Exception:
                    message = f"HTTP {resp.status}"
                raise NodeError(f"node at {self.url}: {message}", resp.status)
            event, data = "message", []
            while True:
                try:
                    raw = resp.readline(MAX_SSE_LINE)
                except (OSError, http.client.HTTPException) as exc:
                    raise self._unreachable(exc, idle_timeout or self.timeout) from None
                if not raw:
                    raise NodeError(f"node at {self.url} closed the event stream")
                if len(raw) >= MAX_SSE_LINE and not raw.endswith(b"\n"):
                    raise NodeError(f"node at {self.url} sent an event line over {MAX_SSE_LINE} bytes")
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if data:
                        text = "\n".join(data)
                        try:
                            payload = json.loads(text)
                        except json.JSONDecodeError:
                            payload = text
                        yield event, payload
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
        finally:
            conn.close()
