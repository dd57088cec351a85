"""Progress lines of long commands: `testnet up` (which nodes are where, and
an estimate from the last start) and `bench` (time left)."""

from __future__ import annotations

import pytest

from cli.bench import time_left
from cli.launch import last_up_seconds, progress_text
from cli.layout import init_testnet


def state(name: str, height: int | None, peers: list[str], alive: bool = True) -> dict:
    return {"name": name, "alive": alive, "height": height, "peers": peers}


@pytest.fixture
def net(tmp_path):
    return init_testnet(tmp_path / "tn", 4, 30000)


def test_testnet_up_names_each_node_and_estimates_from_the_last_start(net):
    states = [state("node0", 0, ["node1", "node2", "node3"]), state("node1", 0, ["node0"]),
              state("node2", None, []), state("node3", 0, ["node0", "node1", "node2"])]
    assert progress_text(states, net, 1.5, None) == (
        "2/4 nodes ready (1.5s, first start, no estimate yet); ready: node0, node3; "
        "connecting: node1 1/3 peers; starting: node2")
    assert "(1.5s, about 2s left);" in progress_text(states, net, 1.5, 3.6)
    assert "(4.0s, longer than the last start (3.6s));" in progress_text(states, net, 4.0, 3.6)


def test_the_last_start_time_is_read_back(net):
    assert last_up_seconds(net) is None
    (net.dir / ".last-up-seconds").write_text("2.75\n")
    assert last_up_seconds(net) == 2.75
    (net.dir / ".last-up-seconds").write_text("garbage")
    assert last_up_seconds(net) is None


def test_bench_time_left():
    assert time_left(0, 1000, 2.0, None) is None              # no rate yet
    assert time_left(250, 1000, 5.0, None) == 15.0            # 50 tx/s, 750 to go
    assert time_left(250, 100_000, 5.0, 30.0) == 25.0         # --duration: what is left of it
    assert time_left(250, 100_000, 31.0, 30.0) == 0.0
