"""The asynchronous client (httpx over anyio: runs under trio or asyncio).

    async with AsyncClient(url, key="accounts/finance.key") as node:
        result = await node.call("fiscal", "issue", {...})
        async for block in node.blocks():
            ...

The same calls as `ynchain.Client`, awaited; requests and answers come from
`ynchain.protocol`, so the two clients cannot disagree.
"""

from __future__ import annotations

import os
from typing import Any, AsyncIterator

import anyio
import httpx

from ledger.crypto import KeyPair
from ledger.tx import Transaction

from . import protocol as p
from .client import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, EVENT_IDLE_S, POLL_S, ClientSettings
from .errors import NodeUnavailable
from .models import BatchItem, BlockEvent, Status, Submission, TxResult
from .signing import DEFAULT_VALID_FOR, build_tx


class AsyncClient(ClientSettings):
    def __init__(self, url: str, *, key: "KeyPair | str | os.PathLike[str] | None" = None,
                 timeout: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                 valid_for: int = DEFAULT_VALID_FOR,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(url, key, timeout, retries, valid_for)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport,
                                       headers={"Accept": "application/json"})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _once(self, call: p.Call) -> Any:
        try:
            response = await self._http.request(**self._request_args(call))
        except httpx.HTTPError as exc:
            raise p.unreachable(self.url, exc) from None
        return self._answer(response, call)

    async def _request(self, call: p.Call) -> tuple[Any, bool]:
        attempt = 0
        while True:
            try:
                return await self._once(call), attempt > 0
            except NodeUnavailable as exc:
                attempt += 1
                if attempt > self.retries:
                    raise
                await anyio.sleep(p.backoff_s(attempt, exc.retry_after))

    async def status(self) -> Status:
        return p.parse_status(self.url, (await self._request(p.status_call()))[0])

    async def tx(self, tx_id: str) -> TxResult:
        return p.parse_tx(self.url, (await self._request(p.tx_call(tx_id)))[0])

    async def block(self, height: int | None = None) -> dict[str, Any]:
        return (await self._request(p.block_call(height)))[0]

    async def state(self, contract: str, key: str) -> Any:
        return (await self._request(p.state_call(contract, key)))[0]["value"]

    async def get(self, path: str) -> Any:
        return (await self._request(p.Call("GET", path)))[0]

    async def sign(self, contract: str, method: str, args: Any = None, *,
                   valid_for: int | None = None) -> Transaction:
        if self.key is None:
            raise ValueError("this client has no key: AsyncClient(url, key=...)")
        status = await self.status()
        return build_tx(self.key, status.chain_id, status.height, contract, method,
                        {} if args is None else args, valid_for or self.valid_for)

    async def submit(self, tx: Transaction, *, wait: bool = False, timeout: float = DEFAULT_TIMEOUT_S,
                     check: bool = True) -> Submission | TxResult:
        item = (await self.submit_many([tx], wait=wait, timeout=timeout))[0]
        p.raise_if_refused(self.url, item.submission)
        if not wait:
            return item.submission
        if item.result is not None:
            return p.raise_for_outcome(self.url, item.result) if check else item.result
        return await self.wait(tx.id.hex(), timeout, check=check)

    async def submit_many(self, txs: list[Transaction], *, wait: bool = False,
                          timeout: float = DEFAULT_TIMEOUT_S) -> list[BatchItem]:
        call = p.submit_call([tx.encode().hex() for tx in txs], wait, timeout)
        doc, retried = await self._request(call)
        return [BatchItem(p.settled_submission(s, retried), r)
                for s, r in p.parse_submissions(self.url, doc, len(txs))]

    async def call(self, contract: str, method: str, args: Any = None, *, wait: bool = True,
                   timeout: float = DEFAULT_TIMEOUT_S, check: bool = True,
                   valid_for: int | None = None) -> Submission | TxResult:
        tx = await self.sign(contract, method, args, valid_for=valid_for)
        return await self.submit(tx, wait=wait, timeout=timeout, check=check)

    async def wait(self, tx_id: str, timeout: float = DEFAULT_TIMEOUT_S, *, check: bool = True) -> TxResult:
        with anyio.move_on_after(timeout):
            while (result := await self.tx(tx_id)).status == "pending":
                await anyio.sleep(POLL_S)
        result = await self.tx(tx_id)
        return p.raise_for_outcome(self.url, result) if check else result

    async def blocks(self, from_height: int | None = None) -> AsyncIterator[BlockEvent]:
        stream = p.BlockStream(self.url, from_height, self.retries)
        while True:
            path, headers = stream.request()
            try:
                async with self._http.stream("GET", path, headers=headers,
                                             timeout=httpx.Timeout(self.timeout, read=EVENT_IDLE_S)) as response:
                    stream.check_answer(response.status_code, await response.aread() if
                                        response.status_code != 200 else b"")
                    async for chunk in response.aiter_bytes():
                        for block in stream.feed(chunk):
                            yield block
                raise stream.ended()
            except (httpx.HTTPError, NodeUnavailable) as exc:
                await anyio.sleep(stream.broken(exc))
