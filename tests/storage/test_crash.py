"""kill -9 a process that commits as fast as it can, many times; the store
must always hold a whole prefix of the chain and nothing else."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

from ledger.block import GENESIS_HASH
from ledger.state_tree import EMPTY_ROOT
from storage import layout, open_store
from storage.safety_copy import SafetyCopy

from .chain import GENESIS, PERSIST_EVERY, build_chain, expected_records, make_commit, without_locations
from .conftest import raw_records
from .crash_writer import CHECKPOINT_EVERY

ROUNDS = 20
MAX_KILL_DELAY_S = 0.4        # each commit also writes the safety copy (one more fdatasync)
TEST_BUDGET_S = 45


class ProgressReader(threading.Thread):
    """Reads the writer's stdout: the height it started from, then each
    height whose commit returned."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.ready = threading.Event()
        self.committed = threading.Event()      # a commit of this run returned
        self.start_height = -1
        self.last_acked = 0

    def run(self) -> None:
        for line in self.stream:
            if not self.ready.is_set():
                word, height = line.split()
                assert word == b"ready"
                self.start_height = self.last_acked = int(height)
                self.ready.set()
            else:
                self.last_acked = int(line)
                self.committed.set()


def run_and_kill(path, repo_root, delay_s: float, timeout_s: float) -> ProgressReader:
    child = subprocess.Popen([sys.executable, "-m", "tests.storage.crash_writer", str(path),
                              str(safety_dir(path))],
                             cwd=repo_root, stdout=subprocess.PIPE)
    reader = ProgressReader(child.stdout)
    try:
        reader.start()
        assert reader.ready.wait(timeout_s), "the writer did not open the store in time"
        # The kill comes at a random moment after the run's first commit, so
        # every round adds blocks, however loaded the machine is.
        assert reader.committed.wait(timeout_s), "the writer committed nothing in time"
        time.sleep(delay_s)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL, "the writer ended before it was killed"
    finally:
        child.kill()
        child.wait()
        reader.join(timeout=10)
        child.stdout.close()
    return reader


def safety_dir(path):
    return path.parent / "safety"


def check_store(path) -> int:
    # Opening with the copy checks that no kill left the store's safety
    # record behind it (the store is written first, the copy second).
    with open_store(path, GENESIS, create=False, safety_dir=safety_dir(path)) as store:
        last = store.last_height()
        chain = build_chain(last)
        raw = raw_records(store)
        tip = layout.Tip.decode(raw[layout.KEY_TIP])
        assert tip == layout.Tip(last, chain[-1].block.hash if chain else GENESIS_HASH,
                                 chain[-1].state_root if chain else EMPTY_ROOT)
        # The newest checkpoint is kept after its commit: a kill may come between.
        keep = store.newest_checkpoint()
        newest = last - last % CHECKPOINT_EVERY
        assert keep in (newest, max(0, newest - CHECKPOINT_EVERY))
        pruned = layout.decode_uint(raw[layout.KEY_PRUNED]) if layout.KEY_PRUNED in raw else 0
        # ... and the commits since the one before it pruned up to that one
        # (four stale lists a commit, eight heights between checkpoints).
        assert max(0, keep - CHECKPOINT_EVERY) <= pruned <= keep
        # Exactly the records of heights 1..last: every block, certificate,
        # hash and tx entry and the state they produce, the checkpoints, the
        # state tree pruned by whole stale lists up to `pruned`, nothing beyond.
        body = {k: v for k, v in raw.items() if not k.startswith((b"m/", b"p/", layout.PAYLOAD))}
        assert without_locations(body) == expected_records(
            chain, pruned, range(CHECKPOINT_EVERY, keep + 1, CHECKPOINT_EVERY))
        # Every version kept reads back with its root: the persisted ones and the tip.
        for height in sorted({*range(keep, last + 1, PERSIST_EVERY), last}):
            assert store.state_tree.root_hash(height) == (chain[height - 1].state_root if height
                                                          else EMPTY_ROOT)
        # The prepared payload kept for the last even height, or the one being
        # prepared when the kill came: it reads back whole.
        kept = [k for k in raw if k.startswith(layout.PAYLOAD)]
        assert len(kept) <= 2
        for key in kept:
            seq = int.from_bytes(key[2:10], "big")
            assert seq % 2 == 0 and seq in (last, last - 1, last + 1)
            expected = make_commit(seq, chain[seq - 2].block.hash if seq > 1 else GENESIS_HASH)
            assert key[10:] == expected.certificate.digest
            assert store.get_prepared_payload(seq, key[10:]) == expected.payload
        # The same, through the Store interface, and the chain links.
        prev = GENESIS_HASH
        for c in chain:
            h = c.block.height
            block = store.get_block(h)
            assert block == c.block and block.header.prev_hash == prev
            assert store.get_block_bytes(h) == c.block.encode()
            # The tx index locates each first entry's bytes in the body the block refers to.
            for index, tx in enumerate(block.txs):
                tx_height, tx_index, _ = store.get_tx(tx.id)
                if (tx_height, tx_index) == (h, index):
                    assert store.get_committed_tx(tx.id)[0] == tx
            assert store.get_certificate(h) == c.certificate
            assert store.height_of(block.hash) == h
            assert all(store.has_tx(tx.id) for tx in block.txs)
            prev = block.hash
        assert store.get_block(last + 1) is None
        # The safety record is saved before each commit: it is for the last
        # block or for the one being committed when the kill came.
        record = store.load_safety_record()
        assert record in ({b"before %d" % last, b"before %d" % (last + 1)}
                          if last else {None, b"before 1"})
    # ...and the copy, caught up by that open if the kill came between the two writes.
    assert SafetyCopy(safety_dir(path)).load().record == record
    return last


def test_kill_9_during_commits_never_leaves_a_partial_block(tmp_path, repo_root):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    print(f"kill delays from random seed {seed}")     # shown if the test fails
    path = tmp_path / "db"
    deadline = time.monotonic() + TEST_BUDGET_S
    acked = 0
    for round_no in range(ROUNDS):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"out of time after {round_no} rounds (seed {seed})"
        reader = run_and_kill(path, repo_root, rng.uniform(0, MAX_KILL_DELAY_S), remaining)
        # Every commit that returned survived the kill that followed it.
        assert reader.start_height >= acked, f"round {round_no}: lost acknowledged blocks (seed {seed})"
        acked = max(acked, reader.last_acked)
        if round_no % 5 == 4:
            assert check_store(path) >= acked, f"seed {seed}"
    last = check_store(path)
    assert last >= acked
    # Every round committed before its kill.
    assert last >= ROUNDS, f"only {last} blocks committed (seed {seed})"
