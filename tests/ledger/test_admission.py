"""Admission rules shared by the mempool, proposal validation and execution."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger import admission
from ledger.consortium import ACCOUNT_KEY, NODE_KEY, REVOKED, RetiredKey, parse_utc
from tests.factories import key_for, make_genesis, make_tx

GENESIS, VALIDATORS, ACCOUNTS = make_genesis(tx_validity_window=10)
CONFIG = GENESIS.config
T0 = parse_utc("2027-01-01T00:00:00Z")


def test_reason_strings() -> None:
    assert admission.REASONS == ("malformed", "too_large", "wrong_chain", "unknown_sender",
                                 "key_rotated", "account_revoked", "key_expired",
                                 "bad_signature", "expired", "too_far_ahead", "duplicate",
                                 "mempool_full")


def test_static_problem() -> None:
    assert admission.static_problem(make_tx(ACCOUNTS["tax"], GENESIS), CONFIG) is None
    assert admission.static_problem(make_tx(ACCOUNTS["tax"], GENESIS, chain_id="other"),
                                    CONFIG) == "wrong_chain"
    for key in (key_for("account", "stranger"), VALIDATORS["node1"]):   # a node key is no account
        assert admission.static_problem(make_tx(key, GENESIS), CONFIG) == "unknown_sender"


def _config_with(**changes):
    """CONFIG with account `tax` changed (valid_until_ms=..., status=...)."""
    tax = CONFIG.accounts["tax"]
    return CONFIG.changed(accounts=[replace(tax, **changes) if a is tax else a
                                    for a in CONFIG.accounts.values()])


def test_sender_problem_valid_until_is_a_block_time() -> None:
    tx = make_tx(ACCOUNTS["tax"], GENESIS)
    config = _config_with(valid_until_ms=T0)
    assert admission.sender_problem(tx, config, T0 - 1) is None
    assert admission.sender_problem(tx, config, T0) == "key_expired"
    assert admission.sender_problem(tx, CONFIG, 10**15) is None          # no valid_until: never
    # an expiry can be renewed: it is no static problem
    assert admission.static_problem(tx, config) is None


def test_sender_problem_revoked() -> None:
    tx = make_tx(ACCOUNTS["tax"], GENESIS)
    config = _config_with(status=REVOKED)
    assert admission.sender_problem(tx, config, T0) == "account_revoked"
    assert admission.problem(tx, 0, config, T0) == "account_revoked"


def test_rotated_key_is_refused_but_known() -> None:
    old, new = ACCOUNTS["tax"], key_for("account", "tax-new")
    tax = CONFIG.accounts["tax"]
    config = CONFIG.changed(
        accounts=[replace(tax, public_key=new.public_key) if a is tax else a for a in CONFIG.accounts.values()],
        retired_keys=[RetiredKey(old.public_key, ACCOUNT_KEY, "tax", 7)])
    assert admission.sender_problem(make_tx(old, GENESIS), config, T0) == "key_rotated"
    assert admission.sender_problem(make_tx(new, GENESIS), config, T0) is None
    # a key once known stays known: a proposal carrying it is judged by execution
    assert admission.static_problem(make_tx(old, GENESIS), config) is None
    # a retired node key never was an account's
    node_retired = CONFIG.changed(retired_keys=[RetiredKey(VALIDATORS["node1"].public_key, NODE_KEY, "node1", 3)])
    assert admission.sender_problem(make_tx(VALIDATORS["node1"], GENESIS), node_retired, T0) == "unknown_sender"


def test_problem_checks_chain_sender_window_in_order() -> None:
    tx = make_tx(ACCOUNTS["tax"], GENESIS, valid_until=5, chain_id="other")
    assert admission.problem(tx, 10, _config_with(status=REVOKED), T0) == "wrong_chain"
    tx = make_tx(ACCOUNTS["tax"], GENESIS, valid_until=5)
    assert admission.problem(tx, 10, _config_with(status=REVOKED), T0) == "account_revoked"
    assert admission.problem(tx, 10, CONFIG, T0) == "expired"
    assert admission.problem(tx, 0, CONFIG, T0) is None


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
    assert admission.window_problem(tx, height, CONFIG) == problem


def test_window_follows_the_epoch_of_the_next_block() -> None:
    """A governed change of tx_validity_window applies from its epoch on."""
    wider = replace(CONFIG.consensus, tx_validity_window=100)
    config = CONFIG.rescheduled(1, wider)        # epoch 1 from the first checkpoint >= 1 + 64
    start = config.epochs[1].start
    assert start == 80
    tx = make_tx(ACCOUNTS["finance"], GENESIS, valid_until=start + 50)
    assert admission.window_problem(tx, start - 1, config) == "too_far_ahead"   # block `start`: old epoch
    assert admission.window_problem(tx, start, config) is None                   # block start+1: new


def test_duplicate_problem() -> None:
    tx = make_tx(ACCOUNTS["finance"], GENESIS)
    assert admission.duplicate_problem(tx, {tx.id}.__contains__) == "duplicate"
    assert admission.duplicate_problem(tx, set().__contains__) is None
