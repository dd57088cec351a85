"""Carries out what the PBFT core asks for.

`ConsensusDriver.step(events)` feeds events to the Replica and executes the
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
from node.core import peer_messages
from node.core.chain import Chain, CommitResult
from node.core.mempool import Mempool
from node.core.proposals import ProposalChecker
from node.core.timers import Timers
from storage.base import Store

log = logging.getLogger("ynchain.consensus")


class ConsensusDriver:
    def __init__(self, replica: Replica, proposals: ProposalChecker, chain: Chain, store: Store,
                 mempool: Mempool, *,
                 send: Callable[[int, int, object], bool],
                 broadcast: Callable[[int, object], None],
                 timers: Timers, on_commit: Callable[[CommitResult], None],
                 on_sync_request: Callable[[ev.RequestSync], None],
                 on_fault: Callable[[int, str], None],
                 on_view_change: Callable[[int], None],
                 on_stepped: Callable[[], None]) -> None:
        self.replica = replica
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

    # -- the step loop ---------------------------------------------------------------
    def step(self, events: Iterable[ev.Event]) -> None:
        self._executor.step(events)
        self._on_stepped()

    def start(self) -> None:
        """Carry out what the replica asks for at boot (arming timers, ...)."""
        self._executor.start()
        self._on_stepped()

    # -- consensus.executor.Host -------------------------------------------------------
    def persist(self, action: ev.PersistSafety) -> None:
        self.store.save_safety_record(action.record, payloads=action.payloads,
                                      dropped=action.dropped)   # fsync'd

    def send(self, to: int, message: Message) -> None:
        self._send(to, peer_messages.CONSENSUS, message.encode())

    def broadcast(self, message: Message) -> None:
        self._broadcast(peer_messages.CONSENSUS, message.encode())

    def set_timer(self, kind: str, delay_ms: int, token: int) -> None:
        self._timers.set(kind, delay_ms, token)

    def cancel_timer(self, kind: str) -> None:
        self._timers.cancel(kind)

    def request_sync(self, action: ev.RequestSync) -> None:
        self._on_sync_request(action)

    def fault(self, sender: int, reason: str) -> None:
        self._on_fault(sender, reason)

    def view_changed(self, view: int, carried: tuple[tuple[int, bytes], ...]) -> None:
        # A proposal of an older view that the new view does not re-propose
        # will never commit: its txs must be proposable again, or (with nothing
        # else pending) they would wait for a commit that never comes.
        self.mempool.release_in_flight_except({seq for seq, _ in carried})
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
        result = self.chain.commit(seq, proposal, action.certificate, action.payload)
        self.proposals.forget_up_to(seq)
        self._on_commit(result)
        return [ev.Executed(seq, result.block.hash)]

    def synced(self, results: list[CommitResult]) -> None:
        """Blocks stored by block sync: tell the core where the chain is now."""
        if not results:
            return
        for result in results:
            self._on_commit(result)
        last = results[-1].block
        self.mempool.release_all_in_flight()
        self.step([ev.Synced(last.height, last.hash)])
