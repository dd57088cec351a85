"""The on-disk layout: key families and the records stored under them.

Every key starts with a two-byte family prefix; heights in keys are 8-byte
big-endian so LevelDB's byte order is height order.  Values are msgpack
arrays (ledger.codec) unless noted.

    m/schema            -> SCHEMA_VERSION (uint)
    m/genesis           -> genesis hash (bin 32)
    m/tip               -> [last height, last block hash, last state root]
    x/ + height (8 BE)  -> [header record, segment, offset, length, txs offset]: the
                           block's header, and where its txs are: the proposal payload
                           that ordered it, a body in the segment files (storage.segments),
                           whose txs array starts `txs offset` bytes in (length 0: no txs)
    c/ + height (8 BE)  -> the encoded CommitCertificate
    h/ + block hash     -> height (uint)
    t/ + tx id          -> [height, index in block, receipt record, segment, offset, length]:
                           the last three locate the tx's record bytes (GET /txs/{id}
                           reads those, not the block)
    s/ + state key      -> state value (raw bytes, not msgpack)
    p/safety            -> [save number, the consensus safety record (bin, opaque here)]
    q/ + seq (8 BE) + digest -> [segment, offset, length] of a prepared payload the
                           safety record refers to
    n/ + tree node key  -> a state tree node (ledger.state_tree: the key starts with the
                           height that wrote it): a page, its leaf children in it, or
                           the root of an empty or one-key tree.  Kept for the versions
                           from the newest kept checkpoint up (m/keep); older ones are
                           pruned
    z/ + height (8 BE)  -> [node key, ...]: the tree nodes a persisted height retired
                           (its UpdateResult.stale), deleted with the list once the height
                           is at or below m/keep
    m/tree              -> the newest persisted tree version (uint).  The tree persists its nodes at stable
                           checkpoint heights only (ledger.execution); the heights above
                           this one are rebuilt from their w/ lists on opening
    w/ + height (8 BE)  -> [state key, ...]: the keys a height above m/tree wrote; opening
                           re-applies them with the tip's values to reach the tip's tree.
                           Deleted by the commit that persists the tree again
    m/keep              -> the newest kept checkpoint (uint): the oldest tree version kept
    m/pruned            -> the highest height whose z/ list is applied (uint; absent: 0)
    k/ + height (8 BE)  -> [checkpoint proof, next-epoch proof]: a stable checkpoint proof
                           at that height (consensus.messages.CheckpointProof: 2f+1
                           signatures over the block hash), the anchor of proof files
                           (ledger.proof_file), with the anchor's proof of the next
                           epoch's record made while the tree still held that height
                           (node.core.proofs.next_epoch_proof; both bin, opaque here)

Block bodies live in append-only segment files, not in this LSM: here they were
rewritten by every compaction of the random tx-id keys around them.  A payload
is written once, when it is prepared; the block that commits it refers to the
same bytes (storage.segments says why and how crashes are handled).

The tip is one record so that height, hash and state root can never disagree,
and it is written in the same batch as the block it points to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable
from ledger import codec
from ledger.block import HEADER_FIELDS
from ledger.crypto import HASH_LEN
from ledger.receipt import Receipt

# 2: a block's tx root covers each tx's signature (ledger.block.tx_root), so
# blocks stored by version 1 no longer verify against their own headers.
# 3: the state starts with the genesis consortium configuration (gov/ tables,
# ledger.config_state), so stores of version 2 hold a state this ynchain cannot run on.
# 4: the state root is the state tree's root (ledger.state_tree) over the whole
# state, its nodes under n/; headers carry a receipt root; stable checkpoint
# proofs are kept (k/).  Roots of version-3 stores mean something else.
# 5: block bodies and prepared payloads in segment files (x/ replaces b/), tx
# entries locate their tx's bytes.
# 6: the state tree is pruned below the newest kept checkpoint (z/ lists,
# m/keep, m/pruned) and a kept checkpoint carries its next-epoch proof (k/
# is a pair), since its own tree version goes once a newer one is kept.  A
# version-5 store would never prune what it holds (it has no z/ lists).
# 7: a state tree page holds its leaf children (path and value hash) instead
# of each leaf being a node of its own under n/; a page's node value has a
# fifth field and versions only for its page children, so version-6 nodes
# do not read as version-7 ones (roots and proofs are unchanged).
# 8: the state tree persists its nodes at stable checkpoint heights only
# (m/tree, w/ lists of the heights above it).  A version-7 store is a
# version-8 one whose tree was persisted at the tip: opening upgrades it in
# place (m/schema and m/tree in one batch).
# A store of an older version is refused (SchemaVersionError); `ynchain
# node resync` rebuilds it from the peers.
SCHEMA_VERSION = 8
UPGRADABLE_SCHEMAS = (7,)

KEY_SCHEMA = b"m/schema"
KEY_GENESIS = b"m/genesis"
KEY_TIP = b"m/tip"
KEY_SAFETY = b"p/safety"
KEY_KEEP = b"m/keep"
KEY_PRUNED = b"m/pruned"
KEY_TREE = b"m/tree"

BLOCK_INDEX = b"x/"
CERTIFICATE = b"c/"
BLOCK_HASH = b"h/"
TX = b"t/"
STATE = b"s/"
PAYLOAD = b"q/"
STATE_TREE = b"n/"
CHECKPOINT = b"k/"
STALE = b"z/"
WRITTEN = b"w/"

FAMILIES = (b"m/", BLOCK_INDEX, CERTIFICATE, BLOCK_HASH, TX, STATE, b"p/", PAYLOAD, STATE_TREE, CHECKPOINT,
            STALE, WRITTEN)

# Pruning catches up on stale lists at most this many per commit, and stops
# after a list that brings its deletes past PRUNE_NODES: when a checkpoint
# moves the kept version up by K heights, their deletes spread over the next
# few commits instead of landing in one batch.  At one list per commit in
# the steady state, it catches up K heights in K / 3 commits.
PRUNE_LISTS = 4
PRUNE_NODES = 50_000

# Most entries one scan_state call returns: queries page through state, they
# never read a whole family at once.
MAX_SCAN = 1000

# The consensus driver's record is a few hundred bytes; a cap keeps a bug
# from turning every vote into a multi-megabyte fsync.
MAX_SAFETY_RECORD = 1 << 20


def height_key(height: int) -> bytes:
    return height.to_bytes(8, "big")


def prefix_end(prefix: bytes) -> bytes:
    """The least key above every key that starts with `prefix` (non-empty,
    and never all 0xff bytes here: every key starts with a family prefix)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1])


def payload_key(seq: int, digest: bytes) -> bytes:
    return PAYLOAD + height_key(seq) + digest


@dataclass(frozen=True, slots=True)
class Tip:
    """The last committed block, or the empty chain (height 0)."""
    height: int
    block_hash: bytes
    state_root: bytes

    def encode(self) -> bytes:
        return codec.pack([self.height, self.block_hash, self.state_root])

    @classmethod
    def decode(cls, data: bytes) -> "Tip":
        rec = codec.expect_list(codec.unpack(data), 3, "tip")
        codec.expect_uint(rec[0], "tip.height")
        codec.expect_bytes(rec[1], "tip.block_hash", HASH_LEN)
        codec.expect_bytes(rec[2], "tip.state_root", HASH_LEN)
        return cls(rec[0], rec[1], rec[2])


@dataclass(frozen=True, slots=True)
class BlockEntry:
    """x/: a committed block's header record and where its txs are."""
    header: list
    segment: int          # 0 with length 0: a block without txs
    offset: int
    length: int
    txs_offset: int

    def encode(self) -> bytes:
        return codec.pack([self.header, self.segment, self.offset, self.length, self.txs_offset])

    @classmethod
    def decode(cls, data: bytes) -> "BlockEntry":
        rec = codec.expect_list(codec.unpack(data), 5, "block entry")
        codec.expect_list(rec[0], HEADER_FIELDS, "block entry.header")
        for i, what in enumerate(("segment", "offset", "length", "txs_offset"), start=1):
            codec.expect_uint(rec[i], f"block entry.{what}")
        return cls(*rec)


@dataclass(frozen=True, slots=True)
class TxEntry:
    """t/: where a committed tx is and what it did."""
    height: int
    index: int
    receipt: Receipt
    segment: int
    offset: int
    length: int

    @classmethod
    def decode(cls, data: bytes) -> "TxEntry":
        rec = codec.expect_list(codec.unpack(data), 6, "tx entry")
        for i, what in ((0, "height"), (1, "index"), (3, "segment"), (4, "offset"), (5, "length")):
            codec.expect_uint(rec[i], f"tx entry.{what}")
        return cls(rec[0], rec[1], Receipt.from_record(rec[2]), rec[3], rec[4], rec[5])


def encode_tx_entry(height: int, index: int, receipt: Receipt, segment: int, offset: int,
                    length: int, pack: Callable[[Any], bytes] = codec.pack) -> bytes:
    """`pack` lets a commit pass one reusable msgpack.Packer (same bytes,
    half the cost of codec.pack's one-shot packer per call)."""
    return pack([height, index, receipt.to_record(), segment, offset, length])


def encode_ref(segment: int, offset: int, length: int) -> bytes:
    return codec.pack([segment, offset, length])


def decode_ref(data: bytes) -> tuple[int, int, int]:
    rec = codec.expect_list(codec.unpack(data), 3, "segment reference")
    return tuple(codec.expect_uint(v, "segment reference") for v in rec)  # type: ignore[return-value]


def encode_safety(number: int, record: bytes) -> bytes:
    """The number (1, 2, ... per save) orders the record against its copy
    outside the database (storage.safety_copy)."""
    return codec.pack([number, record])


def decode_safety(data: bytes) -> tuple[int, bytes]:
    number, record = codec.expect_list(codec.unpack(data), 2, "safety record")
    return codec.expect_uint(number, "safety.number"), codec.expect_bytes(record, "safety.record")


def encode_checkpoint(proof: bytes, next_epoch: bytes) -> bytes:
    return codec.pack([proof, next_epoch])


def decode_checkpoint(data: bytes) -> tuple[bytes, bytes]:
    proof, next_epoch = codec.expect_list(codec.unpack(data), 2, "kept checkpoint")
    return codec.expect_bytes(proof, "kept checkpoint.proof"), codec.expect_bytes(next_epoch, "kept checkpoint.next_epoch")


def decode_keys(data: bytes) -> list[bytes]:
    """A z/ or w/ list: an array of keys (bin)."""
    keys = codec.unpack(data)
    if type(keys) is not list or not all(type(key) is bytes for key in keys):
        raise codec.DecodeError("expected an array of keys (bin)")
    return keys


def decode_uint(data: bytes) -> int:
    return codec.expect_uint(codec.unpack(data), "value")


def decode_hash(data: bytes) -> bytes:
    return codec.expect_bytes(codec.unpack(data), "value", HASH_LEN)
