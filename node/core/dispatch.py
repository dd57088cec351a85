"""Routing what peers send to the part of the node that handles it.

Each inbound batch (one frame from one peer, named by its node key) is
decoded message by message: consensus messages are stepped through the core
together (one driver step per frame, not per message), with the sender named
by its node key (the core maps it in the message's epoch and ignores a node
that does not vote there); STATUS and BLOCKS go to block sync, GET_BLOCKS is
answered from the store (the blocks, then this node's STATUS), GET_CHECKPOINTS
too (the kept checkpoints), CHECKPOINTS go to the checkpoint fetch
(node.core.checkpoint_fetch), NEW_BLOCK (a validator's push) goes to the follower
unless this node votes in its replica's epoch (a push that crossed its
promotion is not needed: its core delivers the block).  An observer has no
driver until governance makes it a validator-to-be (`attach_driver`); a
consensus message to it before that is a fault of its sender.  A malformed message is dropped and counted as a fault of that
peer; the rest of the batch still counts.

Txs go to a queue of their own, admitted by another task (`run_tx_intake`):
a TXS frame carries up to 5,000 txs, each with a signature to check (~0.3 s
a frame, more on a busy machine), and consensus messages arriving behind a
flood of them must not wait for that (a primary whose votes are late is
suspected).  The queue holds at most MAX_QUEUED_TX_FRAMES frames; beyond
that a frame is dropped and counted: gossip is best effort, and a tx that
matters is re-offered to the primary by whoever holds it (node.core.tx_relay).

A PRE-PREPARE often carries txs this node has not admitted yet (gossip lags
consensus under load).  Before a frame's consensus messages are stepped, the
signatures of those txs are checked on the worker pool (node.core.verify_pool)
and remembered, so the proposal check in the step (synchronous, on the event
loop) finds them checked.  Frames are still stepped one at a time, in order.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable

import trio

from consensus import events as ev
from consensus.errors import RemoteProtocolError
from consensus.messages import PrePrepare, decode_message
from ledger.block import Proposal
from ledger.codec import DecodeError
from node.core import peer_messages
from node.core.checkpoint_fetch import CheckpointFetch, checkpoints_for_peer
from node.core.driver import ConsensusDriver
from node.core.follower import BlockFollower
from node.core.sync import BlockSync, blocks_for_peer, status_of
from node.core.tx_relay import TxRelay
from node.core.verify_pool import VerifyPool
from node.metrics import NodeMetrics
from node.transport.wire import Message
from storage.base import Store

log = logging.getLogger("ynchain.node")

MAX_QUEUED_TX_FRAMES = 8      # ~40,000 txs waiting for admission


class PeerDispatcher:
    def __init__(self, inbound: trio.MemoryReceiveChannel, relay: TxRelay,
                 sync: BlockSync, store: Store, metrics: NodeMetrics, *,
                 send: Callable[[bytes, int, object], bool],
                 on_fault: Callable[[bytes, str], None],
                 follower: BlockFollower,
                 driver: ConsensusDriver | None = None,
                 verifier: VerifyPool | None = None,
                 checkpoints: CheckpointFetch | None = None) -> None:
        """A node that runs the consensus core has a `driver` (from the start,
        or attached when it is promoted); `verifier`: the worker pool that
        checks a PRE-PREPARE's unknown txs before the step (None: the step
        checks them on the event loop); `checkpoints`: where CHECKPOINTS
        answers go (None: this node asks for none, and drops them)."""
        self._inbound = inbound
        self._verifier = verifier
        self._driver = driver
        self._follower = follower
        self._relay = relay
        self._sync = sync
        self._store = store
        self._metrics = metrics
        self._send = send
        self._on_fault = on_fault
        self._checkpoints = checkpoints
        self._tx_frames: deque[tuple[bytes, Any]] = deque()
        self._tx_frame_queued = trio.Event()

    def attach_driver(self, driver: ConsensusDriver) -> None:
        self._driver = driver

    async def run(self) -> None:
        async for peer, messages in self._inbound:
            events = self.dispatch_others(peer, messages)
            if events:
                await self._verify_ahead(events)
                self._driver.step(events)

    async def run_tx_intake(self) -> None:
        """Admit queued TXS frames, a chunk at a time."""
        while True:
            await self._tx_frame_queued.wait()
            self._tx_frame_queued = trio.Event()
            while self._tx_frames:
                peer, payload = self._tx_frames.popleft()
                try:
                    txs = peer_messages.decode_txs(payload)
                except DecodeError as exc:
                    self._malformed(peer, peer_messages.TXS, exc)
                    continue
                await self._relay.admit_chunked(txs, relay=False)

    def dispatch(self, peer: bytes, messages: list[Message]) -> None:
        """Handle one frame at once (its consensus messages in one step)."""
        events = self.dispatch_others(peer, messages)
        if events:
            self._driver.step(events)

    def dispatch_others(self, peer: bytes, messages: list[Message]) -> list[ev.Event]:
        """Handle a frame's messages but for its consensus messages, which are
        decoded and returned, to be stepped through the core together (only
        a node with a driver returns any)."""
        consensus_events = []
        for msg_type, payload in messages:
            try:
                if msg_type == peer_messages.CONSENSUS:
                    if self._driver is None:
                        self._on_fault(peer, "consensus message to an observer")
                        continue
                    if type(payload) is not bytes:
                        raise DecodeError("CONSENSUS payload must be bytes")
                    consensus_events.append(ev.MessageReceived(peer, decode_message(payload)))
                elif msg_type == peer_messages.TXS:
                    self._queue_txs(peer, payload)
                elif msg_type == peer_messages.STATUS:
                    height, _ = peer_messages.decode_status(payload)
                    self._sync.peer_status(peer, height)
                elif msg_type == peer_messages.GET_BLOCKS:
                    first, last = peer_messages.decode_get_blocks(payload)
                    self._send(peer, peer_messages.BLOCKS, blocks_for_peer(self._store, first, last))
                    self._send(peer, peer_messages.STATUS, status_of(self._store))
                elif msg_type == peer_messages.BLOCKS:
                    self._sync.on_blocks(peer, peer_messages.decode_blocks(payload))
                elif msg_type == peer_messages.GET_CHECKPOINTS:
                    first, last = peer_messages.decode_get_checkpoints(payload)
                    self._send(peer, peer_messages.CHECKPOINTS, checkpoints_for_peer(self._store, first, last))
                elif msg_type == peer_messages.CHECKPOINTS:
                    items = peer_messages.decode_checkpoints(payload)
                    if self._checkpoints is not None:
                        self._checkpoints.on_checkpoints(peer, items)
                elif msg_type == peer_messages.NEW_BLOCK:
                    if self._driver is not None and self._driver.replica.index is not None:
                        continue        # a voter's core delivers it (pushed across its promotion)
                    self._follower.pushed(peer, *peer_messages.decode_new_block(payload))
                else:
                    raise DecodeError(f"unknown message type {msg_type}")
            except (DecodeError, RemoteProtocolError) as exc:
                self._malformed(peer, msg_type, exc)
        return consensus_events

    async def _verify_ahead(self, events: list[ev.Event]) -> None:
        """Check on the worker pool the signatures of the txs in these
        PRE-PREPAREs that this node knows nothing of yet."""
        if self._verifier is None:
            return
        mempool, chain = self._driver.mempool, self._driver.chain
        unknown = []
        for event in events:
            message = event.message
            if (type(message) is not PrePrepare or not message.payload or message.seq <= chain.height
                    or len(message.payload) > chain.config.params_at(message.seq).max_proposal_bytes):
                continue
            try:
                proposal = Proposal.decode(message.payload, mempool.tx_by_record)
            except DecodeError:
                continue            # the step refuses it
            self._driver.proposals.decoded_ahead(message.payload, proposal)
            unknown += [tx for tx in proposal.txs
                        if not mempool.is_pending(tx) and not mempool.knows_valid(tx)]
        if unknown:
            for tx, ok in zip(unknown, await self._verifier.verify(unknown)):
                if ok:
                    mempool.remember_verified(tx)

    def _queue_txs(self, peer: bytes, payload: Any) -> None:
        if len(self._tx_frames) >= MAX_QUEUED_TX_FRAMES:
            self._metrics.gossip_txs_dropped(len(payload) if isinstance(payload, list) else 1)
            return
        self._tx_frames.append((peer, payload))
        self._tx_frame_queued.set()

    def _malformed(self, peer: bytes, msg_type: int, exc: Exception) -> None:
        self._on_fault(peer, f"malformed {peer_messages.NAMES.get(msg_type, 'unknown type')}")
        log.debug("dropped malformed message type %s from peer %s: %s", msg_type, peer.hex()[:16], exc)
