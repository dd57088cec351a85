"""Carries out what the PBFT core asks for.

`ConsensusDriver.step(events)` feeds events to the Replica and executes the
resulting actions in order, feeding follow-up events (Executed after a commit,
TimerFired, ...) back in until nothing is left.  It never awaits: in trio a
synchronous function cannot be interleaved with other tasks, so the Replica has
exactly one user at a time without a channel hop per message.

The one ordering rule the core relies on: a PersistSafety action is written
with an fsync before any Send/Broadcast after it in the same list leaves.
Consecutive PersistSafety actions are merged (only the latest record matters).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Callable, Iterable

from consensus import events as ev
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
        self._stepping = False

    # -- the step loop ---------------------------------------------------------------
    def step(self, events: Iterable[ev.Event]) -> None:
        self._run([], deque(events))

    def start(self) -> None:
        """Carry out what the replica asks for at boot (arming timers, ...)."""
        self._run(self.replica.start(), deque())

    def _run(self, actions: list, queue: deque) -> None:
        assert not self._stepping, "ConsensusDriver.step is not re-entrant"
        self._stepping = True
        try:
            self._execute(actions, queue)
            while queue:
                self._execute(self.replica.handle(queue.popleft()), queue)
        finally:
            self._stepping = False
        self._on_stepped()

    def _execute(self, actions: list, queue: deque) -> None:
        persist = _PendingPersist()
        for action in actions:
            kind = type(action)
            if kind is ev.PersistSafety:
                persist.merge(action)
                continue
            if persist and kind in (ev.Send, ev.Broadcast):
                persist.write(self.store)   # fsync'd before the vote leaves
            if kind is ev.Send:
                self._send(action.to, peer_messages.CONSENSUS, action.message.encode())
            elif kind is ev.Broadcast:
                self._broadcast(peer_messages.CONSENSUS, action.message.encode())
            elif kind is ev.Deliver:
                self._deliver(action, queue)
            elif kind is ev.SetTimer:
                self._timers.set(action.kind, action.delay_ms, action.token)
            elif kind is ev.CancelTimer:
                self._timers.cancel(action.kind)
            elif kind is ev.RequestSync:
                self._on_sync_request(action)
            elif kind is ev.ReportFault:
                self._on_fault(action.sender, action.reason)
            elif kind is ev.ViewChanged:
                self._on_view_change(action.view)
            else:  # pragma: no cover - a new action type the driver does not know
                raise AssertionError(f"unknown action {action!r}")
        if persist:
            persist.write(self.store)

    # -- proposing -----------------------------------------------------------------------
    def propose(self, seq: int, proposal: Proposal) -> None:
        digest = proposal.digest()
        self.proposals.remember(digest, proposal)
        self.step([ev.Propose(seq, proposal.encode(), digest)])

    # -- commit ------------------------------------------------------------------------
    def _deliver(self, action: ev.Deliver, queue: deque) -> None:
        seq = action.seq
        if seq <= self.chain.height:
            # Stored by block sync already; it must be the very block the core committed.
            stored = self.store.get_certificate(seq)
            assert stored is not None and stored.digest == action.certificate.digest, (
                f"safety violation: the core committed another block at height {seq} than the one synced")
            queue.append(ev.Executed(seq, self.store.get_block(seq).hash))
            return
        proposal = (None if action.payload == b""
                    else self.proposals.take(action.certificate.digest, action.payload))
        result = self.chain.commit(seq, proposal, action.certificate)
        self.proposals.forget_up_to(seq)
        self._on_commit(result)
        queue.append(ev.Executed(seq, result.block.hash))

    def synced(self, results: list[CommitResult]) -> None:
        """Blocks stored by block sync: tell the core where the chain is now."""
        if not results:
            return
        for result in results:
            self._on_commit(result)
        last = results[-1].block
        self.mempool.release_all_in_flight()
        self.step([ev.Synced(last.height, last.hash)])


class _PendingPersist:
    """Consecutive PersistSafety actions merged into one durable write: the
    last record, and the payload stores/deletes applied in order."""

    __slots__ = ("record", "payloads")

    def __init__(self) -> None:
        self.record: bytes | None = None
        self.payloads: dict[tuple[int, bytes], bytes | None] = {}   # None: delete

    def __bool__(self) -> bool:
        return self.record is not None

    def merge(self, action: ev.PersistSafety) -> None:
        self.record = action.record
        for seq, digest, payload in action.payloads:
            self.payloads[(seq, digest)] = payload
        for key in action.dropped:
            self.payloads[key] = None

    def write(self, store: Store) -> None:
        store.save_safety_record(
            self.record,
            payloads=[(seq, digest, p) for (seq, digest), p in self.payloads.items() if p is not None],
            dropped=[key for key, p in self.payloads.items() if p is None])
        self.record = None
        self.payloads = {}
