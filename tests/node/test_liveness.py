"""Integration (real node processes): what one client can do to the chain's
liveness (issue 8, items 1-3).  Each test is the issue's scenario, bounded by
trio.fail_after; waiting is condition-based, never a bare sleep.
"""

from __future__ import annotations

import time

import trio

from tests.node.cluster import Cluster

ACCOUNTS = ("finance", "tax", "agriculture", "tourism")


def _txs(cluster: Cluster, n: int, prefix: str, valid_until: int = 900):
    return [cluster.make_tx(ACCOUNTS[k % 4], "kv", "put", {"key": f"{prefix}-{k}", "value": k},
                            valid_until=valid_until) for k in range(n)]


async def _chain_ids(cluster: Cluster, node: int, top: int) -> list[str]:
    ids = []
    for height in range(1, top + 1):
        code, block = await cluster.get(node, f"/blocks/{height}")
        assert code == 200, (height, block)
        ids += block["txs"]
    return ids


async def _settled(cluster: Cluster, nodes) -> dict | None:
    """All nodes at one height and view with empty mempools: that state, else None."""
    states = [await cluster.status(i) for i in nodes]
    if not all(states):
        return None
    if len({(s["height"], s["last_block_hash"], s["view"]) for s in states}) != 1:
        return None
    return states[0] if all(s["mempool"] == 0 for s in states) else None


async def test_txs_that_expire_while_waiting_do_not_halt_the_chain(make_cluster):
    # One request with txs valid only for the next block, more than a block holds:
    # the primary used to propose the leftovers for the block after, every backup
    # refused them as expired, and each new primary proposed them again (view 0 -> 6).
    cluster = make_cluster(4, max_block_txs=500)
    with trio.fail_after(120):
        cluster.start_all()
        await cluster.wait_ready()
        height = (await cluster.status(1))["height"]
        batch = _txs(cluster, 3000, "short", valid_until=height + 1)
        results = await cluster.submit(1, batch, wait=True, timeout=30)
        # Admission runs in chunks: once block height+1 commits, the rest of the
        # batch is refused at the door as expired.
        assert {r["reason"] for r in results if not r["accepted"]} <= {"expired"}
        by_status: dict[str, list[str]] = {}
        for r in results:
            if r["accepted"]:
                by_status.setdefault(r["status"], []).append(r["id"])
        # Each accepted one either made block height+1 or was dropped as expired
        # (the case that halted the chain): none left waiting.
        assert set(by_status) == {"committed", "expired"}, {k: len(v) for k, v in by_status.items()}
        assert all(r["height"] == height + 1 for r in results if r.get("committed"))
        code, body = await cluster.get(1, f"/txs/{by_status['expired'][0]}")
        assert code == 200 and body == {"id": by_status["expired"][0], "status": "expired"}

        # The chain keeps committing, in the same view, with nothing left behind.
        [after] = await cluster.submit(2, _txs(cluster, 1, "after"), wait=True, timeout=30)
        assert after["committed"], after
        state = await cluster.wait_until(lambda: _settled(cluster, range(4)), 30, "all nodes settled")
        assert state["view"] == 0
        ids = await _chain_ids(cluster, 0, state["height"])
        assert sorted(ids) == sorted(by_status["committed"] + [after["id"]])


async def test_txs_held_by_one_node_all_commit_without_a_lonely_view_change(make_cluster):
    # node1 accepts a flood its peers' small mempools drop.  It used to hold them
    # for good (relayed once), start view changes nobody joined, and fall behind
    # (view 1 -> 7 while the others stayed at 0).  Now it hands them to the
    # primary until they commit.
    cluster = make_cluster(4)
    for i in (0, 2, 3):
        cluster.set_mempool_limit(i, 300)
    with trio.fail_after(150):
        cluster.start_all()
        await cluster.wait_ready()
        flood = _txs(cluster, 1500, "flood")
        views_seen: list[dict] = []
        results: list[dict] = []

        async def watch_views(done: trio.Event) -> None:
            while not done.is_set():
                views_seen.append(await cluster.views())
                await trio.sleep(0.25)

        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_views, done)
            results = await cluster.submit(1, flood, wait=True, timeout=60)
            done.set()
        assert all(r["accepted"] for r in results)
        pending = [r["id"] for r in results if not r["committed"]]
        assert not pending, f"{len(pending)} of {len(results)} accepted txs did not commit"
        state = await cluster.wait_until(lambda: _settled(cluster, range(4)), 30, "all nodes settled")
        # Nobody ran a view change of its own: every node is still in the first view.
        assert state["view"] == 0
        assert all(v in (0, None) for views in views_seen for v in views.values()), views_seen
        # Nothing lost, nothing twice.
        ids = await _chain_ids(cluster, 2, state["height"])
        assert len(ids) == len(set(ids)) == len(flood)
        assert set(ids) == {r["id"] for r in results}


async def test_a_large_wait_true_request_does_not_freeze_the_node(make_cluster):
    # 10,000 ids with wait=true used to take 87 s on the event loop (a block
    # decoded per id): /status timed out and every peer dropped the node.
    cluster = make_cluster(4)
    with trio.fail_after(180):
        cluster.start_all()
        await cluster.wait_ready()
        batch = _txs(cluster, 10_000, "big")
        latencies: list[float] = []
        peer_counts: list[int] = []
        results: list[dict] = []

        async def probe(done: trio.Event) -> None:
            while not done.is_set():
                started = time.monotonic()
                # A status that does not answer within 5 s fails the test (None).
                state = await trio.to_thread.run_sync(
                    lambda: cluster.request(0, "GET", "/status", timeout=5)[1])
                latencies.append(time.monotonic() - started)
                peer_counts.append(len(state["peers"]))
                await trio.sleep(0.1)

        async def post(done: trio.Event) -> None:
            results.extend(await cluster.submit(0, batch, wait=True, timeout=60))
            done.set()

        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(probe, done)
            nursery.start_soon(post, done)
        assert len(results) == 10_000 and all(r["committed"] for r in results)
        assert len(latencies) >= 5
        # The node kept its peer sessions throughout ...
        assert min(peer_counts) == 3, peer_counts
        # ... and kept answering (the old code did not answer for 80 s; the bound is
        # loose on purpose: this is about a frozen loop, not speed).
        assert max(latencies) < 5.0
        print(f"/status during a 10,000-tx wait=true request: {len(latencies)} polls, "
              f"max {max(latencies):.3f}s, median {sorted(latencies)[len(latencies) // 2]:.3f}s")
