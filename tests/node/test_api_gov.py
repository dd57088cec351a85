"""GET /config[?height=H], /gov/proposals and /gov/proposals/{id} against a
fake node whose state comes from real governance calls; every answer is
checked against /openapi.json."""

from __future__ import annotations

import pytest
import trio

from tests.ledger.gov_world import GovWorld, new_key
from tests.node.fake_node import FakeNode
from tests.node.test_api import Api, check, check_error, start


@pytest.fixture
async def api(nursery) -> Api:
    w = GovWorld()
    w.passed("add_org", "bank", {"display_name": "Dianchi Commercial Bank"})            # height 3
    w.passed("add_account", "bank-admin", {"org": "bank", "public_key": new_key("bank-admin"),
                                           "roles": ["admin"], "valid_until": "2030-01-01"})  # height 6
    w.propose("finance-admin", "revoke_account", "tax-clerk")                            # 7: open
    w.propose("tax-admin", "add_org", "bank2")                                           # 8
    w.call("tax-admin", "gov", "withdraw", {"id": 4})                                    # 9: withdrawn
    return await start(nursery, FakeNode(world=w))


async def test_config_now_and_at_a_height(api: Api) -> None:
    with trio.fail_after(10):
        now = check(await api.get("/config"), "GET", "/config", 200)
        assert now["height"] == 9 and now["chain_id"] == api.node.chain_id
        assert [o["name"] for o in now["organisations"] if o["voting"]] == \
            ["agriculture", "bank", "finance", "tax", "tourism"]
        bank_admin = next(a for a in now["accounts"] if a["name"] == "bank-admin")
        assert bank_admin == {"name": "bank-admin", "org": "bank", "public_key": new_key("bank-admin"),
                              "roles": ["admin"], "valid_until": "2030-01-01T00:00:00Z", "status": "active"}
        assert now["governance"]["needed"] == 4 and now["epochs"][0]["start"] == 0
        assert [n["name"] for n in now["nodes"]] == ["node0", "node1", "node2", "node3"]
        before = check(await api.get("/config?height=2"), "GET", "/config", 200)
        assert before["height"] == 2 and "bank" not in [o["name"] for o in before["organisations"]]
        at3 = check(await api.get("/config?height=3"), "GET", "/config", 200)
        assert "bank" in [o["name"] for o in at3["organisations"]] and \
            "bank-admin" not in [a["name"] for a in at3["accounts"]]
        genesis = check(await api.get("/config?height=0"), "GET", "/config", 200)
        assert genesis["height"] == 0 and len(genesis["organisations"]) == 4
        resp = await api.get("/config?height=10")
        assert check_error(resp, "GET", "/config", 404, "not_found").startswith("height 10 is not committed yet")
        for bad in ("-1", "x", "1.5", str(2**63)):
            resp = await api.get(f"/config?height={bad}")
            assert check_error(resp, "GET", "/config", 400, "bad_request").startswith("height: expected an integer")


async def test_proposals(api: Api) -> None:
    with trio.fail_after(10):
        page = check(await api.get("/gov/proposals"), "GET", "/gov/proposals", 200)
        assert [(p["id"], p["status"]) for p in page["proposals"]] == \
            [(1, "executed"), (2, "executed"), (3, "open"), (4, "withdrawn")]
        assert page["next"] is None and page["height"] == 9
        open_ = check(await api.get("/gov/proposals?status=open"), "GET", "/gov/proposals", 200)
        assert [p["id"] for p in open_["proposals"]] == [3]
        assert open_["proposals"][0]["summary"] == "revoke_account tax-clerk"
        first = check(await api.get("/gov/proposals?limit=1"), "GET", "/gov/proposals", 200)
        assert [p["id"] for p in first["proposals"]] == [1] and first["next"] == 1
        rest = check(await api.get("/gov/proposals?limit=2&after=1"), "GET", "/gov/proposals", 200)
        assert [p["id"] for p in rest["proposals"]] == [2, 3] and rest["next"] == 3
        one = check(await api.get("/gov/proposals/2"), "GET", "/gov/proposals/{id}", 200)
        assert one["status"] == "executed" and one["action"] == "add_account" and one["height"] == 9
        assert (one["approvals"], one["needed"], one["electorate"]) == (3, 3, 4)    # as decided
        assert [v["org"] for v in one["votes"]] == ["finance", "tax", "agriculture"]
        resp = await api.get("/gov/proposals/99")
        assert check_error(resp, "GET", "/gov/proposals/{id}", 404, "not_found") == "no proposal 99"
        for path in ("/gov/proposals/0", "/gov/proposals/x", "/gov/proposals?status=lost",
                     "/gov/proposals?limit=101", "/gov/proposals?after=-2"):
            resp = await api.get(path)
            template = "/gov/proposals/{id}" if path.count("/") == 3 else "/gov/proposals"
            check_error(resp, "GET", template, 400, "bad_request")
