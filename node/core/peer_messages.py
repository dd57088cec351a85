"""Node-to-node message types carried in transport envelopes, and the checks
their payloads must pass before the node acts on them.

    CONSENSUS   bytes: a consensus.messages encoding
    TXS         [tx record, ...]                 admitted txs, gossiped once
    STATUS      [height, last_block_hash]        sent on connect and periodically
    GET_BLOCKS  [first_height, last_height]      block-sync request
    BLOCKS      [[block record, certificate record], ...]   block-sync answer
    NEW_BLOCK   [block bytes, certificate record]   a validator pushes what it
                committed to its observers (node.core.follower)
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

NAMES = {CONSENSUS: "consensus", TXS: "txs", STATUS: "status", GET_BLOCKS: "get_blocks",
         BLOCKS: "blocks", NEW_BLOCK: "new_block"}

MAX_GOSSIP_TXS = 5000
MAX_SYNC_BLOCKS = 64          # blocks per GET_BLOCKS answer
MAX_SYNC_BYTES = 8 * 1024 * 1024


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
    codec.expect_list(payload, 2, "GET_BLOCKS")
    first = codec.expect_uint(payload[0], "GET_BLOCKS.first")
    last = codec.expect_uint(payload[1], "GET_BLOCKS.last")
    if first < 1 or last < first:
        raise DecodeError("GET_BLOCKS: expected 1 <= first <= last")
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
