"""The committed chain as the node sees it: turning an ordered proposal into a
stored block, and checking blocks fetched from peers.

The single writer to the store: commits come from the consensus driver and
from block sync, both of which run synchronously on the node's event loop, so
they never interleave.  No trio here.

`Chain.config` is the consortium configuration in force after the last
committed block (ledger.consortium.ChainConfig): read from the state when the
chain is opened, replaced when a committed block changed it.  Blocks are
executed under it, and a synced block's certificate is checked against the
validator set of its height (`config.set_for_seq`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol

from ledger import admission, config_state
from ledger.block import Block, BlockHeader, Proposal
from ledger.certificate import CommitCertificate
from ledger.codec import DecodeError
from ledger.consortium import ChainConfig
from ledger.execution import ExecutionResult, execute_block
from ledger.genesis import Genesis
from ledger.merkle import EMPTY_ROOT
from ledger.receipt import Receipt
from ledger.tx import Transaction
from storage.base import Store
from storage.errors import CorruptStoreError


# How far ahead of this node's clock a proposed block time may be.  Contracts
# date receipts, votes, key expiries and proposal lifetimes by block time, so a
# faulty primary must not move it backwards or far into the future.
MAX_BLOCK_TIME_AHEAD_MS = 10_000


class SignatureMemo(Protocol):
    """What this node knows of txs already (its mempool)."""

    def tx_by_record(self, record: bytes) -> Transaction | None: ...

    def is_pending(self, tx: Transaction) -> bool: ...

    def knows_valid(self, tx: Transaction) -> bool: ...

    def remember_verified(self, tx: Transaction) -> None: ...


class SyncedBlockError(Exception):
    """A block served by a peer that does not check out."""


@dataclass(frozen=True, slots=True)
class CommitResult:
    block: Block
    certificate: CommitCertificate
    receipts: tuple[Receipt, ...]
    config: ChainConfig | None = None      # the configuration the block changed to, if it did


class Chain:
    def __init__(self, genesis: Genesis, store: Store,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.genesis = genesis
        self.store = store
        self._clock_ms = clock_ms
        head = store.get_block(store.last_height()) if store.last_height() else None
        self.head_timestamp_ms = head.header.timestamp_ms if head else 0
        try:
            self.config: ChainConfig = config_state.load(genesis.chain_id, genesis.contract_schedule,
                                                         store.scan_state)
        except DecodeError as exc:
            raise CorruptStoreError(f"{store!r}: the consortium configuration in the state is "
                                    f"missing or damaged: {exc}") from None

    @property
    def height(self) -> int:
        return self.store.last_height()

    # -- proposals -------------------------------------------------------------------
    def check_proposal(self, seq: int, payload: bytes, signatures: SignatureMemo,
                       decoded: Proposal | None = None) -> Proposal | str:
        """Decode and validate a proposed payload for `seq`; the Proposal, or why
        it is refused.  `signatures` remembers which tx signatures this node
        checked already, so none is verified twice, and holds the txs it
        admitted, which are taken as they are (not decoded, looked up in the
        store or verified again).  `decoded`: the payload decoded already."""
        limit = self.config.params_at(seq).max_proposal_bytes     # governed, per epoch
        if len(payload) > limit:
            return f"proposal of {len(payload)} bytes; at most {limit}"
        try:
            proposal = decoded or Proposal.decode(payload, signatures.tx_by_record)
        except DecodeError as exc:
            return f"malformed proposal: {exc}"
        config = self.config
        if proposal.chain_id != config.chain_id:
            return "proposal for another chain"
        if proposal.height != seq:
            return f"proposal height {proposal.height} at seq {seq}"
        epoch = config.epoch_of(seq)
        if proposal.proposer not in epoch.names:
            return f"proposer {proposal.proposer!r} is not a validator at height {seq}"
        if len(proposal.txs) > epoch.params.max_block_txs:
            return "too many transactions"
        if proposal.timestamp_ms < self.head_timestamp_ms:
            return (f"block time {proposal.timestamp_ms} is before the last committed block's "
                    f"({self.head_timestamp_ms})")
        ahead_ms = proposal.timestamp_ms - self._clock_ms()
        if ahead_ms > MAX_BLOCK_TIME_AHEAD_MS:
            return f"block time {ahead_ms} ms ahead of this node's clock"
        # Executed up to seq - 1, this node knows every account the primary can
        # have known; further behind (pipelining), a key may be added by a block
        # in between, and execution judges it.
        known_accounts = seq - 1 == self.height
        seen: set[bytes] = set()
        has_tx = self.store.has_tx
        is_pending = signatures.is_pending
        for tx in proposal.txs:
            tx_id = tx.id
            pending = is_pending(tx)
            if tx_id in seen or (not pending and has_tx(tx_id)):
                return f"duplicate transaction {tx_id.hex()}"
            seen.add(tx_id)
            problem = admission.static_problem(tx, config)
            if problem == admission.UNKNOWN_SENDER and not known_accounts:
                problem = None
            problem = problem or admission.window_problem(tx, seq - 1, config)
            if problem is None and not pending and not signatures.knows_valid(tx):
                if not tx.verify_signature():
                    problem = admission.BAD_SIGNATURE
                else:
                    signatures.remember_verified(tx)
            if problem:
                return f"transaction {tx_id.hex()}: {problem}"
        return proposal

    # -- commit ----------------------------------------------------------------------
    def _build(self, seq: int, proposal: Proposal | None) -> tuple[Block, ExecutionResult]:
        store = self.store
        prev_hash = store.last_block_hash()
        if proposal is None:
            # A null block repeats its parent's view and time: every node derives
            # the same header, whatever view it saw the null request commit in.
            txs: tuple = ()
            proposer, tx_root = "", EMPTY_ROOT
            parent = store.get_block(seq - 1) if seq > 1 else None
            view, timestamp = (parent.header.view, parent.header.timestamp_ms) if parent else (0, 0)
        else:
            txs, view, proposer, tx_root, timestamp = (proposal.txs, proposal.view, proposal.proposer,
                                                       proposal.tx_root, proposal.timestamp_ms)
        result = execute_block(self.config, store.get_state, seq, txs,
                               store.state_tree, store.has_tx, timestamp_ms=timestamp)
        header = BlockHeader(self.genesis.chain_id, seq, view, prev_hash, tx_root,
                             result.state_root, result.receipt_root, proposer, timestamp)
        return Block(header, tuple(txs)), result

    def commit(self, seq: int, proposal: Proposal | None, certificate: CommitCertificate,
               payload: bytes | None = None) -> CommitResult:
        """Execute and store the block ordered at `seq` (None = null block);
        `payload` is the proposal's bytes, which the store keeps as the body."""
        assert seq == self.height + 1, (seq, self.height)
        block, result = self._build(seq, proposal)
        assert block.header.proposal_digest() == certificate.digest, "certificate does not match block"
        return self._store(block, certificate, result, payload or None)

    def _store(self, block: Block, certificate: CommitCertificate, result: ExecutionResult,
               payload: bytes | None = None) -> CommitResult:
        self.store.commit(block, certificate, result.receipts, result.writes, result.tree,
                          payload=payload)
        self.head_timestamp_ms = block.header.timestamp_ms
        if result.config is not None:
            self.config = result.config
        return CommitResult(block, certificate, result.receipts, result.config)

    def apply_synced(self, block: Block, certificate: CommitCertificate) -> CommitResult:
        """Verify a block fetched from a peer against its certificate, re-execute
        it and check the derived header fields, then store it."""
        seq = block.height
        if seq != self.height + 1:
            raise SyncedBlockError(f"block {seq} does not follow height {self.height}")
        if certificate.height != seq:
            raise SyncedBlockError(f"certificate is for height {certificate.height}, block is {seq}")
        problem = certificate.problem(self.config.chain_id, self.config.set_for_seq(seq))
        if problem:
            raise SyncedBlockError(f"block {seq}: invalid certificate: {problem}")
        h = block.header
        if h.proposal_digest() != certificate.digest:
            raise SyncedBlockError(f"block {seq}: certificate signs another proposal")
        if h.is_null:
            if block.txs or h.tx_root != EMPTY_ROOT:
                raise SyncedBlockError(f"block {seq}: null block with transactions or a tx root")
            proposal = None
        else:
            # The certified header's tx root covers each tx's id and signature
            # (ledger.block.tx_root); the proposal caches the root, so _build
            # below does not hash the txs a second time.
            proposal = Proposal(h.chain_id, seq, h.view, h.proposer, h.timestamp_ms, block.txs)
            if proposal.tx_root != h.tx_root:
                raise SyncedBlockError(f"block {seq}: tx root does not match its transactions "
                                       "(ids and signatures); the serving peer altered them")
        built, result = self._build(seq, proposal)
        if built.hash != block.hash:
            self.store.state_tree.rewind(seq - 1)      # the block is not stored
            raise SyncedBlockError(
                f"block {seq}: re-execution gives another header (prev_hash/state_root/view differ); "
                "the serving peer or this node diverged")
        return self._store(built, certificate, result)
