"""StateTree: batch updates per block, reads and proofs over a node store.

The tree object is a cursor on the newest version; every read names the
version it reads, so a proof at an older height works as long as the caller
keeps that version's nodes.  Nothing here writes to the store: `apply`
returns the nodes to write and the ones that became stale, and the caller
puts them in its own (synced) batch.  The format is specified in the package
docstring (ledger/state_tree/__init__.py).
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol

import msgpack

from ..codec import DecodeError
from ..errors import StateTreeError
from .format import (EMPTY_NODE, EMPTY_ROOT, LEAF_BYTES, MAX_VERSION, NIBBLE, PAGE_STATE, VERSION_BYTES,
                     decode_node, encode_leaf, encode_page, hashed_writes, key_path, key_version, leaf_hash,
                     nibble, node_hash, page_hash, position, root_key)
from .proof import StateProof

# Decoded pages are kept in memory.  Those above TOP_DEPTH are read by nearly
# every block: at most 1 + 16 + 256 + 4096 live ones, all kept (the bound only
# matters after reads at many old versions).  Deeper ones are read once per
# block at most, at random: the ones used lately are kept, between
# `deep_pages` and twice as many (~0.7 KB each at 1M keys, leaf children
# included: ~40 MiB, where schema 6's pages and leaf cache took ~42), which
# saves a store read and a decode per page for as many of them as fit.
# Leaves live in their parent page, so a page in memory answers for its leaf
# children too.
TOP_DEPTH = 4
MAX_TOP_PAGES = 8192
DEEP_PAGES = 32_768


class _Recent:
    """A bounded map of the entries used lately, forgetting in halves: new
    entries go to `young`; once it holds `half` of them, `old` is dropped and
    `young` becomes `old`; a hit in `old` moves the entry back to `young`.
    So whatever was used in the last `half` insertions is kept, like an LRU
    of between `half` and 2 * `half` entries, for a dict operation per access.
    (Emptying one dict when full, as this replaced, dropped every entry each
    few blocks and read them all back from the store.)"""

    __slots__ = ("young", "old", "half")

    def __init__(self, half: int) -> None:
        self.young: dict[bytes, tuple] = {}
        self.old: dict[bytes, tuple] = {}
        self.half = half

    def __len__(self) -> int:
        return len(self.young) + len(self.old)

    def __contains__(self, key: bytes) -> bool:
        return key in self.young or key in self.old

    def get(self, key: bytes) -> tuple | None:
        value = self.young.get(key)
        if value is None:
            value = self.old.pop(key, None)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: bytes, value: tuple) -> None:
        if not self.half:
            return
        young = self.young
        if len(young) >= self.half:
            self.old = young
            self.young = young = {}
        young[key] = value

    def put_all(self, items: list[tuple[bytes, tuple]]) -> None:
        for key, value in items:
            self.put(key, value)

    def discard(self, key: bytes) -> None:
        self.young.pop(key, None)
        self.old.pop(key, None)

    def keys(self) -> list[bytes]:
        return [*self.young, *self.old]


class NodeStore(Protocol):
    def get(self, node_key: bytes) -> bytes | None: ...


class MemoryNodeStore:
    """A NodeStore in a dict, for tests and benchmarks."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}

    def get(self, node_key: bytes) -> bytes | None:
        return self.nodes.get(node_key)

    def write(self, result: "UpdateResult") -> None:
        self.nodes.update(result.new_nodes)

    def delete(self, node_keys: Iterable[bytes]) -> None:
        for k in node_keys:
            del self.nodes[k]


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What `apply(version, ...)` produced.

    new_nodes: node key -> encoded node; store them before reading `version`.
    stale: node keys the previous version used and `version` does not; the
    versions below `version` still do, so delete them only once no version
    below `version` will be read again.
    """
    version: int
    root: bytes
    new_nodes: dict[bytes, bytes]
    stale: list[bytes]


class StateTree:
    """The authenticated state over `store`, positioned at `version`: the
    last version applied, whose root node the store must hold (None for a
    tree nothing was applied to yet, which is empty).  `deep_pages` bounds
    the decoded pages below the top levels kept in memory."""

    def __init__(self, store: NodeStore, version: int | None = None, *,
                 deep_pages: int = DEEP_PAGES) -> None:
        self.store = store
        self._top: dict[bytes, tuple] = {}        # node key -> decoded page, depth < TOP_DEPTH
        self._deep = _Recent(deep_pages)          # the same, deeper
        # The oldest version the caller keeps (it prunes the nodes only older
        # ones use): reads below it are refused, even where cached pages of
        # the pruned versions could still answer part of them.
        self.oldest = 0
        if version is not None:
            self._root(version)                   # fail now if it is not there
        self.version = version

    # -- reads ----------------------------------------------------------------------
    def root_hash(self, version: int | None = None) -> bytes:
        """The root hash at `version` (default: the current one)."""
        if version is None:
            if self.version is None:
                return EMPTY_ROOT
            version = self.version
        return node_hash(self._root(version))

    def get(self, version: int, key: bytes) -> bytes | None:
        """The value hash `key` has at `version`, or None if absent."""
        terminal = self._descend(version, key_path(key), None)
        return terminal if type(terminal) is bytes else None

    def prove(self, version: int, key: bytes) -> StateProof:
        """A proof of what `key` holds (or that it is absent) at `version`."""
        levels: list[tuple[int, bytes]] = []
        terminal = self._descend(version, key_path(key), levels)
        return StateProof(tuple(levels), terminal)

    def _descend(self, version: int, path: bytes, levels: list | None):
        """Walk from the root of `version` along `path` to where it ends, and
        return what is there as a proof's terminal: None (an empty slot or
        tree), the value hash (the path's own leaf) or (path, value hash) of
        another key's leaf.  With `levels`, append each page's proof level."""
        node = self._root(version)
        if len(node) != 5:                        # the empty tree, or one key: a leaf root
            if not node:
                return None
            return node[1] if node[0] == path else node
        depth = 0
        while True:
            bitmap, leafmap, hashes, versions, leaves = node
            bit = 1 << nibble(path, depth)
            under = bit - 1
            if not bitmap & bit:
                if levels is not None:
                    levels.append((bitmap, hashes))
                return None
            if levels is not None:
                at = 32 * (bitmap & under).bit_count()
                levels.append((bitmap, hashes[:at] + hashes[at + 32:]))
            if leafmap & bit:                     # the leaf is in the page itself
                at = LEAF_BYTES * (leafmap & under).bit_count()
                leaf_path, vhash = leaves[at:at + 32], leaves[at + 32:at + LEAF_BYTES]
                return vhash if leaf_path == path else (leaf_path, vhash)
            at = VERSION_BYTES * (bitmap & ~leafmap & under).bit_count()
            depth += 1
            node = self._load_page(versions[at:at + VERSION_BYTES] + position(path, depth))

    # -- the batch update -------------------------------------------------------------
    def apply(self, version: int, writes: Mapping[bytes, bytes | None]) -> UpdateResult:
        """Apply one block's writes (state key -> new value, None = delete) as
        `version`, which must be above the current one.  The tree moves to
        `version`; the caller stores `new_nodes` before reading it, or calls
        `rewind` if it never does."""
        base = self.version
        _check_version(version)
        if base is not None and version <= base:
            raise StateTreeError(f"state tree version {version} does not follow {base}")
        items = hashed_writes(writes)
        items.sort()
        batch = _Batch(self, version, items)
        if base is None:
            old_key, old = None, None
        else:
            old_key = root_key(base)
            old = self._root(base)
        batch.finish_root(batch.update_root(old_key, old), old_key, old)
        # Only now that nothing can fail: the caches never hold a page of an
        # update that raised.  Each list holds the pages of one cache, so each
        # key is looked up in the one cache that can hold it.
        top, deep = self._top, self._deep
        for key in batch.stale_top:
            top.pop(key, None)
        for key in batch.stale_deep:
            deep.discard(key)
        _remember_all(top, batch.top_pages, MAX_TOP_PAGES)
        deep.put_all(batch.deep_pages)
        self.version = version
        return UpdateResult(version, batch.root, batch.new, batch.stale_top + batch.stale_deep)

    def rewind(self, version: int | None) -> None:
        """Move back to `version` (None: the empty tree), forgetting the
        applies above it, whose nodes the caller did not store (a synced
        block that re-executes to another header, a commit that failed)."""
        if version is not None:
            self._root(version)                   # it must be there
        limit = -1 if version is None else version
        for key in [k for k in self._top if key_version(k) > limit]:
            del self._top[key]
        for key in [k for k in self._deep.keys() if key_version(k) > limit]:
            self._deep.discard(key)
        self.version = version

    # -- nodes ---------------------------------------------------------------------
    def _root(self, version: int) -> tuple:
        _check_version(version)
        if version < self.oldest:
            raise StateTreeError(f"state tree version {version} was pruned (versions from "
                                 f"{self.oldest} are kept)")
        return self._load(root_key(version))

    def _load(self, key: bytes) -> tuple:
        node = self._top.get(key) or self._deep.get(key)
        if node is not None:
            return node
        data = self.store.get(key)
        if data is None:
            raise StateTreeError(f"state tree node {key.hex()} is not in the store (version "
                                 f"{key_version(key)} was never written, or was pruned)")
        node = _decode(key, data)
        if len(node) == 5:
            self._remember(key, node)
        return node

    def _load_page(self, key: bytes) -> tuple:
        node = self._load(key)
        if len(node) != 5:
            raise StateTreeError(f"state tree node {key.hex()} should be a page")
        return node

    def _remember(self, key: bytes, page: tuple) -> None:
        if key[VERSION_BYTES] >= TOP_DEPTH:
            self._deep.put(key, page)
            return
        top = self._top
        if len(top) >= MAX_TOP_PAGES:
            top.clear()          # only after reads at many old versions
        top[key] = page


def _remember_all(cache: dict, nodes: list, limit: int) -> None:
    """Cache an update's new top pages (key, decoded page), at most `limit` in all."""
    if not nodes:
        return
    if len(cache) + len(nodes) > limit:
        cache.clear()            # only after reads at many old versions
        del nodes[:-limit]
    cache.update(nodes)


def _decode(key: bytes, data: bytes) -> tuple:
    try:
        return decode_node(data)
    except DecodeError as exc:
        raise StateTreeError(f"state tree node {key.hex()} is corrupt: {exc}") from None


def _check_version(version: int) -> None:
    if type(version) is not int or not 0 <= version <= MAX_VERSION:
        raise StateTreeError(f"state tree version must be an integer in 0..{MAX_VERSION}, "
                             f"got {version!r}")


# Results of updating one position (plain tuples, tag first):
#   None                                   nothing left there
#   (LEAF, hash, path, value_hash, same)   one key, which its parent page holds;
#                                          `same`: it is the leaf that was at
#                                          this very position, unchanged
#   (PAGE, hash, version)                  a page stored at this position
LEAF = 0
PAGE = 1
VB = VERSION_BYTES


class _Batch:
    """One `apply`: the sorted (path, value hash | None) items and what the
    update writes and retires.  Recursion follows the tree, each call owning
    the items items[lo:hi] that share the position's first `depth` nibbles,
    so the upper levels are visited once per block, not once per key.

    A page's children live in three arrays (package docstring, "Stored
    nodes"): hashes of all of them, versions of its page children, path and
    value hash of its leaf children.  For the child at nibble n, with
    under = (1 << n) - 1, its place is popcount(bitmap & under) in the
    first, and popcount(leafmap & under) in the last; the difference is its
    place among the versions."""

    __slots__ = ("tree", "version", "vbytes", "items", "new", "stale_top", "stale_deep",
                 "top_pages", "deep_pages", "root", "pack", "page_state", "top_get", "deep_get")

    def __init__(self, tree: StateTree, version: int, items: list) -> None:
        self.tree = tree
        self.version = version
        self.vbytes = version.to_bytes(VERSION_BYTES, "big")
        self.items = items
        self.new: dict[bytes, bytes] = {}
        # Retired node keys, by the cache that may hold them: pages above
        # TOP_DEPTH (and a retired root of any kind), deeper pages.
        self.stale_top: list[bytes] = []
        self.stale_deep: list[bytes] = []
        # New pages to cache once the update has succeeded, the same way.
        self.top_pages: list[tuple[bytes, tuple]] = []
        self.deep_pages: list[tuple[bytes, tuple]] = []
        self.root = EMPTY_ROOT
        self.pack = msgpack.Packer(use_bin_type=True).pack
        self.page_state = PAGE_STATE.copy
        self.top_get = tree._top.get
        self.deep_get = tree._deep.get

    def update_root(self, okey: bytes | None, node: tuple | None):
        """Update the root (`node`, stored under `okey`; None or () if empty)."""
        n = len(self.items)
        if not node:
            return self.fresh(0, 0, n)
        if len(node) == 2:
            return self.update_leaf(0, node[0], node[1], leaf_hash(*node), 0, n)
        return self.update_page(0, okey, page_hash(node[0], node[2]), okey[:VERSION_BYTES], 0, n)

    def fresh(self, depth: int, lo: int, hi: int):
        """The subtree for items[lo:hi] at an empty position."""
        live = [it for it in self.items[lo:hi] if it[1] is not None]
        return self.build(depth, live, 0, len(live)) if live else None

    def build(self, depth: int, items: list, lo: int, hi: int):
        """A fresh subtree for items[lo:hi] (no deletes, at least one)."""
        if hi - lo == 1:
            path, vhash = items[lo]
            return (LEAF, leaf_hash(path, vhash), path, vhash, False)
        nib = NIBBLE[depth & 1]
        w = depth >> 1
        below = depth + 1
        bitmap = leafmap = 0
        hashes = []
        leaves = []
        i = lo
        while i < hi:
            n = nib[items[i][0][w]]
            j = i + 1
            while j < hi and nib[items[j][0][w]] == n:
                j += 1
            r = self.build(below, items, i, j)
            bit = 1 << n
            bitmap |= bit
            if r[0] == LEAF:
                leafmap |= bit
                leaves.append(r[2])
                leaves.append(r[3])
            hashes.append(r[1])
            i = j
        return self.emit_page(depth, position(items[lo][0], depth), bitmap, leafmap, b"".join(hashes),
                              self.vbytes * (len(hashes) - leafmap.bit_count()), b"".join(leaves))

    def update_leaf(self, depth: int, opath: bytes, ovhash: bytes, ohash: bytes, lo: int, hi: int):
        """Update the position at `depth` that holds the leaf (opath, ovhash)."""
        items = self.items
        if hi - lo == 1 and items[lo][0] == opath:
            vhash = items[lo][1]
            if vhash == ovhash:
                return (LEAF, ohash, opath, ovhash, True)
            return None if vhash is None else (LEAF, leaf_hash(opath, vhash), opath, vhash, False)
        merged = []
        old_written = False
        for path, vhash in items[lo:hi]:
            if path == opath:
                old_written = True
            if vhash is not None:
                merged.append((path, vhash))
        if not old_written:
            insort(merged, (opath, ovhash))
        if len(merged) == 1 and merged[0][0] == opath and merged[0][1] == ovhash:
            return (LEAF, ohash, opath, ovhash, True)
        return self.build(depth, merged, 0, len(merged)) if merged else None

    def update_page(self, depth: int, okey: bytes, ohash: bytes, oversion: bytes, lo: int, hi: int):
        """Update the position at `depth` that holds the page stored under `okey`."""
        if hi - lo == 1:
            return self.update_page_1(depth, okey, ohash, oversion, lo)
        bitmap, leafmap, hashes, versions, leaves = self.tree._load_page(okey)
        items = self.items
        nib = NIBBLE[depth & 1]
        w = depth >> 1
        below = depth + 1
        changes = []                       # (nibble, result), nibbles ascending
        i = lo
        while i < hi:
            path = items[i][0]
            n = nib[path[w]]
            j = i + 1
            while j < hi and nib[items[j][0][w]] == n:
                j += 1
            bit = 1 << n
            if bitmap & bit:
                under = bit - 1
                idx = (bitmap & under).bit_count()
                chash = hashes[32 * idx:32 * idx + 32]
                if leafmap & bit:
                    lat = LEAF_BYTES * (leafmap & under).bit_count()
                    r = self.update_leaf(below, leaves[lat:lat + 32], leaves[lat + 32:lat + LEAF_BYTES],
                                         chash, i, j)
                    if r is None or r[0] == PAGE or not r[4]:
                        changes.append((n, r))
                else:
                    vat = VB * (bitmap & ~leafmap & under).bit_count()
                    cversion = versions[vat:vat + VB]
                    r = self.update_page(below, cversion + position(path, below), chash, cversion, i, j)
                    if r is None or r[0] == LEAF or r[2] != cversion:
                        changes.append((n, r))
            else:
                r = self.fresh(below, i, j)
                if r is not None:
                    changes.append((n, r))
            i = j
        if not changes:
            return (PAGE, ohash, oversion)
        (self.stale_top if depth < TOP_DEPTH else self.stale_deep).append(okey)
        new_bitmap, new_leafmap = bitmap, leafmap
        for n, r in changes:
            bit = 1 << n
            if r is None:
                new_bitmap &= ~bit
                new_leafmap &= ~bit
            elif r[0] == LEAF:
                new_bitmap |= bit
                new_leafmap |= bit
            else:
                new_bitmap |= bit
                new_leafmap &= ~bit
        if new_bitmap == 0:
            return None
        if new_bitmap == new_leafmap and new_bitmap & (new_bitmap - 1) == 0:
            return self.lift(bitmap, leafmap, hashes, leaves, new_bitmap, changes)
        # Splice the changed children into the old page's three arrays: runs
        # of unchanged children are copied as one slice each.
        parts = []
        vparts = []
        lparts = []
        prev = vprev = lprev = 0           # the old children copied so far, in each array
        for n, r in changes:
            bit = 1 << n
            under = bit - 1
            idx = (bitmap & under).bit_count()
            lidx = (leafmap & under).bit_count()
            vidx = idx - lidx
            if idx > prev:
                parts.append(hashes[32 * prev:32 * idx])
                vparts.append(versions[VB * vprev:VB * vidx])
                lparts.append(leaves[LEAF_BYTES * lprev:LEAF_BYTES * lidx])
            prev, vprev, lprev = idx, vidx, lidx
            if leafmap & bit:              # the old child is replaced
                prev += 1
                lprev += 1
            elif bitmap & bit:
                prev += 1
                vprev += 1
            if r is not None:
                parts.append(r[1])
                if r[0] == LEAF:
                    lparts.append(r[2])
                    lparts.append(r[3])
                else:
                    vparts.append(r[2])
        parts.append(hashes[32 * prev:])
        vparts.append(versions[VB * vprev:])
        lparts.append(leaves[LEAF_BYTES * lprev:])
        return self.emit_page(depth, okey[VB:], new_bitmap, new_leafmap,
                              b"".join(parts), b"".join(vparts), b"".join(lparts))

    def update_page_1(self, depth: int, okey: bytes, ohash: bytes, oversion: bytes, i: int):
        """update_page (and update_leaf below it) for the one item items[i]:
        below the top levels most pages see one write per block, and this path
        has no grouping or splicing loops.  The tests check both paths against
        trees built from scratch."""
        page = self.top_get(okey) if depth < TOP_DEPTH else self.deep_get(okey)
        if page is None:
            page = self.tree._load_page(okey)
        bitmap, leafmap, hashes, versions, leaves = page
        path, vhash = self.items[i]
        below = depth + 1
        bit = 1 << NIBBLE[depth & 1][path[depth >> 1]]
        under = bit - 1
        idx = (bitmap & under).bit_count()
        lidx = (leafmap & under).bit_count()
        at = 32 * idx
        lat = LEAF_BYTES * lidx
        vat = VB * (idx - lidx)
        end, lend, vend = at, lat, vat     # the old child's bytes in each array: none
        if leafmap & bit:
            opath = leaves[lat:lat + 32]
            ovhash = leaves[lat + 32:lat + LEAF_BYTES]
            if opath == path:
                if vhash == ovhash:
                    return (PAGE, ohash, oversion)
                r = None if vhash is None else (LEAF, leaf_hash(path, vhash), path, vhash, False)
            elif vhash is None:
                return (PAGE, ohash, oversion)        # deleting a key that is not there
            else:
                pair = [(opath, ovhash), (path, vhash)]
                pair.sort()
                r = self.build(below, pair, 0, 2)
            end = at + 32
            lend = lat + LEAF_BYTES
        elif bitmap & bit:
            cversion = versions[vat:vat + VB]
            r = self.update_page_1(below, cversion + position(path, below), hashes[at:at + 32], cversion, i)
            if r is not None and r[0] == PAGE and r[2] == cversion:
                return (PAGE, ohash, oversion)
            end = at + 32
            vend = vat + VB
        elif vhash is None:
            return (PAGE, ohash, oversion)            # deleting a key that is not there
        else:
            r = (LEAF, leaf_hash(path, vhash), path, vhash, False)
        (self.stale_top if depth < TOP_DEPTH else self.stale_deep).append(okey)
        if r is None:
            bitmap &= ~bit
            leafmap &= ~bit
            if not bitmap:
                return None
            hashes = hashes[:at] + hashes[end:]
            if lend != lat:
                leaves = leaves[:lat] + leaves[lend:]
            if vend != vat:
                versions = versions[:vat] + versions[vend:]
            if bitmap == leafmap and bitmap & (bitmap - 1) == 0:
                # one leaf left: it moves up into this page's place
                return (LEAF, hashes, leaves[:32], leaves[32:], False)
        elif r[0] == LEAF:
            if not bitmap & ~bit:
                # a page child that shrank to one leaf was this page's only child
                return r
            hashes = hashes[:at] + r[1] + hashes[end:]
            leaves = leaves[:lat] + r[2] + r[3] + leaves[lend:]
            if vend != vat:
                versions = versions[:vat] + versions[vend:]
            bitmap |= bit
            leafmap |= bit
        else:
            hashes = hashes[:at] + r[1] + hashes[end:]
            versions = versions[:vat] + r[2] + versions[vend:]
            if lend != lat:
                leaves = leaves[:lat] + leaves[lend:]
            bitmap |= bit
            leafmap &= ~bit
        return self.emit_page(depth, okey[VB:], bitmap, leafmap, hashes, versions, leaves)

    def lift(self, bitmap: int, leafmap: int, hashes: bytes, leaves: bytes, new_bitmap: int,
             changes: list):
        """The page is left with one leaf: that leaf moves up to take the
        page's place (leaves hang at the shortest unique prefix)."""
        n = new_bitmap.bit_length() - 1
        for cn, r in changes:
            if cn == n:
                return r                   # a new leaf there (never `same`)
        under = (1 << n) - 1               # else it is an old leaf child, unchanged
        idx = (bitmap & under).bit_count()
        lat = LEAF_BYTES * (leafmap & under).bit_count()
        return (LEAF, hashes[32 * idx:32 * idx + 32], leaves[lat:lat + 32],
                leaves[lat + 32:lat + LEAF_BYTES], False)

    def emit_page(self, depth: int, pos: bytes, bitmap: int, leafmap: int,
                  hashes: bytes, versions: bytes, leaves: bytes):
        key = self.vbytes + pos
        self.new[key] = self.pack([bitmap, leafmap, hashes, versions, leaves])     # format.encode_page
        (self.top_pages if depth < TOP_DEPTH else self.deep_pages).append(
            (key, (bitmap, leafmap, hashes, versions, leaves)))
        h = self.page_state()                                             # format.page_hash
        h.update(bitmap.to_bytes(2, "big"))
        h.update(hashes)
        return (PAGE, h.digest(), self.vbytes)

    def finish_root(self, r, old_key: bytes | None, old: tuple | None) -> None:
        """Store the root at (version, empty path), so every version has one
        whatever changed: a leaf root (a tree of one key) or an empty one is
        a node of its own there; an unchanged root page is copied."""
        key = root_key(self.version)
        unchanged = False
        if r is None:
            self.new[key] = EMPTY_NODE
            self.root = EMPTY_ROOT
        elif r[0] == LEAF:
            self.new[key] = encode_leaf(r[2], r[3])
            self.root = r[1]
        else:
            self.root = r[1]
            unchanged = r[2] != self.vbytes
            if unchanged:
                self.new[key] = encode_page(*old, self.pack)
                self.top_pages.append((key, old))
        # The update retired an old root page itself when it changed it; any
        # other old root is retired here.
        if old_key is not None and (unchanged or len(old) != 5):
            self.stale_top.append(old_key)
