"""What the node, the consensus driver and the simulator need from a store.

Implemented by `LevelDBStore` (storage.leveldb_store, the node's) and
`MemoryStore` (storage.memory_store, for tests and the simulator); both share
one implementation (storage.kv_store), so they behave identically.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable

from ledger.block import Block
from ledger.certificate import CommitCertificate
from ledger.receipt import Receipt
from ledger.state_tree import StateTree, UpdateResult
from ledger.tx import Transaction


@runtime_checkable
class Store(Protocol):
    # The authenticated state at the tip (ledger.state_tree), reading its
    # nodes from this store.  Apply a block's writes to it for the block's
    # state root; commit() stores the result, or rewinds the tree if it fails.
    # Its versions from newest_checkpoint() up are kept, older ones pruned.
    state_tree: StateTree

    # -- the chain tip (kept in memory: no I/O) --------------------------------
    def last_height(self) -> int:
        """Height of the last committed block; 0 when none is."""

    def last_block_hash(self) -> bytes:
        """Hash of the last committed block; ledger.block.GENESIS_HASH when none is."""

    def last_state_root(self) -> bytes:
        """State root after the last committed block; the initial root when none is."""

    # -- blocks ------------------------------------------------------------------
    def get_block(self, height: int) -> Block | None: ...

    def get_block_bytes(self, height: int) -> bytes | None:
        """The block as encoded (Block.encode), to serve sync without re-encoding."""

    def get_certificate(self, height: int) -> CommitCertificate | None: ...

    def height_of(self, block_hash: bytes) -> int | None: ...

    # -- transactions and state ---------------------------------------------------
    def get_tx(self, tx_id: bytes) -> tuple[int, int, Receipt] | None:
        """(height, index in block, receipt) of the first commit of this tx id."""

    def get_committed_tx(self, tx_id: bytes) -> tuple[Transaction, int, int, Receipt] | None:
        """The tx itself with get_tx's answer, read from the tx's own bytes
        (no block is decoded)."""

    def has_tx(self, tx_id: bytes) -> bool:
        """Fast duplicate check for the mempool's hot path."""

    def get_state(self, key: bytes) -> bytes | None: ...

    def scan_state(self, prefix: bytes, start_after: bytes | None = None,
                   limit: int = 100) -> list[tuple[bytes, bytes]]:
        """Committed state entries under `prefix` in key order, after `start_after`,
        at most `limit` (bounded by storage.layout.MAX_SCAN); for paginated queries."""

    # -- writing -----------------------------------------------------------------
    def commit(self, block: Block, certificate: CommitCertificate,
               receipts: Sequence[Receipt], state_writes: Mapping[bytes, bytes | None],
               tree: UpdateResult, payload: bytes | None = None) -> None:
        """Atomically and durably append `block` (all of it or, after a crash,
        none of it), with the state tree nodes `tree` (state_tree.apply of the
        block's writes at its height; its root is the header's state root).
        Raises CommitOrderError unless it extends the tip.
        A tx id already indexed (earlier block, or earlier in this block; its
        receipt is then ERR_DUPLICATE) keeps its first entry.  `state_writes`
        maps key -> value, None deletes.  `payload`: the proposal bytes
        consensus ordered for this block (PRE-PREPARE payload), kept as the
        block's body; if it was saved as a prepared payload it is not written
        again.  None (block sync): the block's own txs are encoded as one."""

    def load_safety_record(self) -> bytes | None: ...

    def save_safety_record(self, data: bytes,
                           payloads: Sequence[tuple[int, bytes, bytes]] = (),
                           dropped: Sequence[tuple[int, bytes]] = ()) -> None:
        """Durable (fsync'd) before it returns: the driver sends votes after it.
        In the same write, store each (seq, digest, payload) of `payloads` and
        delete the (seq, digest) payloads in `dropped` (consensus.events.PersistSafety)."""

    def get_prepared_payload(self, seq: int, digest: bytes) -> bytes | None: ...

    def put_checkpoint(self, seq: int, proof: bytes, next_epoch: bytes) -> None:
        """Keep an encoded stable checkpoint proof at committed height `seq`
        (the anchor of proof files) with its proof of the next epoch's record
        (node.core.proofs.next_epoch_proof).  The newest kept checkpoint is
        the oldest state tree version kept: later commits prune below it."""

    def newest_checkpoint(self) -> int:
        """The newest kept checkpoint's height (0: none yet); state tree
        versions below it are pruned (reading them raises StateTreeError)."""

    def checkpoint_at_or_above(self, height: int) -> tuple[int, bytes, bytes] | None:
        """(seq, encoded proof, next-epoch proof) of the lowest kept checkpoint
        >= `height` and <= the tip."""

    def checkpoints_between(self, first: int, last: int, limit: int) -> list[tuple[int, bytes, bytes]]:
        """[(seq, encoded proof, next-epoch proof)] of the kept checkpoints with
        first <= seq <= min(last, the tip), ascending, at most `limit`."""

    def close(self) -> None:
        """Release the store; idempotent.  Any later call raises StoreError."""

    def __enter__(self) -> "Store": ...

    def __exit__(self, *exc_info: object) -> None: ...
