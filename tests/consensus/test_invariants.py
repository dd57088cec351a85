"""Replica.check_invariants is not blind: each rule it checks fails when the
state (or what the replica emitted) breaks it.  The states are forged by hand
here; the simulator, the scripted tests and the fuzzers run the same checks
after every event of real runs."""

from dataclasses import replace

import pytest

from consensus.config import VIEW_CHANGE_TIMER
from consensus.events import Broadcast, Deliver, PersistSafety, RequestsPending
from consensus.messages import PHASE_PREPARE, Prepare, sign
from consensus.replica import Phase
from ledger.certificate import CommitCertificate

from .cluster import CHAIN, Cluster, keys, make_payload


def prepared_everywhere() -> Cluster:
    """Seq 1 prepared at every replica, committed nowhere."""
    c = Cluster(4)
    c.propose()
    c.step(drop=lambda s, d, m: type(m).__name__ == "Commit")
    for node in c.nodes:
        node.replica.check_invariants()
    return c


def test_a_vote_missing_from_the_safety_record_is_caught():
    replica = prepared_everywhere().nodes[2].replica
    del replica._safety.votes[(1, PHASE_PREPARE)]
    with pytest.raises(AssertionError, match="my prepare is not in my safety record"):
        replica.check_invariants()


def test_a_commit_without_prepare_is_caught():
    c = prepared_everywhere()
    slot = c.nodes[2].replica._slots[1]
    slot.prepared = False
    with pytest.raises(AssertionError, match="committed but not prepared|commit without having"):
        slot.committed = True
        c.nodes[2].replica.check_invariants()


def test_a_prepared_slot_needs_a_quorum_and_its_certificate_in_the_record():
    c = prepared_everywhere()
    replica = c.nodes[2].replica
    slot = replica._slots[1]
    held = dict(slot.prepares)
    slot.prepares = {r: p for r, p in held.items() if r == 2}
    with pytest.raises(AssertionError, match="prepared with 1 matching prepares"):
        replica.check_invariants()
    slot.prepares = held
    del replica._safety.prepared[1]
    with pytest.raises(AssertionError, match="certificate is not in the safety record"):
        replica.check_invariants()


def test_the_phase_must_match_the_safety_record():
    replica = prepared_everywhere().nodes[1].replica
    replica._phase = Phase.VIEW_CHANGING
    with pytest.raises(AssertionError, match="safety record says active=True"):
        replica.check_invariants()
    replica._phase = Phase.NORMAL
    replica._step = replica._STEP_VIEW_CHANGING
    with pytest.raises(AssertionError, match="other phase's table"):
        replica.check_invariants()


def test_going_back_is_caught():
    c = Cluster(4)
    c.propose()
    c.step()
    replica = c.nodes[1].replica
    assert replica.last_delivered == 1
    replica._last_delivered = 0
    with pytest.raises(AssertionError, match="went back"):
        replica.check_invariants()


def test_the_log_must_stay_in_the_window():
    replica = prepared_everywhere().nodes[1].replica
    replica._slots[99] = replica._slots[1]
    with pytest.raises(AssertionError, match=r"slots at seqs \[1, 99\] outside the window"):
        replica.check_invariants()


def test_waiting_for_a_new_view_without_a_timer_is_caught():
    c = prepared_everywhere()
    c.handle(1, RequestsPending())
    c.fire(1, VIEW_CHANGE_TIMER)
    replica = c.nodes[1].replica
    assert replica.in_view_change
    replica._timers.cancel([], VIEW_CHANGE_TIMER)
    with pytest.raises(AssertionError, match="without a view-change timer"):
        replica.check_invariants()


def test_a_vote_sent_before_its_record_is_persisted_is_caught():
    c = Cluster(4)
    replica = c.nodes[2].replica
    payload, digest = make_payload(1)
    vote = sign(Prepare(0, 1, digest, 2), keys(4)[2], CHAIN)
    with pytest.raises(AssertionError, match="before it was in a persisted safety record"):
        replica.check_invariants([Broadcast(vote)])
    # persisted first, it is fine; a second digest for the slot never is
    replica._safety.record_vote(0, 1, PHASE_PREPARE, digest)
    replica.check_invariants([PersistSafety(replica._safety.encode()), Broadcast(vote)])
    other = sign(replace(vote, digest=make_payload(1, "other")[1]), keys(4)[2], CHAIN)
    with pytest.raises(AssertionError, match="signed two digests"):
        replica.check_invariants([Broadcast(vote), Broadcast(other)])


def test_delivering_an_uncommitted_block_is_caught():
    c = prepared_everywhere()
    replica = c.nodes[1].replica
    pp = replica._slots[1].pre_prepare
    deliver = Deliver(1, pp.payload, CommitCertificate(0, 1, pp.digest, ()))
    with pytest.raises(AssertionError, match="without committing it"):
        replica.check_invariants([deliver])
