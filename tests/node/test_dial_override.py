"""config.toml [p2p] dial: reaching a validator at another address than genesis lists
(NAT, a tunnel, a proxy).  The peer is still authenticated by its genesis key."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import trio

from ledger.genesis import parse_genesis
from node.app import Node, NodeError
from node.config import ConfigError, NodeConfig, load_config, render_config
from tests.factories import genesis_dict, key_for, make_store


def _write(home: Path, text: str) -> Path:
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(text)
    return home


def _config(**dial) -> str:
    return render_config("node0", ("127.0.0.1", 26650), ("127.0.0.1", 26651), dial=dial)


def test_dial_overrides_round_trip_through_config_toml(tmp_path):
    text = _config(node2=("10.1.2.3", 4000), node3=("proxy.example", 4001))
    assert 'dial = { node2 = "10.1.2.3:4000", node3 = "proxy.example:4001" }' in text
    config = load_config(_write(tmp_path / "home", text))
    assert dict(config.p2p_dial) == {"node2": ("10.1.2.3", 4000), "node3": ("proxy.example", 4001)}


def test_no_dial_table_means_genesis_addresses(tmp_path):
    assert load_config(_write(tmp_path / "home", _config())).p2p_dial == {}


@pytest.mark.parametrize("table, message", [
    ('dial = { node2 = "10.1.2.3" }', "p2p.dial.node2: expected HOST:PORT"),
    ('dial = { node2 = "10.1.2.3:70000" }', "p2p.dial.node2: expected HOST:PORT with a port in 1-65535"),
    ('dial = { node2 = 4000 }', "p2p.dial.node2: expected HOST:PORT"),
    ('dial = { "no such" = "10.1.2.3:4000" }', "p2p.dial: 'no such' is not a validator name"),
    ('dial = { node0 = "10.1.2.3:4000" }', "p2p.dial.node0: a node does not dial itself"),
    ('dial = "10.1.2.3:4000"', "p2p.dial must be a dict"),
])
def test_bad_dial_tables_are_clear_errors(tmp_path, table, message):
    text = _config().replace('listen = "127.0.0.1:26650"\n', f'listen = "127.0.0.1:26650"\n{table}\n')
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path / "home", text))
    assert str(info.value).endswith(message), str(info.value)


def _node(genesis, name: str, tmp_path: Path, dial=None) -> Node:
    config = NodeConfig(home=tmp_path, name=name, key_file=tmp_path / "unused.key",
                        data_dir=tmp_path / name, genesis=tmp_path / "genesis.json",
                        p2p_listen=("127.0.0.1", 0), api_listen=("127.0.0.1", 0),
                        p2p_dial=dial or {})
    store = make_store(genesis)
    return Node(config, genesis, key_for("validator", name), store)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dial_override_naming_no_validator_stops_the_node(tmp_path):
    doc = genesis_dict(2)
    genesis = parse_genesis(doc, json.dumps(doc).encode())
    with pytest.raises(NodeError, match="p2p.dial names node7: not a node in the configuration"):
        _node(genesis, "node0", tmp_path, {"node7": ("127.0.0.1", 1)})


async def test_node_dials_a_peer_at_its_override_address(tmp_path):
    # Of two nodes the one with the smaller key dials.  Genesis says the other is
    # at a port where nothing listens; it really listens elsewhere, and only the
    # dialer's override knows where.
    doc = genesis_dict(2)
    keys = {name: key_for("validator", name).public_key for name in ("node0", "node1")}
    dialer, listener = sorted(keys, key=keys.get)
    doc["validators"][int(listener[-1])]["p2p"] = f"127.0.0.1:{_unused_port()}"
    genesis = parse_genesis(doc, json.dumps(doc).encode())
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            accepting = _node(genesis, listener, tmp_path)
            p2p_port, _ = await nursery.start(accepting.run)
            dialling = _node(genesis, dialer, tmp_path, {listener: ("127.0.0.1", p2p_port)})
            await nursery.start(dialling.run)
            while not (dialling.peers.is_connected(keys[listener])
                       and accepting.peers.is_connected(keys[dialer])):
                await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
