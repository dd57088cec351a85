"""What the HTTP API needs from a running node (implemented by node.app.Node).

Kept as a Protocol so the API can be tested against a small fake and so the
daemon's internals can change without touching the API.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, Union

import trio

from ledger.block import Block, BlockHeader
from ledger.certificate import CommitCertificate
from ledger.consortium import ChainConfig
from ledger.contracts import CommittedState
from ledger.genesis import Account, Organisation
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
class TxCommitted:
    """Where a committed transaction is, read from the tx index (no block decoded)."""
    height: int
    index: int
    receipt: Receipt


@dataclass(frozen=True, slots=True)
class TxDropped:
    """An admitted transaction the node let go without committing it."""
    reason: str                   # e.g. "expired": the chain passed its valid_until


TxOutcome = Union[TxCommitted, TxDropped]


@dataclass(frozen=True, slots=True)
class ProofAnswer:
    """A proof file (ledger.proof_file) and the height it proves at, or why
    there is none: `missing` (the thing or height does not exist) or not
    provable (yet, or any more)."""
    kind: str
    data: bytes = b""
    height: int = 0
    problem: str | None = None
    missing: bool = False


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    block: Block
    certificate: CommitCertificate


class BlockSubscription(Protocol):
    """A place among the node's block subscribers, reserved until close()."""

    def open(self) -> AbstractContextManager[trio.MemoryReceiveChannel]:
        """A bounded channel of CommittedBlock as they commit; a subscriber that
        falls too far behind is closed (its channel ends) rather than slowing the node."""

    def close(self) -> None:
        """Give the place back (idempotent)."""


class NodeFacade(Protocol):
    chain_id: str
    name: str

    def status(self) -> dict[str, Any]:
        """JSON-ready: chain_id, node, height, last_block_hash (hex), view, primary
        (validator name), peers (list of connected validator names), mempool (count),
        syncing (bool), genesis_hash (hex), time (the node's clock, Unix seconds),
        sync ({target, height, rate, eta_s} while syncing, else None), key_expiry (keys
        of this node's organisation expiring soon: account, valid_until, seconds_left)."""

    async def submit(self, txs: list[Transaction]) -> list[Admission]:
        """Admit to the mempool (and gossip); one Admission per tx, same order.
        Large batches are admitted in chunks that yield to the event loop."""

    async def wait_settled(self, tx_ids: list[bytes], timeout_s: float) -> dict[bytes, TxOutcome]:
        """Wait until every id is committed or dropped, or the timeout passes;
        the outcome of each id that has one (from the tx index: no block is
        decoded, so a 10,000-id answer stays cheap)."""

    def get_tx(self, tx_id: bytes) -> TxRecord | None:
        """A committed transaction (decodes its block)."""

    def uncommitted_status(self, tx_id: bytes) -> str | None:
        """For a tx that is not committed: "pending" if it is in this node's
        mempool, the reason it was dropped (e.g. "expired") if it was dropped
        recently, else None."""

    def get_block(self, height: int) -> CommittedBlock | None: ...

    def get_block_header(self, height: int) -> tuple[BlockHeader, int] | None:
        """A committed block's header and tx count, its txs not decoded."""

    def height(self) -> int: ...

    def get_state(self, contract: str, key: str) -> tuple[Any, int] | None:
        """(value, height at which it was read) or None if the key is absent."""

    def state_reader(self) -> CommittedState:
        """Committed state at the current height for contract queries: point reads,
        bounded ordered scans (Store.scan_state) and the directory of organisations
        (the ChainConfig in force)."""

    def config_at(self, height: int | None) -> tuple[ChainConfig, int] | None:
        """The consortium configuration in force after committed block `height`
        (None: the last one) and that height; None if `height` is not committed."""

    def prove(self, kind: str, args: tuple) -> ProofAnswer:
        """A proof file: kind "tx" (tx id), "state" (contract, "TABLE/KEY",
        height or None: the newest stable checkpoint) or "receipt" (fiscal
        code, number; as of the newest stable checkpoint)."""

    def account(self, public_key: bytes) -> Account | None:
        """The account that signs with this key, or signed with it before a key
        rotation (name, organisation, roles), in the configuration in force."""

    def organisations(self) -> tuple[Organisation, ...]:
        """Every organisation of the configuration in force, with its display name."""

    def validators(self) -> list[dict[str, Any]]:
        """JSON-ready: name, org, public_key (hex), p2p, api, connected (bool), primary (bool),
        last_error (why the last attempt to connect to it failed, or None).
        In index order: a vote in a certificate of the next block names an entry."""

    def validator_names_at(self, height: int) -> tuple[str, ...]:
        """The names of the validators that decided block `height`, in index
        order (its certificate's votes name them by index)."""

    def reserve_subscription(self) -> BlockSubscription | None:
        """A place among the block subscribers, or None when the node already
        serves as many as it will.  Reserved at once, so concurrent requests
        never exceed the cap."""

    def metrics_text(self) -> bytes:
        """Prometheus text exposition of the node's metrics."""
