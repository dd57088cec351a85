"""Node-to-node message types carried in transport envelopes, and the checks
their payloads must pass before the node acts on them.

    CONSENSUS   bytes: a consensus.messages encoding
    TXS         [tx record, ...]                 admitted txs, gossiped once
    STATUS      [height, last_block_hash]        sent on connect and periodically
    GET_BLOCKS  [first_height, last_height]      block-sync request
    BLOCKS      [[block record, certificate record], ...]   block-sync answer
    NEW_BLOCK   [block bytes, certificate record]   a validator pushes what it
                committed to its observers (node.core.follower)
    GET_CHECKPOINTS [first_height, last_height]  kept stable checkpoints wanted
                (node.core.checkpoint_fetch, after a block sync)
    CHECKPOINTS [[seq, proof bytes, next-epoch proof bytes], ...]   the kept
                checkpoints in [first, last], ascending seq, as stored
                (Store.checkpoints_between): at most MAX_SYNC_CHECKPOINTS and
                MAX_SYNC_BYTES; the requester asks on from after the last one
                while one may be left in its range

GET_CHECKPOINTS and CHECKPOINTS came after PROTOCOL_VERSION 5 without a bump:
a node that does not know them counts a fault for the request and drops it,
so a requester takes "no answer within its timeout" as "none from that peer".
"""

from __future__ import annotations

from typing import Any

from ledger import codec
from ledger.block import Block
from ledger.certificate import CommitCertificate
from ledger.codec import DecodeError
from ledger.crypto import HASH_LEN
from ledger.tx import Transaction

CONSENSUS = 1
TXS = 2
STATUS = 3
GET_BLOCKS = 4
BLOCKS = 5
NEW_BLOCK = 6
GET_CHECKPOINTS = 7
CHECKPOINTS = 8

NAMES = {CONSENSUS: "consensus", TXS: "txs", STATUS: "status", GET_BLOCKS: "get_blocks",
         BLOCKS: "blocks", NEW_BLOCK: "new_block", GET_CHECKPOINTS: "get_checkpoints",
         CHECKPOINTS: "checkpoints"}

MAX_GOSSIP_TXS = 5000
MAX_SYNC_BLOCKS = 64          # blocks per GET_BLOCKS answer
MAX_SYNC_BYTES = 8 * 1024 * 1024
MAX_SYNC_CHECKPOINTS = 256    # kept checkpoints per CHECKPOINTS answer (K = 16: 4,096 blocks)


def decode_txs(payload: Any) -> list[Transaction | None]:
    """Each element decoded, None where malformed (the rest still count)."""
    if not isinstance(payload, list) or len(payload) > MAX_GOSSIP_TXS:
        raise DecodeError("TXS: expected an array of transactions")
    out: list[Transaction | None] = []
    for rec in payload:
        try:
            out.append(Transaction.from_record(rec))
        except DecodeError:
            out.append(None)
    return out


def decode_status(payload: Any) -> tuple[int, bytes]:
    codec.expect_list(payload, 2, "STATUS")
    return codec.expect_uint(payload[0], "STATUS.height"), codec.expect_bytes(payload[1], "STATUS.hash", HASH_LEN)


def decode_get_blocks(payload: Any) -> tuple[int, int]:
    first, last = _heights(payload, "GET_BLOCKS")
    return first, min(last, first + MAX_SYNC_BLOCKS - 1)


def decode_blocks(payload: Any) -> list[tuple[Block, CommitCertificate]]:
    if not isinstance(payload, list) or len(payload) > MAX_SYNC_BLOCKS:
        raise DecodeError("BLOCKS: expected an array of at most "
                          f"{MAX_SYNC_BLOCKS} [block, certificate] pairs")
    return [_block_and_certificate(item, "BLOCKS") for item in payload]


def decode_new_block(payload: Any) -> tuple[Block, CommitCertificate]:
    return _block_and_certificate(payload, "NEW_BLOCK")


def _block_and_certificate(item: Any, what: str) -> tuple[Block, CommitCertificate]:
    codec.expect_list(item, 2, what)
    return (Block.from_record(codec.unpack(codec.expect_bytes(item[0], f"{what}.block"))),
            CommitCertificate.from_record(item[1]))


def decode_get_checkpoints(payload: Any) -> tuple[int, int]:
    return _heights(payload, "GET_CHECKPOINTS")


def _heights(payload: Any, what: str) -> tuple[int, int]:
    """A request's [first, last] heights, 1 <= first <= last."""
    codec.expect_list(payload, 2, what)
    first = codec.expect_uint(payload[0], f"{what}.first")
    last = codec.expect_uint(payload[1], f"{what}.last")
    if first < 1 or last < first:
        raise DecodeError(f"{what}: expected 1 <= first <= last")
    return first, last


def decode_checkpoints(payload: Any) -> list[tuple[int, bytes, bytes]]:
    """(seq, encoded proof, encoded next-epoch proof) in strictly ascending
    seq; what they hold is checked by the fetcher (node.core.checkpoint_fetch)."""
    if not isinstance(payload, list) or len(payload) > MAX_SYNC_CHECKPOINTS:
        raise DecodeError(f"CHECKPOINTS: expected an array of at most {MAX_SYNC_CHECKPOINTS} "
                          "[seq, proof, next epoch proof] entries")
    out: list[tuple[int, bytes, bytes]] = []
    total = 0
    for item in payload:
        codec.expect_list(item, 3, "CHECKPOINTS entry")
        seq = codec.expect_uint(item[0], "CHECKPOINTS.seq")
        proof = codec.expect_bytes(item[1], "CHECKPOINTS.proof")
        next_epoch = codec.expect_bytes(item[2], "CHECKPOINTS.next_epoch")
        if seq < 1 or (out and seq <= out[-1][0]):
            raise DecodeError("CHECKPOINTS: expected seqs >= 1 in strictly ascending order")
        total += len(proof) + len(next_epoch)
        if total > MAX_SYNC_BYTES:
            raise DecodeError(f"CHECKPOINTS: more than {MAX_SYNC_BYTES} bytes of proofs")
        out.append((seq, proof, next_epoch))
    return out
