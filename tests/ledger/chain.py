"""A minimal in-memory chain for execution tests: state (starting with the
genesis configuration, as a node's store does), tx index, roots, and the
consortium configuration in force."""

from __future__ import annotations

from typing import Sequence

from ledger.execution import ExecutionResult, execute_block, genesis_state
from ledger.genesis import Genesis
from ledger.state_tree import MemoryNodeStore, StateTree
from ledger.tx import Transaction


# 2026-11-28 09:00 UTC+8; block h is proposed BLOCK_INTERVAL_MS * (h - 1) later.
START_MS = 1_795_827_600_000
BLOCK_INTERVAL_MS = 60_000


class Chain:
    def __init__(self, genesis: Genesis, start_ms: int = START_MS) -> None:
        self.genesis = genesis
        self.start_ms = start_ms
        state, self.root = genesis_state(genesis.config)
        self.genesis_state = dict(state)
        self.tree = StateTree(MemoryNodeStore())          # every version kept, as a node does
        self.tree.store.write(self.tree.apply(0, state))
        self.state: dict[bytes, bytes] = dict(state)
        self.config = genesis.config
        self.committed: set[bytes] = set()
        self.height = 0

    def time_of(self, height: int) -> int:
        return self.start_ms + BLOCK_INTERVAL_MS * (height - 1)

    def run(self, txs: Sequence[Transaction], timestamp_ms: int | None = None) -> ExecutionResult:
        """Execute and commit the next block (at `timestamp_ms`, default time_of(height))."""
        height = self.height + 1
        result = execute_block(self.config, self.state.get, height, txs, self.tree,
                               self.committed.__contains__,
                               timestamp_ms=self.time_of(height) if timestamp_ms is None else timestamp_ms)
        for key, value in result.writes.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        self.tree.store.write(result.tree)
        self.committed.update(tx.id for tx in txs)
        self.height += 1
        self.root = result.state_root
        if result.config is not None:
            self.config = result.config
        return result
