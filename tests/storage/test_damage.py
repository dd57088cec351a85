"""A damaged or lost store is refused, never silently repaired (issue 8, item 5):
LevelDB's paranoid checks, the safety record copy outside the database, and
resync_store, the way back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storage import (
    CorruptStoreError, LostStoreError, SafetyCopyError, StoreLockedError, open_store, resync_store,
)
from storage.safety_copy import SLOTS, KeptRecord, SafetyCopy, decode_slot, encode_slot

from ledger.receipt import ERR_DUPLICATE

from .chain import GENESIS, PERSIST_EVERY, build_chain


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def node_dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "home" / "data", tmp_path / "home" / "safety"


def run_a_while(data: Path, safety: Path | None, votes: int = 24, blocks: int = 6) -> None:
    """What a node does: saves a safety record before each vote, commits blocks."""
    chain = build_chain(blocks)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        for n in range(1, votes + 1):
            store.save_safety_record(b"votes up to %d" % n)
            if n % (votes // blocks) == 0 and store.last_height() < blocks:
                chain[store.last_height()].apply(store)


def flip_16_bytes_of_the_log(data: Path) -> None:
    """The issue's damage: 16 flipped bytes in the middle of LevelDB's .log,
    inside a record's payload.  (Flipped bytes that make a record's length
    run past the end of the file read as a write cut short by a crash,
    which LevelDB drops silently, as it must: that is not this test.)"""
    [log] = data.glob("*.log")
    raw = bytearray(log.read_bytes())
    middle = len(raw) // 2
    # LevelDB's log: 32 KiB blocks of records, each a 7-byte header (crc 4,
    # length 2 little-endian, type 1) and its payload.
    at = 0
    while True:
        if 32768 - at % 32768 < 7:
            at += 32768 - at % 32768          # a block's trailer: padding
        length = int.from_bytes(raw[at + 4:at + 6], "little")
        if at + 7 + length > middle:
            break
        at += 7 + length
    assert length >= 16, "the record in the middle of the log is too short to damage"
    start = min(max(middle, at + 7), at + 7 + length - 16)
    raw[start:start + 16] = bytes(b ^ 0xFF for b in raw[start:start + 16])
    log.write_bytes(bytes(raw))


@pytest.mark.parametrize("with_copy", [False, True])
def test_a_damaged_log_stops_the_open_with_a_clear_error(tmp_path, with_copy):
    data, safety = node_dirs(tmp_path)
    run_a_while(data, safety if with_copy else None)
    flip_16_bytes_of_the_log(data)
    before = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    with pytest.raises(CorruptStoreError) as exc:
        open_store(data, GENESIS, safety_dir=safety if with_copy else None)
    assert one_line(exc).startswith(f"{data}: the database is damaged (Corruption: ")
    # Nothing was "repaired" away: the files are as they were, for a resync or an expert.
    assert {p.name: p.read_bytes() for p in data.iterdir() if p.is_file() and not p.name.startswith("LOG")} == \
        {k: v for k, v in before.items() if not k.startswith("LOG")}


def test_a_rolled_back_safety_record_is_refused(tmp_path):
    """Whatever makes the database lose writes (here: an old copy of it put
    back), a record behind its kept copy is refused."""
    data, safety = node_dirs(tmp_path)
    run_a_while(data, safety, votes=22)
    snapshot = tmp_path / "snapshot"
    shutil.copytree(data, snapshot)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        store.save_safety_record(b"vote 23")
        store.save_safety_record(b"vote 24")
    shutil.rmtree(data)
    shutil.copytree(snapshot, data)
    with pytest.raises(CorruptStoreError) as exc:
        open_store(data, GENESIS, safety_dir=safety)
    assert "safety record was rolled back (the store holds save 22, the copy in" in one_line(exc)
    assert SafetyCopy(safety).load() == KeptRecord(24, b"vote 24")    # the copy is left alone


@pytest.mark.parametrize("loss", ["deleted", "emptied"])
def test_a_lost_data_directory_is_refused(tmp_path, loss):
    data, safety = node_dirs(tmp_path)
    run_a_while(data, safety)
    shutil.rmtree(data)
    if loss == "emptied":
        data.mkdir()
    with pytest.raises(LostStoreError) as exc:
        open_store(data, GENESIS, safety_dir=safety)
    assert "this node has voted before" in one_line(exc) and str(safety) in str(exc.value)
    assert not data.exists() or not any(data.iterdir())      # nothing was created


def test_a_fresh_node_and_one_that_never_voted_start(tmp_path):
    data, safety = node_dirs(tmp_path)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        assert store.load_safety_record() is None
    assert SafetyCopy(safety).load() == KeptRecord(0, None)     # started, never voted
    shutil.rmtree(data)                                         # nothing to forget
    open_store(data, GENESIS, safety_dir=safety).close()


def test_the_copy_follows_every_save_and_reopening_agrees(tmp_path):
    data, safety = node_dirs(tmp_path)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        for n in range(1, 6):
            store.save_safety_record(b"r%d" % n, payloads=[(n, b"\x01" * 32, b"payload")] if n == 3 else ())
            assert SafetyCopy(safety).load() == KeptRecord(n, b"r%d" % n)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        assert store.load_safety_record() == b"r5"
        store.save_safety_record(b"r6")
    assert SafetyCopy(safety).load() == KeptRecord(6, b"r6")


def test_a_crash_between_the_stores_write_and_the_copys_is_accepted(tmp_path):
    data, safety = node_dirs(tmp_path)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        store.save_safety_record(b"r1")
        store._copy.save = lambda *args: (_ for _ in ()).throw(SystemExit("killed"))
        with pytest.raises(SystemExit):
            store.save_safety_record(b"r2")        # durable in the store, not in the copy
    assert SafetyCopy(safety).load() == KeptRecord(1, b"r1")
    with open_store(data, GENESIS, safety_dir=safety) as store:
        assert store.load_safety_record() == b"r2"
    assert SafetyCopy(safety).load() == KeptRecord(2, b"r2")    # caught up


def test_a_record_that_differs_from_the_copy_is_refused(tmp_path):
    data, safety = node_dirs(tmp_path)
    run_a_while(data, safety, votes=4, blocks=1)
    SafetyCopy(safety).save(4, b"something else")
    with pytest.raises(CorruptStoreError, match="differs from the copy"):
        open_store(data, GENESIS, safety_dir=safety)


def test_a_missing_or_unreadable_copy_is_refused(tmp_path):
    data, safety = node_dirs(tmp_path)
    run_a_while(data, safety, votes=4, blocks=1)
    for name in SLOTS:
        (safety / name).write_bytes(b"\x00" * 100)
    with pytest.raises(SafetyCopyError) as exc:
        open_store(data, GENESIS, safety_dir=safety)
    assert "safety record copy is damaged" in one_line(exc)
    shutil.rmtree(safety)
    with pytest.raises(SafetyCopyError, match="copy is missing, but .* holds save 4"):
        open_store(data, GENESIS, safety_dir=safety)
    with pytest.raises(SafetyCopyError):
        resync_store(data, GENESIS, safety)
    assert (data / "CURRENT").exists()                         # resync left it alone


def test_a_torn_slot_falls_back_to_the_other_one():
    older, newer = encode_slot(KeptRecord(6, b"six")), encode_slot(KeptRecord(7, b"seven"))
    assert decode_slot(newer) == KeptRecord(7, b"seven")
    for torn in (newer[:len(newer) - 3], newer[:-1] + b"\x00", b"", newer[:10]):
        assert decode_slot(torn) is None
    # a longer older slot overwritten in place by a shorter one keeps its tail: ignored
    assert decode_slot(encode_slot(KeptRecord(8, b"8")) + older[20:]) == KeptRecord(8, b"8")


def test_resync_moves_the_store_aside_and_keeps_the_safety_record(tmp_path):
    data, safety = node_dirs(tmp_path)
    run_a_while(data, safety)
    flip_16_bytes_of_the_log(data)
    moved = resync_store(data, GENESIS, safety)
    assert moved.parent == data.parent and moved.name.startswith("data.damaged-")
    assert (moved / "CURRENT").exists()
    again = resync_store(data, GENESIS, safety)                 # a second resync: another name
    assert again != moved and again.exists()
    with open_store(data, GENESIS, safety_dir=safety) as store:
        assert store.last_height() == 0                         # the chain is refetched
        assert store.load_safety_record() == b"votes up to 24"  # the votes are not forgotten
        store.save_safety_record(b"vote 25")
    assert SafetyCopy(safety).load() == KeptRecord(25, b"vote 25")


HOLDER = """
import sys
from storage import open_store
from tests.storage.chain import GENESIS
store = open_store(sys.argv[1], GENESIS, safety_dir=sys.argv[2])
print("open", flush=True)
sys.stdin.read()          # hold the store until the parent closes our stdin
store.close()
"""


def test_resync_of_a_store_in_use_is_refused(tmp_path, repo_root):
    data, safety = node_dirs(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(data), str(safety)], cwd=repo_root,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "open\n"
        with pytest.raises(StoreLockedError, match="is the node still running"):
            resync_store(data, GENESIS, safety)
        child.stdin.close()
        assert child.wait(timeout=10) == 0
    finally:
        child.kill()
        child.wait()
    assert not list(data.parent.glob("data.damaged-*"))


def first_entries(c):
    """(tx, its tx index answer) for the txs block `c` adds to the index."""
    return [(tx, (c.block.height, i, r)) for i, (tx, r) in enumerate(zip(c.block.txs, c.receipts))
            if r.status != ERR_DUPLICATE]


def test_a_damaged_table_file_is_an_error_not_wrong_data(tmp_path):
    """Reads verify block checksums: unchecked, these flipped bytes came back
    as a block with other contents."""
    data, safety = node_dirs(tmp_path)
    chain = build_chain(40)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        for c in chain:
            c.apply(store)
        store._kv._db.compact_range()          # into a table file (.ldb), off the .log
    [table] = data.glob("*.ldb")
    raw = bytearray(table.read_bytes())
    # Inside the first data block (certificates: block bodies are in the segments now).
    middle = 100
    raw[middle:middle + 16] = bytes(b ^ 0xFF for b in raw[middle:middle + 16])
    table.write_bytes(bytes(raw))
    errors = 0
    try:
        with open_store(data, GENESIS, safety_dir=safety) as store:
            for c in chain:
                reads = [(lambda h=c.block.height: store.get_block(h), (c.block, None)),
                         (lambda h=c.block.height: store.get_certificate(h), (c.certificate, None))]
                if c.block.height % PERSIST_EVERY == 0:          # the tree's readable versions
                    reads.append((lambda h=c.block.height: store.state_tree.root_hash(h), (c.state_root,)))
                reads += [(lambda i=tx.id: store.get_tx(i), (store_entry, None))
                          for tx, store_entry in first_entries(c)]
                for read, allowed in reads:
                    try:
                        assert read() in allowed
                    except CorruptStoreError as exc:
                        assert "the database is damaged (read: Corruption: " in str(exc)
                        errors += 1
    except CorruptStoreError:
        errors += 1
    assert errors


def test_a_damaged_segment_is_an_error_not_wrong_data(tmp_path):
    """Block bodies live in segment files outside LevelDB: a flipped byte in
    one is caught by the record's checksum (a block) or by the tx's id (one
    tx read on its own), never served."""
    data, safety = node_dirs(tmp_path)
    chain = build_chain(8)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        for c in chain:
            c.apply(store)
    [segment] = (data / "blocks").glob("*.seg")
    raw = bytearray(segment.read_bytes())
    tx = chain[3].block.txs[1]
    at = raw.index(tx.encode()) + 10            # inside that tx's args
    raw[at] ^= 0xFF
    segment.write_bytes(bytes(raw))
    with open_store(data, GENESIS, safety_dir=safety) as store:
        with pytest.raises(CorruptStoreError, match="segment 1 is damaged at offset"):
            store.get_block(4)
        with pytest.raises(CorruptStoreError, match=f"the bytes of tx {tx.id.hex()}"):
            store.get_committed_tx(tx.id)
        assert store.get_block(3) == chain[2].block          # the rest still reads
    segment.unlink()          # test_segment_crash.py: a store whose segments lost writes
    with pytest.raises(CorruptStoreError, match="segment 1 is missing"):
        open_store(data, GENESIS, safety_dir=safety)
