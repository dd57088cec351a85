"""Integration: governance on four real node processes.  A `bank`
organisation and an account of it are added by the admins of 3 of the 4
departments (proposals sent to different nodes); the account's tx then
commits; once revoked, its txs are refused with the reason.  Every node ends
with the same configuration and the same blocks.  (Validator-set changes
take effect at epoch boundaries in consensus: tested where that lands.)"""

from __future__ import annotations

import trio

from ledger.crypto import KeyPair
from ledger.tx import Transaction


async def _gov(cluster, node: int, admin: str, method: str, args: dict) -> dict:
    [result] = await cluster.submit(node, [cluster.make_tx(admin, "gov", method, args)], wait=True)
    assert result["accepted"] and result["committed"], result
    assert result["receipt"]["status"] == "ok", result
    return result["receipt"]["result"]


async def _passed(cluster, action: str, target: str, params: dict | None = None) -> dict:
    args = {"action": action, "target": target, **({"params": params} if params is not None else {})}
    proposal = await _gov(cluster, 0, "finance", "propose", args)
    assert proposal["status"] == "open" and proposal["needed"] == 3, proposal
    assert (await _gov(cluster, 1, "tax", "approve", {"id": proposal["id"]}))["status"] == "open"
    done = await _gov(cluster, 2, "agriculture", "approve", {"id": proposal["id"]})
    assert done["status"] == "executed", done
    return done


async def test_a_bank_joins_by_three_of_four_votes_and_its_revoked_account_is_refused(make_cluster):
    cluster = make_cluster(4)
    clerk = KeyPair.generate()
    with trio.fail_after(120):
        cluster.start_all()
        await cluster.wait_ready()
        await _passed(cluster, "add_org", "bank", {"display_name": "Dianchi Commercial Bank"})
        await _passed(cluster, "add_account", "bank-clerk",
                      {"org": "bank", "public_key": clerk.public_key.hex(), "roles": ["writer"]})

        def clerk_tx(nonce: int) -> Transaction:
            return Transaction.create(clerk, cluster.testnet.genesis.chain_id, nonce, 900, "kv", "put",
                                      {"key": "bank/rate", "value": nonce})
        [result] = await cluster.submit(3, [clerk_tx(1)], wait=True)
        assert result["committed"] and result["receipt"]["status"] == "ok", result

        await _passed(cluster, "revoke_account", "bank-clerk")
        for node in range(4):          # every node's mempool admits under the configuration in force
            [refused] = await cluster.submit(node, [clerk_tx(10 + node)])
            assert (refused["accepted"], refused["reason"]) == (False, "account_revoked"), (node, refused)

        heights = await cluster.heights()
        top = max(heights.values())

        async def caught_up():
            return all(h is not None and h >= top for h in (await cluster.heights()).values())
        await cluster.wait_until(caught_up, 30, f"every node at height {top}")
        configs = []
        for node in range(4):
            code, config = await cluster.get(node, f"/config?height={top}")
            assert code == 200, config
            configs.append(config)
            code, block = await cluster.get(node, f"/blocks/{top}")
            assert code == 200
            configs[-1]["_state_root"] = block["header"]["state_root"]
        assert all(c == configs[0] for c in configs)
        accounts = {a["name"]: a for a in configs[0]["accounts"]}
        assert accounts["bank-clerk"]["status"] == "revoked" and accounts["bank-clerk"]["org"] == "bank"
        assert "bank" in [o["name"] for o in configs[0]["organisations"]]
        code, proposals = await cluster.get(3, "/gov/proposals")
        assert [p["status"] for p in proposals["proposals"]] == ["executed"] * 3
        code, before = await cluster.get(1, "/config?height=1")
        assert "bank" not in [o["name"] for o in before["organisations"]]
