"""The ynchain daemon: one department's peer.

Wires the pieces together and implements the NodeFacade the HTTP API uses:

    PeerManager --inbound batches--> _network_loop --> ConsensusDriver.step --> Replica
         ^                                |                   |
         +------ send/broadcast ----------+------ actions ----+--> Chain (execute + store)

Tasks (one nursery): transport, network dispatch, timers, proposer, tx gossip,
status/sync, HTTP API.  Consensus steps are synchronous (see consensus_driver).
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import asynccontextmanager
from typing import Any

import trio

from consensus import events as ev
from consensus.errors import RemoteProtocolError as ConsensusProtocolError
from consensus.messages import decode_message
from consensus.replica import Replica, ReplicaConfig
from consensus.safety import payload_keys
from ledger.block import Proposal
from ledger.codec import DecodeError
from ledger.contracts import CommittedState
from ledger.crypto import KeyPair
from ledger.execution import query_state
from ledger.genesis import Genesis
from ledger.tx import Transaction
from node import gossip
from node.chain import Chain, CommitResult
from node.config import NodeConfig
from node.consensus_driver import ConsensusDriver
from node.facade import Admission, CommittedBlock, TxRecord
from node.mempool import Mempool
from node.metrics import NodeMetrics
from node.peers import PeerManager
from node.sync import BlockSync
from node.timers import Timers
from storage.base import Store

log = logging.getLogger("ynchain.node")
_DIGITS = re.compile(r"\d+")

# A block's txs, encoded.  A NEW-VIEW re-proposes up to max_in_flight (4) blocks in
# one message, which must fit the transport's 16 MiB frame with room to spare.
MAX_PROPOSAL_BYTES = 2 * 1024 * 1024
MAX_WAITERS = 100_000
SUBSCRIBER_BUFFER = 1024
MAX_SUBSCRIBERS = 256          # block event streams served at once
STATUS_INTERVAL_S = 1.0
STALL_BEFORE_SYNC_S = 1.0
GOSSIP_FLUSH_S = 0.005
MAX_RESYNC_TXS = 20_000       # pending txs handed to a peer when it (re)connects


class NodeError(Exception):
    """A node that cannot start (its key is not a validator, ...)."""


class Node:
    def __init__(self, config: NodeConfig, genesis: Genesis, key: KeyPair, store: Store) -> None:
        index = genesis.validator_index(key.public_key)
        if index is None:
            raise NodeError(f"this node's key {key.public_key.hex()[:16]}... is not a validator in genesis")
        me = genesis.validators[index]
        if me.name != config.name:
            raise NodeError(f"config names this node {config.name!r} but genesis calls its key {me.name!r}")
        self.config = config
        self.genesis = genesis
        self.key = key
        self.store = store
        self.index = index
        self.chain_id = genesis.chain_id
        self.name = me.name
        self.metrics = NodeMetrics()
        self.chain = Chain(genesis, store)
        self.mempool = Mempool(genesis, store.has_tx, max_txs=config.mempool_max_txs,
                               max_bytes=config.mempool_max_bytes)
        params = genesis.consensus
        self._inbound_send, self._inbound_recv = trio.open_memory_channel(256)
        peers = {i: (v.public_key, v.p2p) for i, v in enumerate(genesis.validators) if i != index}
        self.peers = PeerManager(key, genesis.chain_id, genesis.hash, peers, index, self._inbound_send,
                                 on_connect=self._on_peer_connect)
        self.metrics.track_transport(self.peers.stats)
        self.timers = Timers(self._timer_fired)
        self.driver = ConsensusDriver(
            None, self.chain, store, self.mempool,
            send=self.peers.send, broadcast=self.peers.broadcast, timers=self.timers,
            on_commit=self._on_commit, on_sync_request=self._on_sync_request,
            on_fault=self._on_fault, on_view_change=self._on_view_change)
        replica_config = ReplicaConfig(
            chain_id=genesis.chain_id, validators=genesis.validator_keys, me=index,
            checkpoint_interval=params.checkpoint_interval, window=params.window,
            max_in_flight=4, view_change_timeout_ms=params.view_change_timeout_ms,
            max_view_change_timeout_ms=params.max_view_change_timeout_ms,
            check_payload=self.driver.check_payload, payload_digest=self.driver.payload_digest)
        record = store.load_safety_record()
        payloads = {k: p for k in payload_keys(record)
                    if (p := store.get_prepared_payload(*k)) is not None}
        self.replica = Replica(replica_config, key, record,
                               (store.last_height(), store.last_block_hash()),
                               prepared_payloads=payloads)
        self.driver.replica = self.replica   # the replica's config needed the driver's callbacks
        self.metrics.view.set(self.replica.view)
        self.sync = BlockSync(self.chain, send=self.peers.send, connected=self.peers.connected,
                              apply=self.driver.synced, on_progress=self._on_sync_progress)
        self._work = trio.Event()
        self._gossip_buffer: list[list] = []
        self._gossip_ready = trio.Event()
        self._waiters: dict[bytes, list[trio.Event]] = {}
        self._subscribers: set[trio.MemorySendChannel] = set()
        self._last_commit_at = time.monotonic()
        self._refresh_gauges()

    # -- lifecycle ----------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        from node.api import serve_api   # the API pulls in hypercorn/starlette; keep core imports light
        async with trio.open_nursery() as nursery:
            p2p_port = await nursery.start(self.peers.run, *self.config.p2p_listen)
            nursery.start_soon(self._network_loop)
            nursery.start_soon(self.timers.run)
            nursery.start_soon(self._proposer)
            nursery.start_soon(self._gossip_flusher)
            nursery.start_soon(self._status_loop)
            nursery.start_soon(self.sync.run)
            api_port = await nursery.start(serve_api, self, *self.config.api_listen)
            self.driver.start()
            log.info("node %s up: chain %s, height %d, view %d, p2p port %d, api port %d",
                     self.name, self.chain_id, self.chain.height, self.replica.view, p2p_port, api_port)
            task_status.started((p2p_port, api_port))

    # -- network ------------------------------------------------------------------------
    async def _network_loop(self) -> None:
        async for peer, messages in self._inbound_recv:
            consensus_events = []
            for msg_type, payload in messages:
                try:
                    if msg_type == gossip.CONSENSUS:
                        if type(payload) is not bytes:
                            raise DecodeError("CONSENSUS payload must be bytes")
                        consensus_events.append(ev.MessageReceived(peer, decode_message(payload)))
                    elif msg_type == gossip.TXS:
                        self._admit_many(gossip.decode_txs(payload), relay=False)
                    elif msg_type == gossip.STATUS:
                        height, _ = gossip.decode_status(payload)
                        self.sync.peer_status(peer, height)
                    elif msg_type == gossip.GET_BLOCKS:
                        self._serve_blocks(peer, *gossip.decode_get_blocks(payload))
                    elif msg_type == gossip.BLOCKS:
                        self.sync.on_blocks(peer, gossip.decode_blocks(payload))
                    else:
                        raise DecodeError(f"unknown message type {msg_type}")
                except (DecodeError, ConsensusProtocolError) as exc:
                    self._on_fault(peer, f"malformed {gossip.NAMES.get(msg_type, 'unknown type')}")
                    log.debug("dropped malformed message type %s from peer %d: %s", msg_type, peer, exc)
            if consensus_events:
                self.driver.step(consensus_events)
                self._work.set()

    def _on_peer_connect(self, peer: int) -> None:
        self.peers.send(peer, gossip.STATUS, [self.chain.height, self.store.last_block_hash()])
        # A peer that (re)connects may have lost its mempool; if it becomes primary it
        # must know the txs still waiting here, or they wait for another view change.
        pending = [tx.to_record() for tx in self.mempool.pending(MAX_RESYNC_TXS)]
        for i in range(0, len(pending), gossip.MAX_GOSSIP_TXS):
            self.peers.send(peer, gossip.TXS, pending[i:i + gossip.MAX_GOSSIP_TXS])

    def _serve_blocks(self, peer: int, first: int, last: int) -> None:
        items, total = [], 0
        for height in range(first, min(last, self.chain.height) + 1):
            raw = self.store.get_block_bytes(height)
            cert = self.store.get_certificate(height)
            if raw is None or cert is None:
                break
            total += len(raw)
            if items and total > gossip.MAX_SYNC_BYTES:
                break
            items.append([raw, cert.to_record()])
        self.peers.send(peer, gossip.BLOCKS, items)

    async def _status_loop(self) -> None:
        while True:
            self.peers.broadcast(gossip.STATUS, [self.chain.height, self.store.last_block_hash()])
            self.metrics.peers_changed(len(self.peers.connected()))
            best = self.sync.best_peer_height()
            height = self.chain.height
            stalled = time.monotonic() - self._last_commit_at > STALL_BEFORE_SYNC_S
            if best > height and (stalled or best - height > self.genesis.consensus.window // 2):
                self.sync.want(best)
            await trio.sleep(STATUS_INTERVAL_S)

    # -- transactions ---------------------------------------------------------------------
    def submit(self, txs: list[Transaction]) -> list[Admission]:
        return self._admit_many(txs, relay=True)

    def _admit_many(self, txs: list[Transaction | None], *, relay: bool) -> list[Admission]:
        """Admit txs to the mempool; `relay` them to every peer if they came from a
        client (txs gossiped by a peer reached everyone already: full mesh)."""
        height = self.chain.height
        now = time.monotonic()
        results = []
        admitted = 0
        for tx in txs:
            if tx is None:
                results.append(Admission(b"", False, "malformed"))
                continue
            reason = self.mempool.admit(tx, height, now)
            if reason is None:
                admitted += 1
                if relay:
                    self._gossip_buffer.append(tx.to_record())
            else:
                self.metrics.mempool_rejected(reason)
            results.append(Admission(tx.id, reason is None, reason))
        if admitted:
            if relay:
                self._gossip_ready.set()
            self.driver.step([ev.RequestsPending()])
            self._work.set()
            self._refresh_gauges()
        return results

    async def _gossip_flusher(self) -> None:
        while True:
            await self._gossip_ready.wait()
            await trio.sleep(GOSSIP_FLUSH_S)   # let a burst of submissions share frames
            self._gossip_ready = trio.Event()
            buffer, self._gossip_buffer = self._gossip_buffer, []
            for i in range(0, len(buffer), gossip.MAX_GOSSIP_TXS):
                self.peers.broadcast(gossip.TXS, buffer[i:i + gossip.MAX_GOSSIP_TXS])

    # -- proposing ----------------------------------------------------------------------
    async def _proposer(self) -> None:
        params = self.genesis.consensus
        fill_wait = params.block_interval_ms / 1000
        empty_every = params.empty_blocks_interval_ms / 1000
        while True:
            if empty_every:
                with trio.move_on_after(empty_every):
                    await self._work.wait()
            else:
                await self._work.wait()
            self._work = trio.Event()
            while True:
                seq = self.replica.next_proposal_seq()
                if seq is None:
                    break
                ready = self.mempool.ready_count
                idle = time.monotonic() - self._last_commit_at
                if ready == 0 and not (empty_every and idle >= empty_every and seq == self.chain.height + 1):
                    break
                if 0 < ready < params.max_block_txs and seq > self.chain.height + 1:
                    # The pipeline is busy: let this block fill up a little.
                    await trio.sleep(fill_wait)
                    continue
                self._propose(seq)
                await trio.sleep(0)

    def _propose(self, seq: int) -> None:
        txs = self.mempool.take(self.genesis.consensus.max_block_txs, MAX_PROPOSAL_BYTES)
        ts = max(int(time.time() * 1000), self.driver.latest_timestamp_ms)
        proposal = Proposal(self.chain_id, seq, self.replica.view, self.name, ts, tuple(txs))
        self.driver.propose(seq, proposal)

    # -- consensus callbacks --------------------------------------------------------------
    def _timer_fired(self, kind: str, token: int) -> None:
        self.driver.step([ev.TimerFired(kind, token)])
        self._work.set()

    def _on_commit(self, result: CommitResult) -> None:
        block = result.block
        now = time.monotonic()
        self._last_commit_at = now
        removed = self.mempool.committed(block.height, [tx.id for tx in block.txs])
        for entry in removed:
            self.metrics.commit_latency_observed(now - entry.admitted_at)
        self.metrics.block_committed(block.height, len(block.txs))
        self._refresh_gauges()
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
        self._work.set()

    def _on_sync_request(self, action: ev.RequestSync) -> None:
        self.sync.want(action.target_seq)

    def _on_sync_progress(self, height: int, target: int, applied: int) -> None:
        for _ in range(applied):
            self.metrics.sync_block_applied()
        if height >= target:
            self.metrics.sync_finished()
        else:
            self.metrics.sync_started(target)
        self.mempool.evict_invalid(height)

    def _on_fault(self, peer: int, reason: str) -> None:
        # Numbers (seqs, views) would make every fault its own metrics label.
        self.metrics.consensus_fault(_DIGITS.sub("N", reason)[:60])
        log.debug("fault from peer %d: %s", peer, reason)

    def _on_view_change(self, view: int) -> None:
        self.metrics.view_changed(view)
        primary = self.genesis.validators[view % len(self.genesis.validators)].name
        log.info("entered view %d (primary %s)", view, primary)
        self._work.set()

    def _refresh_gauges(self) -> None:
        self.metrics.height.set(self.chain.height)
        self.metrics.mempool_changed(len(self.mempool), self.mempool.bytes)

    # -- facade (HTTP API) ----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        names = [v.name for v in self.genesis.validators]
        return {
            "chain_id": self.chain_id, "node": self.name, "height": self.chain.height,
            "last_block_hash": self.store.last_block_hash().hex(), "view": self.replica.view,
            "primary": names[self.replica.primary],
            "peers": sorted(names[i] for i in self.peers.connected()),
            "mempool": len(self.mempool), "syncing": self.sync.active,
        }

    async def wait_committed(self, tx_ids: list[bytes], timeout_s: float) -> dict[bytes, TxRecord]:
        events = []
        with trio.move_on_after(timeout_s):
            for tx_id in tx_ids:
                if self.store.has_tx(tx_id):
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
        found = {}
        for tx_id in tx_ids:
            record = self.get_tx(tx_id)
            if record is not None:
                found[tx_id] = record
        return found

    def get_tx(self, tx_id: bytes) -> TxRecord | None:
        location = self.store.get_tx(tx_id)
        if location is None:
            return None
        height, index, receipt = location
        block = self.store.get_block(height)
        return TxRecord(block.txs[index], height, index, receipt)

    def tx_pending(self, tx_id: bytes) -> bool:
        return tx_id in self.mempool

    def get_block(self, height: int) -> CommittedBlock | None:
        block = self.store.get_block(height)
        if block is None:
            return None
        return CommittedBlock(block, self.store.get_certificate(height))

    def height(self) -> int:
        return self.chain.height

    def get_state(self, contract: str, key: str) -> tuple[Any, int] | None:
        value = query_state(self.store.get_state, contract, key)
        return None if value is None else (value, self.chain.height)

    def state_reader(self) -> CommittedState:
        return CommittedState(self.store.get_state, self.store.scan_state, self.chain.height, self.genesis)

    def validators(self) -> list[dict[str, Any]]:
        connected = set(self.peers.connected())
        return [{"name": v.name, "org": v.org, "public_key": v.public_key.hex(),
                 "p2p": f"{v.p2p[0]}:{v.p2p[1]}", "api": f"{v.api[0]}:{v.api[1]}",
                 "connected": i == self.index or i in connected, "primary": i == self.replica.primary}
                for i, v in enumerate(self.genesis.validators)]

    def can_subscribe(self) -> bool:
        return len(self._subscribers) < MAX_SUBSCRIBERS

    @asynccontextmanager
    async def subscribe_blocks(self):
        send, recv = trio.open_memory_channel(SUBSCRIBER_BUFFER)
        self._subscribers.add(send)
        try:
            yield recv
        finally:
            self._subscribers.discard(send)
            send.close()

    def metrics_text(self) -> bytes:
        return self.metrics.render()
