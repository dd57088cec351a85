"""Integration: four real node processes on 127.0.0.1 (issue: the node daemon).

Each test is bounded by trio.fail_after; the `make_cluster` fixture kills every
process it started.  Waiting is condition-based (poll the HTTP API until a
predicate holds, with a deadline), never a bare sleep.
"""

from __future__ import annotations

import os
import socket
import struct
import time

import trio

from ledger.crypto import KeyPair, load_key
from node.core import peer_messages
from node.transport.handshake import handshake
from node.transport.peers import Peer, PeerManager
from node.transport.wire import HandshakeError


async def _all_same_chain(cluster, nodes, upto: int) -> None:
    """Every node in `nodes` has the same block hash at every height 1..upto,
    and block times never run backwards (also across primaries)."""
    previous_ts = 0
    for height in range(1, upto + 1):
        hashes = set()
        for i in nodes:
            code, block = await cluster.get(i, f"/blocks/{height}")
            assert code == 200, (i, height, block)
            hashes.add(block["hash"])
        assert len(hashes) == 1, f"nodes disagree at height {height}: {hashes}"
        assert block["header"]["timestamp_ms"] >= previous_ts, f"block time went back at {height}"
        previous_ts = block["header"]["timestamp_ms"]


async def _committed_everywhere(cluster, nodes, tx_ids) -> None:
    for i in nodes:
        for tx_id in tx_ids:
            code, body = await cluster.get(i, f"/txs/{tx_id}")
            assert code == 200 and body["status"] == "committed", (i, tx_id, body)


async def test_four_nodes_commit_txs_sent_to_different_nodes(make_cluster):
    cluster = make_cluster(4)
    with trio.fail_after(90):
        cluster.start_all()
        await cluster.wait_ready()
        ids = []
        for i, account in enumerate(["finance", "tax", "agriculture", "tourism"]):
            tx = cluster.make_tx(account, "kv", "put", {"key": f"k-{account}", "value": i})
            [result] = await cluster.submit(i, [tx], wait=True)
            assert result["accepted"] and result["committed"], result
            assert result["receipt"]["status"] == "ok", result
            ids.append(result["id"])
        top = max((await cluster.heights()).values())
        await cluster.wait_until(
            lambda: _heights_at_least(cluster, range(4), top), 30, f"all nodes at height {top}")
        await _all_same_chain(cluster, range(4), top)
        await _committed_everywhere(cluster, range(4), ids)
        code, state = await cluster.get(3, "/state/kv/k-finance")
        assert code == 200 and state["value"] == 0


async def _heights_at_least(cluster, nodes, height):
    heights = await cluster.heights(list(nodes))
    return all(h is not None and h >= height for h in heights.values())


async def test_killing_the_primary_changes_view_and_commits_continue(make_cluster):
    cluster = make_cluster(4)
    with trio.fail_after(120):
        cluster.start_all()
        await cluster.wait_ready()
        [first] = await cluster.submit(1, [cluster.make_tx("finance", "kv", "put",
                                                           {"key": "before", "value": 1})], wait=True)
        assert first["committed"], first
        status = await cluster.status(1)
        primary = int(status["primary"].removeprefix("node"))
        cluster.kill(primary)
        survivors = [i for i in range(4) if i != primary]
        started = time.monotonic()
        tx = cluster.make_tx("tax", "kv", "put", {"key": "after", "value": 2})
        [result] = await cluster.submit(survivors[0], [tx], wait=True, timeout=45)
        took = time.monotonic() - started
        assert result["committed"], result
        new_status = await cluster.status(survivors[0])
        assert new_status["view"] > status["view"] and new_status["primary"] != f"node{primary}"
        await _all_same_chain(cluster, survivors, result["height"])
        # A figure for the notes (the view-change timeout is 2 s), not an assertion on speed.
        print(f"view change + commit after killing the primary: {took:.2f}s")


async def test_a_frozen_primary_rejoins_the_new_view_when_it_wakes(make_cluster):
    cluster = make_cluster(4)
    with trio.fail_after(120):
        cluster.start_all()
        await cluster.wait_ready()
        [r] = await cluster.submit(0, [cluster.make_tx("finance", "kv", "put", {"key": "f0", "value": 0})],
                                   wait=True)
        assert r["committed"], r
        primary = int((await cluster.status(1))["primary"].removeprefix("node"))
        others = [i for i in range(4) if i != primary]
        cluster.freeze(primary)                     # cut off without closing a socket
        for k in range(3):
            [r] = await cluster.submit(others[k % 3], [cluster.make_tx(
                "tax", "kv", "put", {"key": f"f{k + 1}", "value": k})], wait=True, timeout=45)
            assert r["committed"], r
        cluster.thaw(primary)
        # The old primary must learn the new view and the blocks it missed, then
        # accept work itself: a tx sent to it commits.
        [r] = await cluster.submit(primary, [cluster.make_tx(
            "agriculture", "kv", "put", {"key": "after-thaw", "value": 1})], wait=True, timeout=45)
        assert r["committed"], r

        async def same_view_and_height():
            states = [await cluster.status(i) for i in range(4)]
            return (all(states) and len({s["view"] for s in states}) == 1
                    and len({s["height"] for s in states}) == 1)
        await cluster.wait_until(same_view_and_height, 30, "all nodes in one view at one height")
        await _all_same_chain(cluster, range(4), r["height"])


async def test_a_byzantine_validator_cannot_disturb_the_others(make_cluster):
    """node3's key in the hands of an attacker that speaks the protocol but sends
    nonsense of every message type: the three honest nodes keep committing."""
    cluster = make_cluster(4)
    genesis = cluster.testnet.genesis
    with trio.fail_after(90):
        for i in range(3):
            cluster.start(i)
        inbound_send, inbound_recv = trio.open_memory_channel(64)
        attacker = PeerManager(load_key(cluster.testnet.nodes[3].home / "node.key"), genesis.chain_id,
                               genesis.hash, {v.public_key: Peer(v.name, v.p2p) for v in genesis.validators},
                               inbound_send)
        async with trio.open_nursery() as nursery:
            await nursery.start(attacker.run, *cluster.testnet.nodes[3].p2p)
            nursery.start_soon(_drain, inbound_recv)

            async def meshed():   # the honest nodes are connected to each other and to "node3"
                states = [await cluster.status(i) for i in range(3)]
                return all(s and len(s["peers"]) == 3 for s in states)
            await cluster.wait_until(meshed, 30, "the honest nodes to connect to the attacker")
            honest = cluster.make_tx("finance", "kv", "put", {"key": "honest", "value": 1})
            forged = type(honest)(*cluster.make_tx("tax", "kv", "put", {"key": "forged", "value": 2})
                                  .to_record()[:7], bytes(64))
            nonsense = [
                (peer_messages.CONSENSUS, os.urandom(200)), (peer_messages.CONSENSUS, 12345),
                (peer_messages.TXS, [forged.to_record(), ["not", "a", "tx"], 7]), (peer_messages.TXS, "x"),
                (peer_messages.STATUS, [2**63, os.urandom(32)]),          # claims to be far ahead
                (peer_messages.STATUS, ["high", b""]),
                (peer_messages.GET_BLOCKS, [5, 1]), (peer_messages.GET_BLOCKS, [1, 2**40]),
                (peer_messages.BLOCKS, [[os.urandom(100), [0, 1, bytes(32), []]]]),  # unasked, garbage
                (999, None),
            ]
            for _ in range(3):
                for msg_type, payload in nonsense:
                    attacker.broadcast(msg_type, payload)
                [r] = await cluster.submit(0, [cluster.make_tx("agriculture", "kv", "put",
                                                               {"key": f"k{_}", "value": _})],
                                           wait=True, timeout=30)
                assert r["committed"], r
            code, body = await cluster.get(1, f"/txs/{forged.id.hex()}")
            assert code == 404                              # the forged tx went nowhere
            assert all(cluster.alive(i) for i in range(3))
            _, text = await trio.to_thread.run_sync(lambda: _metrics(cluster, 0))
            for kind in ("consensus", "txs", "status", "get_blocks", "blocks", "unknown type"):
                assert f'ynchain_consensus_faults_total{{reason="malformed {kind}"}}' in text, kind
            nursery.cancel_scope.cancel()


async def _drain(channel) -> None:
    async for _ in channel:
        pass


async def _load(cluster, nodes, acked: list, stop: trio.Event, prefix: str):
    n = 0
    while not stop.is_set():
        node = nodes[n % len(nodes)]
        txs = [cluster.make_tx(["finance", "tax"][k % 2], "kv", "put",
                               {"key": f"{prefix}-{n}-{k}", "value": k}) for k in range(20)]
        n += 1
        try:
            results = await cluster.submit(node, txs, wait=True, timeout=20)
        except OSError:            # a connection or read timeout: back off, try the next node
            await trio.sleep(0.2)
            continue
        acked.extend(r["id"] for r in results if r.get("committed"))


async def test_restarted_node_catches_up_under_load_and_loses_nothing(make_cluster):
    cluster = make_cluster(4)
    with trio.fail_after(180):
        cluster.start_all()
        await cluster.wait_ready()
        status = await cluster.status(0)
        victim = (int(status["primary"].removeprefix("node")) + 1) % 4
        others = [i for i in range(4) if i != victim]
        acked: list[str] = []
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_load, cluster, others, acked, stop, "load")
            await cluster.wait_until(lambda: _acked_at_least(acked, 300), 60, "300 acked txs")
            cluster.kill(victim)
            mark = len(acked)
            await cluster.wait_until(lambda: _acked_at_least(acked, mark + 500), 60,
                                     "500 more txs committed without the victim")
            cluster.start(victim)
            h0 = (await cluster.status(others[0]))["height"]
            first = await cluster.wait_until(lambda: cluster.status(victim), 30, f"node{victim} to answer")
            t0 = time.monotonic()

            async def caught_up():
                mine = await cluster.status(victim)
                theirs = await cluster.status(others[0])
                return mine and theirs and mine["height"] >= theirs["height"] - 2 and mine["height"] >= h0
            await cluster.wait_until(caught_up, 60, f"node{victim} to catch up while under load")
            synced = (await cluster.status(victim))["height"] - first["height"]
            took = time.monotonic() - t0
            print(f"restarted node caught up {synced} blocks in {took:.2f}s under load "
                  f"(~{synced / max(took, 1e-3):.0f} blocks/s, the others kept committing)")
            stop.set()
        top = max(h for h in (await cluster.heights()).values())
        await cluster.wait_until(lambda: _heights_at_least(cluster, range(4), top), 30, "all at top")
        await _all_same_chain(cluster, range(4), top)   # so every node holds the same txs
        await _committed_everywhere(cluster, range(4), acked[::max(1, len(acked) // 50)])
        # exactly once: no tx id appears twice in the chain, and every acked one is there
        seen: set[str] = set()
        for height in range(1, top + 1):
            _, block = await cluster.get(victim, f"/blocks/{height}")
            for tx_id in block["txs"]:
                assert tx_id not in seen, f"tx {tx_id} committed twice"
                seen.add(tx_id)
        assert set(acked) <= seen


async def _acked_at_least(acked, n):
    return len(acked) >= n


async def test_kill_all_and_restart_continues_the_chain(make_cluster):
    cluster = make_cluster(4)
    with trio.fail_after(120):
        cluster.start_all()
        await cluster.wait_ready()
        for k in range(3):
            [r] = await cluster.submit(k, [cluster.make_tx("finance", "kv", "put",
                                                           {"key": f"a{k}", "value": k})], wait=True)
            assert r["committed"], r
        before = await cluster.heights()
        for i in range(4):
            cluster.kill(i)
        cluster.start_all()
        await cluster.wait_ready()
        after = await cluster.heights()
        assert after == before, "restart lost or invented blocks"
        [r] = await cluster.submit(2, [cluster.make_tx("tax", "kv", "put", {"key": "b", "value": 9})],
                                   wait=True, timeout=45)
        assert r["committed"] and r["height"] > max(before.values()), r
        top = r["height"]
        await cluster.wait_until(lambda: _heights_at_least(cluster, range(4), top), 30, "all at top")
        await _all_same_chain(cluster, range(4), top)
        for i in range(4):
            # No correct node ever saw another sign two different votes for one slot.
            _, text = await trio.to_thread.run_sync(lambda: _metrics(cluster, i))
            faults = [line for line in text.splitlines()
                      if line.startswith("ynchain_consensus_faults_total{")]
            assert not [f for f in faults if "equivocated" in f or 'reason="two ' in f], faults


async def test_sigterm_stops_a_node_cleanly_and_it_resumes(make_cluster):
    cluster = make_cluster(4)
    with trio.fail_after(90):
        cluster.start_all()
        await cluster.wait_ready()
        [r] = await cluster.submit(0, [cluster.make_tx("finance", "kv", "put", {"key": "t", "value": 1})],
                                   wait=True)
        assert r["committed"], r
        height = (await cluster.status(3))["height"]
        started = time.monotonic()
        assert await trio.to_thread.run_sync(cluster.stop, 3) == 0
        assert time.monotonic() - started < 10
        assert "stopped cleanly at height" in cluster.log_tail(3, 5)
        cluster.start(3)
        await cluster.wait_ready()
        assert (await cluster.status(3))["height"] >= height


async def test_empty_blocks_at_the_configured_interval(make_cluster):
    cluster = make_cluster(4, empty_blocks_interval_ms=200)
    with trio.fail_after(60):
        cluster.start_all()
        await cluster.wait_ready()
        # With no transactions at all, the chain still advances (a heartbeat).
        await cluster.wait_until(lambda: _heights_at_least(cluster, range(4), 5), 30, "5 empty blocks")
        await _all_same_chain(cluster, range(4), 5)
        code, block = await cluster.get(0, "/blocks/3")
        assert code == 200 and block["txs"] == [] and block["header"]["proposer"] == "node0"
        _, later = await cluster.get(0, "/blocks/5")
        # ... but no faster than the interval: two blocks take at least 2 x 200 ms.
        assert later["header"]["timestamp_ms"] - block["header"]["timestamp_ms"] >= 380


def _metrics(cluster, i):
    import urllib.request
    with urllib.request.urlopen(cluster.url(i) + "/metrics", timeout=5) as resp:
        return resp.status, resp.read().decode()


async def test_bad_input_does_not_disturb_the_network(make_cluster):
    cluster = make_cluster(4)
    with trio.fail_after(90):
        cluster.start_all()
        await cluster.wait_ready()
        target = cluster.testnet.nodes[1]
        host, port = target.p2p

        def raw(data: bytes) -> None:
            with socket.create_connection((host, port), timeout=5) as s:
                s.sendall(data)
                s.settimeout(5)
                try:
                    s.recv(1024)
                except OSError:
                    pass
        await trio.to_thread.run_sync(raw, os.urandom(4096))
        await trio.to_thread.run_sync(raw, struct.pack(">I", 0xFFFFFFF0) + b"x" * 100)
        stream = await trio.open_tcp_stream(host, port)
        try:
            await handshake(stream, initiator=True, key=KeyPair.generate(),
                            chain_id=cluster.testnet.genesis.chain_id,
                            genesis_hash=cluster.testnet.genesis.hash, is_allowed=lambda k: True)
            raise AssertionError("a handshake with an unknown key was accepted")
        except HandshakeError:
            pass
        for method, path, body in [("POST", "/txs", None), ("POST", "/txs", {"txs": "nope"}),
                                   ("GET", "/blocks/abc", None), ("GET", "/txs/1234", None),
                                   ("GET", "/nowhere", None), ("DELETE", "/status", None)]:
            code, answer = await trio.to_thread.run_sync(
                lambda: cluster.request(1, method, path, body))
            assert 400 <= code < 500 and "error" in answer, (method, path, code, answer)
        # A malformed element in a well-formed batch is refused on its own.
        good = cluster.make_tx("tax", "kv", "put", {"key": "batch", "value": 1})
        code, answer = await trio.to_thread.run_sync(
            lambda: cluster.request(1, "POST", "/txs", {"txs": ["zz", good.encode().hex()]}))
        assert code == 200 and [r["accepted"] for r in answer["results"]] == [False, True], answer
        assert answer["results"][0]["reason"] == "malformed"
        assert all(cluster.alive(i) for i in range(4))
        [r] = await cluster.submit(1, [cluster.make_tx("finance", "kv", "put", {"key": "ok", "value": 1})],
                                   wait=True)
        assert r["committed"], r
