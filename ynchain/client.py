"""The synchronous client: `Client("http://127.0.0.1:26651", key="finance.key")`.

    with Client(url, key="accounts/finance.key") as node:
        result = node.call("fiscal", "issue", {...})          # waits for the commit
        print(result.height, result.receipt.result)

All request building and answer reading is in `ynchain.protocol`, shared with
`ynchain.aio.AsyncClient`; this module only does the I/O (httpx).
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterator

import httpx

from ledger.crypto import KeyPair
from ledger.tx import Transaction

from . import protocol as p
from .errors import NodeUnavailable
from .models import BatchItem, BlockEvent, Status, Submission, TxResult
from .signing import DEFAULT_VALID_FOR, build_tx, load_signer

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 3
EVENT_IDLE_S = 45.0          # the node sends a heartbeat every 15 s
POLL_S = 0.2


class ClientSettings:
    """What both clients are made of (ynchain.Client, ynchain.aio.AsyncClient).

    `key`: the account that signs `call`s (a KeyPair or a key file).
    `retries`: how often a request the node could not answer (unreachable,
    429, 503) is sent again; safe for submissions (see ynchain.protocol)."""

    def __init__(self, url: str, key: "KeyPair | str | os.PathLike[str] | None", timeout: float,
                 retries: int, valid_for: int) -> None:
        self.url = p.base_url(url)
        self.key = None if key is None else load_signer(key)
        self.timeout = timeout
        self.retries = retries
        self.valid_for = valid_for

    def _request_args(self, call: p.Call) -> dict[str, Any]:
        return {"method": call.method, "url": call.path, "content": call.body,
                "headers": {"Content-Type": "application/json"} if call.body else None,
                "timeout": call.timeout_s or self.timeout}

    def _answer(self, response: httpx.Response, call: p.Call) -> Any:
        return p.document(self.url, call, response.status_code, response.content,
                          response.headers.get("retry-after"))


class Client(ClientSettings):
    def __init__(self, url: str, *, key: "KeyPair | str | os.PathLike[str] | None" = None,
                 timeout: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                 valid_for: int = DEFAULT_VALID_FOR, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(url, key, timeout, retries, valid_for)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                  headers={"Accept": "application/json"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------
    def _once(self, call: p.Call) -> Any:
        try:
            response = self._http.request(**self._request_args(call))
        except httpx.HTTPError as exc:
            raise p.unreachable(self.url, exc) from None
        return self._answer(response, call)

    def _request(self, call: p.Call) -> tuple[Any, bool]:
        """The answer's JSON, and whether it took more than one attempt."""
        attempt = 0
        while True:
            try:
                return self._once(call), attempt > 0
            except NodeUnavailable as exc:
                attempt += 1
                if attempt > self.retries:
                    raise
                time.sleep(p.backoff_s(attempt, exc.retry_after))

    # -- queries -----------------------------------------------------------------------
    def status(self) -> Status:
        return p.parse_status(self.url, self._request(p.status_call())[0])

    def tx(self, tx_id: str) -> TxResult:
        """Where a tx stands (NotFound if this node never saw it)."""
        return p.parse_tx(self.url, self._request(p.tx_call(tx_id))[0])

    def block(self, height: int | None = None) -> dict[str, Any]:
        """A committed block as JSON (the latest one without `height`)."""
        return self._request(p.block_call(height))[0]

    def state(self, contract: str, key: str) -> Any:
        """The committed value of a contract's key (NotFound if absent)."""
        return self._request(p.state_call(contract, key))[0]["value"]

    def get(self, path: str) -> Any:
        """Any other GET of the API (e.g. "/fiscal/receipts/..."), as JSON."""
        return self._request(p.Call("GET", path))[0]

    # -- transactions --------------------------------------------------------------------
    def sign(self, contract: str, method: str, args: Any = None, *,
             valid_for: int | None = None) -> Transaction:
        """A tx signed with this client's key, for the node's chain and height."""
        if self.key is None:
            raise ValueError("this client has no key: Client(url, key=...)")
        status = self.status()
        return build_tx(self.key, status.chain_id, status.height, contract, method,
                        {} if args is None else args, valid_for or self.valid_for)

    def submit(self, tx: Transaction, *, wait: bool = False, timeout: float = DEFAULT_TIMEOUT_S,
               check: bool = True) -> Submission | TxResult:
        """Send one signed tx.  Raises a TxRefused subclass if the node refuses
        it; with `wait`, returns its TxResult once committed (`check`: raise
        TxFailed for an error receipt, TxNotCommitted if not committed in time)."""
        item = self.submit_many([tx], wait=wait, timeout=timeout)[0]
        p.raise_if_refused(self.url, item.submission)
        if not wait:
            return item.submission
        if item.result is not None:
            return p.raise_for_outcome(self.url, item.result) if check else item.result
        # Accepted on a retry (our earlier attempt got in): wait for it here.
        return self.wait(tx.id.hex(), timeout, check=check)

    def submit_many(self, txs: list[Transaction], *, wait: bool = False,
                    timeout: float = DEFAULT_TIMEOUT_S) -> list[BatchItem]:
        """Send a batch; one BatchItem per tx, in order, nothing raised per tx
        (a `duplicate` answer to a retried request counts as accepted)."""
        call = p.submit_call([tx.encode().hex() for tx in txs], wait, timeout)
        doc, retried = self._request(call)
        return [BatchItem(p.settled_submission(s, retried), r)
                for s, r in p.parse_submissions(self.url, doc, len(txs))]

    def call(self, contract: str, method: str, args: Any = None, *, wait: bool = True,
             timeout: float = DEFAULT_TIMEOUT_S, check: bool = True,
             valid_for: int | None = None) -> Submission | TxResult:
        """Sign and submit CONTRACT.METHOD(ARGS); see submit()."""
        return self.submit(self.sign(contract, method, args, valid_for=valid_for),
                           wait=wait, timeout=timeout, check=check)

    def wait(self, tx_id: str, timeout: float = DEFAULT_TIMEOUT_S, *, check: bool = True) -> TxResult:
        """Poll until the tx is committed or dropped, at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.tx(tx_id)
            if result.status != "pending" or time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        return p.raise_for_outcome(self.url, result) if check else result

    # -- events --------------------------------------------------------------------------
    def blocks(self, from_height: int | None = None) -> Iterator[BlockEvent]:
        """Committed blocks as they come, forever; reconnects after a broken
        stream from where it stopped (Last-Event-ID), `retries` times in a row."""
        stream = p.BlockStream(self.url, from_height, self.retries)
        while True:
            path, headers = stream.request()
            try:
                with self._http.stream("GET", path, headers=headers,
                                       timeout=httpx.Timeout(self.timeout, read=EVENT_IDLE_S)) as response:
                    stream.check_answer(response.status_code, response.read() if
                                        response.status_code != 200 else b"")
                    for chunk in response.iter_bytes():
                        yield from stream.feed(chunk)
                raise stream.ended()
            except (httpx.HTTPError, NodeUnavailable) as exc:
                time.sleep(stream.broken(exc))

