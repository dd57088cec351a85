"""The state tree over LevelDB: a closed and reopened database gives a tree
that reads lazily and goes on to the same roots; the bench's LevelDB mode
runs end to end (its figures are not checked, only that it works)."""

from __future__ import annotations

import random

import plyvel

from ledger.state_tree import MemoryNodeStore, StateTree, verify
from storage import state_tree_bench


def _blocks(seed: int, n: int) -> list[dict[bytes, bytes | None]]:
    rng = random.Random(seed)
    return [{b"fiscal/r/%d" % rng.randrange(2000): None if rng.random() < 0.2 else rng.randbytes(12)
             for _ in range(rng.randint(1, 150))} for _ in range(n)]


def _write(db: plyvel.DB, result) -> None:
    with db.write_batch(sync=True) as batch:
        for key, value in result.new_nodes.items():
            batch.put(b"n/" + key, value)


class _Nodes:
    def __init__(self, db: plyvel.DB) -> None:
        self.db = db

    def get(self, node_key: bytes) -> bytes | None:
        return self.db.get(b"n/" + node_key)


def test_a_reopened_database_continues_with_the_same_roots(tmp_path) -> None:
    blocks = _blocks(1, 30)
    memory = MemoryNodeStore()
    reference = StateTree(memory)
    roots = []
    for height, block in enumerate(blocks, start=1):
        result = reference.apply(height, block)
        memory.write(result)
        roots.append(result.root)
    state: dict[bytes, bytes] = {}
    for block in blocks[:15]:
        for k, v in block.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v

    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    tree = StateTree(_Nodes(db))
    for height, block in enumerate(blocks[:15], start=1):
        _write(db, tree.apply(height, block))
    db.close()

    db = plyvel.DB(str(tmp_path / "db"))
    tree = StateTree(_Nodes(db), 15)
    assert tree.root_hash() == roots[14]
    for key in list(state)[:50] + [b"fiscal/r/absent"]:
        assert verify(roots[14], key, state.get(key), tree.prove(15, key))
    for height, block in enumerate(blocks[15:], start=16):
        result = tree.apply(height, block)
        assert result.root == roots[height - 1]
        _write(db, result)
    db.close()


def test_the_bench_runs_on_leveldb(tmp_path) -> None:
    figures = state_tree_bench.run(size=3000, block=300, blocks=4, update_share=0.5, proofs=20,
                                   seed=3, leveldb=tmp_path, persist_every=1)
    assert figures["store"] == "leveldb" and figures["nodes_per_key"] > 1
    # persisted every 4th block, the pages the 4 blocks share are written once
    fewer = state_tree_bench.run(size=3000, block=300, blocks=4, update_share=0.5, proofs=20,
                                 seed=3, leveldb=tmp_path, persist_every=4)
    assert 0 < fewer["nodes_per_key"] < figures["nodes_per_key"]
