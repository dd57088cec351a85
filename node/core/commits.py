"""What happens after a block is stored: its txs leave the mempool (and the
txs it made too old expire), metrics move, API clients waiting for those txs
wake up, and block subscribers (the SSE streams) get the block.  After a large
drain of the mempool, freed heap memory is given back (node.core.heap).

Every commit, from consensus or from block sync, goes through
`CommitFanout.committed`.  Subscribers get bounded channels: one that falls
too far behind is closed (its stream ends, the client resumes with ?from=)
rather than slowing the node.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

import trio

from ledger import admission
from node.api.facade import CommittedBlock
from node.core.chain import CommitResult
from node.core.heap import DrainWatch
from node.core.mempool import Mempool
from node.metrics import NodeMetrics

MAX_WAITERS = 100_000          # tx ids API clients may wait for at once
SUBSCRIBER_BUFFER = 1024       # blocks a subscriber may fall behind
MAX_SUBSCRIBERS = 256          # block event streams served at once
WAIT_CHUNK = 1024              # ids registered between two yields to the event loop


class _Waiter:
    """One API request waiting for some tx ids to settle (commit or drop)."""

    __slots__ = ("remaining", "done")

    def __init__(self) -> None:
        self.remaining = 0
        self.done = trio.Event()

    def settled(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()


class Subscription:
    """A reserved place among a node's block subscribers.  Reserving is
    synchronous (so a cap cannot be overrun by requests racing each other);
    the channel is opened later, when the stream is ready to follow blocks."""

    def __init__(self, hub: "BlockSubscribers") -> None:
        self._hub = hub
        self._closed = False

    @contextmanager
    def open(self) -> Iterator[trio.MemoryReceiveChannel]:
        """A bounded channel of CommittedBlock, fed until the context ends or
        the subscriber falls SUBSCRIBER_BUFFER blocks behind (then it ends)."""
        send, recv = trio.open_memory_channel(self._hub.buffer)
        self._hub._channels.add(send)
        try:
            yield recv
        finally:
            self._hub._channels.discard(send)
            send.close()

    def close(self) -> None:
        """Give the place back (idempotent)."""
        if not self._closed:
            self._closed = True
            self._hub._reserved -= 1


class BlockSubscribers:
    """The block event streams: at most `limit`, each with a bounded buffer."""

    def __init__(self, limit: int = MAX_SUBSCRIBERS, buffer: int = SUBSCRIBER_BUFFER) -> None:
        self.limit = limit
        self.buffer = buffer
        self._reserved = 0
        self._channels: set[trio.MemorySendChannel] = set()

    def __len__(self) -> int:
        return self._reserved

    def reserve(self) -> Subscription | None:
        if self._reserved >= self.limit:
            return None
        self._reserved += 1
        return Subscription(self)

    def publish(self, item: CommittedBlock) -> None:
        for channel in list(self._channels):
            try:
                channel.send_nowait(item)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._channels.discard(channel)   # too slow: its stream ends
                channel.close()


class CommitFanout:
    def __init__(self, mempool: Mempool, metrics: NodeMetrics, *,
                 on_mempool_changed: Callable[[], None]) -> None:
        self._mempool = mempool
        self._metrics = metrics
        self._on_mempool_changed = on_mempool_changed
        self._waiters: dict[bytes, list[_Waiter]] = {}
        self._waiting_ids = 0
        self.subscribers = BlockSubscribers()
        self.last_commit_at = time.monotonic()
        self.last_block_txs = 0
        self._drains = DrainWatch()

    def committed(self, result: CommitResult) -> None:
        block = result.block
        now = time.monotonic()
        self.last_commit_at = now
        self.last_block_txs = len(block.txs)
        drained = self._mempool.committed(block.height, [tx.id for tx in block.txs])
        for entry in drained.committed:
            self._metrics.commit_latency_observed(now - entry.admitted_at)
        if drained.expired:
            self._metrics.mempool_dropped(admission.EXPIRED, len(drained.expired))
        self._metrics.block_committed(block.height, len(block.txs))
        self._on_mempool_changed()
        self._drains.observe(len(self._mempool))
        if self._waiters:
            for tx in block.txs:
                self._settle(tx.id)
            for tx_id in drained.expired:
                self._settle(tx_id)
        self.subscribers.publish(CommittedBlock(block, result.certificate))

    def _settle(self, tx_id: bytes) -> None:
        waiting = self._waiters.pop(tx_id, None)
        if waiting:
            self._waiting_ids -= len(waiting)
            for waiter in waiting:
                waiter.settled()

    # -- waiting for txs ----------------------------------------------------------------
    async def wait_for(self, tx_ids: list[bytes], is_settled: Callable[[bytes], bool],
                       timeout_s: float) -> None:
        """Return once every id is settled (committed, or dropped by the
        mempool) or `timeout_s` has passed.  When the waiter table is full the
        ids beyond it are not waited for (the caller reports what is settled).
        Registers WAIT_CHUNK ids at a time, yielding to the event loop in
        between; an id is checked and registered in one synchronous step, so
        no commit slips between."""
        waiter = _Waiter()
        registered: list[bytes] = []
        try:
            with trio.move_on_after(timeout_s):
                for start in range(0, len(tx_ids), WAIT_CHUNK):
                    if start:
                        await trio.sleep(0)
                    if self._waiting_ids >= MAX_WAITERS:
                        break
                    for tx_id in tx_ids[start:start + WAIT_CHUNK]:
                        if self._waiting_ids >= MAX_WAITERS:
                            break
                        if is_settled(tx_id):
                            continue
                        self._waiters.setdefault(tx_id, []).append(waiter)
                        self._waiting_ids += 1
                        waiter.remaining += 1
                        registered.append(tx_id)
                if waiter.remaining:
                    await waiter.done.wait()
        finally:
            if waiter.remaining:       # drop our registrations that did not fire
                for tx_id in registered:
                    waiting = self._waiters.get(tx_id)
                    if waiting and waiter in waiting:
                        waiting.remove(waiter)
                        self._waiting_ids -= 1
                        if not waiting:
                            del self._waiters[tx_id]
