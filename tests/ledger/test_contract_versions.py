"""Contract versions by activation height: genesis validation and execution."""

from __future__ import annotations

import pytest

from ledger import codec
from ledger.contracts import (DEFAULT_SCHEDULE, VERSIONS, CallContext, ContractState, build_schedule,
                              contract_at)
from ledger.errors import GenesisError
from ledger.execution import query_state
from ledger.genesis import parse_genesis
from ledger.receipt import (ERR_BAD_ARGS, ERR_NOT_FOUND, ERR_PERMISSION, ERR_UNKNOWN_CONTRACT,
                            ERR_UNKNOWN_METHOD)
from tests.factories import genesis_dict, make_genesis
from tests.ledger.world import ORGS, ROLES, World

ACCOUNTS_ROLES = {**ROLES, "finance": ("writer", "issuer")}


def test_defaults_run_the_newest_rules_from_height_1() -> None:
    schedule = build_schedule({})
    assert contract_at(schedule, "fiscal", 1) is VERSIONS["fiscal"][2]
    assert contract_at(schedule, "kv", 10**9) is VERSIONS["kv"][2]
    assert contract_at(schedule, "nope", 1) == "unknown contract 'nope'"
    assert set(DEFAULT_SCHEDULE) == set(VERSIONS)


def test_explicit_schedule() -> None:
    schedule = build_schedule({"fiscal": ((1, 1), (100, 2)), "trace": ((50, 1),)})
    assert [contract_at(schedule, "fiscal", h).version for h in (1, 99, 100, 10**6)] == [1, 1, 2, 2]
    assert contract_at(schedule, "trace", 49) == "contract 'trace' is not active before height 50"
    assert contract_at(schedule, "trace", 50) is VERSIONS["trace"][1]


def test_genesis_carries_activation_heights_and_round_trips() -> None:
    g, _, _ = make_genesis(contract_versions={"fiscal": {"2": 500, "1": 1}})
    assert g.contract_versions == (("fiscal", ((1, 1), (500, 2))),)
    assert contract_at(g.contract_schedule, "fiscal", 499).version == 1
    assert g.to_json()["contract_versions"] == {"fiscal": {"1": 1, "2": 500}}
    assert parse_genesis(g.to_json()) == g
    plain, _, _ = make_genesis()
    assert "contract_versions" not in plain.to_json() and plain.contract_versions == ()


@pytest.mark.parametrize("value, message", [
    ([], 'genesis.contract_versions: expected an object like {"fiscal": {"1": 1, "2": 5000}} '
         "(contract -> version -> first height)"),
    ({"nope": {"1": 1}}, "genesis.contract_versions: unknown contract 'nope' (contracts: fiscal, gov, kv, "
                         "receivable, trace)"),
    ({"fiscal": {}}, "genesis.contract_versions.fiscal: expected a non-empty object of version -> "
                     "first height"),
    ({"fiscal": {"3": 1}}, "genesis.contract_versions.fiscal: unknown version '3' (versions: 1, 2)"),
    ({"fiscal": {"v2": 1}}, "genesis.contract_versions.fiscal: unknown version 'v2' (versions: 1, 2)"),
    ({"fiscal": {"2": 0}}, "genesis.contract_versions.fiscal.2: expected an integer in 1..1000000000000"),
    ({"fiscal": {"2": "5"}}, "genesis.contract_versions.fiscal.2: expected an integer in 1..1000000000000"),
    ({"fiscal": {"1": 9, "2": 9}}, "genesis.contract_versions.fiscal: versions must activate one after "
                                   "another in increasing order; version 2 at height 9 follows version 1 "
                                   "at height 9"),
    ({"fiscal": {"1": 10, "2": 5}}, "genesis.contract_versions.fiscal: versions must activate one after "
                                    "another in increasing order; version 1 at height 10 follows version 2 "
                                    "at height 5"),
])
def test_bad_contract_versions_are_named(value, message) -> None:
    doc = genesis_dict()
    doc["contract_versions"] = value
    with pytest.raises(GenesisError) as err:
        parse_genesis(doc)
    assert str(err.value) == message


def _upgrading_world(at: int) -> World:
    genesis, _, accounts = make_genesis(accounts=tuple(ACCOUNTS_ROLES), roles=ACCOUNTS_ROLES, orgs=ORGS,
                                        contract_versions={"fiscal": {"1": 1, "2": at}})
    return World(genesis, accounts)


V2_ISSUE = {"code": "53010126", "number": "0000000001", "payer_name": "Li Wei",
            "payer_id_hash": "a1" * 32, "total_cents": 100,
            "items": [{"name": "x", "quantity": 1, "unit": "u", "unit_price_cents": 100,
                       "amount_cents": 100}]}


def test_each_block_runs_under_the_version_active_at_its_height() -> None:
    w = _upgrading_world(3)
    w.ok("finance", "fiscal", "issue", {"receipt_no": "FP-1", "amount_cents": 500, "payer": "Ms. Li"})
    w.refused("finance", "fiscal", "issue", V2_ISSUE, ERR_BAD_ARGS,         # v1's rules at height 2
              "args: missing receipt_no, amount_cents, payer")
    assert w.chain.height == 2
    # height 3: v2; v1's reimburse is gone, v2's methods work, v1's record is still readable
    w.refused("finance", "fiscal", "reimburse", {"receipt_no": "FP-1", "claimant": "Ms. Li"},
              ERR_UNKNOWN_METHOD, "contract fiscal (version 2) has no method 'reimburse'")
    w.ok("hospital", "fiscal", "issue", V2_ISSUE)
    assert query_state(w.chain.state.get, "fiscal", "FP-1")["amount_cents"] == 500
    assert query_state(w.chain.state.get, "fiscal", "53010126-0000000001")["total_cents"] == 100


def test_a_contract_does_not_exist_before_its_first_height() -> None:
    genesis, _, accounts = make_genesis(accounts=tuple(ROLES), roles=ROLES, orgs=ORGS,
                                        contract_versions={"trace": {"1": 3}})
    w = World(genesis, accounts)
    args = {"lot": "L1", "product": "p", "quantity": 1, "unit": "kg",
            "origin": {"base": "b", "plot": "p", "harvest_date": "2026-01-01"}}
    w.refused("coop", "trace", "commission", args, ERR_UNKNOWN_CONTRACT,
              "contract 'trace' is not active before height 3")
    w.chain.run([])
    w.ok("coop", "trace", "commission", args)


def test_same_blocks_under_another_schedule_give_another_root() -> None:
    """The activation height is part of the rules: replaying v1-era blocks as v2 diverges."""
    v1_blocks = [[("finance", "fiscal", "issue", {"receipt_no": f"FP-{i}", "amount_cents": 5, "payer": "p"})]
                 for i in range(3)]
    roots = []
    for at in (10, 1):
        w = _upgrading_world(at) if at > 1 else World(*make_genesis(
            accounts=tuple(ACCOUNTS_ROLES), roles=ACCOUNTS_ROLES, orgs=ORGS)[::2])
        roots.append([w.chain.run([w.tx(*call) for call in block]).state_root for block in v1_blocks])
    assert roots[0] != roots[1]


def _kv_world(contract_versions: dict) -> World:
    roles = {**ROLES, "tax": ("writer",)}
    genesis, _, accounts = make_genesis(accounts=tuple(roles), roles=roles, orgs=ORGS,
                                        contract_versions=contract_versions)
    return World(genesis, accounts)


def test_kv_keys_v1_wrote_move_to_one_record_when_v2_writes_them() -> None:
    w = _kv_world({"kv": {"1": 1, "2": 6}})
    for key in ("a", "b", "c", "d"):                     # heights 1-4: v1's two tables
        w.ok("finance", "kv", "put", {"key": key, "value": key.upper()})
    w.ok("finance", "kv", "delete", {"key": "d"})        # height 5: v1 keeps d's owner
    state = w.chain.state
    assert state[b"kv/owner/a"] == codec.pack("finance") and state[b"kv/data/a"] == codec.pack("A")
    assert b"kv/owner/d" in state and b"kv/data/d" not in state
    assert not any(k.startswith(b"kv/entry/") for k in state)
    # From height 6, v2: keys v1 wrote keep their owner and are read where v1 left them
    w.refused("tax", "kv", "put", {"key": "a", "value": 1}, ERR_PERMISSION, "key owned by finance")
    w.refused("tax", "kv", "put", {"key": "d", "value": 1}, ERR_PERMISSION, "key owned by finance")
    w.refused("finance", "kv", "delete", {"key": "d"}, ERR_NOT_FOUND, "no key 'd'")
    # ... and the first v2 write moves a key into one record, deleting v1's
    w.ok("finance", "kv", "put", {"key": "a", "value": 2})
    w.ok("finance", "kv", "delete", {"key": "b"})
    moved = w.chain.run([w.tx("finance", "kv", "put", {"key": "d", "value": "back"})])
    assert moved.receipts[0].ok                          # d had no v1 value left: only its owner goes
    assert moved.writes == {b"kv/entry/d": codec.pack(["finance", "back"]), b"kv/owner/d": None}
    w.ok("tax", "kv", "put", {"key": "e", "value": 5})
    assert {k: codec.unpack(v) for k, v in state.items() if k.startswith(b"kv/")} == {
        b"kv/entry/a": ["finance", 2], b"kv/entry/b": ["finance"], b"kv/entry/d": ["finance", "back"],
        b"kv/entry/e": ["tax", 5], b"kv/owner/c": "finance", b"kv/data/c": "C"}
    assert [query_state(state.get, "kv", k) for k in "abcdef"] == [2, None, "C", "back", 5, None]
    w.refused("finance", "kv", "put", {"key": "e", "value": 6}, ERR_PERMISSION, "key owned by tax")
    w.refused("finance", "kv", "delete", {"key": "b"}, ERR_NOT_FOUND, "no key 'b'")


def test_kv_on_a_chain_that_never_ran_v1_reads_one_record_per_put() -> None:
    w = _kv_world({})
    reads: list[bytes] = []
    state = w.chain.state

    def read(key: bytes) -> bytes | None:
        reads.append(key)
        return state.get(key)

    ctx = CallContext(w.genesis.config.account_by_key(w.accounts["finance"].public_key), 1, b"\x01" * 32,
                      0, w.genesis.config)
    writes: dict = {}
    VERSIONS["kv"][2].methods["put"](ctx, ContractState("kv", read, writes), {"key": "k", "value": 1})
    assert reads == [b"kv/entry/k"] and writes == {b"kv/entry/k": codec.pack(["finance", 1])}
