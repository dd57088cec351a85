"""The mempool: admitted transactions waiting to be ordered.

Every tx is checked once on the way in (decode happened earlier; here: chain,
sender, validity window, duplicate, signature) and is then trusted by this node
until it commits or expires, so each signature is verified once per node.
The sender is judged under the committed consortium configuration (`config()`,
the chain's) at the wall-clock time: a key that expires or is revoked later
is refused by execution, with a receipt.

Queues and indexes, each updated in O(1) per tx:
  ready      admitted, not in any proposal this node knows of (insertion order:
             FIFO fairness for proposals);
  in_flight  ids carried by a pre-prepare this node accepted, grouped by seq,
             whether or not the tx is in this pool yet: one that arrives
             later (gossip lags behind consensus under load) must not become
             ready, or a later proposal would carry it twice;
  offers     every id, least recently handed to a primary first (the relay
             re-offers txs that stay pending: node.core.tx_relay);
  expiry     ids by valid_until, so the txs that expire when a block commits
             are found without scanning the pool;
  records    each tx by its exact record bytes: a proposal's txs are looked up
             here by the bytes the primary sent (ledger.block.Proposal.decode),
             so a backup neither decodes nor hashes again a tx it admitted.
A tx leaves the pool when its block commits or when the chain passes its
valid_until (remembered for a while as dropped, so a client asking about it
learns it expired).  If the block at a seq turns out different (a view change
made it null, or another proposal won), the txs we had marked for that seq go
back to `ready`.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable

from ledger import admission
from ledger.consortium import ChainConfig
from ledger.tx import Transaction

MAX_REMEMBERED_SIGNATURES = 100_000
MAX_REMEMBERED_DROPS = 50_000      # dropped tx ids a client can still ask about
# Txs looked at per re-offer beyond the ones returned (in-flight ones are skipped).
OFFER_SCAN_FACTOR = 4


@dataclass(slots=True)
class _Entry:
    tx: Transaction
    size: int
    admitted_at: float      # monotonic seconds, for commit-latency metrics
    handed_at: float        # when this node last handed it to a primary (or relayed it)


@dataclass(frozen=True, slots=True)
class Drained:
    """What a committed block took out of the pool."""
    committed: list[_Entry]     # its txs that were waiting here (for latency metrics)
    expired: list[bytes]        # ids that can no longer enter any block


class Mempool:
    def __init__(self, config: Callable[[], ChainConfig], is_committed: Callable[[bytes], bool], *,
                 max_txs: int, max_bytes: int) -> None:
        self._config = config
        self._is_committed = is_committed
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self._entries: dict[bytes, _Entry] = {}
        self._ready: dict[bytes, None] = {}
        self._in_flight: dict[int, list[bytes]] = {}      # seq -> ids (pooled or not)
        self._in_flight_at: dict[bytes, int] = {}         # id -> the seq holding it
        self._offers: dict[bytes, None] = {}
        self._expiry: dict[int, dict[bytes, None]] = {}   # valid_until -> ids
        self._expiry_heights: list[int] = []              # heap of the keys of _expiry
        self._records: dict[bytes, Transaction] = {}      # record bytes -> pooled tx
        self._bytes = 0
        # tx id -> signature this node checked outside admission (a proposal that
        # arrived before the gossip did): admission then skips the check.  The
        # signature is compared too: the id does not cover it.
        # Bounded, oldest out first.  OrderedDict, not dict: evicting a dict's
        # first key by next(iter(d)) walks over every key deleted before it
        # (until the next resize), ~38 us per eviction at 100k entries:
        # measured as 7 % of a backup's CPU at saturation.
        self._verified: OrderedDict[bytes, bytes] = OrderedDict()
        self._dropped: OrderedDict[bytes, str] = OrderedDict()   # id -> reason, oldest first

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

    def dropped_reason(self, tx_id: bytes) -> str | None:
        """Why this node dropped an admitted tx (e.g. "expired"), if it did so
        recently (the record is bounded)."""
        return self._dropped.get(tx_id)

    # -- admission -----------------------------------------------------------------
    def precheck(self, tx: Transaction, height: int) -> str | None:
        """admit()'s checks before the signature (duplicate, chain, sender,
        validity window), so that a caller checking signatures elsewhere (a
        worker pool) checks only txs that would be admitted."""
        if tx.id in self._entries or self._is_committed(tx.id):
            return admission.DUPLICATE
        return admission.problem(tx, height, self._config(), int(time.time() * 1000))

    def admit(self, tx: Transaction, height: int, now: float, size: int | None = None,
              signature_ok: bool | None = None, prechecked: bool = False) -> str | None:
        """Admit `tx` (checked against the chain at `height`); None or the reason
        it was refused (an ledger.admission reason string).  `signature_ok`:
        the caller checked the signature already (None: check it here, unless
        this node did before).  `prechecked`: the caller's precheck passed at
        this same height, so only what may have changed since is checked (the
        tx entered the pool meanwhile)."""
        tx_id = tx.id
        if prechecked:
            problem = admission.DUPLICATE if tx_id in self._entries else None
        else:
            problem = self.precheck(tx, height)
        if problem:
            return problem
        if size is None:
            size = tx.encoded_size
        if len(self._entries) >= self.max_txs or self._bytes + size > self.max_bytes:
            return admission.MEMPOOL_FULL
        if self._verified.get(tx_id) == tx.signature:
            del self._verified[tx_id]        # from now on the entry says it is verified
        elif not (tx.verify_signature() if signature_ok is None else signature_ok):
            return admission.BAD_SIGNATURE
        self._entries[tx_id] = _Entry(tx, size, now, now)
        self._records[tx.record_bytes] = tx
        if tx_id not in self._in_flight_at:
            self._ready[tx_id] = None
        self._offers[tx_id] = None
        bucket = self._expiry.get(tx.valid_until)
        if bucket is None:
            bucket = self._expiry[tx.valid_until] = {}
            heapq.heappush(self._expiry_heights, tx.valid_until)
        bucket[tx_id] = None
        self._bytes += size
        return None

    def tx_by_record(self, record: bytes) -> Transaction | None:
        """The pooled tx whose record is exactly these bytes (decoded, its id
        computed and its signature verified when it was admitted)."""
        return self._records.get(record)

    def is_pending(self, tx: Transaction) -> bool:
        """Admitted here with this very signature, and not committed since
        (a commit takes its txs out of the pool): no need to ask the store
        or to verify it."""
        entry = self._entries.get(tx.id)
        return entry is not None and (entry.tx is tx or entry.tx.signature == tx.signature)

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
            self._verified.popitem(last=False)

    # -- proposals -----------------------------------------------------------------
    def take(self, seq: int, max_txs: int, max_bytes: int) -> list[Transaction]:
        """Up to `max_txs` / `max_bytes` ready txs, oldest first, for a proposal
        at `seq`: only those that may enter block `seq` (with pipelining seq may
        be beyond height + 1, so a tx that is still valid for the next block may
        already be too old for this one; it stays ready for a lower seq a view
        change may re-open, and leaves when the chain passes its valid_until).
        The txs taken stop being ready until mark_in_flight/committed decides
        their fate."""
        out: list[Transaction] = []
        total = 0
        config = self._config()
        for tx_id in self._ready:
            entry = self._entries[tx_id]
            if len(out) >= max_txs or total + entry.size > max_bytes:
                break
            if admission.window_problem(entry.tx, seq - 1, config):
                continue
            out.append(entry.tx)
            total += entry.size
        for tx in out:
            del self._ready[tx.id]
        return out

    def mark_in_flight(self, seq: int, tx_ids: Iterable[bytes]) -> None:
        """A proposal for `seq` carrying these txs was accepted; do not propose
        them again while it is in flight (also those not in this pool yet)."""
        ids = list(tx_ids)
        previous = self._in_flight.pop(seq, None)
        if previous:
            # A different proposal for the same seq (new view): the old one's
            # txs are no longer held by it.
            self._release(previous, seq)
        in_flight_at = self._in_flight_at
        for tx_id in ids:
            in_flight_at[tx_id] = seq
            self._ready.pop(tx_id, None)
        self._in_flight[seq] = ids

    def committed(self, seq: int, tx_ids: Iterable[bytes]) -> Drained:
        """Block `seq` committed with these txs: drop them, put back txs this
        node had seen proposed at `seq` that did not make it, and drop the txs
        that cannot enter block seq + 1 any more (valid_until <= seq)."""
        removed = []
        for tx_id in tx_ids:
            entry = self._remove(tx_id)
            if entry is not None:
                removed.append(entry)
        for stale_seq in [s for s in self._in_flight if s <= seq]:
            self._release(self._in_flight.pop(stale_seq), stale_seq)
        return Drained(removed, self._expire(seq))

    def _expire(self, height: int) -> list[bytes]:
        """Drop every tx with valid_until <= height: O(expired + buckets passed)."""
        expired = []
        heights = self._expiry_heights
        while heights and heights[0] <= height:
            bucket = self._expiry.pop(heapq.heappop(heights), None)
            if not bucket:
                continue
            for tx_id in list(bucket):
                self._remove(tx_id)
                self._remember_dropped(tx_id, admission.EXPIRED)
                expired.append(tx_id)
        return expired

    def _remove(self, tx_id: bytes) -> _Entry | None:
        entry = self._entries.pop(tx_id, None)
        if entry is not None:
            self._records.pop(entry.tx.record_bytes, None)
            self._ready.pop(tx_id, None)
            del self._offers[tx_id]
            valid_until = entry.tx.valid_until
            bucket = self._expiry.get(valid_until)
            if bucket is not None:
                bucket.pop(tx_id, None)
                if not bucket:
                    del self._expiry[valid_until]   # its heap key is skipped when popped
            self._bytes -= entry.size
        return entry

    def _remember_dropped(self, tx_id: bytes, reason: str) -> None:
        self._dropped[tx_id] = reason
        if len(self._dropped) > MAX_REMEMBERED_DROPS:
            self._dropped.popitem(last=False)

    def release_all_in_flight(self) -> None:
        """Forget every in-flight mark (e.g. after block sync replaced the log)."""
        for seq, ids in list(self._in_flight.items()):
            self._release(ids, seq)
        self._in_flight.clear()

    def release_in_flight_except(self, seqs: set[int]) -> None:
        """Forget the in-flight marks of every seq not in `seqs` (a new view
        re-proposes only those; the proposals at the others are dead)."""
        for seq in [s for s in self._in_flight if s not in seqs]:
            self._release(self._in_flight.pop(seq), seq)

    def _release(self, tx_ids: Iterable[bytes], seq: int) -> None:
        """These ids are no longer held by the proposal at `seq`: the pooled
        ones are ready again unless another in-flight proposal holds them."""
        in_flight_at = self._in_flight_at
        for tx_id in tx_ids:
            if in_flight_at.get(tx_id) == seq:
                del in_flight_at[tx_id]
                if tx_id in self._entries:
                    self._ready[tx_id] = None

    # -- re-offering -----------------------------------------------------------------
    def due_for_offer(self, handed_before: float, now: float, limit: int) -> list[Transaction]:
        """Up to `limit` ready txs last handed to a primary at or before
        `handed_before`, least recently handed first; they count as handed
        `now`.  In-flight txs met on the way are skipped (the primary has
        them) and also count as handed.  O(txs looked at), at most a few
        times `limit`."""
        out: list[Transaction] = []
        seen: list[bytes] = []
        ready = self._ready
        entries = self._entries
        for tx_id in self._offers:
            entry = entries[tx_id]
            if (entry.handed_at > handed_before or len(out) >= limit
                    or len(seen) >= OFFER_SCAN_FACTOR * limit):
                break
            seen.append(tx_id)
            if tx_id in ready:
                out.append(entry.tx)
        offers = self._offers
        for tx_id in seen:       # to the back of the line
            del offers[tx_id]
            offers[tx_id] = None
            entries[tx_id].handed_at = now
        return out
