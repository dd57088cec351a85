"""Transaction signatures: domain separation, tamper evidence, stable ids."""

from __future__ import annotations

import dataclasses

import pytest

from ledger import codec
from ledger.crypto import KeyPair, verify
from ledger.tx import TX_DOMAIN, Transaction

KEY = KeyPair.from_seed(b"\x07" * 32)


def _tx() -> Transaction:
    return Transaction.create(KEY, "chain-a", 5, 100, "kv", "put", {"key": "k", "value": [1, b"x"]})


def test_signature_verifies_and_covers_the_domain_prefix() -> None:
    tx = _tx()
    assert tx.verify_signature()
    payload = codec.pack([tx.chain_id, tx.sender, tx.nonce, tx.valid_until,
                          tx.contract, tx.method, tx.args])
    assert tx.signing_bytes() == TX_DOMAIN + payload
    assert verify(tx.sender, TX_DOMAIN + payload, tx.signature)
    assert not verify(tx.sender, payload, tx.signature)


def test_signature_over_the_bare_payload_does_not_verify() -> None:
    tx = _tx()
    bare = codec.pack(tx.to_record()[:7])
    forged = dataclasses.replace(tx, signature=KEY.sign(bare), _payload=None, _id=None, _record=None)
    assert not forged.verify_signature()


@pytest.mark.parametrize("field, value", [
    ("chain_id", "chain-b"), ("sender", KeyPair.from_seed(b"\x08" * 32).public_key),
    ("nonce", 6), ("valid_until", 101), ("contract", "fiscal"), ("method", "delete"),
    ("args", {"key": "k", "value": [1, b"y"]}),
])
def test_tampering_any_field_breaks_the_signature(field: str, value) -> None:
    tx = _tx()
    tampered = dataclasses.replace(tx, **{field: value}, _payload=None, _id=None, _record=None)
    assert not tampered.verify_signature()
    assert tampered.id != tx.id
    # also after a trip through the wire, where no cache survives
    assert not Transaction.decode(tampered.encode()).verify_signature()


def test_tampered_signature_fails() -> None:
    tx = _tx()
    sig = bytearray(tx.signature)
    sig[0] ^= 1
    assert not dataclasses.replace(tx, signature=bytes(sig)).verify_signature()


def test_id_is_stable_and_independent_of_the_signature() -> None:
    a, b = _tx(), _tx()
    assert a.id == b.id and len(a.id) == 32
    decoded = Transaction.decode(a.encode())
    assert decoded.id == a.id and decoded.verify_signature()
    resigned = dataclasses.replace(a, signature=bytes(64))
    assert resigned.id == a.id
    assert Transaction.create(KEY, "chain-a", 6, 100, "kv", "put", a.args).id != a.id
