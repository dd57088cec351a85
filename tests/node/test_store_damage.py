"""Integration (issue 8, item 5): a node whose store was damaged or lost
refuses to start with one clear line saying what to do, and after
`ynchain node resync` rejoins the live chain without forgetting its votes."""

from __future__ import annotations

import subprocess
import sys

import trio
from click.testing import CliRunner

from cli.main import cli
from consensus.safety import SafetyState
from storage.safety_copy import SafetyCopy
from tests.node.cluster import REPO
from tests.storage.test_damage import flip_16_bytes_of_the_log

VICTIM = 2


def start_and_expect_refusal(home) -> str:
    """Start the node in the foreground; it must exit 1 at once. Its last log line."""
    done = subprocess.run([sys.executable, "-m", "node", "--home", str(home)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    return lines[-1]


def no_conflicting_votes(before: SafetyState, after: SafetyState) -> None:
    assert after.view >= before.view
    if after.view == before.view:
        for slot, digest in before.votes.items():
            assert after.votes.get(slot, digest) == digest, f"signed another digest at {slot}"


async def test_a_damaged_node_refuses_to_start_and_resync_brings_it_back(make_cluster):
    cluster = make_cluster(4, checkpoint_interval=4, window=8)
    home = cluster.testnet.nodes[VICTIM].home
    with trio.fail_after(150):
        cluster.start_all()
        await cluster.wait_ready()
        for k in range(10):        # a few checkpoints' worth of blocks, sent to the victim too
            [r] = await cluster.submit(k % 4, [cluster.make_tx(
                "finance", "kv", "put", {"key": f"before-{k}", "value": k})], wait=True)
            assert r["committed"], r
        cluster.kill(VICTIM)
        kept = SafetyCopy(home / "safety").load()
        before = SafetyState.decode(kept.record)
        assert before.checkpoint.seq >= 4 and before.votes

        flip_16_bytes_of_the_log(home / "data")
        line = start_and_expect_refusal(home)
        assert "the database is damaged" in line and f"ynchain node resync --home {home}" in line

        (home / "data").rename(home / "data.aside")      # a lost data directory
        line = start_and_expect_refusal(home)
        assert "this node has voted before" in line and "ynchain node resync" in line
        (home / "data.aside").rename(home / "data")

        result = CliRunner().invoke(cli, ["node", "resync", "--home", str(home)])
        assert result.exit_code == 0, result.output
        assert "moved the old data directory to" in result.output
        assert len(list(home.glob("data.damaged-*"))) == 1

        # Back in: it refetches the chain, then takes part as before.
        cluster.start(VICTIM)
        await cluster.wait_ready()
        [r] = await cluster.submit(VICTIM, [cluster.make_tx(
            "tax", "kv", "put", {"key": "after-resync", "value": 1})], wait=True, timeout=45)
        assert r["committed"], r
        top = r["height"]

        async def caught_up():
            return (await cluster.heights([VICTIM]))[VICTIM] >= top
        await cluster.wait_until(caught_up, 30, f"node{VICTIM} at height {top}")
        for height in range(1, top + 1):
            hashes = {(await cluster.get(i, f"/blocks/{height}"))[1]["hash"] for i in range(4)}
            assert len(hashes) == 1, f"nodes disagree at height {height}"
        after = SafetyState.decode(SafetyCopy(home / "safety").load().record)
        no_conflicting_votes(before, after)
