"""A deterministic test chain: everything a commit needs, derived from the height.

Both the crash-test child process and its checker build the same commits from
the same heights, so the checker can recompute what the store must hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ledger.block import GENESIS_HASH, Block, BlockHeader, Proposal, tx_root
from ledger.certificate import CommitCertificate, Vote
from ledger.codec import pack
from ledger.crypto import hash256
from ledger.execution import receipt_root
from ledger.receipt import ERR_DUPLICATE, OK, Receipt
from ledger.state_tree import MemoryNodeStore, StateTree, UpdateResult
from ledger.tx import Transaction
from storage import layout

CHAIN_ID = "storage-test"
GENESIS = hash256(b"storage-test genesis")
OTHER_GENESIS = hash256(b"another chain")
STATE_KEYS = 37
# A node persists its state tree at checkpoint heights only (ledger.execution);
# stores here do at every fourth height (a divisor of the crash writer's
# checkpoint interval), so every test also reopens, crashes
# and prunes with heights whose tree was not persisted.
PERSIST_EVERY = 4


def make_tx(height: int, i: int) -> Transaction:
    return Transaction(CHAIN_ID, hash256(b"sender %d" % (i % 5)), height * 1000 + i, height + 100,
                       "registry", "put", [height, i], hash256(b"sig %d %d" % (height, i)) * 2)


@dataclass(frozen=True, slots=True)
class Commit:
    block: Block
    certificate: CommitCertificate
    receipts: tuple[Receipt, ...]
    state_writes: dict[bytes, bytes | None]
    tree: UpdateResult                     # the state tree after the block (its nodes)

    @property
    def state_root(self) -> bytes:
        return self.tree.root

    @property
    def payload(self) -> bytes:
        """The proposal payload that ordered this block (what a node prepares)."""
        h = self.block.header
        return Proposal(h.chain_id, h.height, h.view, h.proposer, h.timestamp_ms, self.block.txs).encode()

    def apply(self, store, payload: bytes | None = None) -> None:
        """Commit as a node does: the block's writes applied to the store's own
        tree, whose root must be the one this commit's header holds."""
        tree, height = store.state_tree, self.block.height
        # Out of order (a test of the store's refusals) the tree would refuse
        # first; the precomputed update lets the store say why.
        if tree.version == height - 1:
            update = tree.apply(height, self.state_writes, persist=height % PERSIST_EVERY == 0)
        else:
            update = self.tree
        store.commit(self.block, self.certificate, self.receipts, self.state_writes, update,
                     payload=payload)


def default_writes(height: int) -> dict[bytes, bytes | None]:
    # One key set and one deleted, so state both grows and shrinks; when both
    # are the same key (h = 27 mod 37) the dict keeps the put.
    put_key = b"k%d" % (height % STATE_KEYS)
    del_key = b"k%d" % ((height * 5 + 3) % STATE_KEYS)
    return {del_key: None, put_key: b"v%d" % height}


# The state tree of the default history (the store starts empty: version 0
# holds nothing), grown as far as a test asks: every version's update.
_DEFAULT_TREE = StateTree(MemoryNodeStore())
_DEFAULT_UPDATES: list[UpdateResult] = []


def default_update(height: int) -> UpdateResult:
    while len(_DEFAULT_UPDATES) <= height:
        h = len(_DEFAULT_UPDATES)
        _DEFAULT_UPDATES.append(_DEFAULT_TREE.apply(h, default_writes(h) if h else {},
                                                    persist=h % PERSIST_EVERY == 0))
        _DEFAULT_TREE.store.write(_DEFAULT_UPDATES[-1])
    return _DEFAULT_UPDATES[height]


def make_commit(height: int, prev_hash: bytes, n_txs: int = 4,
                state_writes: dict[bytes, bytes | None] | None = None,
                tree: StateTree | None = None) -> Commit:
    """The commit of block `height`, its state root that of the default
    history; with `state_writes` and `tree` (a tree at height-1, e.g. a
    store's, which this applies them to), those writes on that tree instead."""
    """Block `height` with n_txs fresh txs, then two repeats (what a faulty
    primary may propose): tx 0 of the previous height and tx 0 of this one."""
    fresh = [make_tx(height, i) for i in range(n_txs)]
    repeats = [make_tx(height - 1, 0)] if height > 1 else []
    if fresh:
        repeats.append(fresh[0])
    txs = tuple(fresh + repeats)
    receipts = tuple([Receipt(OK, "", [height, i]) for i in range(n_txs)]
                     + [Receipt(ERR_DUPLICATE, "duplicate")] * len(repeats))
    if state_writes is None:
        state_writes = default_writes(height)
        update = default_update(height)
    else:
        assert tree is not None, "custom writes need the tree they apply to"
        update = tree.apply(height, state_writes)
        tree.rewind(height - 1)          # Commit.apply applies them again
    view = height % 3
    header = BlockHeader(CHAIN_ID, height, view, prev_hash, tx_root(txs),
                         update.root, receipt_root(txs, receipts), f"v{height % 4}", 1_700_000_000_000 + height)
    certificate = CommitCertificate(view, height, header.proposal_digest(),
                                    tuple(Vote(v, hash256(b"vote %d %d" % (height, v)) * 2) for v in range(3)))
    return Commit(Block(header, txs), certificate, receipts, state_writes, update)


def build_chain(last: int, n_txs: int = 4) -> list[Commit]:
    chain: list[Commit] = []
    prev = GENESIS_HASH
    for height in range(1, last + 1):
        chain.append(make_commit(height, prev, n_txs))
        prev = chain[-1].block.hash
    return chain


def without_locations(records: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """`records` with the segment locations in block and tx entries left out:
    where a body lands depends on what a crash left unreferenced before it,
    so those are checked through the Store interface instead."""
    out = dict(records)
    for key, value in records.items():
        if key.startswith(layout.BLOCK_INDEX):
            out[key] = pack([layout.BlockEntry.decode(value).header])
        elif key.startswith(layout.TX):
            entry = layout.TxEntry.decode(value)
            out[key] = pack([entry.height, entry.index, entry.receipt.to_record()])
    return out


def checkpoint_record(height: int) -> tuple[bytes, bytes]:
    """The (proof, next-epoch proof) the storage tests keep at `height`: opaque to the store."""
    return b"checkpoint %d" % height, b"next epoch %d" % height


def expected_records(chain: list[Commit], pruned: int = 0, checkpoints: Iterable[int] = ()) -> dict[bytes, bytes]:
    """Every key/value (outside metadata and the safety record) a store that
    committed exactly the default `chain`, kept `checkpoints` and pruned its
    state tree up to height `pruned` must hold, in the form of
    `without_locations`: the nodes every version wrote, less those retired
    at heights 1..pruned, the stale lists of the persisted heights above, and
    the written keys of the heights above the last persisted one."""
    records: dict[bytes, bytes] = {}
    updates = list(map(default_update, range(len(chain) + 1)))
    for update in updates:
        for key, node in update.new_nodes.items():
            records[layout.STATE_TREE + key] = node
    for update in updates[1:]:
        if not update.persisted:
            continue
        if update.version <= pruned:
            for key in update.stale:
                del records[layout.STATE_TREE + key]
        else:
            records[layout.STALE + layout.height_key(update.version)] = pack(update.stale)
    persisted = max(u.version for u in updates if u.persisted)
    for c in chain[persisted:]:
        records[layout.WRITTEN + layout.height_key(c.block.height)] = pack(list(c.state_writes))
    for height in checkpoints:
        records[layout.CHECKPOINT + layout.height_key(height)] = layout.encode_checkpoint(*checkpoint_record(height))
    for c in chain:
        height = c.block.height
        hkey = layout.height_key(height)
        records[layout.BLOCK_INDEX + hkey] = pack([c.block.header.to_record()])
        records[layout.CERTIFICATE + hkey] = c.certificate.encode()
        records[layout.BLOCK_HASH + c.block.hash] = pack(height)
        for index, (tx, receipt) in enumerate(zip(c.block.txs, c.receipts)):
            records.setdefault(layout.TX + tx.id, pack([height, index, receipt.to_record()]))
        for key, value in c.state_writes.items():
            if value is None:
                records.pop(layout.STATE + key, None)
            else:
                records[layout.STATE + key] = value
    return records
