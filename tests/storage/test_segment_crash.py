"""Block bodies live in segment files, their index in LevelDB: two writes, in
that order (storage.segments).  A crash between them leaves a body the index
does not refer to, which must cost nothing; the index referring to a body the
segments do not hold (they lost writes) must stop the open, with resync as
the way back.  test_crash.py kills a writer at random moments; these place
the crash exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import CorruptStoreError, GenesisMismatchError, open_store, resync_store
from storage.leveldb_store import SEGMENTS_DIR
from storage.safety_copy import KeptRecord, SafetyCopy
from storage.segments import HEADER, MAGIC

from .chain import GENESIS, build_chain


class KilledBatch:
    """A LevelDB batch whose write never happens: the process died first."""

    def put(self, key: bytes, value: bytes) -> None:
        pass

    def delete(self, key: bytes) -> None:
        pass

    def write(self) -> None:
        raise SystemExit("killed before the index batch")


class DiesBeforeBatches:
    """The store's backend, in a process that dies before its next batch lands."""

    def __init__(self, backend) -> None:
        self._backend = backend

    def batch(self) -> KilledBatch:
        return KilledBatch()

    def __getattr__(self, name: str):
        return getattr(self._backend, name)


def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "data", tmp_path / "safety"


def segment_file(data: Path) -> Path:
    [segment] = (data / SEGMENTS_DIR).glob("*.seg")
    return segment


def commit_three(store, chain) -> None:
    """Blocks 1-3 as a node stores synced blocks: a safety record saved before each."""
    for c in chain[:3]:
        store.save_safety_record(b"before %d" % c.block.height)
        c.apply(store)


def check_chain(store, chain) -> None:
    assert store.last_height() == len(chain)
    for c in chain:
        assert store.get_block(c.block.height) == c.block
        assert store.get_block_bytes(c.block.height) == c.block.encode()
        for index, tx in enumerate(c.block.txs):
            if store.get_tx(tx.id)[:2] == (c.block.height, index):
                assert store.get_committed_tx(tx.id)[0] == tx


@pytest.mark.parametrize("path", ["commit", "prepared"])
def test_a_body_whose_index_write_never_landed_is_an_unreferenced_tail(tmp_path, path):
    """The crash comes after the body's append (durable) and before the
    LevelDB batch that would refer to it, and a second, torn append is cut
    short mid-record: the store reopens at the last block it acknowledged,
    the orphan bytes are skipped, and the same block commits again."""
    data, safety = dirs(tmp_path)
    chain = build_chain(5)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        commit_three(store, chain)
        size_before = segment_file(data).stat().st_size
        store._kv = DiesBeforeBatches(store._kv)
        c = chain[3]
        with pytest.raises(SystemExit):
            if path == "commit":
                c.apply(store)                      # a synced block: its body appended by the commit
            else:
                store.save_safety_record(b"prepares 4", payloads=[(4, c.certificate.digest, c.payload)])
    segment = segment_file(data)
    assert segment.stat().st_size == size_before + HEADER + len(chain[3].payload)   # the body landed
    with segment.open("ab") as f:                   # a second append, torn by the kill
        f.write(MAGIC + (5000).to_bytes(4, "big") + b"\x01" * 7)

    with open_store(data, GENESIS, safety_dir=safety) as store:
        assert store.load_safety_record() == b"before 3"           # nothing of the lost write
        assert SafetyCopy(safety).load() == KeptRecord(3, b"before 3")
        assert store.get_prepared_payload(4, chain[3].certificate.digest) is None
        check_chain(store, chain[:3])
        assert store.get_block(4) is None and not store.has_tx(chain[3].block.txs[1].id)
        # The block commits again, its body appended after the orphan bytes.
        for c in chain[3:]:
            store.save_safety_record(b"prepares %d" % c.block.height,
                                     payloads=[(c.block.height, c.certificate.digest, c.payload)])
            c.apply(store, c.payload)
        check_chain(store, chain)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        check_chain(store, chain)


def truncate_last_record(segment: Path, body_length: int) -> None:
    """What a lost write looks like: the file ends before the last record."""
    with segment.open("r+b") as f:
        f.truncate(segment.stat().st_size - HEADER - body_length)


@pytest.mark.parametrize("loss", ["last block's body", "prepared payload", "segment files"])
def test_an_index_that_refers_to_bodies_the_segments_lost_is_refused_at_open(tmp_path, loss):
    """Appends are durable before the index refers to them, so a kill cannot
    do this; a disk that lied about a flush, or a data directory restored
    without its segments, can.  The open refuses the store (the node then
    prints the resync remedy) instead of serving or crashing on a read later,
    and resync gets the node back with its votes."""
    data, safety = dirs(tmp_path)
    chain = build_chain(4)
    with open_store(data, GENESIS, safety_dir=safety) as store:
        commit_three(store, chain)
        if loss == "prepared payload":
            c = chain[3]
            store.save_safety_record(b"prepares 4", payloads=[(4, c.certificate.digest, c.payload)])
    if loss == "last block's body":
        truncate_last_record(segment_file(data), len(chain[2].payload))
        what = "block 3"
    elif loss == "prepared payload":
        truncate_last_record(segment_file(data), len(chain[3].payload))
        what = "prepared payload 4"
    else:
        for segment in (data / SEGMENTS_DIR).iterdir():
            segment.unlink()
        what = "block 3"
    with pytest.raises(CorruptStoreError) as exc:
        open_store(data, GENESIS, safety_dir=safety)
    message = str(exc.value)
    assert "\n" not in message
    assert f"the index refers to the body of {what}, which the segment files do not hold intact" in message

    moved = resync_store(data, GENESIS, safety)
    assert (moved / SEGMENTS_DIR).is_dir()          # the damaged store, segments and all, kept aside
    with open_store(data, GENESIS, safety_dir=safety) as store:
        assert store.last_height() == 0             # the chain is refetched from the peers...
        kept = b"prepares 4" if loss == "prepared payload" else b"before 3"
        assert store.load_safety_record() == kept   # ...and no vote is forgotten


def test_opening_a_store_that_is_refused_creates_no_segment_files(tmp_path):
    """A store of another genesis (or schema) is refused as it is: the segment
    directory appears only with the first body."""
    data, _ = dirs(tmp_path)
    open_store(data, GENESIS).close()
    assert not (data / SEGMENTS_DIR).exists()
    with pytest.raises(GenesisMismatchError):
        open_store(data, b"\x07" * 32)
    assert not (data / SEGMENTS_DIR).exists()
