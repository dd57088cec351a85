"""Transaction signatures checked on worker threads, so a node uses every core.

An ed25519 check is ~57 us of libsodium, which releases the GIL: two threads
check 1.76x as many signatures per second as one on a 2-core machine, and
while they work the event loop goes on with consensus.  Admission (client
batches and peers' TXS frames, node.core.tx_relay) and the pre-check of
proposals (node.core.dispatch) hand their txs here; the checks that need the
node's state (duplicates, the validity window, room in the pool) stay on the
event loop, before and after.

The pool has `workers` threads (default: the host's cores; `[node]
verify_workers` in config.toml); a batch is split into one part per worker,
each handed to a thread as a whole (a hand-off costs tens of microseconds,
so never one tx at a time).
"""

from __future__ import annotations

import os
from typing import Sequence

import trio

from ledger.tx import Transaction

MIN_PART = 16            # fewer txs than this per worker are not worth another thread


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _check(txs: Sequence[Transaction]) -> list[bool]:
    return [tx.verify_signature() for tx in txs]


class VerifyPool:
    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a verify pool needs at least one worker")
        self.workers = workers
        self._limiter = trio.CapacityLimiter(workers)
        self.checked = 0          # signatures checked, for metrics and tests

    async def verify(self, txs: Sequence[Transaction]) -> list[bool]:
        """Whether each tx's signature is valid, in order."""
        if not txs:
            return []
        parts = min(self.workers, max(1, len(txs) // MIN_PART))
        size = -(-len(txs) // parts)
        results: list[list[bool]] = [[] for _ in range(parts)]

        async def run(k: int) -> None:
            results[k] = await trio.to_thread.run_sync(_check, txs[k * size:(k + 1) * size],
                                                       limiter=self._limiter)

        async with trio.open_nursery() as nursery:
            for k in range(parts):
                nursery.start_soon(run, k)
        self.checked += len(txs)
        return [ok for part in results for ok in part]
