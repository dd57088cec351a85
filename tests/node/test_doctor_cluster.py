"""Integration: `ynchain node doctor` against a real 4-node cluster.

All well: exit 0.  A stopped peer: a warning naming it (exit 1).  A peer
restarted on another genesis: failures naming it, from its /status and from
the node's own failed dial (exit 2).  And the stopped node's own doctor, which
handshakes under its key: the peers that dial it come, the odd one fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import trio

from node.config import render_config
from node.transport.peers import dials
from tests.node.cluster import REPO


async def doctor(home) -> tuple[int, dict]:
    done = await trio.run_process(
        [sys.executable, "-m", "cli.main", "node", "doctor", "--home", str(home), "--json",
         "--timeout", "2", "--sample", "1"],
        capture_stdout=True, capture_stderr=True, check=False, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    return done.returncode, json.loads(done.stdout)


def by_status(report: dict, status: str) -> list[str]:
    return [f"{c['check']}: {c['message']}" for c in report["checks"] if c["status"] == status]


def start_on_other_genesis(cluster, i: int):
    """Start validator i from a home of its own whose genesis differs by one parameter."""
    node = cluster.testnet.nodes[i]
    doc = json.loads((cluster.root / "genesis.json").read_text())
    doc["consensus"]["tx_validity_window"] += 1
    (cluster.root / "genesis-other.json").write_text(json.dumps(doc, indent=2))
    home = cluster.root / f"{node.name}-other"
    home.mkdir()
    shutil.copy2(node.home / "node.key", home / "node.key")
    (home / "config.toml").write_text(render_config(node.name, node.p2p, node.api,
                                                    genesis="../genesis-other.json"))
    log = open(home / "node.log", "ab")
    cluster.procs[i] = subprocess.Popen([sys.executable, "-m", "node", "--home", str(home)],
                                        stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=REPO,
                                        env={**os.environ, "PYTHONPATH": str(REPO)},
                                        start_new_session=True)
    log.close()


async def test_doctor_sees_a_stopped_peer_and_one_on_another_genesis(make_cluster):
    cluster = make_cluster(4)
    home0, home2 = cluster.testnet.nodes[0].home, cluster.testnet.nodes[2].home
    with trio.fail_after(150):
        cluster.start_all()
        await cluster.wait_ready()
        code, report = await doctor(home0)
        assert code == 0, by_status(report, "warn") + by_status(report, "fail")
        assert "peer-link: this node is connected to node1, node2, node3" in by_status(report, "ok")

        cluster.stop(2)
        code, report = await doctor(home0)
        assert code == 1, report
        warnings = by_status(report, "warn")
        assert any(w.startswith("peer-link: node2: cannot connect to its p2p address") for w in warnings)
        assert any(w.startswith("peer-api: no answer from the API of node2") for w in warnings)
        assert not by_status(report, "fail")

        cluster.stop(3)
        start_on_other_genesis(cluster, 3)

        keys = [v.public_key for v in cluster.testnet.genesis.validators]
        # The dialer of the pair (the smaller key) is the one that knows why the link fails.
        dialer, peer = (0, 3) if dials(keys[0], keys[3]) else (3, 0)

        async def the_odd_genesis_seen():
            try:
                code, body = await cluster.get(dialer, "/validators")
            except OSError:            # node3 restarted: its API may not be up yet
                return False
            return code == 200 and (body["validators"][peer]["last_error"] or "").startswith("wrong_genesis")
        await cluster.wait_until(the_odd_genesis_seen, 30, "a failed handshake between node0 and node3")
        code, report = await doctor(home0)
        assert code == 2, report
        failures = by_status(report, "fail")
        assert any(f.startswith("peer-genesis: node3 runs another genesis") for f in failures)
        assert any(f.startswith("peer-link: node3: its genesis and this node's differ") for f in failures)
        assert any(w.startswith("peer-link: node2: cannot connect") for w in by_status(report, "warn"))

        # node2 is stopped: its doctor handshakes under its key with every peer.
        code, report = await doctor(home2)
        assert code == 2, report
        assert any(w.startswith("process: not running") for w in by_status(report, "warn"))
        how = {i: "this node dials it" if dials(keys[2], keys[i]) else "it dialed this node" for i in (0, 1)}
        assert (f"peer-link: handshake with this node's key succeeded: node0 ({how[0]}), "
                f"node1 ({how[1]})") in by_status(report, "ok")
        assert any(f.startswith("peer-link: node3: its genesis and this node's differ")
                   and "[handshake with this node's key]" in f for f in by_status(report, "fail"))
        assert any(s.startswith("store: ") and "opens" in s for s in by_status(report, "ok"))
