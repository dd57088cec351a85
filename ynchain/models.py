"""Typed results of the node's API (frozen; built from its JSON answers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Receipt:
    status: str              # "ok" or the refusal code, e.g. "conflict"
    code: int
    message: str
    result: Any

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class Submission:
    """The node's answer to one submitted tx (accepted into its mempool or not)."""
    tx_id: str | None
    accepted: bool
    reason: str | None = None       # why it was refused


@dataclass(frozen=True, slots=True)
class TxResult:
    """Where a tx stands: "committed" (with height, index and receipt),
    "pending", or why the node dropped it (e.g. "expired")."""
    tx_id: str
    status: str
    height: int | None = None
    index: int | None = None
    receipt: Receipt | None = None

    @property
    def committed(self) -> bool:
        return self.status == "committed"


@dataclass(frozen=True, slots=True)
class Status:
    chain_id: str
    height: int
    view: int
    node: str
    raw: dict[str, Any]             # every field /status sends, for what is not typed here


@dataclass(frozen=True, slots=True)
class BlockEvent:
    """A committed block, as the block event stream announces it."""
    height: int
    hash: str
    txs: int
    proposer: str
    timestamp_ms: int
    tx_ids: tuple[str, ...] | None = None     # with tx_ids=True only


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One tx of a batch: the node's admission and, when waited for, where it stands."""
    submission: Submission
    result: TxResult | None = None
