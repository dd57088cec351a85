import json
import stat

import pytest

from cli.layout import STORY_ORGANISATIONS, load_testnet
from ledger.crypto import load_key
from ledger.genesis import load_genesis
from node.config import load_config

from .conftest import one_error_line


def test_init_writes_a_valid_testnet(run, tmp_path):
    root = tmp_path / "tn"
    result = run("testnet", "init", "--dir", root, "--base-port", 30000, "--chain-id", "demo-1")
    assert result.exit_code == 0, result.output
    genesis = load_genesis(root / "genesis.json")
    assert genesis.chain_id == "demo-1"
    story = [name for name, _, _ in STORY_ORGANISATIONS]
    assert [o.name for o in genesis.organisations] == ["finance", "tax", "agriculture", "tourism", *story]
    assert [v.name for v in genesis.validators] == ["node0", "node1", "node2", "node3"]
    for i, v in enumerate(genesis.validators):
        assert v.org == genesis.organisations[i].name
        assert v.p2p == ("127.0.0.1", 30000 + 2 * i) and v.api == ("127.0.0.1", 30001 + 2 * i)
        home = root / v.name
        config = load_config(home)
        assert (config.name, config.p2p_listen, config.api_listen) == (v.name, v.p2p, v.api)
        assert config.genesis == (root / "genesis.json").resolve()
        assert load_key(config.key_file).public_key == v.public_key
        assert stat.S_IMODE(config.key_file.stat().st_mode) == 0o600
    for account in genesis.accounts:
        key_file = root / "accounts" / f"{account.name}.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert load_key(key_file).public_key == account.public_key
    roles = {a.name: a.roles for a in genesis.accounts}
    assert all(roles[d] == ("writer", "admin") for d in ("finance", "tax", "agriculture", "tourism"))
    # the departments run the nodes and govern; the story organisations only use the chain
    assert genesis.config.voting_orgs == ("agriculture", "finance", "tax", "tourism")
    assert roles["kunming-first-hospital"] == ("issuer",) and roles["dianchi-bank"] == ("bank",)
    for role in ("issuer", "reimburser", "producer", "lab", "bank", "auditor"):
        assert any(role in r for r in roles.values()), role
    assert sorted(a.org for a in genesis.accounts) == sorted(o.name for o in genesis.organisations)
    assert all(a.name == a.org for a in genesis.accounts)


def test_empty_blocks_interval_goes_into_genesis(run, tmp_path):
    assert run("testnet", "init", "--dir", tmp_path / "a").exit_code == 0
    assert load_genesis(tmp_path / "a" / "genesis.json").consensus.empty_blocks_interval_ms == 0
    assert run("testnet", "init", "--dir", tmp_path / "b", "--empty-blocks", 500).exit_code == 0
    assert load_genesis(tmp_path / "b" / "genesis.json").consensus.empty_blocks_interval_ms == 500
    assert run("testnet", "init", "--dir", tmp_path / "c", "--empty-blocks", -1).exit_code == 2


def test_more_than_four_nodes_adds_banks(run, tmp_path):
    result = run("testnet", "init", "--dir", tmp_path / "tn", "--nodes", 6, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [n["org"] for n in doc["nodes"]][4:] == ["bank1", "bank2"]
    net = load_testnet(tmp_path / "tn")
    assert len(net.nodes) == 6 and len(net.account_key_files("writer")) == 6
    assert len(net.account_key_files()) == 6 + len(STORY_ORGANISATIONS)
    assert net.genesis.org_has_role("bank2", "bank")


def test_refuses_to_overwrite_without_force(run, tmp_path):
    root = tmp_path / "tn"
    run("testnet", "init", "--dir", root)
    before = (root / "genesis.json").read_text()
    line = one_error_line(run("testnet", "init", "--dir", root))
    assert "already holds a testnet" in line and "--force" in line
    assert (root / "genesis.json").read_text() == before


def test_force_replaces_everything(run, tmp_path):
    root = tmp_path / "tn"
    run("testnet", "init", "--dir", root, "--nodes", 5)
    (root / "node4" / "data").mkdir()
    old_key = load_key(root / "node0" / "node.key").public_key
    result = run("testnet", "init", "--dir", root, "--force")
    assert result.exit_code == 0, result.output
    assert not (root / "node4").exists()
    assert not (root / "accounts" / "bank1.key").exists()
    assert load_key(root / "node0" / "node.key").public_key != old_key
    assert len(load_genesis(root / "genesis.json").validators) == 4


def test_partial_testnet_also_counts_as_existing(run, tmp_path):
    root = tmp_path / "tn"
    (root / "node0").mkdir(parents=True)
    assert "already holds a testnet" in one_error_line(run("testnet", "init", "--dir", root))


@pytest.mark.parametrize("args, words", [
    (["--nodes", "0"], "--nodes must be between"),
    (["--nodes", "2000"], "--nodes must be between"),
    (["--base-port", "65535"], "leaves no room"),
    (["--chain-id", "bad chain"], "--chain-id"),
])
def test_bad_values(run, tmp_path, args, words):
    line = one_error_line(run("testnet", "init", "--dir", tmp_path / "tn", *args))
    assert words in line
    assert not (tmp_path / "tn").exists()


def test_dir_that_is_a_file(run, tmp_path):
    (tmp_path / "f").write_text("x")
    assert "is a file" in one_error_line(run("testnet", "init", "--dir", tmp_path / "f"), 2)


def test_commands_on_a_missing_testnet(run, tmp_path):
    for args in (["up"], ["status"], ["down"], ["kill", "node0"], ["start", "node0"]):
        line = one_error_line(run("testnet", *args, "--dir", tmp_path / "none"))
        assert "no testnet in" in line


def test_unknown_node_name(run, tmp_path):
    run("testnet", "init", "--dir", tmp_path / "tn")
    line = one_error_line(run("testnet", "kill", "--dir", tmp_path / "tn", "node9"))
    assert "no node 'node9'" in line


def test_status_of_a_stopped_testnet(run, tmp_path):
    run("testnet", "init", "--dir", tmp_path / "tn")
    result = run("testnet", "status", "--dir", tmp_path / "tn", "--json")
    assert result.exit_code == 0, result.output
    nodes = json.loads(result.stdout)["nodes"]
    assert [(n["name"], n["alive"], n["pid"], n["height"]) for n in nodes] == \
        [(f"node{i}", False, None, None) for i in range(4)]
    assert nodes[0]["api"].startswith("http://127.0.0.1:")
    down = run("testnet", "down", "--dir", tmp_path / "tn")
    assert down.exit_code == 0 and "was running" in down.stdout
