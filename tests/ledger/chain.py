"""A minimal in-memory chain for execution tests: state, tx index, roots."""

from __future__ import annotations

from typing import Sequence

from ledger.execution import INITIAL_STATE_ROOT, ExecutionResult, execute_block
from ledger.genesis import Genesis
from ledger.tx import Transaction


class Chain:
    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.state: dict[bytes, bytes] = {}
        self.committed: set[bytes] = set()
        self.height = 0
        self.root = INITIAL_STATE_ROOT

    def run(self, txs: Sequence[Transaction]) -> ExecutionResult:
        """Execute and commit the next block."""
        result = execute_block(self.genesis, self.state.get, self.height + 1, txs,
                               self.root, self.committed.__contains__)
        for key, value in result.writes.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        self.committed.update(tx.id for tx in txs)
        self.height += 1
        self.root = result.state_root
        return result
