"""Binary Merkle tree over byte strings (RFC 6962 style).

Leaves and inner nodes are hashed with different one-byte prefixes so a leaf
can never be passed off as a node (second-preimage safety); an odd node is
carried up unchanged, so every inclusion proof is a plain list of siblings.

The tree is generic over its items; what a block's tx root commits to per
transaction (its id and its signature) is ledger.block.tx_item.
"""

from __future__ import annotations

from .crypto import hash256

LEAF = b"\x00"
NODE = b"\x01"
EMPTY_ROOT = hash256(b"ynchain/merkle/empty")


def leaf_hash(item: bytes) -> bytes:
    return hash256(LEAF + item)


def node_hash(left: bytes, right: bytes) -> bytes:
    return hash256(NODE + left + right)


def _next_level(level: list[bytes]) -> list[bytes]:
    nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        nxt.append(level[-1])
    return nxt


def merkle_root(items: list[bytes] | tuple[bytes, ...]) -> bytes:
    if not items:
        return EMPTY_ROOT
    level = [leaf_hash(i) for i in items]
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_proof(items: list[bytes] | tuple[bytes, ...], index: int) -> list[tuple[bool, bytes]]:
    """Siblings from leaf to root as (sibling_is_left, hash) pairs."""
    if not 0 <= index < len(items):
        raise IndexError("leaf index out of range")
    level = [leaf_hash(i) for i in items]
    proof: list[tuple[bool, bytes]] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append((sibling < index, level[sibling]))
        level, index = _next_level(level), index // 2
    return proof


def verify_proof(item: bytes, proof: list[tuple[bool, bytes]], root: bytes) -> bool:
    h = leaf_hash(item)
    for sibling_is_left, sibling in proof:
        h = node_hash(sibling, h) if sibling_is_left else node_hash(h, sibling)
    return h == root
