"""`ynchain receipt|trace|receivable` against a fake node: what they sign and
send, what they print, and their one-line errors."""

from __future__ import annotations

import json

import pytest

from ledger.contracts import fiscal, receivable, trace
from ledger.contracts.fiscal import payer_id_hash
from tests.ledger.test_fiscal import ISSUE
from tests.ledger.test_trace import LEAF
from tests.ledger.world import World

from .conftest import one_error_line
from .fake_node import CHAIN_ID

ITEM = "name=CT scan,quantity=1,unit=次,unit_price_cents=38000"


def call(run, fake, key_file, *args):
    return run(*args, "--node", fake.url, "--key", key_file)


def test_receipt_issue_builds_the_args_from_options(run, fake, key_file):
    fake.receipt = {"status": "ok", "code": 0, "message": "",
                    "result": {"receipt": "53010126-0000001234", "check_code": "0123456789",
                               "total_cents": 42650}}
    result = call(run, fake, key_file, "receipt", "issue", "--code", "53010126", "--number", "0000001234",
                  "--payer-name", "Li Wei", "--payer-id", "53010219900101123x", "--item", ITEM,
                  "--item", '{"name": "Ibuprofen", "quantity": 3, "unit": "盒", "unit_price_cents": 1550}')
    assert result.exit_code == 0, result.output
    (tx,) = fake.received
    assert (tx.contract, tx.method) == ("fiscal", "issue")
    assert tx.args == {
        "code": "53010126", "number": "0000001234", "payer_name": "Li Wei",
        "payer_id_hash": payer_id_hash(CHAIN_ID, "53010219900101123X"),
        "items": [{"name": "CT scan", "quantity": 1, "unit": "次", "unit_price_cents": 38000,
                   "amount_cents": 38000},
                  {"name": "Ibuprofen", "quantity": 3, "unit": "盒", "unit_price_cents": 1550,
                   "amount_cents": 4650}],
        "total_cents": 42650}
    assert "53010219900101123" not in json.dumps(tx.args)           # the plain id never leaves
    assert f"tx {tx.id.hex()} committed at height 8" in result.stdout
    assert "receipt 53010126-0000001234 issued: total 426.50 yuan, check code 0123456789" in result.stdout


def test_bad_arguments_are_refused_before_anything_is_signed(run, fake, key_file):
    line = one_error_line(call(run, fake, key_file, "receipt", "issue", "--code", "5301", "--number",
                               "0000001234", "--payer-name", "L", "--payer-id", "1", "--item", ITEM))
    assert line == "error: invalid arguments: args.code: expected a string of 8..8 characters"
    line = one_error_line(call(run, fake, key_file, "receipt", "issue", "--code", "53010126", "--number",
                               "0000001234", "--payer-name", "L", "--payer-id", "1-2", "--item", ITEM))
    assert line == "error: --payer-id: an identity number is 1..32 letters and digits"
    line = one_error_line(call(run, fake, key_file, "receipt", "issue", "--code", "53010126", "--number",
                               "0000001234", "--payer-name", "L", "--payer-id", "1", "--item", "name=x,qty=1"))
    assert line == ("error: --item #1: expected key=value pairs with keys from name, quantity, unit, "
                    "unit_price_cents, amount_cents, got 'qty=1'")
    line = one_error_line(call(run, fake, key_file, "trace", "commission", "--lot", "L1", "--product", "p",
                               "--quantity", "5", "--unit", "kg", "--origin-base", "b",
                               "--origin-plot", "p", "--origin-harvest-date", "2026-13-01"))
    assert line == "error: invalid arguments: args.origin.harvest_date: '2026-13-01' is not a calendar date"
    assert fake.received == []


def test_usage_errors(run, fake, key_file):
    line = one_error_line(call(run, fake, key_file, "receipt", "claim", "--code", "53010126"), 2)
    assert "missing option(s) --number, --amount-cents" in line
    line = one_error_line(call(run, fake, key_file, "receipt", "claim", "--code", "53010126",
                               "--args", "{}"), 2)
    assert "give --args or the options (--code), not both" in line
    line = one_error_line(call(run, fake, key_file, "receipt", "claim", "--args", "{bad"), 2)
    assert "--args" in line and "not valid JSON" in line
    line = one_error_line(call(run, fake, key_file, "trace", "inspect", "--lot", "L", "--report-hash",
                               "cd" * 32, "--result", "maybe"), 2)
    assert "'maybe' is not one of 'pass', 'fail'" in line
    assert fake.received == []


def test_a_refused_call_exits_1_with_the_contracts_reason(run, fake, key_file):
    fake.receipt = {"status": "conflict", "code": 9, "result": None,
                    "message": "receipt 53010126-0000001234: claim of 1 cents exceeds what remains"}
    result = call(run, fake, key_file, "receipt", "claim", "--code", "53010126", "--number", "0000001234",
                  "--amount-cents", "1")
    line = one_error_line(result)
    assert line.endswith("failed at height 8: conflict: receipt 53010126-0000001234: claim of 1 cents "
                         "exceeds what remains")
    fake.refuse_reason = "unknown_sender"
    assert "refused: unknown_sender" in one_error_line(
        call(run, fake, key_file, "receipt", "complete", "--code", "53010126", "--number", "0000001234"))


def test_json_and_no_wait(run, fake, key_file):
    result = call(run, fake, key_file, "receivable", "settle", "--id", "R1", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["committed"] is True
    result = call(run, fake, key_file, "receivable", "settle", "--id", "R1", "--no-wait")
    assert result.exit_code == 0 and result.stdout.strip() == fake.received[-1].id.hex()


def test_nested_and_repeated_options(run, fake, key_file):
    assert call(run, fake, key_file, "trace", "commission", "--lot", "L1", "--product", "puer-fresh-leaf",
                "--quantity", "500", "--unit", "kg", "--origin-base", "menghai-bulang", "--origin-plot",
                "Laobanzhang 7", "--origin-harvest-date", "2026-04-12").exit_code == 0
    assert fake.received[-1].args == {"lot": "L1", "product": "puer-fresh-leaf", "quantity": 500, "unit": "kg",
                                      "origin": {"base": "menghai-bulang", "plot": "Laobanzhang 7",
                                                 "harvest_date": "2026-04-12"}}
    assert call(run, fake, key_file, "trace", "transform", "--input", "lot=L1,quantity=400",
                "--input", "lot=L2,quantity=5", "--output-lot", "M1", "--output-product", "puer-maocha",
                "--output-quantity", "100", "--output-unit", "kg").exit_code == 0
    assert fake.received[-1].args == {"inputs": [{"lot": "L1", "quantity": 400}, {"lot": "L2", "quantity": 5}],
                                      "output": {"lot": "M1", "product": "puer-maocha", "quantity": 100,
                                                 "unit": "kg"}}
    assert call(run, fake, key_file, "receivable", "split", "--id", "R1", "--part", "id=A,amount_cents=30",
                "--part", "id=B,amount_cents=20,to=xishan-bearings").exit_code == 0
    assert fake.received[-1].args == {"id": "R1", "parts": [{"id": "A", "amount_cents": 30},
                                                            {"id": "B", "amount_cents": 20,
                                                             "to": "xishan-bearings"}]}
    line = one_error_line(call(run, fake, key_file, "receivable", "split", "--id", "R1",
                               "--part", "id=A,amount_cents=x", "--part", "id=B,amount_cents=1"))
    assert line == "error: --part #1: amount_cents must be an integer, got 'x'"


def test_help_comes_from_the_argument_descriptions(run):
    text = " ".join(run("receipt", "issue", "--help").stdout.split())     # undo the wrapping
    assert "票据代码, the receipt code (8 digits). Example: 53010126" in text
    assert "--payer-id" in text and "--payer-id-hash" not in text
    assert "Needs an account with the issuer role" in text
    text = " ".join(run("trace", "commission", "--help").stdout.split())
    assert "--origin-harvest-date" in text and "a date YYYY-MM-DD" in text
    assert "--gtin" in text and "[optional]" in text


# -- queries ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world():
    w = World()
    w.ok("hospital", "fiscal", "issue", ISSUE)
    w.ok("insurance", "fiscal", "claim", {"code": "53010126", "number": "0000001234", "amount_cents": 30000})
    w.ok("insurance", "fiscal", "complete", {"code": "53010126", "number": "0000001234"})
    w.ok("coop", "trace", "commission", LEAF)
    w.ok("coop", "trace", "ship", {"shipment": "S1", "lot": "LEAF-1", "quantity": 100, "to": "workshop"})
    w.ok("workshop", "trace", "receive", {"shipment": "S1"})
    w.ok("workshop", "trace", "transform", {"inputs": [{"lot": "LEAF-1", "quantity": 100}], "output": {
        "lot": "MAO-1", "product": "puer-maocha", "quantity": 25, "unit": "kg"}})
    w.ok("lab", "trace", "inspect", {"lot": "LEAF-1", "report_hash": "cd" * 32, "result": "fail"})
    w.ok("core", "receivable", "issue", {"id": "R1", "to": "steel", "amount_cents": 5000,
                                         "maturity_date": "2027-03-31"})
    w.ok("steel", "receivable", "finance", {"id": "R1", "bank": "bank", "advance_cents": 4800})
    return w


def test_receipt_verify_show_list(run, fake, world):
    found = fiscal.verify(world.reader("fiscal"), "53010126", "0000001234", "x", 0)
    fake.docs["/fiscal/verify"] = (200, {**found, "height": 10})
    assert one_error_line(run("receipt", "verify", "53010126", "0000001234", "--check-code", "0000000000",
                              "--amount-cents", "42650", "--node", fake.url)) == \
        "error: no receipt 53010126-0000001234 with check code 0000000000 and amount 426.50 yuan on this chain"
    receipt = fiscal.find(world.reader("fiscal"), "53010126", "0000001234")
    found = fiscal.verify(world.reader("fiscal"), "53010126", "0000001234", receipt.check_code, 42650)
    fake.docs["/fiscal/verify"] = (200, {**found, "height": 10})
    result = run("receipt", "verify", "53010126", "0000001234", "--check-code", receipt.check_code,
                 "--amount-cents", "42650", "--node", fake.url)
    assert result.exit_code == 0
    assert "receipt 53010126-0000001234 is partially_reimbursed: issued by hospital at height 1" in result.stdout
    assert "total 426.50 yuan, reimbursed 300.00 yuan, locked 0.00 yuan, available 126.50 yuan" in result.stdout
    assert f"check_code={receipt.check_code}" in fake.queries[-1] and "amount_cents=42650" in fake.queries[-1]
    view = fiscal.receipt_view(receipt)
    fake.docs["/fiscal/receipts/53010126/0000001234"] = (200, view)
    shown = run("receipt", "show", "53010126", "0000001234", "--node", fake.url).stdout
    assert "Ibuprofen" in shown and "46.50 yuan" in shown and "insurance" in shown
    fake.docs[f"/fiscal/payers/{payer_id_hash(CHAIN_ID, '53010219900101123X')}/receipts"] = (200, {"payer_hash": "x", "receipts": [view], "next": "000000000001/k",
                                           "height": 10})
    listed = run("receipt", "list", "--payer-id", "53010219900101123X", "--limit", "1", "--node", fake.url)
    assert listed.exit_code == 0 and "more: --after 000000000001/k" in listed.stdout
    assert "limit=1" in fake.queries[-1]
    assert "give exactly one of" in one_error_line(run("receipt", "list", "--node", fake.url), 2)


def test_trace_show_is_the_consumers_view(run, fake, world):
    view = trace.provenance(world.reader("trace"), "MAO-1")
    fake.docs["/trace/MAO-1"] = (200, {**view, "organisations": {"coop": "Menghai Tea Cooperative"},
                                       "height": 10})
    text = run("trace", "show", "MAO-1", "--node", fake.url).stdout
    assert "lot MAO-1 · puer-maocha · 25 kg · transformed" in text
    assert "!! FAILED INSPECTION: lot LEAF-1 it is made from, by lab at height 8" in text
    assert "made from:" in text and "origin: menghai-bulang, Laobanzhang 7, harvested 2026-04-12" in text
    assert "commission   Menghai Tea Cooperative: quantity 500, unit kg" in text
    assert "grown at menghai-bulang (Laobanzhang 7) by Menghai Tea Cooperative, harvested 2026-04-12" in text
    assert "inspected: fail (lot LEAF-1, lab, " in text and "status: FAILED INSPECTION" in text
    fake.docs["/01/06901234567892/10/MAO-1"] = (404, {"error": "no lot MAO-1 of GTIN 06901234567892 on this "
                                                               "chain", "code": "not_found"})
    line = one_error_line(run("trace", "show", "MAO-1", "--gtin", "06901234567892", "--node", fake.url))
    assert line.endswith("no lot MAO-1 of GTIN 06901234567892 on this chain")
    doc = json.loads(run("trace", "show", "MAO-1", "--json", "--node", fake.url).stdout)
    assert doc["upstream"][0]["lot"] == "LEAF-1"


def test_receivable_show_and_holdings(run, fake, world):
    reader = world.reader("receivable")
    fake.docs["/receivables/R1"] = (200, {**receivable.detail(reader, "R1"), "height": 10})
    text = run("receivable", "show", "R1", "--node", fake.url).stdout
    assert "financed:" in text and "by bank, advance 48.00 yuan" in text
    assert "finance    steel: to bank, from steel, advance 48.00 yuan" in text
    fake.docs["/receivables/holdings/bank"] = (200, {**receivable.holdings(reader, "bank", None, 20), "height": 10})
    text = run("receivable", "holdings", "bank", "--node", fake.url).stdout
    assert "bank holds 1 open receivable(s), 50.00 yuan in all" in text and "R1" in text


def test_amounts_and_event_details_read_like_money():
    from cli.contract_cli import event_details, yuan
    assert [yuan(v) for v in (0, 5, 12550, 50_000_000_00, -150)] == [
        "0.00 yuan", "0.05 yuan", "125.50 yuan", "50,000,000.00 yuan", "-1.50 yuan"]
    assert event_details({"event": "split", "org": "steel", "height": 3, "advance_cents": 1900,
                          "parts": [["A", 30, "steel"], ["B", 20, "bearings"]]}) == \
        "advance 19.00 yuan, parts A (0.30 yuan to steel) + B (0.20 yuan to bearings)"
    assert event_details({"event": "transform", "inputs": [["L1", 400]], "quantity": 100}) == \
        "inputs 400 of L1, quantity 100"
