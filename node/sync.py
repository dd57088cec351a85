"""Block sync: fetch certified blocks from peers when this node is behind.

Triggered by the core (RequestSync: a stable checkpoint beyond its log) or by
peers' STATUS messages (they are ahead and we have not committed for a while).
One request is outstanding at a time; every block is checked against its
commit certificate and re-executed (Chain.apply_synced) before it is stored,
so a lying peer can waste our time but never corrupt the store.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Callable

import trio

from ledger.block import Block
from ledger.certificate import CommitCertificate
from node import gossip
from node.chain import Chain, CommitResult, SyncedBlockError

log = logging.getLogger("ynchain.sync")

REQUEST_TIMEOUT_S = 5.0


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
            last = min(self.peer_heights[peer], first + gossip.MAX_SYNC_BLOCKS - 1)
            req = self._request = _Request(peer, first)
            if not self._send(peer, gossip.GET_BLOCKS, [first, last]):
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
