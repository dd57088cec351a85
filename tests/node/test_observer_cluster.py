"""Integration: an observer joins a running 4-validator chain by governance and
leaves it the same way, without a restart of anyone.

The `bank` organisation and its node4 are added by 3 of the 4 departments;
node4 starts from genesis (it learns of its own addition from the chain),
syncs, serves the API as an observer and relays a client's tx to the
validators, which commits and reaches node4 pushed with its certificate.
Then governance removes node4: the validators send it the block that removed
it, disconnect it and refuse it from then on (node4's key is smaller than some
validator's, so that one would accept its dial: the test tries, and is refused).
"""

from __future__ import annotations

import re

import pytest
import trio

from cli.ports import free_port_base
from ledger.crypto import KeyPair
from node.transport.handshake import handshake
from node.transport.peers import dials
from node.transport.wire import HandshakeError
from tests.node.test_gov_cluster import _passed

OBSERVER = 4


def _dialling_key(validator_keys: list[bytes]) -> KeyPair:
    """A key smaller than some validator's: node4 dials that one (the smaller
    key dials), so after its removal it keeps knocking and is refused."""
    while True:
        key = KeyPair.generate()
        if key.public_key < max(validator_keys):
            return key


async def add_bank_observer(cluster, key: KeyPair, p2p: tuple[str, int], api: tuple[str, int]) -> int:
    """Governance adds the `bank` organisation and its node4 (an observer);
    node4 is started from genesis.  Its number in the cluster."""
    await _passed(cluster, "add_org", "bank", {"display_name": "Dianchi Commercial Bank"})
    await _passed(cluster, "add_node", "node4", {"org": "bank", "public_key": key.public_key.hex(),
                                                 "p2p": f"{p2p[0]}:{p2p[1]}", "api": f"{api[0]}:{api[1]}"})
    node4 = cluster.add_node_home("node4", key, p2p, api)
    cluster.start(node4)
    return node4


async def _async(predicate):
    return predicate()


def _metric(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def _metrics(cluster, i: int) -> str:
    def fetch() -> str:
        import urllib.request
        with urllib.request.urlopen(cluster.url(i) + "/metrics", timeout=5) as resp:
            return resp.read().decode()
    return await trio.to_thread.run_sync(fetch)


async def test_an_observer_joins_syncs_relays_and_is_refused_once_removed(make_cluster):
    cluster = make_cluster(4)
    validator_keys = [cluster.testnet.genesis.validator_keys[i] for i in range(4)]
    key = _dialling_key(validator_keys)
    base = free_port_base(2)
    p2p, api = ("127.0.0.1", base), ("127.0.0.1", base + 1)
    with trio.fail_after(90):
        cluster.start_all()
        await cluster.wait_ready()
        node4 = await add_bank_observer(cluster, key, p2p, api)
        assert node4 == OBSERVER

        async def synced():
            heights = await cluster.heights([0, 1, 2, 3, node4])
            s = await cluster.status(node4)
            return (s is not None and len(s["peers"]) == 4 and heights[node4] is not None
                    and heights[node4] >= max(h for h in heights.values() if h is not None))
        await cluster.wait_until(synced, 30, "node4 connected to the 4 validators and synced")
        status = await cluster.status(node4)
        assert status["role"] == "observer" and status["node"] == "node4", status
        code, config = await cluster.get(node4, "/config")
        assert code == 200
        assert {n["name"]: n["role"] for n in config["nodes"]}["node4"] == "observer"
        metrics = await _metrics(cluster, node4)
        assert _metric(metrics, "ynchain_node_role", 'role="observer"') == 1.0
        assert _metric(metrics, "ynchain_node_role", 'role="validator"') == 0.0
        for i in range(4):
            assert "node4" in (await cluster.status(i))["peers"]

        # A client's tx sent to the observer is relayed, committed, and known there.
        tx = cluster.make_tx("tourism", "kv", "put", {"key": "via-observer", "value": 4})
        [result] = await cluster.submit(node4, [tx], wait=True)
        assert result["accepted"] and result["committed"], result
        height = result["height"]
        code, block = await cluster.get(node4, f"/blocks/{height}")
        assert code == 200
        code, same = await cluster.get(0, f"/blocks/{height}")
        assert same["hash"] == block["hash"]
        code, state = await cluster.get(node4, "/state/kv/via-observer")
        assert code == 200 and state["value"] == 4
        # It never votes: no certificate holds a vote of a key outside the validator set.
        assert all(v["validator"] < 4 for v in block["certificate"]["votes"])

        # Removed by governance: every validator drops it and refuses it afterwards.
        await _passed(cluster, "remove_node", "node4")

        async def dropped():
            for i in range(4):
                if "node4" in (await cluster.status(i))["peers"]:
                    return False
            return (await cluster.status(node4))["peers"] == []
        await cluster.wait_until(dropped, 15, "node4 disconnected by every validator")
        # It got the block that removed it before it was cut off, and stopped knocking.
        await cluster.wait_until(
            lambda: _async(lambda: "this node's key left the configuration" in cluster.log_tail(node4, 200)),
            15, "node4 to learn of its removal")
        genesis = cluster.testnet.genesis
        for v in genesis.validators:
            if dials(key.public_key, v.public_key):     # v accepts node4's dials, if allowed
                with pytest.raises(HandshakeError):
                    stream = await trio.open_tcp_stream(*v.p2p)
                    await handshake(stream, initiator=True, key=key, chain_id=genesis.chain_id,
                                    genesis_hash=genesis.hash, is_allowed=lambda k: True)
        assert (await cluster.status(node4))["peers"] == []
        # The chain goes on without it.
        [after] = await cluster.submit(1, [cluster.make_tx("tax", "kv", "put", {"key": "after", "value": 1})],
                                       wait=True)
        assert after["committed"], after
