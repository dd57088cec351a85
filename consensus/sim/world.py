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
from ..events import (Deliver, Event, Executed, MessageReceived, PersistSafety, Propose,
                      RequestsPending, RequestSync, Synced, TimerFired)
from ..executor import Executor
from ..messages import Message, PrePrepare, decode_message, sign, signed_votes
from ..replica import Replica
from ..safety import apply_payload_changes
from ..validators import ValidatorSet
from .scenario import EQUIVOCATE, GARBAGE, SILENT, TWIN, Scenario

CHAIN_ID = "sim-chain"
GENESIS = bytes(32)
CLIENT_TICK_MS = 100        # a new batch of requests this often
MAX_BACKLOG = 8
SYNC_DELAY_MS = 30
SIM_TIMING = dict(checkpoint_interval=4, window=8, max_in_flight=4,
                  view_change_timeout_ms=300, max_view_change_timeout_ms=3000,
                  retransmit_ms=150)


def check_payload(seq: int, payload: bytes) -> bytes | None:
    """Sim payloads are msgpack [seq, proposer, nonce]."""
    try:
        rec = codec.unpack(payload)
    except codec.DecodeError:
        return None
    if type(rec) is not list or len(rec) != 3 or rec[0] != seq:
        return None
    return hash256(b"sim-payload" + payload)


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
                 "nonce", "signed")

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
        self.world.stats["view_changes"] += 1


class World:
    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        self.rng = random.Random(scenario.seed ^ 0x5EED)
        self.now_ms = 0
        self._heap: list[tuple[int, int, Callable[..., None], tuple]] = []
        self._counter = 0
        self.keys = [KeyPair.from_seed(hash256(b"sim-key" + bytes([i]))) for i in range(scenario.n)]
        self.validators = tuple(k.public_key for k in self.keys)
        self.validator_set = ValidatorSet(self.validators)
        self.committed: dict[int, bytes] = {}        # seq -> digest first delivered by a correct host
        self.proposed: set[tuple[int, bytes]] = set()
        self._good_certificates: set[bytes] = set()
        self.violation: str | None = None
        self.stats = {"view_changes": 0, "syncs": 0, "restarts": 0, "faults_reported": 0,
                      "messages": 0}
        self.faulty_now: set[int] = set()            # crashed validators
        self.partitions_now: list[frozenset[int]] = []
        self.loss, self.duplicate = scenario.loss, scenario.duplicate
        self.backlog = 0
        self.hosts: list[Host] = []
        byzantine = dict(scenario.byzantine)
        correct_ids = [v for v in range(scenario.n) if v not in byzantine]
        split = set(self.rng.sample(correct_ids, len(correct_ids) // 2)) if scenario.split_twins else set()
        for v in range(scenario.n):
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
        return ReplicaConfig(chain_id=CHAIN_ID, validators=self.validators, me=host.validator,
                             check_payload=check_payload, check_invariants=host.correct,
                             **SIM_TIMING)

    def _boot(self, host: Host) -> None:
        host.replica = Replica(self._config(host), self.keys[host.validator],
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

    def restart(self, host: Host) -> None:
        if not host.up:
            host.up = True
            self.stats["restarts"] += 1
            self._boot(host)

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
        targets = range(self.sc.n) if to is None else (to,)
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
                    payload = self._garbage(message, data)
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
        self.handle(dst, MessageReceived(src.validator, message))
        if dst.up and dst.replica is not None:
            self.try_propose(dst)

    def _equivocation(self, src: Host, pp: PrePrepare) -> PrePrepare:
        src.nonce += 1
        payload = codec.pack([pp.seq, src.label + "'", src.nonce])
        digest = check_payload(pp.seq, payload)
        self.proposed.add((pp.seq, digest))
        return sign(replace(pp, payload=payload, digest=digest), self.keys[src.validator], CHAIN_ID)

    def _garbage(self, message: Any, data: bytes) -> bytes:
        rng = self.rng
        choice = rng.randrange(4)
        if choice == 0:
            return rng.randbytes(rng.randint(0, 80))
        if choice == 1:             # flipped byte anywhere
            i = rng.randrange(len(data))
            return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
        if choice == 2 and hasattr(message, "signature"):
            return replace(message, signature=rng.randbytes(64)).encode()
        return sign(message, self.keys[message.replica], "other-chain").encode() \
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
            payload = codec.pack([seq, host.label, host.nonce])
            digest = check_payload(seq, payload)
            self.proposed.add((seq, digest))
            self.handle(host, Propose(seq, payload, digest))

    def _check_votes(self, host: Host, message: Message) -> None:
        """A correct replica never signs two digests for one (view, seq,
        phase), not even across a crash: every vote it sends is kept."""
        for view, seq, phase, digest in signed_votes(message, host.validator,
                                                     self.validator_set.primary):
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
        host.blocks.append((d.payload, cert))
        state = hash256(host.states[-1] + cert.digest)
        host.states.append(state)
        return [Executed(seq, state)]

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
        key = cert.encode()
        if key in self._good_certificates:
            return
        problem = cert.problem(CHAIN_ID, self.validators)
        if problem:
            self.fail(f"{host.label}: invalid certificate at {cert.height}: {problem}")
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
        for seq in range(host.height + 1, source.height + 1):
            payload, cert = source.blocks[seq - 1]
            problem = cert.problem(CHAIN_ID, self.validators)
            if problem or cert.height != seq:
                self.fail(f"sync from {source.label}: bad certificate at {seq}: {problem}")
                return
            if host.correct:
                self._check_block(host, seq, payload, cert)
            host.blocks.append((payload, cert))
            host.states.append(source.states[seq])
        self.stats["syncs"] += 1
        self.handle(host, Synced(host.height, host.states[-1]))
