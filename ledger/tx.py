"""Transactions: the signed unit a department submits.

Wire form (msgpack array):
    [chain_id, sender, nonce, valid_until, contract, method, args, signature]
Signed bytes: TX_DOMAIN + pack([chain_id, sender, nonce, valid_until, contract, method, args]).
Id: blake2b-256 of the signed bytes, so it is fixed before signing and no
re-encoding of the signature can change it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import codec
from .codec import DecodeError
from .crypto import PUBKEY_LEN, SIG_LEN, KeyPair, hash256, verify

TX_DOMAIN = b"ynchain/tx/v1\x00"
MAX_TX_BYTES = 64 * 1024
MAX_NAME_LEN = 64          # contract and method names
MAX_CHAIN_ID_LEN = 64


@dataclass(frozen=True, slots=True)
class Transaction:
    chain_id: str
    sender: bytes
    nonce: int
    valid_until: int
    contract: str
    method: str
    args: Any
    signature: bytes = b""
    # Caches: the signed payload, id and record bytes are computed once per object.
    _payload: bytes | None = field(default=None, compare=False, repr=False)
    _id: bytes | None = field(default=None, compare=False, repr=False)
    _record: bytes | None = field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, key: KeyPair, chain_id: str, nonce: int, valid_until: int,
               contract: str, method: str, args: Any) -> "Transaction":
        unsigned = cls(chain_id, key.public_key, nonce, valid_until, contract, method, args)
        return unsigned.signed(key)

    def signed(self, key: KeyPair) -> "Transaction":
        payload = self.signing_bytes()
        return Transaction(self.chain_id, self.sender, self.nonce, self.valid_until,
                           self.contract, self.method, self.args, key.sign(payload), payload)

    def _fields(self) -> list:
        return [self.chain_id, self.sender, self.nonce, self.valid_until,
                self.contract, self.method, self.args]

    def signing_bytes(self) -> bytes:
        payload = self._payload
        if payload is None:
            payload = TX_DOMAIN + codec.pack(self._fields())
            object.__setattr__(self, "_payload", payload)
        return payload

    @property
    def id(self) -> bytes:
        tx_id = self._id
        if tx_id is None:
            tx_id = hash256(self.signing_bytes())
            object.__setattr__(self, "_id", tx_id)
        return tx_id

    @property
    def encoded_size(self) -> int:
        """len(self.encode()) without encoding again: the record is the signed
        array plus one bin field (2-byte header for a signature under 256 bytes),
        and 7 or 8 fields both take a one-byte array header."""
        return len(self.signing_bytes()) - len(TX_DOMAIN) + 2 + len(self.signature)

    def verify_signature(self) -> bool:
        return verify(self.sender, self.signing_bytes(), self.signature)

    def to_record(self) -> list:
        return [*self._fields(), self.signature]

    @property
    def record_bytes(self) -> bytes:
        """encode(), derived from the signed bytes without packing again: the
        record is the signed array with one more element (7 and 8 elements
        both take a one-byte array header) and a bin field for the signature.
        Keys of the mempool's record index (a proposal's tx records are looked
        up there instead of decoded: node.core.mempool)."""
        record = self._record
        if record is None:
            signature = self.signature
            if len(signature) < 256:
                record = (b"\x98" + self.signing_bytes()[len(TX_DOMAIN) + 1:]
                          + b"\xc4" + bytes([len(signature)]) + signature)
            else:
                record = codec.pack(self.to_record())
            object.__setattr__(self, "_record", record)
        return record

    def encode(self) -> bytes:
        return self.record_bytes

    @classmethod
    def from_record(cls, rec: Any) -> "Transaction":
        codec.expect_list(rec, 8, "transaction")
        chain_id, sender, nonce, valid_until, contract, method, args, sig = rec
        codec.expect_str(chain_id, "transaction.chain_id", MAX_CHAIN_ID_LEN)
        codec.expect_bytes(sender, "transaction.sender", PUBKEY_LEN)
        codec.expect_uint(nonce, "transaction.nonce")
        codec.expect_uint(valid_until, "transaction.valid_until")
        codec.expect_str(contract, "transaction.contract", MAX_NAME_LEN)
        codec.expect_str(method, "transaction.method", MAX_NAME_LEN)
        codec.check_plain(args, "transaction.args")
        codec.expect_bytes(sig, "transaction.signature", SIG_LEN)
        return cls(chain_id, sender, nonce, valid_until, contract, method, args, sig)

    @classmethod
    def decode(cls, data: bytes) -> "Transaction":
        if len(data) > MAX_TX_BYTES:
            raise DecodeError(f"transaction larger than {MAX_TX_BYTES} bytes")
        return cls.from_record(codec.unpack(data))
