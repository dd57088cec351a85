"""Assembling a genesis from public material (`ynchain genesis ...`) and
writing a node's config (`ynchain node init`), as four organisations on four
hosts would: every entry checked, every mistake one line, no private key
ever passed around."""

from __future__ import annotations

import json
from pathlib import Path

from ledger.crypto import load_key
from ledger.genesis import load_genesis
from node.config import load_config

from .conftest import one_error_line

ORGS = (("finance", "Department of Finance"), ("tax", "Tax Bureau"),
        ("agriculture", "Department of Agriculture"), ("tourism", "Tourism Board"))


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def assemble(run, tmp_path: Path) -> dict[str, Path]:
    """Each organisation makes its keys on its host; the coordinator builds genesis.json."""
    hosts = {}
    ok(run("genesis", "init", "--chain-id", "yunnan-gov"))
    for i, (org, display) in enumerate(ORGS):
        host = hosts[org] = tmp_path / f"host-{org}"
        host.mkdir()
        node_pub = ok(run("keys", "gen", "--out", host / "node.key")).strip()
        admin = json.loads(ok(run("keys", "gen", "--out", host / "admin.key", "--json")))
        (host / "admin.pub.json").write_text(json.dumps(admin))        # what the org sends: public only
        ok(run("genesis", "add-org", org, "--display-name", display))
        ok(run("genesis", "add-node", f"node{i}", "--org", org, "--public-key", node_pub,
               "--p2p", f"10.0.0.{i + 1}:26656", "--api", f"10.0.0.{i + 1}:8545"))
        ok(run("genesis", "add-account", f"{org}-admin", "--org", org, "--public-key", host / "admin.pub.json",
               "--role", "admin", "--role", "writer"))
    return hosts


def test_four_organisations_assemble_a_genesis_and_init_their_nodes(run, tmp_path):
    hosts = assemble(run, tmp_path)
    out = ok(run("genesis", "set-policy", "--threshold", "2/3", "--proposal-lifetime", "5000",
                 "--consensus", "checkpoint_interval=8", "--consensus", "window=32"))
    assert "proposals pass with more than 2/3 of the organisations and live 5000 blocks" in out
    out = ok(run("genesis", "verify"))
    genesis = load_genesis(tmp_path / "genesis.json")
    assert f"genesis hash:         {genesis.hash.hex()}" in out and "warning" not in out
    assert "voting organisations: agriculture, finance, tax, tourism" in out
    assert "proposals pass with:  more than 2/3 of the organisations (3 now)" in out
    assert genesis.consensus.checkpoint_interval == 8 and genesis.governance.proposal_lifetime_blocks == 5000
    assert [n.name for n in genesis.validators] == ["node0", "node1", "node2", "node3"]
    summary = json.loads(ok(run("genesis", "verify", "--json")))
    assert summary["ok"] and summary["file_hash"] == genesis.hash.hex() and summary["needed"] == 3
    shown = ok(run("genesis", "show"))
    assert "node2  agriculture  validator  10.0.0.3:26656" in shown and f"genesis hash {genesis.hash.hex()}" in shown
    for i, (org, _) in enumerate(ORGS):
        home = hosts[org]
        out = ok(run("node", "init", "--home", home, "--genesis", tmp_path / "genesis.json", "--name", f"node{i}"))
        assert f"for validator node{i} of {org}" in out
        config = load_config(home)
        assert (config.name, config.p2p_listen, config.api_listen) == (f"node{i}", ("0.0.0.0", 26656),
                                                                      ("127.0.0.1", 8545))
        assert config.genesis == (tmp_path / "genesis.json").resolve()
        assert load_key(config.key_file).public_key == genesis.validators[i].public_key
    out = ok(run("node", "init", "--home", hosts["tax"], "--genesis", tmp_path / "genesis.json", "--name", "node1",
                 "--api-listen", "0.0.0.0:9000", "--force"))
    assert load_config(hosts["tax"]).api_listen == ("0.0.0.0", 9000)


def test_verify_warns_about_what_would_freeze_governance(run, tmp_path):
    ok(run("genesis", "init", "--chain-id", "small"))
    ok(run("genesis", "add-org", "finance"))
    ok(run("genesis", "add-node", "node0", "--org", "finance", "--public-key", "ab" * 32,
           "--p2p", "h:1", "--api", "h:2"))
    out = ok(run("genesis", "verify"))
    assert "warning: organisation finance has no admin account: it cannot vote in governance" in out
    assert "warning: no organisation has an admin: the configuration can never change" in out
    assert "warning: 1 validator tolerate no faulty or stopped validator" in out


def test_genesis_mistakes_are_one_line_and_change_nothing(run, tmp_path):
    hosts = assemble(run, tmp_path)
    before = (tmp_path / "genesis.json").read_bytes()
    admin_key = hosts["tax"] / "admin.key"
    node_pub = load_key(hosts["tax"] / "node.key").public_key.hex()
    cases = [
        (("genesis", "init", "--chain-id", "again"), "genesis.json exists; pass --force to start over"),
        (("genesis", "add-org", "bad name"), "genesis.organisations[4].name: expected a name"),
        (("genesis", "add-org", "tax"), "organisations: tax is already in the file"),
        (("genesis", "add-node", "node9", "--org", "police", "--public-key", "cd" * 32, "--p2p", "h:1",
          "--api", "h:2"), "genesis.nodes[4].org: unknown organisation 'police'"),
        (("genesis", "add-node", "node9", "--org", "tax", "--public-key", node_pub, "--p2p", "h:1",
          "--api", "h:2"), f"public key {node_pub[:16]}... is already used by node node1; every key is used once"),
        (("genesis", "add-node", "node9", "--org", "tax", "--public-key", "cd" * 32, "--p2p", "10.0.0.1:26656",
          "--api", "h:2"), "nodes: p2p address 10.0.0.1:26656 is already another node's"),
        (("genesis", "add-node", "node9", "--org", "tax", "--public-key", "cd" * 32, "--p2p", "h",
          "--api", "h:2"), "genesis.nodes[4].p2p: expected HOST:PORT"),
        (("genesis", "add-account", "x", "--org", "tax", "--public-key", admin_key),
         "is a private key file; give its public key instead"),
        (("genesis", "add-account", "x", "--org", "tax", "--public-key", "cd" * 32, "--role", "king"),
         "genesis.accounts[4].roles: expected a list of roles from"),
        (("genesis", "add-account", "x", "--org", "tax", "--public-key", "cd" * 32, "--valid-until", "soon"),
         "genesis.accounts[4].valid_until: expected an ISO-8601 UTC time"),
        (("genesis", "set-policy", "--threshold", "4/3"), "genesis.governance.threshold.num: expected an integer in 1..den"),
        (("genesis", "set-policy", "--threshold", "two thirds"), "expected a fraction like 2/3"),
        (("genesis", "set-policy", "--consensus", "window=8"),
         "genesis.consensus.window: must be at least 2 * checkpoint_interval"),
        (("genesis", "set-policy", "--consensus", "speed=9"), "expected NAME=INTEGER with NAME one of"),
        (("genesis", "show", "--file", "missing.json"),
         "missing.json: no such file; start one with `ynchain genesis init --file missing.json`"),
    ]
    for args, message in cases:
        result = run(*args)
        line = one_error_line(result, result.exit_code)
        assert message in line, line
    assert (tmp_path / "genesis.json").read_bytes() == before
    ok(run("genesis", "init", "--chain-id", "empty", "--file", "empty.json"))
    line = one_error_line(run("genesis", "verify", "--file", "empty.json"))
    assert line == "error: empty.json: genesis.organisations: expected a non-empty list"
    assert "not complete yet: empty.json: genesis.organisations" in ok(run("genesis", "show", "--file", "empty.json"))


def test_node_init_refuses_a_key_that_is_not_the_nodes(run, tmp_path):
    hosts = assemble(run, tmp_path)
    genesis = tmp_path / "genesis.json"
    cases = [
        (("--home", hosts["tax"], "--name", "node0"), "but the genesis gives node node0 key"),
        (("--home", hosts["tax"], "--name", "node7"), "no node 'node7' (nodes: node0, node1, node2, node3)"),
        (("--home", tmp_path / "empty-host", "--name", "node1"), "no key file; create it on this host with "
                                                                 "`ynchain keys gen --out"),
        (("--home", hosts["tax"], "--name", "node1", "--p2p-listen", "nowhere"),
         "p2p_listen: expected HOST:PORT"),
    ]
    for args, message in cases:
        result = run("node", "init", "--genesis", genesis, *args)
        line = one_error_line(result, result.exit_code)
        assert message in line, line
    ok(run("node", "init", "--home", hosts["tax"], "--genesis", genesis, "--name", "node1"))
    line = one_error_line(run("node", "init", "--home", hosts["tax"], "--genesis", genesis, "--name", "node1"))
    assert line.endswith("config.toml exists; pass --force to replace it")


def test_node_init_for_a_node_governance_adds_later(run, tmp_path):
    hosts = assemble(run, tmp_path)
    genesis = tmp_path / "genesis.json"
    listen = ("--p2p-listen", "0.0.0.0:26656", "--api-listen", "127.0.0.1:8545")
    bank = tmp_path / "bank-host"
    bank.mkdir()
    ok(run("keys", "gen", "--out", bank / "node.key"))
    out = ok(run("node", "init", "--home", bank, "--genesis", genesis, "--name", "node4", *listen))
    assert "starts as an observer that syncs" in out and "gov propose add-node node4" in out
    assert 'name = "node4"' in (bank / "config.toml").read_text()
    line = one_error_line(run("node", "init", "--home", hosts["tax"], "--genesis", genesis, "--name", "node4",
                              *listen))
    assert "holds the key of genesis node node1; a new node needs a key of its own" in line, line
