"""Hypothesis drives the schedule; safety must hold whatever it draws.

Every vote a correct replica hands to the network is collected by its Node
(tests/consensus/cluster.py): PRE-PREPARE, PREPARE, COMMIT, the PRE-PREPAREs
of its NEW-VIEWs and its signatures inside the certificates its VIEW-CHANGEs
carry, kept across restarts.  A second digest for one (view, seq, phase)
fails the test (Equivocation), and every replica checks its own invariants
after every event (check_invariants).
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings, strategies as st, target

from consensus.config import RETRANSMIT_TIMER, VIEW_CHANGE_TIMER
from consensus.events import MessageReceived, Propose, RequestsPending, TimerFired
from consensus.messages import (Checkpoint, CheckpointProof, Commit, NewView, PrePrepare,
                                Prepare, PreparedProof, ViewChange, decode_message, sign)
from consensus.replica import Replica
from consensus.safety import GENESIS_CHECKPOINT
from consensus.validators import ValidatorSet
from ledger.block import NULL_DIGEST
from ledger.certificate import Vote

from .cluster import CHAIN, GENESIS, Cluster, Node, config, keys, make_payload

K = keys(4)
BYZANTINE = 0          # the primary of view 0: it can equivocate from the start
CORRECT = (1, 2, 3)
NODES = (0, 1, 2, 3)
views = st.sampled_from([0, 0, 0, 1, 4])
seqs = st.sampled_from([1, 1, 2, 0, 12])
tags = st.sampled_from("abc")


# -- one correct replica, every peer arbitrary ---------------------------------------------

@st.composite
def arbitrary_messages(draw):
    """Well-formed messages with any fields, claimed sender, chain and signer;
    proposals often valid (a payload of their seq, from the view's primary)."""
    kind = draw(st.sampled_from("pppcvkn"))
    view, seq = draw(views), draw(seqs)
    if draw(st.sampled_from([True, True, False])):      # as an honest peer would send it
        signer = claimed = view % 4 if kind == "p" else draw(st.integers(0, 3))
        chain = CHAIN
    else:
        signer = draw(st.integers(0, 3))
        claimed = draw(st.sampled_from([signer, (signer + 1) % 4]))
        chain = draw(st.sampled_from([CHAIN, "other"]))
    payload, digest = draw(st.sampled_from([make_payload(seq, t) for t in "ab"]
                                           + [(b"", NULL_DIGEST)]))
    if kind == "p":
        message = PrePrepare(view, seq, digest, payload, claimed)
    elif kind == "c":
        message = draw(st.sampled_from([Prepare, Commit]))(view, seq, digest, claimed)
    elif kind == "k":
        message = Checkpoint(draw(st.sampled_from([4, 8, 12, 5])), digest, claimed)
    else:
        votes = tuple(Vote(i, bytes(64)) for i in range(draw(st.integers(0, 3))))
        proof = PreparedProof(view, seq, digest, bytes(64), votes,
                              draw(st.sampled_from([None, payload])))
        checkpoint = draw(st.sampled_from([GENESIS_CHECKPOINT,
                                           CheckpointProof(4, digest, votes)]))
        vc = sign(ViewChange(draw(st.integers(1, 4)), checkpoint,
                             draw(st.sampled_from([(), (proof,)])), claimed), K[signer], chain)
        message = vc if kind == "v" else NewView(vc.new_view, (vc,) * draw(st.integers(0, 3)),
                                                 (), claimed)
    return draw(st.sampled_from([claimed, claimed, claimed, draw(st.integers(0, 3))])), \
        sign(message, K[signer], chain)


inbox_events = st.one_of(
    st.tuples(st.just("message"), arbitrary_messages()),
    st.tuples(st.just("message"), arbitrary_messages()),
    st.tuples(st.just("timer"), st.sampled_from([VIEW_CHANGE_TIMER, RETRANSMIT_TIMER])),
    st.tuples(st.just("restart")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 3), st.lists(inbox_events, max_size=40))
def test_a_replica_fed_arbitrary_messages_never_signs_two_votes_for_a_slot(me, inbox):
    """Whatever its peers send (more than f of them lying), a correct replica
    never raises on their messages, never breaks its invariants, and never
    signs two digests for one (view, seq, phase), across restarts."""
    node = Node(me, ValidatorSet(tuple(k.public_key for k in K)), network=_Discard())
    node.boot(Replica(config(4, me), K[me], None, (0, GENESIS)))
    node.executor.step([RequestsPending()])
    for item in inbox:
        replica = node.replica
        seq = replica.next_proposal_seq()
        if seq is not None:
            node.executor.step([Propose(seq, *make_payload(seq))])
        if item[0] == "message":
            sender, message = item[1]
            if sender != me:
                node.executor.step([MessageReceived(sender, message)])
        elif item[0] == "timer":
            timer = node.timers.pop(item[1], None)
            if timer is not None:
                node.executor.step([TimerFired(timer.kind, timer.token)])
        else:
            node.boot(Replica(config(4, me), K[me], node.record, (node.height, node.state),
                              prepared_payloads=node.payloads))
            # what it persisted resumes its view and phase (and its votes: above)
            assert (node.replica.view, node.replica.phase) == (replica.view, replica.phase)
    assert node.replica.view >= max(node.views, default=0)


class _Discard(list):
    """The network of a replica nobody answers."""

    def append(self, item):
        pass

    def extend(self, items):
        for _ in items:
            pass


# -- a cluster under a random schedule, with one Byzantine validator ---------------------

@st.composite
def byzantine_messages(draw):
    """What validator 0 may send, signed with its real key: proposals that
    pass every check (as primary of view 0 it can equivocate), any vote,
    checkpoints of any state, and VIEW-CHANGEs to any view."""
    kind = draw(st.sampled_from("ppcvk"))
    view, seq = draw(st.sampled_from([0, 0, 0, 1])), draw(st.integers(1, 3))
    if kind == "p":
        payload, digest = draw(st.sampled_from([make_payload(seq, t) for t in "xy"]
                                               + [(b"", NULL_DIGEST)]))
        message = PrePrepare(view, seq, digest, payload, BYZANTINE)
    elif kind == "c":
        digest = draw(st.sampled_from([make_payload(seq, t)[1] for t in "xyz"] + [NULL_DIGEST]))
        message = draw(st.sampled_from([Prepare, Commit]))(view, seq, digest, BYZANTINE)
    elif kind == "k":
        message = Checkpoint(draw(st.sampled_from([4, 8])), draw(st.sampled_from(
            [GENESIS, bytes([1]) * 32])), BYZANTINE)
    else:
        message = ViewChange(draw(st.integers(1, 5)), GENESIS_CHECKPOINT, (), BYZANTINE)
    return draw(st.sampled_from(CORRECT)), sign(message, K[BYZANTINE], CHAIN)


schedule_steps = st.one_of(
    st.tuples(st.just("deliver"), st.integers(0, 1 << 16)),
    st.tuples(st.just("deliver"), st.integers(0, 1 << 16)),
    st.tuples(st.just("deliver all")),
    st.tuples(st.just("deliver all")),
    st.tuples(st.just("drop"), st.integers(0, 1 << 16)),
    st.tuples(st.just("duplicate"), st.integers(0, 1 << 16)),
    st.tuples(st.just("propose"), tags),
    st.tuples(st.just("timer"), st.sampled_from(NODES),
              st.sampled_from([VIEW_CHANGE_TIMER, RETRANSMIT_TIMER])),
    st.tuples(st.just("pending"), st.sampled_from(NODES)),
    st.tuples(st.just("suspect"), st.sampled_from(NODES)),
    st.tuples(st.just("restart"), st.sampled_from(NODES)),
    st.tuples(st.just("restart"), st.sampled_from(CORRECT)),
    st.tuples(st.just("sync"), st.sampled_from(NODES)),
    st.tuples(st.just("byzantine"), byzantine_messages()),
    st.tuples(st.just("byzantine"), byzantine_messages()),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(schedule_steps, min_size=10, max_size=80))
def test_a_cluster_under_any_schedule_agrees_and_never_equivocates(schedule):
    """Messages delivered in any order, lost or duplicated, timers firing at
    any time, replicas crashing and restarting from their records, and
    validator 0 sending, besides what its replica sends, whatever it likes
    (equivocating as the primary of view 0): no replica signs two digests for
    one slot, and the blocks the correct ones deliver agree."""
    c = Cluster(4)
    proposals = 0
    for step in schedule:
        kind = step[0]
        if kind == "deliver" and c.queue:
            index = step[1] % len(c.queue)
            src, dst, data = c.queue[index]
            del c.queue[index]
            c.handle(dst, MessageReceived(src, decode_message(data)))
        elif kind == "deliver all":
            c.step()
        elif kind == "drop" and c.queue:
            del c.queue[step[1] % len(c.queue)]
        elif kind == "duplicate" and c.queue:
            c.queue.append(c.queue[step[1] % len(c.queue)])
        elif kind == "propose":
            for i in NODES:
                seq = c.nodes[i].replica.next_proposal_seq()
                if seq is not None:
                    proposals += 1
                    c.handle(i, Propose(seq, *make_payload(seq, f"{step[1]}{proposals}")))
        elif kind == "timer":
            _, i, timer = step
            if timer in c.nodes[i].timers:
                c.fire(i, timer)
        elif kind == "pending":
            c.handle(step[1], RequestsPending())
        elif kind == "suspect":     # its requests wait too long: it suspects the primary
            c.handle(step[1], RequestsPending())
            if VIEW_CHANGE_TIMER in c.nodes[step[1]].timers:
                c.fire(step[1], VIEW_CHANGE_TIMER)
        elif kind == "restart":
            c.restart(step[1])
        elif kind == "sync":
            i = step[1]
            source = max(NODES, key=lambda j: c.nodes[j].height)
            if c.nodes[i].syncs and c.nodes[source].height > c.nodes[i].height:
                c.sync(i, source, c.nodes[source].height)
        elif kind == "byzantine":
            to, message = step[1]
            c.handle(to, MessageReceived(BYZANTINE, message))
    # Steer the search towards schedules that get far (commits, view changes).
    height = max(c.nodes[i].height for i in NODES)
    view = max(c.nodes[i].replica.view for i in NODES)
    target(float(height), label="blocks delivered")
    target(float(view), label="highest view")
    event(f"blocks delivered: {min(height, 4)}{'+' if height >= 4 else ''}")
    event(f"highest view: {min(view, 3)}{'+' if view >= 3 else ''}")
    validators = [k.public_key for k in K]
    chains = [c.digests(i) for i in CORRECT]
    longest = max(chains, key=len)
    for i, chain in zip(CORRECT, chains):
        assert chain == longest[:len(chain)], f"replica {i} disagrees"
        for d in c.nodes[i].delivered:
            assert d.certificate.height == d.seq
            assert d.certificate.problem(CHAIN, validators) is None
