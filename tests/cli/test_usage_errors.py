"""Every command's argument errors: one line on stderr, exit 2, no traceback."""

import pytest

from .conftest import one_error_line

BAD_USAGE = [
    ["nosuchcommand"],
    ["keys", "gen"],                                   # missing --out
    ["keys", "show"],                                  # missing FILE
    ["keys", "gen", "--out", "k", "--bogus"],
    ["testnet", "init"],                               # missing --dir
    ["testnet", "init", "--dir", "d", "--nodes", "four"],
    ["testnet", "init", "--dir", "d", "--base-port", "x"],
    ["testnet", "up"],
    ["testnet", "up", "--dir", "d", "--timeout", "0"],
    ["testnet", "status"],
    ["testnet", "down"],
    ["testnet", "down", "--dir", "d", "--grace", "-1"],
    ["testnet", "kill", "--dir", "d"],                 # missing NODE
    ["testnet", "start", "--dir", "d"],
    ["node", "start"],                                 # missing --home
    ["node", "start", "--home", "h", "--log-format", "xml"],
    ["status", "--json", "extra"],
    ["tx", "submit", "kv", "put"],                     # missing --key
    ["tx", "submit", "--key", "k"],                    # missing CONTRACT METHOD
    ["tx", "submit", "--key", "k", "kv", "put", "{not json"],
    ["tx", "submit", "--key", "k", "kv", "put", "--valid-for", "0"],
    ["tx", "submit", "--key", "k", "kv", "put", "--timeout", "1000"],
    ["tx", "status"],
    ["tx", "status", "xyz"],
    ["query", "block"],
    ["query", "block", "0"],
    ["query", "block", "tip"],
    ["query", "state", "kv"],
    ["query", "validators", "extra"],
    ["watch", "--from", "0"],
    ["bench", "--txs", "0"],
    ["bench", "--txs", "10", "--duration", "5"],
    ["bench", "--batch", "0"],
    ["bench", "--accounts", "0"],
    ["bench", "--rate", "0"],
    ["bench", "--catch-up", "0"],
]


@pytest.mark.parametrize("args", BAD_USAGE, ids=lambda a: " ".join(a))
def test_usage_error_is_one_line(run, args):
    line = one_error_line(run(*args), exit_code=2)
    assert "--help" in line


def test_help_and_version(run):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("keys", "testnet", "node", "status", "tx", "query", "watch", "bench"):
        assert command in result.stdout
    version = run("--version")
    assert version.exit_code == 0 and version.stdout.startswith("ynchain, version ")


@pytest.mark.parametrize("args", [["status"], ["tx", "submit"], ["tx", "status"], ["query", "block"],
                                  ["query", "state"], ["query", "validators"], ["watch"]])
def test_node_default_is_documented(run, args):
    result = run(*args, "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "YNCHAIN_NODE" in text and "genesis.json" in text


def test_sim_runs_the_simulator_and_reports_as_json():
    import json
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "cli.main", "sim", "--seeds", "2", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["seeds"] == 2 and report["violations"] == 0 and report["liveness_failures"] == 0
    bad = subprocess.run([sys.executable, "-m", "cli.main", "sim", "--seeds", "x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "ynchain sim: error: argument --seeds" in bad.stderr
