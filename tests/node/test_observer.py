"""An observer in-process: one validator (it commits alone) and one observer
listed in genesis.  The observer runs no consensus core, takes a client's tx
and relays it to the validator, and stores exactly the validator's blocks,
which reach it pushed with their certificates."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from cli.ports import free_port_base
from ledger.genesis import parse_genesis
from node.app import Node
from node.config import NodeConfig
from tests.factories import genesis_dict, key_for, make_store, make_tx


def _genesis(base: int, **params):
    """node0 validates, watcher observes; `params` as tests.factories.genesis_dict's."""
    doc = genesis_dict(1, **params)
    [validator] = doc.pop("validators")
    validator.update(p2p=f"127.0.0.1:{base}", api=f"127.0.0.1:{base + 1}", role="validator")
    observer = {"name": "watcher", "org": validator["org"], "role": "observer",
                "public_key": key_for("validator", "watcher").public_key.hex(),
                "p2p": f"127.0.0.1:{base + 2}", "api": f"127.0.0.1:{base + 3}"}
    doc["nodes"] = [validator, observer]
    return parse_genesis(doc, json.dumps(doc).encode())


def _node(genesis, name: str, tmp_path: Path, store=None) -> Node:
    entry = genesis.node_by_name(name)
    config = NodeConfig(home=tmp_path, name=name, key_file=tmp_path / "unused.key",
                        data_dir=tmp_path / name, genesis=tmp_path / "genesis.json",
                        p2p_listen=entry.p2p, api_listen=entry.api)
    return Node(config, genesis, key_for("validator", name), store if store is not None else make_store(genesis))


async def test_an_observer_relays_a_tx_and_follows_the_validators_blocks(tmp_path):
    genesis = _genesis(free_port_base(4))
    validator, observer = _node(genesis, "node0", tmp_path), _node(genesis, "watcher", tmp_path)
    assert (validator.role, observer.role) == ("validator", "observer")
    assert observer.replica is None and observer.driver is None      # no consensus core
    account = key_for("account", "finance")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(validator.run)
            await nursery.start(observer.run)
            while not observer.peers.connected():
                await trio.sleep(0.01)
            txs = [make_tx(account, genesis, nonce=n, args={"key": f"k{n}", "value": n}) for n in range(3)]
            admitted = await observer.service.submit(txs)
            assert all(a.accepted for a in admitted), admitted
            settled = await observer.service.wait_settled([tx.id for tx in txs], 20)
            assert len(settled) == 3          # committed, and known to the observer
            assert validator.metrics.registry.get_sample_value("ynchain_committed_txs_total") == 3
            top = validator.chain.height
            while observer.chain.height < top:
                await trio.sleep(0.01)
            for height in range(1, top + 1):
                assert observer.store.get_block(height).hash == validator.store.get_block(height).hash
            status = observer.service.status()
            assert status["role"] == "observer" and status["peers"] == ["node0"]
            assert status["primary"] == "node0"           # the proposer of its last block
            assert observer.metrics.registry.get_sample_value("ynchain_node_role", {"role": "observer"}) == 1
            assert observer.metrics.registry.get_sample_value("ynchain_sync_blocks_total") == 0  # all pushed
            nursery.cancel_scope.cancel()
