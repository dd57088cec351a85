"""The gov contract through the engine: proposals, votes, thresholds, expiry,
every refusal's code and message (and that it changes nothing), each action,
key rotation and replacement, and execution seeing a change in the same block."""

from __future__ import annotations

import pytest

from ledger import config_state
from ledger.consortium import OBSERVER, REMOVED, REVOKED, parse_utc
from ledger.receipt import ERR_BAD_ARGS, ERR_CONFLICT, ERR_INVALID, ERR_NOT_FOUND, ERR_PERMISSION, OK
from tests.factories import key_for, make_tx
from tests.ledger.gov_world import GovWorld, new_key
from tests.ledger.world import scan_dict

BANK_NODE = {"org": "bank", "public_key": new_key("node5"), "p2p": "10.0.0.5:26656", "api": "10.0.0.5:8545"}


@pytest.fixture
def w() -> GovWorld:
    return GovWorld()


def test_three_of_four_organisations_carry_a_proposal_in_the_block_that_reaches_it(w) -> None:
    r = w.propose("finance-admin", "add_org", "bank", {"display_name": "Dianchi Commercial Bank"})
    assert r.ok and r.result["status"] == "open"
    assert (r.result["approvals"], r.result["needed"], r.result["electorate"]) == (1, 3, 4)
    assert w.vote("tax-admin", 1).result["status"] == "open"
    assert w.config.organisation("bank") is None
    r = w.vote("agriculture-admin", 1)
    assert r.result["status"] == "executed" and r.result["closed_height"] == w.chain.height
    assert w.config.organisation("bank").display_name == "Dianchi Commercial Bank"
    # the new organisation has no admin yet, so it does not vote
    assert w.config.voting_orgs == ("agriculture", "finance", "tax", "tourism")
    # the state holds exactly what the node keeps in memory
    assert config_state.load(w.genesis.chain_id, w.genesis.contract_schedule, scan_dict(w.chain.state)) == w.config


def test_a_second_vote_of_one_organisation_counts_once(w) -> None:
    w.propose("finance-admin", "add_org", "bank")
    msg = w.refused("finance-admin2", "gov", "approve", {"id": 1}, ERR_CONFLICT)
    assert msg.startswith("proposal 1: organisation finance has approved it already (account finance-admin "
                          "at height 1); one vote per organisation")
    assert w.vote("tax-admin", 1).result["approvals"] == 2
    w.refused("tax-admin", "gov", "approve", {"id": 1}, ERR_CONFLICT)
    r = w.vote("tourism-admin", 1)
    assert r.result["status"] == "executed" and r.result["approvals"] == 3


def test_an_organisation_may_change_its_vote_until_decided(w) -> None:
    w.propose("finance-admin", "add_org", "bank")
    assert w.vote("tax-admin", 1, "reject").result["rejections"] == 1
    r = w.vote("tax-admin", 1, "approve")
    assert (r.result["approvals"], r.result["rejections"]) == (2, 0)
    assert [v["vote"] for v in r.result["votes"]] == ["approve", "approve"]


def test_enough_rejections_close_a_proposal(w) -> None:
    w.propose("finance-admin", "add_org", "bank")
    assert w.vote("tax-admin", 1, "reject").result["status"] == "open"
    r = w.vote("tourism-admin", 1, "reject")
    assert r.result["status"] == "rejected"
    assert r.result["note"] == "rejected: it can no longer reach more than 2/3 of the organisations"
    w.refused("agriculture-admin", "gov", "approve", {"id": 1}, ERR_CONFLICT,
              f"proposal 1: is rejected (at height {w.chain.height}); it takes no more votes")
    assert w.config.organisation("bank") is None


def test_votes_and_proposals_need_an_admin(w) -> None:
    w.refused("tax-clerk", "gov", "propose", {"action": "add_org", "target": "bank"}, ERR_PERMISSION,
              "account tax-clerk lacks role 'admin'")
    w.propose("finance-admin", "add_org", "bank")
    w.refused("tax-clerk", "gov", "approve", {"id": 1}, ERR_PERMISSION, "account tax-clerk lacks role 'admin'")
    w.refused("tax-clerk", "gov", "reject", {"id": 1}, ERR_PERMISSION, "account tax-clerk lacks role 'admin'")


def test_expiry_is_checked_on_every_vote() -> None:
    w = GovWorld(governance={"proposal_lifetime_blocks": 2})
    r = w.propose("finance-admin", "add_org", "bank")                      # height 1, expires after 3
    assert r.result["expires_height"] == 3
    assert w.vote("tax-admin", 1).ok                                        # height 2
    w.call("finance-clerk", "kv", "put", {"key": "k", "value": 1})          # height 3
    w.refused("agriculture-admin", "gov", "approve", {"id": 1}, ERR_CONFLICT,
              "proposal 1: expired at height 3 (made at height 1, lifetime 2 blocks); propose it again")
    assert w.config.organisation("bank") is None
    # an expired proposal no longer blocks its (action, target); it is closed as expired
    r = w.propose("tax-admin", "add_org", "bank")
    assert r.ok and r.result["id"] == 2
    old = w.raw("gov", "proposal", "000000000001")
    assert old[8] == "expired"


def test_one_open_proposal_per_action_and_target(w) -> None:
    w.propose("finance-admin", "add_org", "bank")
    w.refused("tax-admin", "gov", "propose", {"action": "add_org", "target": "bank",
                                              "params": {"display_name": "Bank"}}, ERR_CONFLICT,
              "proposal 1 (add_org bank) is open until height 10001; vote on it, "
              "or its organisation may withdraw it")
    assert w.propose("tax-admin", "add_org", "bank2").ok                   # another target


def test_withdraw(w) -> None:
    w.propose("finance-admin", "add_org", "bank")
    w.refused("tax-admin", "gov", "withdraw", {"id": 1}, ERR_PERMISSION,
              "proposal 1: only an admin of organisation finance, which made it, may withdraw it")
    r = w.call("finance-admin2", "gov", "withdraw", {"id": 1})
    assert r.result["status"] == "withdrawn" and r.result["note"].startswith("withdrawn by finance-admin2")
    w.refused("tax-admin", "gov", "approve", {"id": 1}, ERR_CONFLICT,
              f"proposal 1: is withdrawn (at height {w.chain.height}); it takes no more votes")
    assert w.propose("tax-admin", "add_org", "bank").ok                    # the target is free again


def test_unknown_proposal_and_bad_arguments(w) -> None:
    w.refused("tax-admin", "gov", "approve", {"id": 99}, ERR_NOT_FOUND, "proposal 99: no such proposal")
    w.refused("tax-admin", "gov", "approve", {"id": 0}, ERR_BAD_ARGS,
              "args.id: expected an integer in 1..1000000000000")
    msg = w.refused("tax-admin", "gov", "propose", {"action": "coup", "target": "x"}, ERR_BAD_ARGS)
    assert msg.startswith("args.action: expected one of add_org, remove_org, add_account")
    w.refused("tax-admin", "gov", "propose", {"action": "add_account", "target": "x"}, ERR_BAD_ARGS,
              "args: missing params")
    msg = w.refused("tax-admin", "gov", "propose",
                    {"action": "add_account", "target": "x",
                     "params": {"org": "tax", "public_key": "XY", "roles": []}}, ERR_BAD_ARGS)
    assert msg.startswith("args.params.public_key: expected a string of 64..64 characters")
    w.refused("tax-admin", "gov", "propose",
              {"action": "add_node", "target": "n", "params": {**BANK_NODE, "p2p": "nohost"}}, ERR_BAD_ARGS,
              "args.params.p2p: expected HOST:PORT with a port in 1-65535, got 'nohost'")
    w.refused("tax-admin", "gov", "propose",
              {"action": "update_account", "target": "tax-clerk", "params": {"valid_until": "soon"}},
              ERR_BAD_ARGS, "args.params.valid_until: expected an ISO-8601 UTC time like "
                            "2027-06-30T00:00:00Z, a date, or never; got 'soon'")


# -- what each action checks when it is proposed ------------------------------------------

@pytest.mark.parametrize("action, target, params, code, message", [
    ("add_org", "tax", {}, ERR_CONFLICT, "cannot propose add_org tax: organisation tax exists"),
    ("remove_org", "bank", None, ERR_NOT_FOUND, "cannot propose remove_org bank: no organisation bank"),
    ("remove_org", "tax", None, ERR_CONFLICT,
     "cannot propose remove_org tax: organisation tax still runs node(s) node1; remove them first"),
    ("add_account", "tax-clerk", {"org": "tax", "public_key": new_key("x"), "roles": []}, ERR_CONFLICT,
     "cannot propose add_account tax-clerk: account tax-clerk exists"),
    ("add_account", "x", {"org": "bank", "public_key": new_key("x"), "roles": []}, ERR_NOT_FOUND,
     "cannot propose add_account x: params.org: organisation bank does not exist"),
    ("add_account", "x", {"org": "tax", "public_key": key_for("validator", "node1").public_key.hex(),
                          "roles": []}, ERR_CONFLICT,
     f"cannot propose add_account x: params.public_key: key "
     f"{key_for('validator', 'node1').public_key.hex()[:16]}... is already used by node node1; "
     "every key is used once, generate a new one"),
    ("add_account", "x", {"org": "tax", "public_key": new_key("x"), "roles": ["writer", "writer"]},
     ERR_BAD_ARGS, "cannot propose add_account x: params.roles: a role is given twice"),
    ("add_account", "x", {"org": "tax", "public_key": new_key("x"), "roles": [], "valid_until": "2020-01-01"},
     ERR_CONFLICT, "cannot propose add_account x: params.valid_until: 2020-01-01 is not after this "
                   "block's time; a validity must end in the future"),
    ("update_account", "nobody", {"roles": []}, ERR_NOT_FOUND, "cannot propose update_account nobody: no account nobody"),
    ("update_account", "tax-clerk", {}, ERR_BAD_ARGS,
     "cannot propose update_account tax-clerk: params: give roles, valid_until or both"),
    ("update_account", "tax-clerk", {"roles": ["writer"]}, ERR_CONFLICT,
     "cannot propose update_account tax-clerk: account tax-clerk has these roles and this validity already"),
    ("update_account", "tax-admin", {"roles": ["writer"]}, ERR_CONFLICT,
     "cannot propose update_account tax-admin: update_account tax-admin refused: organisation tax would be "
     "left without an active admin account; give another of its accounts the admin role first"),
    ("revoke_account", "tax-admin", None, ERR_CONFLICT,
     "cannot propose revoke_account tax-admin: revoke_account tax-admin refused: organisation tax would be "
     "left without an active admin account; give another of its accounts the admin role first"),
    ("add_node", "node1", BANK_NODE, ERR_CONFLICT, "cannot propose add_node node1: node node1 exists"),
    ("add_node", "node5", {**BANK_NODE, "org": "tax", "p2p": "127.0.0.1:3"}, ERR_CONFLICT,
     "cannot propose add_node node5: params.p2p: 127.0.0.1:3 is node node1's p2p address"),
    ("promote_node", "node1", None, ERR_CONFLICT, "cannot propose promote_node node1: node node1 is a validator already"),
    ("demote_node", "node9", None, ERR_NOT_FOUND, "cannot propose demote_node node9: no node node9"),
    ("update_node_addresses", "node1", {"p2p": "127.0.0.1:3"}, ERR_CONFLICT,
     "cannot propose update_node_addresses node1: node node1 has these addresses already"),
    ("rotate_node_key", "node1", {"public_key": key_for("account", "tax-clerk").public_key.hex()}, ERR_CONFLICT,
     f"cannot propose rotate_node_key node1: params.public_key: key "
     f"{key_for('account', 'tax-clerk').public_key.hex()[:16]}... is already used by account tax-clerk; "
     "every key is used once, generate a new one"),
    ("set_consensus_params", "consensus", {"window": 8}, ERR_CONFLICT,
     "cannot propose set_consensus_params consensus: params.window: must be at least 2 * checkpoint_interval"),
    ("set_consensus_params", "consensus", {"window": 64}, ERR_CONFLICT,
     "cannot propose set_consensus_params consensus: these are the consensus parameters already"),
    ("set_governance_policy", "governance", {"threshold_num": 3, "threshold_den": 3}, ERR_CONFLICT,
     "cannot propose set_governance_policy governance: params.threshold: more than all organisations "
     "can never approve; use strict false"),
    ("set_governance_policy", "governance", {"threshold_num": 4}, ERR_CONFLICT,
     "cannot propose set_governance_policy governance: params.threshold_num: expected an integer in 1..den"),
])
def test_a_change_that_cannot_be_made_is_refused_when_proposed(w, action, target, params, code, message) -> None:
    args = {"action": action, "target": target, **({"params": params} if params is not None else {})}
    w.refused("finance-admin", "gov", "propose", args, code, message)


def test_the_last_validator_cannot_go(w) -> None:
    for node in ("node1", "node2", "node3"):
        w.passed("demote_node", node)
    assert [n.name for n in w.config.validators] == ["node0"]
    w.refused("finance-admin", "gov", "propose", {"action": "remove_node", "target": "node0"}, ERR_CONFLICT,
              "cannot propose remove_node node0: remove_node node0 refused: the chain would have no "
              "validator left; promote another node first")


def test_a_proposal_that_can_no_longer_be_carried_out_refuses_the_passing_vote(w) -> None:
    key = new_key("contested")
    w.propose("finance-admin", "add_account", "bank-clerk", {"org": "tax", "public_key": key, "roles": ["writer"]})
    w.vote("tax-admin", 1)
    assert w.call("tourism-clerk", "gov", "rotate_key", {"new_public_key": key}).ok    # the key is taken now
    msg = w.refused("agriculture-admin", "gov", "approve", {"id": 1}, ERR_CONFLICT)
    assert msg.startswith(f"proposal 1 passes but cannot be carried out now: params.public_key: key {key[:16]}... "
                          "is already used by account tourism-clerk")
    assert msg.endswith("withdraw it or let it expire")
    assert w.raw("gov", "proposal", "000000000001")[8] == "open"


# -- what each action does ---------------------------------------------------------------------

def test_account_lifecycle(w) -> None:
    key = key_for("fresh", "bank-admin")
    w.passed("add_org", "bank", {"display_name": "Bank"})
    w.passed("add_account", "bank-admin", {"org": "bank", "public_key": key.public_key.hex(),
                                           "roles": ["admin", "writer"], "valid_until": "2030-01-01"})
    account = w.config.accounts["bank-admin"]
    assert (account.org, account.roles, account.valid_until_ms) == ("bank", ("admin", "writer"),
                                                                    parse_utc("2030-01-01T00:00:00Z"))
    assert "bank" in w.config.voting_orgs and w.config.governance.needed(5) == 4
    w.accounts["bank-admin"] = key
    assert w.call("bank-admin", "kv", "put", {"key": "bank/k", "value": 1}).ok
    w.passed("update_account", "bank-admin", {"valid_until": "never"},
             voters=("finance-admin", "tax-admin", "agriculture-admin", "bank-admin"))
    assert w.config.accounts["bank-admin"].valid_until_ms is None
    w.passed("add_account", "bank-admin2", {"org": "bank", "public_key": new_key("b2"), "roles": ["admin"]},
             voters=("finance-admin", "tax-admin", "agriculture-admin", "bank-admin"))
    w.passed("revoke_account", "bank-admin", voters=("finance-admin", "tax-admin", "agriculture-admin", "tourism-admin"))
    assert w.config.accounts["bank-admin"].status == REVOKED
    r = w.call("bank-admin", "kv", "put", {"key": "bank/k", "value": 2})
    assert (r.status, r.message) == (ERR_INVALID, "account_revoked")
    w.refused("finance-admin", "gov", "propose", {"action": "update_account", "target": "bank-admin",
                                                  "params": {"roles": ["admin"]}}, ERR_CONFLICT,
              "cannot propose update_account bank-admin: account bank-admin is revoked; a revoked account "
              "stays revoked")


def test_removing_an_organisation_revokes_its_accounts_and_keeps_its_name(w) -> None:
    for node in ("node3",):
        w.passed("remove_node", node)
    r = w.passed("remove_org", "tourism")
    assert r["electorate"] == 4                                   # counted before it left
    assert w.config.organisations["tourism"].status == REMOVED and w.config.organisation("tourism") is None
    assert {w.config.accounts[a].status for a in ("tourism-admin", "tourism-clerk")} == {REVOKED}
    assert w.config.voting_orgs == ("agriculture", "finance", "tax")
    assert w.config.retired_keys[key_for("validator", "node3").public_key].name == "node3"
    w.refused("finance-admin", "gov", "propose", {"action": "add_org", "target": "tourism"}, ERR_CONFLICT,
              "cannot propose add_org tourism: organisation tourism was removed (names are not reused)")


def test_nodes_and_the_epoch_schedule(w) -> None:
    w.passed("add_org", "bank")
    r = w.passed("add_node", "node5", BANK_NODE)
    assert "epoch" not in r                                      # an observer changes no validator set
    assert w.config.nodes["node5"].role == OBSERVER and len(w.config.epochs) == 1
    r = w.passed("promote_node", "node5")
    h = w.chain.height                                           # 6; window 64, checkpoints every 16
    assert r["epoch"] == {"number": 1, "starts_after": 80, "validators": ["node0", "node1", "node2", "node3",
                                                                           "node5"]}
    assert h + 64 <= 80 < h + 64 + 16
    assert w.config.set_for_seq(80) == w.genesis.validator_keys
    assert w.config.set_for_seq(81)[-1] == bytes.fromhex(BANK_NODE["public_key"])
    assert w.config.pending_boundary(h) == 80
    # a second change before the boundary joins the pending epoch (it starts late enough)
    r = w.passed("demote_node", "node0")
    assert r["epoch"] == {"number": 1, "starts_after": 80, "validators": ["node1", "node2", "node3", "node5"]}
    # rotating a validator's key keeps its place in the order
    new = new_key("node1-new")
    w.passed("rotate_node_key", "node1", {"public_key": new})
    assert w.config.epochs[1].validators[0] == ("node1", bytes.fromhex(new))
    assert w.config.retired_keys[key_for("validator", "node1").public_key].kind == "node"
    w.passed("update_node_addresses", "node5", {"api": "10.0.0.6:8545"})
    assert w.config.nodes["node5"].api == ("10.0.0.6", 8545) and len(w.config.epochs) == 2


def test_consensus_parameters_change_with_an_epoch(w) -> None:
    r = w.passed("set_consensus_params", "consensus", {"max_block_txs": 500, "checkpoint_interval": 8})
    assert r["epoch"]["starts_after"] == 80
    assert w.config.params_at(80).max_block_txs == 2000 and w.config.params_at(81).max_block_txs == 500
    assert w.config.epochs[1].is_checkpoint(88) and not w.config.epochs[1].is_checkpoint(84)
    assert w.config.consensus.checkpoint_interval == 8            # the newest decided


def test_governance_policy_change_applies_to_the_next_vote(w) -> None:
    w.passed("set_governance_policy", "governance", {"threshold_num": 1, "threshold_den": 2, "strict": False})
    assert w.config.governance.needed(4) == 2
    w.propose("finance-admin", "add_org", "bank")
    assert w.vote("tax-admin", 2).result["status"] == "executed"


# -- keys ----------------------------------------------------------------------------------------

def test_rotate_key_moves_an_account_to_a_new_key_in_the_same_block(w) -> None:
    old, new = w.accounts["tax-clerk"], key_for("fresh", "tax-clerk")
    rotate = w.tx("tax-clerk", "gov", "rotate_key", {"new_public_key": new.public_key.hex()})
    with_old = w.tx("tax-clerk", "kv", "put", {"key": "k", "value": 1})
    with_new = make_tx(new, w.genesis, "kv", "put", {"key": "k", "value": 2}, nonce=99,
                       valid_until=w.chain.height + 100)
    r = w.chain.run([rotate, with_old, with_new])
    assert [x.status for x in r.receipts] == [OK, ERR_INVALID, OK]
    assert r.receipts[1].message == "key_rotated"
    assert r.receipts[0].result == {"account": "tax-clerk", "public_key": new.public_key.hex(),
                                    "retired_key": old.public_key.hex()}
    assert r.config is w.config and w.config.accounts["tax-clerk"].public_key == new.public_key
    w.accounts["tax-clerk"] = new
    w.refused("tax-clerk", "gov", "rotate_key", {"new_public_key": old.public_key.hex()}, ERR_CONFLICT,
              f"args.new_public_key: key {old.public_key.hex()[:16]}... is already used by account tax-clerk "
              f"until height 1 (a retired key); every key is used once, generate a new one")


def test_an_admin_replaces_a_lost_key_of_its_own_organisation(w) -> None:
    new = new_key("tax-clerk-2")
    w.refused("finance-admin", "gov", "replace_key", {"account": "tax-clerk", "new_public_key": new},
              ERR_PERMISSION, "account tax-clerk belongs to organisation tax; only its own organisation's "
                              "admins may replace its key")
    w.refused("tax-admin", "gov", "replace_key", {"account": "nobody", "new_public_key": new},
              ERR_NOT_FOUND, "no account nobody")
    w.refused("tax-clerk", "gov", "replace_key", {"account": "tax-clerk", "new_public_key": new},
              ERR_PERMISSION, "account tax-clerk lacks role 'admin'")
    assert w.call("tax-admin", "gov", "replace_key", {"account": "tax-clerk", "new_public_key": new}).ok
    r = w.call("tax-clerk", "kv", "put", {"key": "k", "value": 1})
    assert (r.status, r.message) == (ERR_INVALID, "key_rotated")


def test_a_revocation_applies_to_the_rest_of_its_block(w) -> None:
    w.propose("finance-admin", "revoke_account", "tax-clerk")
    w.vote("tourism-admin", 1)
    passing = w.tx("agriculture-admin", "gov", "approve", {"id": 1})
    late = w.tx("tax-clerk", "kv", "put", {"key": "k", "value": 1})
    r = w.chain.run([passing, late])
    assert r.receipts[0].result["status"] == "executed"
    assert (r.receipts[1].status, r.receipts[1].message) == (ERR_INVALID, "account_revoked")
    assert r.config.accounts["tax-clerk"].status == REVOKED


def test_a_key_expires_at_its_block_time() -> None:
    w = GovWorld(valid_until={"tax-clerk": "2026-11-28T01:02:00Z"})     # block 1 is 01:00Z, block 3 01:02Z
    assert w.call("tax-clerk", "kv", "put", {"key": "k", "value": 1}).ok
    assert w.call("tax-clerk", "kv", "put", {"key": "k", "value": 2}).ok
    r = w.call("tax-clerk", "kv", "put", {"key": "k", "value": 3})
    assert (r.status, r.message) == (ERR_INVALID, "key_expired")
    # renewed by governance, it signs again
    w.passed("update_account", "tax-clerk", {"valid_until": "2030-01-01T00:00:00Z"})
    assert w.call("tax-clerk", "kv", "put", {"key": "k", "value": 4}).ok


def test_history_gives_the_configuration_at_every_height(w) -> None:
    w.passed("add_org", "bank")                       # executed at height 3
    w.passed("add_org", "bank2")                      # at height 6
    scan = scan_dict(w.chain.state)
    orgs = [sorted(config_state.config_at(w.genesis.config, scan, h).organisations) for h in range(8)]
    assert orgs[0] == orgs[2] == ["agriculture", "finance", "tax", "tourism"]
    assert "bank" in orgs[3] and "bank2" not in orgs[5] and "bank2" in orgs[6] and orgs[7] == orgs[6]
    assert config_state.config_at(w.genesis.config, scan, 7) == w.config
