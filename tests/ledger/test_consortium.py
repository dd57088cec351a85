"""The consortium configuration: genesis seeds it (nodes with roles, validity,
governance, every mistake naming its field), the state holds it (records
round trip, damage is an error), the epoch schedule, and the helpers the
consensus and node work call."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec, config_state
from ledger.codec import DecodeError
from ledger.consortium import (ACTIVE, OBSERVER, VALIDATOR, ChainConfig, ConsensusParams, Epoch,
                               GovernancePolicy, config_problem, config_view, format_utc, parse_utc)
from ledger.errors import GenesisError
from ledger.execution import genesis_state
from ledger.state_tree import EMPTY_ROOT, MemoryNodeStore, StateTree
from ledger.genesis import parse_genesis
from tests.factories import genesis_dict, key_for, make_genesis
from tests.ledger.gov_world import gov_genesis
from tests.ledger.world import scan_dict


def nodes_dict(**kw) -> dict:
    """genesis_dict in the current format: `nodes` with roles instead of `validators`."""
    doc = genesis_dict(**kw)
    doc["nodes"] = [{**v, "role": VALIDATOR} for v in doc.pop("validators")]
    return doc


# -- genesis -------------------------------------------------------------------------------

def test_nodes_with_roles_validity_and_governance_seed_the_configuration() -> None:
    doc = nodes_dict(governance={"threshold": {"num": 1, "den": 2, "strict": False},
                                 "proposal_lifetime_blocks": 50},
                     valid_until={"tax": "2027-06-30T00:00:00Z"})
    doc["nodes"][3]["role"] = OBSERVER
    g = parse_genesis(doc)
    config = g.config
    assert [v.name for v in g.validators] == ["node0", "node1", "node2"]
    assert config.epochs == (Epoch(0, 0, tuple((v.name, v.public_key) for v in g.validators), g.consensus),)
    assert config.nodes["node3"].role == OBSERVER and g.validator_keys == config.set_for_seq(1)
    assert config.accounts["tax"].valid_until_ms == parse_utc("2027-06-30T00:00:00Z")
    assert parse_utc("2027-06-30T00:00:00Z") == int(datetime(2027, 6, 30, tzinfo=timezone.utc).timestamp()) * 1000
    assert config.accounts["finance"].valid_until_ms is None
    assert config.governance == GovernancePolicy(1, 2, False, 50)
    assert config.retired_keys == {} and config.chain_id == g.chain_id


def test_genesis_json_round_trip_in_both_formats() -> None:
    legacy = parse_genesis(genesis_dict(valid_until={"tax": "2027-06-30"}))
    current = parse_genesis(nodes_dict(valid_until={"tax": "2027-06-30"}))
    assert legacy == current and legacy.config == current.config
    again = parse_genesis(json.loads(json.dumps(legacy.to_json())))
    assert again == legacy and again.config == legacy.config
    assert legacy.to_json()["accounts"][1]["valid_until"] == "2027-06-30T00:00:00Z"


def _mutate(doc: dict, path: str, value=None, delete: bool = False) -> None:
    *parents, last = path.split(".")
    for p in parents:
        doc = doc[int(p)] if p.isdigit() else doc[p]
    key = int(last) if last.isdigit() else last
    if delete:
        del doc[key]
    else:
        doc[key] = value


BROKEN = [
    ("validators", [], "genesis: give nodes (with roles) or the older validators list, not both"),
    ("nodes", None, "genesis: missing field(s): nodes"),
    ("nodes", [], "genesis.nodes: expected a list of 1..99999 nodes"),
    ("nodes.1.role", "leader", "genesis.nodes[1].role: expected validator or observer"),
    ("nodes.1.roles", [VALIDATOR], "genesis.nodes[1]: unknown field(s): roles"),
    ("nodes.2.name", "node0", "genesis.nodes[2]: duplicate node name"),
    ("nodes.2.p2p", "127.0.0.1:1", "genesis.nodes[2]: duplicate p2p address"),
    ("nodes.2.api", "127.0.0.1", "genesis.nodes[2].api: expected HOST:PORT"),
    ("nodes.2.api", "127.0.0.1:0", "genesis.nodes[2].api: expected HOST:PORT with a port in 1-65535"),
    ("accounts.0.valid_until", "tomorrow", "genesis.accounts[0].valid_until: expected an ISO-8601 UTC time"),
    ("accounts.0.valid_until", "2027-02-30", "genesis.accounts[0].valid_until: expected an ISO-8601 UTC time"),
    ("accounts.0.valid_until", "2027-01-01T00:00:00+08:00",
     "genesis.accounts[0].valid_until: expected an ISO-8601 UTC time"),
    ("accounts.0.valid_until", 1800000000000, "genesis.accounts[0].valid_until: expected an ISO-8601 UTC time"),
    ("accounts.0.roles", ["writer", "writer"], "genesis.accounts[0].roles: expected a list of roles from"),
    ("accounts.0.public_key", key_for("validator", "node2").public_key.hex(),
     "genesis.accounts[0].public_key: is also the key of node node2; every key must be used once"),
    ("governance", [], "genesis.governance: expected an object"),
    ("governance.quorum", 3, "genesis.governance: unknown field(s): quorum"),
    ("governance.threshold", {"num": 2}, "genesis.governance.threshold: missing field(s): den"),
    ("governance.threshold", {"num": 2, "den": 0}, "genesis.governance.threshold.den: expected an integer in 1..1000"),
    ("governance.threshold", {"num": 4, "den": 3}, "genesis.governance.threshold.num: expected an integer in 1..den"),
    ("governance.threshold", {"num": 2, "den": 3, "strict": "yes"},
     "genesis.governance.threshold.strict: expected true or false"),
    ("governance.threshold", {"num": 3, "den": 3},
     "genesis.governance.threshold: more than all organisations can never approve; use strict false"),
    ("governance.proposal_lifetime_blocks", 0,
     "genesis.governance.proposal_lifetime_blocks: expected an integer in 1..1000000000"),
]


@pytest.mark.parametrize("path, value, message", BROKEN, ids=[m for _, _, m in BROKEN])
def test_each_mistake_names_its_field(path: str, value, message: str) -> None:
    doc = copy.deepcopy(nodes_dict(governance={}))
    _mutate(doc, path, value, delete=value is None)
    with pytest.raises(GenesisError) as info:
        parse_genesis(doc)
    assert str(info.value).startswith(message), str(info.value)


def test_a_genesis_needs_a_validator() -> None:
    doc = nodes_dict()
    for node in doc["nodes"]:
        node["role"] = OBSERVER
    with pytest.raises(GenesisError, match=r"genesis.nodes: expected 1..1024 nodes with role validator, got 0"):
        parse_genesis(doc)


def test_times_are_whole_seconds_in_utc() -> None:
    assert parse_utc("1970-01-01") == 0 and parse_utc("1970-01-01T00:00:01Z") == 1000
    assert format_utc(parse_utc("2027-06-30T12:34:56Z")) == "2027-06-30T12:34:56Z"
    for bad in ("2027-06-30T12:34Z", "2027-13-01", "27-06-30", "", None, "2027-06-30T24:00:00Z"):
        assert parse_utc(bad) is None


# -- the policy ------------------------------------------------------------------------------

@given(num=st.integers(1, 12), den=st.integers(1, 12), strict=st.booleans(), n=st.integers(0, 40))
def test_needed_is_the_fewest_approvals_that_reach_the_threshold(num, den, strict, n) -> None:
    if num > den or (strict and num == den):
        return
    policy = GovernancePolicy(num, den, strict)
    k = policy.needed(n)
    assert policy.reached(k, n) and not policy.reached(k - 1, n)


def test_more_than_two_thirds_of_four_is_three() -> None:
    policy = GovernancePolicy()
    assert [policy.needed(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 3, 3, 4, 5, 5]


# -- the epoch schedule ------------------------------------------------------------------------

G, VKEYS, _ = make_genesis(5)
BASE = G.config


def _with_roles(config: ChainConfig, **roles: str) -> ChainConfig:
    return config.changed(nodes=[replace(n, role=roles.get(n.name, n.role)) for n in config.nodes.values()])


def test_a_change_takes_effect_at_the_first_checkpoint_a_window_ahead() -> None:
    demoted = _with_roles(BASE, node4=OBSERVER).rescheduled(17)     # 17 + 64 = 81 -> 96
    assert [e.start for e in demoted.epochs] == [0, 96]
    assert demoted.epoch_of(96).number == 0 and demoted.epoch_of(97).number == 1
    assert demoted.set_for_seq(96) == BASE.set_for_seq(1) and len(demoted.set_for_seq(97)) == 4
    assert demoted.pending_boundary(95) == 96 and demoted.pending_boundary(96) is None
    assert _with_roles(BASE, node4=OBSERVER).rescheduled(16).epochs[1].start == 80    # 16 + 64 = 80
    # nothing changed for consensus: no epoch
    assert BASE.rescheduled(5) is BASE


def test_changes_before_a_pending_boundary_join_it_and_later_ones_follow_it() -> None:
    one = _with_roles(BASE, node4=OBSERVER).rescheduled(17)
    two = _with_roles(one, node3=OBSERVER).rescheduled(30)          # 30 + 64 = 94 <= 96: joins
    assert [e.start for e in two.epochs] == [0, 96] and two.epochs[1].names == ("node0", "node1", "node2")
    three = _with_roles(two, node3=VALIDATOR).rescheduled(40)       # 104 > 96: a new epoch at 112
    assert [e.start for e in three.epochs] == [0, 96, 112]
    assert three.epochs[2].names == ("node0", "node1", "node2", "node3")
    # a new validator is appended; the others keep their indexes
    four = _with_roles(three, node4=VALIDATOR).rescheduled(200)
    assert four.epochs[-1].names == ("node0", "node1", "node2", "node3", "node4")
    assert four.epochs[-1].start == 272                             # 200 + 64 = 264 -> 272 (grid of 112 + 16k)


def test_a_changed_checkpoint_interval_moves_the_grid_from_its_epoch_on() -> None:
    params = replace(BASE.consensus, checkpoint_interval=10, window=40)
    changed = BASE.rescheduled(1, params)                          # 1 + 64 -> 80
    assert changed.epochs[1].start == 80 and changed.params_at(81).checkpoint_interval == 10
    later = _with_roles(changed, node4=OBSERVER).rescheduled(100)   # window of epoch 1: 40 -> 140 -> 140
    assert later.epochs[2].start == 140 and later.epochs[1].is_checkpoint(140)


def _too_early(config: ChainConfig, height: int, params: ConsensusParams | None = None) -> ChainConfig:
    """A deliberately broken rule: the boundary one checkpoint interval too early."""
    changed = ChainConfig.rescheduled(config, height, params)
    if changed.epochs == config.epochs:
        return changed
    last = changed.epochs[-1]
    early = replace(last, start=max(last.start - last.params.checkpoint_interval, config.epochs[-1].start + 1))
    return changed.changed(epochs=(*changed.epochs[:-1], early))


def _violations(changes, reschedule=ChainConfig.rescheduled) -> list[int]:
    """Seqs whose validator set or parameters a change at h altered although a
    replica that executed h - 1 may already work on them (s <= h - 1 + W)."""
    config, height, found = BASE, 0, []
    for step, node, promote, interval, window in changes:
        height += step
        w = config.epoch_of(height).params.window
        before = [(config.set_for_seq(s), config.params_at(s)) for s in range(1, height + w)]
        nodes = _with_roles(config, **{node: VALIDATOR if promote else OBSERVER})
        if not nodes.validators:
            continue
        config = reschedule(nodes, height, replace(config.consensus, checkpoint_interval=interval, window=window))
        after = [(config.set_for_seq(s), config.params_at(s)) for s in range(1, height + w)]
        found += [s + 1 for s, (b, a) in enumerate(zip(before, after)) if b != a]
        starts = [e.start for e in config.epochs]
        assert starts == sorted(set(starts)) and [e.number for e in config.epochs] == list(range(len(starts)))
    return found


CHANGES = st.lists(st.tuples(st.integers(1, 120), st.sampled_from(["node1", "node2", "node3", "node4"]),
                             st.booleans(), st.sampled_from([8, 16]), st.sampled_from([32, 64])),
                   min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(CHANGES)
def test_no_change_alters_the_set_of_a_seq_within_a_window_of_its_block(changes) -> None:
    """The safety property of the schedule: after executing block h - 1, a
    replica may work on seqs up to h - 1 + W; the change block h makes never
    alters the validator set or the parameters of those seqs, nor of any
    earlier one; and every boundary is a checkpoint of the epoch it ends."""
    assert _violations(changes) == []
    config, height = BASE, 0
    for step, node, promote, interval, window in changes:
        height += step
        nodes = _with_roles(config, **{node: VALIDATOR if promote else OBSERVER})
        if nodes.validators:
            config = nodes.rescheduled(height, replace(config.consensus, checkpoint_interval=interval,
                                                       window=window))
    for prev, nxt in zip(config.epochs, config.epochs[1:]):
        assert prev.is_checkpoint(nxt.start)


def test_the_property_catches_a_boundary_set_too_early() -> None:
    """Self-check: the same check finds the seqs a broken rule would decide
    with the wrong set."""
    change = [(16, "node4", False, 16, 64)]          # 16 + 64 = 80 -> 80; broken: 64
    assert _violations(change) == []
    assert _violations(change, _too_early) == list(range(65, 80))   # seqs a replica at 15 may decide


# -- the state ----------------------------------------------------------------------------------

def test_records_round_trip_and_the_genesis_state_is_deterministic() -> None:
    config = _with_roles(BASE, node4=OBSERVER).rescheduled(3)
    records = config_state.to_records(config)
    assert config_state.from_records(config.chain_id, config.contract_schedule, records) == config
    writes, root = genesis_state(BASE)
    assert (writes, root) == genesis_state(make_genesis(5)[0].config)
    assert root == StateTree(MemoryNodeStore()).apply(0, writes).root and root != EMPTY_ROOT
    assert config_state.load(BASE.chain_id, BASE.contract_schedule, scan_dict(dict(writes))) == BASE
    assert all(k.startswith(b"gov/") for k in writes)


def test_apply_writes_follows_configuration_records_only() -> None:
    assert config_state.apply_writes(BASE, {b"gov/proposal/000000000001": codec.pack([1])}) is None
    changed = _with_roles(BASE, node4=OBSERVER)
    writes = {f"gov/{t}/{k}".encode(): None if r is None else codec.pack(r)
              for t, k, r in config_state.diff(BASE, changed)}
    assert config_state.apply_writes(BASE, writes) == changed


@pytest.mark.parametrize("key, value, message", [
    (b"gov/node/node1", codec.pack(["org"]), "gov/node/node1: expected 5 fields"),
    (b"gov/node/node1", codec.pack(["finance", b"k" * 32, "host", "h:1", "validator"]), "expected HOST:PORT"),
    (b"gov/account/tax", codec.pack(["tax", b"k", ["writer"], None, "active"]), "expected 32 bytes"),
    (b"gov/account/tax", codec.pack(["tax", b"k" * 32, ["writer"], None, "gone"]), "expected one of active"),
    (b"gov/epoch/000000", None, "expected epochs 0, 1, ..."),
    (b"gov/policy/governance", None, "expected exactly the governance policy"),
])
def test_a_damaged_configuration_in_the_state_is_an_error(key, value, message) -> None:
    state = dict(genesis_state(BASE)[0])
    if value is None:
        del state[key]
    else:
        state[key] = value
    with pytest.raises(DecodeError, match=message):
        config_state.load(BASE.chain_id, BASE.contract_schedule, scan_dict(state))
    with pytest.raises(DecodeError, match="holds no consortium configuration"):
        config_state.load(BASE.chain_id, BASE.contract_schedule, scan_dict({}))


# -- helpers ---------------------------------------------------------------------------------

def test_invariants_every_change_keeps() -> None:
    base = gov_genesis()[0].config
    assert config_problem(base, base) is None
    key0 = base.nodes["node0"].public_key
    clash = base.changed(accounts=[replace(a, public_key=key0) if a.name == "tax-clerk" else a
                                   for a in base.accounts.values()])
    assert config_problem(base, clash) == f"node node0 and account tax-clerk would share key {key0.hex()}"
    p2p = base.changed(nodes=[replace(n, p2p=base.nodes["node0"].p2p) if n.name == "node1" else n
                              for n in base.nodes.values()])
    assert config_problem(base, p2p) == "nodes node0 and node1 would share p2p address 127.0.0.1:1"
    no_admin = base.changed(accounts=[a for a in base.accounts.values() if a.name != "tax-admin"])
    assert config_problem(base, no_admin).startswith("organisation tax would be left without an active admin")
    # an organisation without an admin before a change does not need one after it
    assert config_problem(no_admin, no_admin) is None
    orphan = base.changed(organisations=[o for o in base.organisations.values() if o.name != "tourism"])
    assert "tourism-admin would belong to organisation tourism, which is not active" in \
        config_problem(orphan, orphan)


def test_expiring_keys_and_the_view() -> None:
    t = parse_utc("2027-01-01T00:00:00Z")
    g, _, _ = make_genesis(valid_until={"tax": "2027-01-11", "finance": "2027-03-01"})
    config = g.config
    soon = config.expiring_keys("tax", t, 30 * 86_400_000)
    assert [(k.account, k.seconds_left) for k in soon] == [("tax", 10 * 86400)]
    assert config.expiring_keys("finance", t, 30 * 86_400_000) == []
    assert config.expiring_keys("tax", t + 11 * 86_400_000, 0)[0].seconds_left == -86400
    view = config_view(config, 7)
    assert view["height"] == 7 and view["pending_boundary"] is None
    assert {a["name"]: a["valid_until"] for a in view["accounts"]}["tax"] == "2027-01-11T00:00:00Z"
    assert view["epochs"][0]["validators"][0] == {"name": "node0", "public_key": VKEYS["node0"].public_key.hex()}
    assert view["governance"]["needed"] == 1 and view["governance"]["voting_orgs"] == []
    assert all(o["status"] == ACTIVE for o in view["organisations"])
    assert view["consensus"] == {name: getattr(ConsensusParams(), name) for name in ConsensusParams.__dataclass_fields__}
