"""Measure the state tree: `python -m ledger.state_tree.bench`.

For each tree size: fill an in-memory tree with that many keys, then time
blocks of `--block` writes (a mix of updates to existing keys and new keys)
and report CPU microseconds per written key, nodes and bytes written per key,
and proof size, proving and verifying time.  Figures, not assertions: run it
by hand on a quiet machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time

from .proof import Proof, verify
from .tree import MemoryNodeStore, StateTree

FILL_CHUNK = 50_000
import os
NO_GC = bool(os.environ.get("NO_GC"))


def _key(i: int) -> bytes:
    return b"fiscal/receipt/53010126-%010d" % i


def _value(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(40, 120))


def run(size: int, block: int, blocks: int, update_share: float, proofs: int, seed: int) -> dict:
    rng = random.Random(seed)
    store = MemoryNodeStore()
    tree = StateTree(store)
    values: dict[bytes, bytes] = {}
    version = 0
    for start in range(0, size, FILL_CHUNK):
        version += 1
        chunk = {_key(i): _value(rng) for i in range(start, min(size, start + FILL_CHUNK))}
        values.update(chunk)
        result = tree.apply(version, chunk)
        store.write(result)
        store.delete(result.stale)          # keep only the newest version
    next_key = size
    per_key_us, nodes, node_bytes, stale = [], 0, 0, 0
    gc.collect()
    if NO_GC: gc.disable()
    for _ in range(blocks):
        n_updates = int(block * update_share)
        writes = {_key(rng.randrange(next_key)): _value(rng) for _ in range(n_updates)}
        while len(writes) < block:
            writes[_key(next_key)] = _value(rng)
            next_key += 1
        values.update(writes)
        version += 1
        t0 = time.process_time()
        result = tree.apply(version, writes)
        per_key_us.append((time.process_time() - t0) * 1e6 / len(writes))
        nodes += len(result.new_nodes)
        node_bytes += sum(len(k) + len(v) for k, v in result.new_nodes.items())
        stale += len(result.stale)
        store.write(result)
        store.delete(result.stale)
    written = block * blocks
    root = tree.root_hash()
    sizes, prove_us, verify_us = [], [], []
    for i in range(proofs):
        present = i % 2 == 0
        key = _key(rng.randrange(next_key)) if present else b"absent/%d" % i
        value = values.get(key)
        t0 = time.process_time()
        proof = tree.prove(version, key)
        t1 = time.process_time()
        data = proof.encode()
        t2 = time.process_time()
        ok = verify(root, key, value, Proof.decode(data))
        t3 = time.process_time()
        assert ok, key
        sizes.append(len(data))
        prove_us.append((t1 - t0) * 1e6)
        verify_us.append((t3 - t2) * 1e6)
    return {
        "tree_keys": size, "block_writes": block, "blocks": blocks, "update_share": update_share,
        "us_per_written_key_median": round(statistics.median(per_key_us), 2),
        "us_per_written_key_min": round(min(per_key_us), 2),
        "nodes_per_key": round(nodes / written, 2),
        "bytes_per_key": round(node_bytes / written, 1),
        "stale_per_key": round(stale / written, 2),
        "proof_bytes_mean": round(statistics.mean(sizes), 1),
        "proof_bytes_max": max(sizes),
        "prove_us_median": round(statistics.median(prove_us), 1),
        "verify_us_median": round(statistics.median(verify_us), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--block", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--update-share", type=float, default=0.5,
                        help="share of a block's writes that update existing keys")
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        fig = run(size, args.block, args.blocks, args.update_share, args.proofs, args.seed)
        if args.json:
            print(json.dumps(fig))
        else:
            print(" ".join(f"{k}={v}" for k, v in fig.items()), flush=True)


if __name__ == "__main__":
    main()
