"""Run one seed: the scenario's faults, then the liveness check once they stop."""

from __future__ import annotations

from .scenario import Scenario
from .world import Host, SeedResult, World


def run_seed(seed: int, n: int = 4, twins: int = 0, *, reconfig: bool = False,
             broken_boundary: bool = False) -> SeedResult:
    """`reconfig`: blocks carry the set changes 4 -> 5 -> 7 -> 4, which must all
    take effect.  `broken_boundary`: every replica ignores the boundary when
    it computes its window (the checker's self-check: must be caught)."""
    sc = Scenario.from_seed(seed, n, twins, reconfig=reconfig)
    return run_world(World(sc, broken_boundary=broken_boundary), sc)


def run_world(world: World, sc: Scenario) -> SeedResult:
    """The faults of `sc`, then the liveness phase, on `world`."""
    seed = sc.seed
    for p in sc.partitions:
        world.at(p.start_ms, _cut, world, p.side_a)
        world.at(p.end_ms, _heal, world, p.side_a)
    for c in sc.crashes:
        world.at(c.start_ms, _crash, world, c.validator)
        world.at(c.end_ms, _restart, world, c.validator)
    world.at(0, world.client_tick, True)
    world.run_until(sc.faults_end_ms)

    # Faults stop: the network heals, crashed replicas come back (Byzantine ones stay).
    world.partitions_now.clear()
    world.links_changed()
    world.loss = world.duplicate = 0.0
    for v in list(world.faulty_now):
        _restart(world, v)
    correct = [h for h in world.hosts if h.correct]
    targets = {h.label: h.height + sc.liveness_blocks for h in correct}
    deadline = sc.faults_end_ms + sc.liveness_ms
    changes = len(sc.set_changes)

    def done(h: Host) -> bool:
        # Reconfiguration: every change took effect, and the last set decides blocks.
        return h.height >= targets[h.label] and h.changes_applied == changes and \
            h.replica is not None and h.replica.epoch == h.schedule.last.number and \
            h.height > h.schedule.last.start

    world.run_until(deadline, lambda: all(done(h) for h in correct))
    lagging = [f"{h.label} at {h.height} (target {targets[h.label]}), epoch "
               f"{h.replica.epoch if h.replica else None} of {h.schedule.last.number}, "
               f"{h.changes_applied}/{changes} changes" for h in correct if not done(h)]
    liveness = None
    if lagging and world.violation is None:
        liveness = f"no progress within {sc.liveness_ms}ms after faults stopped: " + ", ".join(lagging)
    return SeedResult(seed, world.violation, liveness,
                      min((h.height for h in correct), default=0), world.now_ms, world.stats)


def _cut(world: World, side: frozenset[int]) -> None:
    world.partitions_now.append(side)
    world.links_changed()


def _heal(world: World, side: frozenset[int]) -> None:
    if side in world.partitions_now:
        world.partitions_now.remove(side)
        world.links_changed()


def _crash(world: World, validator: int) -> None:
    if validator in world.faulty_now:
        return
    world.faulty_now.add(validator)
    for host in world.by_validator[validator]:
        world.crash(host)


def _restart(world: World, validator: int) -> None:
    if validator not in world.faulty_now:
        return
    world.faulty_now.discard(validator)
    for host in world.by_validator[validator]:
        world.restart(host)
