"""The real thing: `ynchain testnet init/up/status/down` with node processes on
free 127.0.0.1 ports, transactions submitted and queried through the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.layout import load_testnet
from cli.ports import free_port_base
from ledger.crypto import KeyPair, save_key

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop("YNCHAIN_NODE", None)


def ynchain(*args, timeout: float = 90, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "cli.main", *map(str, args)], cwd=ROOT,
                          env=ENV if env is None else {**ENV, **env},
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def ynchain_json(*args, **kwargs):
    return json.loads(ynchain(*args, "--json", **kwargs).stdout)


def kill_leftovers(root: Path) -> None:
    """Last resort after `testnet down`: no test may leave a node behind."""
    for pid_file in root.glob("node*/node.pid"):
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            pass


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def testnet(tmp_path_factory):
    root = tmp_path_factory.mktemp("live") / "tn"
    ynchain("testnet", "init", "--dir", root, "--base-port", free_port_base(8))
    try:
        up = ynchain("testnet", "up", "--dir", root, "--timeout", 60, timeout=90)
        assert "all 4 nodes ready" in up.stdout
        # progress on stderr (one line per change when not a terminal), and its estimate kept
        assert "first start, no estimate yet" in up.stderr
        assert up.stderr.rstrip().splitlines()[-1].startswith("4/4 nodes ready (")
        assert float((root / ".last-up-seconds").read_text()) > 0
        yield load_testnet(root)
    finally:
        ynchain("testnet", "down", "--dir", root, "--grace", 5, check=False)
        kill_leftovers(root)


def submit(net, *args, key="finance"):
    return ynchain("tx", "submit", "--node", net.nodes[0].api_url, "--key",
                   net.accounts_dir / f"{key}.key", *args, check=False)


def test_status_shows_every_node_connected(testnet):
    doc = ynchain_json("testnet", "status", "--dir", testnet.dir)
    assert [n["name"] for n in doc["nodes"]] == ["node0", "node1", "node2", "node3"]
    for node in doc["nodes"]:
        assert node["alive"] and node["pid"] and node["height"] is not None
        assert sorted(node["peers"]) == sorted({"node0", "node1", "node2", "node3"} - {node["name"]})
    assert "already running" in ynchain("testnet", "up", "--dir", testnet.dir).stdout


def test_submit_and_query_everywhere(testnet):
    result = submit(testnet, "kv", "put", '{"key": "greeting", "value": "hello"}', "--wait", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["committed"] and doc["receipt"]["status"] == "ok"
    height = doc["height"]
    hashes = set()
    for node in testnet.nodes:
        block = wait_until(lambda: ynchain("query", "block", height, "--node", node.api_url,
                                           "--json", check=False), 15, f"block on {node.name}")
        block = json.loads(block.stdout)
        assert doc["id"] in block["txs"]
        assert len(block["certificate"]["votes"]) >= 3
        hashes.add(block["hash"])
        state = ynchain_json("query", "state", "kv", "greeting", "--node", node.api_url)
        assert state["value"] == "hello"
    assert len(hashes) == 1
    tx = ynchain_json("tx", "status", doc["id"], "--node", testnet.nodes[2].api_url)
    assert tx["status"] == "committed" and tx["height"] == height
    validators = ynchain_json("query", "validators", "--node", testnet.nodes[1].api_url)["validators"]
    assert [v["name"] for v in validators] == ["node0", "node1", "node2", "node3"]
    assert sum(v["primary"] for v in validators) == 1
    status = ynchain_json("status", "--node", testnet.nodes[0].api_url)
    assert status["height"] >= height and status["chain_id"] == testnet.genesis.chain_id


def test_contract_error_exits_1(testnet):
    result = submit(testnet, "kv", "delete", '{"key": "never-written"}', "--wait")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: ") and "not_found" in result.stderr


def test_unknown_sender_is_refused(testnet, tmp_path):
    stranger = tmp_path / "stranger.key"
    save_key(stranger, KeyPair.generate())
    result = ynchain("tx", "submit", "--node", testnet.nodes[0].api_url, "--key", stranger,
                     "kv", "put", '{"key": "x", "value": 1}', check=False)
    assert result.returncode == 1 and "refused: unknown_sender" in result.stderr


def test_watch_follows_blocks_until_ctrl_c(testnet):
    # Its own block, so that the test does not depend on the tests that ran before it.
    committed = submit(testnet, "kv", "put", '{"key": "watched", "value": 1}', "--wait")
    assert committed.returncode == 0, committed.stderr
    # Ctrl-C as at a terminal: a suite started in the background (`make test &`, nohup)
    # ignores SIGINT, and an ignored signal stays ignored in a child.
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "watch", "--json", "--node",
                             testnet.nodes[1].api_url, "--from", "1"], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = json.loads(proc.stdout.readline())
        assert first["height"] == 1 and len(first["hash"]) == 64
        proc.send_signal(signal.SIGINT)
        # Read what it printed meanwhile: after the earlier tests' blocks its lines can
        # fill the pipe, and a watch blocked on a full pipe cannot exit.
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_kill_and_restart_a_node(testnet):
    ynchain("testnet", "kill", "--dir", testnet.dir, "node3")
    doc = ynchain_json("testnet", "status", "--dir", testnet.dir)
    assert [n["alive"] for n in doc["nodes"]] == [True, True, True, False]
    # 3 of 4 validators are a quorum: the chain goes on without node3.
    result = submit(testnet, "kv", "put", '{"key": "while-down", "value": 3}', "--wait", "--json")
    assert result.returncode == 0, result.stderr
    height = json.loads(result.stdout)["height"]
    ynchain("testnet", "start", "--dir", testnet.dir, "node3")
    wait_until(lambda: (ynchain_json("testnet", "status", "--dir", testnet.dir)["nodes"][3]["height"] or 0)
               >= height, 60, "node3 to catch up")


def test_bench_on_the_running_testnet(testnet):
    run = ynchain("bench", "--dir", testnet.dir, "--txs", 300, "--batch", 50, "--json", timeout=120)
    report = json.loads(run.stdout)                 # stdout holds the JSON alone
    assert "committed 300/300" in run.stderr and "tx/s" in run.stderr   # progress went to stderr
    assert report["txs"] == 300 and report["tps"] > 0 and report["blocks"] >= 1
    assert report["latency_ms_p50"] <= report["latency_ms_p90"] <= report["latency_ms_p99"]
    assert [n["name"] for n in report["nodes"]] == ["node0", "node1", "node2", "node3"]
    assert all(n["cpu_s"] is not None and n["peak_rss_mb"] > 0 for n in report["nodes"])


def test_up_waits_for_a_first_block_when_empty_blocks_are_on(tmp_path):
    root = tmp_path / "hb"
    ynchain("testnet", "init", "--dir", root, "--base-port", free_port_base(8), "--empty-blocks", 300)
    try:
        up = ynchain("testnet", "up", "--dir", root, "--timeout", 60, timeout=90)
        assert "all 4 nodes ready" in up.stdout
        nodes = ynchain_json("testnet", "status", "--dir", root)["nodes"]
        assert all(n["height"] >= 1 for n in nodes), nodes
    finally:
        ynchain("testnet", "down", "--dir", root, "--grace", 5, check=False)
        kill_leftovers(root)


def test_bench_mixed_workload_does_real_work(testnet):
    report = ynchain_json("bench", "--dir", testnet.dir, "--txs", 240, "--batch", 60, "--workload", "mixed",
                          timeout=120)
    assert report["workload"] == "mixed" and report["txs"] == 240 and report["batch"] == 60
    assert report["receipts_sampled"] == {"ok": 200}


def test_bench_times_the_catch_up_of_a_crashed_node(testnet):
    report = ynchain_json("bench", "--dir", testnet.dir, "--txs", 100, "--batch", 10,
                          "--catch-up", 20, timeout=180)
    catch_up = report["catch_up"]
    assert catch_up["node"] == "node3" and catch_up["blocks"] >= 20 and catch_up["blocks_per_s"] > 0
    nodes = ynchain_json("testnet", "status", "--dir", testnet.dir)["nodes"]
    assert nodes[3]["alive"] and nodes[3]["height"] >= nodes[0]["height"] - 1   # back and caught up


def test_bench_paces_an_offered_rate(testnet):
    # 800 txs in batches of 50 offered at 400 tx/s: each of the 4 submitters sends
    # a batch every 0.5 s, its 4th at 1.5 s; unpaced this takes a fraction of that.
    report = ynchain_json("bench", "--dir", testnet.dir, "--txs", 800, "--batch", 50,
                          "--rate", 400, timeout=120)
    assert report["txs"] == 800 and report["offered_rate"] == 400
    assert report["duration_s"] >= 1.5


def test_demo_reuses_the_running_testnet(testnet):
    proc = subprocess.run([sys.executable, "-m", "cli.demo", "--dir", testnet.dir], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "already running" in out and "every department's node holds the same chain" in out
    refusals = [line for line in out.splitlines() if "refused, as it must be:" in line]
    assert len(refusals) == 4, out
    assert "an organisation reimburses a receipt once" in refusals[0]
    assert "it is financed at most once" in refusals[3]
    assert "status: ok" in out and "grown at menghai-bulang" in out and "inspected: pass" in out
    assert "testnet down --dir" in out


def test_init_force_refuses_while_running(testnet):
    result = ynchain("testnet", "init", "--dir", testnet.dir, "--force", check=False)
    assert result.returncode == 1 and "stop it first" in result.stderr
    assert (testnet.dir / "node0" / "data").is_dir()


def test_down_stops_every_node_it_started(tmp_path):
    # Its own small testnet: no other test depends on running before or after this one.
    root = tmp_path / "tn"
    ynchain("testnet", "init", "--dir", root, "--nodes", 2, "--base-port", free_port_base(4))
    try:
        ynchain("testnet", "up", "--dir", root, "--timeout", 60, timeout=90)
        pids = [int(p.read_text()) for p in sorted(root.glob("node*/node.pid"))]
        assert len(pids) == 2
        down = ynchain("testnet", "down", "--dir", root, "--grace", 5)
    finally:
        kill_leftovers(root)
    assert sorted(down.stdout.split()) == sorted("node0: stopped node1: stopped".split())
    doc = ynchain_json("testnet", "status", "--dir", root)
    assert not any(n["alive"] for n in doc["nodes"])
    assert not list(root.glob("node*/node.pid"))
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"node process {pid} still runs"


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] == "Z"
    except (OSError, IndexError):
        return True


def test_busy_port_is_reported_by_up(tmp_path):
    root = tmp_path / "tn"
    base = free_port_base(2)
    ynchain("testnet", "init", "--dir", root, "--nodes", 1, "--base-port", base)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", base + 1))
        sock.listen()
        try:
            result = ynchain("testnet", "up", "--dir", root, "--timeout", 5, check=False)
        finally:
            kill_leftovers(root)
    assert result.returncode == 1
    assert f"node0: api address 127.0.0.1:{base + 1} is already in use" in result.stderr
    assert not (root / "node0" / "node.pid").exists()


def test_bench_on_a_temporary_testnet(tmp_path):
    # Its temporary testnet goes in a directory of this test's own (TMPDIR), so a
    # bench run beside the suite cannot be taken for this one's leftovers.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    report = ynchain_json("bench", "--nodes", 4, "--txs", 200, "--batch", 100, timeout=120,
                          env={"TMPDIR": str(tmp)})
    assert report["txs"] == 200 and report["avg_txs_per_block"] > 0
    assert len(report["nodes"]) == 4
    # torn down: its directory is gone and its node processes with it
    assert list(tmp.iterdir()) == []
    assert not [pid for pid in _bench_node_pids() if str(tmp) in pid[1]]


def _bench_node_pids() -> list[tuple[str, str]]:
    """(pid, command line) of live processes whose command line names a bench testnet."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if "ynchain-bench-" in cmd and "cli.main" in cmd and state != "Z":
            found.append((proc.name, cmd))
    return found


def test_node_that_dies_at_start_up_shows_its_log(tmp_path):
    root = tmp_path / "tn"
    ynchain("testnet", "init", "--dir", root, "--nodes", 1, "--base-port", free_port_base(2))
    config = root / "node0" / "config.toml"
    config.write_text(config.read_text().replace('level = "info"', 'level = "loud"'))
    try:
        result = ynchain("testnet", "up", "--dir", root, "--timeout", 30, check=False)
    finally:
        kill_leftovers(root)
    assert result.returncode == 1
    assert "node0 exited during start-up; last lines of" in result.stderr
    assert "log.level" in result.stderr                 # the node's own complaint, from its log
    assert not (root / "node0" / "node.pid").exists()
