"""Wire messages: round trips, and decode_message raises RemoteProtocolError
(never anything else) on arbitrary or mutated bytes."""

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from consensus.errors import RemoteProtocolError
from consensus.messages import (MAX_MESSAGE, MAX_PAYLOAD, Checkpoint, CheckpointProof, Commit,
                                NewView, PrePrepare, Prepare, PreparedProof, ViewChange,
                                decode_message, sign, signed_votes)
from ledger.certificate import Vote
from ledger.codec import MAX_FRAME

from .cluster import CHAIN, keys

K = keys(4)
D = bytes(range(32))
SIG = bytes(64)


def samples():
    pp = sign(PrePrepare(3, 7, D, b"payload", 3), K[3], CHAIN)
    proof = PreparedProof(2, 7, D, SIG, (Vote(0, SIG), Vote(1, SIG)), b"payload")
    vc = sign(ViewChange(3, CheckpointProof(4, D, (Vote(0, SIG), Vote(2, SIG), Vote(3, SIG))),
                         (proof,), 1), K[1], CHAIN)
    return [
        pp,
        sign(Prepare(3, 7, D, 1), K[1], CHAIN),
        sign(Commit(3, 7, D, 2), K[2], CHAIN),
        sign(Checkpoint(8, D, 0), K[0], CHAIN),
        vc,
        sign(NewView(3, (vc.without_payloads(),), (pp,), 3), K[3], CHAIN),
    ]


@pytest.mark.parametrize("message", samples(), ids=lambda m: type(m).__name__)
def test_round_trip(message):
    assert decode_message(message.encode()) == message


def test_view_change_signature_ignores_payloads():
    vc = samples()[4]
    assert vc.without_payloads().signed_bytes(CHAIN) == vc.signed_bytes(CHAIN)
    assert vc.without_payloads().prepared[0].payload is None


@pytest.mark.parametrize("record, fragment", [
    ([99, 1], "unknown type tag"),
    (["1", 1], "unknown type tag"),
    ([], "non-empty array"),
    ({"a": 1}, "non-empty array"),
    ([2, 1, 1, D, 1], "expected 5 fields"),
    ([2, -1, 1, D, 1, SIG], "prepare.view"),
    ([2, 1, 1, D[:31], 1, SIG], "prepare.digest"),
    ([2, 1, 1, D, 1024, SIG], "prepare.replica"),
    ([2, 1, 1, D, 1, SIG[:63]], "prepare.signature"),
    ([2, 1, -5, D, 1, SIG], "prepare.seq"),
    ([1, 1, 1, D, "text", 0, SIG], "pre-prepare.payload"),
    ([1, 1, 1, D, b"x" * (MAX_PAYLOAD + 1), 0, SIG], "longer than"),
    ([5, 1, [4, D, [[0, SIG], [0, SIG]]], [], 0, SIG, 0], "two votes from one validator"),
    ([5, 1, [4, D, []], [[1, 2, D, SIG, [], 7]], 0, SIG, 0], "prepared proof.payload"),
    ([6, 1, [1], [], 0, SIG, 0], "view-change"),
    ([4, 8, D, 0, SIG, 1], "expected 4 fields"),
])
def test_malformed_records_are_remote_errors(record, fragment):
    with pytest.raises(RemoteProtocolError, match=fragment):
        decode_message(msgpack.packb(record, use_bin_type=True))


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x02", b"\xd4\x01\x01", "str", None, 5])
def test_not_msgpack_or_not_bytes(data):
    with pytest.raises(RemoteProtocolError):
        decode_message(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_remote_errors(data):
    try:
        decode_message(data)
    except RemoteProtocolError:
        pass


_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=70),
    lambda inner: st.lists(inner, max_size=7) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 7), st.lists(_plain, max_size=7))
def test_arbitrary_structures_raise_only_remote_errors(tag, fields):
    try:
        decode_message(msgpack.packb([tag, *fields], use_bin_type=True))
    except RemoteProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(6)), st.data())
def test_mutated_valid_messages_decode_or_raise_remote_errors(index, data):
    encoded = bytearray(samples()[index].encode())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(encoded) - 1))
        encoded[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    try:
        message = decode_message(bytes(encoded[:cut]))
    except RemoteProtocolError:
        return
    assert decode_message(message.encode()) == message


def test_no_message_larger_than_a_transport_frame_is_decoded():
    # A consensus message arrives in one frame: the bound is the frame cap.
    assert MAX_MESSAGE == MAX_FRAME == 16 * 1024 * 1024 and MAX_PAYLOAD < MAX_MESSAGE
    with pytest.raises(RemoteProtocolError, match="larger than"):
        decode_message(b"\x00" * (MAX_MESSAGE + 1))


def test_signed_votes_names_every_vote_a_validator_signed_in_a_message():
    primary = lambda view: view % 4                                       # noqa: E731
    pp, prepare, commit, checkpoint, vc, nv = samples()
    assert signed_votes(pp, 3, primary) == [(3, 7, "pre-prepare", D)]
    assert signed_votes(pp, 1, primary) == []
    assert signed_votes(prepare, 1, primary) == [(3, 7, "prepare", D)]
    assert signed_votes(commit, 2, primary) == [(3, 7, "commit", D)]
    assert signed_votes(checkpoint, 0, primary) == []
    # inside a VIEW-CHANGE: the certificate's pre-prepare (view 2: primary 2) and prepares
    assert signed_votes(vc, 2, primary) == [(2, 7, "pre-prepare", D)]
    assert signed_votes(vc, 0, primary) == [(2, 7, "prepare", D)]
    # a NEW-VIEW: its pre-prepares for its sender, and what its VIEW-CHANGEs carry
    assert signed_votes(nv, 3, primary) == [(3, 7, "pre-prepare", D)]
    assert signed_votes(nv, 0, primary) == [(2, 7, "prepare", D)]
