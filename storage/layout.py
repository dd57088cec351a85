"""The on-disk layout: key families and the records stored under them.

Every key starts with a two-byte family prefix; heights in keys are 8-byte
big-endian so LevelDB's byte order is height order.  Values are msgpack
arrays (ledger.codec) unless noted.

    m/schema            -> SCHEMA_VERSION (uint)
    m/genesis           -> genesis hash (bin 32)
    m/tip               -> [last height, last block hash, last state root]
    b/ + height (8 BE)  -> the encoded Block (served to syncing peers as is)
    c/ + height (8 BE)  -> the encoded CommitCertificate
    h/ + block hash     -> height (uint)
    t/ + tx id          -> [height, index in block, receipt record]
    s/ + state key      -> state value (raw bytes, not msgpack)
    p/safety            -> [save number, the consensus safety record (bin, opaque here)]
    q/ + seq (8 BE) + digest -> a prepared payload the safety record refers to (raw bytes)
    n/ + tree node key  -> a state tree node (ledger.state_tree: the key starts with the
                           height that wrote it; every height's nodes are kept, so a
                           state proof can be made at any committed height)
    k/ + height (8 BE)  -> a stable checkpoint proof at that height (consensus.messages.
                           CheckpointProof: 2f+1 signatures over the block hash), the
                           anchor of proof files (ledger.proof_file)

The tip is one record so that height, hash and state root can never disagree,
and it is written in the same batch as the block it points to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable
from ledger import codec
from ledger.crypto import HASH_LEN
from ledger.receipt import Receipt

# 2: a block's tx root covers each tx's signature (ledger.block.tx_root), so
# blocks stored by version 1 no longer verify against their own headers.
# 3: the state starts with the genesis consortium configuration (gov/ tables,
# ledger.config_state), so stores of version 2 hold a state this ynchain cannot run on.
# 4: the state root is the state tree's root (ledger.state_tree) over the whole
# state, its nodes under n/; headers carry a receipt root; stable checkpoint
# proofs are kept (k/).  Roots of version-3 stores mean something else.
SCHEMA_VERSION = 4

KEY_SCHEMA = b"m/schema"
KEY_GENESIS = b"m/genesis"
KEY_TIP = b"m/tip"
KEY_SAFETY = b"p/safety"

BLOCK = b"b/"
CERTIFICATE = b"c/"
BLOCK_HASH = b"h/"
TX = b"t/"
STATE = b"s/"
PAYLOAD = b"q/"
STATE_TREE = b"n/"
CHECKPOINT = b"k/"

FAMILIES = (b"m/", BLOCK, CERTIFICATE, BLOCK_HASH, TX, STATE, b"p/", PAYLOAD, STATE_TREE, CHECKPOINT)

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


def encode_tx_entry(height: int, index: int, receipt: Receipt,
                    pack: Callable[[Any], bytes] = codec.pack) -> bytes:
    """`pack` lets a commit pass one reusable msgpack.Packer (same bytes,
    half the cost of codec.pack's one-shot packer per call)."""
    return pack([height, index, receipt.to_record()])


def decode_tx_entry(data: bytes) -> tuple[int, int, Receipt]:
    rec = codec.expect_list(codec.unpack(data), 3, "tx entry")
    codec.expect_uint(rec[0], "tx entry.height")
    codec.expect_uint(rec[1], "tx entry.index")
    return rec[0], rec[1], Receipt.from_record(rec[2])


def encode_safety(number: int, record: bytes) -> bytes:
    """The number (1, 2, ... per save) orders the record against its copy
    outside the database (storage.safety_copy)."""
    return codec.pack([number, record])


def decode_safety(data: bytes) -> tuple[int, bytes]:
    number, record = codec.expect_list(codec.unpack(data), 2, "safety record")
    return codec.expect_uint(number, "safety.number"), codec.expect_bytes(record, "safety.record")


def decode_uint(data: bytes) -> int:
    return codec.expect_uint(codec.unpack(data), "value")


def decode_hash(data: bytes) -> bytes:
    return codec.expect_bytes(codec.unpack(data), "value", HASH_LEN)
