"""Measure the state tree: `python -m storage.state_tree_bench`.

For each tree size: fill a tree with that many keys, then time blocks of
`--block` writes (a mix of updates to existing keys and new keys), persisted
every `--persist-every` blocks as a node does at its checkpoints, and report
CPU microseconds per written key (apply, and the store's write), nodes and
bytes written per key, and proof size, proving and checking time.  Nodes live in memory, or in LevelDB with
`--leveldb DIR` (one unsynced batch per block, read back through plyvel, as a
node would; here, not in ledger/, because ledger/ never touches plyvel).
Figures, not assertions: run it by hand on a quiet machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import time
from pathlib import Path

import plyvel

from ledger.crypto import KeyPair, verify
from ledger.state_tree import MemoryNodeStore, StateProof, StateTree, UpdateResult, check

FILL_CHUNK = 50_000


class _LevelDBNodeStore:
    """Nodes in a LevelDB of their own, for the figure with real reads."""

    def __init__(self, path: Path, prune: bool) -> None:
        self.prune = prune
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        # as storage/leveldb_store.py opens the node's DB
        self.db = plyvel.DB(str(path), create_if_missing=True, bloom_filter_bits=10)
        self.get = self.db.get

    def write(self, result: UpdateResult) -> None:
        with self.db.write_batch() as batch:
            for key, value in result.new_nodes.items():
                batch.put(key, value)
            if self.prune:                    # at once: keep the newest version only
                for key in result.stale:
                    batch.delete(key)

    def settle(self) -> None:
        """Finish the compactions the fill started, so they do not count."""
        self.db.compact_range()

    def close(self) -> None:
        self.db.close()


class _MemoryStore(MemoryNodeStore):
    def write(self, result: UpdateResult) -> None:
        super().write(result)
        self.delete(result.stale)             # keep the newest version only

    def settle(self) -> None:
        pass

    def close(self) -> None:
        pass


def _key(i: int) -> bytes:
    return b"fiscal/receipt/53010126-%010d" % i


def _value(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(40, 120))


def run(size: int, block: int, blocks: int, update_share: float, proofs: int, seed: int,
        leveldb: Path | None, prune: bool = True, persist_every: int = 16) -> dict:
    rng = random.Random(seed)
    store = _LevelDBNodeStore(leveldb / f"tree-{size}", prune) if leveldb else _MemoryStore()
    tree = StateTree(store)
    values: dict[bytes, bytes] = {}
    version = 0
    for start in range(0, size, FILL_CHUNK):
        chunk = {_key(i): _value(rng) for i in range(start, min(size, start + FILL_CHUNK))}
        values.update(chunk)
        version += 1
        store.write(tree.apply(version, chunk))
    store.settle()
    next_key = size
    per_key_us, write_us, nodes, node_bytes, stale = [], [], 0, 0, 0
    gc.collect()
    process_t0 = time.process_time()
    for _ in range(blocks):
        writes = {_key(rng.randrange(next_key)): _value(rng) for _ in range(int(block * update_share))}
        while len(writes) < block:
            writes[_key(next_key)] = _value(rng)
            next_key += 1
        values.update(writes)
        version += 1
        # thread time: LevelDB compacts in a thread of its own, counted below
        t0 = time.thread_time()
        result = tree.apply(version, writes, persist=version % persist_every == 0)
        t1 = time.thread_time()
        store.write(result)
        t2 = time.thread_time()
        per_key_us.append((t1 - t0) * 1e6 / len(writes))
        write_us.append((t2 - t1) * 1e6 / len(writes))
        nodes += len(result.new_nodes)
        node_bytes += sum(len(k) + len(v) for k, v in result.new_nodes.items())
        stale += len(result.stale)
    written = block * blocks
    process_us = (time.process_time() - process_t0) * 1e6 / written
    root = tree.root_hash()
    member_sizes, absent_sizes, prove_us, check_us = [], [], [], []
    for i in range(proofs):
        present = i % 2 == 0
        key = _key(rng.randrange(next_key)) if present else b"absent/%d" % i
        value = values.get(key)
        t0 = time.process_time()
        data = tree.prove(version, key).encode()
        t1 = time.process_time()
        problem = check(root, key, value, StateProof.decode(data))
        t2 = time.process_time()
        if problem:
            raise AssertionError(f"proof of {key!r} does not check: {problem}")
        (member_sizes if present else absent_sizes).append(len(data))
        prove_us.append((t1 - t0) * 1e6)
        check_us.append((t2 - t1) * 1e6)
    store.close()
    return {
        "tree_keys": size, "block_writes": block, "blocks": blocks, "update_share": update_share,
        "persist_every": persist_every,
        "store": ("leveldb" if prune else "leveldb-keep-history") if leveldb else "memory",
        "apply_us_per_key_median": round(statistics.median(per_key_us), 2),
        "apply_us_per_key_min": round(min(per_key_us), 2),
        "store_write_us_per_key_median": round(statistics.median(write_us), 2),
        # everything the process spent per key over the timed blocks, the
        # bench's own block making and LevelDB's background compaction included
        "process_cpu_us_per_key": round(process_us, 2),
        "nodes_per_key": round(nodes / written, 2),
        "bytes_per_key": round(node_bytes / written, 1),
        "stale_per_key": round(stale / written, 2),
        "member_proof_bytes_mean": round(statistics.mean(member_sizes), 1) if member_sizes else None,
        "absent_proof_bytes_mean": round(statistics.mean(absent_sizes), 1) if absent_sizes else None,
        "proof_bytes_max": max(member_sizes + absent_sizes, default=None),
        "prove_us_median": round(statistics.median(prove_us), 1) if prove_us else None,
        "decode_and_check_us_median": round(statistics.median(check_us), 1) if check_us else None,
    }


def signature_check_us(n: int = 2000) -> float:
    """CPU microseconds of one ed25519 signature check, measured now: the
    yardstick the issue's budget uses (~57 us on the 2-core reference
    machine), so figures from a busy machine can still be compared."""
    key = KeyPair.from_seed(bytes(32))
    message = bytes(200)
    signature = key.sign(message)
    t0 = time.process_time()
    for _ in range(n):
        verify(key.public_key, message, signature)
    return (time.process_time() - t0) * 1e6 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="tree sizes (keys), comma-separated")
    parser.add_argument("--block", type=int, default=2000, help="writes per block")
    parser.add_argument("--blocks", type=int, default=32, help="blocks timed per size")
    parser.add_argument("--persist-every", type=int, default=16,
                        help="persist the tree every N blocks (a node: at its checkpoints, 16 by default)")
    parser.add_argument("--update-share", type=float, default=0.5,
                        help="share of a block's writes that update existing keys")
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--leveldb", type=Path, metavar="DIR",
                        help="keep the nodes in LevelDB under DIR instead of memory")
    parser.add_argument("--keep-history", action="store_true",
                        help="with --leveldb: never delete stale nodes (no pruning)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        figures = run(size, args.block, args.blocks, args.update_share, args.proofs, args.seed,
                      args.leveldb, not args.keep_history, args.persist_every)
        figures["signature_check_us"] = round(signature_check_us(), 1)
        print(json.dumps(figures) if args.json else
              " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


if __name__ == "__main__":
    main()
