"""Integration: governance makes an observer a validator on a running chain,
without a restart of anyone.

Four departments run validators; the `bank` organisation and its node4 are
added (node4 follows the chain as an observer), then node4 is promoted by 3
of the 4 departments while txs flow.  The change takes effect at the epoch
boundary the chain scheduled: node4's core, started passive when the
promotion committed, enters the new epoch and votes (its signature is in the
commit certificates, /status says validator).  node3 is offline through
the change: restarted, it syncs through it (each certificate checked against
the set of its height) and votes in the new set.  node4 restarted comes back
as a validator.  Then kill -9 of an original validator leaves the chain
committing (5 validators, f = 1).  At the end
every live node has the same hashes at every height, every certificate names
voters of the set in force at its height, and every acknowledged tx is
committed exactly once.
"""

from __future__ import annotations

from collections import Counter

import trio

from cli.ports import free_port_base
from ledger.crypto import KeyPair
from tests.node.test_gov_cluster import _gov
from tests.node.test_observer_cluster import add_bank_observer

NODE4 = 4
K, W = 4, 8           # a small window, so the boundary (first checkpoint >= h + W) comes soon
ORIGINAL = ["node0", "node1", "node2", "node3"]


async def test_an_observer_promoted_by_governance_votes_from_the_boundary(make_cluster):
    cluster = make_cluster(4, checkpoint_interval=K, window=W)
    key = KeyPair.generate()
    base = free_port_base(2)
    p2p, api = ("127.0.0.1", base), ("127.0.0.1", base + 1)
    acknowledged: list[str] = []
    with trio.fail_after(60):
        cluster.start_all()
        await cluster.wait_ready()
        assert await add_bank_observer(cluster, key, p2p, api) == NODE4

        async def following():
            s = await cluster.status(NODE4)
            return s is not None and s["role"] == "observer" and len(s["peers"]) == 4
        await cluster.wait_until(following, 20, "node4 following as an observer")

        async with trio.open_nursery() as nursery:
            stop = trio.Event()      # txs keep flowing through the change
            nursery.start_soon(cluster.load, 0, acknowledged, stop)
            nursery.start_soon(cluster.load, 2, acknowledged, stop)
            assert cluster.stop(3) == 0         # offline through the change

            proposal = await _gov(cluster, 0, "finance", "propose",
                                  {"action": "promote_node", "target": "node4"})
            await _gov(cluster, 1, "tax", "approve", {"id": proposal["id"]})
            [vote] = await cluster.submit(2, [cluster.make_tx("agriculture", "gov", "approve",
                                                              {"id": proposal["id"]})], wait=True)
            assert vote["committed"] and vote["receipt"]["result"]["status"] == "executed", vote
            approved_at = vote["height"]
            code, config = await cluster.get(0, "/config")
            boundary = config["epochs"][-1]["start"]
            assert boundary >= approved_at + W and boundary % K == 0, (approved_at, config["epochs"])
            assert [v["name"] for v in config["epochs"][-1]["validators"]] == [*ORIGINAL, "node4"]

            async def voting():
                s = await cluster.status(NODE4)
                return s is not None and s["role"] == "validator" and s["height"] > boundary
            await cluster.wait_until(voting, 20, "node4 to vote after the boundary")

            async def signed_by_node4():
                top = (await cluster.status(0))["height"]
                for height in range(boundary + 1, top + 1):
                    code, block = await cluster.get(0, f"/blocks/{height}")
                    if "node4" in {v["name"] for v in block["certificate"]["votes"]}:
                        return block
                return None
            first = await cluster.wait_until(signed_by_node4, 20, "node4's signature in a certificate")
            code, approval = await cluster.get(0, f"/blocks/{approved_at}")
            print(f"\napproval committed at height {approved_at}, boundary {boundary}, node4's first vote "
                  f"in block {first['height']}: {first['header']['timestamp_ms'] - approval['header']['timestamp_ms']}"
                  " ms of block time")

            # Back after the change: it syncs through it and votes in the new set.
            cluster.start(3)

            async def caught_up(node: int):
                s, top = await cluster.status(node), (await cluster.status(0))["height"]
                return s is not None and s["role"] == "validator" and s["height"] >= top - 1
            await cluster.wait_until(lambda: caught_up(3), 20, "node3 synced and voting in the new set")
            # node4 restarted is a validator from the start (the committed configuration says so).
            assert cluster.stop(NODE4) == 0
            cluster.start(NODE4)
            await cluster.wait_until(lambda: caught_up(NODE4), 20, "node4 back as a validator")

            # kill -9 of an original validator: 4 of 5 still make a quorum.
            cluster.kill(1)
            before = (await cluster.status(0))["height"]
            [after] = await cluster.submit(NODE4, [cluster.make_tx("tax", "kv", "put",
                                                                   {"key": "after-kill", "value": 1})],
                                           wait=True)
            assert after["committed"] and after["height"] > before, after
            acknowledged.append(after["id"])
            stop.set()

        live = [0, 2, 3, NODE4]
        assert "served a bad block" not in cluster.log_tail(3, 400)      # every synced block passed
        await cluster.wait_committed(acknowledged)
        top = await cluster.wait_level(live)
        committed: Counter[str] = Counter()
        for height in range(1, top + 1):
            blocks = [(await cluster.get(i, f"/blocks/{height}"))[1] for i in live]
            assert len({b["hash"] for b in blocks}) == 1, (height, [b["hash"] for b in blocks])
            names = {v["name"] for v in blocks[0]["certificate"]["votes"]}
            expected = set(ORIGINAL) | ({"node4"} if height > boundary else set())
            assert None not in names and names <= expected, (height, names)
            assert len(names) >= (3 if height <= boundary else 4), (height, names)
            committed.update(blocks[0]["txs"])
        assert acknowledged and all(committed[tx] == 1 for tx in acknowledged), [
            (tx, committed[tx]) for tx in acknowledged if committed[tx] != 1]
