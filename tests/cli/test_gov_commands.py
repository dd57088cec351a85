"""`ynchain gov ...` and `ynchain query config` against a fake node: what they
sign and send, what they print, and their one-line errors."""

from __future__ import annotations

import json

from ledger.consortium import config_view
from ledger.crypto import KeyPair, save_key
from tests.ledger.gov_world import GovWorld, new_key

from .conftest import one_error_line

PROPOSAL = {"id": 3, "action": "add_account", "target": "bank-clerk", "params": {},
            "summary": "add_account bank-clerk (org=bank)", "proposer": "finance-admin", "org": "finance",
            "status": "open", "created_height": 8, "expires_height": 10008,
            "votes": [{"org": "finance", "account": "finance-admin", "vote": "approve", "height": 8}],
            "approvals": 1, "rejections": 0, "needed": 3, "electorate": 4, "closed_height": None, "note": None}


def call(run, fake, key_file, *args):
    return run(*args, "--node", fake.url, "--key", key_file)


def test_propose_builds_the_action_from_options(run, fake, key_file, tmp_path):
    fake.receipt = {"status": "ok", "code": 0, "message": "", "result": PROPOSAL}
    public = tmp_path / "clerk.pub.json"
    public.write_text(json.dumps({"file": "clerk.key", "public_key": new_key("clerk").upper()}))
    result = call(run, fake, key_file, "gov", "propose", "add_account", "bank-clerk", "--org", "bank",
                  "--public-key", public, "--role", "writer", "--role", "issuer",
                  "--valid-until", "2030-01-01")
    assert result.exit_code == 0, result.output
    (tx,) = fake.received
    assert (tx.contract, tx.method) == ("gov", "propose")
    assert tx.args == {"action": "add_account", "target": "bank-clerk",
                       "params": {"org": "bank", "public_key": new_key("clerk"), "roles": ["writer", "issuer"],
                                  "valid_until": "2030-01-01"}}
    assert "proposal:    3" in result.stdout and "approvals:   1 of 3 needed (4 voting organisations)" in result.stdout


def test_propose_without_params_and_with_a_fixed_target(run, fake, key_file):
    fake.receipt = {"status": "ok", "code": 0, "message": "",
                    "result": {**PROPOSAL, "status": "executed",
                               "epoch": {"number": 1, "starts_after": 80, "validators": ["node0", "node5"]},
                               "warning": "2 validators tolerate no faulty or stopped validator"}}
    result = call(run, fake, key_file, "gov", "propose", "promote-node", "node5")
    assert result.exit_code == 0, result.output
    assert fake.received[-1].args == {"action": "promote_node", "target": "node5"}
    assert "epoch 1 starts after height 80: validators node0, node5" in result.stdout
    assert "warning: 2 validators" in result.stdout
    result = call(run, fake, key_file, "gov", "propose", "set-consensus-params", "--max-block-txs", "500")
    assert result.exit_code == 0, result.output
    assert fake.received[-1].args == {"action": "set_consensus_params", "target": "consensus",
                                      "params": {"max_block_txs": 500}}
    result = call(run, fake, key_file, "gov", "propose", "set-governance-policy", "--strict", "false",
                  "--threshold-num", "1", "--threshold-den", "2")
    assert result.exit_code == 0, result.output
    assert fake.received[-1].args["params"] == {"threshold_num": 1, "threshold_den": 2, "strict": False}


def test_votes_and_withdrawals(run, fake, key_file):
    fake.receipt = {"status": "ok", "code": 0, "message": "", "result": {**PROPOSAL, "approvals": 2}}
    for verb in ("approve", "reject", "withdraw"):
        result = call(run, fake, key_file, "gov", verb, "3")
        assert result.exit_code == 0, result.output
        assert (fake.received[-1].method, fake.received[-1].args) == (verb, {"id": 3})
    fake.receipt = {"status": "conflict", "code": 9, "result": None,
                    "message": "proposal 3: expired at height 9 (made at height 1, lifetime 8 blocks); "
                               "propose it again"}
    line = one_error_line(call(run, fake, key_file, "gov", "approve", "3"))
    assert line.endswith("failed at height 8: conflict: proposal 3: expired at height 9 (made at height 1, "
                         "lifetime 8 blocks); propose it again")
    line = one_error_line(call(run, fake, key_file, "gov", "approve", "zero"), 2)
    assert "'zero' is not a valid integer range" in line


def test_mistakes_are_one_line_and_sign_nothing(run, fake, key_file, tmp_path):
    private = tmp_path / "secret.key"
    save_key(private, KeyPair.generate())
    cases = [
        (("gov", "propose", "add-account", "x", "--org", "bank", "--public-key", private, "--role", "writer"),
         f"--public-key: {private} is a private key file; give its public key instead"),
        (("gov", "propose", "add-account", "x", "--org", "bank", "--public-key", "ab" * 32),
         "missing option(s) --role"),
        (("gov", "propose", "add-node", "x", "--org", "bank", "--public-key", "ab" * 32, "--p2p", "nope",
          "--api", "h:1"), "invalid arguments: args.params.p2p: expected HOST:PORT"),
        (("gov", "propose", "coup", "x"), "No such command 'coup'"),
        (("gov", "propose", "add-account", "x", "--org", "bank", "--public-key", "zz", "--role", "writer"),
         "--public-key: expected 64 hex digits or a public key file, got 'zz'"),
    ]
    for args, message in cases:
        result = call(run, fake, key_file, *args)
        line = one_error_line(result, result.exit_code)
        assert message in line, line
    assert fake.received == []


def test_rotate_and_replace_keys(run, fake, key_file, tmp_path):
    new = KeyPair.generate()
    save_key(tmp_path / "new.key", new)
    fake.receipt = {"status": "ok", "code": 0, "message": "",
                    "result": {"account": "tax-clerk", "public_key": new.public_key.hex(), "retired_key": "00" * 32}}
    result = call(run, fake, key_file, "gov", "rotate-key", "--new-key", tmp_path / "new.key")
    assert result.exit_code == 0, result.output
    assert fake.received[-1].args == {"new_public_key": new.public_key.hex()}
    assert f"account tax-clerk now signs with key {new.public_key.hex()}" in result.stdout
    result = call(run, fake, key_file, "gov", "replace-key", "tax-clerk", "--new-public-key", new.public_key.hex())
    assert result.exit_code == 0, result.output
    assert (fake.received[-1].method, fake.received[-1].args) == (
        "replace_key", {"account": "tax-clerk", "new_public_key": new.public_key.hex()})


def test_list_show_and_query_config(run, fake):
    w = GovWorld()
    w.passed("add_org", "bank", {"display_name": "Dianchi Commercial Bank"})
    fake.docs["/gov/proposals"] = (200, {"proposals": [PROPOSAL], "next": 3, "height": 9})
    fake.docs["/gov/proposals/3"] = (200, {**PROPOSAL, "height": 9})
    fake.docs["/config"] = (200, config_view(w.config, w.chain.height))
    result = run("gov", "list", "--status", "open", "--node", fake.url)
    assert result.exit_code == 0, result.output
    assert fake.queries[-1] == "/gov/proposals?limit=20&status=open"
    assert "add_account bank-clerk (org=bank)" in result.stdout and "more: --after 3" in result.stdout
    result = run("gov", "show", "3", "--node", fake.url)
    assert "votes:       finance approve" in result.stdout
    result = run("query", "config", "--height", "3", "--node", fake.url)
    assert result.exit_code == 0, result.output
    assert fake.queries[-1] == "/config?height=3"
    assert "bank          active  no     Dianchi Commercial Bank" in result.stdout
    assert "0      1            node0, node1, node2, node3" in result.stdout
    result = run("query", "config", "--json", "--node", fake.url)
    assert json.loads(result.stdout)["organisations"][1]["name"] == "bank"
    fake.docs["/gov/proposals/4"] = (404, {"error": "no proposal 4", "code": "not_found"})
    line = one_error_line(run("gov", "show", "4", "--node", fake.url))
    assert line.endswith(": no proposal 4")


def test_status_warns_of_expiring_keys(run, fake):
    fake.docs["/status"] = (200, {**fake.status(), "key_expiry": [
        {"account": "tax-clerk", "valid_until": "2027-01-11T00:00:00Z", "seconds_left": 864000},
        {"account": "tax-old", "valid_until": "2026-01-01T00:00:00Z", "seconds_left": -5}]})
    result = run("status", "--node", fake.url)
    assert result.exit_code == 0, result.output
    assert "warning: the key of account tax-clerk expires in 10.0 days (2027-01-11T00:00:00Z)" in result.stdout
    assert "warning: the key of account tax-old expired (2026-01-01T00:00:00Z)" in result.stdout
