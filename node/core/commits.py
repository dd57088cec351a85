"""What happens after a block is stored: its txs leave the mempool, metrics
move, API clients waiting for those txs wake up, and block subscribers (the
SSE streams) get the block.

Every commit, from consensus or from block sync, goes through
`CommitFanout.committed`.  Subscribers get bounded channels: one that falls
too far behind is closed (its stream ends, the client resumes with ?from=)
rather than slowing the node.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

import trio

from node.api.facade import CommittedBlock
from node.core.chain import CommitResult
from node.core.mempool import Mempool
from node.metrics import NodeMetrics

MAX_WAITERS = 100_000          # tx ids API clients may wait for at once
SUBSCRIBER_BUFFER = 1024       # blocks a subscriber may fall behind
MAX_SUBSCRIBERS = 256          # block event streams served at once


class CommitFanout:
    def __init__(self, mempool: Mempool, metrics: NodeMetrics, *,
                 on_mempool_changed: Callable[[], None]) -> None:
        self._mempool = mempool
        self._metrics = metrics
        self._on_mempool_changed = on_mempool_changed
        self._waiters: dict[bytes, list[trio.Event]] = {}
        self._subscribers: set[trio.MemorySendChannel] = set()
        self.last_commit_at = time.monotonic()

    def committed(self, result: CommitResult) -> None:
        block = result.block
        now = time.monotonic()
        self.last_commit_at = now
        removed = self._mempool.committed(block.height, [tx.id for tx in block.txs])
        for entry in removed:
            self._metrics.commit_latency_observed(now - entry.admitted_at)
        self._metrics.block_committed(block.height, len(block.txs))
        self._on_mempool_changed()
        if self._waiters:
            for tx in block.txs:
                for event in self._waiters.pop(tx.id, ()):
                    event.set()
        if self._subscribers:
            item = CommittedBlock(block, result.certificate)
            for channel in list(self._subscribers):
                try:
                    channel.send_nowait(item)
                except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                    self._subscribers.discard(channel)   # too slow: its stream ends
                    channel.close()

    # -- waiting for txs ----------------------------------------------------------------
    async def wait_for(self, tx_ids: list[bytes], is_committed: Callable[[bytes], bool],
                       timeout_s: float) -> None:
        """Return once every id is committed or `timeout_s` has passed (or the
        waiter table is full: the caller then reports what is committed)."""
        events = []
        with trio.move_on_after(timeout_s):
            for tx_id in tx_ids:
                if is_committed(tx_id):
                    continue
                if len(self._waiters) >= MAX_WAITERS:
                    break
                event = trio.Event()
                self._waiters.setdefault(tx_id, []).append(event)
                events.append((tx_id, event))
            for _, event in events:
                await event.wait()
        for tx_id, event in events:   # drop our registrations that did not fire
            waiting = self._waiters.get(tx_id)
            if waiting and event in waiting:
                waiting.remove(event)
                if not waiting:
                    del self._waiters[tx_id]

    # -- block subscribers ---------------------------------------------------------------
    def can_subscribe(self) -> bool:
        return len(self._subscribers) < MAX_SUBSCRIBERS

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[trio.MemoryReceiveChannel]:
        send, recv = trio.open_memory_channel(SUBSCRIBER_BUFFER)
        self._subscribers.add(send)
        try:
            yield recv
        finally:
            self._subscribers.discard(send)
            send.close()
