"""One behavioural suite, run against both MemoryStore and LevelDBStore."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.block import GENESIS_HASH
from ledger.crypto import hash256
from ledger.receipt import ERR_DUPLICATE, OK, Receipt
from ledger.state_tree import EMPTY_ROOT
from storage import CommitOrderError, MemoryStore, Store, StoreError, layout

from .chain import PERSIST_EVERY, build_chain, expected_records, make_commit, make_tx, without_locations
from .conftest import raw_records



def assert_unchanged_empty(store) -> None:
    assert store.last_height() == 0
    assert store.last_block_hash() == GENESIS_HASH
    assert store.get_block(1) is None and store.get_block_bytes(1) is None


def test_empty_store(make_store):
    store = make_store()
    assert isinstance(store, Store)
    assert_unchanged_empty(store)
    assert store.last_state_root() == EMPTY_ROOT
    assert store.get_block(0) is None
    assert store.get_certificate(1) is None
    assert store.height_of(GENESIS_HASH) is None
    tx_id = make_tx(1, 0).id
    assert not store.has_tx(tx_id) and store.get_tx(tx_id) is None
    assert store.get_state(b"k1") is None
    assert store.load_safety_record() is None


def test_commit_and_read_back(make_store):
    store = make_store()
    chain = build_chain(5)
    for c in chain:
        c.apply(store)
        assert store.last_height() == c.block.height
        assert store.last_block_hash() == c.block.hash
        assert store.last_state_root() == c.state_root
    for c in chain:
        h = c.block.height
        assert store.get_block(h) == c.block
        assert store.get_block_bytes(h) == c.block.encode()
        assert store.get_certificate(h) == c.certificate
        assert store.height_of(c.block.hash) == h
        for i in range(4):
            tx = c.block.txs[i]
            assert store.has_tx(tx.id)
            assert store.get_tx(tx.id) == (h, i, Receipt(OK, "", [h, i]))
            found = store.get_committed_tx(tx.id)
            assert found == (tx, h, i, Receipt(OK, "", [h, i])) and found[0].signature == tx.signature
    assert store.get_block(6) is None and store.get_certificate(6) is None
    # state: the last write to each key wins, deletes remove
    state: dict[bytes, bytes] = {}
    for c in chain:
        for k, v in c.state_writes.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
    for i in range(37):
        key = b"k%d" % i
        assert store.get_state(key) == state.get(key)


def test_raw_contents_are_exactly_the_layout(make_store):
    """Both stores write the same records, and nothing else, for the same chain."""
    store = make_store()
    chain = build_chain(12)
    for c in chain:
        c.apply(store)
    raw = raw_records(store)
    meta = {k: raw.pop(k) for k in list(raw) if k.startswith(b"m/")}
    assert set(meta) == {layout.KEY_SCHEMA, layout.KEY_GENESIS, layout.KEY_TIP, layout.KEY_TREE}
    assert layout.decode_uint(meta[layout.KEY_TREE]) == 12 // PERSIST_EVERY * PERSIST_EVERY
    assert layout.Tip.decode(meta[layout.KEY_TIP]) == layout.Tip(12, chain[-1].block.hash, chain[-1].state_root)
    assert without_locations(raw) == expected_records(chain)


def test_commit_order_errors_leave_the_store_untouched(make_store):
    store = make_store()
    chain = build_chain(3)
    with pytest.raises(CommitOrderError, match="does not follow the last committed height 0"):
        chain[1].apply(store)
    assert_unchanged_empty(store)
    wrong_parent = make_commit(1, hash256(b"not genesis"))
    with pytest.raises(CommitOrderError, match="links to"):
        wrong_parent.apply(store)
    assert_unchanged_empty(store)
    chain[0].apply(store)
    with pytest.raises(CommitOrderError):
        chain[0].apply(store)          # the same height twice
    with pytest.raises(CommitOrderError):
        chain[2].apply(store)          # a gap
    assert store.last_height() == 1 and store.get_block(2) is None


def test_inconsistent_commit_arguments_are_refused(make_store):
    store = make_store()
    c = make_commit(1, GENESIS_HASH)
    tree = store.state_tree
    with pytest.raises(StoreError, match="certificate for height 2"):
        store.commit(c.block, dataclasses.replace(c.certificate, height=2), c.receipts,
                     c.state_writes, tree.apply(1, c.state_writes))
    with pytest.raises(StoreError, match="receipts"):
        store.commit(c.block, c.certificate, c.receipts[:-1], c.state_writes,
                     tree.apply(1, c.state_writes))
    with pytest.raises(StoreError, match="state root"):
        store.commit(c.block, c.certificate, c.receipts, c.state_writes, tree.apply(1, {b"x": b"y"}))
    assert_unchanged_empty(store)
    assert tree.version == 0          # every refused commit rewound the tree
    c.apply(store)
    assert store.last_state_root() == c.state_root == tree.root_hash()


@pytest.mark.parametrize("writes", [
    {b"a": b"1", "text key": b"x"},
    {b"a": b"1", b"b": 42},
])
def test_bad_state_writes_commit_nothing(make_store, writes):
    store = make_store()
    c = make_commit(1, GENESIS_HASH)
    with pytest.raises(StoreError, match="state (key|value)"):
        store.commit(c.block, c.certificate, c.receipts, writes, c.tree)
    assert_unchanged_empty(store)
    assert store.get_state(b"a") is None
    assert not store.has_tx(c.block.txs[0].id)


def test_unencodable_receipt_commits_nothing(make_store):
    store = make_store()
    c = make_commit(1, GENESIS_HASH)
    receipts = (Receipt(OK, "", {1, 2}),) + c.receipts[1:]     # a set is not msgpack
    with pytest.raises(StoreError, match="cannot be encoded"):
        store.commit(c.block, c.certificate, receipts, c.state_writes, store.state_tree.apply(1, c.state_writes))
    assert_unchanged_empty(store)


def test_duplicate_tx_ids_keep_the_first_entry(make_store):
    store = make_store()
    chain = build_chain(3)
    for c in chain:
        c.apply(store)
    block2 = chain[1].block
    # block 2 repeats block 1's tx 0 (index 4) and its own tx 0 (index 5)
    assert block2.txs[4].id == chain[0].block.txs[0].id
    assert block2.txs[5].id == block2.txs[0].id
    assert chain[1].receipts[4].status == ERR_DUPLICATE
    assert store.get_tx(block2.txs[4].id) == (1, 0, Receipt(OK, "", [1, 0]))
    assert store.get_tx(block2.txs[0].id) == (2, 0, Receipt(OK, "", [2, 0]))


def test_state_writes_and_deletes(make_store):
    store = make_store()
    prev = GENESIS_HASH
    steps = [
        {b"a": b"1", b"b": b"2"},
        {b"a": None, b"c": b"3"},
        {b"b": b"22", b"never-set": None},
        {b"a": b"back"},
    ]
    for height, writes in enumerate(steps, start=1):
        c = make_commit(height, prev, state_writes=writes, tree=store.state_tree)
        c.apply(store)
        prev = c.block.hash
        if height == 2:
            assert store.get_state(b"a") is None and store.get_state(b"c") == b"3"
    assert [store.get_state(k) for k in (b"a", b"b", b"c", b"never-set")] == [b"back", b"22", b"3", None]


def test_prepared_payloads_are_written_with_the_record(make_store):
    store = make_store()
    d1, d2 = bytes([1]) * 32, bytes([2]) * 32
    store.save_safety_record(b"r1", payloads=[(5, d1, b"block five"), (6, d2, b"six" * 100_000)])
    assert store.load_safety_record() == b"r1"
    assert store.get_prepared_payload(5, d1) == b"block five"
    assert store.get_prepared_payload(6, d2) == b"six" * 100_000
    assert store.get_prepared_payload(5, d2) is None
    store.save_safety_record(b"r2", dropped=[(5, d1)])
    assert store.get_prepared_payload(5, d1) is None and store.get_prepared_payload(6, d2) is not None
    with pytest.raises(StoreError):
        store.save_safety_record(b"r3", payloads=[(7, d1, "not bytes")])
    assert store.load_safety_record() == b"r2"     # nothing of a refused write lands


def test_a_commit_refers_to_its_prepared_payload_only_if_the_bytes_are_the_same(make_store):
    """A prepared payload is keyed by the proposal's digest, which another
    encoding of the same proposal shares: the block is stored from the bytes
    it was committed with, never from other bytes of the same length."""
    store = make_store()
    first, second = build_chain(2)
    other_bytes = bytes(len(first.payload))
    store.save_safety_record(b"r1", payloads=[(1, first.certificate.digest, other_bytes),
                                              (2, second.certificate.digest, second.payload)])
    first.apply(store, first.payload)
    second.apply(store, second.payload)
    assert [store.get_block(h) for h in (1, 2)] == [first.block, second.block]
    for tx in first.block.txs[:4] + second.block.txs[:4]:
        assert store.get_committed_tx(tx.id)[0] == tx


def test_safety_record_round_trip(make_store):
    store = make_store()
    store.save_safety_record(b"first")
    assert store.load_safety_record() == b"first"
    store.save_safety_record(b"\x00" * 300)
    assert store.load_safety_record() == b"\x00" * 300
    with pytest.raises(StoreError, match="must be bytes"):
        store.save_safety_record("text")
    with pytest.raises(StoreError, match="exceeds"):
        store.save_safety_record(bytes(layout.MAX_SAFETY_RECORD + 1))
    assert store.load_safety_record() == b"\x00" * 300


def test_closed_store_refuses_every_call(make_store):
    store = make_store()
    build_chain(1)[0].apply(store)
    with store:
        pass                      # the context manager closes it
    store.close()                 # and closing again is harmless
    for call in (lambda: store.get_block(1), lambda: store.has_tx(b"x"),
                 lambda: store.get_state(b"k1"), lambda: store.save_safety_record(b"r"),
                 lambda: build_chain(2)[1].apply(store)):
        with pytest.raises(StoreError, match="store is closed"):
            call()


def test_wrong_argument_types_are_clear():
    with pytest.raises(ValueError, match="genesis_hash"):
        MemoryStore(b"too short")


def test_scan_state_pages_through_one_prefix_in_key_order(make_store):
    store = make_store()
    writes = {b"t/a/\xff": b"5", b"t/a/1": b"1", b"t/a/2": b"2", b"t/a/10": b"10",
              b"t/a": b"no slash", b"t/b/1": b"other table", b"t/a0": b"next prefix"}
    c = make_commit(1, GENESIS_HASH, state_writes=writes, tree=store.state_tree)
    c.apply(store)
    assert store.scan_state(b"t/a/", None, 10) == [
        (b"t/a/1", b"1"), (b"t/a/10", b"10"), (b"t/a/2", b"2"), (b"t/a/\xff", b"5")]
    assert store.scan_state(b"t/a/", None, 2) == [(b"t/a/1", b"1"), (b"t/a/10", b"10")]
    assert store.scan_state(b"t/a/", b"t/a/10", 2) == [(b"t/a/2", b"2"), (b"t/a/\xff", b"5")]
    assert store.scan_state(b"t/a/", b"t/a/\xff", 2) == []
    assert store.scan_state(b"t/a/", b"t/a/15", 5) == [(b"t/a/2", b"2"), (b"t/a/\xff", b"5")]
    assert store.scan_state(b"t/c/", None, 5) == []
    # A later commit deletes one entry: scans see committed state only.
    c2 = make_commit(2, c.block.hash, state_writes={b"t/a/10": None}, tree=store.state_tree)
    c2.apply(store)
    assert [k for k, _ in store.scan_state(b"t/a/", None, 10)] == [b"t/a/1", b"t/a/2", b"t/a/\xff"]


def test_scan_state_is_bounded(make_store):
    store = make_store()
    for bad in (0, layout.MAX_SCAN + 1):
        with pytest.raises(ValueError, match="scan limit"):
            store.scan_state(b"t/", None, bad)
    with pytest.raises(ValueError, match="start_after"):
        store.scan_state(b"t/a/", b"t/b/1", 5)
    assert layout.prefix_end(b"s/t/a\xff\xff") == b"s/t/b"
