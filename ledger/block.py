"""Blocks, and the proposal digest that consensus orders.

A block header has two kinds of fields:
  * proposed — chain_id, height, view (the view it was first proposed in),
    proposer, timestamp_ms, tx_root: fixed by the primary; their digest
    (`proposal_digest`) is what PBFT votes on and what a commit certificate
    signs (a re-proposal after a view change keeps them, so the certificate's
    view may be higher than the header's);
  * derived at commit — prev_hash, state_root (the state tree's root after
    executing this block) and receipt_root (ledger.execution.receipt_root over
    the block's receipts): computed by every node identically from the
    committed history.  A commit certificate does not sign them; a stable
    checkpoint does (it signs the block hash), and every header chains to its
    parent, so a checkpoint at height C certifies every header up to C
    (what proof files rely on, ledger.proof_file).
Splitting them lets the primary pipeline several heights before the previous
one is executed, and survives view changes that turn a height into a null
block, while the block hash still chains every header to its parent.
A null block (PBFT's null request after a view change) has no txs, proposer "",
the parent's view and timestamp, and the constant digest NULL_DIGEST.

The tx root is a Merkle root over `tx_item(id, signature)` of each tx.  A tx id
does not cover its signature, so a root over ids alone would leave the
signature bytes of a committed block uncertified: a peer serving it, or a
faulty primary re-proposing it after a view change, could swap them under the
same certificate.  With both in the leaf the proposal digest, and so the
certificate, covers every byte of every tx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import msgpack

from . import codec
from .codec import DecodeError
from .crypto import HASH_LEN, SIG_LEN, hash256
from .merkle import merkle_proof, merkle_root, verify_proof
from .tx import MAX_CHAIN_ID_LEN, Transaction

PROPOSAL_DOMAIN = b"ynchain/proposal/v1\x00"
HEADER_DOMAIN = b"ynchain/header/v1\x00"
NULL_DIGEST = bytes(HASH_LEN)
GENESIS_HASH = bytes(HASH_LEN)     # prev_hash of height 1
MAX_BLOCK_TXS = 100_000
MAX_NAME_LEN = 64


def tx_item(tx_id: bytes, signature: bytes) -> bytes:
    """The Merkle item of one tx in its block's tx root.  Both parts have a
    fixed length in any decodable block (an id is a hash, a signature SIG_LEN
    bytes), so the concatenation is unambiguous and costs one leaf hash."""
    return tx_id + signature


def _tx_items(txs: tuple[Transaction, ...] | list[Transaction]) -> list[bytes]:
    return [tx.id + tx.signature for tx in txs]     # tx_item, inlined (a call per tx costs)


def tx_root(txs: tuple[Transaction, ...] | list[Transaction]) -> bytes:
    return merkle_root(_tx_items(txs))


def tx_proof(txs: tuple[Transaction, ...] | list[Transaction], index: int) -> list[tuple[bool, bytes]]:
    """Inclusion proof of txs[index] in tx_root(txs)."""
    return merkle_proof(_tx_items(txs), index)


def verify_tx_proof(tx_id: bytes, signature: bytes, proof: list[tuple[bool, bytes]],
                    root: bytes) -> bool:
    """Whether the tx with this id *and this signature* is under `root` (a
    block header's tx_root): what an offline verifier holding the header and
    its certificate needs, without the block."""
    if len(tx_id) != HASH_LEN or len(signature) != SIG_LEN:
        return False
    return verify_proof(tx_item(tx_id, signature), proof, root)


def proposal_digest(chain_id: str, height: int, view: int, proposer: str, timestamp_ms: int,
                    tx_root: bytes) -> bytes:
    return hash256(PROPOSAL_DOMAIN + codec.pack([chain_id, height, view, proposer, timestamp_ms, tx_root]))


HEADER_FIELDS = 9          # a header record's length (BlockHeader.to_record)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int
    view: int
    prev_hash: bytes
    tx_root: bytes
    state_root: bytes
    receipt_root: bytes
    proposer: str
    timestamp_ms: int
    _hash: bytes | None = field(default=None, compare=False, repr=False)

    def to_record(self) -> list:
        return [self.chain_id, self.height, self.view, self.prev_hash, self.tx_root,
                self.state_root, self.receipt_root, self.proposer, self.timestamp_ms]

    def encode(self) -> bytes:
        return codec.pack(self.to_record())

    @property
    def hash(self) -> bytes:
        h = self._hash
        if h is None:
            h = hash256(HEADER_DOMAIN + self.encode())
            object.__setattr__(self, "_hash", h)
        return h

    @property
    def is_null(self) -> bool:
        return self.proposer == ""

    def proposal_digest(self) -> bytes:
        if self.is_null:
            return NULL_DIGEST
        return proposal_digest(self.chain_id, self.height, self.view, self.proposer,
                               self.timestamp_ms, self.tx_root)

    @classmethod
    def from_record(cls, rec: Any) -> "BlockHeader":
        codec.expect_list(rec, HEADER_FIELDS, "header")
        chain_id, height, view, prev_hash, tx_root, state_root, receipt_root, proposer, ts = rec
        codec.expect_str(chain_id, "header.chain_id", MAX_CHAIN_ID_LEN)
        codec.expect_uint(height, "header.height")
        codec.expect_uint(view, "header.view")
        codec.expect_bytes(prev_hash, "header.prev_hash", HASH_LEN)
        codec.expect_bytes(tx_root, "header.tx_root", HASH_LEN)
        codec.expect_bytes(state_root, "header.state_root", HASH_LEN)
        codec.expect_bytes(receipt_root, "header.receipt_root", HASH_LEN)
        codec.expect_str(proposer, "header.proposer", MAX_NAME_LEN)
        codec.expect_uint(ts, "header.timestamp_ms")
        return cls(chain_id, height, view, prev_hash, tx_root, state_root, receipt_root, proposer, ts)

    @classmethod
    def decode(cls, data: bytes) -> "BlockHeader":
        return cls.from_record(codec.unpack(data))


@dataclass(frozen=True, slots=True)
class Proposal:
    """What the primary puts in a PRE-PREPARE: the proposed header fields and
    the transactions.  An empty payload (b"") is the null proposal."""

    chain_id: str
    height: int
    view: int
    proposer: str
    timestamp_ms: int
    txs: tuple[Transaction, ...]
    _root: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def tx_root(self) -> bytes:
        root = self._root
        if root is None:
            root = tx_root(self.txs)
            object.__setattr__(self, "_root", root)
        return root

    def digest(self) -> bytes:
        return proposal_digest(self.chain_id, self.height, self.view, self.proposer,
                               self.timestamp_ms, self.tx_root)

    def encode(self) -> bytes:
        """codec.pack of [chain_id, height, view, proposer, timestamp_ms, [tx
        records]], built from each tx's record bytes (no packing per tx)."""
        head = codec.pack([self.chain_id, self.height, self.view, self.proposer, self.timestamp_ms])
        return (b"\x96" + head[1:] + codec.array_header(len(self.txs))
                + b"".join([tx.record_bytes for tx in self.txs]))

    @classmethod
    def decode(cls, data: bytes,
               known: Callable[[bytes], Transaction | None] | None = None) -> "Proposal":
        """`known(record bytes)` may answer a tx this node decoded already (the
        mempool's, by its exact record bytes): it is taken as is, with its id
        and checked signature, instead of being decoded and hashed again.  The
        others are decoded from their own bytes."""
        unpacker = codec.unpacker(len(data))
        unpacker.feed(data)
        txs: list[Transaction] = []
        with codec.decoding("proposal"):
            if unpacker.read_array_header() != 6:
                raise DecodeError("proposal: expected an array of 6 fields")
            chain_id, height, view, proposer, ts = [unpacker.unpack() for _ in range(5)]
            spans = _tx_record_spans(unpacker)
            for start, length in spans:
                raw = data[start:start + length]
                tx = known(raw) if known is not None else None
                txs.append(tx if tx is not None else Transaction.from_record(codec.unpack(raw)))
        if unpacker.tell() != len(data):
            raise DecodeError("proposal: trailing bytes")
        codec.expect_str(chain_id, "proposal.chain_id", MAX_CHAIN_ID_LEN)
        codec.expect_uint(height, "proposal.height")
        codec.expect_uint(view, "proposal.view")
        codec.expect_str(proposer, "proposal.proposer", MAX_NAME_LEN)
        if not proposer:
            raise DecodeError("proposal.proposer: must not be empty")
        codec.expect_uint(ts, "proposal.timestamp_ms")
        return cls(chain_id, height, view, proposer, ts, tuple(txs))


def proposal_tx_spans(payload: bytes) -> tuple[int, list[tuple[int, int]]]:
    """Where a proposal payload keeps its txs: (offset of the txs array, [(offset,
    length) of each tx record]), found by skipping through the bytes (msgpack's
    C unpacker; nothing is decoded).  The store keeps the payload as received and
    serves blocks and single txs from these spans.  DecodeError if the payload
    is not a 6-field array whose last field is an array."""
    unpacker = msgpack.Unpacker(max_buffer_size=max(len(payload), 1))
    unpacker.feed(payload)
    with codec.decoding("proposal"):
        if unpacker.read_array_header() != 6:
            raise DecodeError("proposal: expected 6 fields")
        for _ in range(5):
            unpacker.skip()
        txs_offset = unpacker.tell()
        spans = _tx_record_spans(unpacker)
    if unpacker.tell() != len(payload):
        raise DecodeError("proposal: trailing bytes")
    return txs_offset, spans


def _tx_record_spans(unpacker: msgpack.Unpacker) -> list[tuple[int, int]]:
    """(offset, length) of each record of the txs array the unpacker is at,
    skipped over, not decoded."""
    count = unpacker.read_array_header()
    if count > MAX_BLOCK_TXS:
        raise DecodeError(f"proposal.txs: more than {MAX_BLOCK_TXS} transactions")
    spans = []
    start = unpacker.tell()
    for _ in range(count):
        unpacker.skip()
        end = unpacker.tell()
        spans.append((start, end - start))
        start = end
    return spans


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    txs: tuple[Transaction, ...]

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def hash(self) -> bytes:
        return self.header.hash

    def to_record(self) -> list:
        return [self.header.to_record(), [tx.to_record() for tx in self.txs]]

    def encode(self) -> bytes:
        return codec.pack(self.to_record())

    @classmethod
    def from_record(cls, rec: Any) -> "Block":
        codec.expect_list(rec, 2, "block")
        header = BlockHeader.from_record(rec[0])
        if not isinstance(rec[1], list) or len(rec[1]) > MAX_BLOCK_TXS:
            raise DecodeError(f"block.txs: expected an array of at most {MAX_BLOCK_TXS} transactions")
        return cls(header, tuple(Transaction.from_record(t) for t in rec[1]))

    @classmethod
    def decode(cls, data: bytes) -> "Block":
        return cls.from_record(codec.unpack(data))

    @staticmethod
    def decode_header(data: bytes) -> tuple[BlockHeader, int]:
        """The header and tx count of an encoded block, its txs left undecoded:
        a list of blocks for people reads many headers and no tx."""
        header, count = codec.unpack_head(data)
        if count > MAX_BLOCK_TXS:
            raise DecodeError(f"block.txs: expected an array of at most {MAX_BLOCK_TXS} transactions")
        return BlockHeader.from_record(header), count
