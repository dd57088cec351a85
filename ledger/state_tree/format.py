"""The state tree's hashes, node keys and stored node encodings.

Everything a verifier or a store needs to agree on byte for byte lives here;
the package docstring (ledger/state_tree/__init__.py) is the specification.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Mapping

from .. import codec
from ..codec import unpack
from ..crypto import HASH_LEN, hash256
from ..errors import DecodeError, StateTreeError

# Both domains are 24 bytes, so a leaf's and a page's hash inputs can never be
# the same bytes; neither equals the prefixes of ledger.merkle or the header.
LEAF_DOMAIN = b"ynchain/state-tree/leaf\x00"
PAGE_DOMAIN = b"ynchain/state-tree/page\x00"
EMPTY_ROOT = hash256(b"ynchain/state-tree/empty")

RADIX = 16
MAX_DEPTH = 2 * HASH_LEN          # nibbles in a key path: no node sits deeper
FULL_BITMAP = (1 << RADIX) - 1
# Versions (block heights) take 6 bytes, in node keys and in pages: up to
# 2**48 - 1, a block a millisecond for 8,900 years.
VERSION_BYTES = 6
# The all-ones version marks, in memory only, a page written since the tree
# was last persisted (tree.py: PENDING); no block ever gets that height.
MAX_VERSION = (1 << 8 * VERSION_BYTES) - 2

# Each hash starts from a copy of a prepared state: cheaper than building a
# blake2b object with its parameters for every call (~40% of a page hash).
_PLAIN = hashlib.blake2b(digest_size=HASH_LEN)
_LEAF = hashlib.blake2b(LEAF_DOMAIN, digest_size=HASH_LEN)
PAGE_STATE = _PAGE = hashlib.blake2b(PAGE_DOMAIN, digest_size=HASH_LEN)   # PAGE_STATE: for tree.py's inlined page hash


def key_path(key: bytes) -> bytes:
    """Where a state key lives in the tree: its 64-nibble path, H(key)."""
    h = _PLAIN.copy()
    h.update(key)
    return h.digest()


def value_hash(value: bytes) -> bytes:
    h = _PLAIN.copy()
    h.update(value)
    return h.digest()


def hashed_writes(writes: Mapping[bytes, bytes | None]) -> list[tuple[bytes, bytes | None]]:
    """[(path(key), value_hash(value) or None for a delete)] for a block's
    writes, in the writes' order: key_path and value_hash inlined, as this
    runs for every state write of every block."""
    copy = _PLAIN.copy
    items = []
    append = items.append
    for key, value in writes.items():
        if type(key) is not bytes or (value is not None and type(value) is not bytes):
            raise StateTreeError(f"state write {key!r}: key must be bytes, value bytes or None")
        h = copy()
        h.update(key)
        if value is None:
            append((h.digest(), None))
        else:
            v = copy()
            v.update(value)
            append((h.digest(), v.digest()))
    return items


def leaf_hash(path: bytes, vhash: bytes) -> bytes:
    h = _LEAF.copy()
    h.update(path)
    h.update(vhash)
    return h.digest()


def page_hash(bitmap: int, child_hashes: bytes) -> bytes:
    """Hash of a page: its occupancy bitmap, then its children's hashes in
    nibble order (32 bytes each, one per set bit)."""
    h = _PAGE.copy()
    h.update(bitmap.to_bytes(2, "big"))
    h.update(child_hashes)
    return h.digest()


def nibble(path: bytes, depth: int) -> int:
    """The `depth`-th nibble of a path, high nibble of each byte first."""
    return NIBBLE[depth & 1][path[depth >> 1]]


def same_prefix(a: bytes, b: bytes, depth: int) -> bool:
    """True iff paths `a` and `b` agree on their first `depth` nibbles."""
    whole = depth >> 1
    if a[:whole] != b[:whole]:
        return False
    return not depth & 1 or (a[whole] >> 4) == (b[whole] >> 4)


# -- node keys ---------------------------------------------------------------------

_DEPTH_BYTE = [bytes((d,)) for d in range(MAX_DEPTH + 1)]
_HIGH_NIBBLE = [bytes((b & 0xF0,)) for b in range(256)]
# NIBBLE[depth & 1][byte]: the nibble a path byte gives at an even / odd depth
NIBBLE = (bytes(b >> 4 for b in range(256)), bytes(b & 15 for b in range(256)))


def position(path: bytes, depth: int) -> bytes:
    """The position made of the first `depth` nibbles of `path`: one byte of
    depth, then the nibbles packed two to a byte (an odd last nibble is
    followed by a zero nibble)."""
    whole = depth >> 1
    if depth & 1:
        return _DEPTH_BYTE[depth] + path[:whole] + _HIGH_NIBBLE[path[whole]]
    return _DEPTH_BYTE[depth] + path[:whole]


def node_key(version: int, path: bytes, depth: int) -> bytes:
    """The store key of the node written at `version` for the position of
    `path` at `depth`: the version (VERSION_BYTES, big-endian), then the position."""
    return version.to_bytes(VERSION_BYTES, "big") + position(path, depth)


def root_key(version: int) -> bytes:
    return version.to_bytes(VERSION_BYTES, "big") + b"\x00"


def child_position(path: bytes, depth: int, child: int) -> bytes:
    """A path whose first depth+1 nibbles are those of `path` followed by
    nibble `child` (enough bytes for node_key at depth+1)."""
    whole = depth >> 1
    if depth & 1:
        return path[:whole] + bytes(((path[whole] & 0xF0) | child,))
    return path[:whole] + bytes((child << 4,))


def key_version(node_key_: bytes) -> int:
    """The version a node key was written at."""
    return int.from_bytes(node_key_[:VERSION_BYTES], "big")


# -- stored nodes --------------------------------------------------------------------
#
# Decoded forms, plain tuples (no per-node objects on the hot path):
#   ()                                         the empty tree (root only)
#   (path, value_hash)                         a leaf (root only: a leaf below a
#                                              page lives in its parent page)
#   (bitmap, leafmap, child_hashes, versions, leaves)
#                                              a page; versions holds each page
#                                              child's version, VERSION_BYTES
#                                              each, leaves each leaf child's
#                                              path ‖ value hash, LEAF_BYTES each

EMPTY_NODE = b"\x90"               # pack([])
LEAF_BYTES = 2 * HASH_LEN          # a leaf child in its page: path ‖ value hash


def encode_leaf(path: bytes, vhash: bytes) -> bytes:
    return codec.pack([path, vhash])


def encode_page(bitmap: int, leafmap: int, child_hashes: bytes, versions: bytes, leaves: bytes,
                pack: Callable[[Any], bytes] = codec.pack) -> bytes:
    """`pack` lets a batch update pass one reusable msgpack.Packer (same bytes)."""
    return pack([bitmap, leafmap, child_hashes, versions, leaves])


def decode_node(data: bytes) -> tuple:
    """Decode a stored node, checking its shape; DecodeError if it is not one
    (a corrupted store: nodes come from this node's own updates, never from a
    peer)."""
    rec = unpack(data)
    if type(rec) is not list:
        raise DecodeError("state tree node: expected an array")
    n = len(rec)
    if n == 5:
        bitmap, leafmap, hashes, versions, leaves = rec
        if (type(bitmap) is not int or not 0 < bitmap <= FULL_BITMAP or type(leafmap) is not int
                or leafmap & ~bitmap or type(hashes) is not bytes or type(versions) is not bytes
                or type(leaves) is not bytes):
            raise DecodeError("state tree page: malformed")
        if (len(hashes) != HASH_LEN * bitmap.bit_count()
                or len(versions) != VERSION_BYTES * (bitmap & ~leafmap).bit_count()
                or len(leaves) != LEAF_BYTES * leafmap.bit_count()):
            raise DecodeError("state tree page: children do not match its bitmap")
        return (bitmap, leafmap, hashes, versions, leaves)
    if n == 2:
        path, vhash = rec
        if type(path) is not bytes or type(vhash) is not bytes or len(path) != HASH_LEN \
                or len(vhash) != HASH_LEN:
            raise DecodeError("state tree leaf: malformed")
        return (path, vhash)
    if n == 0:
        return ()
    raise DecodeError(f"state tree node: unexpected array of {n} fields")


def node_hash(node: tuple) -> bytes:
    """The hash of a decoded node (what its parent, or a header, holds)."""
    if len(node) == 5:
        return page_hash(node[0], node[2])
    if len(node) == 2:
        return leaf_hash(node[0], node[1])
    return EMPTY_ROOT
