"""Admission rules shared by the mempool and proposal validation."""

from __future__ import annotations

import pytest

from ledger import admission
from tests.factories import key_for, make_genesis, make_tx

GENESIS, VALIDATORS, ACCOUNTS = make_genesis(tx_validity_window=10)


def test_reason_strings() -> None:
    assert admission.REASONS == ("malformed", "too_large", "wrong_chain", "unknown_sender",
                                 "bad_signature", "expired", "too_far_ahead", "duplicate",
                                 "mempool_full")


def test_static_problem() -> None:
    assert admission.static_problem(make_tx(ACCOUNTS["tax"], GENESIS), GENESIS) is None
    assert admission.static_problem(make_tx(ACCOUNTS["tax"], GENESIS, chain_id="other"),
                                    GENESIS) == "wrong_chain"
    for key in (key_for("account", "stranger"), VALIDATORS["node1"]):   # a node key is no account
        assert admission.static_problem(make_tx(key, GENESIS), GENESIS) == "unknown_sender"


@pytest.mark.parametrize("valid_until, height, problem", [
    (5, 4, None),            # may enter block 5, its last chance
    (5, 5, "expired"),       # block 6 is too late
    (0, 0, "expired"),
    (14, 4, None),           # exactly the window
    (15, 4, "too_far_ahead"),
    (10, 0, None), (11, 0, "too_far_ahead"),
])
def test_window_problem(valid_until: int, height: int, problem: str | None) -> None:
    tx = make_tx(ACCOUNTS["finance"], GENESIS, valid_until=valid_until)
    assert admission.window_problem(tx, height, GENESIS) == problem


def test_duplicate_problem() -> None:
    tx = make_tx(ACCOUNTS["finance"], GENESIS)
    assert admission.duplicate_problem(tx, {tx.id}.__contains__) == "duplicate"
    assert admission.duplicate_problem(tx, set().__contains__) is None
