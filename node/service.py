"""The node as the HTTP API sees it: node.api.facade.NodeFacade over the
node's parts (store, replica, mempool, relay, commit fan-out, peers, sync).

Read-only queries go to the store; the only writes are submissions, which go
through the relay's admission like txs from peers do.  Whatever a client asks
for in bulk is done in chunks that yield to the event loop (admission, waiting
for commits, reading their results from the tx index): a node serving one
large request keeps answering others and keeps its peer sessions.  GET
/txs/{id} reads only that tx's bytes (the tx index locates them).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import trio

from ledger.consortium import ACCOUNT_KEY, ChainConfig, address_text
from ledger.contracts import CommittedState
from ledger.execution import query_state
from ledger.block import Block, BlockHeader
from ledger.genesis import Account, Genesis, Organisation
from ledger.tx import Transaction
from node.api.facade import (Admission, CommittedBlock, ProofAnswer, TxCommitted, TxDropped, TxOutcome,
                             TxRecord)
from node.core.chain import Chain
from node.core.commits import CommitFanout, Subscription
from node.core.config_history import ConfigHistory
from node.core.mempool import Mempool
from node.core.proofs import ProofBuilder, ProofUnavailable
from node.core.sync import BlockSync
from node.core.tx_relay import TxRelay
from node.key_expiry import KeyExpiryWatch
from node.metrics import NodeMetrics
from node.transport.peers import PeerManager
from storage.base import Store

READ_CHUNK = 1024      # tx index lookups between two yields to the event loop


class NodeService:
    def __init__(self, genesis: Genesis, name: str, role: Callable[[], str], store: Store,
                 consensus_view: Callable[[], tuple[int, bytes | None]],
                 mempool: Mempool, relay: TxRelay, commits: CommitFanout, peers: PeerManager,
                 sync: BlockSync, metrics: NodeMetrics, *, chain: Chain, keys: KeyExpiryWatch,
                 config_history: ConfigHistory) -> None:
        """`consensus_view()`: (view, the primary's node key or None if unknown);
        `role()`: validator or observer (governance may change it)."""
        self.chain_id = genesis.chain_id
        self.name = name
        self._role = role
        self._genesis = genesis
        self._store = store
        self._consensus_view = consensus_view
        self._mempool = mempool
        self._relay = relay
        self._commits = commits
        self._peers = peers
        self._sync = sync
        self._metrics = metrics
        self._chain = chain
        self._keys = keys
        self._config_history = config_history
        self._proofs = ProofBuilder(genesis, store, self._config_history)

    def _node_name(self, key: bytes) -> str:
        node = self._chain.config.node_by_key(key)
        return node.name if node is not None else self._peers.name_of(key)

    def status(self) -> dict[str, Any]:
        view, primary = self._consensus_view()
        return {
            "chain_id": self.chain_id, "node": self.name, "role": self._role(),
            "height": self._store.last_height(),
            "last_block_hash": self._store.last_block_hash().hex(), "view": view,
            "primary": None if primary is None else self._node_name(primary),
            "peers": sorted(self._peers.name_of(k) for k in self._peers.connected()),
            "mempool": len(self._mempool), "syncing": self._sync.active,
            # For `ynchain node doctor`: same chain as its peers, clock skew, sync progress.
            "genesis_hash": self._genesis.hash.hex(), "time": round(time.time(), 3),
            "sync": self._sync.progress(),
            "key_expiry": self._keys.status(),
        }

    async def submit(self, txs: list[Transaction]) -> list[Admission]:
        return await self._relay.admit_chunked(txs, relay=True)

    async def wait_settled(self, tx_ids: list[bytes], timeout_s: float) -> dict[bytes, TxOutcome]:
        await self._commits.wait_for(tx_ids, self._settled, timeout_s)
        found: dict[bytes, TxOutcome] = {}
        for start in range(0, len(tx_ids), READ_CHUNK):
            if start:
                await trio.sleep(0)
            for tx_id in tx_ids[start:start + READ_CHUNK]:
                location = self._store.get_tx(tx_id)
                if location is not None:
                    found[tx_id] = TxCommitted(*location)
                elif (reason := self._mempool.dropped_reason(tx_id)) is not None:
                    found[tx_id] = TxDropped(reason)
        return found

    def _settled(self, tx_id: bytes) -> bool:
        return self._store.has_tx(tx_id) or self._mempool.dropped_reason(tx_id) is not None

    def get_tx(self, tx_id: bytes) -> TxRecord | None:
        found = self._store.get_committed_tx(tx_id)
        return None if found is None else TxRecord(*found)

    def uncommitted_status(self, tx_id: bytes) -> str | None:
        if tx_id in self._mempool:
            return "pending"
        return self._mempool.dropped_reason(tx_id)

    def get_block(self, height: int) -> CommittedBlock | None:
        block = self._store.get_block(height)
        if block is None:
            return None
        return CommittedBlock(block, self._store.get_certificate(height))

    def get_block_header(self, height: int) -> tuple[BlockHeader, int] | None:
        raw = self._store.get_block_bytes(height)
        return None if raw is None else Block.decode_header(raw)

    def height(self) -> int:
        return self._store.last_height()

    def get_state(self, contract: str, key: str) -> tuple[Any, int] | None:
        value = query_state(self._store.get_state, contract, key)
        return None if value is None else (value, self._store.last_height())

    def state_reader(self) -> CommittedState:
        return CommittedState(self._store.get_state, self._store.scan_state,
                              self._store.last_height(), self._chain.config)

    def config_at(self, height: int | None) -> tuple[ChainConfig, int] | None:
        last = self._store.last_height()
        if height is None or height == last:
            return self._chain.config, last
        if height > last:
            return None
        return self._config_history.at(height), height

    def prove(self, kind: str, args: tuple) -> ProofAnswer:
        builder = self._proofs
        try:
            if kind == "tx":
                return ProofAnswer(kind, builder.tx(*args), self._store.get_tx(args[0])[0])
            if kind == "state":
                data, height = builder.state(*args)
            else:
                data, height = builder.receipt(*args)
            return ProofAnswer(kind, data, height)
        except ProofUnavailable as exc:
            return ProofAnswer(kind, problem=str(exc), missing=exc.missing)

    def account(self, public_key: bytes) -> Account | None:
        config = self._chain.config
        found = config.account_by_key(public_key)
        retired = None if found is not None else config.retired_keys.get(public_key)
        if retired is not None and retired.kind == ACCOUNT_KEY:
            # Its txs from before a rotation still name the account that signed them.
            found = config.accounts.get(retired.name)
        return found

    def organisations(self) -> tuple[Organisation, ...]:
        return tuple(self._chain.config.organisations.values())

    def validator_names_at(self, height: int) -> tuple[str, ...]:
        return self._chain.config.epoch_of(height).names

    def validators(self) -> list[dict[str, Any]]:
        """The validators that vote on the next block, in index order."""
        config = self._chain.config
        connected = set(self._peers.connected())
        _, primary = self._consensus_view()
        me = self._peers.own_key
        out = []
        for name, key in config.epoch_of(self._store.last_height() + 1).validators:
            node = config.nodes.get(name)
            p2p, api = (address_text(node.p2p), address_text(node.api)) if node is not None else (None, None)
            out.append({"name": name, "org": node.org if node is not None else None,
                        "public_key": key.hex(), "p2p": p2p, "api": api,
                        "connected": key == me or key in connected, "primary": key == primary,
                        "last_error": self._peers.last_error(key)})
        return out

    def reserve_subscription(self) -> Subscription | None:
        return self._commits.subscribers.reserve()

    def metrics_text(self) -> bytes:
        return self._metrics.render()
