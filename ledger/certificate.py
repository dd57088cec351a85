"""Signed votes and commit certificates.

A COMMIT vote signs VOTE_DOMAIN + pack([phase, chain_id, view, seq, digest]).
The consensus core signs its PREPARE/COMMIT votes with exactly these bytes, so a
certificate is just 2f+1 of the COMMIT signatures it collected, and anyone with
the validator keys can check a block without trusting whoever served it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from . import codec
from .codec import DecodeError
from .crypto import HASH_LEN, SIG_LEN, verify

VOTE_DOMAIN = b"ynchain/pbft-vote/v1\x00"
CHECKPOINT_DOMAIN = b"ynchain/pbft-checkpoint/v1\x00"
PHASE_PREPARE = "prepare"
PHASE_COMMIT = "commit"
MAX_VALIDATORS = 1024


def quorum_size(n: int) -> int:
    """ceil((n + f + 1) / 2) with f = (n - 1) // 3; 2f+1 when n = 3f+1."""
    f = (n - 1) // 3
    return (n + f + 2) // 2


def vote_bytes(phase: str, chain_id: str, view: int, seq: int, digest: bytes) -> bytes:
    return VOTE_DOMAIN + codec.pack([phase, chain_id, view, seq, digest])


def checkpoint_bytes(chain_id: str, seq: int, state_digest: bytes) -> bytes:
    """What a CHECKPOINT signs: the block hash at `seq` (its state digest).
    2f+1 of them (a stable checkpoint proof) certify that header, and through
    the prev_hash links every header below it (ledger.proof_file)."""
    return CHECKPOINT_DOMAIN + codec.pack([chain_id, seq, state_digest])


@dataclass(frozen=True, slots=True)
class Vote:
    validator: int          # index into the genesis validator list
    signature: bytes

    def to_record(self) -> list:
        return [self.validator, self.signature]

    @classmethod
    def from_record(cls, rec: Any) -> "Vote":
        codec.expect_list(rec, 2, "vote")
        codec.expect_uint(rec[0], "vote.validator", MAX_VALIDATORS - 1)
        codec.expect_bytes(rec[1], "vote.signature", SIG_LEN)
        return cls(rec[0], rec[1])


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    view: int
    height: int
    digest: bytes
    votes: tuple[Vote, ...]

    def to_record(self) -> list:
        return [self.view, self.height, self.digest, [v.to_record() for v in self.votes]]

    def encode(self) -> bytes:
        return codec.pack(self.to_record())

    @classmethod
    def from_record(cls, rec: Any) -> "CommitCertificate":
        codec.expect_list(rec, 4, "certificate")
        view, height, digest, votes = rec
        codec.expect_uint(view, "certificate.view")
        codec.expect_uint(height, "certificate.height")
        codec.expect_bytes(digest, "certificate.digest", HASH_LEN)
        if not isinstance(votes, list) or len(votes) > MAX_VALIDATORS:
            raise DecodeError("certificate.votes: expected an array of votes")
        return cls(view, height, digest, tuple(Vote.from_record(v) for v in votes))

    @classmethod
    def decode(cls, data: bytes) -> "CommitCertificate":
        return cls.from_record(codec.unpack(data))

    def problem(self, chain_id: str, validator_keys: Sequence[bytes]) -> str | None:
        """None if this is a valid certificate for the validator set, else why not."""
        need = quorum_size(len(validator_keys))
        seen: set[int] = set()
        message = vote_bytes(PHASE_COMMIT, chain_id, self.view, self.height, self.digest)
        for vote in self.votes:
            if vote.validator >= len(validator_keys):
                return f"vote from unknown validator index {vote.validator}"
            if vote.validator in seen:
                return f"two votes from validator {vote.validator}"
            seen.add(vote.validator)
            if not verify(validator_keys[vote.validator], message, vote.signature):
                return f"bad signature from validator {vote.validator}"
        if len(seen) < need:
            return f"{len(seen)} votes, a quorum is {need}"
        return None
