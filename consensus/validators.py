"""The validator set: who may vote, how many votes decide, who leads a view.

Everything in the core that depends on the membership goes through this one
type: the number of validators n, the fault bound f, the quorum, the primary
of a view, and signature checks against a validator's key.  One ValidatorSet
per epoch (consensus/epochs.py): the set in force at a seq is the one of the
epoch that contains it.
"""

from __future__ import annotations

from typing import Sequence

from ledger.certificate import MAX_VALIDATORS, quorum_size
from ledger.crypto import PUBKEY_LEN, verify

from .errors import LocalProtocolError


class ValidatorSet:
    """The validators of one epoch, named by their index in `keys` (the
    epoch's order).

    f = (n - 1) // 3 faults are tolerated; a quorum is ceil((n + f + 1) / 2),
    which is 2f + 1 when n = 3f + 1 (two quorums always share a correct
    validator).  The primary of view v in epoch e is validator (e + v) mod n:
    the rotation goes on across epochs instead of restarting at index 0."""

    __slots__ = ("keys", "n", "f", "quorum", "epoch", "_index")

    def __init__(self, keys: Sequence[bytes], epoch: int = 0) -> None:
        keys = tuple(keys)
        n = len(keys)
        if not 1 <= n <= MAX_VALIDATORS:
            raise LocalProtocolError(f"validators: need 1..{MAX_VALIDATORS}, got {n}")
        if any(type(k) is not bytes or len(k) != PUBKEY_LEN for k in keys):
            raise LocalProtocolError("validators: every key must be 32 bytes")
        if len(set(keys)) != n:
            raise LocalProtocolError("validators: duplicate key")
        self.keys = keys
        self.n = n
        self.f = (n - 1) // 3
        self.quorum = quorum_size(n)
        self.epoch = epoch
        self._index = {key: i for i, key in enumerate(keys)}

    def index_of(self, key: bytes) -> int | None:
        """The index of validator `key` in this set, None if it is not in it."""
        return self._index.get(key)

    def __contains__(self, index: object) -> bool:
        return type(index) is int and 0 <= index < self.n

    def primary(self, view: int) -> int:
        return (self.epoch + view) % self.n

    def verify(self, index: int, data: bytes, signature: bytes) -> bool:
        """`signature` over `data` is validator `index`'s (False for an index
        outside the set: a decoded message may name any index up to the
        protocol maximum)."""
        return index < self.n and verify(self.keys[index], data, signature)
