"""The replica's durable safety record (cf. CometBFT's privval last-sign state).

It holds what a replica must remember across a crash so that it never signs
two different digests for one (epoch, view, seq, phase), never goes back to a
lower (epoch, view), and never forgets a prepared certificate it may have to report in a
view change (forgetting one would let a new primary re-propose a committed
sequence number as null):

  epoch             the epoch the replica runs (views are per epoch; a later epoch
                    starts at view 0, and all its seqs are above the checkpoint that
                    started it, so no vote of an older epoch can be contradicted)
  view, active      the highest view entered, and whether its NEW-VIEW was accepted
  checkpoint        the stable checkpoint proof (the low watermark)
  votes             (seq, phase) -> digest signed in `view`, seqs above the checkpoint
  own_checkpoint    (seq, state digest) of the last CHECKPOINT this replica sent: after a
                    restart it sends it again, or a checkpoint whose messages were lost
                    before the crash could never become stable (the window would stay full)
  prepared          seq -> the prepared certificate of the highest view, above the
                    checkpoint.  Its payload matters too: if every replica that held a
                    prepared payload crashed, no new primary could re-propose it and the
                    chain would stop for good.  Payloads are NOT in the record (a block
                    can be megabytes and the record is rewritten on every vote): the
                    replica hands the driver each new prepared payload once, keyed by
                    (seq, digest), in PersistSafety.payloads, and the keys it no longer
                    needs in PersistSafety.dropped; at restart the driver gives back
                    the payloads of `payload_keys(record)`.

Bounded: votes and prepared certificates exist only for the (at most W)
sequence numbers above the stable checkpoint, and votes only for one view;
so do the stored payloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from ledger import codec
from ledger.codec import DecodeError
from ledger.crypto import HASH_LEN

from .errors import SafetyRecordError
from .messages import PHASES, CheckpointProof, PreparedProof

_FORMAT = 2          # 2: the epoch is recorded (a format-1 record is epoch 0's)
_RECORD_LEN = {1: 7, 2: 8}

GENESIS_CHECKPOINT = CheckpointProof(0, bytes(HASH_LEN), ())

PayloadKey = tuple[int, bytes]      # (seq, digest) of a prepared payload


@dataclass(slots=True)
class SafetyState:
    view: int = 0
    active: bool = True          # view 0 needs no NEW-VIEW
    checkpoint: CheckpointProof = GENESIS_CHECKPOINT
    own_checkpoint: tuple[int, bytes] = (0, bytes(HASH_LEN))
    votes: dict[tuple[int, str], bytes] = field(default_factory=dict)
    prepared: dict[int, PreparedProof] = field(default_factory=dict)
    epoch: int = 0
    # Payload changes the driver has not been told about yet (not part of the record).
    new_payloads: dict[PayloadKey, bytes] = field(default_factory=dict, compare=False)
    dropped_payloads: set[PayloadKey] = field(default_factory=set, compare=False)

    # -- rules ---------------------------------------------------------------------

    def may_sign(self, view: int, seq: int, phase: str, digest: bytes) -> bool:
        if view != self.view or seq <= self.checkpoint.seq:
            return False
        signed = self.votes.get((seq, phase))
        return signed is None or signed == digest

    def record_vote(self, view: int, seq: int, phase: str, digest: bytes) -> bool:
        """Record that we sign `digest` at (view, seq, phase); False (and no
        change) if that would contradict what we signed before."""
        if not self.may_sign(view, seq, phase, digest):
            return False
        self.votes[(seq, phase)] = digest
        return True

    def enter_view(self, view: int, *, active: bool) -> None:
        assert view >= self.view, "a replica never goes back to a lower view"
        if view > self.view:
            self.view = view
            self.votes.clear()
        self.active = active

    def enter_epoch(self, epoch: int) -> None:
        """Start `epoch` at view 0.  The checkpoint that ends the epoch before
        is stable here already, so there are no votes or prepared
        certificates left to carry (they were all at or below it)."""
        assert epoch > self.epoch, "a replica never goes back to an earlier epoch"
        assert not self.votes and not self.prepared, "votes left from an earlier epoch"
        self.epoch, self.view, self.active = epoch, 0, True

    def record_prepared(self, proof: PreparedProof) -> None:
        if proof.seq <= self.checkpoint.seq:
            return
        held = self.prepared.get(proof.seq)
        if held is not None and held.view >= proof.view:
            return
        if held is not None and held.digest == proof.digest:
            if proof.payload is None:
                proof = replace(proof, payload=held.payload)
        else:
            if held is not None:
                self._drop_payload(held)
            if proof.payload is not None:
                key = (proof.seq, proof.digest)
                self.new_payloads[key] = proof.payload
                self.dropped_payloads.discard(key)
        self.prepared[proof.seq] = proof

    def advance_checkpoint(self, proof: CheckpointProof) -> None:
        """A higher stable checkpoint: forget everything at or below it."""
        if proof.seq <= self.checkpoint.seq:
            return
        self.checkpoint = proof
        self.votes = {key: d for key, d in self.votes.items() if key[0] > proof.seq}
        for seq in [seq for seq in self.prepared if seq <= proof.seq]:
            self._drop_payload(self.prepared.pop(seq))

    def _drop_payload(self, proof: PreparedProof) -> None:
        key = (proof.seq, proof.digest)
        if self.new_payloads.pop(key, None) is None:   # never handed out: nothing stored
            self.dropped_payloads.add(key)

    def take_payload_changes(self) -> tuple[tuple[tuple[int, bytes, bytes], ...], tuple[PayloadKey, ...]]:
        """(payloads to store, keys to delete) since the last call."""
        stored = tuple((seq, digest, payload) for (seq, digest), payload in self.new_payloads.items())
        dropped = tuple(sorted(self.dropped_payloads))
        self.new_payloads.clear()
        self.dropped_payloads.clear()
        return stored, dropped

    # -- encoding ------------------------------------------------------------------

    def encode(self) -> bytes:
        return codec.pack([
            _FORMAT, self.view, self.active, self.checkpoint.to_record(),
            list(self.own_checkpoint),
            [[seq, PHASES.index(phase), digest] for (seq, phase), digest in self.votes.items()],
            [p.signed_record() + [None] for p in self.prepared.values()],
            self.epoch,
        ])

    @classmethod
    def decode(cls, data: bytes, payloads: Mapping[PayloadKey, bytes] | None = None) -> "SafetyState":
        """The state a record describes, with prepared payloads taken from
        `payloads` (what the driver stored; a missing one stays None)."""
        try:
            rec = _fields(data)
            fmt, view, active, checkpoint, own, votes, prepared = rec[:7]
            epoch = rec[7] if fmt >= 2 else 0
            codec.expect_uint(epoch, "safety.epoch")
            codec.expect_uint(view, "safety.view")
            if type(active) is not bool:
                raise DecodeError("safety.active: expected a bool")
            own_seq, own_digest = codec.expect_list(own, 2, "safety.own_checkpoint")
            own_checkpoint = (codec.expect_uint(own_seq, "safety.own_checkpoint.seq"),
                              codec.expect_bytes(own_digest, "safety.own_checkpoint.digest",
                                                 HASH_LEN))
            state = cls(view, active, CheckpointProof.from_record(checkpoint), own_checkpoint,
                        _decode_votes(votes), epoch=epoch)
            if type(prepared) is not list:
                raise DecodeError("safety: prepared must be an array")
            for item in prepared:
                proof = PreparedProof.from_record(item)
                payload = (payloads or {}).get((proof.seq, proof.digest))
                state.prepared[proof.seq] = replace(proof, payload=payload)
            return state
        except (DecodeError, ValueError) as exc:
            raise SafetyRecordError(f"unreadable safety record: {exc}") from None


def _fields(record: bytes) -> list:
    """The fields of a stored record of a known format (DecodeError if not)."""
    rec = codec.unpack(record)
    fmt = rec[0] if type(rec) is list and rec else None
    if fmt not in _RECORD_LEN:
        raise DecodeError(f"unknown safety record format {fmt!r}")
    return codec.expect_list(rec, _RECORD_LEN[fmt], "safety record")


def _decode_votes(votes: Any) -> dict[tuple[int, str], bytes]:
    if type(votes) is not list:
        raise DecodeError("safety: votes must be an array")
    decoded = {}
    for vote in votes:
        seq, phase, digest = codec.expect_list(vote, 3, "safety.vote")
        codec.expect_uint(seq, "safety.vote.seq")
        codec.expect_uint(phase, "safety.vote.phase", len(PHASES) - 1)
        codec.expect_bytes(digest, "safety.vote.digest", HASH_LEN)
        decoded[(seq, PHASES[phase])] = digest
    return decoded


def recorded_votes(record: bytes) -> tuple[int, int, dict[tuple[int, str], bytes]]:
    """(view, stable checkpoint seq, votes) of a stored record: the votes a
    replica restarted from it can never contradict.  Decodes only those
    fields (for checkers that read every record written)."""
    try:
        rec = _fields(record)
        checkpoint = codec.expect_list(rec[3], 3, "checkpoint proof")
        return (codec.expect_uint(rec[1], "safety.view"),
                codec.expect_uint(checkpoint[0], "checkpoint proof.seq"), _decode_votes(rec[5]))
    except DecodeError as exc:
        raise SafetyRecordError(f"unreadable safety record: {exc}") from None


def recorded_epoch(record: bytes) -> int:
    """The epoch of a stored record (0 for a record written before epochs)."""
    try:
        rec = _fields(record)
        return codec.expect_uint(rec[7], "safety.epoch") if rec[0] >= 2 else 0
    except DecodeError as exc:
        raise SafetyRecordError(f"unreadable safety record: {exc}") from None


def payload_keys(record: bytes | None) -> list[PayloadKey]:
    """The (seq, digest) of every prepared payload a stored record refers to:
    what a driver must load and pass back to Replica(..., prepared_payloads=)."""
    if not record:
        return []
    return [(p.seq, p.digest) for p in SafetyState.decode(record).prepared.values()]


def apply_payload_changes(stored: dict[PayloadKey, bytes],
                          payloads: tuple[tuple[int, bytes, bytes], ...],
                          dropped: tuple[PayloadKey, ...]) -> None:
    """Apply a PersistSafety's payload changes to an in-memory payload store
    (the simulator's and the tests' stand-in for durable storage)."""
    for seq, digest, payload in payloads:
        stored[(seq, digest)] = payload
    for key in dropped:
        stored.pop(key, None)
