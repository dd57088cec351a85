"""The safety record: never two digests for one (view, seq, phase), never a
lower view, bounded, and all of it survives an encode/decode (a restart)."""

import pytest
from hypothesis import given, settings, strategies as st

from consensus.errors import SafetyRecordError
from consensus.messages import PHASES, PHASE_PREPARE, CheckpointProof, PreparedProof
from consensus.safety import SafetyState, apply_payload_changes, payload_keys
from ledger.certificate import Vote

SIG = bytes(64)
digests = st.sampled_from([bytes([i]) * 32 for i in range(3)])

operation = st.one_of(
    st.tuples(st.just("vote"), st.integers(0, 4), st.integers(0, 12), st.sampled_from(PHASES), digests),
    st.tuples(st.just("view"), st.integers(0, 4), st.booleans()),
    st.tuples(st.just("checkpoint"), st.integers(0, 12)),
    st.tuples(st.just("prepared"), st.integers(0, 4), st.integers(0, 12), digests),
    st.tuples(st.just("own checkpoint"), st.integers(0, 12), digests),
    st.tuples(st.just("restart")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=60))
def test_never_signs_two_digests_and_never_goes_back(ops):
    state = SafetyState()
    stored: dict = {}                    # the driver's durable payload store
    signed: dict[tuple[int, int, str], bytes] = {}
    highest_view = 0
    for op in ops:
        if op[0] == "vote":
            _, view, seq, phase, digest = op
            if state.record_vote(view, seq, phase, digest):
                assert view == state.view and seq > state.checkpoint.seq
                assert signed.setdefault((view, seq, phase), digest) == digest
        elif op[0] == "view":
            _, view, active = op
            if view >= state.view:
                state.enter_view(view, active=active)
            else:
                with pytest.raises(AssertionError):
                    state.enter_view(view, active=active)
        elif op[0] == "checkpoint":
            seq = op[1] * 4
            state.advance_checkpoint(CheckpointProof(seq, bytes(32), (Vote(0, SIG),) if seq else ()))
        elif op[0] == "prepared":
            _, view, seq, digest = op
            state.record_prepared(PreparedProof(view, seq, digest, SIG, (Vote(1, SIG),), b"p"))
        elif op[0] == "own checkpoint":
            state.own_checkpoint = (op[1] * 4, op[2])
        else:
            before = state
            apply_payload_changes(stored, *state.take_payload_changes())
            state = SafetyState.decode(state.encode(), stored)
            assert state == before
        assert state.view >= highest_view
        highest_view = state.view
        # bounded: only the current view's votes and the seqs above the checkpoint
        assert all(seq > state.checkpoint.seq for seq, _ in state.votes)
        assert all(seq > state.checkpoint.seq for seq in state.prepared)
        assert all(p.payload == b"p" for p in state.prepared.values())   # survives restarts
        # The driver stores only what the record still refers to.
        apply_payload_changes(stored, *state.take_payload_changes())
        assert set(stored) == {(p.seq, p.digest) for p in state.prepared.values()}
        assert payload_keys(state.encode()) == [(p.seq, p.digest) for p in state.prepared.values()]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 9), digests), max_size=30))
def test_prepared_keeps_the_highest_view(entries):
    state = SafetyState()
    best: dict[int, int] = {}
    for view, seq, digest in entries:
        state.record_prepared(PreparedProof(view, seq, digest, SIG, ()))
        best[seq] = max(best.get(seq, -1), view)
    assert {seq: p.view for seq, p in state.prepared.items()} == best


def test_lower_view_votes_are_refused():
    state = SafetyState()
    state.enter_view(2, active=True)
    assert not state.record_vote(1, 5, PHASE_PREPARE, bytes(32))
    assert state.record_vote(2, 5, PHASE_PREPARE, bytes(32))
    state.enter_view(3, active=False)
    assert state.votes == {}


@pytest.mark.parametrize("data", [b"", b"\x90", b"\x96\x02\x00\xc3\x93\x00\xc4\x00\x90\x90\x90",
                                  SafetyState().encode()[:-1]])
def test_corrupt_record_is_a_clear_error(data):
    with pytest.raises(SafetyRecordError):
        SafetyState.decode(data)


def test_the_record_stays_small_however_large_the_prepared_blocks():
    state = SafetyState()
    for seq in range(1, 33):
        state.record_prepared(PreparedProof(0, seq, bytes([seq]) * 32, SIG, (Vote(1, SIG),) * 2,
                                            b"x" * 1_000_000))
    assert len(state.encode()) < 16 * 1024
    payloads, dropped = state.take_payload_changes()
    assert len(payloads) == 32 and dropped == ()
    state.advance_checkpoint(CheckpointProof(16, bytes(32), (Vote(0, SIG),)))
    assert state.take_payload_changes() == ((), tuple((s, bytes([s]) * 32) for s in range(1, 17)))
