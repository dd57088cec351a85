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
from tests.factories import genesis_dict, key_for, make_store
from tests.node.test_observer import _node
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
