"""The ynchain daemon: one department's peer, wired from parts with one job each.

A validator (its key is in the validator set the replica runs with):

    PeerManager --inbound batches--> PeerDispatcher --> ConsensusDriver.step --> Replica
         ^                               |   |                  |
         |                               |   +--> TxRelay       +-- actions --> Chain (execute + store)
         +------ send / broadcast -------+   +--> BlockSync, CheckpointFetch       |
                                                                             CommitFanout
    Proposer: mempool -> proposals (when the core offers a seq)          (mempool, waiters, SSE)
    TxRelay: admission, gossip, re-offering pending txs to the primary
    NodeService: the HTTP API's view of all of it (node.api)

An observer (any other node of the configuration) runs no consensus core: a
replica that never votes would only hold state nobody reads, and views,
timers and proposals are nothing an observer has a use for.  Blocks reach it
pushed by the validators and by block sync, checked and executed by a
BlockFollower; its TxRelay hands client txs to the validators.  Everything
else (mempool, API, metrics, commit fan-out) is the same as a validator's.
Roles follow the configuration: a node whose key is in the set of the epoch
in force or of a later one runs the core (a validator-to-be passively, from
the commit that scheduled its epoch; see `_promoted`), and `role` says
whether its replica votes in its epoch now.

The transport's allowlist follows the committed configuration: after every
commit that changed it, or that entered a new epoch, the peer table is
recomputed (node.core.membership) and handed to the PeerManager.

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
from consensus.epochs import change_of
from consensus.replica import Replica, ReplicaConfig
from consensus.safety import payload_keys
from ledger.consortium import OBSERVER, VALIDATOR, ChainConfig
from ledger.crypto import KeyPair
from ledger.genesis import Genesis
from node.config import NodeConfig
from node.core import peer_messages
from node.core.chain import Chain, CommitResult
from node.core.commits import CommitFanout
from node.core.checkpoint_fetch import CheckpointFetch
from node.core.config_history import ConfigHistory
from node.core.dispatch import PeerDispatcher
from node.core.driver import ConsensusDriver
from node.core.follower import BlockFollower
from node.core.membership import ValidatorIndex, allowlist, runs_consensus
from node.core.mempool import Mempool
from node.core.proposals import ProposalChecker
from node.core.proposer import Proposer, Wakeup
from node.core.sync import BlockSync, status_of
from node.core.timers import Timers
from node.core.tx_relay import TxRelay
from node.core.verify_pool import VerifyPool, default_workers
from node.heap_trim import HeapTrimmer
from node.key_expiry import KeyExpiryWatch
from node.metrics import NodeMetrics
from node.service import NodeService
from node.transport.peers import Peer, PeerManager
from storage.base import Store

log = logging.getLogger("ynchain.node")
_DIGITS = re.compile(r"\d+")
INBOUND_BATCHES = 256          # peer frames queued for the dispatcher


class NodeError(Exception):
    """A node that cannot start (its key is not in the configuration, ...)."""


class Node:
    def __init__(self, config: NodeConfig, genesis: Genesis, key: KeyPair, store: Store) -> None:
        self.config = config
        self.genesis = genesis
        self.store = store
        self.key = key
        self.chain = chain = Chain(genesis, store)
        self.name = _own_name(chain, config, key)
        # The set the replica runs with, index <-> key: its epoch's (swapped by the driver
        # when the replica enters an epoch); on a node without a core, the set in force.
        self.validators = validators = ValidatorIndex(chain.config.epoch_of(chain.height + 1).keys)
        self.metrics = metrics = NodeMetrics()
        metrics.set_limits(validators=len(validators.keys), quorum=chain.config.epoch_of(chain.height + 1).quorum,
                           mempool_max_txs=config.mempool_max_txs,
                           mempool_max_bytes=config.mempool_max_bytes)
        metrics.track_disk(config.data_dir)
        self.mempool = mempool = Mempool(lambda: chain.config, store.has_tx, max_txs=config.mempool_max_txs,
                                         max_bytes=config.mempool_max_bytes)

        inbound_send, inbound_recv = trio.open_memory_channel(INBOUND_BATCHES)
        unknown = sorted(set(config.p2p_dial) - set(chain.config.nodes))
        if unknown:
            raise NodeError(f"config p2p.dial names {', '.join(unknown)}: not a node in the configuration")
        # p2p.dial: reach a peer through NAT, a tunnel or a proxy; its key still comes from the configuration.
        self._peer_table: dict[bytes, Peer] = {}
        self._observers: tuple[bytes, ...] = ()
        self._membership_at: tuple[ChainConfig, int] | None = None   # (config, epoch) last applied
        self.peers = peers = PeerManager(key, genesis.chain_id, genesis.hash, {}, inbound_send,
                                         on_connect=self._peer_connected,
                                         on_disconnect=self._peer_disconnected)
        self.replica: Replica | None = None
        self.driver: ConsensusDriver | None = None
        self.proposer: Proposer | None = None
        self._nursery: trio.Nursery | None = None
        self._follow_configuration()
        metrics.track_transport(peers.stats)

        self.timers = Timers(self._timer_fired)
        self.commits = commits = CommitFanout(mempool, metrics, on_mempool_changed=self._refresh_gauges)
        self._wakeup = Wakeup()
        last = store.get_block(chain.height) if chain.height else None
        self._last_view = last.header.view if last else 0           # an observer's view of the chain
        self._last_proposer = last.header.proposer if last else ""
        self.verifier = verifier = VerifyPool(config.verify_workers or default_workers())
        self.relay = relay = TxRelay(mempool, chain, peers, metrics, me=key.public_key,
                                     validators=lambda: validators.keys, primary=self._primary,
                                     last_commit=lambda: (commits.last_commit_at, commits.last_block_txs),
                                     on_admitted=self._txs_admitted,
                                     on_pending_with_primary=self._requests_pending,
                                     verifier=verifier)
        # Configurations at past heights (GET /config, proofs, kept checkpoints): one cache.
        self.config_history = ConfigHistory(genesis.config, store.scan_state)
        self.checkpoint_fetch = CheckpointFetch(chain, self.config_history, send=peers.send,
                                                connected=peers.connected, on_fault=self._fault)
        self.sync = sync = BlockSync(chain, send=peers.send, connected=peers.connected,
                                     apply=self._synced, on_progress=self._sync_progress,
                                     on_synced=self.checkpoint_fetch.want)
        # Pushed blocks reach every node that does not vote (an observer, a
        # validator-to-be before its epoch, a demoted validator after its own).
        self.follower = BlockFollower(chain, want_sync=sync.want, on_commit=self._followed,
                                      on_fault=self._fault)
        self.dispatcher = PeerDispatcher(inbound_recv, relay, sync, store, metrics,
                                         send=peers.send, on_fault=self._fault, follower=self.follower,
                                         verifier=verifier, checkpoints=self.checkpoint_fetch)
        if runs_consensus(chain.config, chain.height, key.public_key):
            self._build_consensus()
        self.keys = keys = KeyExpiryWatch(lambda: chain.config, self._own_org(), config.key_expiry_warning_days)
        metrics.track_key_expiry(lambda: [(k.account, k.seconds_left) for k in keys.all()])
        self.service = NodeService(genesis, self.name, lambda: self.role, store, self._consensus_view, mempool,
                                   relay, commits, peers, sync, metrics, chain=chain, keys=keys,
                                   config_history=self.config_history)
        metrics.set_role(self.role)
        self._refresh_gauges()

    @property
    def role(self) -> str:
        """A validator while its replica votes in its epoch; an observer
        otherwise (no core, a validator-to-be before its epoch, a demoted one)."""
        return VALIDATOR if self.replica is not None and self.replica.index is not None else OBSERVER

    def _build_consensus(self) -> None:
        """The consensus core and its parts: at start if this node's key is in
        the set of the epoch in force or of a later one, else once governance
        schedules an epoch that holds it (it runs passively until then)."""
        chain, store, genesis, key = self.chain, self.store, self.genesis, self.key
        proposals = ProposalChecker(chain, store, self.mempool)
        record = store.load_safety_record()
        prepared = {k: p for k in payload_keys(record)
                    if (p := store.get_prepared_payload(*k)) is not None}
        config = chain.config
        params, genesis_keys = config.epochs[0].params, config.epochs[0].keys
        index = genesis_keys.index(key.public_key) if key.public_key in genesis_keys else None
        self.replica = replica = Replica(
            ReplicaConfig(
                chain_id=genesis.chain_id, validators=genesis_keys, me=index,
                checkpoint_interval=params.checkpoint_interval, window=params.window,
                max_in_flight=params.max_in_flight,
                view_change_timeout_ms=params.view_change_timeout_ms,
                max_view_change_timeout_ms=params.max_view_change_timeout_ms,
                check_payload=proposals.check_payload, payload_digest=proposals.payload_digest,
                epochs=tuple(change_of(epoch) for epoch in config.epochs[1:])),
            key, record, (store.last_height(), store.last_block_hash()), prepared_payloads=prepared)
        self.validators.set_keys(replica.validator_keys)
        self._epoch_shown = replica.epoch
        self.metrics.view.set(replica.view)
        self.driver = driver = ConsensusDriver(
            replica, self.validators, proposals, chain, store, self.mempool, me=key.public_key,
            history=self.config_history,
            send=self.peers.send, broadcast=self.peers.broadcast, timers=self.timers,
            on_commit=self._committed, on_sync_request=self._sync_requested,
            on_fault=self._fault, on_view_change=self._view_changed, on_stepped=self._wakeup.set)
        self.proposer = Proposer(replica, driver, self.mempool, chain, self.name, self._wakeup,
                                 lambda: self.commits.last_commit_at)
        self.dispatcher.attach_driver(driver)

    def _start_consensus(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self.timers.run)
        nursery.start_soon(self.proposer.run)
        self.driver.step([ev.PeersReachable(frozenset(self.peers.connected()))])
        self.driver.start()

    # -- lifecycle ----------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        from node.api.server import serve_api   # hypercorn/starlette; keep core imports light
        commits = self.commits
        async with trio.open_nursery() as nursery:
            p2p_port = await nursery.start(self.peers.run, *self.config.p2p_listen)
            nursery.start_soon(self.dispatcher.run)
            nursery.start_soon(self.dispatcher.run_tx_intake)
            nursery.start_soon(self.relay.run)
            nursery.start_soon(self.relay.reoffer_loop)
            nursery.start_soon(self.sync.status_loop, self.peers.broadcast, self.store,
                               lambda: commits.last_commit_at, self.genesis.consensus.window // 2)
            nursery.start_soon(self.sync.run)
            nursery.start_soon(self.checkpoint_fetch.run)
            nursery.start_soon(self.checkpoint_fetch.follow, lambda: self.driver is None)
            nursery.start_soon(self.keys.run)
            nursery.start_soon(HeapTrimmer.for_this_system().run)
            api_port = await nursery.start(serve_api, self.service, *self.config.api_listen)
            self._nursery = nursery
            if self.driver is not None:
                self._start_consensus(nursery)
            log.info("node %s up as %s: chain %s, height %d, view %d, p2p port %d, api port %d",
                     self.name, self.role, self.genesis.chain_id, self.chain.height,
                     self._consensus_view()[0], p2p_port, api_port)
            task_status.started((p2p_port, api_port))

    # -- the configuration the transport follows ------------------------------------------
    def _follow_configuration(self) -> None:
        """Hand the transport the peers of the committed configuration, if a
        commit changed the configuration or entered a new epoch."""
        config, height = self.chain.config, self.chain.height
        epoch = config.epoch_of(height + 1)
        last = self._membership_at
        if last is not None and last[0] is config and last[1] == epoch.number:
            return
        first = last is None
        self._membership_at = (config, epoch.number)
        table = allowlist(config, height, self.config.p2p_dial, self._peer_table)
        me = self.key.public_key
        was_in, now_in = me in self._peer_table, me in table
        if me in config.retired_keys and not now_in:
            table = {}       # removed (or re-keyed): every peer refuses it; it stops knocking
            if not first and was_in:
                log.error("this node's key left the configuration at height %d (%s): peers refuse it "
                          "now; it keeps serving what it has", height, _retirement(config, me))
        elif not first:
            for key in self._peer_table.keys() - table.keys() - {me}:
                log.info("node %s left the configuration at height %d: disconnected and refused",
                         self._peer_table[key].name, height)
            for key in table.keys() - self._peer_table.keys() - {me}:
                log.info("node %s (%s) is in the configuration from height %d", table[key].name,
                         key.hex()[:16], height)
            if not was_in and now_in:
                log.info("this node joined the configuration at height %d", height)
                self.keys.org = self._own_org()
        self._peer_table = table
        voting = set(epoch.keys)
        self._observers = tuple(k for k in table if k not in voting and k != me)
        if self.replica is None:
            self.validators.set_keys(epoch.keys)     # where the relay sends txs
        self.peers.update(table)

    def _committed(self, result: CommitResult) -> None:
        """Every stored block, from consensus, sync or a validator's push."""
        header = result.block.header
        self._last_view = header.view
        if header.proposer:
            self._last_proposer = header.proposer
        self.commits.committed(result)
        if self.role == VALIDATOR and any(self.peers.is_connected(k) for k in self._observers):
            height = result.block.height
            self.peers.broadcast(peer_messages.NEW_BLOCK,
                                 [self.store.get_block_bytes(height), result.certificate.to_record()],
                                 to=self._observers)
        self._follow_configuration()
        if self.driver is None and result.config is not None and \
                runs_consensus(self.chain.config, self.chain.height, self.key.public_key):
            self._promoted()

    def _promoted(self) -> None:
        """Governance scheduled an epoch whose set holds this node: start the
        core now, passive, so it holds the stable checkpoint at the boundary
        and has executed up to it when its epoch starts (it votes from there)."""
        config, height = self.chain.config, self.chain.height
        current = config.epoch_of(height + 1).number
        epoch = next(e for e in config.epochs if e.number >= current and self.key.public_key in e.keys)
        log.info("this node is a validator of epoch %d from height %d: consensus core started at height %d "
                 "(it votes from the boundary)", epoch.number, epoch.start + 1, self.chain.height)
        self._build_consensus()
        if self._nursery is not None:
            self._start_consensus(self._nursery)

    def _synced(self, results: list[CommitResult]) -> None:
        """Blocks stored by block sync."""
        if self.driver is not None:
            self.driver.synced(results)
        else:
            for result in results:
                self._committed(result)

    def _followed(self, result: CommitResult) -> None:
        """A block a validator pushed, checked and stored by the follower."""
        if self.driver is not None:
            self.driver.synced([result])      # a core that does not vote (yet, or any more)
        else:
            self._committed(result)

    def _own_org(self) -> str:
        """This node's organisation ("" while the configuration does not list it yet)."""
        node = self.chain.config.nodes.get(self.name)
        return node.org if node is not None else ""

    # -- callbacks between parts ----------------------------------------------------------
    def _consensus_view(self) -> tuple[int, bytes | None]:
        """(view, primary's key): the core's on a validator; on an observer the
        view of the last block and its best guess at the primary."""
        if self.replica is not None:
            return self.replica.view, self.replica.validator_keys[self.replica.primary]
        return self._last_view, self._primary()

    def _primary(self) -> bytes | None:
        if self.replica is not None:
            if self.replica.in_view_change:
                # Not known yet who will propose (if this node changes view alone,
                # the others' primary is still in charge): pending txs go to every
                # validator rather than wait for a primary that may never come.
                return None
            return self.replica.validator_keys[self.replica.primary]
        node = self.chain.config.nodes.get(self._last_proposer)
        return node.public_key if node is not None and node.public_key in self.validators.keys else None

    def _peer_connected(self, peer: bytes) -> None:
        self.peers.send(peer, peer_messages.STATUS, status_of(self.store))
        self._peers_changed()

    def _peer_disconnected(self, peer: bytes) -> None:
        self._peers_changed()

    def _peers_changed(self) -> None:
        connected = self.peers.connected()
        self.metrics.peers_changed(len(connected))
        if self.driver is not None:
            # Cut off from a quorum, the core asks for no view change (it could
            # not complete one, and would be left alone in it once back).
            self.driver.step([ev.PeersReachable(frozenset(connected))])

    def _timer_fired(self, kind: str, token: int) -> None:
        self.driver.step([ev.TimerFired(kind, token)])

    def _txs_admitted(self) -> None:
        self._wakeup.set()              # a primary may propose them now
        self._refresh_gauges()

    def _requests_pending(self) -> None:
        # Only for txs the primary has had a fair chance to receive (node.core.tx_relay),
        # and not while this node lags the others: then its txs may be judged against
        # a height the chain has passed, and it cannot tell a slow primary from its
        # own lag; a view change it started would be joined by nobody.
        if self.driver is None:     # an observer has no core to tell
            return
        height = self.chain.height
        n = len(self.replica.validator_keys)
        if self.sync.known_behind(self.chain.config.params_at(height + 1).checkpoint_interval, (n - 1) // 3):
            return
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

    def _fault(self, peer: bytes, reason: str) -> None:
        # Numbers (seqs, views) would make every fault its own metrics label.
        self.metrics.consensus_fault(_DIGITS.sub("N", reason)[:60])
        name = self.peers.name_of(peer)   # peers are allowed nodes: bounded labels
        self.metrics.peer_fault(name)
        log.debug("fault from peer %s: %s", name, reason)

    def _view_changed(self, view: int) -> None:
        self.metrics.view_changed(view)
        primary = self._primary()
        replica = self.replica
        if replica.epoch != self._epoch_shown:
            self._epoch_shown = replica.epoch
            keys = replica.validator_keys
            self.metrics.validators.set(len(keys))
            self.metrics.quorum.set(self.chain.config.epoch_of(replica.stable_checkpoint + 1).quorum)
            self.metrics.set_role(self.role)
            log.info("entered epoch %d at height %d as %s: %d validators (%s)", replica.epoch,
                     replica.stable_checkpoint, self.role, len(keys),
                     ", ".join(self.name if k == self.key.public_key else self.peers.name_of(k) for k in keys))
        log.info("entered view %d (primary %s)", view,
                 self.name if primary == self.key.public_key else self.peers.name_of(primary))

    def _refresh_gauges(self) -> None:
        self.metrics.height.set(self.chain.height)
        self.metrics.mempool_changed(len(self.mempool), self.mempool.bytes)


def _retirement(config: ChainConfig, key: bytes) -> str:
    retired = config.retired_keys[key]
    return f"retired at height {retired.height}: {retired.kind} {retired.name} removed or given a new key"


def _own_name(chain: Chain, config: NodeConfig, key: KeyPair) -> str:
    """This node's name; NodeError if its key cannot run here.  A key the
    configuration does not know (yet) runs as an observer that syncs: a node
    added by governance starts from genesis and learns of its own addition
    from the chain, while its peers accept it as soon as they executed it."""
    current = chain.config
    me = current.node_by_key(key.public_key)
    if me is not None:
        if me.name != config.name:
            raise NodeError(f"config names this node {config.name!r} but the configuration at height "
                            f"{chain.height} calls its key {me.name!r}")
        return me.name
    retired = current.retired_keys.get(key.public_key)
    if retired is not None:
        raise NodeError(f"this node's key {key.public_key.hex()[:16]}... was retired at height "
                        f"{retired.height} ({retired.kind} {retired.name}); a removed node stays "
                        "removed, a rotated key needs the node's new key file")
    named = current.nodes.get(config.name)
    if named is not None:
        raise NodeError(f"config names this node {config.name!r}, whose key in the configuration is "
                        f"{named.public_key.hex()[:16]}..., not this node's key {key.public_key.hex()[:16]}...")
    log.warning("this node's key %s... is not in the configuration at height %d: starting as an "
                "observer that syncs; peers accept it once governance has added it (add_node)",
                key.public_key.hex()[:16], chain.height)
    return config.name
