"""Proof files from real nodes across a validator-set change, in-process: a
1-validator chain promotes its observer (as tests/node/test_promotion.py), so
the set is node0 until the boundary B and node0 + watcher after it.  Each
node kept the stable checkpoint at B (the promoted one collected it while
passive), so both build files for a tx after B that verify offline against
the genesis alone and name the new set's signers."""

from __future__ import annotations

import trio

from cli.ports import free_port_base
from ledger.proof_file import describe, verify
from tests.factories import key_for, make_store, make_tx
from tests.node.test_observer import _genesis, _node

K, W = 2, 4


async def test_proofs_after_a_promotion_verify_against_genesis_on_both_nodes(tmp_path):
    genesis = _genesis(free_port_base(4), roles={"finance": ["admin", "writer"]}, checkpoint_interval=K, window=W)
    nodes = [_node(genesis, name, tmp_path, make_store(genesis)) for name in ("node0", "watcher")]
    validator, watcher = nodes
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for node in nodes:
                await nursery.start(node.run)
            _, boundary, put, _ = await promote_and_put(genesis, validator, watcher)
            for node in nodes:
                assert node.store.checkpoint_at_or_above(boundary)[0] == boundary, node.config.name
                answer = node.service.prove("tx", (put.id,))
                assert answer.problem is None, (node.config.name, answer.problem)
                proved = verify(answer.data, genesis)
                assert [e.start for e in proved.epochs] == [0, boundary]
                assert proved.txs[0].committers == ("node0", "watcher")
                assert describe(proved).endswith(
                    f"certified by 2 of 2 validators (node0, watcher) of the set in force from height "
                    f"{boundary + 1:,}"), describe(proved)
                # a state member and a non-member at the newest checkpoint, after the change
                for key, held in (("entry/after-boundary", "holds ['finance', 1]"), ("entry/never-written", "is absent")):
                    answer = node.service.prove("state", ("kv", key, None))
                    assert answer.problem is None, answer.problem
                    assert held in describe(verify(answer.data, genesis))
                # the driver kept each checkpoint with its next-epoch proof, and the
                # tree below the newest one is pruned: a state proof there is a 409
                newest = node.store.newest_checkpoint()
                assert newest >= boundary
                answer = node.service.prove("state", ("kv", "entry/after-boundary", 1))
                assert not answer.missing and answer.problem.startswith(
                    f"this node keeps the state tree from height {newest} "), answer.problem
            nursery.cancel_scope.cancel()


async def promote_and_put(genesis, validator, watcher):
    """node0 (validating alone) promotes watcher: the set is node0 + watcher
    from the boundary B.  Then a kv put after B, and blocks until both keep a
    stable checkpoint above it.  (The promote tx, B, the put, its height.)"""
    admin = key_for("account", "finance")
    promote = make_tx(admin, genesis, "gov", "propose", {"action": "promote_node", "target": "watcher"})
    [admitted] = await validator.service.submit([promote])
    assert admitted.accepted, admitted
    await validator.service.wait_settled([promote.id], 10)
    boundary = validator.chain.config.pending_boundary(validator.store.get_tx(promote.id)[0])
    while watcher.role != "validator" or validator.replica.epoch != 1:
        await trio.sleep(0.01)
    put = make_tx(admin, genesis, nonce=1, args={"key": "after-boundary", "value": 1})
    [admitted] = await validator.service.submit([put])
    assert admitted.accepted, admitted
    await validator.service.wait_settled([put.id], 10)
    put_height, _, receipt = validator.store.get_tx(put.id)
    assert receipt.ok, receipt
    assert put_height > boundary
    # blocks until a stable checkpoint covers the put on both nodes (no empty blocks after B)
    nonce = 2
    while any(node.store.checkpoint_at_or_above(put_height) is None for node in (validator, watcher)):
        filler = make_tx(admin, genesis, nonce=nonce, args={"key": f"filler-{nonce}", "value": nonce})
        nonce += 1
        await validator.service.submit([filler])
        await validator.service.wait_settled([filler.id], 10)
    return promote, boundary, put, put_height
