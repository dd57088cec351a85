"""An observer promoted by governance, in-process: one validator and one
observer listed in genesis, one voting organisation (its admin's proposal
passes at once).  Nothing else is sent after the promotion, so the primary's
empty blocks must carry the chain to the boundary (and no further: with no
traffic and no empty-block interval the chain then rests); from there the set
is two and the quorum is both (n = 2, f = 0), so a block after the boundary
commits only if the promoted node votes, and it is the new primary.  Then
node0 is demoted: it votes until its epoch ends and follows by pushes after
it.  Restarted on their stores, each comes back in the role the committed
configuration gives it."""

from __future__ import annotations

import trio

from cli.ports import free_port_base
from node.app import Node
from tests.factories import key_for, make_store, make_tx
from tests.node.test_observer import _genesis, _node

K, W = 2, 4


def _voters(node: Node, height: int) -> set[str]:
    names = node.chain.config.epoch_of(height).names
    return {names[v.validator] for v in node.store.get_certificate(height).votes}


async def test_a_promoted_observer_votes_from_the_boundary_reached_by_empty_blocks(tmp_path):
    genesis = _genesis(free_port_base(4), roles={"finance": ["admin"]}, checkpoint_interval=K, window=W)
    stores = {name: make_store(genesis) for name in ("node0", "watcher")}
    validator, observer = (_node(genesis, name, tmp_path, stores[name]) for name in ("node0", "watcher"))
    assert observer.driver is None and observer.role == "observer"
    admin = key_for("account", "finance")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(validator.run)
            await nursery.start(observer.run)
            tx = make_tx(admin, genesis, "gov", "propose", {"action": "promote_node", "target": "watcher"})
            [admitted] = await validator.service.submit([tx])
            assert admitted.accepted, admitted
            await validator.service.wait_settled([tx.id], 10)
            promoted_at, _, receipt = validator.store.get_tx(tx.id)
            assert receipt.status == 0 and receipt.result["status"] == "executed", receipt
            boundary = validator.chain.config.pending_boundary(promoted_at)
            assert boundary is not None and boundary >= promoted_at + W
            # The watcher started its core when it executed the promotion, passive until B.
            while observer.driver is None:
                await trio.sleep(0.01)
            # No traffic: only the primary's empty blocks reach B, where both enter epoch 1.
            while observer.role != "validator" or validator.replica.epoch != 1:
                await trio.sleep(0.01)
            assert validator.chain.height == observer.chain.height == boundary
            assert observer.replica.epoch == 1 and observer.replica.primary == 1    # (1 + 0) mod 2
            tx = make_tx(admin, genesis, nonce=1, args={"key": "after-boundary", "value": 1})
            [admitted] = await validator.service.submit([tx])
            assert admitted.accepted, admitted
            assert len(await validator.service.wait_settled([tx.id], 10)) == 1
            while observer.chain.height <= boundary:
                await trio.sleep(0.01)
            assert _voters(validator, boundary + 1) == {"node0", "watcher"}
            assert _voters(validator, boundary) == {"node0"}          # the old set's last block
            assert observer.service.status()["role"] == "validator"
            assert observer.metrics.registry.get_sample_value("ynchain_node_role", {"role": "validator"}) == 1
            top = min(validator.chain.height, observer.chain.height)
            for height in range(1, top + 1):
                assert observer.store.get_block(height).hash == validator.store.get_block(height).hash

            # And back: node0 demoted votes until its epoch ends, then follows by pushes.
            tx = make_tx(admin, genesis, "gov", "propose", {"action": "demote_node", "target": "node0"},
                         nonce=2)
            [admitted] = await observer.service.submit([tx])
            assert admitted.accepted, admitted
            await observer.service.wait_settled([tx.id], 10)
            demoted_at, _, receipt = observer.store.get_tx(tx.id)
            assert receipt.result["status"] == "executed", receipt
            second = observer.chain.config.pending_boundary(demoted_at)
            while validator.role != "observer" or observer.replica.epoch != 2:
                await trio.sleep(0.01)
            assert _voters(observer, second) == {"node0", "watcher"}        # epoch 1's last block
            tx = make_tx(admin, genesis, nonce=3, args={"key": "after-demotion", "value": 1})
            [admitted] = await validator.service.submit([tx])              # relayed to watcher
            assert admitted.accepted, admitted
            assert len(await validator.service.wait_settled([tx.id], 10)) == 1
            assert _voters(validator, validator.chain.height) == {"watcher"}
            assert validator.replica.index is None and validator.service.status()["role"] == "observer"
            nursery.cancel_scope.cancel()

    # Restarted on their stores, each in the role the committed configuration gives it.
    validator, observer = (_node(genesis, name, tmp_path, stores[name]) for name in ("node0", "watcher"))
    assert (validator.role, observer.role) == ("observer", "validator")
    assert validator.driver is None                          # no core on an observer
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(validator.run)
            await nursery.start(observer.run)
            tx = make_tx(admin, genesis, nonce=4, args={"key": "after-restart", "value": 1})
            [admitted] = await validator.service.submit([tx])
            assert admitted.accepted, admitted
            assert len(await validator.service.wait_settled([tx.id], 20)) == 1
            height = validator.chain.height
            assert _voters(validator, height) == {"watcher"}
            assert validator.store.get_block(height).hash == observer.store.get_block(height).hash
            nursery.cancel_scope.cancel()
