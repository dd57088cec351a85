"""StateTree: batch updates per block, reads and proofs over a node store.

The tree object is a cursor on the newest version; every read names the
version it reads, so a proof at an older height works as long as the caller
keeps that version's nodes.  Nothing here writes to the store: `apply`
returns the nodes to write and the ones that became stale, and the caller
puts them in its own (synced) batch.  The format is specified in the package
docstring (ledger/state_tree/__init__.py).

Persisting.  `apply(v, writes, persist=False)` computes v's root but keeps
the pages it writes in memory (the dirty pages, under PENDING node keys),
and returns no nodes; the next `apply(..., persist=True)` writes every
page dirty since the last persisted version once, at its own version.
Every version's root is computed; only persisted versions (and the current
one) can be read.  Why: a block of ~2,000 random keys rewrites the top
three levels of pages and ~1,600 of the 4,096 fourth-level ones every
time; persisting once per 16 blocks writes each of those once, and most of
the tree's cost was writing, packing, compacting and pruning pages that no
reader ever asked for (proofs are made at stable checkpoints only, the
heights the node persists: ledger.execution).  The caller makes the
versions in between recoverable on its own (storage.kv_store logs each
block's written keys and re-applies them on reopening).
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol

import msgpack

from ..codec import DecodeError
from ..errors import StateTreeError
from .format import (EMPTY_NODE, EMPTY_ROOT, LEAF_BYTES, MAX_VERSION, NIBBLE, PAGE_STATE, VERSION_BYTES,
                     child_position, decode_node, encode_leaf, encode_page, hashed_writes, key_path,
                     key_version, leaf_hash, nibble, node_hash, page_hash, position, root_key)
from .proof import StateProof

# Decoded pages are kept in memory.  Those above TOP_DEPTH are read by nearly
# every block: at most 1 + 16 + 256 + 4096 live ones, all kept (the bound only
# matters after reads at many old versions).  Deeper ones are read once per
# block at most, at random: the ones used lately are kept, between
# `deep_pages` and twice as many (~0.7 KB each at 1M keys, leaf children
# included: ~20 MiB), which saves a store read and a decode per page for as
# many of them as fit.  The pages written since the last persisted version
# are in memory anyway (the dirty set, up to a checkpoint interval's worth):
# with them, halving this cache from 32,768 changed nothing measurable in
# throughput and saved 10-28 MB per node (`ynchain bench --duration 120`,
# 2 pairs).  Leaves live in their parent page, so a page in memory answers
# for its leaf children too.
TOP_DEPTH = 4
MAX_TOP_PAGES = 8192
DEEP_PAGES = 16_384

# The version bytes of a page written since the last persisted version: it
# lives in StateTree._dirty under PENDING + its position, and a parent in
# memory refers to it with this version.  Persisting rewrites these to the
# persisted version (format.MAX_VERSION keeps real versions below it).
PENDING = b"\xff" * VERSION_BYTES
PENDING_ROOT = PENDING + b"\x00"
# Pages kept dirty before a version is persisted whatever the caller asked:
# ~0.8 KB each in memory, so at most ~27 MB.  A 1M-key tree with blocks of
# 2,000 new keys dirties ~3,000 pages a block and reaches this in ~8 blocks
# of a 16-block checkpoint interval: measured there, it writes 1.74 nodes
# (954 bytes) per key against 1.54 (819) with twice the bound, for the
# same CPU; below ~500k keys a checkpoint interval stays under it.
MAX_DIRTY_PAGES = 32_768


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

    persisted: whether `version` is persisted; if not, new_nodes and stale
    are empty (what it changed is kept in memory until the next persisted
    version lists it).
    new_nodes: node key -> encoded node; store them before reading `version`.
    stale: node keys the previously persisted version used and `version`
    does not; the versions below `version` still do, so delete them only
    once no version below `version` will be read again.
    """
    version: int
    root: bytes
    new_nodes: dict[bytes, bytes]
    stale: list[bytes]
    persisted: bool = True


@dataclass(frozen=True, slots=True)
class _Undo:
    """What the last `apply` changed, for `rewind` to its base version."""
    version: int | None
    root_at: bytes | None
    persisted: int | None
    dirty: dict                  # the dirty pages before it (restored by `pages`)
    pages: dict                  # dirty key -> the page it held before (None: none)
    stale: list                  # the pending stale list before it (truncated to stale_len)
    stale_len: int


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
        # Pages (and a leaf or empty root) written since the last persisted
        # version, under PENDING + position; the persisted nodes they
        # replaced, for that version's stale list.
        self._dirty: dict[bytes, tuple] = {}
        self._stale: list[bytes] = []
        self._undo: _Undo | None = None
        self.persisted = version                  # the newest persisted version
        self._root_at = None if version is None else root_key(version)   # where the current root is
        self.version = version
        if version is not None:
            self._root(version, stored=True)      # fail now if it is not there

    @property
    def dirty_pages(self) -> int:
        return len(self._dirty)

    # -- reads ----------------------------------------------------------------------
    def root_hash(self, version: int | None = None) -> bytes:
        """The root hash at `version` (default: the current one)."""
        if version is None:
            if self.version is None:
                return EMPTY_ROOT
            version = self.version
        return node_hash(self._root(version))

    def readable(self, version: int) -> bool:
        """Whether `version` can be read: the current one, or a persisted one
        the caller still keeps."""
        if version == self.version:
            return True
        return self.oldest <= version <= MAX_VERSION and self.store.get(root_key(version)) is not None

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
    def apply(self, version: int, writes: Mapping[bytes, bytes | None], *,
              persist: bool = True) -> UpdateResult:
        """Apply one block's writes (state key -> new value, None = delete) as
        `version`, which must be above the current one.  The tree moves to
        `version`; with `persist` (or once MAX_DIRTY_PAGES are dirty) the
        result holds every node written since the last persisted version,
        which the caller stores before reading `version`, or it calls
        `rewind` if it never does."""
        base = self.version
        _check_version(version)
        if base is not None and version <= base:
            raise StateTreeError(f"state tree version {version} does not follow {base}")
        items = hashed_writes(writes)
        items.sort()
        batch = _Batch(self, items)
        old_key = self._root_at
        old = None if old_key is None else self._load(old_key)
        r = batch.update_root(old_key, old)
        if r is None:
            root, root_at = EMPTY_ROOT, PENDING_ROOT
            batch.emitted[PENDING_ROOT] = ()
        elif r[0] == LEAF:
            root, root_at = r[1], PENDING_ROOT
            batch.emitted[PENDING_ROOT] = (r[2], r[3])
        else:
            root, root_at = r[1], r[2] + b"\x00"
        # Only now that nothing can fail: the tree's state changes, and the
        # caches never hold a page of an update that raised.  Each list holds
        # the pages of one cache, so each key is looked up in the one cache
        # that can hold it.
        top, deep = self._top, self._deep
        for key in batch.stale_top:
            top.pop(key, None)
        for key in batch.stale_deep:
            deep.discard(key)
        dirty = self._dirty
        undo = _Undo(base, old_key, self.persisted, dirty, {k: dirty.get(k) for k in batch.emitted},
                     self._stale, len(self._stale))
        dirty.update(batch.emitted)
        self._stale.extend(batch.stale_top)
        self._stale.extend(batch.stale_deep)
        self._undo = undo
        self.version = version
        self._root_at = root_at
        if not persist and len(dirty) < MAX_DIRTY_PAGES:
            return UpdateResult(version, root, {}, [], persisted=False)
        new, stale = self._persist(version)
        return UpdateResult(version, root, new, stale)

    def _persist(self, version: int) -> tuple[dict[bytes, bytes], list[bytes]]:
        """Encode the dirty pages the current root reaches as `version`'s
        nodes (rewriting PENDING child versions to it), store the root at
        (version, depth 0) whatever it is, and start a new dirty set."""
        vbytes = version.to_bytes(VERSION_BYTES, "big")
        new: dict[bytes, bytes] = {}
        stale = self._stale
        dirty = self._dirty
        pack = msgpack.Packer(use_bin_type=True).pack
        top_pages: list[tuple[bytes, tuple]] = []
        deep_pages: list[tuple[bytes, tuple]] = []
        rkey = vbytes + b"\x00"
        at = self._root_at
        root = self._load(at)
        if at != PENDING_ROOT or len(root) != 5:
            # A root that is not a page written since the last persisted
            # version: a copy at this version (an unchanged page, a leaf, or
            # the empty tree), so every persisted version has its root.
            new[rkey] = EMPTY_NODE if not root else (encode_leaf(*root) if len(root) == 2
                                                     else encode_page(*root, pack))
            if len(root) == 5:
                top_pages.append((rkey, root))
        else:
            todo = [(b"\x00", root)]
            while todo:
                pos, page = todo.pop()
                bitmap, leafmap, hashes, versions, leaves = page
                if PENDING in versions:           # may match across entries: checked one by one
                    parts = []
                    children = bitmap & ~leafmap
                    for i in range(0, len(versions), VERSION_BYTES):
                        low = children & -children
                        children ^= low
                        v = versions[i:i + VERSION_BYTES]
                        if v == PENDING:
                            depth = pos[0]     # a position is its depth, then its nibbles
                            cpos = position(child_position(pos[1:], depth, low.bit_length() - 1), depth + 1)
                            todo.append((cpos, dirty[PENDING + cpos]))
                            v = vbytes
                        parts.append(v)
                    page = (bitmap, leafmap, hashes, b"".join(parts), leaves)
                key = vbytes + pos
                new[key] = pack(list(page))               # format.encode_page
                (top_pages if pos[0] < TOP_DEPTH else deep_pages).append((key, page))
        # The previously persisted root, if no update retired it (it was
        # copied, or a leaf or empty root: updates retire pages only).
        if self.persisted is not None:
            old_root = root_key(self.persisted)
            if old_root not in stale:
                stale.append(old_root)
        _remember_all(self._top, top_pages, MAX_TOP_PAGES)
        self._deep.put_all(deep_pages)
        self._dirty = {}
        self._stale = []
        self.persisted = version
        self._root_at = rkey
        return new, stale

    def rewind(self, version: int | None) -> None:
        """Move back to `version` (None: the empty tree), forgetting the
        applies above it, whose nodes the caller did not store (a synced
        block that re-executes to another header, a commit that failed):
        the version the last apply started from, or a persisted one."""
        if version == self.version:
            return
        undo = self._undo
        if undo is not None and version == undo.version:
            dirty = undo.dirty
            for key, page in undo.pages.items():
                if page is None:
                    dirty.pop(key, None)
                else:
                    dirty[key] = page
            del undo.stale[undo.stale_len:]
            self._dirty, self._stale = dirty, undo.stale
            self._root_at, self.persisted = undo.root_at, undo.persisted
        else:
            if version is not None:
                self._root(version, stored=True)  # it must be there
            self._dirty, self._stale = {}, []
            self._root_at = None if version is None else root_key(version)
            self.persisted = version
        self._undo = None
        limit = -1 if version is None else version
        for key in [k for k in self._top if key_version(k) > limit]:
            del self._top[key]
        for key in [k for k in self._deep.keys() if key_version(k) > limit]:
            self._deep.discard(key)
        self.version = version

    # -- nodes ---------------------------------------------------------------------
    def _root(self, version: int, stored: bool = False) -> tuple:
        _check_version(version)
        if version < self.oldest:
            raise StateTreeError(f"state tree version {version} was pruned (versions from "
                                 f"{self.oldest} are kept)")
        if version == self.version and not stored:
            return self._load(self._root_at)
        return self._load(root_key(version))

    def _load(self, key: bytes) -> tuple:
        node = self._top.get(key) or self._deep.get(key)
        if node is not None:
            return node
        if key[:VERSION_BYTES] == PENDING:
            return self._dirty[key]
        data = self.store.get(key)
        if data is None:
            raise StateTreeError(f"state tree node {key.hex()} is not in the store (version "
                                 f"{key_version(key)} was never persisted, or was pruned)")
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

    __slots__ = ("tree", "vbytes", "items", "emitted", "stale_top", "stale_deep",
                 "page_state", "top_get", "deep_get", "dirty")

    def __init__(self, tree: StateTree, items: list) -> None:
        self.tree = tree
        self.vbytes = PENDING                    # the version new pages get until persisted
        self.items = items
        self.emitted: dict[bytes, tuple] = {}    # PENDING + position -> new page
        # Retired persisted node keys, by the cache that may hold them: pages
        # above TOP_DEPTH, deeper pages.  (A dirty page that is rewritten
        # was never stored: nothing to retire.)
        self.stale_top: list[bytes] = []
        self.stale_deep: list[bytes] = []
        self.page_state = PAGE_STATE.copy
        self.top_get = tree._top.get
        self.deep_get = tree._deep.get
        self.dirty = tree._dirty

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
        bitmap, leafmap, hashes, versions, leaves = (self.dirty[okey] if oversion == PENDING
                                                     else self.tree._load_page(okey))
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
                    # a dirty child rewritten keeps version PENDING: its hash tells
                    if r is None or r[0] == LEAF or r[2] != cversion or r[1] != chash:
                        changes.append((n, r))
            else:
                r = self.fresh(below, i, j)
                if r is not None:
                    changes.append((n, r))
            i = j
        if not changes:
            return (PAGE, ohash, oversion)
        if oversion != PENDING:
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
        if oversion == PENDING:
            page = self.dirty[okey]
        else:
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
            chash = hashes[at:at + 32]
            r = self.update_page_1(below, cversion + position(path, below), chash, cversion, i)
            if r is not None and r[0] == PAGE and r[2] == cversion and r[1] == chash:
                return (PAGE, ohash, oversion)
            end = at + 32
            vend = vat + VB
        elif vhash is None:
            return (PAGE, ohash, oversion)            # deleting a key that is not there
        else:
            r = (LEAF, leaf_hash(path, vhash), path, vhash, False)
        if oversion != PENDING:
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
        self.emitted[PENDING + pos] = (bitmap, leafmap, hashes, versions, leaves)
        h = self.page_state()                                             # format.page_hash
        h.update(bitmap.to_bytes(2, "big"))
        h.update(hashes)
        return (PAGE, h.digest(), PENDING)
