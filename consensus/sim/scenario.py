"""A fault schedule drawn from one seed: the seed alone reproduces a run."""

from __future__ import annotations

import random
from dataclasses import dataclass

SILENT, GARBAGE, EQUIVOCATE, TWIN = "silent", "garbage", "equivocate", "twin"
BEHAVIOURS = (SILENT, GARBAGE, EQUIVOCATE, TWIN)


@dataclass(frozen=True, slots=True)
class SetChange:
    """A governance change a block carries: the next validator set (node ids,
    in index order: continuing validators keep their order, newcomers come
    last, as ledger.consortium orders them) and the parameters it runs."""
    nodes: tuple[int, ...]
    checkpoint_interval: int
    window: int


# Reconfiguration runs grow and shrink the set 4 -> 5 -> 7 -> 4, changing the
# checkpoint grid on the way, over a pool of 7 nodes (all running from the
# start; the ones outside the set in force run passively).
GENESIS_NODES = (0, 1, 2, 3)
SET_CHANGES = (SetChange((0, 1, 2, 3, 4), 4, 8),
               SetChange((0, 1, 2, 3, 4, 5, 6), 6, 12),
               SetChange((2, 4, 5, 6), 4, 8))
POOL = 7


@dataclass(frozen=True, slots=True)
class Partition:
    start_ms: int
    end_ms: int
    side_a: frozenset[int]          # validator ids cut off from everyone else


@dataclass(frozen=True, slots=True)
class Crash:
    validator: int
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Scenario:
    seed: int
    n: int
    byzantine: tuple[tuple[int, str], ...]     # (validator id, behaviour)
    split_twins: bool          # twins' halves each see one half of the correct replicas
    loss: float
    duplicate: float
    max_delay_ms: int
    partitions: tuple[Partition, ...]
    crashes: tuple[Crash, ...]
    faults_end_ms: int         # network faults and crashes stop here
    liveness_blocks: int       # each correct replica must deliver this many new blocks ...
    liveness_ms: int           # ... within this long after the faults stop
    set_changes: tuple[SetChange, ...] = ()   # reconfiguration: the changes blocks carry
    # Propose each change as soon as the one before executed (so it lands while
    # that epoch is pending, and may replace it), not once that epoch started.
    eager_changes: bool = False

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def nodes(self) -> int:
        """How many nodes run (validators of some epoch, or passive)."""
        return POOL if self.set_changes else self.n

    @classmethod
    def from_seed(cls, seed: int, n: int = 4, twins: int = 0,
                  reconfig: bool = False) -> "Scenario":
        """`twins` > 0 forces that many twin pairs with the correct replicas
        split between them (the fork self-check); otherwise at most f
        Byzantine replicas of a random kind.  `reconfig`: n is 4 at genesis
        and the blocks carry SET_CHANGES; at most one Byzantine node (every
        set tolerates one), and it never twins."""
        rng = random.Random(seed)
        if reconfig:
            n = len(GENESIS_NODES)
        f = (n - 1) // 3
        ids = list(range(POOL if reconfig else n))
        if reconfig:
            count = rng.randint(0, 1)
            byzantine = tuple((v, rng.choice((SILENT, GARBAGE, EQUIVOCATE)))
                              for v in sorted(rng.sample(ids, count)))
        elif twins:
            byzantine = tuple((v, TWIN) for v in sorted(rng.sample(ids, twins)))
        else:
            count = rng.randint(0, f)
            byzantine = tuple((v, rng.choice(BEHAVIOURS)) for v in sorted(rng.sample(ids, count)))
        faulty = {v for v, _ in byzantine}
        correct = [v for v in ids if v not in faulty]
        faults_end = rng.randint(1500, 5000)
        partitions = []
        for _ in range(rng.randint(0, 2)):
            start = rng.randint(0, faults_end - 200)
            side = frozenset(rng.sample(ids, rng.randint(1, max(1, len(ids) // 2))))
            partitions.append(Partition(start, rng.randint(start + 100, faults_end), side))
        crashes = []
        for _ in range(rng.randint(0, 2) if correct else 0):
            start = rng.randint(0, faults_end - 200)
            crashes.append(Crash(rng.choice(correct), start, rng.randint(start + 50, faults_end)))
        return cls(seed=seed, n=n, byzantine=byzantine, split_twins=bool(twins),
                   loss=rng.choice((0.0, 0.02, 0.1, 0.25)),
                   duplicate=rng.choice((0.0, 0.05, 0.2)),
                   max_delay_ms=rng.choice((5, 20, 60, 150)),
                   partitions=tuple(partitions), crashes=tuple(crashes),
                   faults_end_ms=faults_end, liveness_blocks=3, liveness_ms=60_000,
                   set_changes=SET_CHANGES if reconfig else (),
                   eager_changes=reconfig and rng.random() < 0.25)
