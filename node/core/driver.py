"""Carries out what the PBFT core asks for.

`ConsensusDriver.step(events)` feeds events to the Replica and executes the
resulting actions in order, feeding follow-up events (Executed after a commit,
TimerFired, ...) back in until nothing is left.  It never awaits: in trio a
synchronous function cannot be interleaved with other tasks, so the Replica has
exactly one user at a time without a channel hop per message.

The ordering rules (persist-before-send, merged PersistSafety writes,
follow-up events after the list, no re-entry) are consensus.executor's; this
driver is its Host: what "persist", "send", "deliver"... mean in a node.
The core names replicas by index in its epoch's set, the transport peers by
node key: senders are handed to the core as keys (it maps them in each
message's epoch), `Send.to` is an index in the replica's current set, and
`validators` (node.core.membership.ValidatorIndex) follows that set, swapped
when the replica enters an epoch.  Broadcasts go to every node that runs the
core: the replica's current set and the validators of every epoch the chain
scheduled after it (a validator-to-be needs the checkpoint at its boundary);
observers on the mesh get none.

Epochs: after a block whose execution scheduled or changed an epoch,
Executed carries it (`next_epoch`: node.core.membership.epoch_changes of the
configurations before and after the block), and Synced every epoch of the
configuration after the replica's own (blocks from sync, or pushed to a
replica that does not vote).
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from consensus import events as ev
from consensus.epochs import change_of
from consensus.executor import Executor
from consensus.messages import Message
from consensus.replica import Replica
from ledger import codec
from ledger.block import Proposal
from node.core import peer_messages
from node.core.chain import Chain, CommitResult
from node.core.config_history import ConfigHistory
from node.core.membership import ValidatorIndex, epoch_changes
from node.core.mempool import Mempool
from node.core.proofs import next_epoch_proof
from node.core.proposals import ProposalChecker
from node.core.timers import Timers
from storage.base import Store

log = logging.getLogger("ynchain.consensus")


class ConsensusDriver:
    def __init__(self, replica: Replica, validators: ValidatorIndex, proposals: ProposalChecker,
                 chain: Chain, store: Store, mempool: Mempool, *, me: bytes, history: ConfigHistory,
                 send: Callable[[bytes, int, object], bool],
                 broadcast: Callable[..., int],
                 timers: Timers, on_commit: Callable[[CommitResult], None],
                 on_sync_request: Callable[[ev.RequestSync], None],
                 on_fault: Callable[[bytes, str], None],
                 on_view_change: Callable[[int], None],
                 on_stepped: Callable[[], None]) -> None:
        self.replica = replica
        self.validators = validators
        self.me = me
        self._peers_for: tuple = (None, -1, ())      # (config, epoch, keys): consensus_peers
        self._executor = Executor(replica, self)
        self.proposals = proposals
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
        self._on_stepped = on_stepped      # anything a step did may let the primary propose
        self._history = history            # the configuration at a kept checkpoint

    # -- the step loop ---------------------------------------------------------------
    def step(self, events: Iterable[ev.Event]) -> None:
        self._executor.step(events)
        self._keep_checkpoint()
        self._on_stepped()

    def start(self) -> None:
        """Carry out what the replica asks for at boot (arming timers, ...)."""
        self._executor.start()
        self._keep_checkpoint()
        self._on_stepped()

    def _keep_checkpoint(self) -> None:
        """Keep each new stable checkpoint proof: it certifies the block hash at
        its height, the anchor of proof files (ledger.proof_file).  Only once
        its block is committed here (a checkpoint can become stable before, in
        a catch-up: it is kept at the step that commits it, if still the
        newest), with the next-epoch proof made from the tree at its height,
        which the store keeps until a newer checkpoint is kept: the tree is
        persisted at every checkpoint height (ledger.execution)."""
        proof = self.replica.stable_checkpoint_proof
        store = self.store
        if store.newest_checkpoint() < proof.seq <= store.last_height():
            store.put_checkpoint(proof.seq, codec.pack(proof.to_record()),
                                 next_epoch_proof(store, self._history, proof.seq))

    # -- consensus.executor.Host -------------------------------------------------------
    def persist(self, action: ev.PersistSafety) -> None:
        self.store.save_safety_record(action.record, payloads=action.payloads,
                                      dropped=action.dropped)   # fsync'd

    def send(self, to: int, message: Message) -> None:
        self._send(self.replica.validator_keys[to], peer_messages.CONSENSUS, message.encode())

    def broadcast(self, message: Message) -> None:
        self._broadcast(peer_messages.CONSENSUS, message.encode(), to=self.consensus_peers())

    def consensus_peers(self) -> tuple[bytes, ...]:
        """Every node that runs the core: the replica's current set and the
        validators of the epochs scheduled after it (the set may have moved
        on in the chain while the replica still finishes its epoch).  Kept
        until the configuration or the replica's epoch changes: it is asked
        for every broadcast."""
        config, epoch = self.chain.config, self.replica.epoch
        if self._peers_for[0] is not config or self._peers_for[1] != epoch:
            keys = dict.fromkeys(self.replica.validator_keys)
            for later in reversed(config.epochs):
                if later.number <= epoch:
                    break
                keys.update(dict.fromkeys(later.keys))
            keys.pop(self.me, None)
            self._peers_for = (config, epoch, tuple(keys))
        return self._peers_for[2]

    def set_timer(self, kind: str, delay_ms: int, token: int) -> None:
        self._timers.set(kind, delay_ms, token)

    def cancel_timer(self, kind: str) -> None:
        self._timers.cancel(kind)

    def request_sync(self, action: ev.RequestSync) -> None:
        self._on_sync_request(action)

    def fault(self, sender: int | bytes, reason: str) -> None:
        self._on_fault(sender if type(sender) is bytes else self.replica.validator_keys[sender], reason)

    def view_changed(self, view: int, carried: tuple[tuple[int, bytes], ...]) -> None:
        if self.validators.keys != self.replica.validator_keys:
            self.validators.set_keys(self.replica.validator_keys)   # entered an epoch
        # A proposal of an older view that the new view does not re-propose
        # will never commit: its txs must be proposable again, or (with nothing
        # else pending) they would wait for a commit that never comes.
        self.mempool.release_in_flight_except({seq for seq, _ in carried})
        self.proposals.pace.view_changed()
        self._on_view_change(view)

    # -- proposing -----------------------------------------------------------------------
    def propose(self, seq: int, proposal: Proposal) -> None:
        digest = proposal.digest()
        self.proposals.remember(digest, proposal)
        self.step([ev.Propose(seq, proposal.encode(), digest)])

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
        proposal = (None if action.payload == b""
                    else self.proposals.take(action.certificate.digest, action.payload))
        before = self.chain.config
        result = self.chain.commit(seq, proposal, action.certificate, action.payload)
        self.proposals.forget_up_to(seq)
        self._on_commit(result)
        changes = epoch_changes(before, result.config) if result.config is not None else ()
        # A block changes at most the last epoch (it schedules one, or changes the pending one).
        follow: list[ev.Event] = [ev.Executed(seq, result.block.hash, changes[-1] if changes else None)]
        pace = self.proposals.pace.committed(seq)
        if pace is not None:
            follow.append(ev.CommitPace(pace))
        return follow

    def synced(self, results: list[CommitResult]) -> None:
        """Blocks stored by block sync (or pushed to a replica that does not
        vote): tell the core where the chain is now, and every epoch after
        its own that the chain holds (it learns those it did not know, an
        identical one is no change)."""
        if not results:
            return
        for result in results:
            self._on_commit(result)
        last = results[-1].block
        self.mempool.release_all_in_flight()
        epoch = self.replica.epoch
        later = tuple(change_of(e) for e in self.chain.config.epochs if e.number > epoch)
        self.step([ev.Synced(last.height, last.hash, later)])
