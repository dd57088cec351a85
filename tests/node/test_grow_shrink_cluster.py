"""Integration: the validator set grows 4 -> 5 -> 7 and shrinks 7 -> 4 by
governance on a running chain, with txs flowing the whole time and no
restart of anyone but the node taken offline on purpose.

Two new organisations (`bank`, `port`) and their nodes node4, node5, node6
are added as observers; node4 is promoted (4 -> 5), then node5 and node6
together (5 -> 7); then node1 and node5 are demoted and node6 removed
(7 -> 4: node0, node2, node3, node4).  node3 is offline through the last two
changes: restarted, it syncs through both boundaries (each certificate
checked against the set of its height) and votes in the final set.  At the
end every running node has the same block hash at every height, every
certificate is a quorum of valid signatures of the set in force at its
height (checked here against the keys `/config` lists, not only by the
nodes), and every acknowledged tx is committed exactly once.
"""

from __future__ import annotations

from collections import Counter

import pytest
import trio

from cli.ports import free_port_base
from ledger.block import proposal_digest
from ledger.certificate import CommitCertificate, Vote, quorum_size
from ledger.crypto import KeyPair

pytestmark = pytest.mark.slow

K, W = 4, 8           # a small window, so each boundary (first checkpoint >= h + W) comes soon
NEW_NODES = {"node4": "bank", "node5": "port", "node6": "port"}


async def _pass_together(cluster, changes: list[tuple[str, str, dict | None]]) -> int:
    """Governance carries out several changes at once: finance proposes them all
    in one batch, tax and agriculture approve them in the next (3 of 4).  The
    height of the last approving vote."""
    def args(action, target, params):
        return {"action": action, "target": target, **({"params": params} if params is not None else {})}
    proposed = await cluster.submit(0, [cluster.make_tx("finance", "gov", "propose", args(*c))
                                        for c in changes], wait=True)
    assert all(r["committed"] and r["receipt"]["status"] == "ok" for r in proposed), proposed
    ids = [r["receipt"]["result"]["id"] for r in proposed]
    votes = await cluster.submit(1, [cluster.make_tx(admin, "gov", "approve", {"id": pid})
                                     for pid in ids for admin in ("tax", "agriculture")], wait=True)
    assert all(r["committed"] and r["receipt"]["status"] == "ok" for r in votes), votes
    assert Counter(r["receipt"]["result"]["status"] for r in votes) == {"executed": len(ids), "open": len(ids)}, votes
    return max(r["height"] for r in votes)


def _set_at(epochs: list[dict], height: int) -> list[dict]:
    """The validators that decide `height`: epoch e covers (start_e, start_e+1]."""
    return [e for e in epochs if e["start"] < height][-1]["validators"]


async def test_the_validator_set_grows_4_5_7_and_shrinks_to_4_under_load(make_cluster):
    cluster = make_cluster(4, checkpoint_interval=K, window=W)
    chain_id = cluster.testnet.genesis.chain_id
    acknowledged: list[str] = []
    number = {f"node{i}": i for i in range(4)}       # node name -> its number in the cluster
    with trio.fail_after(150):
        cluster.start_all()
        await cluster.wait_ready()

        async def node_status(name: str):
            return await cluster.status(number[name])

        async def boundary_after(height: int) -> int:
            code, config = await cluster.get(0, "/config")
            boundary = config["epochs"][-1]["start"]
            assert boundary >= height + W and boundary % K == 0, (height, config["epochs"])
            return boundary

        async def voting(names: list[str], boundary: int):
            for name in names:
                s = await node_status(name)
                if s is None or s["role"] != "validator" or s["height"] <= boundary:
                    return False
            return True

        async def signed_by(name: str, above: int):
            top = (await cluster.status(0))["height"]
            for height in range(above + 1, top + 1):
                code, block = await cluster.get(0, f"/blocks/{height}")
                if name in {v["name"] for v in block["certificate"]["votes"]}:
                    return block
            return None

        async with trio.open_nursery() as nursery:
            stop = trio.Event()      # txs keep flowing through every change
            nursery.start_soon(cluster.load, 0, acknowledged, stop)
            nursery.start_soon(cluster.load, 2, acknowledged, stop)

            # New organisations and their nodes, added as observers and started from genesis.
            await _pass_together(cluster, [("add_org", "bank", {"display_name": "Dianchi Commercial Bank"}),
                                           ("add_org", "port", {"display_name": "Kunming Dry Port"})])
            base = free_port_base(2 * len(NEW_NODES))
            keys = {name: KeyPair.generate() for name in NEW_NODES}
            addresses = {name: (("127.0.0.1", base + 2 * i), ("127.0.0.1", base + 2 * i + 1))
                         for i, name in enumerate(NEW_NODES)}
            await _pass_together(cluster, [
                ("add_node", name, {"org": org, "public_key": keys[name].public_key.hex(),
                                    "p2p": "%s:%d" % addresses[name][0], "api": "%s:%d" % addresses[name][1]})
                for name, org in NEW_NODES.items()])
            for name in NEW_NODES:
                number[name] = cluster.add_node_home(name, keys[name], *addresses[name])
                cluster.start(number[name])

            async def following():
                for name in NEW_NODES:
                    s = await node_status(name)
                    if s is None or s["role"] != "observer" or len(s["peers"]) < 4:
                        return False
                return True
            await cluster.wait_until(following, 20, "node4-6 following as observers")

            # 4 -> 5
            b1 = await boundary_after(await _pass_together(cluster, [("promote_node", "node4", None)]))
            await cluster.wait_until(lambda: voting(["node4"], b1), 20, "node4 to vote after its boundary")
            await cluster.wait_until(lambda: signed_by("node4", b1), 20, "node4's signature in a certificate")

            # node3 offline through the next two changes.
            assert cluster.stop(3) == 0
            stopped_at = (await cluster.status(0))["height"]

            # 5 -> 7
            approved = await _pass_together(cluster, [("promote_node", "node5", None),
                                                      ("promote_node", "node6", None)])
            assert approved > stopped_at
            b2 = await boundary_after(approved)
            await cluster.wait_until(lambda: voting(["node5", "node6"], b2), 20,
                                     "node5 and node6 to vote after their boundary")

            # 7 -> 4
            b3 = await boundary_after(await _pass_together(cluster, [("demote_node", "node1", None),
                                                                     ("demote_node", "node5", None),
                                                                     ("remove_node", "node6", None)]))
            await cluster.wait_until(lambda: voting(["node0", "node2", "node4"], b3), 20,
                                     "the remaining validators past the last boundary")

            code, config = await cluster.get(0, "/config")
            epochs = config["epochs"]
            assert [[v["name"] for v in e["validators"]] for e in epochs] == [
                ["node0", "node1", "node2", "node3"],
                ["node0", "node1", "node2", "node3", "node4"],
                ["node0", "node1", "node2", "node3", "node4", "node5", "node6"],
                ["node0", "node2", "node3", "node4"]], epochs
            assert [e["start"] for e in epochs[1:]] == [b1, b2, b3]

            async def shrunk():
                validators = [await cluster.status(i) for i in (0, 2, 4)]
                demoted = [await node_status(name) for name in ("node1", "node5")]
                return (None not in validators + demoted
                        and all("node6" not in s["peers"] for s in validators)   # removed: cut off
                        and all(s["role"] == "observer" for s in demoted))
            await cluster.wait_until(shrunk, 15, "node6 disconnected, node1 and node5 observers")

            # node3 back: it syncs through both changes and votes in the final set.
            restarted_at = (await cluster.status(0))["height"]
            assert restarted_at > b3            # both changes took effect while it was down
            cluster.start(3)

            async def caught_up():
                s, top = await cluster.status(3), (await cluster.status(0))["height"]
                return s is not None and s["role"] == "validator" and s["height"] >= top - 1
            await cluster.wait_until(caught_up, 30, "node3 synced through both changes")
            await cluster.wait_until(lambda: signed_by("node3", restarted_at), 20,
                                     "node3's signature in a certificate of the final set")
            stop.set()

        assert "served a bad block" not in cluster.log_tail(3, 1000)      # every synced block passed
        live = [number[name] for name in ("node0", "node1", "node2", "node3", "node4", "node5")]
        await cluster.wait_committed(acknowledged)
        top = await cluster.wait_level(live)
        assert top > b3
        removed_top = (await node_status("node6"))["height"]     # cut off: it went as far as b3 at most
        assert b2 < removed_top <= b3, (removed_top, b2, b3)

        committed: Counter[str] = Counter()
        for height in range(1, top + 1):
            running = live + ([number["node6"]] if height <= removed_top else [])
            blocks = [(await cluster.get(i, f"/blocks/{height}"))[1] for i in running]
            assert len({b["hash"] for b in blocks}) == 1, (height, [b["hash"] for b in blocks])
            block, validators = blocks[0], _set_at(epochs, height)
            cert = block["certificate"]
            h = block["header"]
            digest = proposal_digest(h["chain_id"], height, h["view"], h["proposer"], h["timestamp_ms"],
                                     bytes.fromhex(h["tx_root"]))
            assert cert["digest"] == digest.hex() and cert["height"] == height, (height, cert)
            certificate = CommitCertificate(cert["view"], height, bytes.fromhex(cert["digest"]), tuple(
                Vote(v["validator"], bytes.fromhex(v["signature"])) for v in cert["votes"]))
            keys = [bytes.fromhex(v["public_key"]) for v in validators]
            assert certificate.problem(chain_id, keys) is None, (height, certificate.problem(chain_id, keys))
            names = [v["name"] for v in cert["votes"]]
            assert names == [validators[v["validator"]]["name"] for v in cert["votes"]], (height, names)
            assert len(names) >= quorum_size(len(validators))
            committed.update(block["txs"])
        print(f"\nboundaries {b1} (5), {b2} (7), {b3} (4); node3 offline {stopped_at}..{restarted_at}; "
              f"{len(acknowledged)} acknowledged txs; top {top}")
        assert acknowledged and all(committed[tx] == 1 for tx in acknowledged), [
            (tx, committed[tx]) for tx in acknowledged if committed[tx] != 1]
