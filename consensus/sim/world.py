"""The deterministic simulator: replicas over a faulty in-memory network.

Simulated time, one random.Random(seed), a heap of timed events.  Each Host
is the consensus.executor Host of its replica (the shared Executor carries out
the actions); the World plays the rest of every node: it builds payloads when
next_proposal_seq() allows, feeds RequestsPending, answers each Deliver with
Executed, and serves RequestSync from a correct replica's delivered blocks
(checking their certificates).

Invariants are checked on every delivery, sync and restart (agreement, valid
certificates, no gap, the delivered prefix never shrinks), on every vote a
correct replica sends (never two digests for one (view, seq, phase), across
crashes), and inside every replica after every event (check_invariants);
the run stops at the first violation.

Reconfiguration (Scenario.set_changes): a block may carry a set change; each
host executes it like the chain does (the next boundary is the first
checkpoint B of the last epoch with B >= h + W), keeps the resulting epoch
schedule as its chain configuration and hands the change to its replica in
Executed / Synced.  The checker then knows the set of every height: each
certificate a correct host delivers or syncs is checked against set(height)
(consensus.epochs.certificate_problem, as block sync does), a correct replica
that signs anything in an epoch whose set does not hold it is a violation,
and votes are told apart per epoch.  Hosts name senders by node key.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, replace
from typing import Any, Callable

from ledger import codec
from ledger.block import NULL_DIGEST
from ledger.crypto import KeyPair, hash256

from ..config import ReplicaConfig
from ..errors import RemoteProtocolError
from ..epochs import EpochSchedule, certificate_problem, genesis_epoch
from ..events import (Deliver, EpochChange, Event, Executed, MessageReceived, PeersReachable,
                      PersistSafety, Propose, RequestsPending, RequestSync, Synced, TimerFired)
from ..executor import Executor
from ..messages import (Message, NewView, PrePrepare, decode_message, epoch_of_message, sign,
                        signed_votes)
from ..replica import Replica
from ..safety import apply_payload_changes
from .scenario import EQUIVOCATE, GARBAGE, GENESIS_NODES, SILENT, TWIN, Scenario

CHAIN_ID = "sim-chain"
GENESIS = bytes(32)
CLIENT_TICK_MS = 100        # a new batch of requests this often
MAX_BACKLOG = 8
SYNC_DELAY_MS = 30
SIM_TIMING = dict(checkpoint_interval=4, window=8, max_in_flight=4,
                  view_change_timeout_ms=300, max_view_change_timeout_ms=3000,
                  retransmit_ms=150)
GENESIS_PARAMS = {k: v for k, v in SIM_TIMING.items() if k != "retransmit_ms"}


def check_payload(seq: int, payload: bytes) -> bytes | None:
    """Sim payloads are msgpack [seq, proposer, nonce, set change index or None]."""
    try:
        rec = codec.unpack(payload)
    except codec.DecodeError:
        return None
    if type(rec) is not list or len(rec) != 4 or rec[0] != seq or \
            not (rec[3] is None or type(rec[3]) is int):
        return None
    return hash256(b"sim-payload" + payload)


class BoundaryBlindReplica(Replica):
    """A deliberately broken replica for the checker's self-check: its window
    is not cut at the next boundary, so it accepts seqs > B before the
    checkpoint at B is stable (the old set decides slots of the new epoch)."""

    def _compute_high(self) -> int:
        return min(self._low + self._epoch.window, self._schedule.reach(self._last_executed))


@dataclass(slots=True)
class SeedResult:
    seed: int
    violation: str | None
    liveness_failure: str | None
    blocks_committed: int       # the fewest blocks any correct replica holds at the end
    sim_time_ms: int
    stats: dict[str, int]       # what happened: view changes, syncs, restarts, faults seen


class Host:
    """One validator's node: the running replica (None while crashed), and
    what survives a crash (its safety record and payloads, its delivered
    blocks, and every vote it has sent, which the checker keeps).  It is the
    Executor's Host: the World does the rest."""
    __slots__ = ("world", "validator", "label", "side", "behaviour", "replica", "executor",
                 "record", "payloads", "blocks", "states", "up", "incarnation", "floor",
                 "nonce", "signed", "schedule", "changes_applied")

    def __init__(self, world: "World", validator: int, label: str, side: int | None,
                 behaviour: str | None):
        self.world = world
        self.validator = validator
        self.label = label
        self.side = side                    # twins' halves and split correct replicas
        self.behaviour = behaviour
        self.replica: Replica | None = None
        self.executor: Executor | None = None
        self.record: bytes | None = None
        self.payloads: dict[tuple[int, bytes], bytes] = {}     # durable, like the record
        self.blocks: list[tuple[bytes, Any]] = []    # (payload, certificate) for seq 1..
        self.states: list[bytes] = [GENESIS]         # state digest after seq i
        self.up = True
        self.incarnation = 0
        self.floor = 0                      # delivered prefix must never shrink below this
        self.nonce = 0
        self.signed: dict[tuple[int, int, str], bytes] = {}   # every vote sent, across crashes
        # The chain configuration this host's executed blocks produced (durable).
        self.schedule = EpochSchedule([genesis_epoch(world.validators, **GENESIS_PARAMS)])
        self.changes_applied = 0

    @property
    def correct(self) -> bool:
        return self.behaviour is None

    @property
    def height(self) -> int:
        return len(self.blocks)

    # -- consensus.executor.Host ---------------------------------------------------
    def persist(self, action: PersistSafety) -> None:
        self.record = action.record
        apply_payload_changes(self.payloads, action.payloads, action.dropped)

    def send(self, to: int, message: Message) -> None:
        self.world.send(self, to, message)

    def broadcast(self, message: Message) -> None:
        self.world.send(self, None, message)

    def deliver(self, action: Deliver) -> list[Event]:
        return self.world.deliver(self, action)

    def set_timer(self, kind: str, delay_ms: int, token: int) -> None:
        world = self.world
        world.at(world.now_ms + delay_ms, world._timer, self, self.incarnation, kind, token)

    def cancel_timer(self, kind: str) -> None:
        pass        # a cancelled timer that fires carries a stale token: the replica ignores it

    def request_sync(self, action: RequestSync) -> None:
        world = self.world
        world.at(world.now_ms + SYNC_DELAY_MS, world._serve_sync, self, self.incarnation, action)

    def fault(self, sender: int, reason: str) -> None:
        self.world.stats["faults_reported"] += 1

    def view_changed(self, view: int, carried: tuple[tuple[int, bytes], ...]) -> None:
        stats = self.world.stats
        if view == 0:
            stats["epochs_entered"] += 1        # a new epoch starts at view 0
            return
        stats["view_changes"] += 1
        if self.replica is not None and self.replica.epoch > 0:
            stats["view_changes_in_later_epochs"] += 1


class World:
    def __init__(self, scenario: Scenario, *, broken_boundary: bool = False) -> None:
        self.sc = scenario
        self.rng = random.Random(scenario.seed ^ 0x5EED)
        self.now_ms = 0
        self._heap: list[tuple[int, int, Callable[..., None], tuple]] = []
        self._counter = 0
        self.reconfig = bool(scenario.set_changes)
        self.keys = [KeyPair.from_seed(hash256(b"sim-key" + bytes([i])))
                     for i in range(scenario.nodes)]
        self.node_of_key = {k.public_key: i for i, k in enumerate(self.keys)}
        genesis = GENESIS_NODES if self.reconfig else range(scenario.n)
        self.validators = tuple(self.keys[i].public_key for i in genesis)
        self.next_change = 0        # the set change the primaries put in their blocks
        self.change_epochs: dict[int, int] = {}     # change index -> the epoch it scheduled
        self.broken_boundary = broken_boundary
        self.committed: dict[int, bytes] = {}        # seq -> digest first delivered by a correct host
        self.proposed: set[tuple[int, bytes]] = set()
        self._good_certificates: set[bytes] = set()
        self.violation: str | None = None
        self.stats = {"view_changes": 0, "syncs": 0, "restarts": 0, "faults_reported": 0,
                      "messages": 0, "epochs_entered": 0, "view_changes_in_later_epochs": 0}
        self.faulty_now: set[int] = set()            # crashed validators
        self.partitions_now: list[frozenset[int]] = []
        self.loss, self.duplicate = scenario.loss, scenario.duplicate
        self.backlog = 0
        self.hosts: list[Host] = []
        byzantine = dict(scenario.byzantine)
        correct_ids = [v for v in range(scenario.nodes) if v not in byzantine]
        split = set(self.rng.sample(correct_ids, len(correct_ids) // 2)) if scenario.split_twins else set()
        for v in range(scenario.nodes):
            behaviour = byzantine.get(v)
            if behaviour == TWIN:
                self.hosts.append(Host(self, v, f"{v}a", 0, TWIN))
                self.hosts.append(Host(self, v, f"{v}b", 1, TWIN))
            else:
                side = (0 if v in split else 1) if scenario.split_twins else None
                self.hosts.append(Host(self, v, str(v), side, behaviour))
        self.by_validator: dict[int, list[Host]] = {}
        for host in self.hosts:
            self.by_validator.setdefault(host.validator, []).append(host)
            if host.behaviour != SILENT:
                self._boot(host)
        self.links_changed()

    # -- event loop ----------------------------------------------------------------

    def at(self, time_ms: int, fn: Callable[..., None], *args: Any) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (time_ms, self._counter, fn, args))

    def run_until(self, time_ms: int, stop: Callable[[], bool] = lambda: False) -> None:
        heap = self._heap
        while heap and heap[0][0] <= time_ms and self.violation is None:
            if stop():
                return
            self.now_ms, _, fn, args = heapq.heappop(heap)
            fn(*args)
        if self.violation is None:
            self.now_ms = time_ms

    def fail(self, what: str) -> None:
        if self.violation is None:
            self.violation = f"t={self.now_ms}ms: {what}"

    # -- hosts ---------------------------------------------------------------------

    def _config(self, host: Host) -> ReplicaConfig:
        # Invariants hold for correct replicas; a twin shares its key with another
        # replica, so messages "from itself" it never sent reach it (it is Byzantine).
        key = self.keys[host.validator].public_key
        me = self.validators.index(key) if key in self.validators else None
        return ReplicaConfig(chain_id=CHAIN_ID, validators=self.validators, me=me,
                             check_payload=check_payload, check_invariants=host.correct,
                             epochs=host.schedule.changes(), **SIM_TIMING)

    def _boot(self, host: Host) -> None:
        replica_type = BoundaryBlindReplica if self.broken_boundary else Replica
        host.replica = replica_type(self._config(host), self.keys[host.validator],
                               host.record, (host.height, host.states[-1]),
                               prepared_payloads=host.payloads)
        host.executor = Executor(host.replica, host)
        if host.replica.last_delivered < host.floor:
            self.fail(f"{host.label} restarted below its delivered prefix")
        self._run(host, host.executor.start)

    def crash(self, host: Host) -> None:
        host.up = False
        host.replica = host.executor = None
        host.incarnation += 1
        self.links_changed()

    def restart(self, host: Host) -> None:
        if not host.up:
            host.up = True
            self.stats["restarts"] += 1
            self._boot(host)
            self.links_changed()

    def links_changed(self) -> None:
        """Tell every running replica which peers it is connected to now, as the
        node's transport does (PeersReachable): the hosts that are up and on its
        side of every partition.  A silent replica never connects."""
        for host in self.hosts:
            if host.up and host.executor is not None:
                keys = frozenset(self.keys[other.validator].public_key for other in self.hosts
                                 if other is not host and other.up and other.behaviour != SILENT
                                 and self._linked(host, other))
                self.handle(host, PeersReachable(keys))

    def handle(self, host: Host, event: Event) -> None:
        if host.up and host.executor is not None:
            self._run(host, host.executor.step, [event])

    def _run(self, host: Host, step: Callable[..., None], *args: Any) -> None:
        try:
            step(*args)
        except AssertionError as exc:     # Replica.check_invariants
            self.fail(f"{host.label}: invariant broken: {exc}")
            return
        if host.correct and host.replica is not None:
            if host.replica.last_delivered < host.floor:
                self.fail(f"{host.label}: last_delivered went back below {host.floor}")
            host.floor = max(host.floor, host.replica.last_delivered)

    def _timer(self, host: Host, incarnation: int, kind: str, token: int) -> None:
        if host.incarnation == incarnation:
            self.handle(host, TimerFired(kind, token))

    # -- network -------------------------------------------------------------------

    def _linked(self, a: Host, b: Host) -> bool:
        if a.side is not None and b.side is not None and a.side != b.side:
            return False
        for side_a in self.partitions_now:
            if (a.validator in side_a) != (b.validator in side_a):
                return False
        return True

    def send(self, src: Host, to: int | None, message: Message) -> None:
        if src.behaviour == SILENT:
            return
        if src.correct:
            self._check_votes(src, message)
        rng = self.rng
        data = message.encode()
        if to is None:
            targets = range(self.sc.nodes)
        elif self.reconfig:
            targets = (self.node_of_key[src.replica.validator_keys[to]],)
        else:
            targets = (to,)
        for v in targets:
            if v == src.validator:
                continue
            for dst in self.by_validator[v]:
                if not self._linked(src, dst):
                    continue
                payload = data
                if src.behaviour == EQUIVOCATE and type(message) is PrePrepare and message.payload \
                        and rng.random() < 0.5:
                    payload = self._equivocation(src, message).encode()
                elif src.behaviour == GARBAGE and rng.random() < 0.3:
                    payload = self._garbage(src, message, data)
                for _ in range(2 if rng.random() < self.duplicate else 1):
                    if rng.random() < self.loss:
                        continue
                    self.at(self.now_ms + rng.randint(1, self.sc.max_delay_ms), self._receive,
                            dst, dst.incarnation, src, payload)

    def _receive(self, dst: Host, incarnation: int, src: Host, data: bytes) -> None:
        if dst.incarnation != incarnation or not dst.up or not self._linked(src, dst):
            return
        self.stats["messages"] += 1
        try:
            message = decode_message(data)
        except RemoteProtocolError:
            self.stats["faults_reported"] += 1       # what the node does: drop, count, penalise
            return
        sender = self.keys[src.validator].public_key if self.reconfig else src.validator
        self.handle(dst, MessageReceived(sender, message))
        if dst.up and dst.replica is not None:
            self.try_propose(dst)

    def _equivocation(self, src: Host, pp: PrePrepare) -> PrePrepare:
        src.nonce += 1
        payload = codec.pack([pp.seq, src.label + "'", src.nonce, None])
        digest = check_payload(pp.seq, payload)
        self.proposed.add((pp.seq, digest))
        return sign(replace(pp, payload=payload, digest=digest), self.keys[src.validator], CHAIN_ID)

    def _garbage(self, src: Host, message: Any, data: bytes) -> bytes:
        rng = self.rng
        choice = rng.randrange(4)
        if choice == 0:
            return rng.randbytes(rng.randint(0, 80))
        if choice == 1:             # flipped byte anywhere
            i = rng.randrange(len(data))
            return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
        if choice == 2 and hasattr(message, "signature"):
            return replace(message, signature=rng.randbytes(64)).encode()
        return sign(message, self.keys[src.validator], "other-chain").encode() \
            if hasattr(message, "replica") else data

    # -- the node's side: proposals, delivery, sync --------------------------------

    def client_tick(self, pending: bool) -> None:
        """Clients add a batch of requests every tick while `pending`."""
        if pending:
            self.backlog = min(self.backlog + 1, MAX_BACKLOG)
        for host in self.hosts:
            if host.up and host.replica is not None:
                if pending:
                    self.handle(host, RequestsPending())
                self.try_propose(host)
        if self.violation is None:
            self.at(self.now_ms + CLIENT_TICK_MS, self.client_tick, pending)

    def try_propose(self, host: Host) -> None:
        """A primary turns waiting batches into blocks as fast as the
        replica allows (pipelining up to max_in_flight)."""
        while self.backlog and host.replica is not None:
            seq = host.replica.next_proposal_seq()
            if seq is None:
                return
            self.backlog -= 1
            host.nonce += 1
            payload = codec.pack([seq, host.label, host.nonce, self._change_to_propose()])
            digest = check_payload(seq, payload)
            self.proposed.add((seq, digest))
            self.handle(host, Propose(seq, payload, digest))

    def _change_to_propose(self) -> int | None:
        """The next set change, once the epoch of the one before has started
        somewhere (or at once, with Scenario.eager_changes)."""
        index = self.next_change
        if index >= len(self.sc.set_changes):
            return None
        if index and not self.sc.eager_changes:
            started = max((h.replica.epoch for h in self.hosts
                           if h.correct and h.replica is not None), default=0)
            if started < self.change_epochs[index - 1]:
                return None
        return index

    def _check_votes(self, host: Host, message: Message) -> None:
        """A correct replica never signs two digests for one (view, seq,
        phase), not even across a crash: every vote it sends is kept.  It
        signs nothing in an epoch whose set does not hold it (a seq is in one
        epoch, so (view, seq, phase) names one (epoch, view, seq, phase))."""
        schedule = host.schedule
        epoch = schedule.get(epoch_of_message(message, lambda s: schedule.epoch_of(s).number))
        if epoch is None:
            self.fail(f"{host.label} sent a message of an epoch its chain never scheduled")
            return
        me = epoch.validators.index_of(self.keys[host.validator].public_key)
        if me is None:
            if type(message) is not NewView:       # a NEW-VIEW may be relayed by anyone
                self.fail(f"PASSIVE: {host.label} signed a {type(message).__name__} in epoch "
                          f"{epoch.number}, whose set does not hold it")
            return
        for view, seq, phase, digest in signed_votes(message, me, epoch.validators.primary):
            held = host.signed.setdefault((view, seq, phase), digest)
            if held != digest:
                self.fail(f"EQUIVOCATION: {host.label} signed {held.hex()[:16]} and "
                          f"{digest.hex()[:16]} at view {view}, seq {seq}, {phase}")

    def deliver(self, host: Host, d: Deliver) -> list[Event]:
        if self.violation is not None:
            return []       # the run is over: the rest of the actions change nothing
        seq, cert = d.seq, d.certificate
        if seq != host.height + 1:
            self.fail(f"{host.label} delivered {seq} after {host.height} (gap or repeat)")
            return []
        if host.correct:
            self._check_block(host, seq, d.payload, cert)
        change = self._execute(host, d.payload, cert)
        return [Executed(seq, host.states[-1], change)]

    def _execute(self, host: Host, payload: bytes, cert: Any) -> EpochChange | None:
        """Append the block to the host's chain and carry out the set change it
        carries, if it is the next one (a governance tx executes once): the
        epoch it schedules or changes, else None."""
        seq = host.height + 1
        host.blocks.append((payload, cert))
        host.states.append(hash256(host.states[-1] + cert.digest))
        index = codec.unpack(payload)[3] if payload else None
        if index is None or index != host.changes_applied:
            return None
        host.changes_applied += 1
        change = self._schedule_change(host.schedule, seq, self.sc.set_changes[index])
        if host.correct:
            self.next_change = max(self.next_change, host.changes_applied)
            self.change_epochs[index] = change.epoch
        return change

    def _schedule_change(self, schedule: EpochSchedule, height: int, wanted: Any) -> EpochChange:
        """What the chain does (ledger.consortium.ChainConfig.rescheduled): the
        change takes effect at the first checkpoint B of the last epoch with
        B >= height + W; a pending epoch that starts late enough takes it."""
        last = schedule.last
        reach = height + schedule.epoch_of(height).window
        if reach <= last.start:
            number, start = last.number, last.start
        else:
            step = last.checkpoint_interval
            number, start = last.number + 1, last.start + -(-(reach - last.start) // step) * step
        change = EpochChange(number, start, tuple(self.keys[i].public_key for i in wanted.nodes),
                             wanted.checkpoint_interval, wanted.window,
                             SIM_TIMING["max_in_flight"], SIM_TIMING["view_change_timeout_ms"],
                             SIM_TIMING["max_view_change_timeout_ms"])
        schedule.learn(change)
        return change

    def _check_block(self, host: Host, seq: int, payload: bytes, cert: Any) -> None:
        digest = cert.digest
        if cert.height != seq:
            self.fail(f"{host.label}: certificate for {cert.height} delivered at {seq}")
        elif payload == b"" and digest != NULL_DIGEST or payload and (seq, digest) not in self.proposed:
            self.fail(f"{host.label}: delivered a payload nobody proposed at {seq}")
        elif payload and check_payload(seq, payload) != digest:
            self.fail(f"{host.label}: payload does not match the certified digest at {seq}")
        else:
            self._check_certificate(host, cert)
        agreed = self.committed.setdefault(seq, digest)
        if agreed != digest:
            self.fail(f"AGREEMENT: {host.label} delivered {digest.hex()[:16]} at {seq}, "
                      f"another correct replica {agreed.hex()[:16]}")

    def _check_certificate(self, host: Host, cert: Any) -> None:
        """Against the set in force at its height, as the host's executed
        chain says (what block sync and proofs check)."""
        key = (cert.encode(), host.schedule.epoch_of(cert.height).number)
        if key in self._good_certificates:
            return
        problem = certificate_problem(host.schedule, CHAIN_ID, cert)
        if problem:
            self.fail(f"{host.label}: invalid certificate at {cert.height} for the set of epoch "
                      f"{key[1]}: {problem}")
        else:
            self._good_certificates.add(key)

    def _serve_sync(self, host: Host, incarnation: int, request: RequestSync) -> None:
        if host.incarnation != incarnation or not host.up or host.replica is None:
            return
        sources = [h for h in self.hosts if h.correct and h is not host and h.height > host.height
                   and self._linked(host, h) and h.validator not in self.faulty_now]
        if not sources:
            return          # the replica asks again on its retransmit tick
        source = max(sources, key=lambda h: h.height)
        changes = []
        for seq in range(host.height + 1, source.height + 1):
            payload, cert = source.blocks[seq - 1]
            # Each block is checked against the set of its height before it is
            # executed, with the schedule the blocks before it produced.
            problem = certificate_problem(host.schedule, CHAIN_ID, cert)
            if problem or cert.height != seq:
                self.fail(f"sync from {source.label}: bad certificate at {seq}: {problem}")
                return
            if host.correct:
                self._check_block(host, seq, payload, cert)
            change = self._execute(host, payload, cert)
            if change is not None:
                changes.append(change)
        self.stats["syncs"] += 1
        self.handle(host, Synced(host.height, host.states[-1], tuple(changes)))
