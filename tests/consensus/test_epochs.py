"""Epochs: validator-set changes at chain-scheduled boundaries (issue 11, item 3).

The schedule and the pure certificate check; the replica's rules (views per
epoch, the window cut at the boundary, passive replicas, the safety record's
epoch); and the simulator growing and shrinking the set 4 -> 5 -> 7 -> 4 under
faults, with the self-checks that a broken boundary rule and a certificate
checked against the wrong set are caught."""

from dataclasses import replace

import pytest

from consensus.epochs import (EpochSchedule, certificate_problem, change_of,
                              checkpoint_proof_problem, from_chain_config, genesis_epoch)
from consensus.errors import LocalProtocolError
from consensus.events import (Broadcast, Deliver, EpochChange, Executed, MessageReceived,
                              PersistSafety, Propose, Send, ViewChanged)
from consensus.messages import (Checkpoint, CheckpointProof, Commit, Prepare, PrePrepare,
                                ViewChange, sign)
from consensus.replica import Replica
from consensus.safety import GENESIS_CHECKPOINT, SafetyState, recorded_epoch
from consensus.sim import run_seed
from consensus.sim.run import run_world
from consensus.sim.scenario import SET_CHANGES, Scenario
from consensus.sim.world import World
from consensus.validators import ValidatorSet
from ledger import codec
from ledger.certificate import CommitCertificate, Vote, vote_bytes
from ledger.consortium import ConsensusParams
from ledger.consortium import Epoch as LedgerEpoch

from .cluster import CHAIN, GENESIS, config, keys, make_payload

POOL = keys(7)
FOUR = tuple(k.public_key for k in POOL[:4])
FIVE = tuple(k.public_key for k in POOL[:5])
PARAMS = dict(checkpoint_interval=4, window=8, max_in_flight=8, view_change_timeout_ms=1000,
              max_view_change_timeout_ms=8000)


def change(epoch, boundary, validators, **params):
    return EpochChange(epoch, boundary, validators, **{**PARAMS, **params})


def schedule(*changes):
    s = EpochSchedule([genesis_epoch(FOUR, **PARAMS)])
    for c in changes:
        s.learn(c)
    return s


def certificate(signers, height, digest=b"d" * 32, view=0, validators=FOUR):
    message = vote_bytes("commit", CHAIN, view, height, digest)
    votes = tuple(Vote(validators.index(k.public_key), k.sign(message)) for k in signers)
    return CommitCertificate(view, height, digest, votes)


# -- the schedule and the pure checks --------------------------------------------------

def test_schedule_finds_the_epoch_of_each_seq_and_the_boundary_belongs_to_the_old_one():
    s = schedule(change(1, 8, FIVE))
    assert [s.epoch_of(seq).number for seq in (0, 1, 8, 9, 100)] == [0, 0, 0, 1, 1]
    assert s.reach(0) == 8 and s.reach(3) == 11


def test_reach_never_shrinks_when_a_later_epoch_with_a_smaller_window_is_learnt():
    """A replica accepts up to reach(executed): learning an epoch must not take
    back seqs it may already hold (sim seeds 1310, 1367 caught this)."""
    s = schedule(change(1, 12, FIVE, checkpoint_interval=6, window=12))
    before = s.reach(14)
    assert before == 26
    s.learn(change(2, 30, FOUR, window=8))          # what block 14 schedules
    assert s.reach(14) == before


def test_a_pending_epoch_may_be_replaced_but_not_moved_or_skipped():
    s = schedule(change(1, 8, FIVE))
    assert s.learn(change(1, 8, FOUR[:3] + FIVE[4:])) and s.last.validators.n == 4
    assert not s.learn(change(1, 8, FOUR[:3] + FIVE[4:]))          # the same again
    with pytest.raises(LocalProtocolError):
        s.learn(change(1, 12, FIVE))                               # moved
    with pytest.raises(LocalProtocolError):
        s.learn(change(3, 16, FIVE))                               # a gap
    with pytest.raises(LocalProtocolError):
        s.learn(change(2, 10, FIVE))                               # not a checkpoint of epoch 1


def test_primary_rotation_goes_on_across_epochs():
    assert [ValidatorSet(FIVE, epoch=2).primary(v) for v in range(4)] == [2, 3, 4, 0]


def test_a_certificate_is_checked_against_the_set_of_its_height():
    s = schedule(change(1, 8, FIVE))
    old_quorum = certificate(POOL[:3], 8)
    assert certificate_problem(s, CHAIN, old_quorum) is None
    # The same three old validators cannot decide a seq of the five-validator epoch.
    problem = certificate_problem(s, CHAIN, certificate(POOL[:3], 9))
    assert problem == "3 votes, a quorum is 4"
    assert certificate_problem(s, CHAIN, certificate(POOL[:4], 9, validators=FIVE)) is None


def test_a_checkpoint_proof_is_checked_against_the_set_of_its_seq():
    s = schedule(change(1, 8, FIVE))

    def proof(seq, signers, validators):
        digest = b"s" * 32
        votes = []
        for k in signers:
            c = sign(Checkpoint(seq, digest, validators.index(k.public_key)), k, CHAIN)
            votes.append(Vote(c.replica, c.signature))
        return CheckpointProof(seq, digest, tuple(votes))

    assert checkpoint_proof_problem(s, CHAIN, proof(8, POOL[:3], FOUR)) is None
    assert "quorum is 4" in checkpoint_proof_problem(s, CHAIN, proof(12, POOL[:3], FIVE))
    assert checkpoint_proof_problem(s, CHAIN, proof(12, POOL[1:5], FIVE)) is None
    assert "no checkpoint" in checkpoint_proof_problem(s, CHAIN, proof(10, POOL[1:5], FIVE))


def test_the_schedule_of_a_chain_configuration():
    params = ConsensusParams(checkpoint_interval=4, window=8)
    named = lambda ks: tuple((f"node{i}", k) for i, k in enumerate(ks))     # noqa: E731
    epochs = (LedgerEpoch(0, 0, named(FOUR), params), LedgerEpoch(1, 8, named(FIVE), params))
    s = from_chain_config(epochs)
    assert s.epoch_of(9).validators.keys == FIVE and s.epoch_of(8).validators.keys == FOUR
    assert change_of(epochs[1]) == EpochChange(1, 8, FIVE, 4, 8, params.max_in_flight,
                                               params.view_change_timeout_ms,
                                               params.max_view_change_timeout_ms)


def test_epoch_change_checks_its_fields():
    with pytest.raises(LocalProtocolError):
        change(0, 8, FIVE)                      # epoch 0 is genesis
    with pytest.raises(LocalProtocolError):
        change(1, 8, FIVE + FIVE[:1])           # a key twice
    with pytest.raises(LocalProtocolError):
        change(1, 8, FIVE, window=2)            # window < checkpoint interval


# -- the safety record -------------------------------------------------------------------

def test_safety_record_keeps_the_epoch_and_reads_a_record_written_before_epochs():
    state = SafetyState()
    state.enter_view(3, active=True)
    state.enter_epoch(2)
    assert (state.epoch, state.view, state.active) == (2, 0, True)
    assert SafetyState.decode(state.encode()).epoch == 2 == recorded_epoch(state.encode())
    with pytest.raises(AssertionError):
        state.enter_epoch(1)                    # never back to an earlier epoch
    old = codec.pack([1, 4, True, GENESIS_CHECKPOINT.to_record(), [0, bytes(32)], [], []])
    decoded = SafetyState.decode(old)
    assert (decoded.epoch, decoded.view) == (0, 4) and recorded_epoch(old) == 0


# -- the replica ----------------------------------------------------------------------

def test_the_primary_proposes_nothing_beyond_the_boundary():
    """The window is cut at B: seqs above it wait for the checkpoint at B."""
    replica = Replica(config(4, 0, max_in_flight=8, epochs=(change(1, 4, FIVE),)),
                      POOL[0], None, (0, GENESIS))
    replica.start()
    for seq in range(1, 5):
        assert replica.next_proposal_seq() == seq
        payload, digest = make_payload(seq)
        replica.handle(Propose(seq, payload, digest))
    assert replica.next_proposal_seq() is None
    # The same replica without the scheduled change keeps going up to the window.
    free = Replica(config(4, 0, max_in_flight=8), POOL[0], None, (0, GENESIS))
    free.start()
    for seq in range(1, 5):
        free.handle(Propose(seq, *make_payload(seq)))
    assert free.next_proposal_seq() == 5


def test_nothing_is_accepted_beyond_what_the_replica_has_executed_plus_the_window():
    """A replica behind cannot know the set of a seq more than W ahead of
    what it executed: a block it has not executed could schedule a boundary."""
    replica = Replica(config(4, 1), POOL[1], None, (0, GENESIS))
    replica.start()
    far = sign(PrePrepare(0, 9, *reversed(make_payload(9)), 0), POOL[0], CHAIN)
    assert replica.handle(MessageReceived(0, far)) == []


def run_passive(replica, sender):
    payload, digest = make_payload(1)
    pp = sign(PrePrepare(0, 1, digest, payload, 0), POOL[0], CHAIN)
    actions = replica.handle(MessageReceived(sender(0), pp))
    for i in (1, 2, 3):
        prepare = sign(Prepare(0, 1, digest, i), POOL[i], CHAIN)
        actions += replica.handle(MessageReceived(sender(i), prepare))
    for i in (0, 1, 2):
        commit = sign(Commit(0, 1, digest, i), POOL[i], CHAIN)
        actions += replica.handle(MessageReceived(sender(i), commit))
    return actions


def test_a_replica_outside_the_set_delivers_what_commits_prove_and_never_votes():
    observer = Replica(config(4, None), POOL[5], None, (0, GENESIS))
    assert observer.index is None
    actions = observer.start()
    actions += run_passive(observer, lambda i: POOL[i].public_key)
    assert [a.seq for a in actions if isinstance(a, Deliver)] == [1]
    assert not [a for a in actions if isinstance(a, (Send, Broadcast))]
    actions = observer.handle(Executed(1, b"h" * 32))
    assert not [a for a in actions if isinstance(a, (Send, Broadcast))]


def test_view_change_of_another_epoch_is_not_counted():
    replica = Replica(config(4, 1), POOL[1], None, (0, GENESIS))
    replica.start()
    for i in (0, 2, 3):
        vc = sign(ViewChange(1, GENESIS_CHECKPOINT, (), i, epoch=1), POOL[i], CHAIN)
        assert replica.handle(MessageReceived(i, vc)) == []
    assert (replica.epoch, replica.view) == (0, 0)
    vc = sign(ViewChange(1, GENESIS_CHECKPOINT, (), 0), POOL[0], CHAIN)
    replica.handle(MessageReceived(0, vc))
    vc = sign(ViewChange(1, GENESIS_CHECKPOINT, (), 2), POOL[2], CHAIN)
    replica.handle(MessageReceived(2, vc))
    assert replica.view == 1           # f+1 of its own epoch: it joins


def test_a_replica_enters_the_next_epoch_once_the_boundary_checkpoint_is_stable():
    """Epoch 1 (5 validators) starts after seq 4: the replica enters it at view 0
    once it executed 4 and 3 of the old set signed the checkpoint at 4; its
    primary is then (1 + 0) mod 5 = validator 1."""
    replica = Replica(config(4, 1), POOL[1], None, (0, GENESIS))
    replica.start()
    state = b"s" * 32
    for seq in range(1, 5):
        payload, digest = make_payload(seq)
        replica.handle(MessageReceived(0, sign(PrePrepare(0, seq, digest, payload, 0),
                                               POOL[0], CHAIN)))
        for i in (0, 2):
            replica.handle(MessageReceived(i, sign(Commit(0, seq, digest, i), POOL[i], CHAIN)))
        for i in (2, 3):
            replica.handle(MessageReceived(i, sign(Prepare(0, seq, digest, i), POOL[i], CHAIN)))
        next_epoch = change(1, 4, FIVE) if seq == 1 else None
        replica.handle(Executed(seq, state if seq == 4 else b"x" * 32, next_epoch))
    assert replica.epoch == 0 and replica.last_delivered == 4
    actions = []
    for i in (0, 2):
        actions += replica.handle(MessageReceived(i, sign(Checkpoint(4, state, i), POOL[i], CHAIN)))
    assert replica.epoch == 1 and replica.view == 0 and replica.primary == 1
    assert replica.validator_keys == FIVE and replica.stable_checkpoint == 4
    assert ViewChanged(0, (), 1) in actions
    persisted = [a for a in actions if isinstance(a, PersistSafety)]
    assert persisted and recorded_epoch(persisted[-1].record) == 1
    # A restart from that record resumes epoch 1 (the host passes the schedule).
    again = Replica(config(4, 1, epochs=(change(1, 4, FIVE),)), POOL[1],
                    persisted[-1].record, (4, state))
    assert (again.epoch, again.view, again.index) == (1, 0, 1)
    # Without the epoch it was in, a restart is refused, not guessed.
    with pytest.raises(LocalProtocolError):
        Replica(config(4, 1), POOL[1], persisted[-1].record, (4, state))


# -- the simulator ----------------------------------------------------------------------

RECONFIG_SEEDS = [0, 1, 2, 3, 1310]      # 1310: the window once shrank under a learnt epoch


def test_reconfiguration_seeds_keep_safety_and_every_change_takes_effect():
    for seed in RECONFIG_SEEDS:
        result = run_seed(seed, reconfig=True)
        assert result.violation is None and result.liveness_failure is None, (seed, result)


def test_the_new_sets_decide_after_their_boundaries():
    """Certificates past each boundary carry the quorum of the new set (4 of
    5, 5 of 7, 3 of 4): the changes really took effect, one after another."""
    sc = Scenario.from_seed(1, reconfig=True)
    world = World(sc)
    run_world(world, sc)
    host = next(h for h in world.hosts if h.correct)
    epochs = list(host.schedule)
    assert [e.validators.n for e in epochs] == [4] + [len(c.nodes) for c in SET_CHANGES]
    for epoch in epochs:
        heights = [seq for seq in range(1, host.height + 1) if host.schedule.epoch_of(seq) is epoch]
        assert heights, f"no block decided by epoch {epoch.number}"
        for seq in heights:
            assert len(host.blocks[seq - 1][1].votes) == epoch.validators.quorum


def test_self_check_a_window_not_cut_at_the_boundary_is_caught():
    """Replicas that accept seqs above B before the checkpoint at B is stable
    let the old set decide slots of the new epoch: the checker must notice
    (the same seeds pass with the rule kept, above)."""
    violations = [run_seed(seed, reconfig=True, broken_boundary=True).violation
                  for seed in range(0, 2)]
    assert all(violations), violations


def test_self_check_a_certificate_checked_against_the_wrong_set_is_caught():
    """Every certificate of a run is valid for the set of its height, and the
    check tells sets apart: against the genesis set, the later ones fail."""
    sc = Scenario.from_seed(2, reconfig=True)
    world = World(sc)
    run_world(world, sc)
    host = next(h for h in world.hosts if h.correct)
    genesis_only = EpochSchedule([host.schedule.first])
    wrong = [seq for seq in range(1, host.height + 1)
             if certificate_problem(genesis_only, "sim-chain", host.blocks[seq - 1][1])]
    right = [seq for seq in range(1, host.height + 1)
             if certificate_problem(host.schedule, "sim-chain", host.blocks[seq - 1][1])]
    assert right == [] and wrong and min(wrong) > host.schedule.get(1).start


def test_changes_that_land_while_an_epoch_is_pending_replace_it():
    """All three changes executed before the first boundary: one epoch (the last
    set) replaces the pending one.  The two validators of the new set that fell
    behind in epoch 0 hear the boundary checkpoint only from the old set that
    signs it, and still catch up (seed 102 stalled before: hints counted only
    members of the newest set)."""
    sc = replace(Scenario.from_seed(102, reconfig=True), eager_changes=True)
    world = World(sc)
    result = run_world(world, sc)
    assert result.violation is None and result.liveness_failure is None, result
    host = next(h for h in world.hosts if h.correct)
    assert host.schedule.last.number < len(SET_CHANGES)      # some change replaced a pending one


def test_cli_replays_a_reconfiguration_seed_with_its_flags(capsys):
    from consensus.sim.__main__ import main
    assert main(["--seeds", "1", "--start", "0", "--reconfig", "--broken-boundary"]) == 1
    out = capsys.readouterr().out
    assert "replay: python -m consensus.sim --seeds 1 --start 0 --nodes 4 --reconfig " \
           "--broken-boundary" in out
