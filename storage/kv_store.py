"""The Store logic, written once over a small byte-keyed backend and a segment log.

LevelDBStore (plyvel, segment files) and MemoryStore (a dict, segments in
memory) differ only in their backends, so they share every rule — commit order,
first-entry-wins tx index, tip bookkeeping, record encodings, where block bodies
go — and tests of one hold for the other.

Block bodies are proposal payloads in the segment log (storage.segments),
written once: a payload is appended when the safety record that prepares it is
saved, and the commit of its block only adds index entries that refer to it;
a block that was never prepared here (block sync) has its payload appended at
commit.  Either way the body is durable before the synced batch that refers
to it, so a crash leaves only an unreferenced tail.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Iterable, Mapping, Protocol, Sequence, TypeVar

import msgpack

from ledger.block import GENESIS_HASH, Block, Proposal, proposal_tx_spans
from ledger.certificate import CommitCertificate
from ledger.codec import DecodeError, pack
from ledger.crypto import HASH_LEN
from ledger.errors import StateTreeError
from ledger.receipt import ERR_DUPLICATE, Receipt
from ledger.state_tree import StateTree, UpdateResult
from ledger.tx import Transaction

from . import layout
from .errors import (
    CommitOrderError, CorruptStoreError, GenesisMismatchError, LostStoreError, NotAStoreError,
    SafetyCopyError, SchemaVersionError, StoreError,
)
from .layout import BlockEntry, Tip, TxEntry
from .safety_copy import KeptRecord, SafetyCopy
from .segments import Ref, SegmentLog

T = TypeVar("T")

# Blocks the open check (KVStore._check_newest_body) looks back over for the
# newest one with a body: only null blocks (view changes) have none.
MAX_BODYLESS_WALK = 1000


class Batch(Protocol):
    """Writes collected in memory and applied atomically and durably by write()."""

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def write(self) -> None: ...


class Backend(Protocol):
    """Raw byte storage.  Errors of the underlying engine surface as StoreError."""

    def get(self, key: bytes) -> bytes | None: ...

    def batch(self) -> Batch: ...

    def put_sync(self, key: bytes, value: bytes) -> None: ...

    def is_empty(self) -> bool: ...

    def range(self, start: bytes, stop: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to `limit` (key, value) pairs with start <= key < stop, in key order."""

    def close(self) -> None: ...


class _ClosedBackend:
    """Stands in for the backend after close(), so no read path needs a check."""

    def _closed(self, *args: object) -> None:
        raise StoreError("store is closed")

    get = batch = put_sync = is_empty = range = _closed

    def close(self) -> None:
        pass


_CLOSED = _ClosedBackend()
NO_STATE: Mapping[bytes, bytes] = MappingProxyType({})


def _check_hash(value: object, what: str) -> bytes:
    if type(value) is not bytes or len(value) != HASH_LEN:
        raise ValueError(f"{what}: expected {HASH_LEN} bytes")
    return value


def refuse_if_voted(where: str, copy: SafetyCopy, kept: KeptRecord | None) -> None:
    """Creating a store afresh forgets every vote: refuse it for a node whose
    kept safety record shows it has voted (its data directory was lost)."""
    if kept is not None and kept.number > 0:
        raise LostStoreError(
            f"{where}: the data directory is missing or empty, but this node has voted before "
            f"(safety record kept in {copy.directory}, save {kept.number}); starting afresh "
            "could make it sign conflicting votes")


class _TreeNodes:
    """The state tree's node store: its nodes under their own family.  Reads
    go through the store's current backend, so a closed store refuses them."""

    __slots__ = ("_store",)

    def __init__(self, store: "KVStore") -> None:
        self._store = store

    def get(self, node_key: bytes) -> bytes | None:
        return self._store._kv.get(layout.STATE_TREE + node_key)


class KVStore:
    """A Store (storage.base) over a Backend; see storage.layout for the keys.

    A store created here starts with `initial_state` (the genesis state: the
    consortium configuration, ledger.execution.genesis_state) as the state
    tree's version 0.  `state_tree` is the authenticated state at the tip
    (ledger.state_tree.StateTree, reading its nodes from this store): the
    caller applies a block's writes to it to learn the block's state root and
    hands the UpdateResult to `commit`, which writes the nodes in the block's
    batch (and rewinds the tree if the commit fails), with the list of nodes it
    retired; the tree's versions from the newest kept checkpoint up are kept,
    and each commit deletes a bounded share of the older ones' nodes
    (`_prune`).  The tree persists at checkpoint heights only (m/tree): a
    commit at any other height stores the keys it wrote instead (w/), and
    opening re-applies those with the tip's values (`_replay_written`).  With a `safety_copy` (storage.safety_copy), every
    safety record saved is also kept there, and opening checks the store's
    record against it.

    Threads: reads may run in any thread, also during a commit (the tip is
    replaced in one assignment after the batch is durable); commits must be
    serialised by the caller, as the consensus driver does anyway.
    """

    def __init__(self, backend: Backend, segments: SegmentLog, where: str, genesis_hash: bytes, *,
                 initial_state: Mapping[bytes, bytes] = NO_STATE, create: bool = True,
                 safety_copy: SafetyCopy | None = None) -> None:
        _check_hash(genesis_hash, "genesis_hash")
        self._kv: Backend = backend
        self._segments = segments
        self.where = where
        self.genesis_hash = genesis_hash
        self._copy = safety_copy
        kept = safety_copy.load() if safety_copy is not None else None
        self._tip = self._open_or_create(genesis_hash, initial_state, create, kept)
        self._keep_from = self._read_uint(layout.KEY_KEEP, "kept tree version")
        self._pruned = self._read_uint(layout.KEY_PRUNED, "pruned height")
        self._tree_at = self._read_uint(layout.KEY_TREE, "persisted tree version")
        if not (self._pruned <= self._keep_from <= self._tip.height and self._tree_at <= self._tip.height):
            raise CorruptStoreError(f"{where}: the state tree is pruned to height {self._pruned}, "
                                    f"kept from {self._keep_from} and persisted at {self._tree_at}, "
                                    f"with the tip at {self._tip.height}")
        try:
            self.state_tree = StateTree(_TreeNodes(self), self._tree_at)
            self.state_tree.oldest = self._keep_from
            self._replay_written()
        except StateTreeError as exc:
            raise CorruptStoreError(f"{where}: the state tree at height {self._tip.height} "
                                    f"cannot be read: {exc}") from None
        if self.state_tree.root_hash() != self._tip.state_root:
            raise CorruptStoreError(f"{where}: the state tree's root at height {self._tip.height} "
                                    "is not the state root of the tip")
        self._safety_number, record = self._read_safety()
        if safety_copy is not None:
            self._check_safety_copy(safety_copy, kept, record)
        self._check_newest_body()

    def _open_or_create(self, genesis_hash: bytes, initial_state: Mapping[bytes, bytes], create: bool,
                        kept: KeptRecord | None) -> Tip:
        kv = self._kv
        raw_schema = kv.get(layout.KEY_SCHEMA)
        if raw_schema is None:
            # An empty database is a store whose creation was cut short (or a
            # fresh one): initialising it is safe.  Anything else is not ours.
            if not kv.is_empty():
                raise NotAStoreError(f"{self.where}: holds data but no ynchain metadata; not a ynchain store")
            if not create:
                raise NotAStoreError(f"{self.where}: no ynchain store here")
            if self._copy is not None:
                refuse_if_voted(self.where, self._copy, kept)
            genesis_tree = StateTree(_TreeNodes(self)).apply(0, initial_state)
            tip = Tip(0, GENESIS_HASH, genesis_tree.root)
            batch = kv.batch()
            batch.put(layout.KEY_SCHEMA, pack(layout.SCHEMA_VERSION))
            batch.put(layout.KEY_GENESIS, pack(genesis_hash))
            batch.put(layout.KEY_TIP, tip.encode())
            batch.put(layout.KEY_TREE, pack(0))
            for key, value in initial_state.items():     # the genesis state, in the same batch
                batch.put(layout.STATE + key, value)
            for node_key, node in genesis_tree.new_nodes.items():
                batch.put(layout.STATE_TREE + node_key, node)
            batch.write()
            return tip
        try:
            schema = layout.decode_uint(raw_schema)
        except DecodeError:
            raise SchemaVersionError(f"{self.where}: unreadable schema version "
                                     f"{raw_schema[:16]!r}, expected {layout.SCHEMA_VERSION}") from None
        if schema != layout.SCHEMA_VERSION and schema not in layout.UPGRADABLE_SCHEMAS:
            raise SchemaVersionError(f"{self.where}: store schema version is {schema}, "
                                     f"this ynchain reads version {layout.SCHEMA_VERSION}")
        stored_genesis = self._decode(layout.decode_hash, kv.get(layout.KEY_GENESIS), "genesis hash")
        if stored_genesis != genesis_hash:
            raise GenesisMismatchError(f"{self.where}: store belongs to genesis {stored_genesis.hex()}, "
                                       f"not {genesis_hash.hex()}")
        tip = self._decode(Tip.decode, kv.get(layout.KEY_TIP), "tip")
        if schema != layout.SCHEMA_VERSION:
            # Version 7: every height's tree was persisted, so it is a store
            # persisted at the tip; nothing else differs.
            batch = kv.batch()
            batch.put(layout.KEY_SCHEMA, pack(layout.SCHEMA_VERSION))
            batch.put(layout.KEY_TREE, pack(tip.height))
            batch.write()
        return tip

    def _replay_written(self) -> None:
        """Bring the tree from its persisted version to the tip: the keys the
        heights above it wrote (w/), with the values they hold at the tip, as
        one update (the root depends only on the final state)."""
        tip = self._tip.height
        if self._tree_at == tip:
            return
        keys: set[bytes] = set()
        for height in range(self._tree_at + 1, tip + 1):
            keys.update(self._decode(layout.decode_keys, self._kv.get(layout.WRITTEN + layout.height_key(height)),
                                     f"written keys of height {height}"))
        result = self.state_tree.apply(tip, {key: self.get_state(key) for key in keys}, persist=False)
        if result.persisted:         # more pages than the tree keeps in memory
            batch = self._kv.batch()
            self._put_tree(batch, tip, result, ())
            batch.write()
            self._tree_at = tip

    def _read_uint(self, key: bytes, what: str) -> int:
        raw = self._kv.get(key)
        return 0 if raw is None else self._decode(layout.decode_uint, raw, what)

    def _read_safety(self) -> tuple[int, bytes | None]:
        raw = self._kv.get(layout.KEY_SAFETY)
        return (0, None) if raw is None else self._decode(layout.decode_safety, raw, "safety record")

    def _check_safety_copy(self, copy: SafetyCopy, kept: KeptRecord | None,
                           record: bytes | None) -> None:
        """The store's safety record must be the kept one, or one save newer (a
        crash between the store's write and the copy's); never older."""
        number = self._safety_number
        if kept is None:
            if number:
                raise SafetyCopyError(
                    f"{copy.directory}: the safety record copy is missing, but {self.where} holds "
                    f"save {number}; without the copy a rolled-back store cannot be told")
            copy.save(0, None)                  # marks this node as started
            return
        if number < kept.number:
            raise CorruptStoreError(
                f"{self.where}: the safety record was rolled back (the store holds save {number}, "
                f"the copy in {copy.directory} save {kept.number}): the database lost writes")
        if number == kept.number and record != kept.record:
            raise CorruptStoreError(f"{self.where}: the safety record differs from the copy in "
                                    f"{copy.directory} (save {number})")
        if number > kept.number:
            copy.save(number, record)

    def _check_newest_body(self) -> None:
        """The segments must hold every body the index refers to.  A body is
        durable before the batch that refers to it, so a crash can only leave
        them holding more (an unreferenced tail, which nothing reads); holding
        less means they lost writes (a disk that lied about a flush, a data
        directory restored without its segments): refused here, with the way
        back, rather than found by a read while the node runs.  Segments are
        append-only, so the newest body referred to (the tip's, or a prepared
        payload's) read back intact shows that everything before it is there."""
        kv = self._kv
        refs = []
        tip = self._tip.height
        for height in range(tip, max(0, tip - MAX_BODYLESS_WALK), -1):   # null blocks have no body
            entry = self._decode(BlockEntry.decode, kv.get(layout.BLOCK_INDEX + layout.height_key(height)),
                                 f"block {height}")
            if entry.length:
                refs.append((f"block {height}", Ref(entry.segment, entry.offset, entry.length)))
                break
        for key, raw in kv.range(layout.PAYLOAD, layout.prefix_end(layout.PAYLOAD), layout.MAX_SCAN):
            seq = int.from_bytes(key[len(layout.PAYLOAD):len(layout.PAYLOAD) + 8], "big")
            refs.append((f"prepared payload {seq}", Ref(*self._decode(layout.decode_ref, raw,
                                                                      f"prepared payload {seq}"))))
        if not refs:
            return
        what, newest = max(refs, key=lambda r: (r[1].segment, r[1].offset))
        try:
            self._segments.read(newest)
        except CorruptStoreError as exc:
            raise CorruptStoreError(f"{self.where}: the index refers to the body of {what}, which the "
                                    f"segment files do not hold intact (they lost writes): {exc}") from None

    def _decode(self, decode: Callable[[bytes], T], raw: bytes | None, what: str) -> T:
        if raw is None:
            raise CorruptStoreError(f"{self.where}: {what} is missing")
        try:
            return decode(raw)
        except DecodeError as exc:
            raise CorruptStoreError(f"{self.where}: {what} does not decode: {exc}") from None

    # -- the tip ----------------------------------------------------------------
    def last_height(self) -> int:
        return self._tip.height

    def last_block_hash(self) -> bytes:
        return self._tip.block_hash

    def last_state_root(self) -> bytes:
        return self._tip.state_root

    # -- reads ------------------------------------------------------------------
    def get_block_bytes(self, height: int) -> bytes | None:
        """Block.encode() of the block: its header and the txs array of the
        payload that ordered it, as received (canonical from an honest primary)."""
        # Heights beyond the tip are never read: after a crash the tip, not
        # whatever else is on disk, defines the chain.
        if not 0 < height <= self._tip.height:
            return None
        raw = self._kv.get(layout.BLOCK_INDEX + layout.height_key(height))
        if raw is None:
            return None
        entry = self._decode(BlockEntry.decode, raw, f"block {height}")
        if entry.length == 0:
            txs = b"\x90"
        else:
            body = self._segments.read(Ref(entry.segment, entry.offset, entry.length))
            txs = body[entry.txs_offset:]
        return b"\x92" + pack(entry.header) + txs

    def get_block(self, height: int) -> Block | None:
        raw = self.get_block_bytes(height)
        return None if raw is None else self._decode(Block.decode, raw, f"block {height}")

    def get_certificate(self, height: int) -> CommitCertificate | None:
        if not 0 < height <= self._tip.height:
            return None
        raw = self._kv.get(layout.CERTIFICATE + layout.height_key(height))
        return None if raw is None else self._decode(
            CommitCertificate.decode, raw, f"certificate {height}")

    def height_of(self, block_hash: bytes) -> int | None:
        raw = self._kv.get(layout.BLOCK_HASH + block_hash)
        return None if raw is None else self._decode(
            layout.decode_uint, raw, f"height of block {block_hash.hex()}")

    def get_tx(self, tx_id: bytes) -> tuple[int, int, Receipt] | None:
        entry = self._tx_entry(tx_id)
        return None if entry is None else (entry.height, entry.index, entry.receipt)

    def get_committed_tx(self, tx_id: bytes) -> tuple[Transaction, int, int, Receipt] | None:
        """The committed tx with its (height, index, receipt), read from its own
        bytes (not its block's); a tx that does not hash to `tx_id` is damage."""
        entry = self._tx_entry(tx_id)
        if entry is None:
            return None
        raw = self._segments.read_slice(entry.segment, entry.offset, entry.length)
        try:
            tx = Transaction.decode(raw)
        except DecodeError:
            tx = None
        if tx is None or tx.id != tx_id:
            raise CorruptStoreError(f"{self.where}: the bytes of tx {tx_id.hex()} (segment "
                                    f"{entry.segment}, offset {entry.offset}) are damaged")
        return tx, entry.height, entry.index, entry.receipt

    def _tx_entry(self, tx_id: bytes) -> TxEntry | None:
        raw = self._kv.get(layout.TX + tx_id)
        return None if raw is None else self._decode(TxEntry.decode, raw, f"tx {tx_id.hex()}")

    def has_tx(self, tx_id: bytes) -> bool:
        return self._kv.get(layout.TX + tx_id) is not None

    def get_state(self, key: bytes) -> bytes | None:
        return self._kv.get(layout.STATE + key)

    def scan_state(self, prefix: bytes, start_after: bytes | None = None,
                   limit: int = 100) -> list[tuple[bytes, bytes]]:
        """State entries whose key starts with `prefix`, in key order, after
        `start_after` (a key with that prefix; None: from the first), at most
        `limit` (1..MAX_SCAN) of them.  Keys come back without the family prefix."""
        if not 1 <= limit <= layout.MAX_SCAN:
            raise ValueError(f"scan limit must be in 1..{layout.MAX_SCAN}, got {limit}")
        if start_after is not None and not start_after.startswith(prefix):
            raise ValueError("start_after must begin with the scanned prefix")
        family = len(layout.STATE)
        # The least key above start_after is start_after + b"\x00".
        start = layout.STATE + (prefix if start_after is None else start_after + b"\x00")
        stop = layout.prefix_end(layout.STATE + prefix)
        return [(key[family:], value) for key, value in self._kv.range(start, stop, limit)]

    # -- writes -----------------------------------------------------------------
    def commit(self, block: Block, certificate: CommitCertificate,
               receipts: Sequence[Receipt], state_writes: Mapping[bytes, bytes | None],
               tree: UpdateResult, payload: bytes | None = None) -> None:
        try:
            self._commit(block, certificate, receipts, state_writes, tree, payload)
        except BaseException:
            # The tree moved to this height when the caller applied the writes;
            # its nodes were not stored, so it goes back to the tip.
            self.state_tree.rewind(self._tip.height)
            raise

    def _commit(self, block: Block, certificate: CommitCertificate,
                receipts: Sequence[Receipt], state_writes: Mapping[bytes, bytes | None],
                tree: UpdateResult, payload: bytes | None = None) -> None:
        tip = self._tip
        header = block.header
        height = header.height
        if height != tip.height + 1:
            raise CommitOrderError(f"{self.where}: block {height} does not follow the last "
                                   f"committed height {tip.height}")
        if header.prev_hash != tip.block_hash:
            raise CommitOrderError(f"{self.where}: block {height} links to {header.prev_hash.hex()}, "
                                   f"the last committed block is {tip.block_hash.hex()}")
        if certificate.height != height:
            raise StoreError(f"{self.where}: certificate for height {certificate.height} "
                             f"given with block {height}")
        if len(receipts) != len(block.txs):
            raise StoreError(f"{self.where}: block {height} has {len(block.txs)} txs "
                             f"but {len(receipts)} receipts")
        if tree.version != height or tree.root != header.state_root:
            raise StoreError(f"{self.where}: block {height}'s state root is not the state tree's "
                             f"root of version {tree.version}")
        new_tip = Tip(height, block.hash, tree.root)
        hkey = layout.height_key(height)
        kv = self._kv
        batch = kv.batch()
        put = batch.put
        try:
            state = self._state_ops(state_writes)
            # A refusal after this leaves the appended body unreferenced, as a crash would.
            ref, txs_offset, spans = self._place_body(block, certificate, payload)
            put(layout.BLOCK_INDEX + hkey,
                BlockEntry(header.to_record(), ref.segment, ref.offset, ref.length, txs_offset).encode())
            put(layout.CERTIFICATE + hkey, certificate.encode())
            put(layout.BLOCK_HASH + new_tip.block_hash, pack(height))
            tx_prefix = layout.TX
            segment, base = ref.segment, ref.offset
            # A Packer per commit: reused for every entry, never shared between threads.
            pack_entry = msgpack.Packer(use_bin_type=True).pack
            for index in self._indexed(block, receipts):
                offset, length = spans[index]
                put(tx_prefix + block.txs[index].id,
                    pack_entry([height, index, receipts[index].to_record(), segment,
                                base + offset, length]))
            for key, value in state:
                if value is None:
                    batch.delete(key)
                else:
                    put(key, value)
            self._put_tree(batch, height, tree, state_writes)
            pruned = self._prune(batch)
            put(layout.KEY_TIP, new_tip.encode())
        except (TypeError, ValueError, OverflowError) as exc:
            # msgpack's complaint about an unencodable receipt result or header field
            raise StoreError(f"{self.where}: block {height} cannot be encoded: {exc}") from exc
        batch.write()
        self._tip = new_tip
        self._pruned = pruned
        if tree.persisted:
            self._tree_at = height

    def _put_tree(self, batch: Batch, height: int, tree: UpdateResult, written: Iterable[bytes]) -> None:
        """Add the tree's part of height's commit to its batch: the nodes and
        stale list of a persisted version (and the w/ lists it makes
        useless), or else the keys the height wrote."""
        hkey = layout.height_key(height)
        if not tree.persisted:
            batch.put(layout.WRITTEN + hkey, pack(list(written)))
            return
        put = batch.put
        tree_prefix = layout.STATE_TREE
        for node_key, node in tree.new_nodes.items():
            put(tree_prefix + node_key, node)
        put(layout.STALE + hkey, pack(tree.stale))
        put(layout.KEY_TREE, pack(height))
        # up to `height` itself: reopening persists the tip whose list it read
        for written_at in range(self._tree_at + 1, height + 1):
            batch.delete(layout.WRITTEN + layout.height_key(written_at))

    def _prune(self, batch: Batch) -> int:
        """Add to a commit's batch the deletes of the tree nodes that only
        versions below the kept one (the newest kept checkpoint) use: the
        stale lists of heights up to it, oldest first, a bounded number per
        commit (layout.PRUNE_LISTS, PRUNE_NODES).  Returns the height pruned
        to once the batch is written.  Being in the commit's synced batch,
        a crash leaves each list applied whole with the cursor, or not at all."""
        start = cursor = self._pruned
        last = min(self._keep_from, cursor + layout.PRUNE_LISTS)
        deleted = 0
        delete = batch.delete
        tree_prefix = layout.STATE_TREE
        while cursor < last and deleted < layout.PRUNE_NODES:
            cursor += 1
            list_key = layout.STALE + layout.height_key(cursor)
            raw = self._kv.get(list_key)
            if raw is None:                 # a height the tree was not persisted at
                continue
            stale = self._decode(layout.decode_keys, raw, f"stale list {cursor}")
            for node_key in stale:
                delete(tree_prefix + node_key)
            delete(list_key)
            deleted += len(stale)
        if cursor != start:
            batch.put(layout.KEY_PRUNED, pack(cursor))
        return cursor

    @staticmethod
    def _indexed(block: Block, receipts: Sequence[Receipt]) -> list[int]:
        """Indexes of the txs this block adds to the tx index.  First entry
        wins, without a read per tx: execution gives every tx that is already
        committed, or earlier in its block, an ERR_DUPLICATE receipt
        (ledger.execution), so only the others are new to the index."""
        out = []
        indexed: set[bytes] = set()
        for index, (tx, receipt) in enumerate(zip(block.txs, receipts)):
            tx_id = tx.id
            if receipt.status == ERR_DUPLICATE or tx_id in indexed:
                continue
            indexed.add(tx_id)
            out.append(index)
        return out

    def _state_ops(self, state_writes: Mapping[bytes, bytes | None]) -> list[tuple[bytes, bytes | None]]:
        state_prefix = layout.STATE
        ops = []
        for key, value in state_writes.items():
            if type(key) is not bytes:
                raise StoreError(f"{self.where}: state key {key!r} is not bytes")
            if value is not None and type(value) is not bytes:
                raise StoreError(f"{self.where}: state value for {key!r} is not bytes or None")
            ops.append((state_prefix + key, value))
        return ops

    def _place_body(self, block: Block, certificate: CommitCertificate,
                    payload: bytes | None) -> tuple[Ref, int, list[tuple[int, int]]]:
        """Where the block's txs are: the prepared payload already in the
        segments (the usual case), or a payload appended now (block sync);
        with the txs array's offset and each tx's span in the payload."""
        if not block.txs:
            return Ref(0, 0, 0), 0, []
        h = block.header
        if payload is None:
            payload = Proposal(h.chain_id, h.height, h.view, h.proposer, h.timestamp_ms,
                               block.txs).encode()
        try:
            txs_offset, spans = proposal_tx_spans(payload)
        except DecodeError as exc:
            raise StoreError(f"{self.where}: block {h.height}: payload does not decode: {exc}") from None
        if len(spans) != len(block.txs):
            raise StoreError(f"{self.where}: block {h.height} has {len(block.txs)} txs "
                             f"but its payload {len(spans)}")
        raw = self._kv.get(layout.payload_key(h.height, certificate.digest))
        if raw is not None:
            ref = Ref(*self._decode(layout.decode_ref, raw, f"prepared payload {h.height}"))
            # The digest is of the decoded proposal: another encoding of it (from a
            # faulty primary) would have the same one, so the bytes must be the same.
            if ref.length == len(payload) and self._segments.read(ref) == payload:
                return ref, txs_offset, spans
        return self._segments.append([payload])[0], txs_offset, spans

    def load_safety_record(self) -> bytes | None:
        return self._read_safety()[1]

    def save_safety_record(self, data: bytes,
                           payloads: Sequence[tuple[int, bytes, bytes]] = (),
                           dropped: Sequence[tuple[int, bytes]] = ()) -> None:
        if type(data) is not bytes:
            raise StoreError(f"{self.where}: safety record must be bytes, got {type(data).__name__}")
        if len(data) > layout.MAX_SAFETY_RECORD:
            raise StoreError(f"{self.where}: safety record of {len(data)} bytes exceeds "
                             f"{layout.MAX_SAFETY_RECORD}")
        number = self._safety_number + 1
        value = layout.encode_safety(number, data)
        if not payloads and not dropped:
            self._kv.put_sync(layout.KEY_SAFETY, value)
        else:
            for seq, _, payload in payloads:
                if type(payload) is not bytes:
                    raise StoreError(f"{self.where}: prepared payload at {seq} is not bytes")
            # The payloads are durable in the segments before the record that refers to them.
            refs = self._segments.append([payload for _, _, payload in payloads])
            batch = self._kv.batch()
            for seq, digest in dropped:
                batch.delete(layout.payload_key(seq, digest))
            for (seq, digest, _), ref in zip(payloads, refs):
                batch.put(layout.payload_key(seq, digest), layout.encode_ref(*ref.to_record()))
            batch.put(layout.KEY_SAFETY, value)
            batch.write()
        self._safety_number = number
        # The store first, the copy second: after a crash between the two the
        # store is one save ahead, which opening accepts; behind means lost writes.
        if self._copy is not None:
            self._copy.save(number, data)

    def restore_safety_record(self, number: int, data: bytes | None) -> None:
        """Seed a fresh store (no block, no record) with a kept safety record:
        `ynchain node resync` rebuilds a lost or damaged store this way, so the
        node refetches the chain but keeps every vote it signed.  The payloads
        of its prepared certificates are not kept; peers hold them too."""
        if self._tip.height or self._safety_number:
            raise StoreError(f"{self.where}: a safety record is restored only into a fresh store")
        if data is not None:
            self._kv.put_sync(layout.KEY_SAFETY, layout.encode_safety(number, data))
        self._safety_number = number

    def get_prepared_payload(self, seq: int, digest: bytes) -> bytes | None:
        raw = self._kv.get(layout.payload_key(seq, digest))
        if raw is None:
            return None
        return self._segments.read(Ref(*self._decode(layout.decode_ref, raw, f"prepared payload {seq}")))

    # -- stable checkpoint proofs (the anchors of proof files) ---------------------
    def put_checkpoint(self, seq: int, proof: bytes, next_epoch: bytes) -> None:
        """Keep an encoded stable checkpoint proof (consensus.messages.
        CheckpointProof) of a committed height, with the anchor's proof of the
        next epoch's record (node.core.proofs.next_epoch_proof), made from the
        tree at `seq` before this call lets it go.  The newest kept checkpoint
        is the oldest tree version kept: commits prune below it from now on.
        Not synced: losing the newest after a crash only makes proofs wait for
        the next one, and the commit that prunes up to it is synced after it
        in the same log."""
        if type(proof) is not bytes or type(next_epoch) is not bytes:
            raise StoreError(f"{self.where}: checkpoint proof must be bytes")
        if not 0 < seq <= self._tip.height:
            raise StoreError(f"{self.where}: checkpoint {seq} is not a committed height (the tip is "
                             f"{self._tip.height})")
        batch = self._kv.batch()
        batch.put(layout.CHECKPOINT + layout.height_key(seq), layout.encode_checkpoint(proof, next_epoch))
        keep_from = max(self._keep_from, seq)
        batch.put(layout.KEY_KEEP, pack(keep_from))
        batch.write()
        self._keep_from = keep_from
        self.state_tree.oldest = keep_from

    def newest_checkpoint(self) -> int:
        """The height of the newest kept checkpoint (0: none), from which up the
        state tree's versions are kept."""
        return self._keep_from

    def checkpoint_at_or_above(self, height: int) -> tuple[int, bytes, bytes] | None:
        """The lowest kept checkpoint at `height` or above that does not lie
        beyond the tip: (its seq, the encoded proof, its next-epoch proof), or None."""
        found = self._kv.range(layout.CHECKPOINT + layout.height_key(height),
                               layout.prefix_end(layout.CHECKPOINT), 1)
        if not found:
            return None
        key, value = found[0]
        seq = int.from_bytes(key[len(layout.CHECKPOINT):], "big")
        if seq > self._tip.height:
            return None
        proof, next_epoch = self._decode(layout.decode_checkpoint, value, f"kept checkpoint {seq}")
        return seq, proof, next_epoch

    def checkpoints_between(self, first: int, last: int, limit: int) -> list[tuple[int, bytes, bytes]]:
        """The kept checkpoints with first <= seq <= min(last, the tip), at most
        `limit`, in ascending seq: [(seq, encoded proof, next-epoch proof)]
        as stored (block sync hands them to peers: GET_CHECKPOINTS)."""
        last = min(last, self._tip.height)
        if limit < 1 or first > last:
            return []
        found = self._kv.range(layout.CHECKPOINT + layout.height_key(first),
                               layout.CHECKPOINT + layout.height_key(last + 1), limit)
        out = []
        for key, value in found:
            seq = int.from_bytes(key[len(layout.CHECKPOINT):], "big")
            out.append((seq, *self._decode(layout.decode_checkpoint, value, f"kept checkpoint {seq}")))
        return out

    # -- lifetime -----------------------------------------------------------------
    def close(self) -> None:
        kv, self._kv = self._kv, _CLOSED
        kv.close()
        self._segments.close()
        if self._copy is not None:
            self._copy.close()

    def __enter__(self) -> "KVStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        tip = getattr(self, "_tip", None)        # None while __init__ is still checking
        return f"{type(self).__name__}({self.where!r}, height={tip.height if tip else '?'})"
