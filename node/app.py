"""The ynchain daemon: one department's peer, wired from parts with one job each.

    PeerManager --inbound batches--> PeerDispatcher --> ConsensusDriver.step --> Replica
         ^                               |   |                  |
         |                               |   +--> TxRelay       +-- actions --> Chain (execute + store)
         +------ send / broadcast -------+   +--> BlockSync                        |
                                                                             CommitFanout
    Proposer: mempool -> proposals (when the core offers a seq)          (mempool, waiters, SSE)
    TxRelay: admission, gossip, re-offering pending txs to the primary
    NodeService: the HTTP API's view of all of it (node.api)

Built in dependency order, each part complete when built: the proposal checker
first (the Replica's config needs its callbacks), then the Replica, then the
driver that carries out the Replica's actions.  Callbacks into parts built
later (peer connects, timers) go through this object and only fire once `run`
has started the tasks.  Consensus steps are synchronous (see node.core.driver).
"""

from __future__ import annotations

import logging
import re

import trio

from consensus import events as ev
from consensus.replica import Replica, ReplicaConfig
from consensus.safety import payload_keys
from ledger.crypto import KeyPair
from ledger.genesis import Genesis
from node.config import NodeConfig
from node.core import peer_messages
from node.core.chain import Chain
from node.core.commits import CommitFanout
from node.core.dispatch import PeerDispatcher
from node.core.driver import ConsensusDriver
from node.core.mempool import Mempool
from node.core.proposals import ProposalChecker
from node.core.proposer import Proposer, Wakeup
from node.core.sync import BlockSync
from node.core.timers import Timers
from node.core.tx_relay import TxRelay
from node.core.verify_pool import VerifyPool, default_workers
from node.key_expiry import KeyExpiryWatch
from node.metrics import NodeMetrics
from node.service import NodeService
from node.transport.peers import PeerManager
from storage.base import Store

log = logging.getLogger("ynchain.node")
_DIGITS = re.compile(r"\d+")
INBOUND_BATCHES = 256          # peer frames queued for the dispatcher


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
        params = genesis.consensus
        self.config = config
        self.genesis = genesis
        self.store = store
        self.name = me.name
        self.metrics = metrics = NodeMetrics()
        metrics.set_limits(validators=len(genesis.validators), quorum=genesis.quorum,
                           mempool_max_txs=config.mempool_max_txs,
                           mempool_max_bytes=config.mempool_max_bytes)
        metrics.track_disk(config.data_dir)
        self.chain = chain = Chain(genesis, store)
        self.mempool = mempool = Mempool(lambda: chain.config, store.has_tx, max_txs=config.mempool_max_txs,
                                         max_bytes=config.mempool_max_bytes)

        inbound_send, inbound_recv = trio.open_memory_channel(INBOUND_BATCHES)
        unknown = sorted(set(config.p2p_dial) - {v.name for v in genesis.validators})
        if unknown:
            raise NodeError(f"config p2p.dial names {', '.join(unknown)}: not a validator in genesis")
        # p2p.dial: reach a peer through NAT, a tunnel or a proxy; its key still comes from genesis.
        peer_table = {i: (v.public_key, config.p2p_dial.get(v.name, v.p2p))
                      for i, v in enumerate(genesis.validators) if i != index}
        self.peers = peers = PeerManager(key, genesis.chain_id, genesis.hash, peer_table, index,
                                         inbound_send, on_connect=self._peer_connected,
                                         on_disconnect=self._peer_disconnected)
        metrics.track_transport(peers.stats)

        proposals = ProposalChecker(chain, store, mempool)
        record = store.load_safety_record()
        prepared = {k: p for k in payload_keys(record)
                    if (p := store.get_prepared_payload(*k)) is not None}
        self.replica = replica = Replica(
            ReplicaConfig(
                chain_id=genesis.chain_id, validators=genesis.validator_keys, me=index,
                checkpoint_interval=params.checkpoint_interval, window=params.window,
                max_in_flight=params.max_in_flight,
                view_change_timeout_ms=params.view_change_timeout_ms,
                max_view_change_timeout_ms=params.max_view_change_timeout_ms,
                check_payload=proposals.check_payload, payload_digest=proposals.payload_digest),
            key, record, (store.last_height(), store.last_block_hash()), prepared_payloads=prepared)
        metrics.view.set(replica.view)

        self.timers = Timers(self._timer_fired)
        self.commits = commits = CommitFanout(mempool, metrics, on_mempool_changed=self._refresh_gauges)
        self._wakeup = wakeup = Wakeup()
        self.driver = driver = ConsensusDriver(
            replica, proposals, chain, store, mempool,
            send=peers.send, broadcast=peers.broadcast, timers=self.timers,
            on_commit=commits.committed, on_sync_request=self._sync_requested,
            on_fault=self._fault, on_view_change=self._view_changed, on_stepped=wakeup.set)
        self.proposer = Proposer(replica, driver, mempool, chain, self.name, wakeup,
                                 lambda: commits.last_commit_at)
        self.verifier = verifier = VerifyPool(config.verify_workers or default_workers())
        self.relay = relay = TxRelay(mempool, chain, peers, metrics, me=index,
                                     primary=lambda: replica.primary,
                                     last_commit=lambda: (commits.last_commit_at, commits.last_block_txs),
                                     on_admitted=self._txs_admitted,
                                     on_pending_with_primary=self._requests_pending,
                                     verifier=verifier)
        self.sync = sync = BlockSync(chain, send=peers.send, connected=peers.connected,
                                     apply=driver.synced, on_progress=self._sync_progress)
        self.dispatcher = PeerDispatcher(inbound_recv, driver, relay, sync, store, metrics,
                                         send=peers.send, on_fault=self._fault, verifier=verifier)
        self.keys = keys = KeyExpiryWatch(lambda: chain.config, me.org, config.key_expiry_warning_days)
        metrics.track_key_expiry(lambda: [(k.account, k.seconds_left) for k in keys.all()])
        self.service = NodeService(genesis, self.name, index, store, replica, mempool, relay,
                                   commits, peers, sync, metrics, chain=chain, keys=keys)
        self._refresh_gauges()

    # -- lifecycle ----------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        from node.api.server import serve_api   # hypercorn/starlette; keep core imports light
        commits = self.commits
        async with trio.open_nursery() as nursery:
            p2p_port = await nursery.start(self.peers.run, *self.config.p2p_listen)
            nursery.start_soon(self.dispatcher.run)
            nursery.start_soon(self.dispatcher.run_tx_intake)
            nursery.start_soon(self.timers.run)
            nursery.start_soon(self.proposer.run)
            nursery.start_soon(self.relay.run)
            nursery.start_soon(self.relay.reoffer_loop)
            nursery.start_soon(self.sync.status_loop, self.peers.broadcast, self.store,
                               lambda: commits.last_commit_at, self.genesis.consensus.window // 2)
            nursery.start_soon(self.sync.run)
            nursery.start_soon(self.keys.run)
            api_port = await nursery.start(serve_api, self.service, *self.config.api_listen)
            self.driver.start()
            log.info("node %s up: chain %s, height %d, view %d, p2p port %d, api port %d",
                     self.name, self.genesis.chain_id, self.chain.height, self.replica.view,
                     p2p_port, api_port)
            task_status.started((p2p_port, api_port))

    # -- callbacks between parts ----------------------------------------------------------
    def _peer_connected(self, peer: int) -> None:
        self.peers.send(peer, peer_messages.STATUS, [self.chain.height, self.store.last_block_hash()])
        self.metrics.peers_changed(len(self.peers.connected()))

    def _peer_disconnected(self, peer: int) -> None:
        self.metrics.peers_changed(len(self.peers.connected()))

    def _timer_fired(self, kind: str, token: int) -> None:
        self.driver.step([ev.TimerFired(kind, token)])

    def _txs_admitted(self) -> None:
        self._wakeup.set()              # a primary may propose them now
        self._refresh_gauges()

    def _requests_pending(self) -> None:
        # Only for txs the primary has had a fair chance to receive (node.core.tx_relay).
        self.driver.step([ev.RequestsPending()])

    def _sync_requested(self, action: ev.RequestSync) -> None:
        self.sync.want(action.target_seq)

    def _sync_progress(self, height: int, target: int, applied: int) -> None:
        for _ in range(applied):
            self.metrics.sync_block_applied()
        if height >= target:
            self.metrics.sync_finished()
        else:
            self.metrics.sync_started(target)

    def _fault(self, peer: int, reason: str) -> None:
        # Numbers (seqs, views) would make every fault its own metrics label.
        self.metrics.consensus_fault(_DIGITS.sub("N", reason)[:60])
        self.metrics.peer_fault(self.genesis.validators[peer].name)
        log.debug("fault from peer %d: %s", peer, reason)

    def _view_changed(self, view: int) -> None:
        self.metrics.view_changed(view)
        primary = self.genesis.validators[view % len(self.genesis.validators)].name
        log.info("entered view %d (primary %s)", view, primary)

    def _refresh_gauges(self) -> None:
        self.metrics.height.set(self.chain.height)
        self.metrics.mempool_changed(len(self.mempool), self.mempool.bytes)
