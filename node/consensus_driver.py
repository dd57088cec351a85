"""Carries out what the PBFT core asks for.

`ConsensusDriver.step(events)` feeds events to the Replica and carries out the
resulting actions in order, feeding follow-up events (Executed after a commit,
TimerFired, ...) back in until nothing is left.  It never awaits: in trio a
synchronous function cannot be interleaved with other tasks, so the Replica has
exactly one user at a time without a channel hop per message.

The ordering rules (persist-before-send, merged PersistSafety writes,
follow-up events after the list, no re-entry) are consensus.executor's; this
driver is its Host: what "persist", "send", "deliver"... mean in a node.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from consensus import events as ev
from consensus.executor import Executor
from consensus.messages import Message
from consensus.replica import Replica
from ledger.block import Proposal
from ledger.codec import DecodeError
from node import gossip
from node.chain import Chain, CommitResult
from node.mempool import Mempool
from storage.base import Store

log = logging.getLogger("ynchain.consensus")

# Decoded proposals kept between validation and commit.  Legitimately at most
# about a window's worth; the bound only matters against a flood of re-proposals.
MAX_CACHED_PROPOSALS = 256


class ConsensusDriver:
    def __init__(self, replica: Replica | None, chain: Chain, store: Store, mempool: Mempool, *,
                 send: Callable[[int, int, object], bool],
                 broadcast: Callable[[int, object], None],
                 timers, on_commit: Callable[[CommitResult], None],
                 on_sync_request: Callable[[ev.RequestSync], None],
                 on_fault: Callable[[int, str], None],
                 on_view_change: Callable[[int], None]) -> None:
        self.chain = chain
        self.store = store
        self.mempool = mempool
        self._send = send
        self._broadcast = broadcast
        self._timers = timers
        self._on_commit = on_commit
        self._on_sync_request = on_sync_request
        self._on_fault = on_fault
        self._on_view_change = on_view_change
        self._proposals: dict[bytes, Proposal] = {}   # digest -> decoded, validated proposal
        # The newest block time this node has seen proposed or committed: its own
        # proposals never go below it, so block times do not run backwards when
        # the primary changes to a node whose clock is a little behind.
        head = store.get_block(store.last_height()) if store.last_height() else None
        self.latest_timestamp_ms = head.header.timestamp_ms if head else 0
        self._executor: Executor | None = None
        self.replica = replica

    @property
    def replica(self) -> Replica | None:
        return self._executor.replica if self._executor is not None else None

    @replica.setter
    def replica(self, replica: Replica | None) -> None:
        self._executor = Executor(replica, self) if replica is not None else None

    # -- the step loop ---------------------------------------------------------------
    def step(self, events: Iterable[ev.Event]) -> None:
        self._executor.step(events)

    def start(self) -> None:
        """Carry out what the replica asks for at boot (arming timers, ...)."""
        self._executor.start()

    # -- consensus.executor.Host -------------------------------------------------------
    def persist(self, action: ev.PersistSafety) -> None:
        self.store.save_safety_record(action.record, payloads=action.payloads,
                                      dropped=action.dropped)   # fsync'd

    def send(self, to: int, message: Message) -> None:
        self._send(to, gossip.CONSENSUS, message.encode())

    def broadcast(self, message: Message) -> None:
        self._broadcast(gossip.CONSENSUS, message.encode())

    def set_timer(self, kind: str, delay_ms: int, token: int) -> None:
        self._timers.set(kind, delay_ms, token)

    def cancel_timer(self, kind: str) -> None:
        self._timers.cancel(kind)

    def request_sync(self, action: ev.RequestSync) -> None:
        self._on_sync_request(action)

    def fault(self, sender: int, reason: str) -> None:
        self._on_fault(sender, reason)

    def view_changed(self, view: int) -> None:
        self._on_view_change(view)

    # -- proposals ---------------------------------------------------------------------
    def check_payload(self, seq: int, payload: bytes) -> bytes | None:
        """ReplicaConfig.check_payload: validate a fresh proposal we were sent."""
        if seq <= self.chain.height:
            # Committed here already (a retransmission, or this node restarted):
            # acceptable iff it is what we committed.
            digest = self.payload_digest(seq, payload)
            certificate = self.store.get_certificate(seq)
            return digest if certificate is not None and certificate.digest == digest else None
        result = self.chain.check_proposal(seq, payload, self.mempool)
        if isinstance(result, str):
            log.warning("refusing proposal for height %d: %s", seq, result)
            return None
        digest = result.digest()
        self._remember(digest, result)
        return digest

    def payload_digest(self, seq: int, payload: bytes) -> bytes | None:
        """ReplicaConfig.payload_digest: the digest of a payload carried by a
        prepared certificate (a quorum accepted it already; only bind it)."""
        try:
            proposal = Proposal.decode(payload)
        except DecodeError:
            return None
        if proposal.chain_id != self.chain.genesis.chain_id or proposal.height != seq:
            return None
        digest = proposal.digest()
        if digest not in self._proposals:
            self._remember(digest, proposal)
        return digest

    def propose(self, seq: int, proposal: Proposal) -> None:
        digest = proposal.digest()
        self._remember(digest, proposal)
        self.step([ev.Propose(seq, proposal.encode(), digest)])

    def _remember(self, digest: bytes, proposal: Proposal) -> None:
        self._proposals[digest] = proposal
        self.latest_timestamp_ms = max(self.latest_timestamp_ms, proposal.timestamp_ms)
        self.mempool.mark_in_flight(proposal.height, (tx.id for tx in proposal.txs))
        if len(self._proposals) > MAX_CACHED_PROPOSALS:   # bounded: drop the oldest
            del self._proposals[next(iter(self._proposals))]

    # -- commit ------------------------------------------------------------------------
    def deliver(self, action: ev.Deliver) -> list[ev.Event]:
        """Host.deliver: execute and store a committed block."""
        seq = action.seq
        if seq <= self.chain.height:
            # Stored by block sync already; it must be the very block the core committed.
            stored = self.store.get_certificate(seq)
            assert stored is not None and stored.digest == action.certificate.digest, (
                f"safety violation: the core committed another block at height {seq} than the one synced")
            return [ev.Executed(seq, self.store.get_block(seq).hash)]
        if action.payload == b"":
            proposal = None
        else:
            proposal = self._proposals.pop(action.certificate.digest, None)
            if proposal is None:
                proposal = Proposal.decode(action.payload)
        result = self.chain.commit(seq, proposal, action.certificate)
        for digest in [d for d, p in self._proposals.items() if p.height <= seq]:
            del self._proposals[digest]
        self._on_commit(result)
        follow_ups: list[ev.Event] = [ev.Executed(seq, result.block.hash)]
        if self.mempool.ready_count:
            follow_ups.append(ev.RequestsPending())   # keep the progress timer armed
        return follow_ups

    def synced(self, results: list[CommitResult]) -> None:
        """Blocks stored by block sync: tell the core where the chain is now."""
        if not results:
            return
        for result in results:
            self._on_commit(result)
        last = results[-1].block
        self.mempool.release_all_in_flight()
        self.step([ev.Synced(last.height, last.hash)])
