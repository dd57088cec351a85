"""The SDK against a real node process: sign, submit, wait, query, refusals
and the block stream, with both clients."""

from __future__ import annotations

import pytest
import trio

import ynchain
from tests.node.conftest import make_cluster  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


async def test_both_clients_against_a_live_node(make_cluster):  # noqa: F811
    cluster = make_cluster(1)
    cluster.start_all()
    url = cluster.url(0)
    key = cluster.root / "accounts" / "finance.key"
    with trio.fail_after(60):
        await cluster.wait_until(lambda: cluster.status(0), 20, "node up")
        async with ynchain.AsyncClient(url, key=key) as node:
            status = await node.status()
            assert status.chain_id == cluster.testnet.genesis.chain_id and status.node == "node0"
            result = await node.call("kv", "put", {"key": "sdk", "value": 41}, timeout=20)
            assert result.committed and result.receipt.ok and result.height >= 1
            assert await node.state("kv", "sdk") == 41
            assert (await node.tx(result.tx_id)).height == result.height
            # The same signed tx again: the node refuses it as a duplicate.
            tx = await node.sign("kv", "put", {"key": "sdk2", "value": 1})
            await node.submit(tx, wait=True, timeout=20)
            with pytest.raises(ynchain.Duplicate):
                await node.submit(tx)
            with pytest.raises(ynchain.NotFound):
                await node.state("kv", "no-such-key")
            # A contract refusal is a committed tx with an error receipt.
            with pytest.raises(ynchain.TxFailed) as info:
                await node.call("kv", "put", {"key": "sdk"}, timeout=20)
            assert info.value.receipt.status != "ok"
            async for block in node.blocks(from_height=1):
                assert block.height == 1 and block.proposer == "node0"
                break

        def sync_side():
            with ynchain.Client(url, key=key) as node:
                done = node.call("kv", "put", {"key": "sdk3", "value": 3}, timeout=20)
                return done, node.state("kv", "sdk3")

        done, value = await trio.to_thread.run_sync(sync_side)
        assert done.committed and value == 3
