"""Epochs: which validator set, under which parameters, decides which seq.

Epoch e covers seqs (B_e, B_{e+1}]; epoch 0 starts at B_0 = 0 with the
genesis set.  The chain schedules the next boundary (ledger.consortium: the
first checkpoint B of the last epoch with B >= h + W, h the block whose
execution changed the set); the host hands it to the core as an EpochChange
with Executed / Synced.  The checkpoint at B_{e+1} belongs to epoch e.

So a replica that has executed block x knows set(s) for every s <= x + W:
that is the edge of what it may accept (`EpochSchedule.reach`).  And the
window is cut at the next boundary (nothing above B is proposed or accepted
while the stable checkpoint is below B), so no slot is decided by a mix of
sets and a window never spans two epochs.

`certificate_problem` / `checkpoint_proof_problem` are the pure checks block
sync and proofs use: a certificate for seq s is checked against set(s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from ledger.certificate import CommitCertificate

from .errors import LocalProtocolError
from .events import EpochChange
from .messages import CheckpointProof, checkpoint_bytes
from .validators import ValidatorSet

if TYPE_CHECKING:
    from ledger import consortium as ledger_consortium


@dataclass(frozen=True, slots=True)
class Epoch:
    """One epoch as the core runs it: its number, the seq it starts after,
    its validator set (whose primary rotation is offset by the number) and
    the consensus parameters the core reads."""
    number: int
    start: int
    validators: ValidatorSet
    checkpoint_interval: int
    window: int
    max_in_flight: int
    view_change_timeout_ms: int
    max_view_change_timeout_ms: int

    @classmethod
    def of(cls, change: EpochChange) -> "Epoch":
        return cls(change.epoch, change.boundary, ValidatorSet(change.validators, change.epoch),
                   change.checkpoint_interval, change.window, change.max_in_flight,
                   change.view_change_timeout_ms, change.max_view_change_timeout_ms)

    def is_checkpoint(self, seq: int) -> bool:
        """`seq` is on this epoch's checkpoint grid (start + k * K, k >= 1)."""
        return seq > self.start and (seq - self.start) % self.checkpoint_interval == 0

    def same_as(self, change: EpochChange) -> bool:
        return (self.start, self.validators.keys, self.checkpoint_interval, self.window,
                self.max_in_flight, self.view_change_timeout_ms,
                self.max_view_change_timeout_ms) == (
            change.boundary, change.validators, change.checkpoint_interval, change.window,
            change.max_in_flight, change.view_change_timeout_ms,
            change.max_view_change_timeout_ms)


class EpochSchedule:
    """The epochs a replica knows, in order, without gaps in their numbers:
    the one it runs, the ones before it that it still needs (none, once
    `forget_before` ran) and the ones scheduled after it."""
    __slots__ = ("_epochs",)

    def __init__(self, epochs: Iterable[Epoch]) -> None:
        self._epochs: list[Epoch] = []
        for epoch in epochs:
            self._append(epoch)
        if not self._epochs:
            raise LocalProtocolError("an epoch schedule needs at least one epoch")

    def _append(self, epoch: Epoch) -> None:
        if self._epochs:
            last = self._epochs[-1]
            if epoch.number != last.number + 1 or epoch.start <= last.start:
                raise LocalProtocolError(
                    f"epoch {epoch.number} at {epoch.start} cannot follow epoch "
                    f"{last.number} at {last.start}")
            if not last.is_checkpoint(epoch.start):
                raise LocalProtocolError(
                    f"epoch {epoch.number} starts at {epoch.start}, not a checkpoint of "
                    f"epoch {last.number}")
        self._epochs.append(epoch)

    def __iter__(self):
        return iter(self._epochs)

    def __len__(self) -> int:
        return len(self._epochs)

    @property
    def first(self) -> Epoch:
        return self._epochs[0]

    @property
    def last(self) -> Epoch:
        return self._epochs[-1]

    def get(self, number: int) -> Epoch | None:
        index = number - self._epochs[0].number
        return self._epochs[index] if 0 <= index < len(self._epochs) else None

    def epoch_of(self, seq: int) -> Epoch:
        """The epoch `seq` belongs to among the known ones (B_e < seq <= B_{e+1});
        final only for seq <= reach(last executed)."""
        for epoch in reversed(self._epochs):
            if epoch.start < seq:
                return epoch
        return self._epochs[0]

    def following(self, epoch: Epoch) -> Epoch | None:
        return self.get(epoch.number + 1)

    def learn(self, change: EpochChange) -> bool:
        """Add a scheduled epoch, or replace a pending one the chain changed
        (same number, same start).  True if the schedule changed."""
        held = self.get(change.epoch)
        if held is not None and held.same_as(change):
            return False
        if held is not None:
            if change.epoch != self.last.number or change.boundary != held.start:
                raise LocalProtocolError(
                    f"epoch {change.epoch} changed to start at {change.boundary} "
                    f"(was {held.start}), or it is not the last one")
            self._epochs[-1] = Epoch.of(change)
            return True
        if change.epoch < self._epochs[0].number:
            return False        # forgotten already: older than the epoch this replica runs
        self._append(Epoch.of(change))
        return True

    def changes(self) -> tuple[EpochChange, ...]:
        """The epochs after the first, as the EpochChanges that describe them
        (what a host passes as ReplicaConfig.epochs at a restart)."""
        return tuple(EpochChange(e.number, e.start, e.validators.keys, e.checkpoint_interval,
                                 e.window, e.max_in_flight, e.view_change_timeout_ms,
                                 e.max_view_change_timeout_ms) for e in self._epochs[1:])

    def forget_before(self, number: int) -> None:
        """Drop the epochs before `number` (the replica entered `number`)."""
        self._epochs = [e for e in self._epochs if e.number >= number] or self._epochs[-1:]

    def reach(self, executed: int) -> int:
        """The highest seq whose set a replica that executed block `executed`
        knows for sure.  A block h > executed schedules a boundary at
        h + W(h) or later, W(h) the window of h's epoch: for h in the epoch
        of executed + 1 that is beyond executed + W, for h in a later known
        epoch E beyond E.start + W_E.  Never decreases as blocks execute or
        epochs are learnt (a new or changed epoch starts >= h + W(h))."""
        reach = executed + self.epoch_of(executed + 1).window
        for epoch in reversed(self._epochs):
            if epoch.start <= executed:
                break
            reach = min(reach, epoch.start + epoch.window)
        return reach


def schedule_of(genesis: Epoch, changes: Sequence[EpochChange] = ()) -> EpochSchedule:
    """The schedule of epoch 0 (`genesis`) and the later epochs `changes`, in
    order.  `changes` may also start later than epoch 1 (a host that knows
    only the epoch in force and the ones after it): then epoch 0 is left out."""
    if changes and changes[0].epoch > 1:
        schedule, rest = EpochSchedule([Epoch.of(changes[0])]), changes[1:]
    else:
        schedule, rest = EpochSchedule([genesis]), changes
    for change in rest:
        schedule.learn(change)
    return schedule


def genesis_epoch(validators: Sequence[bytes], checkpoint_interval: int, window: int,
                  max_in_flight: int, view_change_timeout_ms: int,
                  max_view_change_timeout_ms: int) -> Epoch:
    return Epoch(0, 0, ValidatorSet(validators, 0), checkpoint_interval, window, max_in_flight,
                 view_change_timeout_ms, max_view_change_timeout_ms)


def _params(p: "ledger_consortium.ConsensusParams") -> tuple[int, int, int, int, int]:
    return (p.checkpoint_interval, p.window, p.max_in_flight, p.view_change_timeout_ms,
            p.max_view_change_timeout_ms)


def change_of(epoch: "ledger_consortium.Epoch") -> EpochChange:
    """The EpochChange a host feeds (with Executed) for a ledger epoch after 0."""
    return EpochChange(epoch.number, epoch.start, epoch.keys, *_params(epoch.params))


def from_chain_config(epochs: Sequence["ledger_consortium.Epoch"]) -> EpochSchedule:
    """The schedule of a committed ledger.consortium.ChainConfig.epochs (what a
    node's block sync and proofs check certificates with)."""
    first, *later = epochs
    schedule = EpochSchedule([Epoch(first.number, first.start,
                                    ValidatorSet(first.keys, first.number),
                                    *_params(first.params))])
    for epoch in later:
        schedule.learn(change_of(epoch))
    return schedule


def certificate_problem(schedule: EpochSchedule, chain_id: str,
                        certificate: CommitCertificate) -> str | None:
    """None if `certificate` is a valid commit certificate for its height
    under the set in force there (set(height)), else why not.  The caller
    must have executed every block below the height (so the schedule holds
    every epoch that could contain it)."""
    if certificate.height < 1:
        return "certificate for height 0"
    epoch = schedule.epoch_of(certificate.height)
    if epoch.start >= certificate.height:
        return f"no known epoch holds height {certificate.height}"
    return certificate.problem(chain_id, epoch.validators.keys)


def checkpoint_proof_problem(schedule: EpochSchedule, chain_id: str,
                             proof: CheckpointProof) -> str | None:
    """None if `proof` is a stable checkpoint proof valid under set(proof.seq)
    (the checkpoint at a boundary belongs to the epoch it ends), else why not."""
    if proof.seq == 0:
        return "checkpoint 0 carries votes" if proof.votes else None
    epoch = schedule.epoch_of(proof.seq)
    if not epoch.is_checkpoint(proof.seq):
        return f"no checkpoint at {proof.seq} in epoch {epoch.number}"
    validators = epoch.validators
    if len(proof.votes) < validators.quorum:
        return f"checkpoint proof has {len(proof.votes)} votes, a quorum is {validators.quorum}"
    message = checkpoint_bytes(chain_id, proof.seq, proof.state_digest)
    for vote in proof.votes:
        if not validators.verify(vote.validator, message, vote.signature):
            return f"bad checkpoint signature from {vote.validator}"
    return None
