"""PBFT wire messages: frozen slotted dataclasses, msgpack arrays with a type tag.

Every message carries the index of the validator that signed it (`replica`)
and an ed25519 signature over `signed_bytes(chain_id)`: a domain prefix per
message type plus the chain id, so a signature is never valid for another
type or another chain.  PREPARE and COMMIT sign exactly
`ledger.certificate.vote_bytes`, so 2f+1 COMMITs are a CommitCertificate.

A PRE-PREPARE signs the digest, not the payload: the payload is bound to the
digest by `check_payload`, which lets a prepared certificate travel without
its (possibly large) payload.

`decode_message` checks every field and raises RemoteProtocolError on
anything malformed; signatures are checked by the replica, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, ClassVar, TypeVar

from ledger import codec
from ledger.certificate import (MAX_VALIDATORS, PHASE_COMMIT, PHASE_PREPARE, Vote,
                                checkpoint_bytes, vote_bytes)
from ledger.codec import DecodeError
from ledger.crypto import HASH_LEN, SIG_LEN

from .config import MAX_WINDOW
from .errors import RemoteProtocolError

if TYPE_CHECKING:
    from .events import Signer

PRE_PREPARE_DOMAIN = b"ynchain/pbft-pre-prepare/v1\x00"
VIEW_CHANGE_DOMAIN = b"ynchain/pbft-view-change/v2\x00"   # v2: carries the epoch
NEW_VIEW_DOMAIN = b"ynchain/pbft-new-view/v2\x00"

# The phases a replica signs at most one digest for, per (view, seq).  PREPARE
# and COMMIT are the certificate's own phase names (their signatures make
# certificates); a PRE-PREPARE is signed with its own domain, not vote_bytes.
PHASE_PRE_PREPARE = "pre-prepare"
PHASES = (PHASE_PRE_PREPARE, PHASE_PREPARE, PHASE_COMMIT)

MAX_PAYLOAD = 8 * 1024 * 1024
# A consensus message arrives in one transport frame, so it can never be larger
# than the frame cap; the bound is that one number (ledger.codec.MAX_FRAME).
MAX_MESSAGE = codec.MAX_FRAME

_REPLICA_MAX = MAX_VALIDATORS - 1


def _replica(value: Any, what: str) -> int:
    return codec.expect_uint(value, what, _REPLICA_MAX)


def _digest(value: Any, what: str) -> bytes:
    return codec.expect_bytes(value, what, HASH_LEN)


def _signature(value: Any, what: str) -> bytes:
    return codec.expect_bytes(value, what, SIG_LEN)


def _array(value: Any, what: str, max_len: int) -> list:
    if type(value) is not list:
        raise DecodeError(f"{what}: expected an array, got {type(value).__name__}")
    if len(value) > max_len:
        raise DecodeError(f"{what}: more than {max_len} entries")
    return value


def _votes(value: Any, what: str) -> tuple[Vote, ...]:
    votes = tuple(Vote.from_record(v) for v in _array(value, what, MAX_VALIDATORS))
    if len({v.validator for v in votes}) != len(votes):
        raise DecodeError(f"{what}: two votes from one validator")
    return votes


class _Wire:
    """Top-level messages: `encode()` is the type tag followed by the fields."""
    __slots__ = ()
    TAG: ClassVar[int]

    def encode(self) -> bytes:
        return codec.pack([self.TAG, *self.to_record()])  # type: ignore[attr-defined]


_Signed = TypeVar("_Signed")


def sign(message: _Signed, signer: "Signer", chain_id: str) -> _Signed:
    """`message` with its signature filled in by `signer` (a KeyPair)."""
    return replace(message, signature=signer.sign(message.signed_bytes(chain_id)))


# -- normal case ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PrePrepare(_Wire):
    TAG: ClassVar[int] = 1
    PHASE: ClassVar[str] = PHASE_PRE_PREPARE
    view: int
    seq: int
    digest: bytes
    payload: bytes
    replica: int
    signature: bytes = b""

    def signed_bytes(self, chain_id: str) -> bytes:
        return pre_prepare_bytes(chain_id, self.view, self.seq, self.digest)

    def to_record(self) -> list:
        return [self.view, self.seq, self.digest, self.payload, self.replica, self.signature]

    @classmethod
    def from_record(cls, rec: Any) -> "PrePrepare":
        codec.expect_list(rec, 6, "pre-prepare")
        view, seq, digest, payload, replica, signature = rec
        return cls(codec.expect_uint(view, "pre-prepare.view"),
                   codec.expect_uint(seq, "pre-prepare.seq"),
                   _digest(digest, "pre-prepare.digest"),
                   codec.expect_bytes(payload, "pre-prepare.payload", max_len=MAX_PAYLOAD),
                   _replica(replica, "pre-prepare.replica"),
                   _signature(signature, "pre-prepare.signature"))


def pre_prepare_bytes(chain_id: str, view: int, seq: int, digest: bytes) -> bytes:
    return PRE_PREPARE_DOMAIN + codec.pack([chain_id, view, seq, digest])


@dataclass(frozen=True, slots=True)
class _VoteMessage(_Wire):
    PHASE: ClassVar[str] = ""
    view: int
    seq: int
    digest: bytes
    replica: int
    signature: bytes = b""

    def signed_bytes(self, chain_id: str) -> bytes:
        return vote_bytes(self.PHASE, chain_id, self.view, self.seq, self.digest)

    def to_record(self) -> list:
        return [self.view, self.seq, self.digest, self.replica, self.signature]

    @classmethod
    def from_record(cls, rec: Any) -> Any:
        what = cls.PHASE
        codec.expect_list(rec, 5, what)
        view, seq, digest, replica, signature = rec
        return cls(codec.expect_uint(view, f"{what}.view"),
                   codec.expect_uint(seq, f"{what}.seq"),
                   _digest(digest, f"{what}.digest"),
                   _replica(replica, f"{what}.replica"),
                   _signature(signature, f"{what}.signature"))


@dataclass(frozen=True, slots=True)
class Prepare(_VoteMessage):
    TAG: ClassVar[int] = 2
    PHASE: ClassVar[str] = PHASE_PREPARE


@dataclass(frozen=True, slots=True)
class Commit(_VoteMessage):
    TAG: ClassVar[int] = 3
    PHASE: ClassVar[str] = PHASE_COMMIT


@dataclass(frozen=True, slots=True)
class Checkpoint(_Wire):
    TAG: ClassVar[int] = 4
    seq: int
    state_digest: bytes
    replica: int
    signature: bytes = b""

    def signed_bytes(self, chain_id: str) -> bytes:
        return checkpoint_bytes(chain_id, self.seq, self.state_digest)

    def to_record(self) -> list:
        return [self.seq, self.state_digest, self.replica, self.signature]

    @classmethod
    def from_record(cls, rec: Any) -> "Checkpoint":
        codec.expect_list(rec, 4, "checkpoint")
        seq, state_digest, replica, signature = rec
        return cls(codec.expect_uint(seq, "checkpoint.seq"),
                   _digest(state_digest, "checkpoint.state_digest"),
                   _replica(replica, "checkpoint.replica"),
                   _signature(signature, "checkpoint.signature"))


# -- proofs carried by a view change -----------------------------------------------

@dataclass(frozen=True, slots=True)
class CheckpointProof:
    """2f+1 CHECKPOINT signatures for (seq, state_digest); seq 0 (the chain's
    start) needs none."""
    seq: int
    state_digest: bytes
    votes: tuple[Vote, ...]

    def to_record(self) -> list:
        return [self.seq, self.state_digest, [v.to_record() for v in self.votes]]

    @classmethod
    def from_record(cls, rec: Any) -> "CheckpointProof":
        codec.expect_list(rec, 3, "checkpoint proof")
        seq, state_digest, votes = rec
        return cls(codec.expect_uint(seq, "checkpoint proof.seq"),
                   _digest(state_digest, "checkpoint proof.state_digest"),
                   _votes(votes, "checkpoint proof.votes"))


@dataclass(frozen=True, slots=True)
class PreparedProof:
    """A prepared certificate: the primary's PRE-PREPARE signature and 2f
    matching PREPARE signatures for (view, seq, digest).  `payload` rides
    along when the sender still has it (None otherwise); it is not covered by
    the signatures: check_payload binds it to the digest."""
    view: int
    seq: int
    digest: bytes
    primary_signature: bytes
    prepares: tuple[Vote, ...]
    payload: bytes | None = None

    def signed_record(self) -> list:
        return [self.view, self.seq, self.digest, self.primary_signature,
                [v.to_record() for v in self.prepares]]

    def to_record(self) -> list:
        return self.signed_record() + [self.payload]

    @classmethod
    def from_record(cls, rec: Any) -> "PreparedProof":
        codec.expect_list(rec, 6, "prepared proof")
        view, seq, digest, primary_signature, prepares, payload = rec
        if payload is not None:
            codec.expect_bytes(payload, "prepared proof.payload", max_len=MAX_PAYLOAD)
        return cls(codec.expect_uint(view, "prepared proof.view"),
                   codec.expect_uint(seq, "prepared proof.seq"),
                   _digest(digest, "prepared proof.digest"),
                   _signature(primary_signature, "prepared proof.primary_signature"),
                   _votes(prepares, "prepared proof.prepares"),
                   payload)


# -- view change ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ViewChange(_Wire):
    """A replica's request to move to view `new_view` of `epoch` (views are
    per epoch); its indices are those of the epoch's set."""
    TAG: ClassVar[int] = 5
    new_view: int
    checkpoint: CheckpointProof
    prepared: tuple[PreparedProof, ...]
    replica: int
    signature: bytes = b""
    epoch: int = 0

    def signed_bytes(self, chain_id: str) -> bytes:
        return VIEW_CHANGE_DOMAIN + codec.pack(
            [chain_id, self.epoch, self.new_view, self.checkpoint.to_record(),
             [p.signed_record() for p in self.prepared], self.replica])

    def without_payloads(self) -> "ViewChange":
        """The same signed message, smaller: how it travels inside NEW-VIEW."""
        if all(p.payload is None for p in self.prepared):
            return self
        return replace(self, prepared=tuple(replace(p, payload=None) for p in self.prepared))

    def to_record(self) -> list:
        return [self.new_view, self.checkpoint.to_record(),
                [p.to_record() for p in self.prepared], self.replica, self.signature, self.epoch]

    @classmethod
    def from_record(cls, rec: Any) -> "ViewChange":
        codec.expect_list(rec, 6, "view-change")
        new_view, checkpoint, prepared, replica, signature, epoch = rec
        return cls(codec.expect_uint(new_view, "view-change.new_view"),
                   CheckpointProof.from_record(checkpoint),
                   tuple(PreparedProof.from_record(p)
                         for p in _array(prepared, "view-change.prepared", MAX_WINDOW)),
                   _replica(replica, "view-change.replica"),
                   _signature(signature, "view-change.signature"),
                   codec.expect_uint(epoch, "view-change.epoch"))


@dataclass(frozen=True, slots=True)
class NewView(_Wire):
    """The new primary's proof that it may lead `view` of `epoch`: 2f+1
    VIEW-CHANGEs of that epoch and the PRE-PREPAREs every replica recomputes
    from them.  Self-certifying, so any node may relay it to one left behind
    in an older view."""
    TAG: ClassVar[int] = 6
    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    replica: int
    signature: bytes = b""
    epoch: int = 0

    def signed_bytes(self, chain_id: str) -> bytes:
        return NEW_VIEW_DOMAIN + codec.pack(
            [chain_id, self.epoch, self.view, [vc.to_record() for vc in self.view_changes],
             [pp.to_record() for pp in self.pre_prepares], self.replica])

    def to_record(self) -> list:
        return [self.view, [vc.to_record() for vc in self.view_changes],
                [pp.to_record() for pp in self.pre_prepares], self.replica, self.signature,
                self.epoch]

    @classmethod
    def from_record(cls, rec: Any) -> "NewView":
        codec.expect_list(rec, 6, "new-view")
        view, view_changes, pre_prepares, replica, signature, epoch = rec
        return cls(codec.expect_uint(view, "new-view.view"),
                   tuple(ViewChange.from_record(vc)
                         for vc in _array(view_changes, "new-view.view_changes", MAX_VALIDATORS)),
                   tuple(PrePrepare.from_record(pp)
                         for pp in _array(pre_prepares, "new-view.pre_prepares", MAX_WINDOW)),
                   _replica(replica, "new-view.replica"),
                   _signature(signature, "new-view.signature"),
                   codec.expect_uint(epoch, "new-view.epoch"))


Message = PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView
SignedVote = tuple[int, int, str, bytes]       # (view, seq, phase, digest)


def signed_votes(message: Message, validator: int,
                 primary: Callable[[int], int]) -> list[SignedVote]:
    """Every vote `validator` signed that `message` carries: the message
    itself (PRE-PREPARE, PREPARE, COMMIT), the PRE-PREPAREs of its NEW-VIEW,
    and its signatures inside the prepared certificates of VIEW-CHANGEs
    (`primary(view)` names who signed a certificate's PRE-PREPARE).  What a
    checker collects to prove that no correct replica ever signed two
    digests for one (view, seq, phase) (a seq is in one epoch, so that names
    one (epoch, view, seq, phase)).  `validator` and `primary` are indices of
    the set of the message's epoch (`epoch_of_message`)."""
    kind = type(message)
    if kind is PrePrepare or kind is Prepare or kind is Commit:
        return ([(message.view, message.seq, message.PHASE, message.digest)]
                if message.replica == validator else [])
    if kind is NewView:
        votes = [vote for vc in message.view_changes
                 for vote in signed_votes(vc, validator, primary)]
        if message.replica == validator:
            votes += [(pp.view, pp.seq, PHASE_PRE_PREPARE, pp.digest)
                      for pp in message.pre_prepares]
        return votes
    if kind is ViewChange:
        votes = []
        for proof in message.prepared:
            if primary(proof.view) == validator:
                votes.append((proof.view, proof.seq, PHASE_PRE_PREPARE, proof.digest))
            if any(v.validator == validator for v in proof.prepares):
                votes.append((proof.view, proof.seq, PHASE_PREPARE, proof.digest))
        return votes
    return []
def epoch_of_message(message: Message, epoch_of_seq: Callable[[int], int]) -> int:
    """The epoch a message belongs to: named by a VIEW-CHANGE or NEW-VIEW,
    the epoch of its seq for the others."""
    kind = type(message)
    if kind is ViewChange or kind is NewView:
        return message.epoch
    return epoch_of_seq(message.seq)


MESSAGE_TYPES: tuple[type, ...] = (PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView)
_BY_TAG = {cls.TAG: cls for cls in MESSAGE_TYPES}


def decode_message(data: bytes) -> Message:
    """Decode and validate one message; anything malformed is a RemoteProtocolError."""
    try:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError(f"expected bytes, got {type(data).__name__}")
        if len(data) > MAX_MESSAGE:
            raise DecodeError(f"message larger than {MAX_MESSAGE} bytes")
        rec = codec.unpack(data)
        if type(rec) is not list or not rec:
            raise DecodeError("message: expected a non-empty array")
        cls = _BY_TAG.get(rec[0]) if type(rec[0]) is int else None
        if cls is None:
            raise DecodeError(f"message: unknown type tag {rec[0]!r}")
        return cls.from_record(rec[1:])
    except DecodeError as exc:
        raise RemoteProtocolError(str(exc)) from None


