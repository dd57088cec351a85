"""Replica.handle throughput in the normal case: a benchmark run by hand, not a test.

    .venv/bin/python -m tests.consensus.bench_replica [--blocks N] [--repeat R] [--cpu] [--no-crypto]

Four replicas in one process, messages encoded and decoded as on the wire,
the primary proposing one block at a time; only the time spent inside
Replica.handle(MessageReceived) is counted.  --cpu counts this thread's CPU
time instead of wall time (steadier on a shared machine); --no-crypto swaps
ed25519 signing and verification for constants, leaving the state machine's
own cost.  Uses the public interface only, so it runs against older trees too
(PYTHONPATH=<tree>).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from collections import deque

from ledger import codec
from ledger.crypto import KeyPair, hash256

N = 4


def without_crypto() -> None:
    import consensus
    for module in pkgutil.iter_modules(consensus.__path__):
        importlib.import_module(f"consensus.{module.name}")
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("consensus", "ledger") and hasattr(module, "verify"):
            module.verify = lambda key, message, signature: True
    KeyPair.sign = lambda self, data: b"\x01" * 64


def run(blocks: int, clock) -> tuple[int, float]:
    from consensus.config import ReplicaConfig
    from consensus.events import Broadcast, Deliver, Executed, MessageReceived, Propose, Send
    from consensus.messages import decode_message
    from consensus.replica import Replica

    keys = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(N)]

    def digest(seq: int, payload: bytes) -> bytes:
        return hash256(b"bench" + payload)

    replicas = [Replica(ReplicaConfig(chain_id="bench", validators=tuple(k.public_key for k in keys),
                                      me=i, checkpoint_interval=16, window=64,
                                      view_change_timeout_ms=2000,
                                      max_view_change_timeout_ms=30000, check_payload=digest),
                        keys[i], None, (0, bytes(32))) for i in range(N)]
    queue: deque[tuple[int, int, bytes]] = deque()
    states = [bytes(32)] * N

    def apply(i: int, actions: list) -> None:
        for action in actions:
            kind = type(action)
            if kind is Broadcast:
                data = action.message.encode()
                queue.extend((i, j, data) for j in range(N) if j != i)
            elif kind is Send:
                queue.append((i, action.to, action.message.encode()))
            elif kind is Deliver:
                states[i] = hash256(states[i] + action.certificate.digest)
                apply(i, replicas[i].handle(Executed(action.seq, states[i])))

    for i in range(N):
        apply(i, replicas[i].start())
    spent, count = 0.0, 0
    for _ in range(blocks):
        seq = replicas[0].next_proposal_seq()
        payload = codec.pack([seq, "x" * 200])
        apply(0, replicas[0].handle(Propose(seq, payload, digest(seq, payload))))
        while queue:
            src, dst, data = queue.popleft()
            event = MessageReceived(src, decode_message(data))
            started = clock()
            actions = replicas[dst].handle(event)
            spent += clock() - started
            count += 1
            apply(dst, actions)
    assert all(r.last_delivered == blocks for r in replicas)
    return count, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best one is printed")
    parser.add_argument("--cpu", action="store_true", help="count thread CPU time, not wall time")
    parser.add_argument("--no-crypto", action="store_true")
    args = parser.parse_args()
    if args.no_crypto:
        without_crypto()
    clock = time.thread_time if args.cpu else time.perf_counter
    best = 0.0
    for _ in range(args.repeat):
        count, spent = run(args.blocks, clock)
        best = max(best, count / spent)
    print(f"messages={count} per_block={count / args.blocks:.1f} best_msgs_per_s={best:,.0f} "
          f"us_per_msg={1e6 / best:.1f} clock={'cpu' if args.cpu else 'wall'} "
          f"crypto={'off' if args.no_crypto else 'on'}")


if __name__ == "__main__":
    main()
