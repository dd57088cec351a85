"""Pruning the state tree below the newest kept checkpoint (storage.kv_store,
`_prune`): the store ends up holding exactly the nodes its kept versions
reach, every kept version still reads and proves, one commit deletes a
bounded number of stale lists, and a reopened store carries on."""

from __future__ import annotations

import random

import pytest

from ledger.errors import StateTreeError
from ledger.state_tree import check, root_key
from ledger.state_tree.format import VERSION_BYTES, child_position, decode_node, position
from storage import layout, open_store
from storage.errors import StoreError

from .chain import GENESIS, checkpoint_record, make_commit
from .conftest import raw_records

KEYS = 400


class Writer:
    """Commits blocks of seeded random writes (puts and deletes over KEYS
    keys) to a store, remembering the state after each height.  The tree is
    persisted where a node would: at checkpoint heights (here every
    `persist_every`, and where `run` keeps a checkpoint)."""

    def __init__(self, store, seed: int = 7, persist_every: int = 4) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.states: dict[int, dict[bytes, bytes]] = {store.last_height(): {}}
        self.roots: dict[int, bytes] = {}
        self.persist_every = persist_every
        self.persisted = {0}

    def commit(self, writes: int = 40, persist: bool = False) -> None:
        store = self.store
        height = store.last_height() + 1
        state = dict(self.states[height - 1])
        batch: dict[bytes, bytes | None] = {}
        for _ in range(writes):
            key = b"key %d" % self.rng.randrange(KEYS)
            batch[key] = None if self.rng.random() < 0.25 else b"value %d" % self.rng.randrange(10**9)
        for key, value in batch.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        commit = make_commit(height, store.last_block_hash(),
                             state_writes=batch, tree=store.state_tree)
        persist = persist or height % self.persist_every == 0
        update = store.state_tree.apply(height, batch, persist=persist)
        store.commit(commit.block, commit.certificate, commit.receipts, batch, update)
        if persist:
            self.persisted.add(height)
        self.states[height] = state
        self.roots[height] = commit.state_root

    def run(self, blocks: int, checkpoint_every: int | None = None) -> None:
        for _ in range(blocks):
            height = self.store.last_height() + 1
            checkpoint = bool(checkpoint_every) and height % checkpoint_every == 0
            self.commit(persist=checkpoint)
            if checkpoint:
                self.store.put_checkpoint(height, *checkpoint_record(height))


def reachable(nodes: dict[bytes, bytes], version: int) -> set[bytes]:
    """The node keys the tree of `version` uses, walked from its root."""
    seen = set()
    todo = [root_key(version)]
    while todo:
        key = todo.pop()
        seen.add(key)
        node = decode_node(nodes[key])
        if len(node) != 5:
            continue                  # the root of an empty or one-key tree
        bitmap, leafmap, _, versions, _ = node
        depth = key[VERSION_BYTES]
        path = key[VERSION_BYTES + 1:].ljust(32, b"\x00")
        # page children are nodes of their own; leaf children live in the page
        for i, nib in enumerate(n for n in range(16) if (bitmap & ~leafmap) >> n & 1):
            child = versions[VERSION_BYTES * i:VERSION_BYTES * (i + 1)]
            todo.append(child + position(child_position(path, depth, nib), depth + 1))
    return seen


def tree_nodes(store) -> dict[bytes, bytes]:
    return {k[len(layout.STATE_TREE):]: v for k, v in raw_records(store).items()
            if k.startswith(layout.STATE_TREE)}


def pruned_to(store) -> int:
    raw = store._kv.get(layout.KEY_PRUNED)
    return 0 if raw is None else layout.decode_uint(raw)


def assert_exactly_the_kept_versions(store, writer: Writer) -> None:
    keep, tip = store.newest_checkpoint(), store.last_height()
    assert pruned_to(store) == keep, "pruning has caught up"
    nodes = tree_nodes(store)
    persisted = sorted(v for v in writer.persisted if keep <= v <= tip)
    kept = set()
    for version in persisted:
        kept |= reachable(nodes, version)
    assert set(nodes) == kept
    stale_lists = sorted(int.from_bytes(k[len(layout.STALE):], "big") for k in raw_records(store)
                         if k.startswith(layout.STALE))
    assert stale_lists == [v for v in persisted if v > keep]
    # every kept version reads back and proves members and non-members, and
    # so does the tip, persisted or not
    tree = store.state_tree
    for version in sorted({max(keep, 1), *persisted, tip} - {0}):
        root = tree.root_hash(version)
        assert root == writer.roots[version]
        for i in range(0, KEYS, 37):
            key = b"key %d" % i
            value = writer.states[version].get(key)
            assert check(root, key, value, tree.prove(version, key)) is None, (version, key)


def test_the_store_holds_exactly_the_nodes_of_the_versions_it_keeps(make_store):
    store = make_store()
    writer = Writer(store)
    writer.run(44, checkpoint_every=8)          # checkpoints 8..40; commits 41..44 prune up to 40
    assert store.newest_checkpoint() == 40
    assert_exactly_the_kept_versions(store, writer)
    # and below the kept version, the tree says so rather than answering from its caches
    with pytest.raises(StateTreeError, match="version 39 was pruned"):
        store.state_tree.root_hash(39)
    with pytest.raises(StateTreeError, match="was pruned"):
        store.state_tree.prove(8, b"key 1")


def test_without_a_checkpoint_every_version_is_kept(make_store):
    store = make_store()
    writer = Writer(store)
    writer.run(10)
    assert store.newest_checkpoint() == 0 and pruned_to(store) == 0
    nodes = tree_nodes(store)
    assert writer.persisted == {0, 4, 8}
    assert set().union(*(reachable(nodes, v) for v in writer.persisted)) == set(nodes)
    assert all(store.state_tree.root_hash(v) == writer.roots[v] for v in (4, 8, 10))
    with pytest.raises(StateTreeError, match="never persisted"):
        store.state_tree.root_hash(9)


def test_one_commit_deletes_a_bounded_number_of_stale_lists(make_store, monkeypatch):
    store = make_store()
    writer = Writer(store)
    writer.run(30)
    store.put_checkpoint(30, *checkpoint_record(30))     # 30 lists become deletable at once
    done = []
    for _ in range(9):
        writer.commit()
        done.append(pruned_to(store))
    assert done == [4, 8, 12, 16, 20, 24, 28, 30, 30]
    # the node budget stops a commit after the list that crosses it
    monkeypatch.setattr(layout, "PRUNE_NODES", 1)
    writer.run(10)
    store.put_checkpoint(49, *checkpoint_record(49))
    writer.commit()
    assert pruned_to(store) == 32             # 31 was not persisted: no list
    writer.commit()
    assert pruned_to(store) == 36


def test_a_reopened_store_keeps_its_kept_version_and_carries_on_pruning(tmp_path):
    path = tmp_path / "db"
    store = open_store(path, GENESIS)
    writer = Writer(store)
    writer.run(24, checkpoint_every=12)
    writer.commit()                              # 25: prunes lists 13..16 of 24
    store.close()
    store = open_store(path, GENESIS, create=False)
    try:
        assert store.newest_checkpoint() == 24 and pruned_to(store) == 16
        with pytest.raises(StateTreeError, match="was pruned"):
            store.state_tree.root_hash(23)
        writer.store = store
        writer.run(5)
        assert_exactly_the_kept_versions(store, writer)
    finally:
        store.close()


def test_a_checkpoint_above_the_tip_is_refused(make_store):
    store = make_store()
    Writer(store).run(3)
    with pytest.raises(StoreError, match="checkpoint 4 is not a committed height"):
        store.put_checkpoint(4, *checkpoint_record(4))
    assert store.newest_checkpoint() == 0 and store.checkpoint_at_or_above(1) is None
    store.put_checkpoint(3, *checkpoint_record(3))
    assert store.checkpoint_at_or_above(1) == (3, *checkpoint_record(3))


def test_kept_checkpoints_are_listed_by_range_up_to_the_tip_and_an_older_one_keeps_the_newest(make_store):
    store = make_store()
    writer = Writer(store)
    writer.run(20, checkpoint_every=4)
    assert store.checkpoints_between(1, 100, 10) == [(h, *checkpoint_record(h)) for h in (4, 8, 12, 16, 20)]
    assert store.checkpoints_between(5, 16, 10) == [(h, *checkpoint_record(h)) for h in (8, 12, 16)]
    assert store.checkpoints_between(8, 8, 10) == [(8, *checkpoint_record(8))]
    assert store.checkpoints_between(5, 7, 10) == [] and store.checkpoints_between(21, 40, 10) == []
    assert [seq for seq, _, _ in store.checkpoints_between(1, 20, 2)] == [4, 8]
    assert store.checkpoints_between(1, 20, 0) == []
    # a checkpoint kept later at an older height (block sync fetches them) is
    # listed, and the newest kept one, from which the tree is kept, stays
    store.put_checkpoint(6, *checkpoint_record(6))
    assert store.newest_checkpoint() == 20
    assert [seq for seq, _, _ in store.checkpoints_between(5, 9, 10)] == [6, 8]
    writer.run(4)
    assert_exactly_the_kept_versions(store, writer)
