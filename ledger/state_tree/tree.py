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
from .format import (EMPTY_NODE, EMPTY_ROOT, LEAF_HEAD, LEAF_MID, LEAF_NODE_LEN, MAX_VERSION, NIBBLE, PAGE_STATE,
                     VERSION_BYTES, child_position,
                     decode_node, encode_leaf, encode_page, hashed_writes, key_path, key_version, leaf_hash,
                     nibble, node_hash, page_hash, position, root_key, value_hash)
from .proof import StateProof

# Decoded pages are kept in memory.  Those above TOP_DEPTH are read by nearly
# every block: at most 1 + 16 + 256 + 4096 live ones, all kept (the bound only
# matters after reads at many old versions).  Deeper ones are read once per
# block at most, at random: the ones used lately are kept, between
# `deep_pages` and twice as many (~0.7 KB each), which saves a store read and
# a decode per page for as many of them as fit.
TOP_DEPTH = 4
MAX_TOP_PAGES = 8192
DEEP_PAGES = 32_768
# Leaves are read when a written key lands in a slot another key's leaf holds
# (~0.65 reads per written key in the node's kv benchmark, each a LevelDB get
# of ~15 us on the loaded 2-core machine).  The leaves this tree wrote or read
# lately are kept, between LEAVES and twice as many (~250 bytes each).
LEAVES = 65_536


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
                 deep_pages: int = DEEP_PAGES, leaves: int = LEAVES) -> None:
        self.store = store
        self._top: dict[bytes, tuple] = {}        # node key -> decoded page, depth < TOP_DEPTH
        self._deep = _Recent(deep_pages)          # the same, deeper
        self._leaves = _Recent(leaves)            # node key -> (path, value hash)
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
        path = key_path(key)
        node = self._root(version)
        depth = 0
        while len(node) == 4:
            bitmap, _, _, versions = node
            bit = 1 << nibble(path, depth)
            if not bitmap & bit:
                return None
            at = VERSION_BYTES * (bitmap & (bit - 1)).bit_count()
            depth += 1
            node = self._load(versions[at:at + VERSION_BYTES] + position(path, depth))
        if len(node) == 2 and node[0] == path:
            return node[1]
        return None

    def prove(self, version: int, key: bytes) -> StateProof:
        """A proof of what `key` holds (or that it is absent) at `version`."""
        path = key_path(key)
        node = self._root(version)
        depth = 0
        levels = []
        while len(node) == 4:
            bitmap, _, hashes, versions = node
            bit = 1 << nibble(path, depth)
            if not bitmap & bit:
                levels.append((bitmap, hashes))
                return StateProof(tuple(levels), None)
            idx = (bitmap & (bit - 1)).bit_count()
            levels.append((bitmap, hashes[:32 * idx] + hashes[32 * idx + 32:]))
            at = VERSION_BYTES * idx
            depth += 1
            node = self._load(versions[at:at + VERSION_BYTES] + position(path, depth))
        if len(node) == 2:
            return StateProof(tuple(levels), node[1] if node[0] == path else node)
        return StateProof(tuple(levels), None)

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
        # Only now that nothing can fail: the caches never hold a node of an
        # update that raised.  Each list holds one kind of node, so each key
        # is looked up in the one cache that can hold it.
        top, deep, leaves = self._top, self._deep, self._leaves
        for key in batch.stale_top:
            top.pop(key, None)
        for key in batch.stale_deep:
            deep.discard(key)
        for key in batch.stale_leaves:
            leaves.discard(key)
        _remember_all(top, batch.top_pages, MAX_TOP_PAGES)
        deep.put_all(batch.deep_pages)
        leaves.put_all(batch.leaves)
        self.version = version
        return UpdateResult(version, batch.root, batch.new,
                            batch.stale_top + batch.stale_deep + batch.stale_leaves)

    def rewind(self, version: int | None) -> None:
        """Move back to `version` (None: the empty tree), forgetting the
        applies above it, whose nodes the caller did not store (a synced
        block that re-executes to another header, a commit that failed)."""
        if version is not None:
            self._root(version)                   # it must be there
        limit = -1 if version is None else version
        for key in [k for k in self._top if key_version(k) > limit]:
            del self._top[key]
        for cache in (self._deep, self._leaves):
            for key in [k for k in cache.keys() if key_version(k) > limit]:
                cache.discard(key)
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
        if len(node) == 4:
            self._remember(key, node)
        return node

    def _load_page(self, key: bytes) -> tuple:
        node = self._load(key)
        if len(node) != 4:
            raise StateTreeError(f"state tree node {key.hex()} should be a page")
        return node

    def _load_leaf(self, key: bytes) -> tuple:
        node = self._leaves.get(key)
        if node is not None:
            return node
        data = self.store.get(key)
        node = self._load(key) if data is None else _decode(key, data)
        if len(node) != 2:
            raise StateTreeError(f"state tree node {key.hex()} should be a leaf")
        self._leaves.put(key, node)
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
#   None                                  nothing left there
#   (LEAF, hash, path, value_hash, key)   one key; `key` is its node key if it is
#                                         stored at this very position unchanged,
#                                         else None (its parent writes it)
#   (PAGE, hash, version)                 a page stored at this position
LEAF = 0
PAGE = 1


class _Batch:
    """One `apply`: the sorted (path, value hash | None) items and what the
    update writes and retires.  Recursion follows the tree, each call owning
    the items items[lo:hi] that share the position's first `depth` nibbles,
    so the upper levels are visited once per block, not once per key."""

    __slots__ = ("tree", "version", "vbytes", "items", "new", "stale_top", "stale_deep", "stale_leaves",
                 "top_pages", "deep_pages", "leaves", "root", "pack", "page_state", "top_get", "deep_get",
                 "load_leaf")

    def __init__(self, tree: StateTree, version: int, items: list) -> None:
        self.tree = tree
        self.version = version
        self.vbytes = version.to_bytes(VERSION_BYTES, "big")
        self.items = items
        self.new: dict[bytes, bytes] = {}
        # Retired node keys, by the cache that may hold them: pages above
        # TOP_DEPTH, deeper pages, leaves.
        self.stale_top: list[bytes] = []
        self.stale_deep: list[bytes] = []
        self.stale_leaves: list[bytes] = []
        # New nodes to cache once the update has succeeded, the same way.
        self.top_pages: list[tuple[bytes, tuple]] = []
        self.deep_pages: list[tuple[bytes, tuple]] = []
        self.leaves: list[tuple[bytes, tuple]] = []
        self.root = EMPTY_ROOT
        self.pack = msgpack.Packer(use_bin_type=True).pack
        self.page_state = PAGE_STATE.copy
        self.top_get = tree._top.get
        self.deep_get = tree._deep.get
        self.load_leaf = tree._load_leaf

    def update_root(self, okey: bytes | None, node: tuple | None):
        """Update the root (`node`, stored under `okey`; None or () if empty)."""
        n = len(self.items)
        if not node:
            return self.fresh(0, 0, n)
        if len(node) == 2:
            return self.update_leaf(0, okey, leaf_hash(*node), node, 0, n)
        return self.update_page(0, okey, page_hash(node[0], node[2]), okey[:VERSION_BYTES], 0, n)

    def fresh(self, depth: int, lo: int, hi: int):
        """The subtree for items[lo:hi] at an empty position."""
        live = [it for it in self.items[lo:hi] if it[1] is not None]
        return self.build(depth, live, 0, len(live)) if live else None

    def build(self, depth: int, items: list, lo: int, hi: int):
        """A fresh subtree for items[lo:hi] (no deletes, at least one)."""
        if hi - lo == 1:
            path, vhash = items[lo]
            return (LEAF, leaf_hash(path, vhash), path, vhash, None)
        vbytes = self.vbytes
        new = self.new
        nib = NIBBLE[depth & 1]
        w = depth >> 1
        below = depth + 1
        bitmap = leafmap = 0
        hashes = []
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
                self.put_leaf(vbytes + position(r[2], below), r[2], r[3])
            hashes.append(r[1])
            i = j
        return self.emit_page(depth, position(items[lo][0], depth), bitmap, leafmap,
                              b"".join(hashes), vbytes * len(hashes))

    def update_leaf(self, depth: int, okey: bytes, ohash: bytes, leaf: tuple | None,
                    lo: int, hi: int):
        """Update the position at `depth` that holds the leaf stored under `okey`."""
        opath, ovhash = leaf or self.load_leaf(okey)
        items = self.items
        if hi - lo == 1 and items[lo][0] == opath:
            vhash = items[lo][1]
            if vhash == ovhash:
                return (LEAF, ohash, opath, ovhash, okey)
            self.stale_leaves.append(okey)
            return None if vhash is None else (LEAF, leaf_hash(opath, vhash), opath, vhash, None)
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
            return (LEAF, ohash, opath, ovhash, okey)
        self.stale_leaves.append(okey)
        return self.build(depth, merged, 0, len(merged)) if merged else None

    def update_page(self, depth: int, okey: bytes, ohash: bytes, oversion: bytes, lo: int, hi: int):
        """Update the position at `depth` that holds the page stored under `okey`."""
        if hi - lo == 1:
            return self.update_page_1(depth, okey, ohash, oversion, lo)
        bitmap, leafmap, hashes, versions = self.tree._load_page(okey)
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
                idx = (bitmap & (bit - 1)).bit_count()
                cversion = versions[VERSION_BYTES * idx:VERSION_BYTES * idx + VERSION_BYTES]
                ckey = cversion + position(path, below)
                chash = hashes[32 * idx:32 * idx + 32]
                if leafmap & bit:
                    r = self.update_leaf(below, ckey, chash, None, i, j)
                    if r is None or r[0] == PAGE or r[4] is None:
                        changes.append((n, r))
                else:
                    r = self.update_page(below, ckey, chash, cversion, i, j)
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
            return self.lift(depth, bitmap, hashes, versions, new_bitmap, changes, items[lo][0])
        # Splice the changed children into the old page: runs of unchanged
        # children are copied as one slice each.
        vbytes = self.vbytes
        new = self.new
        parts = []
        new_versions = []
        prev = 0
        for n, r in changes:
            bit = 1 << n
            idx = (bitmap & (bit - 1)).bit_count()
            if idx > prev:
                parts.append(hashes[32 * prev:32 * idx])
                new_versions.append(versions[VERSION_BYTES * prev:VERSION_BYTES * idx])
            prev = idx + 1 if bitmap & bit else idx
            if r is not None:
                if r[0] == LEAF:
                    self.put_leaf(vbytes + position(r[2], below), r[2], r[3])
                parts.append(r[1])
                new_versions.append(vbytes)
        parts.append(hashes[32 * prev:])
        new_versions.append(versions[VERSION_BYTES * prev:])
        return self.emit_page(depth, okey[VERSION_BYTES:], new_bitmap, new_leafmap,
                              b"".join(parts), b"".join(new_versions))

    def update_page_1(self, depth: int, okey: bytes, ohash: bytes, oversion: bytes, i: int):
        """update_page (and update_leaf below it) for the one item items[i]:
        below the top levels most pages see one write per block, and this path
        has no grouping or splicing loops.  The tests check both paths against
        trees built from scratch."""
        page = self.top_get(okey) if depth < TOP_DEPTH else self.deep_get(okey)
        if page is None:
            page = self.tree._load_page(okey)
        bitmap, leafmap, hashes, versions = page
        path, vhash = self.items[i]
        below = depth + 1
        bit = 1 << NIBBLE[depth & 1][path[depth >> 1]]
        idx = (bitmap & (bit - 1)).bit_count()
        at = 32 * idx
        vat = VERSION_BYTES * idx
        cpos = position(path, below)
        if not bitmap & bit:
            if vhash is None:
                return (PAGE, ohash, oversion)        # deleting a key that is not there
            r = (LEAF, leaf_hash(path, vhash), path, vhash, None)
            end = at
            vend = vat
        else:
            cversion = versions[vat:vat + VERSION_BYTES]
            ckey = cversion + cpos
            if leafmap & bit:
                opath, ovhash = self.load_leaf(ckey)
                if opath == path:
                    if vhash == ovhash:
                        return (PAGE, ohash, oversion)
                    r = None if vhash is None else (LEAF, leaf_hash(path, vhash), path, vhash, None)
                elif vhash is None:
                    return (PAGE, ohash, oversion)
                else:
                    pair = [(opath, ovhash), (path, vhash)]
                    pair.sort()
                    r = self.build(below, pair, 0, 2)
                self.stale_leaves.append(ckey)
            else:
                r = self.update_page_1(below, ckey, hashes[at:at + 32], cversion, i)
                if r is not None and r[0] == PAGE and r[2] == cversion:
                    return (PAGE, ohash, oversion)
            end = at + 32
            vend = vat + VERSION_BYTES
        (self.stale_top if depth < TOP_DEPTH else self.stale_deep).append(okey)
        if r is None:
            bitmap &= ~bit
            leafmap &= ~bit
            if not bitmap:
                return None
            if bitmap == leafmap and bitmap & (bitmap - 1) == 0:
                # one leaf left: it moves up into this page's place
                other = 0 if idx else 32
                vother = 0 if idx else VERSION_BYTES
                key = versions[vother:vother + VERSION_BYTES] + position(
                    child_position(path, depth, bitmap.bit_length() - 1), below)
                lpath, lvhash = self.load_leaf(key)
                self.stale_leaves.append(key)
                return (LEAF, hashes[other:other + 32], lpath, lvhash, None)
            return self.emit_page(depth, okey[VERSION_BYTES:], bitmap, leafmap,
                                  hashes[:at] + hashes[end:], versions[:vat] + versions[vend:])
        if r[0] == LEAF:
            if bitmap == bit:
                # a page child that shrank to one leaf was this page's only child
                return r
            self.put_leaf(self.vbytes + cpos, r[2], r[3])
            leafmap |= bit
        else:
            leafmap &= ~bit
        bitmap |= bit
        return self.emit_page(depth, okey[VERSION_BYTES:], bitmap, leafmap,
                              hashes[:at] + r[1] + hashes[end:],
                              versions[:vat] + self.vbytes + versions[vend:])

    def lift(self, depth: int, bitmap: int, hashes: bytes, versions: bytes, new_bitmap: int,
             changes: list, path: bytes):
        """The page at `depth` is left with one leaf: that leaf moves up to
        take the page's place (leaves hang at the shortest unique prefix)."""
        n = new_bitmap.bit_length() - 1
        for cn, r in changes:
            if cn == n:
                return (LEAF, r[1], r[2], r[3], None)
        bit = 1 << n
        idx = (bitmap & (bit - 1)).bit_count()
        vat = VERSION_BYTES * idx
        key = versions[vat:vat + VERSION_BYTES] + position(child_position(path, depth, n), depth + 1)
        lpath, lvhash = self.tree._load_leaf(key)
        self.stale_leaves.append(key)
        return (LEAF, hashes[32 * idx:32 * idx + 32], lpath, lvhash, None)

    def emit_page(self, depth: int, pos: bytes, bitmap: int, leafmap: int,
                  hashes: bytes, versions: bytes):
        key = self.vbytes + pos
        self.new[key] = self.pack([bitmap, leafmap, hashes, versions])     # format.encode_page
        (self.top_pages if depth < TOP_DEPTH else self.deep_pages).append(
            (key, (bitmap, leafmap, hashes, versions)))
        h = self.page_state()                                             # format.page_hash
        h.update(bitmap.to_bytes(2, "big"))
        h.update(hashes)
        return (PAGE, h.digest(), self.vbytes)

    def put_leaf(self, key: bytes, path: bytes, vhash: bytes) -> None:
        self.new[key] = LEAF_HEAD + path + LEAF_MID + vhash      # format.encode_leaf
        self.leaves.append((key, (path, vhash)))

    def finish_root(self, r, old_key: bytes | None, old: tuple | None) -> None:
        """Store the root at (version, empty path), so every version has one
        whatever changed; an unchanged root is copied and the old one retired."""
        version = self.version
        key = root_key(version)
        if r is None:
            self.new[key] = EMPTY_NODE
            self.root = EMPTY_ROOT
            unchanged = not old
        elif r[0] == LEAF:
            self.put_leaf(key, r[2], r[3])
            self.root = r[1]
            unchanged = r[4] is not None
        else:
            self.root = r[1]
            unchanged = r[2] != self.vbytes
            if unchanged:
                self.new[key] = encode_page(*old, self.pack)
                self.top_pages.append((key, old))
        # The update retired the old root itself when it rewrote it; an empty
        # or unchanged one is retired here.
        if old_key is not None and (unchanged or not old):
            (self.stale_leaves if len(old) == 2 else self.stale_top).append(old_key)
