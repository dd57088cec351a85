"""The mempool: admitted transactions waiting to be ordered.

Every tx is checked once on the way in (decode happened earlier; here: chain,
sender, validity window, duplicate, signature) and is then trusted by this node
until it commits or expires, so each signature is verified once per node.

Two queues, both insertion-ordered (FIFO fairness):
  ready     admitted, not in any proposal this node knows of;
  in_flight ids carried by a pre-prepare this node accepted, grouped by seq.
A tx leaves the pool when its block commits.  If the block at a seq turns out
different (a view change made it null, or another proposal won), the txs we
had marked for that seq go back to `ready`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from ledger import admission
from ledger.genesis import Genesis
from ledger.tx import Transaction

MAX_REMEMBERED_SIGNATURES = 100_000


@dataclass(slots=True)
class _Entry:
    tx: Transaction
    size: int
    admitted_at: float      # monotonic seconds, for commit-latency metrics


class Mempool:
    def __init__(self, genesis: Genesis, is_committed: Callable[[bytes], bool], *,
                 max_txs: int, max_bytes: int) -> None:
        self._genesis = genesis
        self._is_committed = is_committed
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self._entries: dict[bytes, _Entry] = {}
        self._ready: dict[bytes, None] = {}
        self._in_flight: dict[int, list[bytes]] = {}
        self._bytes = 0
        # tx id -> signature this node checked outside admission (a proposal that
        # arrived before the gossip did): admission then skips the check.  The
        # signature is compared too: the id does not cover it.
        self._verified: dict[bytes, bytes] = {}

    # -- size ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._entries

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    # -- admission -----------------------------------------------------------------
    def admit(self, tx: Transaction, height: int, now: float, size: int | None = None) -> str | None:
        """Admit `tx` (checked against the chain at `height`); None or the reason
        it was refused (an ledger.admission reason string)."""
        tx_id = tx.id
        if tx_id in self._entries or self._is_committed(tx_id):
            return admission.DUPLICATE
        problem = (admission.static_problem(tx, self._genesis)
                   or admission.window_problem(tx, height, self._genesis))
        if problem:
            return problem
        if size is None:
            size = tx.encoded_size
        if len(self._entries) >= self.max_txs or self._bytes + size > self.max_bytes:
            return admission.MEMPOOL_FULL
        if self._verified.get(tx_id) == tx.signature:
            del self._verified[tx_id]        # from now on the entry says it is verified
        elif not tx.verify_signature():
            return admission.BAD_SIGNATURE
        self._entries[tx_id] = _Entry(tx, size, now)
        self._ready[tx_id] = None
        self._bytes += size
        return None

    def knows_valid(self, tx: Transaction) -> bool:
        """True if this node verified this tx's signature already (the same
        signature bytes: a tx id does not cover the signature)."""
        tx_id = tx.id
        entry = self._entries.get(tx_id)
        if entry is not None:
            return entry.tx.signature == tx.signature
        return self._verified.get(tx_id) == tx.signature

    def remember_verified(self, tx: Transaction) -> None:
        """`tx`'s signature was checked outside admission (bounded memory)."""
        self._verified[tx.id] = tx.signature
        if len(self._verified) > MAX_REMEMBERED_SIGNATURES:
            del self._verified[next(iter(self._verified))]

    def pending(self, limit: int, max_bytes: int | None = None) -> list[Transaction]:
        """Up to `limit` txs (and `max_bytes`) not yet in a proposal this node
        knows of, oldest first; they stay ready."""
        out: list[Transaction] = []
        total = 0
        for tx_id in self._ready:
            entry = self._entries[tx_id]
            if len(out) >= limit or (max_bytes is not None and total + entry.size > max_bytes):
                break
            out.append(entry.tx)
            total += entry.size
        return out

    # -- proposals -----------------------------------------------------------------
    def take(self, max_txs: int, max_bytes: int) -> list[Transaction]:
        """pending(), for a new proposal: the txs stop being ready until
        mark_in_flight/committed decides their fate."""
        out = self.pending(max_txs, max_bytes)
        for tx in out:
            del self._ready[tx.id]
        return out

    def mark_in_flight(self, seq: int, tx_ids: Iterable[bytes]) -> None:
        """A proposal for `seq` carrying these txs was accepted; do not propose
        them again while it is in flight."""
        ids = []
        for tx_id in tx_ids:
            if tx_id in self._entries:
                self._ready.pop(tx_id, None)
                ids.append(tx_id)
        previous = self._in_flight.get(seq)
        if previous:
            # A different proposal for the same seq (new view): the old one's
            # txs are no longer held by it.
            keep = set(ids)
            self._return_to_ready(t for t in previous if t not in keep)
        self._in_flight[seq] = ids

    def committed(self, seq: int, tx_ids: Iterable[bytes]) -> list[_Entry]:
        """Block `seq` committed with these txs: drop them, and put back txs this
        node had seen proposed at `seq` that did not make it.  Returns the removed
        entries (for latency metrics)."""
        removed = []
        for tx_id in tx_ids:
            entry = self._entries.pop(tx_id, None)
            if entry is not None:
                self._ready.pop(tx_id, None)
                self._bytes -= entry.size
                removed.append(entry)
        for stale_seq in [s for s in self._in_flight if s <= seq]:
            self._return_to_ready(self._in_flight.pop(stale_seq))
        return removed

    def release_all_in_flight(self) -> None:
        """Forget every in-flight mark (e.g. after block sync replaced the log)."""
        for ids in self._in_flight.values():
            self._return_to_ready(ids)
        self._in_flight.clear()

    def _return_to_ready(self, tx_ids: Iterable[bytes]) -> None:
        for tx_id in tx_ids:
            if tx_id in self._entries:
                self._ready[tx_id] = None

    def evict_invalid(self, height: int) -> int:
        """Drop txs that expired or were committed elsewhere (after block sync)."""
        doomed = [tx_id for tx_id, e in self._entries.items()
                  if self._is_committed(tx_id)
                  or admission.window_problem(e.tx, height, self._genesis) == admission.EXPIRED]
        for tx_id in doomed:
            entry = self._entries.pop(tx_id)
            self._ready.pop(tx_id, None)
            self._bytes -= entry.size
        return len(doomed)
