"""Quorum sizes and commit certificate checks."""

from __future__ import annotations

import pytest

from ledger.certificate import (PHASE_COMMIT, PHASE_PREPARE, CommitCertificate, Vote,
                                quorum_size, vote_bytes)
from ledger.crypto import KeyPair, hash256

CHAIN = "ynchain-test"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(7)]
PUBKEYS = [k.public_key for k in KEYS]
DIGEST = hash256(b"block")


@pytest.mark.parametrize("n, quorum", [
    (1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (6, 4), (7, 5), (8, 6), (9, 6), (10, 7)])
def test_quorum_size(n: int, quorum: int) -> None:
    assert quorum_size(n) == quorum
    f = (n - 1) // 3
    # any two quorums intersect in at least f+1 validators (one honest)
    assert 2 * quorum - n >= f + 1
    # and a quorum is reachable without the f faulty ones
    assert quorum <= n - f


def _vote(i: int, view: int = 2, height: int = 9, digest: bytes = DIGEST,
          phase: str = PHASE_COMMIT) -> Vote:
    return Vote(i, KEYS[i].sign(vote_bytes(phase, CHAIN, view, height, digest)))


def _cert(votes) -> CommitCertificate:
    return CommitCertificate(2, 9, DIGEST, tuple(votes))


def test_good_certificate() -> None:
    assert _cert(_vote(i) for i in (0, 2, 3)).problem(CHAIN, PUBKEYS[:4]) is None
    assert _cert(_vote(i) for i in range(4)).problem(CHAIN, PUBKEYS[:4]) is None
    decoded = CommitCertificate.decode(_cert(_vote(i) for i in range(3)).encode())
    assert decoded.problem(CHAIN, PUBKEYS[:4]) is None


def test_short_certificate() -> None:
    assert _cert(_vote(i) for i in (0, 1)).problem(CHAIN, PUBKEYS[:4]) == "2 votes, a quorum is 3"
    assert _cert([]).problem(CHAIN, PUBKEYS[:4]) == "0 votes, a quorum is 3"


def test_duplicate_votes_do_not_count_twice() -> None:
    cert = _cert([_vote(0), _vote(1), _vote(1)])
    assert cert.problem(CHAIN, PUBKEYS[:4]) == "two votes from validator 1"


def test_unknown_validator_index() -> None:
    cert = _cert([_vote(0), _vote(1), _vote(4)])
    assert cert.problem(CHAIN, PUBKEYS[:4]) == "vote from unknown validator index 4"


@pytest.mark.parametrize("bad", [
    Vote(2, bytes(64)),                                   # garbage
    Vote(2, KEYS[3].sign(vote_bytes(PHASE_COMMIT, CHAIN, 2, 9, DIGEST))),  # someone else's
    _vote(2, phase=PHASE_PREPARE),                        # a prepare is not a commit
    _vote(2, view=3), _vote(2, height=10), _vote(2, digest=hash256(b"other")),
])
def test_bad_signature(bad: Vote) -> None:
    cert = _cert([_vote(0), _vote(1), bad])
    assert cert.problem(CHAIN, PUBKEYS[:4]) == "bad signature from validator 2"


def test_other_chain_does_not_verify() -> None:
    cert = _cert(_vote(i) for i in range(3))
    assert cert.problem("another-chain", PUBKEYS[:4]) == "bad signature from validator 0"
