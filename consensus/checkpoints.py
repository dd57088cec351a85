"""The checkpoint log (Castro & Liskov, section 4.3): CHECKPOINT messages
collected until a quorum agrees on one, which then becomes the stable
checkpoint and makes everything at or below it garbage.

Two kinds of entries, both bounded:
  * in the window (low, high]: seq -> replica -> message, where a quorum of
    matching ones makes a stable checkpoint (at most W / interval seqs);
  * above it: each replica's latest, one per replica.  A replica left behind
    cannot hold everything a peer ahead sends, but f+1 matching checkpoints
    beyond its window tell it that a correct replica is there: sync to it.

Messages reach the log verified; the Replica decides what to do with what
the log tells it (stabilise, sync).
"""

from __future__ import annotations

from ledger.certificate import Vote

from .messages import Checkpoint, CheckpointProof
from .validators import ValidatorSet


class CheckpointLog:
    __slots__ = ("_validators", "_in_window", "_beyond", "own")

    def __init__(self, validators: ValidatorSet) -> None:
        self._validators = validators
        self._in_window: dict[int, dict[int, Checkpoint]] = {}   # seq -> replica -> message
        self._beyond: dict[int, Checkpoint] = {}                 # replica -> latest above high
        # The CHECKPOINT this replica sent last: re-sent on every retransmit
        # tick until it is stable (its copies may all have been lost).
        self.own: Checkpoint | None = None

    def __len__(self) -> int:
        """How many checkpoint seqs the window holds (for Replica.log_size)."""
        return len(self._in_window)

    def held(self, replica: int, seq: int, high: int) -> Checkpoint | None:
        """What the log holds from `replica` that a new CHECKPOINT at `seq`
        would replace: its message at `seq` if `seq` is in the window, else its
        latest one above the window (possibly at another seq)."""
        if seq <= high:
            return self._in_window.get(seq, {}).get(replica)
        return self._beyond.get(replica)

    def add(self, m: Checkpoint, high: int) -> tuple[CheckpointProof | None, tuple[int, ...]]:
        """Hold a verified CHECKPOINT.  Returns the stable checkpoint proof if
        a quorum now matches it (same seq and state digest; the quorum's votes
        in validator order), and the replicas whose checkpoints match it."""
        if m.seq > high:
            self._beyond[m.replica] = m
            matching = [c for c in self._beyond.values()
                        if c.seq == m.seq and c.state_digest == m.state_digest]
        else:
            by_replica = self._in_window.setdefault(m.seq, {})
            by_replica[m.replica] = m
            matching = [c for c in by_replica.values() if c.state_digest == m.state_digest]
        replicas = tuple(c.replica for c in matching)
        quorum = self._validators.quorum
        if len(matching) < quorum:
            return None, replicas
        votes = sorted((Vote(c.replica, c.signature) for c in matching), key=lambda v: v.validator)
        return CheckpointProof(m.seq, m.state_digest, tuple(votes[:quorum])), replicas

    def collect_garbage(self, stable: int, high: int) -> None:
        """A checkpoint at `stable` became stable and the window is now
        (stable, high]: drop what is at or below it, and move the checkpoints
        held above the old window that the new one reaches into it."""
        in_window = {s: c for s, c in self._in_window.items() if s > stable}
        for replica, c in list(self._beyond.items()):
            if c.seq <= high:
                del self._beyond[replica]
                if c.seq > stable:
                    in_window.setdefault(c.seq, {})[replica] = c
        self._in_window = in_window

    def sync_target(self, above: int) -> tuple[int, bytes, tuple[int, ...]] | None:
        """The highest checkpoint in the window above `above` that f+1
        replicas agree on (one of them is correct): (seq, state digest, those
        replicas), or None."""
        f = self._validators.f
        for seq, by_replica in sorted(self._in_window.items(), reverse=True):
            if seq <= above:
                break
            agreeing: dict[bytes, list[int]] = {}
            for c in by_replica.values():
                agreeing.setdefault(c.state_digest, []).append(c.replica)
            for digest, replicas in agreeing.items():
                if len(replicas) > f:
                    return seq, digest, tuple(replicas)
        return None

    def problem(self, low: int, high: int, interval: int) -> str | None:
        """Why the log breaks its bounds for the window (low, high], or None."""
        for seq, by_replica in self._in_window.items():
            if not low < seq <= high or seq % interval:
                return f"checkpoint log holds seq {seq} outside the window ({low}, {high}]"
            if any(c.seq != seq or c.replica != r for r, c in by_replica.items()):
                return f"checkpoint log misfiles a message at seq {seq}"
        for replica, c in self._beyond.items():
            if c.seq <= high or c.replica != replica:
                return f"checkpoint log holds {c.seq} from {c.replica} as beyond {high}"
        if len(self._beyond) > self._validators.n:
            return "checkpoint log holds more than one far checkpoint per replica"
        return None
