"""Transactions the campaign sends, and what became of each.

Every tx is a kv put signed by one of the testnet's department accounts (as
`ynchain bench` signs them).  `TxBook` records, per tx id, which node accepted it
and when, whether a `wait=true` answer acknowledged its commit, and tallies every
refusal: tx refusals by reason (which must be one of ledger.admission.REASONS),
API refusals by (HTTP status, error code) (which must be JSON with a code).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import trio

from cli.bench import Workload, make_batches, sign_all
from cli.client import NodeClient
from cli.errors import NodeError
from ledger.admission import REASONS

# What a tx was sent for; only "expiry" txs may legitimately never commit.
LOAD, WAIT, FLOOD, EXPIRY = "load", "wait", "flood", "expiry"
MAX_SAMPLES = 20            # examples of unclear refusals kept for the summary
WAIT_TIMEOUT_S = 10.0


@dataclass(slots=True)
class Sent:
    kind: str
    node: int
    valid_until: int
    # When the request that the node accepted it from was sent (None: refused, or the
    # answer never came): the node may hold it from then on, so a node that goes down
    # after that moment may lose it, even if its answer arrives a moment after the kill.
    accepted_at: float | None = None
    acked_height: int | None = None      # committed at this height, per a wait=true answer


@dataclass
class TxBook:
    txs: dict[bytes, Sent] = field(default_factory=dict)
    tx_refusals: Counter = field(default_factory=Counter)           # reason -> count
    api_refusals: Counter = field(default_factory=Counter)          # "status code" -> count
    unanswered: int = 0              # txs in requests that got no answer (node down, timeout)
    server_errors: int = 0           # 5xx other than 503 with a code
    unclear: list[dict] = field(default_factory=list)
    unclear_count: int = 0

    def unclear_answer(self, what: str, **details: Any) -> None:
        self.unclear_count += 1
        if len(self.unclear) < MAX_SAMPLES:
            self.unclear.append({"what": what, **details})

    def record(self, kind: str, node: int, ids: tuple[bytes, ...], valid_until: int,
               status: int | None, doc: Any, asked_at: float, path: str = "/txs") -> None:
        """The answer (or the lack of one: status None) to one POST of `ids`, sent at `asked_at`."""
        for tx_id in ids:
            self.txs.setdefault(tx_id, Sent(kind, node, valid_until))
        if status is None:
            self.unanswered += len(ids)
            return
        if not 200 <= status < 300:
            self.api_refusal(status, doc, f"POST {path}")
            return
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list) or len(results) != len(ids):
            self.unclear_answer("answer without one result per tx", path=path, status=status,
                                body=_short(doc))
            return
        for tx_id, result in zip(ids, results):
            if not isinstance(result, dict):
                self.unclear_answer("a result that is not an object", path=path)
                continue
            if result.get("accepted") is True:
                sent = self.txs[tx_id]
                sent.accepted_at = asked_at if sent.accepted_at is None else sent.accepted_at
                if result.get("committed") is True and type(result.get("height")) is int:
                    sent.acked_height = result["height"]
                continue
            reason = result.get("reason")
            self.tx_refusals[str(reason)] += 1
            if reason not in REASONS:
                self.unclear_answer("tx refused without a known reason", reason=reason, path=path)

    def api_refusal(self, status: int, doc: Any, request: str) -> None:
        """A non-2xx answer: it must be JSON {"error": str, "code": str}, never a 5xx
        other than 503."""
        code = doc.get("code") if isinstance(doc, dict) else None
        clear = isinstance(code, str) and isinstance(doc.get("error"), str)
        self.api_refusals[f"{status} {code if clear else '?'}"] += 1
        if status >= 500 and status != 503:
            self.server_errors += 1
            self.unclear_answer("server error", status=status, request=request, body=_short(doc))
        elif not clear:
            self.unclear_answer("refusal without a JSON error code", status=status, request=request,
                          body=_short(doc))


def _short(doc: Any) -> str:
    return doc[:200] if isinstance(doc, str) else json.dumps(doc)[:200]


def post(client: NodeClient, path: str, body: bytes, content_type: str,
         timeout_s: float) -> tuple[int | None, Any]:
    """(HTTP status, the JSON body, or the start of a body that is not JSON);
    status None if no answer came."""
    try:
        status, data = client.request_raw("POST", path, body, content_type, timeout_s)
    except NodeError:
        return None, None
    try:
        return status, json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return status, f"(not JSON: {len(data)} bytes) {data[:120]!r}"


class Signer:
    """Signs batches of kv puts from the testnet's accounts (a process pool for big ones)."""

    def __init__(self, seeds: list[bytes], chain_id: str, validity_window: int) -> None:
        self.seeds = seeds
        self.chain_id = chain_id
        self.window = validity_window

    def batches(self, count: int, size: int, valid_until: int, nodes: int = 1):
        """msgpack batch bodies (cli.bench.Batch) of `size` txs, dealt round-robin to nodes."""
        signed = sign_all(Workload("kv", seeds=self.seeds), self.chain_id, valid_until,
                          os.urandom(4).hex(), count)
        return make_batches(signed, size, nodes)


@dataclass
class LoadStats:
    requests: int = 0
    batches_waited: int = 0


class SteadyLoad:
    """Per node: a `fire` lane (accepted is enough) and a `wait=true` lane, each one
    batch of `batch` txs per `interval_s`, for as long as the node is up."""

    def __init__(self, bed, book: TxBook, signer: Signer, clock, height, batch: int,
                 interval_s: float) -> None:
        self.bed = bed
        self.book = book
        self.signer = signer
        self.clock = clock
        self.height = height           # () -> the highest height the monitor saw
        self.batch = batch
        self.interval_s = interval_s
        self.stats = LoadStats()
        self.paused = False
        self.in_flight = 0

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for i in range(self.bed.n):
                nursery.start_soon(self._lane, i, False)
                nursery.start_soon(self._lane, i, True)

    async def _lane(self, i: int, wait: bool) -> None:
        client = NodeClient(self.bed.url(i), timeout=WAIT_TIMEOUT_S + 15)
        path = f"/txs?wait=true&timeout={WAIT_TIMEOUT_S:g}" if wait else "/txs"
        try:
            while True:
                began = trio.current_time()
                if self.bed.nodes[i].state == "up" and not self.paused:
                    # Half the window: a node that lags the highest height must not
                    # find the tx too far ahead.
                    valid_until = self.height() + self.signer.window // 2
                    self.in_flight += 1
                    [batch] = await trio.to_thread.run_sync(self.signer.batches, self.batch, self.batch,
                                                            valid_until)
                    asked_at = self.clock()
                    status, doc = await trio.to_thread.run_sync(
                        post, client, path, batch.body, "application/msgpack", WAIT_TIMEOUT_S + 15,
                        abandon_on_cancel=True)
                    self.book.record(WAIT if wait else LOAD, i, batch.ids, valid_until, status, doc,
                                     asked_at, path)
                    self.in_flight -= 1
                    self.stats.requests += 1
                    self.stats.batches_waited += wait
                await trio.sleep_until(began + self.interval_s)
        finally:
            client.close()
