"""receivable: issue, split, transfer, finance once, settle at maturity; every refusal."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.contracts import receivable
from ledger.contracts.blocktime import block_date
from ledger.receipt import ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION
from tests.ledger.world import World

ISSUE = {"id": "R1", "to": "steel", "amount_cents": 50_000_000, "maturity_date": "2027-03-31"}


def day_ms(day: str) -> int:
    """00:00 UTC+8 of `day`, in ms."""
    return (date.fromisoformat(day) - date(1970, 1, 1)).days * 86_400_000 - 8 * 3_600_000


def test_day_ms_is_the_first_moment_of_that_day() -> None:
    assert block_date(day_ms("2027-03-31")) == "2027-03-31"
    assert block_date(day_ms("2027-03-31") - 1) == "2027-03-30"


@pytest.fixture
def w() -> World:
    world = World()
    world.ok("core", "receivable", "issue", ISSUE)
    return world


def view(w: World, rid: str) -> dict:
    return receivable.view(w.reader("receivable"), rid)


def balance(w: World, org: str) -> tuple[int, int, list[str]]:
    doc = receivable.holdings(w.reader("receivable"), org, None, 100)
    assert doc["total_cents"] == sum(r["amount_cents"] for r in doc["receivables"])
    return doc["count"], doc["total_cents"], [r["id"] for r in doc["receivables"]]


def test_split_transfer_finance_settle(w) -> None:
    assert view(w, "R1")["holder"] == "steel" and balance(w, "steel") == (1, 50_000_000, ["R1"])
    result = w.ok("steel", "receivable", "split", {"id": "R1", "parts": [
        {"id": "R1-A", "amount_cents": 30_000_000},
        {"id": "R1-B", "amount_cents": 20_000_000, "to": "bearings"}]})
    assert result == {"id": "R1", "parts": ["R1-A", "R1-B"]}
    parent = view(w, "R1")
    assert parent["status"] == "split" and parent["parts"] == ["R1-A", "R1-B"]
    assert balance(w, "steel") == (1, 30_000_000, ["R1-A"])
    assert balance(w, "bearings") == (1, 20_000_000, ["R1-B"])
    assert view(w, "R1-B")["parent"] == "R1" and view(w, "R1-B")["debtor"] == "core"
    w.ok("bearings", "receivable", "finance", {"id": "R1-B", "bank": "bank", "advance_cents": 19_400_000})
    financed = view(w, "R1-B")
    assert financed["holder"] == "bank" and financed["financed"]["advance_cents"] == 19_400_000
    assert balance(w, "bearings") == (0, 0, []) and balance(w, "bank") == (1, 20_000_000, ["R1-B"])
    w.ok("steel", "receivable", "transfer", {"id": "R1-A", "to": "bearings"})
    assert balance(w, "steel") == (0, 0, [])
    due = day_ms("2027-03-31")
    assert w.ok("core", "receivable", "settle", {"id": "R1-B"}, timestamp_ms=due) == {
        "id": "R1-B", "paid_to": "bank", "amount_cents": 20_000_000}
    assert view(w, "R1-B")["status"] == "settled" and view(w, "R1-B")["settled"]["paid_to"] == "bank"
    assert balance(w, "bank") == (0, 0, [])
    history = receivable.detail(w.reader("receivable"), "R1-B")["events"]
    assert [(e["event"], e["org"]) for e in history] == [
        ("split_from", "steel"), ("finance", "bearings"), ("settle", "core")]
    assert history[1]["from"] == "bearings" and history[1]["to"] == "bank"


def test_financed_at_most_once_also_through_its_parts(w) -> None:
    w.ok("steel", "receivable", "finance", {"id": "R1", "bank": "bank", "advance_cents": 48_000_000})
    w.refused("bank", "receivable", "finance", {"id": "R1", "bank": "bank2", "advance_cents": 1},
              ERR_CONFLICT, "receivable R1 was already financed by bank at height 2; it is financed at "
                            "most once")
    w.ok("bank", "receivable", "split", {"id": "R1", "parts": [
        {"id": "P1", "amount_cents": 25_000_000, "to": "bank2"}, {"id": "P2", "amount_cents": 25_000_000}]})
    w.refused("bank2", "receivable", "finance", {"id": "P1", "bank": "bank", "advance_cents": 1},
              ERR_CONFLICT, "receivable P1 was already financed by bank at height 2 as part of R1; "
                            "it is financed at most once")


def test_nothing_changes_hands_on_or_after_maturity(w) -> None:
    due = day_ms("2027-03-31")
    for method, args, what in (
            ("transfer", {"id": "R1", "to": "bearings"}, "transferred"),
            ("split", {"id": "R1", "parts": [{"id": "A", "amount_cents": 1},
                                             {"id": "B", "amount_cents": 49_999_999}]}, "split"),
            ("finance", {"id": "R1", "bank": "bank", "advance_cents": 1}, "financed")):
        w.refused("steel", "receivable", method, args, ERR_CONFLICT,
                  f"receivable R1 matured on 2027-03-31 (today is 2027-03-31); it can only be settled "
                  f"now, not {what}", timestamp_ms=due)
    w.ok("steel", "receivable", "transfer", {"id": "R1", "to": "bearings"}, timestamp_ms=due - 1)


def test_settle_refusals_and_nothing_after_settlement(w) -> None:
    due = day_ms("2027-03-31")
    w.refused("core", "receivable", "settle", {"id": "R1"}, ERR_CONFLICT,
              "receivable R1 is not yet due: it matures on 2027-03-31, today is 2026-11-28")
    w.refused("steel", "receivable", "settle", {"id": "R1"}, ERR_PERMISSION,
              "receivable R1 is owed by core; only the debtor settles it", timestamp_ms=due)
    w.refused("core", "receivable", "settle", {"id": "R9"}, ERR_NOT_FOUND, "no receivable R9")
    w.ok("core", "receivable", "settle", {"id": "R1"}, timestamp_ms=due)
    w.refused("core", "receivable", "settle", {"id": "R1"}, ERR_CONFLICT,
              "receivable R1 was already settled at height 5 (paid to steel)", timestamp_ms=due)
    for method, args in (("transfer", {"id": "R1", "to": "bearings"}),
                         ("finance", {"id": "R1", "bank": "bank", "advance_cents": 1})):
        w.refused("steel", "receivable", method, args, ERR_CONFLICT)
    message = w.refused("steel", "receivable", "transfer", {"id": "R1", "to": "bearings"}, ERR_CONFLICT)
    assert message == "receivable R1 was settled at height 5 (paid to steel); it cannot be transferred"


def test_split_refusals(w) -> None:
    parts = [{"id": "A", "amount_cents": 10}, {"id": "B", "amount_cents": 49_999_990}]
    w.refused("bearings", "receivable", "split", {"id": "R1", "parts": parts}, ERR_PERMISSION,
              "receivable R1 is held by steel; only its holder may have it split")
    w.refused("steel", "receivable", "split", {"id": "R1", "parts": [parts[0], {**parts[1], "amount_cents": 1}]},
              ERR_BAD_ARGS, "args.parts: the parts sum to 11 cents; receivable R1 is 50000000 cents")
    w.refused("steel", "receivable", "split", {"id": "R1", "parts": [parts[0], {**parts[1], "id": "A"}]},
              ERR_BAD_ARGS, "args.parts[1].id: A is used twice")
    w.refused("steel", "receivable", "split", {"id": "R1", "parts": [parts[0], {**parts[1], "id": "R1"}]},
              ERR_BAD_ARGS, "args.parts[1].id: R1 is used twice")
    w.refused("steel", "receivable", "split", {"id": "R1", "parts": [parts[0], {**parts[1], "to": "core"}]},
              ERR_BAD_ARGS, "args.parts[1].to: core is the debtor; a debtor does not hold its own debt "
                            "(settle instead)")
    w.refused("steel", "receivable", "split", {"id": "R1", "parts": [parts[0], {**parts[1], "to": "mars"}]},
              ERR_NOT_FOUND, "args.parts[1].to: no organisation 'mars' on this chain")
    w.refused("steel", "receivable", "split", {"id": "R1", "parts": parts[:1]}, ERR_BAD_ARGS,
              "args.parts: expected a list of 2..20 items")
    w.ok("core", "receivable", "issue", {**ISSUE, "id": "B"})
    w.refused("steel", "receivable", "split", {"id": "R1", "parts": parts}, ERR_CONFLICT,
              "args.parts[1].id: receivable B already exists (owed by core, height 9)")
    w.ok("steel", "receivable", "split", {"id": "R1", "parts": [parts[0], {**parts[1], "id": "C"}]})
    w.refused("steel", "receivable", "split", {"id": "R1", "parts": parts}, ERR_CONFLICT,
              "receivable R1 was split into A, C; use its parts")
    w.refused("core", "receivable", "settle", {"id": "R1"}, ERR_CONFLICT,
              "receivable R1 was split; settle its parts: A, C", timestamp_ms=day_ms("2027-04-01"))


def test_issue_transfer_finance_refusals(w) -> None:
    w.refused("core", "receivable", "issue", ISSUE, ERR_CONFLICT,
              "args.id: receivable R1 already exists (owed by core, height 1)")
    w.refused("core", "receivable", "issue", {**ISSUE, "id": "R2", "to": "core"}, ERR_BAD_ARGS,
              "args.to: core is the debtor itself; a receivable is owed to another organisation")
    w.refused("core", "receivable", "issue", {**ISSUE, "id": "R2", "to": "mars"}, ERR_NOT_FOUND,
              "args.to: no organisation 'mars' on this chain")
    w.refused("core", "receivable", "issue", {**ISSUE, "id": "R2", "maturity_date": "2026-11-28"},
              ERR_BAD_ARGS, "args.maturity_date: 2026-11-28 is not after the block's date 2026-11-28")
    w.refused("core", "receivable", "issue", {**ISSUE, "id": "R2", "amount_cents": 0}, ERR_BAD_ARGS,
              "args.amount_cents: expected an integer in 1..1000000000000")
    w.refused("steel", "receivable", "transfer", {"id": "R1", "to": "steel"}, ERR_BAD_ARGS,
              "args.to: steel already holds receivable R1")
    w.refused("steel", "receivable", "transfer", {"id": "R1", "to": "core"}, ERR_BAD_ARGS,
              "args.to: core is the debtor; a debtor does not hold its own debt (settle instead)")
    w.refused("steel", "receivable", "transfer", {"id": "R1", "to": "mars"}, ERR_NOT_FOUND,
              "args.to: no organisation 'mars' on this chain")
    w.refused("core", "receivable", "transfer", {"id": "R1", "to": "bearings"}, ERR_PERMISSION,
              "receivable R1 is held by steel; only its holder may have it transferred")
    w.refused("steel", "receivable", "transfer", {"id": "R9", "to": "bearings"}, ERR_NOT_FOUND,
              "no receivable R9")
    w.refused("steel", "receivable", "finance", {"id": "R1", "bank": "bearings", "advance_cents": 1},
              ERR_PERMISSION, "args.bank: bearings is not a bank (no account with the bank role)")
    w.refused("steel", "receivable", "finance", {"id": "R1", "bank": "bank", "advance_cents": 50_000_001},
              ERR_BAD_ARGS, "args.advance_cents: 50000001 is more than the receivable's 50000000 cents")
    w.refused("steel", "receivable", "finance", {"id": "R1", "bank": "steel", "advance_cents": 1},
              ERR_BAD_ARGS, "args.bank: steel already holds receivable R1")
    w.refused("steel", "receivable", "finance", {"id": "R1", "bank": "mars", "advance_cents": 1},
              ERR_NOT_FOUND, "args.bank: no organisation 'mars' on this chain")
    w.ok("bank", "receivable", "issue", {**ISSUE, "id": "OWED-BY-BANK"})
    w.refused("steel", "receivable", "finance", {"id": "OWED-BY-BANK", "bank": "bank", "advance_cents": 1},
              ERR_BAD_ARGS, "args.bank: bank is the debtor; a debtor does not hold its own debt "
                            "(settle instead)")
    assert balance(w, "steel") == (2, 100_000_000, ["OWED-BY-BANK", "R1"])


def test_holdings_page_through_an_organisations_receivables() -> None:
    w = World()
    for i in range(5):
        w.ok("core", "receivable", "issue", {**ISSUE, "id": f"R{i}", "amount_cents": 100 + i})
    reader = w.reader("receivable")
    first = receivable.holdings(reader, "steel", None, 3)
    assert (first["count"], first["total_cents"]) == (5, 510)
    assert [r["id"] for r in first["receivables"]] == ["R0", "R1", "R2"] and first["next"] == "R2"
    rest = receivable.holdings(reader, "steel", first["next"], 3)
    assert [r["id"] for r in rest["receivables"]] == ["R3", "R4"] and rest["next"] is None
    assert receivable.holdings(reader, "nobody", None, 3) == {
        "org": "nobody", "count": 0, "total_cents": 0, "receivables": [], "next": None}
