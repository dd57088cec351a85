"""The kv contract and fiscal v1 (on a chain whose genesis keeps v1), run through the engine."""

from __future__ import annotations

import pytest

from ledger.contracts import REGISTRY, VERSIONS
from ledger.execution import query_state
from ledger.receipt import (ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION,
                            ERR_UNKNOWN_METHOD, OK)
from tests.factories import make_genesis, make_tx
from tests.ledger.chain import Chain

GENESIS, _, ACCOUNTS = make_genesis(
    accounts=("finance", "finance2", "tax", "auditor"),
    orgs={"finance2": "finance", "auditor": "tax"}, roles={"auditor": ("auditor",)},
    contract_versions={"fiscal": {"1": 1}})
_nonce = iter(range(10**9))


def call(account: str, contract: str, method: str, args) -> object:
    return make_tx(ACCOUNTS[account], GENESIS, contract, method, args, nonce=next(_nonce))


def run1(chain: Chain, account: str, contract: str, method: str, args):
    (receipt,) = chain.run([call(account, contract, method, args)]).receipts
    return receipt


@pytest.fixture
def chain() -> Chain:
    return Chain(GENESIS)


def test_registry() -> None:
    assert sorted(REGISTRY) == ["fiscal", "gov", "kv", "receivable", "trace"]
    assert sorted(REGISTRY["kv"].methods) == ["delete", "put"]
    assert sorted(VERSIONS["fiscal"][1].methods) == ["issue", "reimburse"]
    assert sorted(REGISTRY["fiscal"].methods) == ["claim", "complete", "issue", "release", "void"]
    assert REGISTRY["fiscal"] is VERSIONS["fiscal"][2]
    assert sorted(REGISTRY["trace"].methods) == [
        "aggregate", "commission", "disaggregate", "inspect", "receive", "retire", "sell", "ship",
        "transform"]
    assert sorted(REGISTRY["receivable"].methods) == ["finance", "issue", "settle", "split", "transfer"]


# -- kv ---------------------------------------------------------------------------

def test_kv_put_overwrite_delete(chain) -> None:
    assert run1(chain, "finance", "kv", "put", {"key": "a/b", "value": {"x": [1, b"\x00"]}}).ok
    assert query_state(chain.state.get, "kv", "a/b") == {"x": [1, b"\x00"]}
    assert run1(chain, "finance", "kv", "put", {"key": "a/b", "value": 2}).ok
    assert query_state(chain.state.get, "kv", "a/b") == 2
    assert run1(chain, "finance", "kv", "delete", {"key": "a/b"}).ok
    assert query_state(chain.state.get, "kv", "a/b") is None


def test_kv_key_belongs_to_the_first_writers_organisation(chain) -> None:
    assert run1(chain, "finance", "kv", "put", {"key": "k", "value": 1}).ok
    # another account of the same organisation may write and delete it
    assert run1(chain, "finance2", "kv", "put", {"key": "k", "value": 2}).ok
    for method, args in (("put", {"key": "k", "value": 3}), ("delete", {"key": "k"})):
        r = run1(chain, "tax", "kv", method, args)
        assert (r.status, r.message) == (ERR_PERMISSION, "key owned by finance")
    assert query_state(chain.state.get, "kv", "k") == 2
    # ownership outlives a delete: the key cannot be taken over
    assert run1(chain, "finance2", "kv", "delete", {"key": "k"}).ok
    r = run1(chain, "tax", "kv", "put", {"key": "k", "value": 4})
    assert (r.status, r.message) == (ERR_PERMISSION, "key owned by finance")
    assert run1(chain, "finance", "kv", "put", {"key": "k", "value": 5}).ok


def test_kv_needs_the_writer_role(chain) -> None:
    r = run1(chain, "auditor", "kv", "put", {"key": "k", "value": 1})
    assert (r.status, r.message) == (ERR_PERMISSION, "account auditor lacks role 'writer'")
    assert run1(chain, "auditor", "kv", "delete", {"key": "k"}).status == ERR_PERMISSION
    assert chain.state == chain.genesis_state


def test_kv_delete_of_a_missing_key(chain) -> None:
    r = run1(chain, "finance", "kv", "delete", {"key": "nope"})
    assert (r.status, r.message) == (ERR_NOT_FOUND, "no key 'nope'")


def test_kv_value_size_limit(chain) -> None:
    exactly = "x" * (4096 - 3)        # str8/16 header: 3 bytes for this length
    assert run1(chain, "finance", "kv", "put", {"key": "big", "value": exactly}).ok
    r = run1(chain, "finance", "kv", "put", {"key": "big", "value": exactly + "x"})
    assert (r.status, r.message) == (ERR_BAD_ARGS, "args.value: 4097 bytes packed, at most 4096")
    assert query_state(chain.state.get, "kv", "big") == exactly


@pytest.mark.parametrize("method, args, message", [
    ("put", [1, 2], "args: expected a map with key, value"),
    ("put", None, "args: expected a map with key, value"),
    ("put", {"key": "k"}, "args: missing value"),
    ("put", {"value": 1}, "args: missing key"),
    ("put", {"key": "k", "value": 1, "owner": "tax"}, "args: unknown field(s) 'owner'"),
    ("put", {"key": "", "value": 1}, "args.key: expected a string of 1..256 characters"),
    ("put", {"key": "k" * 257, "value": 1}, "args.key: expected a string of 1..256 characters"),
    ("put", {"key": b"k", "value": 1}, "args.key: expected a string of 1..256 characters"),
    ("put", {"key": "k", "value": None}, "args.value: must not be nil (use delete)"),
    ("delete", {"key": 5}, "args.key: expected a string of 1..256 characters"),
    ("delete", {}, "args: missing key"),
])
def test_kv_bad_args(chain, method, args, message) -> None:
    r = run1(chain, "finance", "kv", method, args)
    assert (r.status, r.message) == (ERR_BAD_ARGS, message)
    assert chain.state == chain.genesis_state


def test_kv_unknown_method(chain) -> None:
    assert run1(chain, "finance", "kv", "get", {"key": "k"}).status == ERR_UNKNOWN_METHOD


# -- fiscal -----------------------------------------------------------------------

ISSUE = {"receipt_no": "FP-2026-0001", "amount_cents": 12_345, "payer": "Hotel Lijiang"}


def test_fiscal_issue_and_query(chain) -> None:
    tx = call("tax", "fiscal", "issue", ISSUE)
    assert chain.run([tx]).receipts[0].ok
    assert query_state(chain.state.get, "fiscal", "FP-2026-0001") == {
        "receipt_no": "FP-2026-0001", "amount_cents": 12_345, "payer": "Hotel Lijiang",
        "issuer": "tax", "issuer_org": "tax", "issued_height": 1, "issued_tx_id": tx.id,
        "reimbursed": None}
    assert query_state(chain.state.get, "fiscal", "FP-2026-0002") is None


def test_fiscal_receipt_number_is_unique(chain) -> None:
    assert run1(chain, "tax", "fiscal", "issue", ISSUE).ok
    r = run1(chain, "finance", "fiscal", "issue", {**ISSUE, "amount_cents": 1})
    assert (r.status, r.message) == (ERR_CONFLICT, "receipt 'FP-2026-0001' already issued")
    assert query_state(chain.state.get, "fiscal", "FP-2026-0001")["amount_cents"] == 12_345


def test_fiscal_reimbursed_only_once(chain) -> None:
    assert run1(chain, "tax", "fiscal", "issue", ISSUE).ok
    tx = call("finance", "fiscal", "reimburse", {"receipt_no": "FP-2026-0001", "claimant": "Li Wei"})
    (receipt,) = chain.run([tx]).receipts
    assert receipt.ok and receipt.result == 12_345
    record = query_state(chain.state.get, "fiscal", "FP-2026-0001")
    assert record["reimbursed"] == {"claimant": "Li Wei", "account": "finance", "org": "finance",
                                    "height": 2, "tx_id": tx.id}
    again = run1(chain, "finance2", "fiscal", "reimburse",
                 {"receipt_no": "FP-2026-0001", "claimant": "Li Wei"})
    assert again.status == ERR_CONFLICT
    assert again.message == "receipt 'FP-2026-0001' already reimbursed to 'Li Wei' at height 2"
    assert query_state(chain.state.get, "fiscal", "FP-2026-0001") == record


def test_fiscal_double_reimbursement_within_one_block(chain) -> None:
    txs = [call("tax", "fiscal", "issue", ISSUE),
           call("finance", "fiscal", "reimburse", {"receipt_no": "FP-2026-0001", "claimant": "A"}),
           call("finance2", "fiscal", "reimburse", {"receipt_no": "FP-2026-0001", "claimant": "B"})]
    assert [r.status for r in chain.run(txs).receipts] == [OK, OK, ERR_CONFLICT]
    assert query_state(chain.state.get, "fiscal", "FP-2026-0001")["reimbursed"]["claimant"] == "A"


def test_fiscal_reimburse_unknown_receipt(chain) -> None:
    r = run1(chain, "finance", "fiscal", "reimburse", {"receipt_no": "nope", "claimant": "x"})
    assert (r.status, r.message) == (ERR_NOT_FOUND, "no fiscal receipt 'nope'")


def test_fiscal_needs_the_writer_role(chain) -> None:
    assert run1(chain, "auditor", "fiscal", "issue", ISSUE).status == ERR_PERMISSION
    assert run1(chain, "tax", "fiscal", "issue", ISSUE).ok
    r = run1(chain, "auditor", "fiscal", "reimburse", {"receipt_no": ISSUE["receipt_no"], "claimant": "x"})
    assert r.status == ERR_PERMISSION
    assert query_state(chain.state.get, "fiscal", ISSUE["receipt_no"])["reimbursed"] is None


@pytest.mark.parametrize("method, args, message", [
    ("issue", {**ISSUE, "amount_cents": 0}, "args.amount_cents: expected an integer in 1.."),
    ("issue", {**ISSUE, "amount_cents": -5}, "args.amount_cents: expected an integer in 1.."),
    ("issue", {**ISSUE, "amount_cents": 2**63}, "args.amount_cents: expected an integer in 1.."),
    ("issue", {**ISSUE, "amount_cents": True}, "args.amount_cents: expected an integer in 1.."),
    ("issue", {**ISSUE, "amount_cents": 1.5}, "args.amount_cents: expected an integer in 1.."),
    ("issue", {**ISSUE, "receipt_no": ""}, "args.receipt_no: expected a string of 1..128"),
    ("issue", {**ISSUE, "payer": 7}, "args.payer: expected a string of 1..256"),
    ("issue", {"receipt_no": "R"}, "args: missing amount_cents, payer"),
    ("reimburse", {"receipt_no": "R"}, "args: missing claimant"),
    ("reimburse", {"receipt_no": "R", "claimant": ""}, "args.claimant: expected a string of 1..256"),
    ("reimburse", "R", "args: expected a map with receipt_no, claimant"),
])
def test_fiscal_bad_args(chain, method, args, message) -> None:
    r = run1(chain, "tax", "fiscal", method, args)
    assert r.status == ERR_BAD_ARGS and r.message.startswith(message), r.message
    assert chain.state == chain.genesis_state
