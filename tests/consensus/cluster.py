"""A synchronous in-memory cluster for scripted consensus tests (etcd/raft style):
messages queue up and are delivered only when the test says so, so every
interleaving in a test is spelled out.

Each Node is the consensus.executor Host of its replica.  Every replica runs
with check_invariants on, and every vote a node hands to the network (in
PRE-PREPARE, PREPARE, COMMIT, NEW-VIEW and VIEW-CHANGE, across restarts) is
collected: a node that signs two digests for one (view, seq, phase) fails the
test at once."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ledger import codec
from ledger.block import NULL_DIGEST
from ledger.crypto import KeyPair, hash256

from consensus.config import ReplicaConfig
from consensus.events import (Deliver, Event, Executed, MessageReceived, PersistSafety, Propose,
                              ReportFault, RequestSync, SetTimer, Synced, TimerFired)
from consensus.executor import Executor
from consensus.messages import Message, decode_message, signed_votes
from consensus.replica import Replica
from consensus.safety import apply_payload_changes
from consensus.validators import ValidatorSet
from consensus.sim.world import check_payload as payload_digest

CHAIN = "test-chain"
GENESIS = bytes(32)


def make_payload(seq: int, tag: str = "") -> tuple[bytes, bytes]:
    payload = codec.pack([seq, tag, 0, None])
    return payload, payload_digest(seq, payload)


def keys(n: int) -> list[KeyPair]:
    return [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(n)]


def config(n: int, me: int, **overrides) -> ReplicaConfig:
    params = dict(chain_id=CHAIN, validators=tuple(k.public_key for k in keys(n)), me=me,
                  checkpoint_interval=4, window=8, view_change_timeout_ms=1000,
                  max_view_change_timeout_ms=8000, check_payload=payload_digest,
                  max_in_flight=4, check_invariants=True)
    params.update(overrides)
    return ReplicaConfig(**params)


class Equivocation(AssertionError):
    """A node signed two digests for one (view, seq, phase)."""


@dataclass
class Node:
    """One validator's node: its replica, and what survives a restart (the
    persisted record and payloads, the delivered blocks, the votes it sent)."""
    index: int
    validators: ValidatorSet
    network: deque                       # the cluster's queue of (from, to, encoded)
    replica: Replica | None = None
    executor: Executor | None = None
    record: bytes | None = None
    payloads: dict = field(default_factory=dict)
    delivered: list[Deliver] = field(default_factory=list)
    timers: dict[str, SetTimer] = field(default_factory=dict)
    syncs: list[RequestSync] = field(default_factory=list)
    faults: list[ReportFault] = field(default_factory=list)
    views: list[int] = field(default_factory=list)
    carried: dict[int, tuple[tuple[int, bytes], ...]] = field(default_factory=dict)   # view ->
    state: bytes = GENESIS
    states: dict[int, bytes] = field(default_factory=dict)
    signed: dict[tuple[int, int, str], bytes] = field(default_factory=dict)

    def boot(self, replica: Replica) -> None:
        self.replica = replica
        self.executor = Executor(replica, self)
        self.timers.clear()
        self.executor.start()

    @property
    def height(self) -> int:
        return self.delivered[-1].seq if self.delivered else 0

    # -- consensus.executor.Host ---------------------------------------------------
    def persist(self, action: PersistSafety) -> None:
        self.record = action.record
        apply_payload_changes(self.payloads, action.payloads, action.dropped)

    def send(self, to: int, message: Message) -> None:
        self._sent(message)
        self.network.append((self.index, to, message.encode()))

    def broadcast(self, message: Message) -> None:
        self._sent(message)
        data = message.encode()
        self.network.extend((self.index, j, data) for j in range(self.validators.n)
                            if j != self.index)

    def deliver(self, action: Deliver) -> list[Event]:
        assert action.seq == self.height + 1, f"delivered {action.seq} after {self.height}"
        self.delivered.append(action)
        self.state = hash256(self.state + action.certificate.digest)
        self.states[action.seq] = self.state
        return [Executed(action.seq, self.state)]

    def set_timer(self, kind: str, delay_ms: int, token: int) -> None:
        self.timers[kind] = SetTimer(kind, delay_ms, token)

    def cancel_timer(self, kind: str) -> None:
        self.timers.pop(kind, None)

    def request_sync(self, action: RequestSync) -> None:
        self.syncs.append(action)

    def fault(self, sender: int, reason: str) -> None:
        self.faults.append(ReportFault(sender, reason))

    def view_changed(self, view: int, carried: tuple[tuple[int, bytes], ...]) -> None:
        self.views.append(view)
        self.carried[view] = carried

    def _sent(self, message: Message) -> None:
        for view, seq, phase, digest in signed_votes(message, self.index, self.validators.primary):
            held = self.signed.setdefault((view, seq, phase), digest)
            if held != digest:
                raise Equivocation(f"node {self.index} signed {digest.hex()[:8]} and "
                                   f"{held.hex()[:8]} at (view {view}, seq {seq}, {phase})")


class Cluster:
    def __init__(self, n: int, **overrides) -> None:
        self.n = n
        self.overrides = overrides
        self.keys = keys(n)
        self.queue: deque[tuple[int, int, bytes]] = deque()    # (from, to, encoded)
        validators = ValidatorSet(tuple(k.public_key for k in self.keys))
        self.nodes = [Node(i, validators, self.queue) for i in range(n)]
        self.down: set[int] = set()
        for node in self.nodes:
            node.boot(Replica(config(n, node.index, **overrides), self.keys[node.index],
                              None, (0, GENESIS)))

    def handle(self, i: int, event: Event) -> None:
        self.nodes[i].executor.step([event])

    def step(self, drop: Callable[[int, int, object], bool] = lambda s, d, m: False) -> int:
        """Deliver every queued message (and those they cause); returns how many."""
        count = 0
        while self.queue:
            src, dst, data = self.queue.popleft()
            message = decode_message(data)
            if dst in self.down or src in self.down or drop(src, dst, message):
                continue
            count += 1
            self.handle(dst, MessageReceived(src, message))
        return count

    def fire(self, i: int, kind: str) -> None:
        timer = self.nodes[i].timers.pop(kind)
        self.handle(i, TimerFired(kind, timer.token))

    def propose(self, tag: str = "") -> int | None:
        primary = next(i for i, node in enumerate(self.nodes)
                       if i not in self.down and node.replica.is_primary
                       and not node.replica.in_view_change)
        seq = self.nodes[primary].replica.next_proposal_seq()
        if seq is None:
            return None
        payload, digest = make_payload(seq, tag)
        self.handle(primary, Propose(seq, payload, digest))
        return seq

    def restart(self, i: int) -> None:
        """Crash node i and start a new replica from what it persisted."""
        node = self.nodes[i]
        node.boot(Replica(config(self.n, i, **self.overrides), self.keys[i], node.record,
                          (node.height, node.state), prepared_payloads=node.payloads))

    def sync(self, i: int, source: int, seq: int) -> None:
        """Serve node i's sync from `source`'s delivered blocks up to seq."""
        node, src = self.nodes[i], self.nodes[source]
        have = node.height
        for d in src.delivered:
            if have < d.seq <= seq:
                node.delivered.append(d)
                node.state = src.states[d.seq]
                node.states[d.seq] = node.state
        self.handle(i, Synced(seq, src.states[seq]))

    def digests(self, i: int) -> list[bytes]:
        return [d.certificate.digest for d in self.nodes[i].delivered]

NULL = NULL_DIGEST
