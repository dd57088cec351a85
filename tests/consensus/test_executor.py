"""The one action executor: the order it carries actions out in, and what
that order buys: a node that crashes at any point (between persisting and
sending included) and restarts from what it persisted never signs two
different votes for one (view, seq, phase)."""

from __future__ import annotations

import pytest

from consensus.config import RETRANSMIT_TIMER, VIEW_CHANGE_TIMER
from consensus.errors import LocalProtocolError
from consensus.events import (Broadcast, CancelTimer, Deliver, Executed, PersistSafety, Propose,
                              ReportFault, RequestsPending, RequestSync, Send, SetTimer,
                              ViewChanged)
from consensus.executor import Executor, merge_persists
from consensus.messages import Commit, NewView, PrePrepare, Prepare, sign
from consensus.safety import recorded_votes
from ledger.certificate import CommitCertificate

from .cluster import CHAIN, Cluster, keys, make_payload

K = keys(4)
VOTE = sign(Prepare(0, 1, bytes(32), 1), K[1], CHAIN)
CERT = CommitCertificate(0, 1, bytes(32), ())


class ScriptedReplica:
    """Stands in for a Replica: answers each event with a scripted action list."""

    def __init__(self, script):
        self.script = script
        self.events = []

    def start(self):
        return self.script.pop("start", [])

    def handle(self, event):
        self.events.append(event)
        return self.script.pop(type(event), [])


class RecordingHost:
    def __init__(self, follow_ups=()):
        self.calls = []
        self.follow_ups = list(follow_ups)

    def persist(self, action):
        self.calls.append(("persist", action))

    def send(self, to, message):
        self.calls.append(("send", to))

    def broadcast(self, message):
        self.calls.append(("broadcast",))

    def deliver(self, action):
        self.calls.append(("deliver", action.seq))
        return self.follow_ups

    def set_timer(self, kind, delay_ms, token):
        self.calls.append(("set_timer", kind, delay_ms, token))

    def cancel_timer(self, kind):
        self.calls.append(("cancel_timer", kind))

    def request_sync(self, action):
        self.calls.append(("request_sync", action.target_seq))

    def fault(self, sender, reason):
        self.calls.append(("fault", sender, reason))

    def view_changed(self, view, carried):
        self.calls.append(("view_changed", view))


def test_persists_merge_and_are_written_before_the_next_send():
    p1 = PersistSafety(b"r1", payloads=((1, b"a" * 32, b"A"),))
    p2 = PersistSafety(b"r2", payloads=((2, b"b" * 32, b"B"),), dropped=((1, b"a" * 32),))
    p3 = PersistSafety(b"r3")
    replica = ScriptedReplica({RequestsPending: [
        p1, SetTimer("t", 5, 1), p2, Broadcast(VOTE), p3, Deliver(1, b"", CERT), Send(2, VOTE),
        CancelTimer("t"), RequestSync(4, bytes(32), (0,)), ReportFault(3, "bad"), ViewChanged(2),
        PersistSafety(b"r4")]})
    host = RecordingHost()
    Executor(replica, host).step([RequestsPending()])
    assert [c[0] for c in host.calls] == [
        "set_timer", "persist", "broadcast", "deliver", "persist", "send", "cancel_timer",
        "request_sync", "fault", "view_changed", "persist"]
    merged = host.calls[1][1]
    assert merged.record == b"r2"                      # the later record supersedes
    assert merged.payloads == ((2, b"b" * 32, b"B"),)  # stored, then ...
    assert merged.dropped == ((1, b"a" * 32),)         # ... stored and dropped: dropped
    assert host.calls[4][1] is p3 and host.calls[-1][1].record == b"r4"


def test_merged_persists_are_one_write_equal_to_both_in_order():
    a, b = b"a" * 32, b"b" * 32
    first = PersistSafety(b"r1", payloads=((1, a, b"A"),), dropped=((2, b),))
    then = PersistSafety(b"r2", payloads=((2, b, b"B"),), dropped=((1, a),))
    merged = merge_persists(first, then)
    assert (merged.record, merged.payloads, merged.dropped) == (b"r2", ((2, b, b"B"),), ((1, a),))


def test_follow_up_events_run_after_the_whole_list():
    executed = Executed(1, bytes(32))
    replica = ScriptedReplica({RequestsPending: [Deliver(1, b"", CERT), Broadcast(VOTE)],
                               Executed: [SetTimer("after", 1, 1)]})
    host = RecordingHost(follow_ups=[executed])
    Executor(replica, host).step([RequestsPending()])
    assert [c[0] for c in host.calls] == ["deliver", "broadcast", "set_timer"]
    assert replica.events == [RequestsPending(), executed]


def test_an_unknown_action_and_a_reentrant_step_are_driver_bugs():
    with pytest.raises(LocalProtocolError, match="not a consensus action"):
        Executor(ScriptedReplica({RequestsPending: ["junk"]}), RecordingHost()).step(
            [RequestsPending()])

    class CallingBack(RecordingHost):
        def broadcast(self, message):
            executor.step([RequestsPending()])

    executor = Executor(ScriptedReplica({RequestsPending: [Broadcast(VOTE)]}), CallingBack())
    with pytest.raises(LocalProtocolError, match="not re-entrant"):
        executor.step([RequestsPending()])
    executor.step([])                                  # and it is usable again afterwards


# -- a real cluster: persist before send, and crashes between them -----------------------

class Crash(Exception):
    """The node's process dies here: this call has no effect."""


VICTIM = 1          # a backup in view 0, the primary of view 1


class CrashingCluster(Cluster):
    """Node VICTIM crashes at its `crash_at`-th host call (persist, send or
    broadcast) and restarts from what it had persisted; every host call of
    it is logged, with the record each persist wrote."""

    def __init__(self, crash_at: int | None) -> None:
        self.crash_at = crash_at
        self.calls: list[tuple] = []
        self.crashed = False
        super().__init__(4)
        node = self.nodes[VICTIM]
        for name in ("persist", "send", "broadcast"):
            setattr(node, name, self._hooked(getattr(node, name), name))

    def _hooked(self, call, name):
        def hooked(*args):
            if not self.crashed and len(self.calls) == self.crash_at:
                self.crashed = True
                raise Crash()
            self.calls.append((name, *args))
            call(*args)
        return hooked

    def handle(self, i, event):
        try:
            super().handle(i, event)
        except Crash:
            self.restart(i)

    def restart(self, i):
        try:
            super().restart(i)
        except Crash:                   # it died again while starting: once more
            super().restart(i)


def settle(c: Cluster, live: tuple[int, ...], height: int) -> None:
    """Re-send lost messages, change view when that is not enough, and let
    whoever is primary propose (clients keep sending), until every live node
    holds `height` blocks."""
    for attempt in range(12):
        if all(c.nodes[i].height >= height for i in live):
            break
        for i in live:
            replica = c.nodes[i].replica
            if replica.next_proposal_seq() is not None:
                c.handle(i, Propose(replica.next_proposal_seq(),
                                    *make_payload(replica.next_proposal_seq(), f"retry {attempt}")))
        for kind in (RETRANSMIT_TIMER, VIEW_CHANGE_TIMER):
            for i in live:
                if kind in c.nodes[i].timers:
                    c.fire(i, kind)
            c.step()
    assert all(c.nodes[i].height >= height for i in live), "the cluster did not recover"
    chains = [c.digests(i)[:height] for i in live]
    assert all(chain == chains[0] for chain in chains)          # agreement


def run_equivocation_and_view_change(c: CrashingCluster) -> None:
    """Primary 0 equivocates at seq 1 (A to 1 and 2, B to 3, then B to 1 as
    well) and goes down; the others change view with VICTIM as the new
    primary, and it proposes two blocks (a fresh digest at each attempt)."""
    (pa, da), (pb, db) = make_payload(1, "A"), make_payload(1, "B")
    a = sign(PrePrepare(0, 1, da, pa, 0), K[0], CHAIN).encode()
    b = sign(PrePrepare(0, 1, db, pb, 0), K[0], CHAIN).encode()
    c.queue.extend([(0, 1, a), (0, 2, a), (0, 3, b)])
    c.step()
    c.queue.extend([(0, 1, b), (0, 1, a)])
    c.step()
    c.down.add(0)
    live = (1, 2, 3)
    for i in live:
        c.handle(i, RequestsPending())
    settle(c, live, 1)
    for attempt in range(2):
        c.propose(f"attempt {attempt}")
        c.step()
    for i in live:
        c.handle(i, RequestsPending())
    settle(c, live, 3)


def votes_cast(message) -> list:
    """The votes a message casts now: itself, or the PRE-PREPAREs of a NEW-VIEW
    (not the certificates of earlier views a VIEW-CHANGE carries)."""
    if message.replica != VICTIM:
        return []
    if isinstance(message, NewView):
        return list(message.pre_prepares)
    return [message] if isinstance(message, (PrePrepare, Prepare, Commit)) else []


def test_every_vote_is_persisted_before_it_is_sent():
    c = CrashingCluster(crash_at=None)
    run_equivocation_and_view_change(c)
    durable = None
    kinds = set()
    for name, *args in c.calls:
        if name == "persist":
            durable = recorded_votes(args[0].record)
            continue
        for vote in votes_cast(args[-1]):
            kinds.add(type(vote))
            assert durable is not None, f"{vote} sent before any record was persisted"
            view, low, votes = durable
            assert (vote.view, vote.seq > low) == (view, True), vote
            assert votes[(vote.seq, vote.PHASE)] == vote.digest, vote
    assert kinds == {PrePrepare, Prepare, Commit}      # NEW-VIEW's pre-prepare included


def test_a_crash_between_persist_and_send_never_yields_two_votes_for_one_slot():
    baseline = CrashingCluster(crash_at=None)
    run_equivocation_and_view_change(baseline)
    calls = len(baseline.calls)
    assert calls > 10
    persist_then_send = [k for k in range(1, calls)
                         if baseline.calls[k - 1][0] == "persist"
                         and baseline.calls[k][0] != "persist"]
    assert persist_then_send                    # crashing there is the case that matters most
    for k in range(calls):
        c = CrashingCluster(crash_at=k)
        # Node.signed collects every vote VICTIM hands to the network, across
        # the restart, and raises Equivocation on a second digest for a slot.
        run_equivocation_and_view_change(c)
        assert c.crashed, k
