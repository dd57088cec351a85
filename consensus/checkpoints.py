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

from typing import Iterable

from ledger.certificate import Vote

from .messages import Checkpoint, CheckpointProof
from .validators import ValidatorSet

Matching = tuple[bytes, ...]        # the node keys of the replicas that agree


class CheckpointLog:
    """Entries are stored verified.  In the window they are named by index
    (the window lies in the replica's epoch); above it by node key, since
    they may belong to a later epoch whose indices name other nodes.  A
    checkpoint of an epoch the replica cannot know yet (above its reach)
    cannot be verified at all: it is only a hint, the latest per sender key,
    and f+1 agreeing hints from the members of one set the replica knows (its
    own epoch's or a later one's) are worth a sync (the blocks fetched are checked against their certificates, so a
    wrong hint costs a fetch, never safety).  Once the replica has executed
    far enough to know its epoch, a hint is checked like any CHECKPOINT."""
    __slots__ = ("_in_window", "_beyond", "_hints", "own")

    def __init__(self) -> None:
        self._in_window: dict[int, dict[int, Checkpoint]] = {}   # seq -> replica -> message
        self._beyond: dict[bytes, Checkpoint] = {}               # key -> latest above high
        self._hints: dict[bytes, Checkpoint] = {}                # key -> latest, unverified
        # The CHECKPOINT this replica sent last: re-sent on every retransmit
        # tick until it is stable (its copies may all have been lost).
        self.own: Checkpoint | None = None

    def __len__(self) -> int:
        """How many checkpoint seqs the window holds (for Replica.log_size)."""
        return len(self._in_window)

    def held(self, key: bytes, replica: int, seq: int, high: int) -> Checkpoint | None:
        """What the log holds from the node `key` (index `replica` in the set
        of `seq`) that a new CHECKPOINT at `seq` would replace: its message at
        `seq` if `seq` is in the window, else its latest one above the window."""
        if seq <= high:
            return self._in_window.get(seq, {}).get(replica)
        return self._beyond.get(key)

    def add(self, m: Checkpoint, key: bytes, high: int,
            validators: ValidatorSet) -> tuple[CheckpointProof | None, Matching]:
        """Hold a verified CHECKPOINT from node `key`; `validators` is the set
        of m.seq.  Returns the stable checkpoint proof if a quorum now matches
        it (same seq and state digest; the quorum's votes in index order), and
        the keys of the replicas whose checkpoints match it."""
        if m.seq > high:
            self._beyond[key] = m
            self._hints.pop(key, None)
            matching = [c for c in self._beyond.values()
                        if c.seq == m.seq and c.state_digest == m.state_digest]
        else:
            by_replica = self._in_window.setdefault(m.seq, {})
            by_replica[m.replica] = m
            matching = [c for c in by_replica.values() if c.state_digest == m.state_digest]
        keys = tuple(validators.keys[c.replica] for c in matching)
        quorum = validators.quorum
        if len(matching) < quorum:
            return None, keys
        votes = sorted((Vote(c.replica, c.signature) for c in matching), key=lambda v: v.validator)
        return CheckpointProof(m.seq, m.state_digest, tuple(votes[:quorum])), keys

    def hint(self, key: bytes, m: Checkpoint,
             sets: Iterable[ValidatorSet]) -> tuple[int, bytes, Matching] | None:
        """Note that node `key` claims the checkpoint `m`, beyond every epoch
        this replica knows.  (seq, digest, keys) once f+1 members of one of
        `sets` claim the same one (one of them is correct), else None."""
        held = self._hints.get(key)
        if held is not None and held.seq >= m.seq:
            return None
        self._hints[key] = m
        claiming = [k for k, c in self._hints.items()
                    if (c.seq, c.state_digest) == (m.seq, m.state_digest)]
        for validators in sets:
            agreeing = tuple(k for k in claiming if validators.index_of(k) is not None)
            if len(agreeing) > validators.f:
                return m.seq, m.state_digest, agreeing
        return None

    def take_hints(self, reach: int) -> list[tuple[bytes, Checkpoint]]:
        """The hints at or below `reach` (now checkable), removed."""
        taken = [(k, c) for k, c in self._hints.items() if c.seq <= reach]
        for key, _ in taken:
            del self._hints[key]
        return taken

    def collect_garbage(self, stable: int, high: int) -> None:
        """A checkpoint at `stable` became stable and the window is now
        (stable, high]: drop what is at or below it, and move the checkpoints
        held above the old window that the new one reaches into it."""
        in_window = {s: c for s, c in self._in_window.items() if s > stable}
        for key, c in list(self._beyond.items()):
            if c.seq <= high:
                del self._beyond[key]
                if c.seq > stable:
                    in_window.setdefault(c.seq, {})[c.replica] = c
        self._in_window = in_window
        self._hints = {k: c for k, c in self._hints.items() if c.seq > stable}

    def sync_target(self, above: int, validators: ValidatorSet) -> tuple[int, bytes, Matching] | None:
        """The highest checkpoint in the window above `above` that f+1
        replicas agree on (one of them is correct): (seq, state digest, their
        keys), or None."""
        f = validators.f
        for seq, by_replica in sorted(self._in_window.items(), reverse=True):
            if seq <= above:
                break
            agreeing: dict[bytes, list[bytes]] = {}
            for c in by_replica.values():
                agreeing.setdefault(c.state_digest, []).append(validators.keys[c.replica])
            for digest, keys in agreeing.items():
                if len(keys) > f:
                    return seq, digest, tuple(keys)
        return None

    def problem(self, low: int, high: int, is_checkpoint, n: int) -> str | None:
        """Why the log breaks its bounds for the window (low, high] of an
        epoch of n validators whose checkpoints `is_checkpoint(seq)` tells,
        or None."""
        for seq, by_replica in self._in_window.items():
            if not low < seq <= high or not is_checkpoint(seq):
                return f"checkpoint log holds seq {seq} outside the window ({low}, {high}]"
            if any(c.seq != seq or c.replica != r or r >= n for r, c in by_replica.items()):
                return f"checkpoint log misfiles a message at seq {seq}"
        for key, c in self._beyond.items():
            if c.seq <= high:
                return f"checkpoint log holds {c.seq} from {key.hex()[:8]} as beyond {high}"
        if any(c.seq <= low for c in self._hints.values()):
            return "checkpoint log holds a hint at or below the stable checkpoint"
        return None
