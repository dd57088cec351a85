"""The operator kit in configs/: the Prometheus scrape config and alert rules
pass promtool (and the alerts' unit tests), every metric the rules and the
Grafana dashboard use is one a real node exports, and the systemd unit passes
systemd-analyze and starts a command the CLI accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from cli.layout import init_testnet
from cli.ports import free_port_base
from ledger.crypto import load_key
from node.app import Node
from node.config import load_config
from tests.factories import make_store

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PROMETHEUS = CONFIGS / "prometheus"
DASHBOARD = CONFIGS / "grafana" / "ynchain-dashboard.json"
UNIT = CONFIGS / "systemd" / "ynchain@.service"
METRIC = re.compile(r"\bynchain_[a-z0-9_]+")
# Sample names each metric type exports beside (or instead of) its family name.
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created")}


def promtool() -> str:
    found = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("promtool is not installed: `make test` unpacks it from Debian's prometheus "
                    "package; or apt-get install prometheus")
    return found


def run_promtool(*args: str) -> str:
    done = subprocess.run([promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_scrape_config_and_rules_pass_promtool():
    assert "SUCCESS" in run_promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 11 rules found" in run_promtool("check", "rules", "ynchain-alerts.yml")


def test_every_alert_fires_when_it_should_and_not_otherwise():
    """configs/prometheus/tests: for each alert, series that must fire it and a
    near miss that must not (promtool fails on any difference)."""
    assert "SUCCESS" in run_promtool("test", "rules", "tests/ynchain-alerts.test.yml")
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", (PROMETHEUS / "ynchain-alerts.yml").read_text(), re.M))
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS / "tests/ynchain-alerts.test.yml").read_text()))
    assert alerts == tested and len(alerts) == 11


async def exported_metric_names(tmp_path) -> set[str]:
    """Every sample name a real node's /metrics can carry: a Node built from a
    testnet home (store in memory), run and asked over HTTP."""
    net = init_testnet(tmp_path / "net", 4, free_port_base(8))   # its peers: down, dialed in vain
    config = load_config(net.nodes[0].home)
    store = make_store(net.genesis)
    node = Node(config, net.genesis, load_key(config.key_file), store)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            _, api_port = await nursery.start(node.run)
            url = f"http://127.0.0.1:{api_port}/metrics"
            body = await trio.to_thread.run_sync(lambda: urllib.request.urlopen(url, timeout=10).read())
            nursery.cancel_scope.cancel()
    names = set()
    for family in text_string_to_metric_families(body.decode()):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p["targets"]]


async def test_rules_and_dashboard_use_only_metrics_a_node_exports(tmp_path):
    exported = await exported_metric_names(tmp_path)
    assert {"ynchain_height", "ynchain_disk_free_bytes", "ynchain_quorum",
            "ynchain_handshake_failures_total"} <= exported
    used_by_rules = set(METRIC.findall((PROMETHEUS / "ynchain-alerts.yml").read_text()))
    used_by_dashboard = {name for expr in dashboard_exprs() for name in METRIC.findall(expr)}
    assert used_by_rules - exported == set()
    assert used_by_dashboard - exported == set()
    # What the issue asks the dashboard to show is there.
    for wanted in ("ynchain_height", "ynchain_committed_txs_total", "ynchain_committed_blocks_total",
                   "ynchain_commit_latency_seconds_bucket", "ynchain_view", "ynchain_view_changes_total",
                   "ynchain_peers_connected", "ynchain_mempool_size", "ynchain_sync_target_height",
                   "ynchain_transport_bytes_total", "ynchain_handshake_failures_total"):
        assert wanted in used_by_dashboard, wanted


def test_dashboard_is_a_grafana_dashboard():
    doc = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)) and doc["uid"] and doc["title"]
    for p in doc["panels"]:
        assert p["targets"] and all(t["expr"] and t["refId"] for t in p["targets"]), p["title"]
        assert p["datasource"]["uid"] == "${datasource}"
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
    assert [v["name"] for v in doc["templating"]["list"]] == ["datasource", "node"]


def test_systemd_unit_passes_systemd_analyze(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    unit = UNIT.read_text()
    [exec_start] = re.findall(r"^ExecStart=(\S+)", unit, re.M)
    # verify wants the binary to exist; the rest of the unit is checked as shipped.
    (tmp_path / UNIT.name).write_text(unit.replace(exec_start, shutil.which("true")))
    done = subprocess.run([analyze, "verify", str(tmp_path / "ynchain@node0.service")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_systemd_unit_starts_a_command_the_cli_accepts(run, tmp_path):
    unit = UNIT.read_text()
    [args] = re.findall(r"^ExecStart=\S+ (.*)$", unit, re.M)
    home = tmp_path / "node0"
    argv = args.replace("/var/lib/ynchain/%i", str(home)).split()
    assert argv[:2] == ["node", "start"] and "--home" in argv
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/ynchain/%i",
                    "Restart=on-failure", "StartLimitBurst=", "LimitNOFILE=", "TimeoutStopSec="):
        assert setting in unit, setting
    result = run(*argv)    # no config.toml there: the node refuses with one line, exit 1
    assert result.exit_code == 1 and "config.toml: not found" in result.output
