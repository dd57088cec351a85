"""Child process of the crash test: commits the test chain as fast as it can.

    python -m tests.storage.crash_writer <store path> <safety copy dir> [max height]

Prints "ready <height>" once the store is open, then each height after its
commit returned (durable).  Like the consensus driver, it saves a safety
record (to the store and its copy) before each commit.  Even heights go the
way of a block ordered here: their payload is appended to the segments with
that record (prepared) and the commit refers to it, and the previous prepared
payload is dropped; odd heights go the way of a block fetched by sync, the
body appended by the commit itself.  So a kill can land in either append, or
between an append and the LevelDB batch that refers to it.  Every
CHECKPOINT_EVERY heights it keeps a checkpoint after the commit (at open, the
newest one a kill came before), so the commits prune the state tree as a
node's do, and a kill lands in those deletes too.  Runs until killed or max
height.
"""

from __future__ import annotations

import sys

from ledger.block import GENESIS_HASH
from storage import open_store

from .chain import GENESIS, checkpoint_record, make_commit

CHECKPOINT_EVERY = 8


def keep_checkpoint(store) -> None:
    """Keep the newest checkpoint at or below the tip, if it is not kept yet."""
    seq = store.last_height() - store.last_height() % CHECKPOINT_EVERY
    if seq > store.newest_checkpoint():
        store.put_checkpoint(seq, *checkpoint_record(seq))


def kept_payloads(store) -> list[tuple[int, bytes]]:
    """The prepared payloads an earlier run left (the node finds them through
    its safety record): the last even height's, or the next one's."""
    last = store.last_height()
    kept = []
    for seq in (last - 1, last, last + 1):
        if seq > 0 and seq % 2 == 0:
            prev = store.get_block(seq - 1).hash if seq > 1 else GENESIS_HASH
            digest = make_commit(seq, prev).certificate.digest
            if store.get_prepared_payload(seq, digest) is not None:
                kept.append((seq, digest))
    return kept


def main(path: str, safety_dir: str, max_height: int) -> None:
    store = open_store(path, GENESIS, safety_dir=safety_dir)
    out = sys.stdout
    out.write(f"ready {store.last_height()}\n")
    out.flush()
    prepared = kept_payloads(store)                 # (seq, digest) with a q/ entry
    keep_checkpoint(store)
    while (height := store.last_height() + 1) <= max_height:
        commit = make_commit(height, store.last_block_hash())
        if height % 2:
            store.save_safety_record(b"before %d" % height)
            commit.apply(store)
        else:
            store.save_safety_record(b"before %d" % height,
                                     payloads=[(height, commit.certificate.digest, commit.payload)],
                                     dropped=prepared)
            prepared = [(height, commit.certificate.digest)]
            commit.apply(store, commit.payload)
        keep_checkpoint(store)
        out.write(f"{height}\n")
        out.flush()
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000)
