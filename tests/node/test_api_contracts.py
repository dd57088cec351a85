"""The contract query routes against a fake node whose contract state comes
from real executed calls; every answer is checked against /openapi.json."""

from __future__ import annotations

import pytest
import trio

from ledger.contracts import REGISTRY
from ledger.contracts.schema import OneOf
from tests.ledger.test_fiscal import ISSUE
from tests.ledger.test_trace import LEAF
from tests.ledger.world import World
from tests.node.fake_node import FakeNode
from tests.node.test_api import DOC, Api, check, check_error, start

KEY = "53010126/0000001234"


def business_node() -> FakeNode:
    """A fake node whose contract state holds receipts, lots and receivables."""
    node = FakeNode()
    w: World = node.world
    node.check_code = w.ok("hospital", "fiscal", "issue", ISSUE)["check_code"]
    w.ok("hospital", "fiscal", "issue", {**ISSUE, "number": "0000001235", "payer_id_hash": "b2" * 32})
    w.ok("insurance", "fiscal", "claim", {"code": "53010126", "number": "0000001234", "amount_cents": 30000})
    w.ok("coop", "trace", "commission", {**LEAF, "gtin": "6901234567892"})
    w.ok("coop", "trace", "ship", {"shipment": "S1", "lot": "LEAF-1", "quantity": 100, "to": "workshop"})
    w.ok("workshop", "trace", "receive", {"shipment": "S1"})
    w.ok("workshop", "trace", "transform", {"inputs": [{"lot": "LEAF-1", "quantity": 100}], "output": {
        "lot": "MAO-1", "product": "puer-maocha", "quantity": 25, "unit": "kg"}})
    w.ok("core", "receivable", "issue", {"id": "R1", "to": "steel", "amount_cents": 5000,
                                         "maturity_date": "2027-03-31"})
    w.ok("steel", "receivable", "split", {"id": "R1", "parts": [{"id": "R1-A", "amount_cents": 3000},
                                                                {"id": "R1-B", "amount_cents": 2000}]})
    w.ok("steel", "receivable", "finance", {"id": "R1-B", "bank": "bank", "advance_cents": 1900})
    return node


@pytest.fixture
async def api(nursery) -> Api:
    return await start(nursery, business_node())


async def test_verify(api: Api) -> None:
    with trio.fail_after(10):
        code = api.node.check_code
        path = f"/fiscal/verify?code=53010126&number=0000001234&check_code={code}&amount_cents=42650"
        found = check(await api.get(path), "GET", "/fiscal/verify", 200)
        assert found["found"] and found["status"] == "locked" and found["locked_cents"] == 30000
        assert found["height"] == api.node.world.chain.height
        wrong = check(await api.get(path.replace("42650", "42651")), "GET", "/fiscal/verify", 200)
        assert wrong == {"found": False, "receipt": "53010126-0000001234", "height": found["height"]}
        for query, message in (
                ("code=53010126&number=0000001234&check_code=1", "code: missing (query parameter)"),
                ("code=5301&number=0000001234&check_code=0123456789&amount_cents=1",
                 "code: expected a string of 8..8 characters"),
                ("code=53010126&number=0000001234&check_code=012345678x&amount_cents=1",
                 "check_code: expected 10 digits, got '012345678x'"),
                ("code=53010126&number=0000001234&check_code=0123456789&amount_cents=1.5",
                 "amount_cents: expected an amount in cents (digits only), got '1.5'")):
            if "missing" in message:
                query = query.replace("code=53010126&", "")
            resp = await api.get(f"/fiscal/verify?{query}")
            assert check_error(resp, "GET", "/fiscal/verify", 400, "bad_request") == message


async def test_receipt_and_lists(api: Api) -> None:
    with trio.fail_after(10):
        receipt = check(await api.get(f"/fiscal/receipts/{KEY}"), "GET", "/fiscal/receipts/{code}/{number}", 200)
        assert receipt["receipt"] == "53010126-0000001234" and receipt["claims"][0]["org"] == "insurance"
        assert receipt["items"][0]["name"] == "CT scan"
        resp = await api.get("/fiscal/receipts/53010126/0000009999")
        assert check_error(resp, "GET", "/fiscal/receipts/{code}/{number}", 404, "not_found") == \
            "no fiscal receipt 53010126-0000009999"
        resp = await api.get("/fiscal/receipts/53010126/12")
        check_error(resp, "GET", "/fiscal/receipts/{code}/{number}", 400, "bad_request")
        by_issuer = "/fiscal/issuers/{org}/receipts"
        page = check(await api.get("/fiscal/issuers/hospital/receipts?limit=1"), "GET", by_issuer, 200)
        assert [r["number"] for r in page["receipts"]] == ["0000001234"] and page["next"]
        rest = check(await api.get(f"/fiscal/issuers/hospital/receipts?limit=1&after={page['next']}"),
                     "GET", by_issuer, 200)
        assert [r["number"] for r in rest["receipts"]] == ["0000001235"] and rest["next"] is None
        by_payer = "/fiscal/payers/{payer_hash}/receipts"
        payer = check(await api.get(f"/fiscal/payers/{'b2' * 32}/receipts"), "GET", by_payer, 200)
        assert [r["number"] for r in payer["receipts"]] == ["0000001235"]
        for path, template, message in (
                ("/fiscal/issuers/hospital/receipts?limit=0", by_issuer,
                 "limit: expected an integer in 1..100, got '0'"),
                ("/fiscal/issuers/hospital/receipts?limit=101", by_issuer,
                 "limit: expected an integer in 1..100, got '101'"),
                ("/fiscal/issuers/hospital/receipts?after=" + "x" * 257, by_issuer,
                 "after: expected a cursor of 1..256 characters (the `next` of the previous page)"),
                ("/fiscal/payers/AB/receipts", by_payer,
                 "payer_hash: expected a string of 64..64 characters")):
            assert check_error(await api.get(path), "GET", template, 400, "bad_request") == message


async def test_provenance_and_digital_link(api: Api) -> None:
    with trio.fail_after(10):
        view = check(await api.get("/trace/MAO-1"), "GET", "/trace/{lot}", 200)
        assert view["lot"]["lot"] == "MAO-1" and [u["lot"] for u in view["upstream"]] == ["LEAF-1"]
        assert [e["event"] for e in view["upstream"][0]["events"]] == ["commission", "ship", "receive",
                                                                       "transform"]
        assert view["organisations"] == {"coop": "Coop", "workshop": "Workshop"}
        link = check(await api.get("/01/06901234567892/10/LEAF-1"), "GET", "/01/{gtin}/10/{lot}", 200)
        assert link["lot"]["lot"] == "LEAF-1" and link["lot"]["gtin"] == "06901234567892"
        short = check(await api.get("/01/6901234567892/10/LEAF-1"), "GET", "/01/{gtin}/10/{lot}", 200)
        assert short["lot"] == link["lot"]
        resp = await api.get("/01/06901234567892/10/MAO-1")           # MAO-1 has no GTIN
        assert check_error(resp, "GET", "/01/{gtin}/10/{lot}", 404, "not_found") == \
            "no lot MAO-1 of GTIN 06901234567892 on this chain"
        resp = await api.get("/01/06901234567891/10/LEAF-1")        # wrong check digit: no such GTIN
        assert check_error(resp, "GET", "/01/{gtin}/10/{lot}", 404, "not_found") == \
            "no lot LEAF-1 of GTIN 06901234567891 on this chain"
        resp = await api.get("/01/0690123456/10/LEAF-1")            # 10 digits: not a GTIN at all
        check_error(resp, "GET", "/01/{gtin}/10/{lot}", 400, "bad_request")
        resp = await api.get("/trace/NOPE")
        assert check_error(resp, "GET", "/trace/{lot}", 404, "not_found") == "no lot NOPE on this chain"
        resp = await api.get("/trace/-x")
        check_error(resp, "GET", "/trace/{lot}", 400, "bad_request")
        lots = check(await api.get("/trace/origins/menghai-bulang/lots"), "GET",
                     "/trace/origins/{base}/lots", 200)
        assert [v["lot"] for v in lots["lots"]] == ["LEAF-1", "MAO-1"]
        lots = check(await api.get("/trace/products/puer-maocha/lots"), "GET",
                     "/trace/products/{product}/lots", 200)
        assert [v["lot"] for v in lots["lots"]] == ["MAO-1"] and lots["next"] is None
        check_error(await api.get("/trace/products/-bad/lots"), "GET", "/trace/products/{product}/lots",
                    400, "bad_request")


async def test_receivables_and_holdings(api: Api) -> None:
    with trio.fail_after(10):
        rcv = check(await api.get("/receivables/R1-B"), "GET", "/receivables/{id}", 200)
        assert rcv["holder"] == "bank" and rcv["financed"]["advance_cents"] == 1900
        assert [e["event"] for e in rcv["events"]] == ["split_from", "finance"]
        resp = await api.get("/receivables/R9")
        assert check_error(resp, "GET", "/receivables/{id}", 404, "not_found") == "no receivable R9"
        steel = check(await api.get("/receivables/holdings/steel"), "GET", "/receivables/holdings/{org}", 200)
        assert (steel["count"], steel["total_cents"]) == (1, 3000)
        assert [r["id"] for r in steel["receivables"]] == ["R1-A"]
        bank = check(await api.get("/receivables/holdings/bank?limit=5"), "GET", "/receivables/holdings/{org}", 200)
        assert (bank["count"], bank["total_cents"], bank["next"]) == (1, 2000, None)
        resp = await api.get("/receivables/holdings/bad%20org")
        check_error(resp, "GET", "/receivables/holdings/{org}", 400, "bad_request")


def test_every_method_of_the_newest_versions_is_documented() -> None:
    schemas = DOC["components"]["schemas"]
    for name, contract in REGISTRY.items():
        for method_name, method in contract.methods.items():
            doc = schemas[f"{name}.{method_name}"]
            if isinstance(method.args, OneOf):       # gov.propose: one shape per action
                assert [o["title"] for o in doc["oneOf"]] == list(method.args.variants)
                for option, record in zip(doc["oneOf"], method.args.variants.values()):
                    assert option["properties"].keys() == {method.args.tag, *record.fields}
            else:
                assert doc["properties"].keys() == method.args.fields.keys()
            assert doc["x-role"] == method.role and method.summary in doc["description"]
