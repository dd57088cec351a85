"""trace: a tea lot from its base to the shop; custody, conservation, inspection; every refusal."""

from __future__ import annotations

import pytest

from ledger.contracts import trace
from ledger.receipt import ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION
from tests.ledger.world import World

ORIGIN = {"base": "menghai-bulang", "plot": "Laobanzhang 7", "harvest_date": "2026-04-12"}
LEAF = {"lot": "LEAF-1", "product": "puer-fresh-leaf", "quantity": 500, "unit": "kg", "origin": ORIGIN}
REPORT = "cd" * 32


def conserved(lot: dict) -> bool:
    held = sum(h["quantity"] for h in lot["holdings"])
    return lot["quantity"] == (held + lot["in_transit"] + lot["used"] + lot["packed"] + lot["sold"]
                               + lot["retired"])


def lot(w: World, lot_id: str) -> dict:
    view = trace.view(w.reader("trace"), lot_id)
    assert view is not None and conserved(view), view
    return view


def holdings(w: World, lot_id: str) -> dict[str, int]:
    return {h["org"]: h["quantity"] for h in lot(w, lot_id)["holdings"]}


@pytest.fixture
def w() -> World:
    world = World()
    world.ok("coop", "trace", "commission", LEAF)
    return world


def ship(w: World, sender: str, shipment: str, lot_id: str, quantity: int, to: str) -> None:
    w.ok(sender, "trace", "ship", {"shipment": shipment, "lot": lot_id, "quantity": quantity, "to": to})
    w.ok(to, "trace", "receive", {"shipment": shipment})


def to_cakes(w: World) -> None:
    """Leaf to the workshop, made into maocha and then cakes there."""
    ship(w, "coop", "S1", "LEAF-1", 400, "workshop")
    w.ok("workshop", "trace", "transform", {
        "inputs": [{"lot": "LEAF-1", "quantity": 400}],
        "output": {"lot": "MAO-1", "product": "puer-maocha", "quantity": 100, "unit": "kg"}})
    w.ok("workshop", "trace", "transform", {
        "inputs": [{"lot": "MAO-1", "quantity": 100}],
        "output": {"lot": "CAKE-1", "product": "puer-cake-357g", "gtin": "6901234567892",
                   "quantity": 280, "unit": "cake"}})


def test_the_whole_journey_conserves_quantities(w) -> None:
    assert holdings(w, "LEAF-1") == {"coop": 500}
    to_cakes(w)
    assert holdings(w, "LEAF-1") == {"coop": 100}
    assert lot(w, "LEAF-1")["used"] == 400
    assert lot(w, "MAO-1")["used"] == 100 and holdings(w, "MAO-1") == {}
    cake = lot(w, "CAKE-1")
    assert cake["gtin"] == "06901234567892" and cake["origins"] == ["menghai-bulang"]
    assert cake["inputs"] == [{"lot": "MAO-1", "quantity": 100}]
    w.ok("lab", "trace", "inspect", {"lot": "CAKE-1", "report_hash": REPORT, "result": "pass",
                                     "report_id": "QC-1"})
    w.ok("workshop", "trace", "aggregate", {"package": "PKG-1", "lots": [{"lot": "CAKE-1", "quantity": 200}]})
    assert lot(w, "CAKE-1")["packed"] == 200 and holdings(w, "PKG-1") == {"workshop": 1}
    ship(w, "workshop", "S2", "PKG-1", 1, "distributor")
    w.ok("distributor", "trace", "disaggregate", {"package": "PKG-1"})
    assert holdings(w, "CAKE-1") == {"distributor": 200, "workshop": 80}
    assert lot(w, "PKG-1")["used"] == 1
    ship(w, "distributor", "S3", "CAKE-1", 50, "shop")
    assert w.ok("shop", "trace", "sell", {"lot": "CAKE-1", "quantity": 2}) == {"lot": "CAKE-1", "sold": 2}
    w.ok("workshop", "trace", "retire", {"lot": "CAKE-1", "quantity": 1, "reason": "broken"})
    cake = lot(w, "CAKE-1")
    assert {h["org"]: h["quantity"] for h in cake["holdings"]} == {"distributor": 150, "shop": 48,
                                                                   "workshop": 79}
    assert (cake["sold"], cake["retired"], cake["packed"], cake["in_transit"]) == (2, 1, 0, 0)


def test_provenance_walks_every_upstream_lot_with_its_events(w) -> None:
    to_cakes(w)
    w.ok("lab", "trace", "inspect", {"lot": "MAO-1", "report_hash": REPORT, "result": "pass"})
    view = trace.provenance(w.reader("trace"), "CAKE-1")
    assert view["lot"]["lot"] == "CAKE-1" and not view["truncated"]
    assert [u["lot"] for u in view["upstream"]] == ["MAO-1", "LEAF-1"]
    leaf = view["upstream"][1]
    assert leaf["origin"] == ORIGIN and leaf["creator"] == "coop"
    assert [(e["event"], e["org"]) for e in leaf["events"]] == [
        ("commission", "coop"), ("ship", "coop"), ("receive", "workshop"), ("transform", "workshop")]
    receive = leaf["events"][2]
    assert receive["from"] == "coop" and receive["shipment"] == "S1" and receive["quantity"] == 400
    assert receive["height"] == 3 and len(receive["tx_id"]) == 64 and receive["time"].endswith("+08:00")
    mao = view["upstream"][0]
    assert [e["event"] for e in mao["events"]] == ["transform", "transform", "inspect"]
    assert mao["events"][2]["result"] == "pass" and mao["events"][2]["org"] == "lab"
    assert trace.provenance(w.reader("trace"), "NOPE") is None


def test_a_failed_inspection_marks_the_lot_and_everything_made_from_it(w) -> None:
    to_cakes(w)
    w.ok("lab", "trace", "inspect", {"lot": "LEAF-1", "report_hash": REPORT, "result": "fail"})
    for lot_id in ("LEAF-1", "MAO-1", "CAKE-1"):
        view = lot(w, lot_id)
        assert view["status"] == "failed_inspection"
        assert view["failed_inspection"]["lot"] == "LEAF-1" and view["failed_inspection"]["lab"] == "lab"
    w.refused("workshop", "trace", "sell", {"lot": "CAKE-1", "quantity": 1}, ERR_CONFLICT,
              "lot CAKE-1: lot LEAF-1, which it is made from, failed inspection by lab at height 6; "
              "it cannot be sold")
    w.refused("coop", "trace", "ship", {"shipment": "S9", "lot": "LEAF-1", "quantity": 1, "to": "shop"},
              ERR_CONFLICT, "lot LEAF-1: it failed inspection by lab at height 6; it cannot be shipped")
    w.refused("workshop", "trace", "transform", {
        "inputs": [{"lot": "CAKE-1", "quantity": 1}],
        "output": {"lot": "X", "product": "p", "quantity": 1, "unit": "kg"}}, ERR_CONFLICT)
    w.refused("workshop", "trace", "aggregate", {"package": "P", "lots": [{"lot": "CAKE-1", "quantity": 1}]},
              ERR_CONFLICT, "lot CAKE-1: lot LEAF-1, which it is made from, failed inspection by lab at "
                            "height 6; it cannot be packed")
    # a later pass does not clear it; destroying the goods is still possible
    w.ok("lab", "trace", "inspect", {"lot": "LEAF-1", "report_hash": "ef" * 32, "result": "pass"})
    assert lot(w, "CAKE-1")["status"] == "failed_inspection"
    w.ok("workshop", "trace", "retire", {"lot": "CAKE-1", "quantity": 280, "reason": "failed QC"})


def test_a_shipment_in_transit_still_arrives_after_a_failure(w) -> None:
    w.ok("coop", "trace", "ship", {"shipment": "S1", "lot": "LEAF-1", "quantity": 10, "to": "workshop"})
    w.ok("lab", "trace", "inspect", {"lot": "LEAF-1", "report_hash": REPORT, "result": "fail"})
    w.ok("workshop", "trace", "receive", {"shipment": "S1"})
    assert holdings(w, "LEAF-1") == {"coop": 490, "workshop": 10}


def test_custody_refusals(w) -> None:
    w.refused("workshop", "trace", "ship", {"shipment": "S1", "lot": "LEAF-1", "quantity": 1, "to": "shop"},
              ERR_PERMISSION, "workshop does not hold lot LEAF-1 (held by coop (500 kg)); only its "
                              "custodian may ship it")
    w.refused("coop", "trace", "ship", {"shipment": "S1", "lot": "LEAF-1", "quantity": 501, "to": "shop"},
              ERR_CONFLICT, "coop holds 500 kg of lot LEAF-1; cannot ship 501")
    w.refused("workshop", "trace", "sell", {"lot": "LEAF-1", "quantity": 1}, ERR_PERMISSION)
    w.refused("workshop", "trace", "retire", {"lot": "LEAF-1", "quantity": 1, "reason": "x"}, ERR_PERMISSION)
    w.refused("coop", "trace", "sell", {"lot": "LEAF-1", "quantity": 501}, ERR_CONFLICT,
              "coop holds 500 kg of lot LEAF-1; cannot sell 501")
    w.refused("workshop", "trace", "transform", {
        "inputs": [{"lot": "LEAF-1", "quantity": 1}],
        "output": {"lot": "X", "product": "p", "quantity": 1, "unit": "kg"}}, ERR_PERMISSION,
        "workshop does not hold lot LEAF-1 (held by coop (500 kg)); only its custodian may transform it")
    # shipped quantities are nobody's until received
    w.ok("coop", "trace", "ship", {"shipment": "S1", "lot": "LEAF-1", "quantity": 500, "to": "workshop"})
    assert holdings(w, "LEAF-1") == {} and lot(w, "LEAF-1")["in_transit"] == 500
    w.refused("coop", "trace", "sell", {"lot": "LEAF-1", "quantity": 1}, ERR_PERMISSION,
              "coop does not hold lot LEAF-1 (held by nobody); only its custodian may sell it")


def test_ship_and_receive_refusals(w) -> None:
    ship_args = {"shipment": "S1", "lot": "LEAF-1", "quantity": 10, "to": "workshop"}
    w.refused("coop", "trace", "ship", {**ship_args, "to": "coop"}, ERR_BAD_ARGS,
              "args.to: coop is the shipping organisation itself")
    w.refused("coop", "trace", "ship", {**ship_args, "to": "nowhere"}, ERR_NOT_FOUND,
              "args.to: no organisation 'nowhere' on this chain")
    w.refused("coop", "trace", "ship", {**ship_args, "lot": "NOPE"}, ERR_NOT_FOUND,
              "no lot NOPE (it must be commissioned first)")
    w.ok("coop", "trace", "ship", ship_args)
    w.refused("coop", "trace", "ship", ship_args, ERR_CONFLICT,
              "shipment S1 already exists (lot LEAF-1, height 5)")
    w.refused("shop", "trace", "receive", {"shipment": "S1"}, ERR_PERMISSION,
              "shipment S1 is addressed to workshop; only the receiver may confirm it")
    w.refused("workshop", "trace", "receive", {"shipment": "S2"}, ERR_NOT_FOUND, "no shipment S2")
    w.ok("workshop", "trace", "receive", {"shipment": "S1"})
    w.refused("workshop", "trace", "receive", {"shipment": "S1"}, ERR_CONFLICT,
              "shipment S1 was already received at height 9")


def test_commission_and_inspect_refusals(w) -> None:
    w.refused("workshop", "trace", "commission", {**LEAF, "lot": "L2"}, ERR_PERMISSION,
              "account workshop lacks role 'producer'")
    w.refused("coop-b", "trace", "commission", LEAF, ERR_CONFLICT,
              "lot LEAF-1 already exists (commissioned by coop at height 1)")
    w.refused("coop", "trace", "commission",
              {**LEAF, "lot": "L2", "origin": {**ORIGIN, "harvest_date": "2026-11-29"}}, ERR_BAD_ARGS,
              "args.origin.harvest_date: 2026-11-29 is after the block's date 2026-11-28")
    w.refused("coop", "trace", "inspect", {"lot": "LEAF-1", "report_hash": REPORT, "result": "pass"},
              ERR_PERMISSION, "account coop lacks role 'lab'")
    w.refused("lab", "trace", "inspect", {"lot": "L9", "report_hash": REPORT, "result": "pass"},
              ERR_NOT_FOUND, "no lot L9 (it must be commissioned first)")


@pytest.mark.parametrize("change, message", [
    ({"gtin": "6901234567891"}, "args.gtin: 6901234567891 has a wrong GS1 check digit"),
    ({"gtin": "123"}, "args.gtin: expected a string of 8..14 characters"),
    ({"gtin": "123456789"}, "args.gtin: expected 8, 12, 13 or 14 digits with a valid check digit, got"),
    ({"lot": "a/b"}, "args.lot: expected 1..64 letters, digits"),
    ({"lot": "-x"}, "args.lot: expected 1..64 letters, digits"),
    ({"quantity": 0}, "args.quantity: expected an integer in 1..1000000000000"),
    ({"origin": {**ORIGIN, "harvest_date": "2026-02-30"}},
     "args.origin.harvest_date: '2026-02-30' is not a calendar date"),
    ({"origin": {**ORIGIN, "harvest_date": "12/04/2026"}}, "args.origin.harvest_date: expected a date YYYY-MM-DD, got '12/04/2026'"),
    ({"origin": {"base": "b"}}, "args.origin: missing plot, harvest_date"),
    ({"origin": "menghai"}, "args.origin: expected a map with base, plot, harvest_date"),
])
def test_commission_bad_args(w, change, message) -> None:
    got = w.refused("coop", "trace", "commission", {**LEAF, "lot": "L2", **change}, ERR_BAD_ARGS)
    assert got.startswith(message), got


def test_transform_and_aggregate_refusals(w) -> None:
    out = {"lot": "MAO-1", "product": "puer-maocha", "quantity": 1, "unit": "kg"}
    w.refused("coop", "trace", "transform", {
        "inputs": [{"lot": "LEAF-1", "quantity": 1}, {"lot": "LEAF-1", "quantity": 2}], "output": out},
        ERR_BAD_ARGS, "args.inputs[1].lot: lot LEAF-1 is listed twice")
    w.refused("coop", "trace", "transform", {"inputs": [{"lot": "LEAF-1", "quantity": 1}],
                                             "output": {**out, "lot": "LEAF-1"}},
              ERR_CONFLICT, "lot LEAF-1 already exists (commissioned by coop at height 1)")
    w.refused("coop", "trace", "transform", {"inputs": [], "output": out}, ERR_BAD_ARGS,
              "args.inputs: expected a list of 1..20 items")
    w.refused("coop", "trace", "transform", {"inputs": [{"lot": "NOPE", "quantity": 1}], "output": out},
              ERR_NOT_FOUND, "no lot NOPE (it must be commissioned first)")
    w.ok("coop", "trace", "aggregate", {"package": "P1", "lots": [{"lot": "LEAF-1", "quantity": 5}]})
    w.refused("coop", "trace", "disaggregate", {"package": "LEAF-1"}, ERR_BAD_ARGS,
              "args.package: lot LEAF-1 is not a package")
    w.refused("shop", "trace", "disaggregate", {"package": "P1"}, ERR_PERMISSION,
              "shop does not hold lot P1 (held by coop (1 package)); only its custodian may unpack it")
    w.ok("coop", "trace", "disaggregate", {"package": "P1"})
    w.refused("coop", "trace", "disaggregate", {"package": "P1"}, ERR_PERMISSION,
              "coop does not hold lot P1 (held by nobody); only its custodian may unpack it")
    assert holdings(w, "LEAF-1") == {"coop": 500}


def test_lineage_and_holder_bounds(w, monkeypatch) -> None:
    monkeypatch.setattr(trace, "MAX_HOLDERS", 2)
    ship(w, "coop", "S1", "LEAF-1", 1, "workshop")
    w.ok("coop", "trace", "ship", {"shipment": "S2", "lot": "LEAF-1", "quantity": 1, "to": "shop"})
    w.refused("shop", "trace", "receive", {"shipment": "S2"}, ERR_CONFLICT,
              "lot LEAF-1 is already held by 2 organisations; consolidate it first")
    monkeypatch.setattr(trace, "MAX_ANCESTORS", 1)
    w.ok("workshop", "trace", "transform", {"inputs": [{"lot": "LEAF-1", "quantity": 1}],
                                            "output": {"lot": "M", "product": "p", "quantity": 1, "unit": "kg"}})
    w.refused("workshop", "trace", "transform", {
        "inputs": [{"lot": "M", "quantity": 1}],
        "output": {"lot": "N", "product": "p", "quantity": 1, "unit": "kg"}}, ERR_CONFLICT,
        "the new lot would descend from 2 lots; at most 1")
    monkeypatch.setattr(trace, "MAX_ANCESTORS", 256)
    monkeypatch.setattr(trace, "MAX_ORIGINS", 1)
    w.ok("coop", "trace", "commission", {**LEAF, "lot": "LEAF-2", "origin": {**ORIGIN, "base": "yiwu"}})
    w.refused("coop", "trace", "aggregate", {"package": "P", "lots": [{"lot": "LEAF-1", "quantity": 1},
                                                                      {"lot": "LEAF-2", "quantity": 1}]},
              ERR_CONFLICT, "the new lot would mix 2 origin bases; at most 1")


def test_lots_by_product_and_by_origin(w) -> None:
    w.ok("coop", "trace", "commission", {**LEAF, "lot": "LEAF-2"})
    w.ok("coop-b", "trace", "commission", {**LEAF, "lot": "LEAF-3", "origin": {**ORIGIN, "base": "yiwu"}})
    to_cakes(w)
    reader = w.reader("trace")
    leaves, cursor = trace.by_product(reader, "puer-fresh-leaf", None, 2)
    assert [v["lot"] for v in leaves] == ["LEAF-1", "LEAF-2"]
    more, end = trace.by_product(reader, "puer-fresh-leaf", cursor, 2)
    assert [v["lot"] for v in more] == ["LEAF-3"] and end is None
    menghai, _ = trace.by_origin(reader, "menghai-bulang", None, 10)
    assert [v["lot"] for v in menghai] == ["LEAF-1", "LEAF-2", "MAO-1", "CAKE-1"]     # made from it too
    assert [v["lot"] for v in trace.by_origin(reader, "yiwu", None, 10)[0]] == ["LEAF-3"]
    assert [v["lot"] for v in trace.by_product(reader, "puer-cake-357g", None, 10)[0]] == ["CAKE-1"]
