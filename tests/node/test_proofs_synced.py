"""Proof files from a node that caught up by block sync, in-process.

A 1-validator chain promotes its observer `watcher` (as tests/node/
test_proofs_promotion.py): the set is node0 until the boundary B and node0 +
watcher after it.  Then `auditor`, an observer started late with an empty
store, catches up by block sync across B.  Its core saw no checkpoint become
stable (it runs none), yet it builds files for a tx on either side of B that
verify offline against the genesis alone: after the sync it fetched the
validators' kept checkpoints, the one at B included (node.core.
checkpoint_fetch).  Without that it answers 409."""

from __future__ import annotations

import json

import trio

from cli.ports import free_port_base
from ledger.genesis import parse_genesis
from ledger.proof_file import verify
from node.core import checkpoint_fetch
from tests.factories import genesis_dict, key_for, make_store, make_tx
from tests.node.test_observer import _genesis as _observer_genesis, _node
from tests.node.test_proofs_promotion import K, W, promote_and_put


def _genesis(base: int):
    """node0 validates; watcher and auditor observe (finance may govern)."""
    doc = genesis_dict(1, roles={"finance": ["admin", "writer"]}, checkpoint_interval=K, window=W)
    [validator] = doc.pop("validators")
    validator.update(p2p=f"127.0.0.1:{base}", api=f"127.0.0.1:{base + 1}", role="validator")
    observers = [{"name": name, "org": validator["org"], "role": "observer",
                  "public_key": key_for("validator", name).public_key.hex(),
                  "p2p": f"127.0.0.1:{base + 2 + 2 * i}", "api": f"127.0.0.1:{base + 3 + 2 * i}"}
                 for i, name in enumerate(("watcher", "auditor"))]
    doc["nodes"] = [validator, *observers]
    return parse_genesis(doc, json.dumps(doc).encode())


async def test_a_node_that_synced_across_a_set_change_proves_txs_on_both_sides(tmp_path):
    genesis = _genesis(free_port_base(6))
    validator, watcher, auditor = (_node(genesis, name, tmp_path, make_store(genesis))
                                   for name in ("node0", "watcher", "auditor"))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for node in (validator, watcher):
                await nursery.start(node.run)
            promote, boundary, put, put_height = await promote_and_put(genesis, validator, watcher)

            await nursery.start(auditor.run)
            assert auditor.driver is None                     # it keeps no checkpoint of its own
            top = validator.store.checkpoint_at_or_above(put_height)[0]
            # synced, and the fetch that kept the checkpoint above the put is over
            while auditor.store.checkpoint_at_or_above(put_height) is None or auditor.checkpoint_fetch.busy:
                await trio.sleep(0.01)
            kept = {seq: rest for seq, *rest in auditor.store.checkpoints_between(1, top, 1000)}
            for seq, *rest in validator.store.checkpoints_between(1, top, 1000):
                assert kept[seq] == rest, seq           # as the validator keeps it
            assert boundary in kept
            for tx, epochs, committers in ((promote, [0], ("node0",)),
                                           (put, [0, boundary], ("node0", "watcher"))):
                answer = auditor.service.prove("tx", (tx.id,))
                assert answer.problem is None, answer.problem
                proved = verify(answer.data, genesis)
                assert [e.start for e in proved.epochs] == epochs
                assert proved.txs[0].committers == committers
            nursery.cancel_scope.cancel()


async def test_an_observer_following_pushed_blocks_keeps_the_checkpoints_and_proves(tmp_path, monkeypatch):
    """An observer that keeps up by the blocks the validator pushes has no sync
    session and no core: it asks its peers for their kept checkpoints on its own
    (CheckpointFetch.follow), so it proves what the validator proves."""
    monkeypatch.setattr(checkpoint_fetch, "FOLLOW_INTERVAL_S", 0.05)
    genesis = _observer_genesis(free_port_base(4), roles={"finance": ["admin", "writer"]},
                                checkpoint_interval=K, window=W)
    validator, watcher = (_node(genesis, name, tmp_path) for name in ("node0", "watcher"))
    admin = key_for("account", "finance")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for node in (validator, watcher):
                await nursery.start(node.run)
            while not watcher.peers.connected():
                await trio.sleep(0.01)
            put = make_tx(admin, genesis, nonce=0, args={"key": "followed", "value": 1})
            nonce = 1
            await validator.service.submit([put])
            await validator.service.wait_settled([put.id], 10)
            put_height = validator.store.get_tx(put.id)[0]
            while validator.store.checkpoint_at_or_above(put_height) is None:
                filler = make_tx(admin, genesis, nonce=nonce, args={"key": f"filler-{nonce}", "value": nonce})
                nonce += 1
                await validator.service.submit([filler])
                await validator.service.wait_settled([filler.id], 10)
            while watcher.store.checkpoint_at_or_above(put_height) is None:
                await trio.sleep(0.01)
            assert watcher.driver is None and watcher.sync.session is None
            answer = watcher.service.prove("tx", (put.id,))
            assert answer.problem is None, answer.problem
            assert verify(answer.data, genesis).txs[0].committers == ("node0",)
            nursery.cancel_scope.cancel()
