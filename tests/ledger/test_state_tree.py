"""The authenticated state tree: canonical roots, history, pruning, reopening
and proofs, checked against a reference written from the format spec
(ledger/state_tree/__init__.py) with hashlib alone."""

from __future__ import annotations

import hashlib
import random
from contextlib import contextmanager
from types import SimpleNamespace
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.errors import DecodeError, StateTreeError
from ledger.state_tree import (EMPTY_ROOT, MAX_PROOF_BYTES, MemoryNodeStore, StateProof, StateTree,
                               check, node_key, root_key, verify)
from ledger.state_tree import proof as proof_module
from ledger.state_tree import tree as tree_module
from ledger.state_tree.format import position

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- the reference: the spec, literally ------------------------------------------------

def H(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def ref_leaf(path: bytes, vhash: bytes) -> bytes:
    return H(b"ynchain/state-tree/leaf\x00" + path + vhash)


def ref_nibble(path: bytes, depth: int) -> int:
    b = path[depth // 2]
    return b & 15 if depth % 2 else b >> 4


def ref_tree(pairs: list[tuple[bytes, bytes]], depth: int = 0) -> bytes | None:
    if not pairs:
        return None
    if len(pairs) == 1:
        return ref_leaf(*pairs[0])
    children = {}
    for path, vhash in pairs:
        children.setdefault(ref_nibble(path, depth), []).append((path, vhash))
    bitmap = sum(1 << n for n in children)
    hashes = b"".join(ref_tree(children[n], depth + 1) for n in sorted(children))
    return H(b"ynchain/state-tree/page\x00" + bitmap.to_bytes(2, "big") + hashes)


def ref_root(state: dict[bytes, bytes], path_of=H) -> bytes:
    root = ref_tree([(path_of(k), H(v)) for k, v in state.items()])
    return H(b"ynchain/state-tree/empty") if root is None else root


# -- helpers ---------------------------------------------------------------------

class Chain:
    """A tree, its store and a model of the state at every version."""

    def __init__(self) -> None:
        self.store = MemoryNodeStore()
        self.tree = StateTree(self.store)
        self.history: dict[int, dict[bytes, bytes]] = {}
        self.results = {}
        self.state: dict[bytes, bytes] = {}

    def apply(self, version: int, writes: dict[bytes, bytes | None]):
        before = self.reachable(self.tree.version) if self.tree.version is not None else set()
        result = self.tree.apply(version, writes)
        after_new = set(result.new_nodes)
        assert all(k[:6] == version.to_bytes(6, "big") for k in after_new)
        assert set(result.stale) <= before and len(set(result.stale)) == len(result.stale)
        self.store.write(result)
        # what the new version uses = what the old one did, less stale, plus new
        assert self.reachable(version) == (before - set(result.stale)) | after_new
        for k, v in writes.items():
            if v is None:
                self.state.pop(k, None)
            else:
                self.state[k] = v
        self.history[version] = dict(self.state)
        self.results[version] = result
        return result

    def reachable(self, version: int) -> set[bytes]:
        """Node keys of a version's tree, walking the stored nodes."""
        out = set()
        todo = [(root_key(version), b"", 0)]
        while todo:
            key, prefix_path, depth = todo.pop()
            out.add(key)
            rec = codec.unpack(self.store.get(key))
            if len(rec) == 5:          # a page: its page children are nodes, its leaves are in it
                bitmap, leafmap, _, versions, _ = rec
                for i, n in enumerate(n for n in range(16) if (bitmap & ~leafmap) >> n & 1):
                    child = _with_nibble(prefix_path, depth, n)
                    version = int.from_bytes(versions[6 * i:6 * i + 6], "big")
                    todo.append((node_key(version, child, depth + 1), child, depth + 1))
        return out


def _with_nibble(path: bytes, depth: int, n: int) -> bytes:
    padded = path + bytes(33 - len(path))
    b = bytearray(padded)
    if depth % 2:
        b[depth // 2] = (b[depth // 2] & 0xF0) | n
    else:
        b[depth // 2] = n << 4
    return bytes(b[:depth // 2 + 1])


@contextmanager
def raw_paths():
    """Use 32-byte keys as their own paths, so tests can build trees that
    hashed keys reach only with astronomically unlikely collisions (paths
    sharing up to 63 nibbles)."""
    identity = lambda key: key  # noqa: E731

    def hashed_writes(writes):          # format.hashed_writes, with the keys as paths
        return [(k, None if v is None else H(v)) for k, v in writes.items()]

    with mock.patch.object(tree_module, "key_path", identity), \
            mock.patch.object(tree_module, "hashed_writes", hashed_writes), \
            mock.patch.object(proof_module, "key_path", identity):
        yield identity


keys = st.binary(min_size=0, max_size=12)
values = st.binary(min_size=0, max_size=20)
states = st.dictionaries(keys, values, max_size=40)


# -- roots ------------------------------------------------------------------------

def test_empty_tree() -> None:
    store = MemoryNodeStore()
    tree = StateTree(store)
    assert tree.root_hash() == EMPTY_ROOT == H(b"ynchain/state-tree/empty")
    result = tree.apply(0, {})
    assert result.root == EMPTY_ROOT
    assert result.new_nodes == {root_key(0): b"\x90"} and result.stale == []
    store.write(result)
    assert tree.get(0, b"x") is None
    assert verify(EMPTY_ROOT, b"x", None, tree.prove(0, b"x"))


def test_format_vector() -> None:
    """A fixed vector for independent verifiers, and the node encodings."""
    store = MemoryNodeStore()
    tree = StateTree(store)
    state = {b"kv/data/a": b"\x01", b"kv/data/b": b"\x02", b"kv/owner/a": b"\xa4tax"}
    result = tree.apply(1, state)
    assert result.root == ref_root(state)
    assert result.root.hex() == "edc940e85a4489a0d71d34da64462c6d399a3bf7ac6544ab6fbc8877623af65c"
    root = codec.unpack(result.new_nodes[root_key(1)])
    bitmap, leafmap, hashes, versions, leaves = root
    assert len(hashes) // 32 == bitmap.bit_count() and leafmap & ~bitmap == 0
    assert versions == (1).to_bytes(6, "big") * (bitmap & ~leafmap).bit_count()
    assert len(leaves) == 64 * leafmap.bit_count()
    found = set()
    for key, data in result.new_nodes.items():
        assert codec.pack(codec.unpack(data)) == data        # canonical msgpack
        rec = codec.unpack(data)
        assert len(rec) == 5                                 # pages only: leaves live in them
        bitmap, leafmap, hashes, _, leaves = rec
        depth = key[6]
        slots = [n for n in range(16) if bitmap >> n & 1]
        for i, n in enumerate(n for n in slots if leafmap >> n & 1):
            path, vhash = leaves[64 * i:64 * i + 32], leaves[64 * i + 32:64 * i + 64]
            assert position(path, depth) == key[6:] and ref_nibble(path, depth) == n
            # the leaf's hash is the page's child hash in its slot
            assert hashes[32 * slots.index(n):32 * slots.index(n) + 32] == ref_leaf(path, vhash)
            found.add((path, vhash))
    assert found == {(H(k), H(v)) for k, v in state.items()}


def test_single_key_root_is_its_leaf() -> None:
    tree = StateTree(MemoryNodeStore())
    result = tree.apply(5, {b"k": b"v"})
    assert result.root == ref_leaf(H(b"k"), H(b"v"))
    assert list(result.new_nodes) == [root_key(5)]


@SETTINGS
@given(states, st.randoms(use_true_random=False), st.integers(1, 6))
def test_root_depends_only_on_the_final_set(state, rnd, n_batches) -> None:
    """Insertion order, batching, intermediate values and deleted keys never
    show in the root."""
    chain = Chain()
    items = list(state.items())
    rnd.shuffle(items)
    noise = [(b"noise/%d" % i, b"x") for i in range(rnd.randint(0, 10))]
    cuts = sorted(rnd.randint(0, len(items)) for _ in range(n_batches - 1))
    batches = [dict(items[a:b]) for a, b in zip([0] + cuts, cuts + [len(items)])]
    for k, v in noise:                        # written then deleted later
        rnd.choice(batches)[k] = v
    version = 0
    for batch in batches:
        for k in list(batch):                 # some keys first get another value
            if k in state and rnd.random() < 0.3:
                version += 1
                chain.apply(version, {k: b"other" + state[k]})
        version += 1
        chain.apply(version, batch)
    version += 1
    result = chain.apply(version, {k: None for k, _ in noise if k not in state})
    assert result.root == ref_root(state)
    assert result.root == StateTree(MemoryNodeStore()).apply(1, state).root


@SETTINGS
@given(states, keys, values)
def test_delete_returns_to_the_same_root_and_nodes(state, key, value) -> None:
    chain = Chain()
    state.pop(key, None)
    before = chain.apply(1, state).root
    chain.apply(2, {key: value})
    assert chain.tree.root_hash() != before
    result = chain.apply(3, {key: None})
    assert result.root == before
    # the same shape, not only the same hash: same positions, same contents
    # (but for the versions the nodes were written at)
    def shape(version):
        def contents(rec):
            return rec[:3] + rec[4:]
        return sorted((k[6:], contents(codec.unpack(chain.store.get(k)))) for k in chain.reachable(version))
    assert shape(3) == shape(1)


@SETTINGS
@given(st.lists(st.dictionaries(keys, st.one_of(st.none(), values), max_size=12), max_size=12))
def test_history_against_a_model(blocks) -> None:
    """Every version keeps its root, values and proofs after later blocks."""
    chain = Chain()
    for version, writes in enumerate(blocks, start=1):
        assert chain.apply(version, writes).root == ref_root(chain.state)
    probe = set().union(*[set(b) for b in blocks]) | {b"never written"}
    for version, state in chain.history.items():
        root = chain.results[version].root
        assert chain.tree.root_hash(version) == root
        for key in probe:
            expected = state.get(key)
            assert chain.tree.get(version, key) == (None if expected is None else H(expected))
            assert check(root, key, expected, chain.tree.prove(version, key)) is None


@SETTINGS
@given(st.lists(st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 63),
                          st.integers(0, 15), values), min_size=1, max_size=30),
       st.randoms(use_true_random=False))
def test_deep_paths(specs, rnd) -> None:
    """Paths that share long prefixes (up to 63 nibbles): long chains of
    one-child pages, leaves moving down on insert and up on delete."""
    with raw_paths():
        base = specs[0][0]
        state = {}
        for noise, shared, last, value in specs:
            # share `shared` nibbles with base, then differ at that nibble
            path = bytearray(noise)
            path[:shared // 2] = base[:shared // 2]
            if shared % 2:
                path[shared // 2] = (base[shared // 2] & 0xF0) | (path[shared // 2] & 15)
            state[bytes(path)] = value
        chain = Chain()
        chain.apply(1, state)
        assert chain.tree.root_hash() == ref_root(state, path_of=lambda k: k)
        doomed = [k for k in state if rnd.random() < 0.5]
        chain.apply(2, {k: None for k in doomed})
        remaining = {k: v for k, v in state.items() if k not in doomed}
        assert chain.tree.root_hash() == ref_root(remaining, path_of=lambda k: k)
        for key in state:
            for version, expected in ((1, state), (2, remaining)):
                proof = chain.tree.prove(version, key)
                assert verify(chain.results[version].root, key, expected.get(key), proof)
                assert StateProof.decode(proof.encode()) == proof


def test_one_key_paths_and_many_key_paths_agree() -> None:
    """A block of one write takes the single-item path down the tree; the
    same writes in bigger blocks take the general one: same roots."""
    rng = random.Random(7)
    singles, batched = Chain(), Chain()
    pool = [b"k%d" % i for i in range(400)]
    version = 0
    for _ in range(12):
        block = {}
        for _ in range(rng.randint(1, 60)):
            k = rng.choice(pool)
            block[k] = None if rng.random() < 0.3 else rng.randbytes(rng.randint(0, 8))
        for k, v in block.items():
            version += 1
            singles.apply(version, {k: v})
        batched.apply(version, block)
        assert singles.tree.root_hash() == batched.tree.root_hash() == ref_root(batched.state)


def test_deleting_every_key_empties_the_tree() -> None:
    chain = Chain()
    state = {b"k%d" % i: b"v" for i in range(100)}
    chain.apply(1, state)
    result = chain.apply(2, {k: None for k in state})
    assert result.root == EMPTY_ROOT and result.new_nodes == {root_key(2): b"\x90"}
    assert len(result.stale) == len(chain.reachable(1))
    assert chain.apply(3, {b"k1": b"v"}).root == ref_root({b"k1": b"v"})


def test_unchanged_writes_only_copy_the_root() -> None:
    chain = Chain()
    chain.apply(1, {b"a": b"1", b"b": b"2", b"c": b"3"})
    result = chain.apply(2, {b"a": b"1", b"absent": None})
    assert result.root == chain.results[1].root
    assert list(result.new_nodes) == [root_key(2)] and result.stale == [root_key(1)]
    assert result.new_nodes[root_key(2)] == chain.store.get(root_key(1))


def _pinned_blocks() -> list[dict]:
    """A fill of 3,000 keys, six blocks of updates, new keys and deletes over
    it, then deletes down to one key, then to none."""
    rng = random.Random(13)
    blocks = [{b"pin/%d" % i: b"v%d" % i for i in range(3000)}]
    for _ in range(6):
        block = {}
        for _ in range(rng.randint(1, 400)):
            k = b"pin/%d" % rng.randrange(3600)
            block[k] = None if rng.random() < 0.3 else rng.randbytes(rng.randint(0, 16))
        blocks.append(block)
    blocks.append({b"pin/%d" % i: None for i in range(3600) if i != 77})
    blocks.append({b"pin/%d" % i: None for i in range(3600)})
    return blocks


# Computed by the tree of store schema 6 (each leaf a node of its own, before
# leaves moved into their parent pages): the stored form changed, the roots
# and proofs must not.
PINNED_ROOTS = [
    "7c8ee1501ce819acb4cd8f07153ce9e91d58f86af55de064e5751c280ce162f8",
    "4d41d5791dd2bf3e7f71977171c518dff3ba80d2387b6941d846731b283fb6bc",
    "40c03238a32481ed70aac01a03976dafc9b743636e3be69b819a6d31f0cbe5f1",
    "1de75420dec8be1130291aabddee4c0c429c3c6c4007b06899b8ef124a88ee44",
    "3ceade9acac7af3694dac60784a521653cb294b49b41e5bab064b6fbeee8d0fe",
    "f411e30b3a18f184e21493d8fcab0bc749fbb39551cef876ce9cd45f2764903f",
    "54ccc5d94048d34dfa8fbd169131e24cd2bfd1131ad07a536e5ffd37b20b924f",
    "5aa053e13b46ad77b64210673d8a7f3506da666494f53795ba39829e0edd1999",      # one key left
    "87af1a374860aaafa2215f8b87e88b1e3169258f697043c4e17b22cc1588b1d1",      # empty
]
# H(the encoded proofs of pin/0, pin/9, ... pin/3591, in that order) at a version
PINNED_PROOFS = {
    2: "656088935df4ac1e40fbd814a8070a576edbb2b6d08085289a1c57a810839934",
    7: "54a39a2ad41190d7a3c5ba037e08dd7b65edf855a62e4da73c15e68f08137986",
    8: "bdd151793da5ce91c7ea49d44bb468acd859b38d7d7579ef0003c69b61c137ec",
}


def test_roots_and_proofs_are_those_of_the_previous_stored_form() -> None:
    chain = Chain()
    roots, proofs = [], {}
    for version, block in enumerate(_pinned_blocks(), start=1):
        roots.append(chain.apply(version, block).root.hex())
        assert roots[-1] == ref_root(chain.state).hex()
        if version in PINNED_PROOFS:
            h = hashlib.blake2b(digest_size=32)
            for i in range(0, 3600, 9):
                h.update(chain.tree.prove(version, b"pin/%d" % i).encode())
            proofs[version] = h.hexdigest()
    assert roots == PINNED_ROOTS
    assert proofs == PINNED_PROOFS


class _CountingStore(MemoryNodeStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[bytes] = []

    def get(self, node_key: bytes) -> bytes | None:
        self.reads.append(node_key)
        return super().get(node_key)


def test_leaves_live_in_their_pages_and_are_never_read_on_their_own() -> None:
    """An update writes and retires pages only (the root excepted, when it is
    a leaf or empty), and a read or proof loads exactly the pages on the
    key's path: a leaf comes with its parent page."""
    store = _CountingStore()
    tree = StateTree(store)
    state = {b"k%d" % i: b"v%d" % i for i in range(2000)}
    store.write(tree.apply(1, state))
    result = tree.apply(2, {b"k%d" % i: b"new" for i in range(0, 2000, 7)} | {b"fresh": b"x"})
    store.write(result)
    pages = set(result.new_nodes)
    assert all(len(codec.unpack(store.nodes[k])) == 5 for k in pages | set(result.stale))
    for key in (b"k5", b"k14", b"fresh", b"absent"):
        store.reads.clear()
        reopened = StateTree(store, 2, deep_pages=0)           # nothing cached: every page is read
        proof = reopened.prove(2, key)
        assert len(store.reads) == len(proof.levels) == len(set(store.reads))
        assert all(len(codec.unpack(store.nodes[k])) == 5 for k in store.reads)
        store.reads.clear()
        # again: the top levels' pages are kept, deeper ones (deep_pages=0) read again
        assert reopened.get(2, key) == proof.value_hash
        assert len(store.reads) == max(0, len(proof.levels) - tree_module.TOP_DEPTH)


# -- versions, pruning, reopening ---------------------------------------------------------

def _random_blocks(seed: int, n: int, pool: int = 300) -> list[dict]:
    rng = random.Random(seed)
    blocks = []
    for _ in range(n):
        block = {}
        for _ in range(rng.randint(0, 40)):
            k = b"key/%d" % rng.randrange(pool)
            block[k] = None if rng.random() < 0.25 else rng.randbytes(8)
        blocks.append(block)
    return blocks


def test_pruning_keeps_exactly_the_retained_versions() -> None:
    chain = Chain()
    blocks = _random_blocks(1, 30)
    for version, block in enumerate(blocks, start=1):
        chain.apply(version, block)
    keep_from = 20
    for version in range(1, keep_from + 1):
        chain.store.delete(chain.results[version].stale)
    live = set().union(*(chain.reachable(v) for v in range(keep_from, 31)))
    assert set(chain.store.nodes) == live               # nothing leaked, nothing missing
    reopened = StateTree(chain.store, 30)
    for version in range(keep_from, 31):
        root = chain.results[version].root
        for key in list(chain.history[version])[:20] + [b"absent"]:
            value = chain.history[version].get(key)
            assert verify(root, key, value, reopened.prove(version, key))
    with pytest.raises(StateTreeError, match="not in the store"):
        reopened.prove(keep_from - 1, b"key/1")


def test_reopened_tree_continues_identically() -> None:
    blocks = _random_blocks(2, 24)
    chain = Chain()
    for version, block in enumerate(blocks[:12], start=1):
        chain.apply(version, block)
    reopened = StateTree(chain.store, 12)
    assert reopened.root_hash() == chain.tree.root_hash()
    for version, block in enumerate(blocks[12:], start=13):
        expected = chain.apply(version, block)
        again = reopened.apply(version, block)
        assert (again.root, again.new_nodes, again.stale) == \
               (expected.root, expected.new_nodes, expected.stale)


def test_rewind_forgets_an_update_that_was_never_stored() -> None:
    """A synced block that re-executes to another header is dropped: the tree
    goes back, and the right block at that height gives the right root, with
    nothing of the dropped update left in the tree's cache."""
    chain = Chain()
    chain.apply(1, {b"k%d" % i: b"v" for i in range(300)})
    wrong = chain.tree.apply(2, {b"k%d" % i: b"wrong" for i in range(0, 300, 3)})
    chain.tree.rewind(1)
    assert chain.tree.version == 1
    assert not any(k in chain.tree._top or k in chain.tree._deep for k in wrong.new_nodes)
    right = {b"k%d" % i: b"right" for i in range(1, 300, 3)}
    assert chain.apply(2, right).root == ref_root(chain.state)
    chain.tree.rewind(None)
    assert chain.tree.root_hash() == EMPTY_ROOT and chain.tree.version is None
    with pytest.raises(StateTreeError):
        chain.tree.rewind(7)


def test_reopening_a_version_that_is_not_stored() -> None:
    with pytest.raises(StateTreeError, match="never persisted, or was pruned"):
        StateTree(MemoryNodeStore(), 3)


def test_versions_must_move_forward() -> None:
    chain = Chain()
    chain.apply(4, {b"a": b"1"})
    for bad in (4, 3, -1, 2**48, "5", None):
        with pytest.raises(StateTreeError):
            chain.tree.apply(bad, {b"a": b"2"})
    assert chain.tree.version == 4
    chain.apply(9, {b"a": b"2"})       # gaps are fine: versions are heights


@pytest.mark.parametrize("writes", [{"text": b"v"}, {b"k": "text"}, {b"k": 5}, {None: b"v"}])
def test_bad_writes_are_refused_before_any_change(writes) -> None:
    chain = Chain()
    chain.apply(1, {b"a": b"1"})
    with pytest.raises(StateTreeError, match="must be bytes"):
        chain.tree.apply(2, writes)
    assert chain.tree.version == 1
    chain.apply(2, {b"b": b"2"})


def test_a_failed_update_leaves_the_tree_as_it_was() -> None:
    chain = Chain()
    chain.apply(1, {b"k%d" % i: b"v" for i in range(200)})
    victim = next(k for k in chain.store.nodes if k[6] == 2)              # a page below the root's children
    depth = victim[6]
    key = next(b"k%d" % i for i in range(200) if position(H(b"k%d" % i), depth) == victim[6:])
    saved = chain.store.nodes.pop(victim)
    tree = StateTree(chain.store, 1)
    with pytest.raises(StateTreeError, match="not in the store"):
        tree.apply(2, {key: b"new", b"k999": b"new"})
    assert tree.version == 1
    chain.store.nodes[victim] = saved
    fresh = StateTree(MemoryNodeStore()).apply(1, chain.state | {key: b"new", b"k999": b"new"})
    assert tree.apply(2, {key: b"new", b"k999": b"new"}).root == fresh.root


@pytest.mark.parametrize("deep_pages", [0, 3, 1000])
def test_the_page_cache_changes_nothing_but_reads(deep_pages) -> None:
    blocks = [{b"key/%d" % i: b"v" for i in range(20000)}] + _random_blocks(3, 8, pool=20000)
    plain, cached = MemoryNodeStore(), MemoryNodeStore()
    plain_tree, cached_tree = StateTree(plain), StateTree(cached, deep_pages=deep_pages)
    for version, block in enumerate(blocks, start=1):
        a, b = plain_tree.apply(version, block), cached_tree.apply(version, block)
        assert (a.root, a.new_nodes, a.stale) == (b.root, b.new_nodes, b.stale)
        plain.write(a)
        cached.write(b)
        assert 0 < len(cached_tree._deep) <= 2 * deep_pages or deep_pages == 0 == len(cached_tree._deep)


@pytest.mark.parametrize("garbage", [
    b"", b"\xc1", codec.pack([1, 2, 3]), codec.pack("x"), codec.pack([0, 0, b"", b"", b""]),
    codec.pack([1, 0, b"x" * 31, bytes(6), b""]), codec.pack([1, 2, b"x" * 32, bytes(6), b""]),
    codec.pack([1, 0, b"x" * 32, [1], b""]), codec.pack([1, 0, b"x" * 32, bytes(5), b""]),
    codec.pack([1, 1, b"x" * 32, b"", bytes(63)]), codec.pack([1, 1, b"x" * 32, bytes(6), bytes(64)]),
    codec.pack([1, 0, b"x" * 32, bytes(6), None]),
    codec.pack([1, 0, b"x" * 32, bytes(6)]),           # a page as schema 6 stored it
    codec.pack([b"short", b"x" * 32])])
def test_a_corrupt_node_is_a_clear_error(garbage) -> None:
    chain = Chain()
    chain.apply(1, {b"k%d" % i: b"v" for i in range(50)})
    chain.store.nodes[root_key(1)] = garbage
    tree = StateTree(chain.store)
    for call in (lambda: tree.root_hash(1), lambda: tree.get(1, b"k1"), lambda: tree.prove(1, b"k1")):
        with pytest.raises(StateTreeError, match="corrupt"):
            call()


# -- proofs ---------------------------------------------------------------------------

@SETTINGS
@given(states.filter(bool), keys, values)
def test_proofs_prove_exactly_what_the_tree_holds(state, other_key, other_value) -> None:
    tree = StateTree(MemoryNodeStore())
    result = tree.apply(1, state)
    tree.store.write(result)
    root = result.root
    for key, value in state.items():
        proof = tree.prove(1, key)
        assert StateProof.decode(proof.encode()) == proof
        assert proof.value_hash == H(value)
        assert verify(root, key, value, proof)
        assert not verify(root, key, value + b"x", proof)
        assert not verify(root, key, None, proof)
        for k2, v2 in state.items():
            if k2 != key:
                assert not verify(root, k2, v2, proof)
                assert not verify(root, k2, value, proof)
        if other_key not in state:
            assert not verify(root, other_key, value, proof)
            assert not verify(root, other_key, None, proof) or \
                verify(root, other_key, None, tree.prove(1, other_key))
        assert not verify(H(root), key, value, proof)
    if other_key not in state:
        absent = tree.prove(1, other_key)
        assert absent.value_hash is None
        assert verify(root, other_key, None, absent)
        assert not verify(root, other_key, other_value, absent)
        for key, value in state.items():
            # a proof of absence proves nothing about a key that is there
            assert not verify(root, key, None, absent)
            assert not verify(root, key, value, absent)


@SETTINGS
@given(states.filter(bool), keys, st.data())
def test_a_proof_of_absence_covers_exactly_the_keys_that_are_absent(state, absent_key, data) -> None:
    """Any key that a proof of absence checks for is really absent (the proof
    of one absent key is the proof of every key on its empty slot)."""
    tree = StateTree(MemoryNodeStore())
    first = tree.apply(1, state)
    tree.store.write(first)
    tree.store.write(tree.apply(2, {}))             # proofs at a copied root
    root = first.root
    proof = tree.prove(2, absent_key)
    for key in data.draw(st.lists(keys, max_size=30)) + list(state):
        if verify(root, key, None, proof):
            assert key not in state


def _tamper_all(data: bytes, rnd: random.Random):
    for i in range(len(data)):
        yield data[:i] + bytes([data[i] ^ rnd.randint(1, 255)]) + data[i + 1:]
    yield data[:-1]
    yield data + b"\x00"


@pytest.mark.parametrize("seed", range(6))
def test_tampering_with_any_byte_of_a_proof_is_caught(seed) -> None:
    rng = random.Random(seed)
    state = {b"r/%d" % i: rng.randbytes(10) for i in range(rng.choice([1, 2, 30, 600]))}
    tree = StateTree(MemoryNodeStore())
    first = tree.apply(1, state)
    tree.store.write(first)
    tree.store.write(tree.apply(2, {}))             # proofs at a copied root
    root = first.root
    cases = [(k, v) for k, v in list(state.items())[:3]] + [(b"absent/%d" % i, None) for i in range(3)]
    for key, value in cases:
        data = tree.prove(2, key).encode()
        assert check(root, key, value, StateProof.decode(data)) is None
        for bad in _tamper_all(data, rng):
            try:
                proof = StateProof.decode(bad)
            except DecodeError:
                continue
            assert check(root, key, value, proof) is not None, bad.hex()


def test_reasons_name_what_is_wrong() -> None:
    state = {b"a": b"1", b"b": b"2", b"c": b"3"}
    tree = StateTree(MemoryNodeStore())
    first = tree.apply(1, state)
    tree.store.write(first)
    tree.store.write(tree.apply(2, {}))             # proofs at a copied root
    root = first.root
    member = tree.prove(2, b"a")
    assert "present" in check(root, b"a", None, member)
    assert "another value" in check(root, b"a", b"9", member)
    assert "state root" in check(H(b"other"), b"a", b"1", member)
    absent = tree.prove(2, b"zz")
    assert "absent" in check(root, b"zz", b"1", absent)


def test_a_leaf_cannot_be_passed_off_as_its_own_neighbour() -> None:
    """A member's proof recast as "another key's leaf is here" would hash to
    the same root; it must not prove the key absent."""
    tree = StateTree(MemoryNodeStore())
    result = tree.apply(1, {b"a": b"1", b"b": b"2", b"c": b"3"})
    tree.store.write(result)
    member = tree.prove(1, b"a")
    forged = StateProof(member.levels, (H(b"a"), member.terminal))
    assert StateProof.decode(forged.encode()) == forged
    assert check(result.root, b"a", None, forged) == "the proof's neighbour leaf is the key itself"


@SETTINGS
@given(st.binary(max_size=300))
def test_decoding_garbage_raises_only_decode_error(data) -> None:
    try:
        StateProof.decode(data)
    except DecodeError:
        pass


plain = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2, 2**17), st.binary(max_size=70)),
                     lambda inner: st.lists(inner, max_size=4), max_leaves=12)


@SETTINGS
@given(st.one_of(plain, st.tuples(st.just(1), plain, plain).map(list)))
def test_decoding_any_msgpack_raises_only_decode_error(rec) -> None:
    data = codec.pack(rec)
    try:
        proof = StateProof.decode(data)
    except DecodeError:
        return
    assert proof.encode() == data
    check(H(b"root"), b"key", None, proof)       # any decoded proof can be checked


def test_decoding_is_bounded_and_canonical() -> None:
    with pytest.raises(DecodeError, match="at most"):
        StateProof.decode(b"\x93" + bytes(MAX_PROOF_BYTES))
    good = StateProof(((3, b"x" * 32),), None).encode()
    assert StateProof.decode(good).levels == ((3, b"x" * 32),)
    # the same proof with its bin in a longer header than needed
    loose = good.replace(b"\xc4\x20", b"\xc5\x00\x20")
    assert codec.unpack(loose) == codec.unpack(good)
    with pytest.raises(DecodeError, match="canonical"):
        StateProof.decode(loose)
    with pytest.raises(DecodeError, match="unknown format"):
        StateProof.decode(codec.pack([2, [], None]))
    with pytest.raises(DecodeError, match="at most 64"):
        StateProof.decode(codec.pack([1, [[1, b""]] * 65, None]))
    with pytest.raises(DecodeError, match="empty page"):
        StateProof.decode(codec.pack([1, [[0, b""]], None]))
    with pytest.raises(DecodeError, match="whole hashes"):
        StateProof.decode(codec.pack([1, [[1, b"x" * 33]], None]))


def test_the_recent_cache_keeps_what_was_used_lately_within_twice_its_half() -> None:
    from ledger.state_tree.tree import _Recent
    cache = _Recent(4)
    for i in range(4):
        cache.put(b"%d" % i, (i,))
    cache.put(b"4", (4,))                     # young was full: 0..3 become old
    assert cache.get(b"0") == (0,)            # a hit in old comes back to young
    for i in range(5, 8):
        cache.put(b"%d" % i, (i,))            # young: 4, 0, 5, 6 -> full again at 7
    assert len(cache) <= 8
    assert b"0" in cache and b"7" in cache    # used lately: kept
    assert cache.get(b"1") is None and b"3" not in cache     # not used since: forgotten
    cache.discard(b"0")
    assert cache.get(b"0") is None
    assert sorted(cache.keys()) == [b"4", b"5", b"6", b"7"]
    nothing = _Recent(0)
    nothing.put(b"x", (1,))
    assert len(nothing) == 0 and nothing.get(b"x") is None


# -- versions kept in memory until a persisted one -----------------------------------

@SETTINGS
@given(st.lists(st.tuples(st.dictionaries(keys, st.one_of(st.none(), values), max_size=12),
                          st.booleans()), min_size=1, max_size=14))
def test_persisting_some_versions_stores_what_persisting_all_would(blocks) -> None:
    """A tree persisted at some versions only has, at each of them, the same
    roots, proofs and node contents as one persisted at every version; its
    stale lists retire exactly the nodes the previous persisted version used
    and this one does not; versions in between are readable while current."""
    def shape(store, version):
        """Positions and contents of a version's nodes, but for the versions they were written at."""
        reach = Chain.reachable(SimpleNamespace(store=store), version)
        return sorted((k[6:], (rec := codec.unpack(store.get(k)))[:3] + rec[4:]) for k in reach)

    every = Chain()
    some = MemoryNodeStore()
    tree = StateTree(some)
    last = None
    for version, (writes, persist) in enumerate(blocks, start=1):
        persist = persist or version == len(blocks)
        expected = every.apply(version, writes)
        result = tree.apply(version, writes, persist=persist)
        assert (result.root, result.persisted) == (expected.root, persist)
        if persist:
            assert all(k[:6] == version.to_bytes(6, "big") for k in result.new_nodes)
            before = Chain.reachable(SimpleNamespace(store=some), last) if last is not None else set()
            assert set(result.stale) <= before and len(set(result.stale)) == len(result.stale)
            some.write(result)
            assert shape(some, version) == shape(every.store, version)
            some.delete(result.stale)                   # prune at once: only `version` is left
            assert set(some.nodes) == Chain.reachable(SimpleNamespace(store=some), version)
            last = version
        else:
            assert result.new_nodes == {} and result.stale == []
        assert tree.root_hash() == expected.root
        for key in list(writes)[:4] + [b"absent"]:
            value = every.state.get(key)
            assert check(result.root, key, value, tree.prove(version, key)) is None
    reopened = StateTree(some, last)
    assert reopened.root_hash() == every.results[last].root


def test_a_version_that_was_not_persisted_is_readable_only_while_current() -> None:
    tree = StateTree(MemoryNodeStore())
    tree.store.write(tree.apply(1, {b"k%d" % i: b"1" for i in range(100)}))
    tree.apply(2, {b"k1": b"2"}, persist=False)
    assert tree.get(2, b"k1") == H(b"2") and tree.get(1, b"k1") == H(b"1")
    tree.apply(3, {b"k1": b"3"}, persist=False)
    assert tree.get(3, b"k1") == H(b"3") and tree.get(1, b"k1") == H(b"1")
    with pytest.raises(StateTreeError, match="never persisted"):
        tree.get(2, b"k1")


@pytest.mark.parametrize("persist_wrong", [False, True])
def test_rewind_undoes_the_last_update_whether_or_not_it_persisted(persist_wrong) -> None:
    chain = Chain()
    chain.apply(1, {b"k%d" % i: b"v" for i in range(300)})
    tree = StateTree(chain.store, 1)
    tree.apply(2, {b"k%d" % i: b"two" for i in range(0, 300, 2)}, persist=False)
    chain.apply(2, {b"k%d" % i: b"two" for i in range(0, 300, 2)})
    dirty = tree.dirty_pages
    wrong = tree.apply(3, {b"k%d" % i: b"wrong" for i in range(0, 300, 3)}, persist=persist_wrong)
    tree.rewind(2)
    assert tree.version == 2 and tree.dirty_pages == dirty and tree.persisted == 1
    assert not any(k in tree._top or k in tree._deep for k in wrong.new_nodes)
    assert tree.root_hash() == chain.tree.root_hash()
    right = {b"k%d" % i: b"right" for i in range(1, 300, 3)}
    result = tree.apply(3, right)
    assert result.root == chain.apply(3, right).root
    tree.store.write(result)
    tree.apply(4, {b"k1": b"four"}, persist=False)
    tree.apply(5, {b"k2": b"five"}, persist=False)
    tree.apply(6, {b"k3": b"six"}, persist=False)
    with pytest.raises(StateTreeError, match="never persisted"):
        tree.rewind(4)                       # only the last update can be undone
    tree.rewind(3)                           # or back to a persisted version
    assert tree.root_hash() == chain.results[3].root and tree.dirty_pages == 0


def test_too_many_dirty_pages_persist_anyway(monkeypatch) -> None:
    monkeypatch.setattr(tree_module, "MAX_DIRTY_PAGES", 50)
    tree = StateTree(MemoryNodeStore())
    result = tree.apply(1, {b"k%d" % i: b"v" for i in range(2000)}, persist=False)
    assert result.persisted and result.new_nodes and tree.dirty_pages == 0
    assert not tree.apply(2, {b"k1": b"w"}, persist=False).persisted
