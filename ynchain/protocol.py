"""The API's requests and answers without I/O: what to send for each call and
how to read what comes back.  `Client` (sync) and `AsyncClient` share all of
it, so they cannot drift apart; each only moves bytes.

Retrying a submission is safe because a tx id is derived from its signed
bytes: sending the same signed tx again can never make a second tx.  A
`duplicate` refusal on a retry means an earlier attempt got through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import quote, urlsplit

from .errors import (ApiError, NodeUnavailable, NotFound, ProtocolViolation, TxFailed,
                     TxNotCommitted, refused)
from .models import BlockEvent, Receipt, Status, Submission, TxResult

MAX_WAIT_S = 60.0            # the node's cap on ?timeout=
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_SSE_LINE = 1024 * 1024
MAX_BACKOFF_S = 8.0


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    body: bytes | None = None
    timeout_s: float | None = None       # None: the client's default


def base_url(url: str) -> str:
    """'127.0.0.1:26651' or 'http://127.0.0.1:26651/' -> 'http://127.0.0.1:26651'."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    try:
        parts.port
    except ValueError:
        raise ValueError(f"invalid node URL {url!r}: bad port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid node URL {url!r}: expected http://HOST:PORT")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def segment(value: str) -> str:
    return quote(value, safe="")


def backoff_s(attempt: int, retry_after: str | None) -> float:
    """Seconds before retry `attempt` (1, 2, ...): the node's Retry-After if it
    sent one, else exponential."""
    if retry_after is not None:
        try:
            return min(MAX_BACKOFF_S, max(0.0, float(retry_after)))
        except ValueError:
            pass
    return min(MAX_BACKOFF_S, 0.25 * 2 ** (attempt - 1))


# -- calls ---------------------------------------------------------------------------

def status_call() -> Call:
    return Call("GET", "/status")


def submit_call(tx_hex: list[str], wait: bool, timeout_s: float) -> Call:
    if wait:
        if not 0 < timeout_s <= MAX_WAIT_S:
            raise ValueError(f"timeout must be in (0, {MAX_WAIT_S:g}] seconds")
        # The HTTP wait covers the node's own wait plus the way there and back.
        return Call("POST", f"/txs?wait=true&timeout={timeout_s:g}",
                    json.dumps({"txs": tx_hex}).encode(), timeout_s + 10.0)
    return Call("POST", "/txs", json.dumps({"txs": tx_hex}).encode())


def tx_call(tx_id: str) -> Call:
    return Call("GET", f"/txs/{segment(tx_id)}")


def block_call(height: int | None) -> Call:
    return Call("GET", "/blocks/latest" if height is None else f"/blocks/{int(height)}")


def state_call(contract: str, key: str) -> Call:
    return Call("GET", f"/state/{segment(contract)}/{segment(key)}")


def events_path(from_height: int | None) -> str:
    return "/events/blocks" + ("" if from_height is None else f"?from={int(from_height)}")


# -- answers -------------------------------------------------------------------------

def document(node: str, call: Call, status: int, body: bytes, retry_after: str | None = None) -> Any:
    """The JSON of a 2xx answer, or the error it stands for."""
    try:
        doc = json.loads(body) if body else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
        if 200 <= status < 300:
            raise ProtocolViolation(f"node at {node} sent a non-JSON answer to {call.method} "
                                    f"{call.path}") from None
    if 200 <= status < 300:
        return doc
    message = doc.get("error") if isinstance(doc, dict) else None
    code = doc.get("code") if isinstance(doc, dict) and isinstance(doc.get("code"), str) else None
    text = f"node at {node}: {message}" if isinstance(message, str) else \
        f"node at {node} answered HTTP {status} for {call.method} {call.path}"
    if status == 404:
        raise NotFound(text, status, code)
    if status in RETRY_STATUSES:
        raise NodeUnavailable(text, retry_after=retry_after)
    raise ApiError(text, status, code)


def _field(node: str, doc: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(name) if isinstance(doc, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ProtocolViolation(f"node at {node} sent an answer without a valid {name!r}")
    return value


def parse_status(node: str, doc: Any) -> Status:
    return Status(_field(node, doc, "chain_id", str), _field(node, doc, "height", int),
                  _field(node, doc, "view", int), _field(node, doc, "node", str), dict(doc))


def parse_receipt(node: str, doc: Any) -> Receipt:
    return Receipt(_field(node, doc, "status", str), _field(node, doc, "code", int),
                   _field(node, doc, "message", str), doc.get("result"))


def parse_submissions(node: str, doc: Any, expected: int) -> list[tuple[Submission, TxResult | None]]:
    """One (admission, outcome-if-waited) per submitted tx, in order."""
    results = _field(node, doc, "results", list)
    if len(results) != expected:
        raise ProtocolViolation(f"node at {node} answered {len(results)} results for {expected} txs")
    out = []
    for item in results:
        accepted = _field(node, item, "accepted", bool)
        tx_id = item.get("id")
        submission = Submission(tx_id, accepted, item.get("reason"))
        outcome = None
        if accepted and "status" in item:
            outcome = parse_tx(node, item)
        out.append((submission, outcome))
    return out


def parse_tx(node: str, doc: Any) -> TxResult:
    tx_id = _field(node, doc, "id", str)
    status = _field(node, doc, "status", str)
    if status != "committed":
        return TxResult(tx_id, status)
    return TxResult(tx_id, status, _field(node, doc, "height", int), _field(node, doc, "index", int),
                    parse_receipt(node, _field(node, doc, "receipt", dict)))


def parse_block_event(node: str, data: Any) -> BlockEvent:
    tx_ids = data.get("tx_ids") if isinstance(data, dict) else None
    return BlockEvent(_field(node, data, "height", int), _field(node, data, "hash", str),
                      _field(node, data, "txs", int), _field(node, data, "proposer", str),
                      _field(node, data, "timestamp_ms", int),
                      tuple(tx_ids) if isinstance(tx_ids, list) else None)


def settled_submission(submission: Submission, retried: bool) -> Submission:
    """A `duplicate` answer to a request sent more than once is our own earlier
    attempt having got through: accepted."""
    if retried and not submission.accepted and submission.reason == "duplicate":
        return Submission(submission.tx_id, True, None)
    return submission


def raise_if_refused(node: str, submission: Submission) -> None:
    if not submission.accepted:
        raise refused(node, submission.tx_id, submission.reason)


def raise_for_outcome(node: str, outcome: TxResult) -> TxResult:
    if outcome.committed:
        assert outcome.receipt is not None
        if not outcome.receipt.ok:
            raise TxFailed(f"transaction {outcome.tx_id} failed at height {outcome.height}: "
                           f"{outcome.receipt.status}: {outcome.receipt.message}", outcome)
        return outcome
    if outcome.status == "pending":
        raise TxNotCommitted(f"transaction {outcome.tx_id} was accepted by the node at {node} "
                             "but is not committed yet", outcome.tx_id, outcome.status)
    raise TxNotCommitted(f"transaction {outcome.tx_id} was dropped by the node at {node}: "
                         f"{outcome.status}", outcome.tx_id, outcome.status)


class LineSplitter:
    """Bytes of a stream -> its lines, none longer than MAX_SSE_LINE (a node
    that never ends a line must not make the client buffer without bound)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, node: str, chunk: bytes) -> list[str]:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_SSE_LINE:
            raise ProtocolViolation(f"node at {node} sent an event line over {MAX_SSE_LINE} bytes")
        return [line.decode("utf-8", "replace") for line in lines]


class SseParser:
    """Server-sent events from lines: feed each line, get (id, event, data) when
    a blank line ends an event.  Comments (heartbeats) are skipped."""

    def __init__(self) -> None:
        self._event, self._data, self._id = "message", [], None
        self.last_id: str | None = None

    def feed(self, line: str) -> Iterator[tuple[str | None, str, Any]]:
        line = line.rstrip("\r\n")
        if not line:
            if self._data:
                text = "\n".join(self._data)
                try:
                    payload: Any = json.loads(text)
                except json.JSONDecodeError:
                    payload = text
                if self._id is not None:
                    self.last_id = self._id
                yield self._id, self._event, payload
            self._event, self._data, self._id = "message", [], None
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value


class BlockStream:
    """Where a committed-block stream stands across reconnections: what to
    ask for next (resuming after the last event seen), the events in the bytes
    received, and how long to wait after a break (`retries` breaks in a row
    without an event in between end it)."""

    def __init__(self, node: str, from_height: int | None, retries: int) -> None:
        self._node = node
        self._from = from_height
        self._retries = retries
        self._failures = 0
        self._events = SseParser()
        self._lines = LineSplitter()

    def request(self) -> tuple[str, dict[str, str]]:
        """The path and headers of the next connection."""
        self._lines = LineSplitter()
        headers = {"Accept": "text/event-stream"}
        last = self._events.last_id
        if last is not None:
            headers["Last-Event-ID"] = last
        return events_path(self._from if last is None else None), headers

    def check_answer(self, status: int, body: bytes) -> None:
        if status != 200:
            document(self._node, Call("GET", "/events/blocks"), status, body)

    def feed(self, chunk: bytes) -> list[BlockEvent]:
        blocks = []
        for line in self._lines.feed(self._node, chunk):
            for _, event, data in self._events.feed(line):
                if event == "block":
                    self._failures = 0
                    blocks.append(parse_block_event(self._node, data))
        return blocks

    def ended(self) -> NodeUnavailable:
        return NodeUnavailable(f"node at {self._node} closed the event stream")

    def broken(self, exc: Exception) -> float:
        """Seconds to wait before reconnecting; raises once out of retries."""
        self._failures += 1
        if self._failures > self._retries:
            raise exc if isinstance(exc, NodeUnavailable) else unreachable(self._node, exc)
        return backoff_s(self._failures, None)


def unreachable(node: str, exc: BaseException) -> NodeUnavailable:
    """One line for a request that got no answer (httpx's texts vary by cause)."""
    text = str(exc) or type(exc).__name__
    if "timeout" in type(exc).__name__.lower() or "timed out" in text.lower():
        return NodeUnavailable(f"node at {node} did not answer in time")
    if "refused" in text.lower():
        return NodeUnavailable(f"cannot reach node at {node}: connection refused")
    if "name or service not known" in text.lower() or "nodename nor servname" in text.lower():
        return NodeUnavailable(f"cannot reach node at {node}: unknown host")
    return NodeUnavailable(f"cannot reach node at {node}: {text.splitlines()[0]}")
