"""The example files in configs/ stay valid."""

import shutil
from pathlib import Path

from ledger.genesis import load_genesis
from node.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_example_genesis_loads():
    genesis = load_genesis(CONFIGS / "genesis.example.json")
    assert [v.name for v in genesis.validators] == ["node0", "node1", "node2", "node3"]
    assert {a.name for a in genesis.accounts} >= {"finance", "tax", "agriculture", "tourism",
                                                  "kunming-first-hospital", "dianchi-bank"}
    assert genesis.org_has_role("kunming-first-hospital", "issuer")
    assert genesis.config.voting_orgs == ("agriculture", "finance", "tax", "tourism")
    assert genesis.config.accounts["provincial-audit"].valid_until_ms is not None


def test_example_node_config_loads_and_matches_genesis(tmp_path):
    home = tmp_path / "node0"
    home.mkdir()
    shutil.copy(CONFIGS / "node.example.toml", home / "config.toml")
    config = load_config(home)
    genesis = load_genesis(CONFIGS / "genesis.example.json")
    node0 = genesis.validator_by_name(config.name)
    assert (config.p2p_listen, config.api_listen) == (node0.p2p, node0.api)
