"""A synchronous in-memory cluster for scripted consensus tests (etcd/raft style):
messages queue up and are delivered only when the test says so, so every
interleaving in a test is spelled out."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ledger import codec
from ledger.block import NULL_DIGEST
from ledger.crypto import KeyPair, hash256

from consensus.config import ReplicaConfig
from consensus.events import (Broadcast, Deliver, Executed, MessageReceived, PersistSafety,
                              Propose, RequestSync, Send, SetTimer, Synced, TimerFired)
from consensus.messages import decode_message
from consensus.replica import Replica
from consensus.safety import apply_payload_changes
from consensus.sim.world import check_payload as payload_digest

CHAIN = "test-chain"
GENESIS = bytes(32)


def make_payload(seq: int, tag: str = "") -> tuple[bytes, bytes]:
    payload = codec.pack([seq, tag, 0])
    return payload, payload_digest(seq, payload)


def keys(n: int) -> list[KeyPair]:
    return [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(n)]


def config(n: int, me: int, **overrides) -> ReplicaConfig:
    params = dict(chain_id=CHAIN, validators=tuple(k.public_key for k in keys(n)), me=me,
                  checkpoint_interval=4, window=8, view_change_timeout_ms=1000,
                  max_view_change_timeout_ms=8000, check_payload=payload_digest,
                  max_in_flight=4)
    params.update(overrides)
    return ReplicaConfig(**params)


@dataclass
class Node:
    replica: Replica
    record: bytes | None = None
    payloads: dict = field(default_factory=dict)
    delivered: list[Deliver] = field(default_factory=list)
    timers: dict[str, SetTimer] = field(default_factory=dict)
    syncs: list[RequestSync] = field(default_factory=list)
    faults: list = field(default_factory=list)
    state: bytes = GENESIS
    states: dict[int, bytes] = field(default_factory=dict)


class Cluster:
    def __init__(self, n: int, **overrides) -> None:
        self.n = n
        self.overrides = overrides
        self.keys = keys(n)
        self.nodes = [Node(Replica(config(n, i, **overrides), self.keys[i], None, (0, GENESIS)))
                      for i in range(n)]
        self.queue: deque[tuple[int, int, bytes]] = deque()    # (from, to, encoded)
        self.down: set[int] = set()
        for i in range(n):
            self.apply(i, self.nodes[i].replica.start())

    def apply(self, i: int, actions: list) -> None:
        node = self.nodes[i]
        for action in actions:
            kind = type(action)
            if kind is PersistSafety:
                node.record = action.record
                apply_payload_changes(node.payloads, action.payloads, action.dropped)
            elif kind is Broadcast:
                for j in range(self.n):
                    if j != i:
                        self.queue.append((i, j, action.message.encode()))
            elif kind is Send:
                self.queue.append((i, action.to, action.message.encode()))
            elif kind is Deliver:
                assert action.seq == (node.delivered[-1].seq if node.delivered else
                                      max(node.states, default=0)) + 1 or not node.delivered
                node.delivered.append(action)
                node.state = hash256(node.state + action.certificate.digest)
                node.states[action.seq] = node.state
                self.apply(i, node.replica.handle(Executed(action.seq, node.state)))
            elif kind is SetTimer:
                node.timers[action.kind] = action
            elif kind.__name__ == "CancelTimer":
                node.timers.pop(action.kind, None)
            elif kind is RequestSync:
                node.syncs.append(action)
            elif kind.__name__ == "ReportFault":
                node.faults.append(action)

    def step(self, drop: Callable[[int, int, object], bool] = lambda s, d, m: False) -> int:
        """Deliver every queued message (and those they cause); returns how many."""
        count = 0
        while self.queue:
            src, dst, data = self.queue.popleft()
            message = decode_message(data)
            if dst in self.down or src in self.down or drop(src, dst, message):
                continue
            count += 1
            self.apply(dst, self.nodes[dst].replica.handle(MessageReceived(src, message)))
        return count

    def fire(self, i: int, kind: str) -> None:
        timer = self.nodes[i].timers.pop(kind)
        self.apply(i, self.nodes[i].replica.handle(TimerFired(kind, timer.token)))

    def propose(self, tag: str = "") -> int | None:
        primary = next(i for i, node in enumerate(self.nodes)
                       if i not in self.down and node.replica.is_primary
                       and not node.replica.in_view_change)
        seq = self.nodes[primary].replica.next_proposal_seq()
        if seq is None:
            return None
        payload, digest = make_payload(seq, tag)
        self.apply(primary, self.nodes[primary].replica.handle(Propose(seq, payload, digest)))
        return seq

    def restart(self, i: int) -> None:
        node = self.nodes[i]
        last = node.delivered[-1].seq if node.delivered else 0
        node.replica = Replica(config(self.n, i, **self.overrides), self.keys[i], node.record,
                               (last, node.state), prepared_payloads=node.payloads)
        node.timers.clear()
        self.apply(i, node.replica.start())

    def sync(self, i: int, source: int, seq: int) -> None:
        """Serve node i's sync from `source`'s delivered blocks up to seq."""
        node, src = self.nodes[i], self.nodes[source]
        have = node.delivered[-1].seq if node.delivered else 0
        for d in src.delivered:
            if have < d.seq <= seq:
                node.delivered.append(d)
                node.state = src.states[d.seq]
                node.states[d.seq] = node.state
        self.apply(i, node.replica.handle(Synced(seq, src.states[seq])))

    def digests(self, i: int) -> list[bytes]:
        return [d.certificate.digest for d in self.nodes[i].delivered]


NULL = NULL_DIGEST
