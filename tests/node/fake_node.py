"""A small in-memory NodeFacade for the HTTP API tests.

It keeps a mempool, commits blocks on demand (with real commit certificates
signed by the test validators) and feeds block subscribers through the
daemon's own BlockSubscribers (bounded channels, a reserved place each, a
subscriber that falls behind is closed).  Tests drive it directly (`commit`,
`drop`, `fail_next`) and can wait on its events (`waiting`,
`subscribers_changed`) instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from ledger import config_state
from ledger.block import GENESIS_HASH, Block, BlockHeader, tx_root
from ledger.consortium import ChainConfig
from ledger.contracts import CommittedState
from ledger.certificate import PHASE_COMMIT, CommitCertificate, Vote, vote_bytes
from ledger.crypto import HASH_LEN
from ledger.execution import receipt_root
from ledger.genesis import Account, Organisation
from ledger.receipt import Receipt
from ledger.tx import Transaction
from node.api.facade import (Admission, CommittedBlock, ProofAnswer, TxCommitted, TxDropped, TxOutcome,
                             TxRecord)
from node.core.commits import BlockSubscribers, Subscription
from node.metrics import NodeMetrics
from tests.factories import make_genesis
from tests.ledger.world import World, scan_dict

SUBSCRIBER_BUFFER = 16


class _WatchedSubscription:
    """A real Subscription that tells the fake when its place is given back."""

    def __init__(self, subscription: Subscription, on_close) -> None:
        self._subscription = subscription
        self._on_close = on_close

    def open(self):
        return self._subscription.open()

    def close(self) -> None:
        self._subscription.close()
        self._on_close()


class FakeNode:
    def __init__(self, n_validators: int = 4, world: World | None = None) -> None:
        self.genesis, self.validator_keys, self.account_keys = make_genesis(n_validators)
        self.chain_id = self.genesis.chain_id
        self.name = self.genesis.validators[0].name
        self.metrics = NodeMetrics()
        self.blocks: list[CommittedBlock] = []
        self.txs: dict[bytes, TxRecord] = {}
        self.mempool: dict[bytes, Transaction] = {}
        self.state: dict[tuple[str, str], Any] = {}
        self.dropped: dict[bytes, str] = {}
        self.mempool_capacity = 1_000_000
        self.fail_next: Exception | None = None   # raised by the next status() call
        self.sync: dict[str, Any] | None = None   # block sync progress to report
        self.subscribers = BlockSubscribers(limit=1000, buffer=SUBSCRIBER_BUFFER)
        self.subscribers_changed = trio.Event()   # set when a subscriber's place is given back
        self.waiting = trio.Event()                # set when someone awaits wait_settled
        self._settled = trio.Event()
        # Contract state for the contract query routes: tests run calls on it.
        self.world = World() if world is None else world

    # -- driving the fake from tests ---------------------------------------------

    def commit(self, txs: list[Transaction] | None = None,
               receipts: list[Receipt] | None = None, publish: bool = True) -> CommittedBlock:
        """Commit a block of `txs` (default: the whole mempool); `publish` it
        to block subscribers (False: as if committed between two looks)."""
        txs = list(self.mempool.values()) if txs is None else txs
        receipts = receipts or [Receipt(0, "", {"n": i}) for i in range(len(txs))]
        height = len(self.blocks) + 1
        prev = self.blocks[-1].block.hash if self.blocks else GENESIS_HASH
        header = BlockHeader(self.chain_id, height, 0, prev, tx_root(txs),
                             bytes(HASH_LEN), receipt_root(txs, receipts), self.name,
                             1_700_000_000_000 + height)
        digest = header.proposal_digest()
        message = vote_bytes(PHASE_COMMIT, self.chain_id, 0, height, digest)
        votes = tuple(Vote(i, self.validator_keys[v.name].sign(message))
                      for i, v in enumerate(self.genesis.validators[:self.genesis.quorum]))
        committed = CommittedBlock(Block(header, tuple(txs)), CommitCertificate(0, height, digest, votes))
        self.blocks.append(committed)
        for index, (tx, receipt) in enumerate(zip(txs, receipts)):
            self.mempool.pop(tx.id, None)
            # As the store's tx index: a tx id keeps its first commit.
            self.txs.setdefault(tx.id, TxRecord(tx, height, index, receipt))
            if tx.contract == "kv" and isinstance(tx.args, dict) and "key" in tx.args:
                self.state[("kv", str(tx.args["key"]))] = tx.args.get("value")
        self.metrics.block_committed(height, len(txs))
        self._wake()
        if publish:
            self.subscribers.publish(committed)
        return committed

    def drop(self, tx: Transaction, reason: str = "expired") -> None:
        """The node lets an admitted tx go without committing it."""
        self.mempool.pop(tx.id, None)
        self.dropped[tx.id] = reason
        self._wake()

    def _wake(self) -> None:
        self._settled.set()
        self._settled = trio.Event()

    # -- NodeFacade ----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        last = self.blocks[-1].block.hash.hex() if self.blocks else GENESIS_HASH.hex()
        return {"chain_id": self.chain_id, "node": self.name, "role": "validator", "height": self.height(),
                "last_block_hash": last, "view": 0, "primary": self.name,
                "peers": [v.name for v in self.genesis.validators[1:]],
                "mempool": len(self.mempool), "syncing": self.sync is not None,
                "genesis_hash": self.genesis.hash.hex(), "time": time.time(), "sync": self.sync}

    def admit(self, txs: list[Transaction]) -> list[Admission]:
        answers = []
        for tx in txs:
            if tx.chain_id != self.chain_id:
                answers.append(Admission(tx.id, False, "wrong_chain"))
            elif not tx.verify_signature():
                answers.append(Admission(tx.id, False, "bad_signature"))
            elif tx.id in self.mempool or tx.id in self.txs:
                answers.append(Admission(tx.id, False, "duplicate"))
            elif len(self.mempool) >= self.mempool_capacity:
                answers.append(Admission(tx.id, False, "mempool_full"))
            else:
                self.mempool[tx.id] = tx
                answers.append(Admission(tx.id, True))
        return answers

    async def submit(self, txs: list[Transaction]) -> list[Admission]:
        await trio.sleep(0)
        return self.admit(txs)

    async def wait_settled(self, tx_ids: list[bytes], timeout_s: float) -> dict[bytes, TxOutcome]:
        self.waiting.set()
        with trio.move_on_after(timeout_s):
            while not all(i in self.txs or i in self.dropped for i in tx_ids):
                await self._settled.wait()
        out: dict[bytes, TxOutcome] = {}
        for i in tx_ids:
            if i in self.txs:
                record = self.txs[i]
                out[i] = TxCommitted(record.height, record.index, record.receipt)
            elif i in self.dropped:
                out[i] = TxDropped(self.dropped[i])
        return out

    def get_tx(self, tx_id: bytes) -> TxRecord | None:
        return self.txs.get(tx_id)

    def uncommitted_status(self, tx_id: bytes) -> str | None:
        return "pending" if tx_id in self.mempool else self.dropped.get(tx_id)

    def get_block(self, height: int) -> CommittedBlock | None:
        return self.blocks[height - 1] if 1 <= height <= len(self.blocks) else None

    def get_block_header(self, height: int) -> tuple[BlockHeader, int] | None:
        committed = self.get_block(height)
        return None if committed is None else (committed.block.header, len(committed.block.txs))

    def height(self) -> int:
        return len(self.blocks)

    def get_state(self, contract: str, key: str) -> tuple[Any, int] | None:
        if (contract, key) not in self.state:
            return None
        return self.state[(contract, key)], self.height()

    def state_reader(self) -> CommittedState:
        chain = self.world.chain
        return CommittedState(chain.state.get, scan_dict(chain.state), chain.height, chain.config)

    def config_at(self, height: int | None) -> tuple[ChainConfig, int] | None:
        chain = self.world.chain
        height = chain.height if height is None else height
        if height > chain.height:
            return None
        return config_state.config_at(self.world.genesis.config, scan_dict(chain.state), height), height

    def prove(self, kind: str, args: tuple) -> ProofAnswer:
        return ProofAnswer(kind, problem="the fake node keeps no checkpoints")

    def account(self, public_key: bytes) -> Account | None:
        return self.genesis.account_by_key(public_key)

    def organisations(self) -> tuple[Organisation, ...]:
        return self.genesis.organisations

    def validator_names_at(self, height: int) -> tuple[str, ...]:
        return tuple(v.name for v in self.genesis.validators)     # one epoch

    def validators(self) -> list[dict[str, Any]]:
        return [{"name": v.name, "org": v.org, "public_key": v.public_key.hex(),
                 "p2p": f"{v.p2p[0]}:{v.p2p[1]}", "api": f"{v.api[0]}:{v.api[1]}",
                 "connected": i > 0, "primary": i == 0, "last_error": None}
                for i, v in enumerate(self.genesis.validators)]

    def reserve_subscription(self) -> _WatchedSubscription | None:
        subscription = self.subscribers.reserve()
        return None if subscription is None else _WatchedSubscription(subscription, self._released)

    def _released(self) -> None:
        self.subscribers_changed.set()
        self.subscribers_changed = trio.Event()

    def metrics_text(self) -> bytes:
        return self.metrics.render()
