"""Whatever well-formed messages peers send, in any order, a replica only
reports faults or reacts: it never raises and never breaks its own rules."""

from hypothesis import HealthCheck, given, settings, strategies as st

from consensus.events import MessageReceived, PersistSafety, Propose, RequestsPending
from consensus.messages import (Checkpoint, CheckpointProof, Commit, NewView, PrePrepare,
                                Prepare, PreparedProof, ViewChange, sign)
from consensus.replica import Replica
from consensus.safety import SafetyState
from ledger.block import NULL_DIGEST
from ledger.certificate import Vote

from .cluster import CHAIN, GENESIS, config, keys, make_payload

K = keys(4)
views = st.integers(0, 3)
seqs = st.integers(0, 12)
senders = st.integers(0, 3)
payloads = st.sampled_from([make_payload(s, t) for s in (1, 2, 3) for t in "ab"] + [(b"", NULL_DIGEST)])


@st.composite
def messages(draw):
    kind = draw(st.sampled_from("ppcvkn"))
    signer = draw(senders)
    claimed = draw(st.sampled_from([signer, signer, (signer + 1) % 4]))
    chain = draw(st.sampled_from([CHAIN, CHAIN, "other"]))
    view, seq = draw(views), draw(seqs)
    payload, digest = draw(payloads)
    if kind == "p":
        message = PrePrepare(view, seq, digest, payload, claimed)
    elif kind == "c":
        message = draw(st.sampled_from([Prepare, Commit]))(view, seq, digest, claimed)
    elif kind == "k":
        message = Checkpoint(draw(st.sampled_from([4, 8, 12, 5])), digest, claimed)
    else:
        votes = tuple(Vote(i, bytes(64)) for i in range(draw(st.integers(0, 3))))
        proof = PreparedProof(view, seq, digest, bytes(64), votes, draw(st.sampled_from([None, payload])))
        vc = ViewChange(draw(st.integers(0, 4)), CheckpointProof(draw(st.sampled_from([0, 4])), digest, votes),
                        draw(st.sampled_from([(), (proof,)])), claimed)
        vc = sign(vc, K[signer], chain)
        message = vc if kind == "v" else NewView(vc.new_view, (vc,) * draw(st.integers(0, 3)), (), claimed)
    return draw(senders), sign(message, K[signer], chain)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 3), st.lists(messages(), max_size=40))
def test_arbitrary_peer_messages_never_crash_a_replica(me, inbox):
    replica = Replica(config(4, me), K[me], None, (0, GENESIS))
    replica.start()
    replica.handle(RequestsPending())
    record = None
    for sender, message in inbox:
        if sender == me:
            continue
        seq = replica.next_proposal_seq()
        if seq is not None:
            payload, digest = make_payload(seq)
            replica.handle(Propose(seq, payload, digest))
        for action in replica.handle(MessageReceived(sender, message)):
            if isinstance(action, PersistSafety):
                record = action.record
        assert replica.view >= 0 and replica.last_delivered >= 0
    if record is not None:
        restored = SafetyState.decode(record)
        assert restored.view <= replica.view
