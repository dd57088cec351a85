"""open_store: creating, reopening, and every way opening must refuse."""

from __future__ import annotations

import subprocess
import sys

import plyvel
import pytest

from ledger.codec import pack
from ledger.state_tree import MemoryNodeStore, StateTree, value_hash
from ledger.state_tree import tree as tree_module
from storage import (
    CorruptStoreError, GenesisMismatchError, NotAStoreError, SchemaVersionError,
    StoreLockedError, layout, open_store, resync_store,
)
from node.main import store_remedy

from .chain import GENESIS, OTHER_GENESIS, PERSIST_EVERY, build_chain
from .conftest import put_raw, raw_records



def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_reopen_keeps_everything(tmp_path):
    path = tmp_path / "nested" / "db"        # missing parents are created
    chain = build_chain(6)
    with open_store(path, GENESIS) as store:
        for c in chain[:4]:
            c.apply(store)
        store.save_safety_record(b"voted")
        before = raw_records(store)
    with open_store(path, GENESIS, create=False) as store:
        assert raw_records(store) == before
        assert store.last_height() == 4
        assert store.last_block_hash() == chain[3].block.hash
        assert store.last_state_root() == chain[3].state_root
        assert store.load_safety_record() == b"voted"
        assert store.get_block(2) == chain[1].block
        for c in chain[4:]:                  # and the chain continues
            c.apply(store)
    with open_store(path, GENESIS) as store:
        assert store.last_height() == 6


def test_initial_state_is_fixed_at_creation(tmp_path):
    state = {b"gov/a": b"1", b"gov/b": b"2"}
    with open_store(tmp_path / "db", GENESIS, initial_state=state) as store:
        root = store.last_state_root()
        assert root == StateTree(MemoryNodeStore()).apply(0, state).root
        assert store.state_tree.get(0, b"gov/a") == value_hash(b"1")
    with open_store(tmp_path / "db", GENESIS, initial_state={b"other": b"x"}) as store:
        assert store.last_state_root() == root and store.get_state(b"other") is None


def test_directory_with_other_files_is_not_a_store(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(NotAStoreError) as exc:
        open_store(tmp_path, GENESIS)
    assert "not a ynchain store" in one_line(exc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]   # left untouched


def test_a_file_is_not_a_store(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotAStoreError, match="not a directory"):
        open_store(tmp_path / "file", GENESIS)


def test_missing_store_without_create(tmp_path):
    with pytest.raises(NotAStoreError, match="does not exist"):
        open_store(tmp_path / "db", GENESIS, create=False)
    assert not (tmp_path / "db").exists()


def test_empty_directory_without_create(tmp_path):
    with pytest.raises(NotAStoreError, match="directory is empty"):
        open_store(tmp_path, GENESIS, create=False)
    assert list(tmp_path.iterdir()) == []


def test_someone_elses_leveldb_is_not_a_store(tmp_path):
    put_raw(tmp_path / "db", b"their key", b"their value")
    with pytest.raises(NotAStoreError) as exc:
        open_store(tmp_path / "db", GENESIS)
    assert "no ynchain metadata" in one_line(exc)


def test_empty_leveldb_from_an_interrupted_creation_is_initialised(tmp_path):
    plyvel.DB(str(tmp_path / "db"), create_if_missing=True).close()
    with pytest.raises(NotAStoreError, match="no ynchain store"):
        open_store(tmp_path / "db", GENESIS, create=False)
    with open_store(tmp_path / "db", GENESIS) as store:
        assert store.last_height() == 0


def test_other_schema_version(tmp_path):
    open_store(tmp_path / "db", GENESIS).close()
    put_raw(tmp_path / "db", layout.KEY_SCHEMA, pack(99))
    with pytest.raises(SchemaVersionError) as exc:
        open_store(tmp_path / "db", GENESIS)
    assert f"schema version is 99, this ynchain reads version {layout.SCHEMA_VERSION}" in one_line(exc)
    put_raw(tmp_path / "db", layout.KEY_SCHEMA, b"\xc1garbage")
    with pytest.raises(SchemaVersionError, match="unreadable"):
        open_store(tmp_path / "db", GENESIS)


def test_a_store_of_the_previous_schema_is_refused_and_resync_rebuilds_it(tmp_path):
    """A store of the version before this one (6: each state tree leaf a node
    of its own, which this ynchain no longer reads) is refused with the way
    forward; resync moves it aside and starts this version's store with the
    node's votes."""
    data, safety = tmp_path / "home" / "data", tmp_path / "home" / "safety"
    with open_store(data, GENESIS, safety_dir=safety) as store:
        store.save_safety_record(b"voted")
    put_raw(data, layout.KEY_SCHEMA, pack(min(layout.UPGRADABLE_SCHEMAS) - 1))
    with pytest.raises(SchemaVersionError) as exc:
        open_store(data, GENESIS, safety_dir=safety)
    remedy = store_remedy(exc.value, tmp_path / "home")
    assert f"ynchain node resync --home {tmp_path / 'home'}" in remedy and "\n" not in remedy
    moved = resync_store(data, GENESIS, safety)
    assert moved.exists()
    with open_store(data, GENESIS, safety_dir=safety) as store:
        assert store.load_safety_record() == b"voted"
    with pytest.raises(SchemaVersionError):                 # the old store is kept as it was
        open_store(moved, GENESIS)


def test_other_genesis(tmp_path):
    open_store(tmp_path / "db", GENESIS).close()
    with pytest.raises(GenesisMismatchError) as exc:
        open_store(tmp_path / "db", OTHER_GENESIS)
    assert GENESIS.hex() in one_line(exc) and OTHER_GENESIS.hex() in str(exc.value)
    # the refused open released the database
    open_store(tmp_path / "db", GENESIS).close()


def test_corrupt_records_raise_store_errors(tmp_path):
    with open_store(tmp_path / "db", GENESIS) as store:
        for c in build_chain(3):
            c.apply(store)
    put_raw(tmp_path / "db", layout.BLOCK_INDEX + layout.height_key(2), b"\x93\x01")
    with open_store(tmp_path / "db", GENESIS) as store:
        with pytest.raises(CorruptStoreError, match="block 2 does not decode"):
            store.get_block(2)
        assert store.get_block(1) is not None
    # The tip's entry is read by the open (its body must be in the segments).
    put_raw(tmp_path / "db", layout.BLOCK_INDEX + layout.height_key(3), b"\x93\x01")
    with pytest.raises(CorruptStoreError, match="block 3 does not decode"):
        open_store(tmp_path / "db", GENESIS)
    put_raw(tmp_path / "db", layout.KEY_TIP, b"\x00")
    with pytest.raises(CorruptStoreError, match="tip does not decode"):
        open_store(tmp_path / "db", GENESIS)


def test_second_open_in_the_same_process_is_refused(tmp_path):
    with open_store(tmp_path / "db", GENESIS):
        with pytest.raises(StoreLockedError) as exc:
            open_store(tmp_path / "db", GENESIS)
        assert "in use" in one_line(exc)
    open_store(tmp_path / "db", GENESIS).close()


HOLDER = """
import sys
from storage import open_store
from tests.storage.chain import GENESIS
store = open_store(sys.argv[1], GENESIS)
print("open", flush=True)
sys.stdin.read()          # hold the store until the parent closes our stdin
store.close()
"""


def test_open_held_by_another_process_is_refused(tmp_path, repo_root):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "db")], cwd=repo_root,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "open\n"
        with pytest.raises(StoreLockedError) as exc:
            open_store(tmp_path / "db", GENESIS)
        assert "Resource temporarily unavailable" in one_line(exc)
        child.stdin.close()
        assert child.wait(timeout=10) == 0
        open_store(tmp_path / "db", GENESIS).close()
    finally:
        child.kill()
        child.wait()


def test_a_tip_whose_tree_was_not_persisted_is_rebuilt_from_the_written_keys(tmp_path):
    """The tree persists at some heights only (here every PERSIST_EVERY);
    reopening re-applies the keys the heights above it wrote, with the tip's
    values, and reaches the tip's root; the next persisted commit drops those
    lists.  A list that is missing is a corrupt store, not a wrong root."""
    path = tmp_path / "db"
    chain = build_chain(3 * PERSIST_EVERY)
    upto = 2 * PERSIST_EVERY + PERSIST_EVERY - 1          # two heights past a persisted one
    with open_store(path, GENESIS) as store:
        for c in chain[:upto]:
            c.apply(store)
        written = sorted(int.from_bytes(k[2:], "big") for k in raw_records(store) if k.startswith(layout.WRITTEN))
        assert written == list(range(2 * PERSIST_EVERY + 1, upto + 1))
        assert layout.decode_uint(store._kv.get(layout.KEY_TREE)) == 2 * PERSIST_EVERY
    with open_store(path, GENESIS, create=False) as store:
        assert store.state_tree.root_hash() == chain[upto - 1].state_root
        assert store.state_tree.version == upto and store.state_tree.persisted == 2 * PERSIST_EVERY
        for c in chain[upto:]:
            c.apply(store)
        records = raw_records(store)
        assert not any(k.startswith(layout.WRITTEN) for k in records)
        assert layout.decode_uint(records[layout.KEY_TREE]) == 3 * PERSIST_EVERY
    with open_store(path, GENESIS, create=False) as store:
        chain_more = build_chain(3 * PERSIST_EVERY + 1)[-1]
        chain_more.apply(store)
    put_raw(path, layout.WRITTEN + layout.height_key(3 * PERSIST_EVERY + 1), b"\xc1")
    with pytest.raises(CorruptStoreError, match="written keys of height 13 does not decode"):
        open_store(path, GENESIS, create=False)
    db = plyvel.DB(str(path))
    db.delete(layout.WRITTEN + layout.height_key(3 * PERSIST_EVERY + 1))
    db.close()
    with pytest.raises(CorruptStoreError, match="written keys of height 13 is missing"):
        open_store(path, GENESIS, create=False)


def test_a_store_of_schema_7_is_upgraded_in_place(tmp_path):
    """Version 7 persisted the tree at every height and had no m/tree: it
    reads as a store persisted at its tip."""
    path = tmp_path / "db"
    chain = build_chain(2 * PERSIST_EVERY + 1)
    with open_store(path, GENESIS) as store:
        for c in chain[:2 * PERSIST_EVERY]:
            c.apply(store)
        store.save_safety_record(b"voted")
    db = plyvel.DB(str(path))
    db.delete(layout.KEY_TREE)
    db.put(layout.KEY_SCHEMA, pack(7))
    db.close()
    with open_store(path, GENESIS, create=False) as store:
        assert store.state_tree.root_hash() == chain[2 * PERSIST_EVERY - 1].state_root
        chain[-1].apply(store)
        assert store.load_safety_record() == b"voted"
        assert layout.decode_uint(store._kv.get(layout.KEY_SCHEMA)) == layout.SCHEMA_VERSION
    with open_store(path, GENESIS, create=False) as store:
        assert store.state_tree.root_hash() == chain[-1].state_root


def test_a_reopening_that_persists_the_tip_leaves_no_written_keys(tmp_path, monkeypatch):
    """Re-applying the written keys can pass the tree's bound on dirty pages:
    the tip is then persisted at once, and its lists go with it."""
    path = tmp_path / "db"
    chain = build_chain(PERSIST_EVERY + 3)
    with open_store(path, GENESIS) as store:
        for c in chain:
            c.apply(store)
    monkeypatch.setattr(tree_module, "MAX_DIRTY_PAGES", 1)
    with open_store(path, GENESIS, create=False) as store:
        assert store.state_tree.persisted == len(chain)
        assert store.state_tree.root_hash() == chain[-1].state_root
        records = raw_records(store)
        assert not any(k.startswith(layout.WRITTEN) for k in records)
        assert layout.decode_uint(records[layout.KEY_TREE]) == len(chain)
    with open_store(path, GENESIS, create=False) as store:
        assert store.state_tree.root_hash(len(chain)) == chain[-1].state_root
