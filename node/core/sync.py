"""Block sync: fetch certified blocks from peers when this node is behind.

Triggered by the core (RequestSync: a stable checkpoint beyond its log) or by
peers' STATUS messages (they are ahead and we have not committed for a while):
every node broadcasts its height once a second (`status_loop`).
One request is outstanding at a time; every block is checked against its
commit certificate and re-executed (Chain.apply_synced) before it is stored,
so a lying peer can waste our time but never corrupt the store.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import trio

from ledger.block import Block
from ledger.certificate import CommitCertificate
from node.core import peer_messages
from node.core.chain import Chain, CommitResult, SyncedBlockError
from storage.base import Store

log = logging.getLogger("ynchain.sync")

REQUEST_TIMEOUT_S = 5.0
STATUS_INTERVAL_S = 1.0
STALL_BEFORE_SYNC_S = 1.0


def blocks_for_peer(store: Store, first: int, last: int) -> list[list]:
    """The BLOCKS answer to a GET_BLOCKS: stored blocks first..last with their
    certificates, as stored (no re-encoding), within MAX_SYNC_BYTES."""
    items, total = [], 0
    for height in range(first, min(last, store.last_height()) + 1):
        raw = store.get_block_bytes(height)
        cert = store.get_certificate(height)
        if raw is None or cert is None:
            break
        total += len(raw)
        if items and total > peer_messages.MAX_SYNC_BYTES:
            break
        items.append([raw, cert.to_record()])
    return items


@dataclass
class _Request:
    peer: int
    first: int
    done: trio.Event = field(default_factory=trio.Event)
    blocks: list[tuple[Block, CommitCertificate]] | None = None


class BlockSync:
    def __init__(self, chain: Chain, *, send: Callable[[int, int, object], bool],
                 connected: Callable[[], list[int]],
                 apply: Callable[[list[CommitResult]], None],
                 on_progress: Callable[[int, int, int], None]) -> None:
        self.chain = chain
        self._send = send
        self._connected = connected
        self._apply = apply
        self._on_progress = on_progress
        self.peer_heights: dict[int, int] = {}
        self.target = 0
        self.active = False
        self._wanted = trio.Event()
        self._request: _Request | None = None
        self._rng = random.Random()

    async def status_loop(self, broadcast: Callable[[int, object], int], store: Store,
                          last_commit_at: Callable[[], float], lag_blocks: int) -> None:
        """Tell peers our height every STATUS_INTERVAL_S; sync when a peer is
        ahead and we stalled, or when we are more than `lag_blocks` behind."""
        while True:
            broadcast(peer_messages.STATUS, [store.last_height(), store.last_block_hash()])
            best, height = self.best_peer_height(), self.chain.height
            stalled = time.monotonic() - last_commit_at() > STALL_BEFORE_SYNC_S
            if best > height and (stalled or best - height > lag_blocks):
                self.want(best)
            await trio.sleep(STATUS_INTERVAL_S)

    def want(self, height: int) -> None:
        if height > self.chain.height:
            self.target = max(self.target, height)
            self._wanted.set()

    def peer_status(self, peer: int, height: int) -> None:
        self.peer_heights[peer] = height

    def best_peer_height(self) -> int:
        connected = set(self._connected())
        return max((h for p, h in self.peer_heights.items() if p in connected), default=0)

    def on_blocks(self, peer: int, blocks: list[tuple[Block, CommitCertificate]]) -> None:
        req = self._request
        if req is not None and req.peer == peer and not req.done.is_set():
            req.blocks = blocks
            req.done.set()

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            self.active = True
            start_height, started = self.chain.height, trio.current_time()
            try:
                await self._catch_up()
            finally:
                self.active = False
                self.target = 0   # reached, or nobody could serve it (a peer may have lied)
                synced = self.chain.height - start_height
                if synced:
                    log.info("block sync: %d blocks, height %d -> %d in %.2fs", synced,
                             start_height, self.chain.height, trio.current_time() - started)

    async def _catch_up(self) -> None:
        failures = 0
        while True:
            height = self.chain.height
            goal = max(self.target, self.best_peer_height())
            if height >= goal:
                return
            connected = set(self._connected())
            candidates = [p for p, h in self.peer_heights.items() if h > height and p in connected]
            if not candidates:
                return
            peer = self._rng.choice(candidates)
            first = height + 1
            last = min(self.peer_heights[peer], first + peer_messages.MAX_SYNC_BLOCKS - 1)
            req = self._request = _Request(peer, first)
            if not self._send(peer, peer_messages.GET_BLOCKS, [first, last]):
                failures += 1
            else:
                with trio.move_on_after(REQUEST_TIMEOUT_S):
                    await req.done.wait()
            self._request = None
            if not req.blocks:
                failures += 1
                log.info("block sync: no answer from peer %d for heights %d..%d", peer, first, last)
                self.peer_heights.pop(peer, None)
                if failures > 10:
                    return
                await trio.sleep(min(0.05 * 2**failures, 2.0))
                continue
            results = []
            for block, cert in req.blocks:
                if block.height <= self.chain.height:
                    continue
                try:
                    results.append(self.chain.apply_synced(block, cert))
                except SyncedBlockError as exc:
                    log.warning("block sync: peer %d served a bad block: %s", peer, exc)
                    self.peer_heights.pop(peer, None)
                    break
            self._apply(results)
            if results:
                failures = 0
                self._on_progress(self.chain.height, goal, len(results))
            await trio.sleep(0)
