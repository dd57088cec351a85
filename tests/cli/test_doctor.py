"""`ynchain node doctor`, in-process: a testnet written to tmp_path, real
LevelDB stores, peers played by small HTTP servers and in-process transports
(PeerManager) on the addresses genesis gives them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from contextlib import ExitStack
from dataclasses import replace

import pytest
import trio

from cli.doctor import CHECKS, Facts, Limits, exit_code, run_checks
from cli.doctor.checks_network import diagnose_stall
from cli.doctor.p2p import LinkResult, probe_links
from cli.doctor.report import FAIL, OK, WARN
from cli.layout import init_testnet, load_testnet
from cli.ports import free_port_base
from ledger.crypto import KeyPair, load_key, save_key
from node.api.jsonview import block_to_json
from node.transport.peers import Peer, PeerManager, dials
from node.metrics import NodeMetrics
from storage.leveldb_store import open_store
from tests.cli.doctor_helpers import FakeApi, certified_blocks, status_doc
from tests.factories import make_genesis
from tests.storage.test_damage import flip_16_bytes_of_the_log

FAST = {"timeout_s": 1.0, "sample_s": 0.3}


@pytest.fixture
def net(tmp_path):
    return init_testnet(tmp_path / "net", 4, free_port_base(8))


def doctor(home, **kwargs) -> tuple[list, int]:
    findings = run_checks(Facts(home, **{**FAST, **kwargs}))
    return findings, exit_code(findings)


def lines(findings, check: str, status: str | None = None) -> list[str]:
    return [f.message for f in findings if f.check == check and (status is None or f.status == status)]


def only(findings, check: str, status: str):
    [found] = [f for f in findings if f.check == check and f.status == status]
    return found


def keys_of(net) -> list[KeyPair]:
    return [load_key(n.home / "node.key") for n in net.nodes]


def commit_blocks(net, count: int, signers: int | None = None, home_index: int = 0) -> None:
    node = net.nodes[home_index]
    with open_store(node.home / "data", net.genesis.hash,
                    safety_dir=node.home / "safety") as store:
        for block, cert in certified_blocks(net.genesis, keys_of(net), count, signers):
            store.commit(block, cert, (), {}, store.state_tree.apply(block.height, {}))
        store.save_safety_record(b"voted")


# -- a node home on its own ------------------------------------------------------------------

def test_a_stopped_node_with_its_peers_down(net):
    findings, code = doctor(net.nodes[0].home)
    assert code == 1
    assert [f.check for f in findings if f.status == OK][:3] == ["config", "genesis", "key"]
    assert "not running" in only(findings, "process", WARN).message
    assert len(lines(findings, "ports", OK)) == 2 and lines(findings, "disk", OK)
    assert "no store yet" in only(findings, "store", OK).message
    down = lines(findings, "peer-link", WARN)
    assert len(down) == 3 and all("cannot connect" in m and "connection refused" in m for m in down)
    assert not [f for f in findings if f.status == FAIL]
    assert all(f.fix for f in findings if f.status != OK)


def test_unreadable_config_is_one_failure_and_nothing_crashes(net):
    (net.nodes[0].home / "config.toml").write_text("[node\nname = ")
    findings, code = doctor(net.nodes[0].home)
    assert code == 2
    assert "invalid TOML" in only(findings, "config", FAIL).message
    assert [f.check for f in findings] == ["config"]      # nothing else can be judged


def test_missing_home_fails_cleanly(tmp_path):
    findings, code = doctor(tmp_path / "nowhere")
    assert code == 2 and "not found" in only(findings, "config", FAIL).message


def test_key_file_readable_by_others(net):
    key = net.nodes[0].home / "node.key"
    os.chmod(key, 0o644)
    findings, code = doctor(net.nodes[0].home)
    found = only(findings, "key", FAIL)
    assert code == 2 and "mode 0644" in found.message and found.fix.startswith(f"chmod 600 {key}")


def test_a_key_genesis_lists_for_another_node(net):
    home = net.nodes[0].home
    shutil.copy(net.nodes[1].home / "node.key", home / "node.key")
    found = only(doctor(home)[0], "key", FAIL)
    assert "genesis lists this key for node1" in found.message and 'node.name = "node1"' in found.fix


def test_a_key_that_is_no_validators(net):
    home = net.nodes[0].home
    (home / "node.key").unlink()
    save_key(home / "node.key", KeyPair.generate())
    found = only(doctor(home)[0], "key", FAIL)
    assert "is no validator's key in genesis" in found.message


def test_broken_genesis(net):
    (net.dir / "genesis.json").write_text('{"chain_id": 5}')
    findings, code = doctor(net.nodes[0].home)
    assert code == 2 and "missing field(s)" in only(findings, "genesis", FAIL).message


def test_listen_address_that_genesis_does_not_advertise(net):
    home = net.nodes[0].home
    config = (home / "config.toml").read_text()
    port = net.nodes[0].p2p[1]
    (home / "config.toml").write_text(config.replace(f"127.0.0.1:{port}\"", f"127.0.0.1:{port + 100}\""))
    found = only(doctor(home)[0], "genesis", WARN)
    assert f"genesis tells its peers to dial 127.0.0.1:{port}" in found.message


def test_ports_held_by_another_program(net):
    host, port = net.nodes[0].api
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((host, port))
        squatter.listen()
        findings, code = doctor(net.nodes[0].home)
    found = only(findings, "ports", FAIL)
    assert code == 2 and f"api {host}:{port} is in use by another program" in found.message
    assert f"sport = :{port}" in found.fix


def test_an_api_port_held_by_another_node(net):
    """Another node's API on this node's API address: not "this node running"."""
    node0 = net.nodes[0]
    with FakeApi(node0.api, {"/status": status_doc(net.genesis, "node1")}):
        findings, _ = doctor(node0.home)
    assert "another node answers there: 'node1'" in only(findings, "ports", FAIL).message
    assert "not running" in only(findings, "process", WARN).message


def test_disk_thresholds(net):
    home = net.nodes[0].home
    huge = 1 << 62
    assert only(doctor(home, limits=Limits(disk_warn_bytes=huge))[0], "disk", WARN)
    found = only(doctor(home, limits=Limits(disk_warn_bytes=huge, disk_fail_bytes=huge))[0], "disk", FAIL)
    assert "GiB free of" in found.message and "free space" in found.fix


# -- the store -----------------------------------------------------------------------------------

def test_a_store_whose_tip_is_certified(net):
    commit_blocks(net, 3)
    found = only(doctor(net.nodes[0].home)[0], "store", OK)
    assert "tip block 3 is certified by a quorum" in found.message


def test_a_tip_without_a_quorum_is_reported(net):
    commit_blocks(net, 2, signers=net.genesis.quorum - 1)
    found = only(doctor(net.nodes[0].home)[0], "store", FAIL)
    assert "tip block 2 does not check out: invalid certificate: 2 votes, a quorum is 3" in found.message
    assert "ynchain node resync" in found.fix


def test_a_damaged_store(net):
    commit_blocks(net, 3)
    flip_16_bytes_of_the_log(net.nodes[0].home / "data")
    found = only(doctor(net.nodes[0].home)[0], "store", FAIL)
    assert "the database is damaged" in found.message
    assert f"ynchain node resync --home {net.nodes[0].home}" in found.fix


def test_a_lost_store_of_a_node_that_voted(net):
    commit_blocks(net, 1)
    shutil.rmtree(net.nodes[0].home / "data")
    found = only(doctor(net.nodes[0].home)[0], "store", FAIL)
    assert "this node has voted before" in found.message and "ynchain node resync" in found.fix


def test_a_store_of_another_genesis(net):
    commit_blocks(net, 1)
    doc = json.loads((net.dir / "genesis.json").read_text())
    doc["consensus"]["tx_validity_window"] = 77
    (net.dir / "genesis.json").write_text(json.dumps(doc))
    found = only(doctor(net.nodes[0].home)[0], "store", FAIL)
    assert "store belongs to genesis" in found.message and "node.genesis" in found.fix


def test_a_store_held_by_another_process_is_not_touched(net):
    """The store is locked but no API answers: no handshake under this node's
    key (the holder may be this node, hung), and the store is not opened."""
    commit_blocks(net, 1)
    node0 = net.nodes[0]
    with open_store(node0.home / "data", net.genesis.hash):
        facts = Facts(node0.home, **FAST)
        findings = run_checks(facts)
    assert "in use by another process" in only(findings, "store", WARN).message
    assert "a process holds the store" in only(findings, "process", WARN).message
    assert isinstance(facts.links, str) and "holds this node's store" in facts.links


# -- peers through their APIs ----------------------------------------------------------------------

def peers_answering(net, docs: dict[str, object]):
    """FakeApis for the validators named in `docs`, each answering /status."""
    stack = ExitStack()
    for node in net.nodes:
        if node.name in docs:
            stack.enter_context(FakeApi(node.api, {"/status": docs[node.name]}))
    return stack


def test_peers_on_another_genesis_and_with_a_wrong_clock(net):
    g = net.genesis
    docs = {"node1": status_doc(g, "node1"),
            "node2": lambda: status_doc(g, "node2", genesis_hash="ab" * 32),
            "node3": lambda: status_doc(g, "node3", time=time.time() + 30)}
    with peers_answering(net, docs):
        findings, code = doctor(net.nodes[0].home)
    assert code == 2
    odd = only(findings, "peer-genesis", FAIL)
    assert odd.message.startswith("node2 runs another genesis (hash abababab") and "node2: give it" in odd.fix
    assert "node1, node3: same chain and genesis" in only(findings, "peer-genesis", OK).message
    skew = only(findings, "clock", WARN)
    assert skew.message.startswith("node3's clock is 30.") and "ahead" in skew.message and "NTP" in skew.fix


def test_a_peer_that_is_down_and_one_whose_api_address_is_wrong(net):
    g = net.genesis
    with peers_answering(net, {"node1": status_doc(g, "node1"), "node2": status_doc(g, "node1")}):
        findings, _ = doctor(net.nodes[0].home)
    messages = lines(findings, "peer-api", WARN)
    assert any("node3 at http" in m and "connection refused" in m for m in messages)
    assert any("node2: its API address in genesis" in m and "answers as 'node1'" in m for m in messages)


def test_a_committing_chain_and_a_stalled_one(net):
    g = net.genesis
    heights = {"n": 5}

    def rising():
        heights["n"] += 1
        return status_doc(g, "node1", height=heights["n"])
    docs = {"node1": rising, "node2": status_doc(g, "node2", height=5),
            "node3": status_doc(g, "node3", height=5)}
    with peers_answering(net, docs):
        assert "the chain commits: height" in only(doctor(net.nodes[0].home)[0], "commits", OK).message

    stuck = {name: status_doc(g, name, height=5, mempool=12, peers=["node0"])
             for name in ("node1", "node2", "node3")}
    with peers_answering(net, stuck):
        findings, code = doctor(net.nodes[0].home)
    found = only(findings, "commits", FAIL)
    assert code == 2
    assert "not committing: height 5 for 0.3s with 12 transactions waiting" in found.message
    assert "likely: no quorum connected" in found.message and "start the stopped validators" in found.fix


def test_an_idle_chain_is_fine(net):
    g = net.genesis
    with peers_answering(net, {n: status_doc(g, n, height=9) for n in ("node1", "node2", "node3")}):
        findings, _ = doctor(net.nodes[0].home)
    assert "idle" in only(findings, "commits", OK).message
    assert "stopped at height" not in " ".join(lines(findings, "height"))   # no store yet: no height


def test_stall_reasons():
    g, _, _ = make_genesis(4)
    full = ["node1", "node2", "node3"]
    steady = {n: {"height": 4, "view": 2, "peers": [p for p in ["node0", *full] if p != n],
                  "mempool": 10, "primary": "node2"} for n in ["node0", *full]}
    # a quorum, views stable: nothing visible
    [(reason, fix)] = diagnose_stall(g, steady, steady, None, {})
    assert reason.startswith("no cause visible") and "node2" in fix
    # views rising on a connected quorum
    later = {n: {**d, "view": 5} for n, d in steady.items()}
    [(reason, fix)] = diagnose_stall(g, steady, later, None, {})
    assert reason.startswith("view changes in a row (node0 2 -> 5") and "primary (node2)" in fix
    # a full mempool
    [_, (reason, _)] = diagnose_stall(g, steady, later, None, {"node1": 10})
    assert reason == "mempool full on node1 10/10: new transactions are refused"
    # this node behind
    behind = {**steady, "node0": {**steady["node0"], "height": 1}}
    [(reason, _)] = diagnose_stall(g, steady, behind, "node0", {})
    assert reason == "this node is behind (1 against 4) and not syncing"
    # two nodes apart from the rest: no quorum, and the view changes are its symptom
    split = {n: {**d, "view": 3, "peers": []} for n, d in steady.items() if n in ("node0", "node1")}
    [(reason, _)] = diagnose_stall(g, steady, split, None, {})
    assert reason.startswith("no quorum connected: 3 of 4") and reason.endswith("views keep changing meanwhile")


# -- a running node: its own view, never a handshake -------------------------------------------

def test_a_running_node_is_asked_not_handshaken(net):
    g = net.genesis
    node0 = net.nodes[0]
    metrics = NodeMetrics()
    metrics.set_limits(validators=4, quorum=3, mempool_max_txs=100, mempool_max_bytes=1 << 20)
    validators = [{"name": v.name, "connected": v.name != "node3",
                   "last_error": "wrong_genesis: peer genesis 0123456789abcdef" if v.name == "node3" else None}
                  for v in g.validators]
    commit_blocks(net, 2)   # the tip the fake serves is a real certified block
    [_, (block, cert)] = certified_blocks(g, keys_of(net), 2)
    routes = {"/status": status_doc(g, "node0", height=2), "/validators": {"validators": validators},
              "/metrics": metrics.render(),
              "/blocks/latest": block_to_json(block, cert, [v.name for v in g.validators])}
    with FakeApi(node0.api, routes), peers_answering(net, {n: status_doc(g, n, height=2)
                                                           for n in ("node1", "node2", "node3")}):
        facts = Facts(node0.home, **FAST)
        findings = run_checks(facts)
    assert facts.running and facts.links == "this node is running"
    assert "running: its API" in only(findings, "process", OK).message
    assert "held by the running node (checked through its API): tip block 2" in \
        only(findings, "store", OK).message
    link = only(findings, "peer-link", FAIL)
    assert link.message.startswith("node3: its genesis and this node's differ (peer genesis 0123")
    assert "[this node's last dial]" in link.message
    assert "connected to node1, node2" in only(findings, "peer-link", OK).message
    assert "api" in lines(findings, "ports", OK)[1] and "in use by this node" in lines(findings, "ports", OK)[1]


def test_a_running_node_serving_a_forged_tip(net):
    g = net.genesis
    [(block, cert)] = certified_blocks(g, [KeyPair.generate() for _ in range(4)], 1)
    routes = {"/status": status_doc(g, "node0", height=1),
              "/blocks/latest": block_to_json(block, cert, [v.name for v in g.validators])}
    with FakeApi(net.nodes[0].api, routes):
        found = only(doctor(net.nodes[0].home)[0], "store", FAIL)
    assert "does not check out: invalid certificate: bad signature from validator 0" in found.message


# -- handshakes under this node's key, while it is stopped -----------------------------------------

async def test_handshakes_with_each_peer_tell_why_a_link_fails(tmp_path):
    """node1 probes: node0 and node2 succeed (each dialled by, or dialling,
    node1 as their keys say: the smaller key dials), node3 runs another
    genesis, node4 is down."""
    net = init_testnet(tmp_path / "net", 5, free_port_base(10))
    keys = keys_of(net)
    genesis = net.genesis
    other = replace(genesis, raw=genesis.raw + b" ")       # same validators, another genesis hash

    def manager(i: int, on_genesis) -> PeerManager:
        table = {v.public_key: Peer(v.name, v.p2p) for j, v in enumerate(genesis.validators) if j != i}
        send, _ = trio.open_memory_channel(100)
        return PeerManager(keys[i], on_genesis.chain_id, on_genesis.hash, table, send,
                           backoff_max_s=0.2)

    peers = {0: manager(0, genesis), 2: manager(2, genesis), 3: manager(3, other)}
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i, pm in peers.items():
                await nursery.start(pm.run, *genesis.validators[i].p2p)
            results = await probe_links(keys[1], genesis, 1, genesis.validators[1].p2p, timeout_s=2.0)
            nursery.cancel_scope.cancel()
    def how(j: int) -> str:
        return "dialed" if dials(keys[1].public_key, keys[j].public_key) else "accepted"
    assert results[0] == LinkResult(True, how(0))
    assert results[2] == LinkResult(True, how(2))
    assert results[3].reason == "wrong_genesis" and not results[3].ok
    assert results[4].reason == "unreachable" and results[4].detail == "connection refused"


async def test_a_peer_that_should_dial_but_never_does_is_reported_silent(tmp_path):
    net = init_testnet(tmp_path / "net", 3, free_port_base(6))
    keys = keys_of(net)
    genesis = net.genesis
    # By key: `low` must dial `high`; `middle` is down.
    low, middle, high = sorted(range(3), key=lambda i: keys[i].public_key)
    send, _ = trio.open_memory_channel(10)
    # `low` runs, but its peer table has no `high` (as if its genesis lacked it): it never dials it.
    v = genesis.validators[middle]
    runner = PeerManager(keys[low], genesis.chain_id, genesis.hash, {v.public_key: Peer(v.name, v.p2p)}, send)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run, *genesis.validators[low].p2p)
            results = await probe_links(keys[high], genesis, high, genesis.validators[high].p2p,
                                        timeout_s=2.0, window_s=0.5)
            nursery.cancel_scope.cancel()
    assert results[low] == LinkResult(False, "dialed", "silent", "")
    assert results[middle].reason == "unreachable"


def test_every_check_is_listed_once():
    assert len(set(CHECKS)) == len(CHECKS)
    assert all(c.__name__.startswith("check_") for c in CHECKS)


def test_the_command_prints_lines_and_json_and_exits_by_the_worst(net, run):
    home = net.nodes[0].home
    os.chmod(home / "node.key", 0o640)
    result = run("node", "doctor", "--home", home, "--timeout", "1", "--sample", "0.2")
    assert result.exit_code == 2, result.output
    assert "  fail  key" in result.output and f"fix: chmod 600 {home / 'node.key'}" in result.output
    assert result.output.rstrip().splitlines()[-1].endswith("1 failure")
    as_json = run("node", "doctor", "--home", home, "--json", "--timeout", "1", "--sample", "0.2")
    doc = json.loads(as_json.stdout)
    assert as_json.exit_code == 2 and doc["exit_code"] == 2 and doc["result"] == "fail"
    assert doc["node"] == "node0" and {"check", "status", "message", "fix"} == set(doc["checks"][0])
    assert load_testnet(net.dir).nodes[0].home == home


def test_peers_on_other_hosts_with_loopback_apis_are_not_asked_over_http(net):
    """A real deployment: genesis gives each peer's host for p2p, and the API
    address each node listens on (loopback): that is not theirs from here."""
    doc = json.loads((net.dir / "genesis.json").read_text())
    for i, v in enumerate(doc["nodes"][1:], start=1):
        v["p2p"] = f"192.0.2.{i}:{net.nodes[i].p2p[1]}"       # TEST-NET-1: another host
    (net.dir / "genesis.json").write_text(json.dumps(doc))
    with FakeApi(net.nodes[1].api, {"/status": status_doc(net.genesis, "node0")}) as decoy:
        findings, _ = doctor(net.nodes[0].home, timeout_s=0.3)
    assert decoy.hits == []            # node1's loopback API address is not node1's from here
    assert "node1, node2, node3: genesis lists loopback API addresses for peers on other hosts" in \
        only(findings, "peer-api", OK).message
    assert len(lines(findings, "peer-link", WARN)) == 3    # their p2p addresses are tried instead
