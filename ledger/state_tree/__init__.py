"""Authenticated state: a versioned radix-16 Merkle tree over the chain state.

Every state key/value pair is a leaf; the root hash commits to the whole set,
and a proof shows what one key holds, or that it is absent, against a root
taken from a certified header.  This docstring is the specification: an
independent verifier needs nothing else (and blake2b-256).

Why this shape
--------------
A Jellyfish-style radix-16 tree ("pages" of up to 16 children) with flat page
hashes.  The tree runs in the commit path of every block, in Python, so the
cost that matters is Python work per stored node: each page a block rewrites
costs a read, a splice, an encode and one hash, whatever its size.
  * Radix 16 rewrites ~2.6 pages per written key at 1M keys (measured,
    blocks of 2,000 writes, whose top three levels are shared), where a
    binary sparse Merkle tree would rewrite ~11 nodes (log2 of keys per
    written key, plus ~2).  Bytes written are about the same (a binary node
    per bit carries one new sibling hash, a page per 4 bits up to 15
    unchanged ones), so the binary tree costs ~3x the node operations and
    store keys for no saving in bytes.
  * Leaves are stored in their parent page, not as nodes: a page already
    loaded holds its leaf children, so the update never reads a leaf from
    the store (a new key landing in another key's slot did, ~0.65 times per
    written key, a random read once the tree outgrows memory), and writes,
    retires and prunes ~1.2 fewer nodes per written key, for ~30% more bytes
    written (unchanged leaves are rewritten with their page).
  * A page hashes its children flat, H(domain ‖ bitmap ‖ child hashes): one
    hash call per page.  Hashing the 16 slots as a binary tree inside the
    page (Diem's JMT) would cut a proof from ~15 to ~4 hashes per level
    (~0.7 KB instead of ~2.3 KB at 1M keys) but costs 15 hash calls per full
    page instead of 1 (measured: 7.9 us against 1.0 us a page), ~10 us more
    per written key at 1M keys, ~40% more.  A proof is checked once, offline;
    the update runs on every node for every block.
  * Leaves hang at the shortest unique nibble prefix and pages exist only
    where at least two keys share a prefix, so the tree is as shallow as the
    keys allow (~log16 N + 1 levels) and its shape depends only on the keys.
  * Node keys start with the version (block height), so every block's nodes
    sort after all earlier keys in LevelDB, and old versions stay readable
    until the caller prunes them.

Hashes (H = blake2b with a 32-byte digest; ‖ = concatenation)
------------------------------------------------------------
    path(key)        = H(key)                       the key's 64-nibble path;
                                                    nibble i of a path is the high
                                                    (i even) or low (i odd) half
                                                    of byte i // 2
    value_hash(v)    = H(v)
    leaf             = H(LEAF_DOMAIN ‖ path(key) ‖ value_hash(value))
    page             = H(PAGE_DOMAIN ‖ bitmap as 2 bytes big-endian ‖ child hashes)
    empty tree root  = EMPTY_ROOT = H("ynchain/state-tree/empty")
    LEAF_DOMAIN      = "ynchain/state-tree/leaf\\x00"    (24 bytes)
    PAGE_DOMAIN      = "ynchain/state-tree/page\\x00"    (24 bytes)

A page's bitmap has bit n (value 1 << n) set iff it has a child at nibble n;
its child hashes follow in nibble order, 32 bytes each.  The leaf binds the
key through its path (a fixed 32 bytes, as is the value hash), so the leaf
input has one parse without a length prefix, and both domains have the same
length, so no leaf input is a page input.

The tree of a set S of (path, value hash) pairs, at depth d (nibbles):
    S empty       -> nothing (the root of an empty tree is EMPTY_ROOT)
    S one pair    -> that pair's leaf
    otherwise     -> a page whose child at nibble n is the tree of the pairs
                     whose nibble d is n, at depth d + 1
The root hash is the hash of the tree of all pairs at depth 0.  So the root
depends only on the set, never on insertion order or batching.

Stored nodes (what `apply` returns, msgpack arrays)
---------------------------------------------------
    node key  = version (6 bytes big-endian) ‖ depth (1 byte, 0..64)
                ‖ the first `depth` nibbles of the position, two to a byte,
                  an odd last nibble followed by a zero nibble
    page      = [bitmap (uint), leafmap (uint), child hashes (bin, 32 bytes
                 per child), page child versions (bin, 6 bytes big-endian per
                 child that is a page), leaf children (bin, 64 bytes per child
                 that is a leaf: its path ‖ its value hash)], each array in
                nibble order
                leafmap marks the children that are leaves; they live in the
                page itself.  A page child's node key is (its version, this
                page's position + its nibble)
    leaf      = [path (bin 32), value hash (bin 32)]
                (only as the root: a tree of one key)
    empty     = []                (only as the root of an empty tree)
A version is a block height below 2**48 - 1 (the all-ones version marks,
in memory only, a page not persisted yet).  Every persisted version has its
root at (version, depth 0): `apply(persist=True)` writes it even when nothing
changed since the last persisted version (a copy), so any kept version is
read from its height alone.  A version that is not persisted (`apply(
persist=False)`) has its root computed, and its pages stay in memory until
the next persisted version writes them, once, under its own version: the
stored nodes of a persisted version are the same whichever versions before
it were persisted, but for the versions in their keys.  Nodes are
immutable; a version's tree shares every unchanged page with the versions
before it.  A leaf is written again with every rewrite of its page (64
bytes), and in return it never costs a store read, a key, a stale-list
entry or a delete of its own: a key landing in a slot another key's leaf
holds (most new keys in a large tree) finds that leaf in the page the
update has already loaded.

Proofs (format 1), the canonical msgpack encoding of
---------------------------------------------------
    [1, levels, terminal]
    levels    = [[bitmap, siblings], ...]  one per page on the key's path from
                the root down: the page's bitmap and the hashes of its children
                other than the one at the key's nibble (all of them, in the
                last page, when that slot is empty), in nibble order, as one bin
    terminal  = nil                        no key where the path ends: the last
                                           page's slot is empty, or the tree is
                                           empty (no levels)
              | bin 32                     the key is present; its value hash
              | [bin 32 path, bin 32 vh]   the one other key whose leaf sits
                                           where the key would be (absent)
Checking a proof for (root, key, value or None), with p = path(key) and
L = len(levels):
  1. the terminal must match the claim: a value hash equal to H(value) for a
     value; nil or a neighbour for None.  A neighbour's path must differ from
     p and share its first L nibbles.
  2. h = the terminal's leaf hash (leaf(p, vh) or the neighbour's), or none.
  3. for each level d from L-1 up to 0, with bit = 1 << nibble d of p: h must
     be none exactly when the page's bitmap lacks bit (only possible at the
     last level); the siblings must hold one hash per other child; insert h
     at its place among them and h = page hash.
  4. the result (EMPTY_ROOT if none) must equal the root.
Decoding accepts at most MAX_PROOF_BYTES, and only the canonical encoding
(re-encoding gives the same bytes), so a proof has exactly one encoding.
A proof of absence for one key also shows the absence of every key whose
path reaches the same empty slot or neighbour leaf: it is the same proof.

Pruning
-------
`apply(v)` of a persisted version lists the node keys that v no longer uses
and the previously persisted version did (`stale`: pages, and that
version's root); versions below v still do.  Keeping versions >= K, a node listed stale at v can be deleted
once v <= K: keep the lists by version and delete those up to the oldest
version kept.  Set `StateTree.oldest` to K so reads below it are refused
rather than answered in part from cached pages.  (The node's store keeps
K at its newest kept stable checkpoint: storage.kv_store.)
"""

from .format import EMPTY_ROOT, key_path, node_key, root_key, value_hash
from .proof import MAX_PROOF_BYTES, PROOF_FORMAT, StateProof, check, verify
from .tree import MemoryNodeStore, NodeStore, StateTree, UpdateResult

__all__ = [
    "EMPTY_ROOT", "MAX_PROOF_BYTES", "PROOF_FORMAT", "MemoryNodeStore", "NodeStore", "StateProof",
    "StateTree", "UpdateResult", "check", "key_path", "node_key", "root_key", "value_hash",
    "verify",
]
