"""Signature and proof checks, and the NEW-VIEW computation every replica repeats.

All methods answer None for "valid" or a short reason for "invalid", which
the replica turns into a ReportFault; none of them raises on peer input.
A Verifier checks the messages of one epoch: keys, quorums and primaries come
from that epoch's ValidatorSet; a checkpoint proof is checked against the set
of its seq (the one at the epoch's start against the epoch before).
"""

from __future__ import annotations

from typing import Callable, Iterable

from ledger.block import NULL_DIGEST
from ledger.certificate import PHASE_PREPARE, vote_bytes

from .epochs import Epoch, EpochSchedule, checkpoint_proof_problem
from .messages import CheckpointProof, Message, NewView, PreparedProof, ViewChange, pre_prepare_bytes


def reproposals(view_changes: Iterable[ViewChange]) -> tuple[CheckpointProof, list[tuple[int, bytes]]]:
    """What a NEW-VIEW must re-propose (Castro & Liskov, the set O): start
    after the highest stable checkpoint among the VIEW-CHANGEs; for each seq up
    to the highest prepared one take the digest prepared in the highest view
    (the first one seen on a tie, so the result depends only on message order)
    and the null digest where nothing was prepared."""
    view_changes = list(view_changes)
    checkpoint = max((vc.checkpoint for vc in view_changes), key=lambda c: c.seq)
    best: dict[int, PreparedProof] = {}
    for vc in view_changes:
        for proof in vc.prepared:
            if proof.seq > checkpoint.seq:
                held = best.get(proof.seq)
                if held is None or proof.view > held.view:
                    best[proof.seq] = proof
    last = max(best, default=checkpoint.seq)
    return checkpoint, [(seq, best[seq].digest if seq in best else NULL_DIGEST)
                        for seq in range(checkpoint.seq + 1, last + 1)]


class Verifier:
    __slots__ = ("chain_id", "epoch", "validators", "_schedule", "_check_payload",
                 "_payload_digest")

    def __init__(self, chain_id: str, schedule: EpochSchedule, epoch: Epoch,
                 check_payload: Callable[[int, bytes], bytes | None],
                 payload_digest: Callable[[int, bytes], bytes | None] | None = None) -> None:
        self.chain_id = chain_id
        self.epoch = epoch
        self.validators = epoch.validators
        self._schedule = schedule
        self._check_payload = check_payload
        self._payload_digest = payload_digest or check_payload

    def signed(self, message: Message) -> bool:
        """The message's signature is valid for the replica it names."""
        return self.validators.verify(message.replica, message.signed_bytes(self.chain_id),
                                      message.signature)

    def payload_matches(self, seq: int, payload: bytes, digest: bytes, *, prepared: bool = False) -> bool:
        """A fresh proposal: acceptable and of this digest.  `prepared`: carried by
        a prepared certificate, so only its binding to the digest is checked."""
        if payload == b"":
            return digest == NULL_DIGEST
        check = self._payload_digest if prepared else self._check_payload
        return digest != NULL_DIGEST and check(seq, payload) == digest

    def end(self) -> int | None:
        """The last seq of the epoch (the next one's start), if scheduled."""
        following = self._schedule.following(self.epoch)
        return None if following is None else following.start

    def checkpoint_problem(self, proof: CheckpointProof) -> str | None:
        """A stable checkpoint proof a message of this epoch may carry: from
        the epoch's start (proved by the epoch before) to its end."""
        end = self.end()
        if proof.seq < self.epoch.start or (end is not None and proof.seq > end):
            return f"checkpoint at {proof.seq} outside epoch {self.epoch.number}"
        return checkpoint_proof_problem(self._schedule, self.chain_id, proof)

    def prepared_problem(self, proof: PreparedProof) -> str | None:
        validators = self.validators
        primary = validators.primary(proof.view)
        if not validators.verify(primary,
                                 pre_prepare_bytes(self.chain_id, proof.view, proof.seq,
                                                   proof.digest),
                                 proof.primary_signature):
            return f"bad pre-prepare signature in prepared proof for {proof.seq}"
        if len(proof.prepares) < validators.quorum - 1:
            return f"prepared proof for {proof.seq} has too few prepares"
        message = vote_bytes(PHASE_PREPARE, self.chain_id, proof.view, proof.seq, proof.digest)
        for vote in proof.prepares:
            if vote.validator not in validators or vote.validator == primary:
                return f"prepare from validator {vote.validator} cannot count"
            if not validators.verify(vote.validator, message, vote.signature):
                return f"bad prepare signature from {vote.validator}"
        if proof.payload is not None and not self.payload_matches(proof.seq, proof.payload,
                                                                  proof.digest, prepared=True):
            return f"payload of prepared proof for {proof.seq} does not match its digest"
        return None

    def view_change_problem(self, vc: ViewChange) -> str | None:
        if vc.epoch != self.epoch.number:
            return f"view-change of epoch {vc.epoch} checked in epoch {self.epoch.number}"
        if vc.new_view == 0:
            return "view-change to view 0"
        if not self.signed(vc):
            return "bad view-change signature"
        problem = self.checkpoint_problem(vc.checkpoint)
        if problem:
            return problem
        low, previous = vc.checkpoint.seq, vc.checkpoint.seq
        high = low + self.epoch.window
        end = self.end()
        if end is not None:
            high = min(high, end)       # a window never spans two epochs
        for proof in vc.prepared:
            if proof.seq <= previous or proof.seq > high:
                return f"prepared proof for {proof.seq} out of order or outside the watermarks"
            if proof.view >= vc.new_view:
                return f"prepared proof from view {proof.view} in a view-change to {vc.new_view}"
            previous = proof.seq
            problem = self.prepared_problem(proof)
            if problem:
                return problem
        return None

    def new_view_problem(self, nv: NewView, known: Callable[[ViewChange], bool]) -> str | None:
        """`known(vc)` says a VIEW-CHANGE was verified already (skip its signatures)."""
        if nv.epoch != self.epoch.number:
            return f"new-view of epoch {nv.epoch} checked in epoch {self.epoch.number}"
        if nv.view == 0 or nv.replica != self.validators.primary(nv.view):
            return "new-view not from the primary of its view"
        if not self.signed(nv):
            return "bad new-view signature"
        senders = {vc.replica for vc in nv.view_changes}
        if len(senders) != len(nv.view_changes) or len(senders) < self.validators.quorum:
            return "new-view needs view-changes from a quorum of distinct replicas"
        for vc in nv.view_changes:
            if vc.new_view != nv.view or vc.epoch != nv.epoch:
                return f"new-view carries a view-change to ({vc.epoch}, {vc.new_view})"
            if not known(vc):
                problem = self.view_change_problem(vc)
                if problem:
                    return f"new-view carries an invalid view-change: {problem}"
        _, expected = reproposals(nv.view_changes)
        if [(pp.seq, pp.digest) for pp in nv.pre_prepares] != expected:
            return "new-view pre-prepares differ from the ones its view-changes imply"
        for pp in nv.pre_prepares:
            if pp.view != nv.view or pp.replica != nv.replica or not self.signed(pp):
                return f"bad pre-prepare for {pp.seq} in new-view"
            if not self.payload_matches(pp.seq, pp.payload, pp.digest, prepared=True):
                return f"payload for {pp.seq} in new-view does not match its digest"
        return None
