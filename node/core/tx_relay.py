"""Admitting transactions and relaying them to the other validators.

Txs come from API clients (`admit(..., relay=True)`) and from peers (TXS
messages, `relay=False`: the mesh is full, so a peer's relay reached everyone
already).  Admitted client txs are buffered for a few milliseconds and sent to
every peer in frames of up to MAX_GOSSIP_TXS, so a burst of submissions shares
frames.  A peer that (re)connects is offered the txs still waiting here: it may
have lost its mempool, and if it becomes primary it must know them.
"""

from __future__ import annotations

import time
from typing import Callable

import trio

from ledger.tx import Transaction
from node.api.facade import Admission
from node.core import peer_messages
from node.core.chain import Chain
from node.core.mempool import Mempool
from node.metrics import NodeMetrics
from node.transport.peers import PeerManager

FLUSH_DELAY_S = 0.005
MAX_RESYNC_TXS = 20_000       # pending txs handed to a peer when it (re)connects


class TxRelay:
    def __init__(self, mempool: Mempool, chain: Chain, peers: PeerManager, metrics: NodeMetrics, *,
                 on_admitted: Callable[[], None]) -> None:
        self._mempool = mempool
        self._chain = chain
        self._peers = peers
        self._metrics = metrics
        self._on_admitted = on_admitted
        self._buffer: list[list] = []
        self._ready = trio.Event()

    def admit(self, txs: list[Transaction | None], *, relay: bool) -> list[Admission]:
        """Admit txs to the mempool (None: a tx that did not decode); `relay`
        the admitted ones to every peer if they came from a client."""
        height = self._chain.height
        now = time.monotonic()
        results = []
        admitted = 0
        for tx in txs:
            if tx is None:
                results.append(Admission(b"", False, "malformed"))
                continue
            reason = self._mempool.admit(tx, height, now)
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
        return results

    async def run(self) -> None:
        """Flush buffered client txs to every peer."""
        while True:
            await self._ready.wait()
            await trio.sleep(FLUSH_DELAY_S)   # let a burst of submissions share frames
            self._ready = trio.Event()
            buffer, self._buffer = self._buffer, []
            for i in range(0, len(buffer), peer_messages.MAX_GOSSIP_TXS):
                self._peers.broadcast(peer_messages.TXS, buffer[i:i + peer_messages.MAX_GOSSIP_TXS])

    def offer_pending(self, peer: int) -> None:
        """Hand a (re)connected peer the txs still waiting here."""
        pending = [tx.to_record() for tx in self._mempool.pending(MAX_RESYNC_TXS)]
        for i in range(0, len(pending), peer_messages.MAX_GOSSIP_TXS):
            self._peers.send(peer, peer_messages.TXS, pending[i:i + peer_messages.MAX_GOSSIP_TXS])
