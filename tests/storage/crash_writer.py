"""Child process of the crash test: commits the test chain as fast as it can.

    python -m tests.storage.crash_writer <store path> <safety copy dir> [max height]

Prints "ready <height>" once the store is open, then each height after its
commit returned (durable).  Like the consensus driver, it saves a safety
record (to the store and its copy) before each commit.  Runs until killed or
max height.
"""

from __future__ import annotations

import sys

from storage import open_store

from .chain import GENESIS, make_commit


def main(path: str, safety_dir: str, max_height: int) -> None:
    store = open_store(path, GENESIS, safety_dir=safety_dir)
    out = sys.stdout
    out.write(f"ready {store.last_height()}\n")
    out.flush()
    while (height := store.last_height() + 1) <= max_height:
        store.save_safety_record(b"before %d" % height)
        make_commit(height, store.last_block_hash()).apply(store)
        out.write(f"{height}\n")
        out.flush()
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000)
