"""Admitting transactions and handing them to the validator that must propose them.

Txs come from API clients (`admit(..., relay=True)`) and from peers (TXS
messages, `relay=False`: the validators are fully meshed, so a peer's relay
reached every validator already).  Txs go to the validators only: observers
propose nothing; an observer relays its clients' txs to the validators like
a validator does.  Admission checks signatures (the one expensive step, ~60 us
per tx), so `admit_chunked` admits large batches a chunk at a time: the cheap
checks on the event loop, the signatures of the txs that pass them on the
node's worker threads (node.core.verify_pool), then the insertion, which
checks again what may have changed meanwhile (a duplicate, a full pool).
Admitted client txs are buffered for a few milliseconds and sent to every
peer in frames of up to MAX_GOSSIP_TXS, so a burst of submissions shares
frames.

One relay is not enough: a peer whose mempool was full dropped the tx, a
peer that restarted lost it, a new primary may never have seen it.  So txs
that stay pending are re-offered to the current primary (the one that must
propose them): every REOFFER_INTERVAL_S, the ready txs last handed to a
primary at least REOFFER_AGE_S ago, at most MAX_REOFFER_TXS of them, least
recently handed first, until they commit or expire (node.core.mempool).
Not while the chain commits full blocks: the primary then has a backlog of
its own, every tx re-offered costs it a decode for nothing, and its progress
keeps the view-change timer from firing anyway.

Suspecting the primary: the core starts its view-change timer when told that
requests are pending (consensus.events.RequestsPending).  This node says so
only for txs the primary has had a fair chance to receive: right after
handing it pending txs (it then has the view-change timeout to propose them),
or when the primary has no session with this node at all (a crashed primary
is suspected as soon as txs wait for it).  Announcing txs
the primary never got would start a view change nobody else joins.  An
observer runs no core and does not follow views: its `primary()` is its best
guess (the proposer of the last block it committed), or None, and then
pending txs are re-offered to every validator.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

import trio

from ledger.tx import Transaction
from node.api.facade import Admission
from node.core import peer_messages
from node.core.chain import Chain
from node.core.mempool import Mempool
from node.core.verify_pool import VerifyPool
from node.metrics import NodeMetrics
from node.transport.peers import PeerManager

FLUSH_DELAY_S = 0.005
ADMIT_CHUNK = 128             # txs admitted between two yields to the event loop (~8 ms)
REOFFER_INTERVAL_S = 0.5
REOFFER_AGE_S = 2.0           # a tx handed to a primary this recently is not re-offered
MAX_REOFFER_TXS = 1000        # per interval: bounds the duplicates a busy primary decodes


class TxRelay:
    def __init__(self, mempool: Mempool, chain: Chain, peers: PeerManager, metrics: NodeMetrics, *,
                 me: bytes, validators: Callable[[], Iterable[bytes]],
                 primary: Callable[[], bytes | None], last_commit: Callable[[], tuple[float, int]],
                 on_admitted: Callable[[], None],
                 on_pending_with_primary: Callable[[], None],
                 verifier: VerifyPool | None = None) -> None:
        """`me`, `validators()` and `primary()` are node keys; `last_commit()`:
        (monotonic time, tx count) of the last committed block; `verifier`: the
        worker pool admit_chunked checks signatures on (None: on the event loop)."""
        self._mempool = mempool
        self._verifier = verifier
        self._chain = chain
        self._peers = peers
        self._metrics = metrics
        self._me = me
        self._validators = validators
        self._primary = primary
        self._last_commit = last_commit
        self._on_admitted = on_admitted
        self._on_pending_with_primary = on_pending_with_primary
        self._buffer: list[list] = []
        self._ready = trio.Event()

    # -- admission ---------------------------------------------------------------------
    def admit(self, txs: list[Transaction | None], *, relay: bool,
              signatures: dict[int, bool] | None = None,
              prechecked_at: int | None = None) -> list[Admission]:
        """Admit txs to the mempool (None: a tx that did not decode); `relay`
        the admitted ones to every peer if they came from a client.
        `signatures`: position in `txs` -> whether its signature was found
        valid already (the others are checked here), after those txs passed
        Mempool.precheck at height `prechecked_at` (if the chain is still
        there, nothing that precheck reads has changed)."""
        height = self._chain.height
        now = time.monotonic()
        results = []
        admitted = 0
        checked = signatures or {}
        fresh = prechecked_at == height
        for k, tx in enumerate(txs):
            if tx is None:
                results.append(Admission(b"", False, "malformed"))
                continue
            ok = checked.get(k)
            reason = self._mempool.admit(tx, height, now, signature_ok=ok,
                                         prechecked=fresh and ok is not None)
            if reason is None:
                admitted += 1
                if relay:
                    self._buffer.append(tx.to_record())
            else:
                self._metrics.mempool_rejected(reason)
            results.append(Admission(tx.id, reason is None, reason))
        if admitted:
            if relay:
                self._ready.set()
            self._on_admitted()
            primary = self._primary()
            if primary is not None and primary != self._me and not self._peers.is_connected(primary):
                self._on_pending_with_primary()    # it cannot get them from us at all
        return results

    async def admit_chunked(self, txs: list[Transaction | None], *, relay: bool) -> list[Admission]:
        """admit(), ADMIT_CHUNK txs at a time, the signatures of each chunk
        checked on the worker pool, so a 10,000-tx batch never holds the
        event loop for long."""
        results: list[Admission] = []
        for start in range(0, len(txs), ADMIT_CHUNK):
            chunk = txs[start:start + ADMIT_CHUNK]
            if self._verifier is None:
                if start:
                    await trio.sleep(0)
                results += self.admit(chunk, relay=relay)
                continue
            height = self._chain.height
            mempool = self._mempool
            todo = [k for k, tx in enumerate(chunk) if tx is not None
                    and mempool.precheck(tx, height) is None and not mempool.knows_valid(tx)]
            verdicts = await self._verifier.verify([chunk[k] for k in todo])
            results += self.admit(chunk, relay=relay, signatures=dict(zip(todo, verdicts)),
                                  prechecked_at=height)
        return results

    # -- relaying ----------------------------------------------------------------------
    async def run(self) -> None:
        """Flush buffered client txs to every validator."""
        while True:
            await self._ready.wait()
            await trio.sleep(FLUSH_DELAY_S)   # let a burst of submissions share frames
            self._ready = trio.Event()
            buffer, self._buffer = self._buffer, []
            self._send_txs(None, buffer)

    async def reoffer_loop(self) -> None:
        while True:
            await trio.sleep(REOFFER_INTERVAL_S)
            self.reoffer(time.monotonic())

    def reoffer(self, now: float) -> int:
        """Hand the current primary the txs that stayed pending since they
        were last handed to one; the number handed."""
        primary = self._primary()
        if primary == self._me:
            return 0     # proposed from here; the core watches its own proposals
        committed_at, tx_count = self._last_commit()
        full_block = self._chain.config.params_at(self._chain.height).max_block_txs   # governed
        if tx_count >= full_block and now - committed_at < REOFFER_AGE_S:
            return 0     # full blocks: the primary is working through a backlog
        due = self._mempool.due_for_offer(now - REOFFER_AGE_S, now, MAX_REOFFER_TXS)
        if not due:
            return 0
        handed = self._send_txs(primary, [tx.to_record() for tx in due])   # None: every validator
        if handed:
            self._metrics.txs_reoffered(len(due))
        # Either the primary has them now, or it cannot be reached at all:
        # both are fair grounds for the core to expect progress.
        self._on_pending_with_primary()
        return len(due) if handed else 0

    def _send_txs(self, peer: bytes | None, records: list[list]) -> bool:
        """TXS frames to `peer` (None: every validator); False if `peer` has no
        session, or (None) no validator has one."""
        ok = True
        validators = None if peer is not None else tuple(self._validators())
        for i in range(0, len(records), peer_messages.MAX_GOSSIP_TXS):
            chunk = records[i:i + peer_messages.MAX_GOSSIP_TXS]
            if peer is None:
                ok = self._peers.broadcast(peer_messages.TXS, chunk, to=validators) > 0 and ok
            else:
                ok = self._peers.send(peer, peer_messages.TXS, chunk) and ok
        return ok
