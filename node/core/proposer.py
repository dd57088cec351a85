"""The primary's side of the normal case: turning the mempool into proposals.

The proposer wakes whenever a consensus step may have changed what it can do
(a commit, a view change, new txs...) and proposes for every seq the core
offers (Replica.next_proposal_seq).  It proposes at once when its pipeline is
empty and lets a block fill for block_interval_ms when the pipeline is busy;
with empty_blocks_interval_ms it also proposes an empty block after that much
idle time, and while a validator-set change is pending (the chain scheduled
an epoch) it proposes empty blocks one after the other until the boundary,
so the change takes effect without waiting for traffic.  Block times never go below any block time this node has seen, so
they do not run backwards when the primary changes.
"""

from __future__ import annotations

import time
from typing import Callable

import trio

from consensus.replica import Replica
from ledger.block import Proposal
from node.core.chain import Chain
from node.core.driver import ConsensusDriver
from node.core.mempool import Mempool

# Room in a proposal for its header fields (chain id, height, view, proposer, time).
PROPOSAL_HEADER_RESERVE = 1024


class Wakeup:
    """A wake-up flag one task waits on and synchronous code sets."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout_s: float | None = None) -> None:
        """Until set (or `timeout_s` passes); then clear."""
        with trio.move_on_after(timeout_s if timeout_s else float("inf")):
            await self._event.wait()
        self._event = trio.Event()


class Proposer:
    def __init__(self, replica: Replica, driver: ConsensusDriver, mempool: Mempool, chain: Chain,
                 name: str, wakeup: Wakeup, last_commit_at: Callable[[], float]) -> None:
        self._replica = replica
        self._driver = driver
        self._mempool = mempool
        self._chain = chain
        self._name = name
        self._wakeup = wakeup
        self._last_commit_at = last_commit_at

    async def run(self) -> None:
        while True:
            # Governance may change the parameters: those of the seq proposed next.
            params = self._chain.config.params_at(self._chain.height + 1)
            fill_wait_s = params.block_interval_ms / 1000
            empty_every_s = params.empty_blocks_interval_ms / 1000
            await self._wakeup.wait(empty_every_s or None)
            while True:
                seq = self._replica.next_proposal_seq()
                if seq is None:
                    break
                max_block_txs = self._chain.config.params_at(seq).max_block_txs
                ready = self._mempool.ready_count
                pipeline_busy = seq > self._chain.height + 1
                # A validator-set change takes effect at a boundary the chain must reach:
                # while one is pending, empty blocks carry it there without waiting for traffic.
                to_boundary = self._chain.config.pending_boundary(self._chain.height) is not None
                idle = empty_every_s and time.monotonic() - self._last_commit_at() >= empty_every_s
                if ready == 0 and (pipeline_busy or not (to_boundary or idle)):
                    break
                if 0 < ready < max_block_txs and pipeline_busy:
                    # The pipeline is busy: let this block fill up a little.
                    await trio.sleep(fill_wait_s)
                    continue
                if not self._propose(seq, allow_empty=ready == 0):
                    # Every ready tx is too old for this seq (it can still enter
                    # a block below it); the commit that expires them wakes us.
                    break
                await trio.sleep(0)

    def _propose(self, seq: int, allow_empty: bool) -> bool:
        params = self._chain.config.params_at(seq)         # governed, per epoch
        txs = self._mempool.take(seq, params.max_block_txs,
                                 params.max_proposal_bytes - PROPOSAL_HEADER_RESERVE)
        if not txs and not allow_empty:
            return False
        # Never before a block time seen: backups refuse a block older than their head.
        timestamp_ms = max(int(time.time() * 1000), self._driver.proposals.latest_timestamp_ms,
                           self._chain.head_timestamp_ms)
        proposal = Proposal(self._chain.genesis.chain_id, seq, self._replica.view, self._name,
                            timestamp_ms, tuple(txs))
        self._driver.propose(seq, proposal)
        return True
