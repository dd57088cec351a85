"""The `mixed` benchmark workload: the three business contracts as a day's
work produces them, in rounds of ROUND calls that depend on each other in
order (a claim needs its receipt, a receive its shipment):

    fiscal      issue (hospital), claim 70 % (medical insurance), complete it,
                claim the rest (commercial insurer)
    trace       commission a lot (cooperative), inspect it (lab), ship it to the
                workshop, receive it there
    receivable  issue (core enterprise to a supplier), split it in two (one part
                to a second supplier), transfer the first part to the second
                supplier, finance the second part at the bank

Every call of a round succeeds when the round runs in order, so the benchmark
measures work done, not refusals.  Ids are unique per run (`tag`) and round.
"""

from __future__ import annotations

from typing import Any

from ledger.contracts.schema import MAX_CENTS

ROUND = 12
# party in the story -> its account (and organisation) in `ynchain testnet init`'s genesis
PARTIES = {
    "hospital": "kunming-first-hospital", "insurance": "kunming-medical-insurance",
    "insurer": "yunnan-life-insurance", "coop": "menghai-tea-coop", "workshop": "bulang-workshop",
    "lab": "yunnan-tea-lab", "core": "kunming-heavy-machinery", "supplier": "dianchi-steel",
    "supplier2": "xishan-bearings", "bank": "dianchi-bank",
}
PAYERS = 8
Call = tuple[str, str, str, dict[str, Any]]      # (account, contract, method, args)


def mixed_round(i: int, tag: int, payer_hashes: list[str], parties: dict[str, str] = PARTIES) -> list[Call]:
    """Round `i` of a run tagged `tag` (an integer < 10**8): ROUND calls in order."""
    code, number = f"{tag % 10**8:08d}", f"{i % 10**10:010d}"
    price = 1000 + (i * 7919) % 90_000
    quantity = 1 + i % 3
    total = price * quantity + 2550
    first = total * 7 // 10
    receipt = {"code": code, "number": number}
    lot, shipment, rid = f"B{tag}-{i}", f"W{tag}-{i}", f"K{tag}-{i}"
    amount = min(MAX_CENTS, 1_000_000 + (i * 104_729) % 50_000_000)
    half = amount // 2
    to = parties
    return [
        (to["hospital"], "fiscal", "issue", {
            **receipt, "payer_name": f"Payer {i % PAYERS}", "payer_id_hash": payer_hashes[i % len(payer_hashes)],
            "items": [{"name": "consultation", "quantity": quantity, "unit": "visit",
                       "unit_price_cents": price, "amount_cents": price * quantity},
                      {"name": "ibuprofen", "quantity": 1, "unit": "box", "unit_price_cents": 2550,
                       "amount_cents": 2550}],
            "total_cents": total}),
        (to["insurance"], "fiscal", "claim", {**receipt, "amount_cents": first}),
        (to["insurance"], "fiscal", "complete", receipt),
        (to["insurer"], "fiscal", "claim", {**receipt, "amount_cents": total - first}),
        (to["coop"], "trace", "commission", {
            "lot": lot, "product": "puer-fresh-leaf", "quantity": 100 + i % 400, "unit": "kg",
            "origin": {"base": "menghai-bulang", "plot": f"plot {i % 20}", "harvest_date": "2024-04-12"}}),
        (to["lab"], "trace", "inspect", {"lot": lot, "report_hash": f"{i:064x}", "result": "pass"}),
        (to["coop"], "trace", "ship", {"shipment": shipment, "lot": lot, "quantity": 100, "to": to["workshop"]}),
        (to["workshop"], "trace", "receive", {"shipment": shipment}),
        (to["core"], "receivable", "issue", {"id": rid, "to": to["supplier"], "amount_cents": amount,
                                             "maturity_date": "2099-12-31"}),
        (to["supplier"], "receivable", "split", {"id": rid, "parts": [
            {"id": f"{rid}-a", "amount_cents": half},
            {"id": f"{rid}-b", "amount_cents": amount - half, "to": to["supplier2"]}]}),
        (to["supplier"], "receivable", "transfer", {"id": f"{rid}-a", "to": to["supplier2"]}),
        (to["supplier2"], "receivable", "finance", {"id": f"{rid}-b", "bank": to["bank"],
                                                    "advance_cents": (amount - half) * 97 // 100}),
    ]
