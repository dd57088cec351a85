"""Block sync: fetch certified blocks from peers when this node is behind.

Triggered by the core (RequestSync: a stable checkpoint beyond its log) or by
peers' STATUS messages (they are ahead and we have not committed for a while):
every node broadcasts its height once a second (`status_loop`).  A node also
sends its STATUS right behind every BLOCKS answer, so a session goes on to
where the serving peer is now, not where it was up to a second ago: on a
chain committing tens of blocks a second, a node that stopped at the older
height would stay further behind than the core's window and never vote again.
One request is outstanding at a time; every block is checked against its
commit certificate and re-executed (Chain.apply_synced) before it is stored,
so a lying peer can waste our time but never corrupt the store.  When a
session stored blocks, their heights and the peers that served them go to
`on_synced`: the node fetches those peers' kept stable checkpoints for them
(node.core.checkpoint_fetch), which its own core never saw become stable.

A sync session shows its progress (`SyncProgress`): `progress()` for /status
({target, height, rate, eta_s}), and a log line at most every
PROGRESS_LOG_INTERVAL_S with blocks done, rate and estimated time left.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from typing import Any, Callable

import trio

from ledger.block import Block
from ledger.certificate import CommitCertificate
from node.core import peer_messages
from node.core.chain import Chain, CommitResult, SyncedBlockError
from node.core.peer_request import PeerRequest
from storage.base import Store

log = logging.getLogger("ynchain.sync")

STATUS_INTERVAL_S = 1.0
STALL_BEFORE_SYNC_S = 1.0
PROGRESS_LOG_INTERVAL_S = 5.0
RATE_WINDOW_S = 10.0            # the rate is measured over the last this many seconds


def status_of(store: Store) -> list:
    """The STATUS payload: this node's height and last block hash."""
    return [store.last_height(), store.last_block_hash()]


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


class SyncProgress:
    """How far one sync session got: blocks per second over the last
    RATE_WINDOW_S and the time left at that rate.  Pure: times come in as
    arguments (trio's clock in the node, any numbers in tests)."""

    __slots__ = ("start_height", "height", "target", "started", "_samples", "_last_log")

    def __init__(self, height: int, target: int, now: float) -> None:
        self.start_height = self.height = height
        self.target = target
        self.started = now
        self._samples: deque[tuple[float, int]] = deque([(now, height)])
        self._last_log = now

    def advance(self, height: int, target: int, now: float) -> None:
        self.height = height
        self.target = max(target, height)
        samples = self._samples
        samples.append((now, height))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()

    @property
    def rate(self) -> float | None:
        """Blocks per second, None until there is a time span to measure over."""
        (t0, h0), (t1, h1) = self._samples[0], self._samples[-1]
        return (h1 - h0) / (t1 - t0) if t1 > t0 else None

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.target - self.height) / rate if rate else None

    def as_dict(self) -> dict[str, Any]:
        rate, eta = self.rate, self.eta_s
        return {"target": self.target, "height": self.height,
                "rate": None if rate is None else round(rate, 1),
                "eta_s": None if eta is None else round(eta, 1)}

    def due_for_log(self, now: float) -> bool:
        """At most one progress line per PROGRESS_LOG_INTERVAL_S."""
        if now - self._last_log < PROGRESS_LOG_INTERVAL_S:
            return False
        self._last_log = now
        return True

    def describe(self) -> str:
        rate, eta = self.rate, self.eta_s
        speed = "" if rate is None else f", {rate:.0f} blocks/s"
        left = "" if eta is None else f", about {eta:.0f}s left"
        return (f"height {self.height} of {self.target} ({self.height - self.start_height} blocks "
                f"fetched, {self.target - self.height} to go{speed}{left})")


class BlockSync:
    """`on_progress(height, target, applied)` runs after every batch of blocks
    stored, and with target 0 (and nothing applied) when a session ends;
    `on_synced(peers, first, last)` when a session stored blocks first..last,
    with the peers that served them, the latest first (the node fetches their
    kept checkpoints: node.core.checkpoint_fetch)."""

    def __init__(self, chain: Chain, *, send: Callable[[int, int, object], bool],
                 connected: Callable[[], list[int]],
                 apply: Callable[[list[CommitResult]], None],
                 on_progress: Callable[[int, int, int], None],
                 on_synced: Callable[[list[bytes], int, int], None] | None = None) -> None:
        self.chain = chain
        self._connected = connected
        self._apply = apply
        self._on_progress = on_progress
        self._on_synced = on_synced
        self._served: dict[bytes, None] = {}     # this session's serving peers, in order of last use
        self.peer_heights: dict[bytes, int] = {}
        self.target = 0
        self.active = False
        self.session: SyncProgress | None = None     # while a session runs
        self._wanted = trio.Event()
        self._request = PeerRequest(send)
        self._rng = random.Random()

    async def status_loop(self, broadcast: Callable[[int, object], int], store: Store,
                          last_commit_at: Callable[[], float], lag_blocks: int) -> None:
        """Tell peers our height every STATUS_INTERVAL_S; sync when a peer is
        ahead and we stalled, or when we are more than `lag_blocks` behind."""
        while True:
            broadcast(peer_messages.STATUS, status_of(store))
            best, height = self.best_peer_height(), self.chain.height
            stalled = time.monotonic() - last_commit_at() > STALL_BEFORE_SYNC_S
            if best > height and (stalled or best - height > lag_blocks):
                self.want(best)
            await trio.sleep(STATUS_INTERVAL_S)

    def want(self, height: int) -> None:
        if height > self.chain.height:
            self.target = max(self.target, height)
            self._wanted.set()

    def progress(self) -> dict[str, Any] | None:
        """{target, height, rate (blocks/s), eta_s} while syncing, else None."""
        return None if self.session is None else self.session.as_dict()

    def peer_status(self, peer: bytes, height: int) -> None:
        self.peer_heights[peer] = height

    def known_behind(self, margin: int, f: int) -> bool:
        """More than f connected peers say they are over `margin` blocks ahead of
        us: at least one of them is correct, so this node really lags (one lying
        peer cannot make it think so)."""
        connected = set(self._connected())
        limit = self.chain.height + margin
        return sum(1 for p, h in self.peer_heights.items() if p in connected and h > limit) > f

    def best_peer_height(self) -> int:
        connected = set(self._connected())
        return max((h for p, h in self.peer_heights.items() if p in connected), default=0)

    def on_blocks(self, peer: bytes, blocks: list[tuple[Block, CommitCertificate]]) -> None:
        self._request.answered(peer, blocks)

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            self.active = True
            self._served.clear()
            session = self.session = SyncProgress(
                self.chain.height, max(self.target, self.best_peer_height()), trio.current_time())
            try:
                await self._catch_up()
            finally:
                self.active = False
                self.session = None
                self.target = 0   # reached, or nobody could serve it (a peer may have lied)
                self._on_progress(self.chain.height, 0, 0)   # the session is over
                synced = self.chain.height - session.start_height
                if synced:
                    log.info("block sync: %d blocks, height %d -> %d in %.2fs", synced,
                             session.start_height, self.chain.height,
                             trio.current_time() - session.started)
                    if self._on_synced is not None:
                        self._on_synced(list(reversed(self._served)), session.start_height + 1,
                                        self.chain.height)

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
            blocks = await self._request.ask(peer, peer_messages.GET_BLOCKS, [first, last])
            if not blocks:
                failures += 1
                log.info("block sync: no answer from peer %s for heights %d..%d", peer.hex()[:16], first, last)
                self.peer_heights.pop(peer, None)
                if failures > 10:
                    return
                await trio.sleep(min(0.05 * 2**failures, 2.0))
                continue
            results = []
            for block, cert in blocks:
                if block.height <= self.chain.height:
                    continue
                try:
                    results.append(self.chain.apply_synced(block, cert))
                except SyncedBlockError as exc:
                    log.warning("block sync: peer %s served a bad block: %s", peer.hex()[:16], exc)
                    self.peer_heights.pop(peer, None)
                    break
            self._apply(results)
            if results:
                failures = 0
                self._served.pop(peer, None)
                self._served[peer] = None
                self._on_progress(self.chain.height, goal, len(results))
                self._show_progress(goal)
            await trio.sleep(0)

    def _show_progress(self, goal: int) -> None:
        session, now = self.session, trio.current_time()
        if session is None:
            return
        session.advance(self.chain.height, goal, now)
        if session.height < session.target and session.due_for_log(now):
            log.info("block sync: %s", session.describe())
