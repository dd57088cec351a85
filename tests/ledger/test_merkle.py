"""Merkle roots and inclusion proofs."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.block import tx_proof, tx_root, verify_tx_proof
from ledger.crypto import hash256
from ledger.merkle import EMPTY_ROOT, leaf_hash, merkle_proof, merkle_root, node_hash, verify_proof
from tests.factories import make_genesis, make_tx


def _items(n: int) -> list[bytes]:
    return [hash256(i.to_bytes(4, "big")) for i in range(n)]


def _reference_root(items: list[bytes]) -> bytes:
    """Straightforward recursive definition (an odd node is carried up)."""
    level = [leaf_hash(i) for i in items]
    while len(level) > 1:
        pairs = [level[i:i + 2] for i in range(0, len(level), 2)]
        level = [node_hash(*p) if len(p) == 2 else p[0] for p in pairs]
    return level[0]


def test_empty_root_is_a_constant() -> None:
    assert merkle_root([]) == EMPTY_ROOT
    assert merkle_root(_items(1)) == leaf_hash(_items(1)[0]) != EMPTY_ROOT


@pytest.mark.parametrize("n", range(1, 41))
def test_roots_and_proofs(n: int) -> None:
    items = _items(n)
    root = merkle_root(items)
    assert root == _reference_root(items)
    assert merkle_root(items[:-1] + [hash256(b"other")]) != root
    for i, item in enumerate(items):
        proof = merkle_proof(items, i)
        assert len(proof) <= max(1, (n - 1).bit_length())
        assert verify_proof(item, proof, root)
        assert not verify_proof(hash256(b"not in tree"), proof, root)
        if n > 1:
            assert not verify_proof(items[(i + 1) % n], proof, root)
        for j, (is_left, sibling) in enumerate(proof):
            flipped = list(proof)
            flipped[j] = (not is_left, sibling)
            assert not verify_proof(item, flipped, root)
            corrupted = list(proof)
            corrupted[j] = (is_left, hash256(sibling))
            assert not verify_proof(item, corrupted, root)
        if proof:
            assert not verify_proof(item, proof[:-1], root)


def test_order_matters() -> None:
    items = _items(5)
    assert merkle_root(items) != merkle_root(items[::-1])


def test_a_node_cannot_pass_for_a_leaf() -> None:
    items = _items(4)
    inner = node_hash(leaf_hash(items[0]), leaf_hash(items[1]))
    assert merkle_root([inner, node_hash(leaf_hash(items[2]), leaf_hash(items[3]))]) != merkle_root(items)


def test_proof_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        merkle_proof(_items(3), 3)
    with pytest.raises(IndexError):
        merkle_proof([], 0)


def test_tx_inclusion_proofs_bind_the_signature() -> None:
    """An offline verifier holding a certified header proves "the tx with this
    id and this signature is in the block", and nothing else."""
    genesis, _, accounts = make_genesis()
    txs = [make_tx(accounts["finance"], genesis, nonce=i) for i in range(5)]
    root = tx_root(txs)
    for i, tx in enumerate(txs):
        proof = tx_proof(txs, i)
        assert verify_tx_proof(tx.id, tx.signature, proof, root)
        assert not verify_tx_proof(tx.id, bytes(64), proof, root)
        assert not verify_tx_proof(tx.id, txs[(i + 1) % 5].signature, proof, root)
        assert not verify_tx_proof(tx.id + tx.signature[:32], tx.signature[32:], proof, root)
    assert tx_root(txs[:4] + [dataclasses.replace(txs[4], signature=bytes(64))]) != root
