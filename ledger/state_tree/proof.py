"""State proofs: their encoding and the offline check.

Pure functions of (root, key, value, proof): no store, no node, no clock, so
an offline verifier needs nothing but this module, format.py and the root
taken from a certified header.  The format is specified in the package
docstring (ledger/state_tree/__init__.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import codec
from ..codec import DecodeError
from ..crypto import HASH_LEN
from .format import (EMPTY_ROOT, FULL_BITMAP, MAX_DEPTH, RADIX, key_path, leaf_hash, nibble,
                     page_hash, same_prefix, value_hash)

PROOF_FORMAT = 1
# 64 levels of 15 siblings (array, bitmap and bin headers <= 8 bytes a level),
# the header and the longest terminal: nothing longer is a proof.
MAX_PROOF_BYTES = 8 + MAX_DEPTH * (8 + (RADIX - 1) * HASH_LEN) + 72

Terminal = None | bytes | tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class StateProof:
    """What the tree holds for one key, and the pages on the way to it.

    levels[i] = (bitmap, siblings) for the page at depth i on the key's path:
    its occupancy bitmap and the hashes of its children other than the one on
    the path (all of them in the last page when the path's slot is empty).
    terminal: None (no key below the path's last page, or an empty tree),
    the key's value hash (the key is present), or (path, value hash) of the
    one other key whose leaf sits where the key would be (absent).
    """
    levels: tuple[tuple[int, bytes], ...]
    terminal: Terminal

    @property
    def value_hash(self) -> bytes | None:
        """The value hash this proof shows for its key; None if it shows the
        key absent.  Meaningful only once `check` accepts the proof."""
        return self.terminal if type(self.terminal) is bytes else None

    def to_record(self) -> list:
        t = self.terminal
        return [PROOF_FORMAT, [[b, s] for b, s in self.levels],
                list(t) if type(t) is tuple else t]

    def encode(self) -> bytes:
        return codec.pack(self.to_record())

    @classmethod
    def from_record(cls, rec: Any) -> "StateProof":
        codec.expect_list(rec, 3, "state proof")
        if type(rec[0]) is not int or rec[0] != PROOF_FORMAT:
            shown = rec[0] if type(rec[0]) is int else type(rec[0]).__name__
            raise DecodeError(f"state proof: unknown format {shown} (this code reads {PROOF_FORMAT})")
        raw_levels = rec[1]
        if type(raw_levels) is not list or len(raw_levels) > MAX_DEPTH:
            raise DecodeError(f"state proof: levels must be an array of at most {MAX_DEPTH}")
        levels = []
        for i, level in enumerate(raw_levels):
            codec.expect_list(level, 2, f"state proof level {i}")
            bitmap = codec.expect_uint(level[0], f"state proof level {i} bitmap", FULL_BITMAP)
            if not bitmap:
                raise DecodeError(f"state proof level {i}: empty page")
            # at most 15: the slot on the path is either the one left out or empty
            siblings = codec.expect_bytes(level[1], f"state proof level {i} siblings",
                                          max_len=(RADIX - 1) * HASH_LEN)
            if len(siblings) % HASH_LEN:
                raise DecodeError(f"state proof level {i}: siblings are not whole hashes")
            levels.append((bitmap, siblings))
        t = rec[2]
        if t is None:
            terminal: Terminal = None
        elif type(t) is bytes:
            terminal = codec.expect_bytes(t, "state proof value hash", HASH_LEN)
        else:
            codec.expect_list(t, 2, "state proof neighbour leaf")
            terminal = (codec.expect_bytes(t[0], "state proof neighbour path", HASH_LEN),
                        codec.expect_bytes(t[1], "state proof neighbour value hash", HASH_LEN))
        return cls(tuple(levels), terminal)

    @classmethod
    def decode(cls, data: bytes) -> "StateProof":
        """Decode an encoded proof; any input that is not the canonical
        encoding of a well-formed proof raises DecodeError (and only that)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError(f"state proof: expected bytes, got {type(data).__name__}")
        if len(data) > MAX_PROOF_BYTES:
            raise DecodeError(f"state proof: {len(data)} bytes, at most {MAX_PROOF_BYTES}")
        proof = cls.from_record(codec.unpack(bytes(data)))
        if proof.encode() != data:
            raise DecodeError("state proof: not in canonical encoding")
        return proof


def check(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> str | None:
    """None if `proof` shows that, in the tree whose root hash is `root`,
    `key` holds `value` (value None: `key` is absent); otherwise the first
    reason it does not."""
    path = key_path(key)
    levels = proof.levels
    depth = len(levels)
    if depth > MAX_DEPTH:
        return f"the proof has {depth} levels, a path has {MAX_DEPTH} nibbles"
    t = proof.terminal
    if t is None:
        if value is not None:
            return "the proof shows the key absent (an empty slot)"
        h = None
    elif type(t) is bytes:
        if value is None:
            return "the proof shows the key present"
        if value_hash(value) != t:
            return "the proof shows the key holding another value"
        h = leaf_hash(path, t)
    else:
        other, other_vhash = t
        if value is not None:
            return "the proof shows the key absent (another key's leaf is in its place)"
        if other == path:
            return "the proof's neighbour leaf is the key itself"
        if not same_prefix(other, path, depth):
            return f"the proof's neighbour leaf is not on the key's path at depth {depth}"
        h = leaf_hash(other, other_vhash)
    for d in range(depth - 1, -1, -1):
        bitmap, siblings = levels[d]
        bit = 1 << nibble(path, d)
        count = bitmap.bit_count()
        if h is None:
            if bitmap & bit:
                return f"page at depth {d} has a child on the key's path, the proof says none"
            if len(siblings) != HASH_LEN * count:
                return f"page at depth {d}: {len(siblings) // HASH_LEN} hashes for {count} children"
            children = siblings
        else:
            if not bitmap & bit:
                return f"page at depth {d} has no child on the key's path"
            if len(siblings) != HASH_LEN * (count - 1):
                return f"page at depth {d}: {len(siblings) // HASH_LEN} sibling hashes for {count} children"
            at = HASH_LEN * (bitmap & (bit - 1)).bit_count()
            children = siblings[:at] + h + siblings[at:]
        h = page_hash(bitmap, children)
    if h is None:
        h = EMPTY_ROOT
    if h != root:
        return "the proof does not lead to the state root"
    return None


def verify(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    """True iff `proof` shows `key` holding `value` (None: absent) under `root`."""
    return check(root, key, value, proof) is None
