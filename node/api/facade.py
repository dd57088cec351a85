"""What the HTTP API needs from a running node (implemented by node.app.Node).

Kept as a Protocol so the API can be tested against a small fake and so the
daemon's internals can change without touching the API.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from ledger.block import Block
from ledger.certificate import CommitCertificate
from ledger.contracts import CommittedState
from ledger.receipt import Receipt
from ledger.tx import Transaction


@dataclass(frozen=True, slots=True)
class Admission:
    """The mempool's answer for one submitted transaction."""
    tx_id: bytes
    accepted: bool
    reason: str | None = None     # why it was refused, e.g. "duplicate", "bad_signature"


@dataclass(frozen=True, slots=True)
class TxRecord:
    """A committed transaction and where it is."""
    tx: Transaction
    height: int
    index: int
    receipt: Receipt


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    block: Block
    certificate: CommitCertificate


class NodeFacade(Protocol):
    chain_id: str
    name: str

    def status(self) -> dict[str, Any]:
        """JSON-ready: chain_id, node, height, last_block_hash (hex), view, primary
        (validator name), peers (list of connected validator names), mempool (count),
        syncing (bool)."""

    def submit(self, txs: list[Transaction]) -> list[Admission]:
        """Admit to the mempool (and gossip); one Admission per tx, same order."""

    async def wait_committed(self, tx_ids: list[bytes], timeout_s: float) -> dict[bytes, TxRecord]:
        """Wait until all are committed or the timeout passes; returns those committed."""

    def get_tx(self, tx_id: bytes) -> TxRecord | None: ...

    def tx_pending(self, tx_id: bytes) -> bool:
        """True if the tx is in this node's mempool (admitted, not yet committed)."""

    def get_block(self, height: int) -> CommittedBlock | None: ...

    def height(self) -> int: ...

    def get_state(self, contract: str, key: str) -> tuple[Any, int] | None:
        """(value, height at which it was read) or None if the key is absent."""

    def state_reader(self) -> CommittedState:
        """Committed state at the current height for contract queries: point reads,
        bounded ordered scans (Store.scan_state) and the directory of organisations."""

    def validators(self) -> list[dict[str, Any]]:
        """JSON-ready: name, org, public_key (hex), p2p, api, connected (bool), primary (bool).
        In genesis order: a certificate vote's validator index names an entry."""

    def can_subscribe(self) -> bool:
        """False when the node already serves as many block subscribers as it will."""

    def subscribe_blocks(self) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel]:
        """A bounded channel of CommittedBlock as they commit; a subscriber that
        falls too far behind is closed (its channel ends) rather than slowing the node."""

    def metrics_text(self) -> bytes:
        """Prometheus text exposition of the node's metrics."""
