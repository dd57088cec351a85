"""fiscal v2: issue, void, two-step reimbursement, verify; every refusal's code and message."""

from __future__ import annotations

import copy

import pytest

from ledger.contracts import fiscal
from ledger.contracts.fiscal import compute_check_code, payer_id_hash
from ledger.execution import query_state
from ledger.receipt import ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION
from tests.ledger.world import World

PAYER = "a1" * 32
ISSUE = {"code": "53010126", "number": "0000001234", "payer_name": "Li Wei", "payer_id_hash": PAYER,
         "items": [{"name": "CT scan", "quantity": 1, "unit": "次", "unit_price_cents": 38000,
                    "amount_cents": 38000},
                   {"name": "Ibuprofen", "quantity": 3, "unit": "盒", "unit_price_cents": 1550,
                    "amount_cents": 4650}],
         "total_cents": 42650}
R = {"code": "53010126", "number": "0000001234"}
KEY = "53010126-0000001234"


def issue(w: World, account: str = "hospital", **changes) -> dict:
    return w.ok(account, "fiscal", "issue", {**ISSUE, **changes})


@pytest.fixture
def w() -> World:
    return World()


def status(w: World, key: str = KEY) -> dict:
    return query_state(w.chain.state.get, "fiscal", key)


def test_issue_records_the_receipt_with_a_check_code_from_the_tx(w) -> None:
    tx = w.tx("hospital", "fiscal", "issue", ISSUE)
    (receipt,) = w.chain.run([tx]).receipts
    check = compute_check_code(tx.id, "53010126", "0000001234", "hospital", 42650)
    assert receipt.result == {"receipt": KEY, "check_code": check, "total_cents": 42650}
    assert len(check) == 10 and check.isdigit()
    view = status(w)
    assert view["status"] == "valid" and view["kind"] == "blue"
    assert (view["issuer_org"], view["issuer_account"], view["payer_name"]) == ("hospital", "hospital", "Li Wei")
    assert view["payer_id_hash"] == PAYER and "id_number" not in str(view)
    assert view["items"][1] == {"name": "Ibuprofen", "quantity": 3, "unit": "盒",
                                "unit_price_cents": 1550, "amount_cents": 4650}
    assert (view["total_cents"], view["available_cents"], view["locked_cents"]) == (42650, 42650, 0)
    assert view["issued_height"] == 1 and view["issued_tx_id"] == tx.id.hex()
    assert view["issued_time"] == "2026-11-28T09:00:00+08:00"
    assert view["check_code"] == check


def test_check_code_depends_on_every_input() -> None:
    base = compute_check_code(b"\x01" * 32, "53010126", "0000001234", "hospital", 100)
    assert base == compute_check_code(b"\x01" * 32, "53010126", "0000001234", "hospital", 100)
    for args in ((b"\x02" * 32, "53010126", "0000001234", "hospital", 100),
                 (b"\x01" * 32, "53010127", "0000001234", "hospital", 100),
                 (b"\x01" * 32, "53010126", "0000001235", "hospital", 100),
                 (b"\x01" * 32, "53010126", "0000001234", "clinic", 100),
                 (b"\x01" * 32, "53010126", "0000001234", "hospital", 101)):
        assert compute_check_code(*args) != base


def test_payer_id_hash_is_salted_per_chain_and_normalised() -> None:
    h = payer_id_hash("chain-a", "11010519900101123X")
    assert len(h) == 64 and int(h, 16) >= 0
    assert payer_id_hash("chain-a", " 1101 0519 9001 01123x ") == h
    assert payer_id_hash("chain-b", "11010519900101123X") != h
    assert payer_id_hash("chain-a", "110105199001011230") != h
    for bad in ("", "110105-19900101", "x" * 33, "身份证"):
        with pytest.raises(ValueError, match="identity number"):
            payer_id_hash("chain-a", bad)


def test_partial_reimbursement_by_two_payers_then_full(w) -> None:
    issue(w)
    assert w.ok("insurance", "fiscal", "claim", {**R, "amount_cents": 30000}) == {
        "receipt": KEY, "locked_cents": 30000, "available_cents": 12650}
    assert status(w)["status"] == "locked"
    assert w.ok("insurance", "fiscal", "complete", R) == {
        "receipt": KEY, "reimbursed_cents": 30000, "total_reimbursed_cents": 30000}
    assert status(w)["status"] == "partially_reimbursed"
    w.ok("insurer", "fiscal", "claim", {**R, "amount_cents": 12650})
    w.ok("insurer", "fiscal", "complete", R)
    view = status(w)
    assert view["status"] == "reimbursed"
    assert (view["reimbursed_cents"], view["locked_cents"], view["available_cents"]) == (42650, 0, 0)
    assert [(c["org"], c["amount_cents"], c["state"]) for c in view["claims"]] == [
        ("insurance", 30000, "reimbursed"), ("insurer", 12650, "reimbursed")]
    # the employer's attempt afterwards: nothing left
    w.refused("employer", "fiscal", "claim", {**R, "amount_cents": 1}, ERR_CONFLICT,
              f"receipt {KEY}: claim of 1 cents exceeds what remains (0 of 42650 cents; "
              "0 locked, 42650 reimbursed)")


def test_the_same_organisation_never_reimburses_twice(w) -> None:
    issue(w)
    w.ok("employer", "fiscal", "claim", {**R, "amount_cents": 10000})
    w.refused("employer", "fiscal", "claim", {**R, "amount_cents": 100}, ERR_CONFLICT,
              f"employer holds a locked claim of 10000 cents on receipt {KEY} (height 2); "
              "an organisation reimburses a receipt once")
    w.ok("employer", "fiscal", "complete", R)
    w.refused("employer", "fiscal", "claim", {**R, "amount_cents": 100}, ERR_CONFLICT,
              f"employer already reimbursed 10000 cents on receipt {KEY} (height 2); "
              "an organisation reimburses a receipt once")
    w.refused("employer", "fiscal", "complete", R, ERR_CONFLICT,
              f"employer holds no locked claim on receipt {KEY} (its claim is already reimbursed)")
    w.refused("employer", "fiscal", "release", R, ERR_CONFLICT,
              f"employer holds no locked claim on receipt {KEY} (its claim is already reimbursed)")


def test_locked_amounts_count_against_the_total(w) -> None:
    issue(w)
    w.ok("insurance", "fiscal", "claim", {**R, "amount_cents": 40000})
    w.refused("insurer", "fiscal", "claim", {**R, "amount_cents": 2651}, ERR_CONFLICT,
              f"receipt {KEY}: claim of 2651 cents exceeds what remains (2650 of 42650 cents; "
              "40000 locked, 0 reimbursed)")
    w.ok("insurer", "fiscal", "claim", {**R, "amount_cents": 2650})


def test_release_frees_the_amount_and_lets_the_organisation_claim_again(w) -> None:
    issue(w)
    w.ok("insurance", "fiscal", "claim", {**R, "amount_cents": 42650})
    assert w.ok("insurance", "fiscal", "release", R) == {"receipt": KEY, "released_cents": 42650}
    view = status(w)
    assert view["status"] == "valid" and view["claims"] == [] and view["available_cents"] == 42650
    w.ok("insurance", "fiscal", "claim", {**R, "amount_cents": 100})


def test_only_the_claiming_organisation_completes_or_releases(w) -> None:
    issue(w)
    w.ok("insurance", "fiscal", "claim", {**R, "amount_cents": 100})
    for method in ("complete", "release"):
        w.refused("employer", "fiscal", method, R, ERR_CONFLICT,
                  f"employer holds no locked claim on receipt {KEY}")


def test_void_creates_a_linked_red_receipt(w) -> None:
    issue(w)
    args = {**R, "red_code": "53010126", "red_number": "0000009999", "reason": "wrong payer name"}
    result = w.ok("hospital-b", "fiscal", "void", args)      # another account of the issuing unit
    assert result["receipt"] == KEY and result["red_receipt"] == "53010126-0000009999"
    original, red = status(w), status(w, "53010126-0000009999")
    assert original["status"] == "voided" and original["voided_by"] == "53010126-0000009999"
    assert original["void"]["reason"] == "wrong payer name" and original["void"]["account"] == "hospital-b"
    assert original["available_cents"] == 0
    assert red["kind"] == "red" and red["status"] == "red" and red["red_of"] == KEY
    assert red["total_cents"] == 42650 and red["check_code"] == result["red_check_code"]
    assert red["payer_id_hash"] == PAYER
    # a voided receipt cannot be claimed, voided again; a red one neither
    w.refused("insurance", "fiscal", "claim", {**R, "amount_cents": 1}, ERR_CONFLICT,
              f"receipt {KEY} was voided by red receipt 53010126-0000009999; it cannot be reimbursed")
    w.refused("hospital", "fiscal", "void", {**args, "red_number": "0000009998"}, ERR_CONFLICT,
              f"receipt {KEY} was already voided by red receipt 53010126-0000009999 at height 2")
    red_key = {"code": "53010126", "number": "0000009999"}
    w.refused("insurance", "fiscal", "claim", {**red_key, "amount_cents": 1}, ERR_CONFLICT,
              f"receipt 53010126-0000009999 is a red receipt (it voids {KEY}); it cannot be reimbursed")
    w.refused("hospital", "fiscal", "void", {**args, **red_key, "red_number": "0000009998"},
              ERR_CONFLICT, "receipt 53010126-0000009999 is a red receipt; it cannot be voided")


def test_void_refusals(w) -> None:
    issue(w)
    args = {**R, "red_code": "53010126", "red_number": "0000009999", "reason": "typo"}
    w.refused("clinic", "fiscal", "void", args, ERR_PERMISSION,
              f"receipt {KEY} was issued by hospital; only its issuing unit may void it")
    w.refused("employer", "fiscal", "void", args, ERR_PERMISSION,
              "account employer lacks role 'issuer'")
    w.refused("hospital", "fiscal", "void", {**args, "number": "0000000001"}, ERR_NOT_FOUND,
              "no fiscal receipt 53010126-0000000001")
    w.refused("hospital", "fiscal", "void", {**args, "red_number": "0000001234"}, ERR_CONFLICT,
              f"receipt {KEY} already exists (issued by hospital at height 1)")
    w.ok("insurance", "fiscal", "claim", {**R, "amount_cents": 500})
    w.refused("hospital", "fiscal", "void", args, ERR_CONFLICT,
              f"receipt {KEY}: reimbursement has begun (insurance (locked 500 cents)); "
              "it can no longer be voided")
    w.ok("insurance", "fiscal", "release", R)
    w.ok("hospital", "fiscal", "void", args)     # released: nothing begun any more


def test_issue_refusals(w) -> None:
    w.refused("employer", "fiscal", "issue", ISSUE, ERR_PERMISSION, "account employer lacks role 'issuer'")
    issue(w)
    w.refused("clinic", "fiscal", "issue", ISSUE, ERR_CONFLICT,
              f"receipt {KEY} already exists (issued by hospital at height 2)")
    items = copy.deepcopy(ISSUE["items"])
    items[1]["amount_cents"] = 4600
    w.refused("hospital", "fiscal", "issue", {**ISSUE, "number": "0000000002", "items": items},
              ERR_BAD_ARGS, "args.items[1].amount_cents: 4600 is not quantity 3 x unit_price_cents "
                            "1550 = 4650")
    w.refused("hospital", "fiscal", "issue", {**ISSUE, "number": "0000000002", "total_cents": 42600},
              ERR_BAD_ARGS, "args.total_cents: 42600 is not the sum of the items' amounts, 42650")


@pytest.mark.parametrize("change, message", [
    ({"code": "5301012"}, "args.code: expected a string of 8..8 characters"),
    ({"code": "5301012X"}, "args.code: expected 8 digits, got '5301012X'"),
    ({"number": 1234}, "args.number: expected a string of 10..10 characters"),
    ({"payer_id_hash": "A1" * 32}, "args.payer_id_hash: expected 64 lowercase hex digits, got 'A1A1"),
    ({"payer_name": ""}, "args.payer_name: expected a string of 1..64 characters"),
    ({"items": []}, "args.items: expected a list of 1..50 items"),
    ({"items": [{"name": "x"}]}, "args.items[0]: missing quantity, unit, unit_price_cents, amount_cents"),
    ({"items": [{**ISSUE["items"][0], "quantity": 0}]},
     "args.items[0].quantity: expected an integer in 1..1000000"),
    ({"total_cents": 10**12 + 1}, "args.total_cents: expected an integer in 1..1000000000000"),
    ({"extra": 1}, "args: unknown field(s) 'extra'"),
])
def test_issue_bad_args(w, change, message) -> None:
    got = w.refused("hospital", "fiscal", "issue", {**ISSUE, **change}, ERR_BAD_ARGS)
    assert got.startswith(message), got


def test_claim_complete_release_refusals(w) -> None:
    w.refused("insurance", "fiscal", "claim", {**R, "amount_cents": 1}, ERR_NOT_FOUND,
              f"no fiscal receipt {KEY}")
    w.refused("insurance", "fiscal", "complete", R, ERR_NOT_FOUND, f"no fiscal receipt {KEY}")
    w.refused("insurance", "fiscal", "release", R, ERR_NOT_FOUND, f"no fiscal receipt {KEY}")
    issue(w)
    w.refused("hospital", "fiscal", "claim", {**R, "amount_cents": 1}, ERR_PERMISSION,
              "account hospital lacks role 'reimburser'")
    w.refused("hospital", "fiscal", "complete", R, ERR_PERMISSION,
              "account hospital lacks role 'reimburser'")
    w.refused("insurance", "fiscal", "claim", {**R, "amount_cents": 0}, ERR_BAD_ARGS,
              "args.amount_cents: expected an integer in 1..1000000000000")
    w.refused("insurance", "fiscal", "claim", R, ERR_BAD_ARGS, "args: missing amount_cents")
    w.refused("insurance", "fiscal", "claim", {**R, "amount_cents": 42651}, ERR_CONFLICT,
              f"receipt {KEY}: claim of 42651 cents exceeds what remains (42650 of 42650 cents; "
              "0 locked, 0 reimbursed)")
    w.refused("insurance", "fiscal", "release", R, ERR_CONFLICT,
              f"insurance holds no locked claim on receipt {KEY}")


def test_verify_answers_only_with_all_four_facts(w) -> None:
    check = issue(w)["check_code"]
    reader = w.reader("fiscal")
    found = fiscal.verify(reader, "53010126", "0000001234", check, 42650)
    assert found["found"] and found["status"] == "valid" and found["issuer_org"] == "hospital"
    assert found["total_cents"] == 42650 and "payer_name" not in found
    wrong = "0" * 10 if check != "0" * 10 else "1" * 10
    for args in (("53010126", "0000001234", wrong, 42650), ("53010126", "0000001234", check, 42651),
                 ("53010126", "0000001299", check, 42650)):
        assert fiscal.verify(reader, *args) == {"found": False, "receipt": f"{args[0]}-{args[1]}"}
    w.ok("insurance", "fiscal", "claim", {**R, "amount_cents": 1000})
    locked = fiscal.verify(w.reader("fiscal"), "53010126", "0000001234", check, 42650)
    assert (locked["status"], locked["locked_cents"], locked["available_cents"]) == ("locked", 1000, 41650)


def test_receipts_by_issuer_and_by_payer_page_in_issue_order(w) -> None:
    other = "b2" * 32
    for i in range(5):
        issue(w, number=f"00000000{i:02d}", payer_id_hash=PAYER if i % 2 == 0 else other)
    issue(w, "clinic", number="0000000099")
    w.ok("hospital", "fiscal", "void", {"code": "53010126", "number": "0000000000",
                                        "red_code": "53010126", "red_number": "0000000100",
                                        "reason": "duplicate"})
    reader = w.reader("fiscal")
    page1, cursor = fiscal.by_issuer(reader, "hospital", None, 4)
    assert [v["number"] for v in page1] == ["0000000000", "0000000001", "0000000002", "0000000003"]
    page2, end = fiscal.by_issuer(reader, "hospital", cursor, 4)
    assert [v["number"] for v in page2] == ["0000000004", "0000000100"] and end is None
    assert page1[0]["status"] == "voided" and page2[1]["kind"] == "red"
    mine, _ = fiscal.by_payer(reader, PAYER, None, 10)
    assert [v["number"] for v in mine] == ["0000000000", "0000000002", "0000000004", "0000000099",
                                           "0000000100"]
    assert [v["number"] for v in fiscal.by_issuer(reader, "clinic", None, 10)[0]] == ["0000000099"]
    assert fiscal.by_issuer(reader, "hospita", None, 10) == ([], None)     # a prefix is no group


def test_index_entries_are_written_with_the_receipt(w) -> None:
    tx = w.tx("hospital", "fiscal", "issue", ISSUE)
    writes = w.chain.run([tx]).writes
    assert sorted(writes) == [b"fiscal/by_issuer/hospital/000000000001/" + KEY.encode(),
                              f"fiscal/by_payer/{PAYER}/000000000001/{KEY}".encode(),
                              b"fiscal/receipt/" + KEY.encode()]


def test_state_query_reads_both_versions_keys(w) -> None:
    issue(w)
    assert status(w)["receipt"] == KEY
    assert query_state(w.chain.state.get, "fiscal", "53010126-0000000001") is None
    assert query_state(w.chain.state.get, "fiscal", "FP-1") is None     # a v1 key: v1's reader
