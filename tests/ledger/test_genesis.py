"""Genesis loading: a valid document loads; every mistake names its field."""

from __future__ import annotations

import copy
import json
import re
from typing import Callable

import pytest

from ledger.errors import GenesisError
from ledger.genesis import Genesis, load_genesis, parse_genesis
from tests.factories import genesis_dict, make_genesis


def test_valid_genesis_loads() -> None:
    g, vkeys, akeys = make_genesis()
    assert g.chain_id == "ynchain-test"
    assert [v.name for v in g.validators] == ["node0", "node1", "node2", "node3"]
    assert [v.public_key for v in g.validators] == [k.public_key for k in vkeys.values()]
    assert g.f == 1 and g.quorum == 3
    assert g.validator_index(vkeys["node2"].public_key) == 2
    assert g.validator_by_name("node3").p2p == ("127.0.0.1", 7)
    acct = g.account_by_key(akeys["tax"].public_key)
    assert acct.name == "tax" and acct.org == "tax" and acct.roles == ("writer",)
    assert g.account_by_key(vkeys["node0"].public_key) is None


def test_json_round_trip_and_file_loading(tmp_path) -> None:
    g, _, _ = make_genesis(7, tx_validity_window=50)
    again = parse_genesis(g.to_json())
    assert again == g and again.consensus.tx_validity_window == 50
    path = tmp_path / "genesis.json"
    path.write_bytes(json.dumps(g.to_json()).encode())
    loaded = load_genesis(path)
    assert loaded == g and loaded.hash != make_genesis(4)[0].hash


def test_defaults_for_optional_fields() -> None:
    data = genesis_dict()
    del data["consensus"]
    del data["accounts"][0]["roles"]
    del data["organisations"][0]["display_name"]
    g = parse_genesis(data)
    assert g.accounts[0].roles == ("writer",)
    assert g.organisations[0].display_name == g.organisations[0].name
    assert g.consensus.tx_validity_window == 1000


def _set(path: str, value) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p)] if p.isdigit() else d[p]
        d[int(last) if last.isdigit() else last] = value
    return mutate


def _delete(path: str) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p)] if p.isdigit() else d[p]
        del d[int(last) if last.isdigit() else last]
    return mutate


def _copy_field(kind: str, field: str, src: int = 0, dst: int = 1) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        d[kind][dst][field] = d[kind][src][field]
    return mutate


BROKEN = [
    (_delete("chain_id"), "genesis: missing field(s): chain_id"),
    (_set("extra", 1), "genesis: unknown field(s): extra"),
    (_set("chain_id", "has space"), "genesis.chain_id: expected a name"),
    (_set("chain_id", ""), "genesis.chain_id: expected a name"),
    (_set("chain_id", "x" * 65), "genesis.chain_id: expected a name"),
    (_set("organisations", []), "genesis.organisations: expected a non-empty list"),
    (_set("organisations.1", "tax"), "genesis.organisations[1]: expected an object"),
    (_delete("organisations.0.name"), "genesis.organisations[0]: missing field(s): name"),
    (_set("organisations.0.colour", "red"), "genesis.organisations[0]: unknown field(s): colour"),
    (_set("organisations.2.display_name", 7), "genesis.organisations[2].display_name"),
    (_copy_field("organisations", "name"), "genesis.organisations[1]: duplicate organisation name"),
    (_set("validators", []), "genesis.validators: expected a list of 1..1024 validators"),
    (_set("validators.2.org", "police"), "genesis.validators[2].org: unknown organisation 'police'"),
    (_set("validators.1.name", "-bad"), "genesis.validators[1].name: expected a name"),
    (_set("validators.3.public_key", "00" * 31), "genesis.validators[3].public_key: expected 64 hex"),
    (_set("validators.3.public_key", "zz" * 32), "genesis.validators[3].public_key: expected 64 hex"),
    (_set("validators.0.p2p", "localhost"), "genesis.validators[0].p2p: expected HOST:PORT"),
    (_set("validators.0.p2p", "127.0.0.1:0"), "genesis.validators[0].p2p: expected HOST:PORT with a port"),
    (_set("validators.0.api", "127.0.0.1:70000"), "genesis.validators[0].api: expected HOST:PORT with a port"),
    (_set("validators.0.api", ":80"), "genesis.validators[0].api: expected HOST:PORT"),
    (_delete("validators.1.api"), "genesis.validators[1]: missing field(s): api"),
    (_copy_field("validators", "name"), "genesis.validators[1]: duplicate validator name"),
    (_copy_field("validators", "public_key"), "genesis.validators[1]: duplicate validator public key"),
    (_copy_field("validators", "p2p"), "genesis.validators[1]: duplicate p2p address"),
    (_set("accounts", {}), "genesis.accounts: expected a list"),
    (_set("accounts.0.org", "nobody"), "genesis.accounts[0].org: unknown organisation 'nobody'"),
    (_set("accounts.1.roles", ["god"]), "genesis.accounts[1].roles: expected a list of roles"),
    (_set("accounts.1.roles", "writer"), "genesis.accounts[1].roles: expected a list of roles"),
    (_set("accounts.2.public_key", 5), "genesis.accounts[2].public_key: expected 64 hex"),
    (_copy_field("accounts", "name"), "genesis.accounts[1]: duplicate account name"),
    (_copy_field("accounts", "public_key"), "genesis.accounts[1]: duplicate account public key"),
    (_set("consensus", []), "genesis.consensus: expected an object"),
    (_set("consensus.speed", 1), "genesis.consensus: unknown field(s): speed"),
    (_set("consensus.max_block_txs", 0), "genesis.consensus.max_block_txs: expected an integer"),
    (_set("consensus.window", "64"), "genesis.consensus.window: expected an integer"),
    (_set("consensus.tx_validity_window", True), "genesis.consensus.tx_validity_window: expected an integer"),
    (_set("consensus.empty_blocks_interval_ms", -1), "genesis.consensus.empty_blocks_interval_ms"),
    (_set("consensus.window", 31), "genesis.consensus.window: must be at least 2 * checkpoint_interval"),
    (_set("consensus.window", 2048), "genesis.consensus.window: must be at most 1024"),
    (_set("consensus.max_in_flight", 0), "genesis.consensus.max_in_flight: expected an integer"),
    (_set("consensus.max_in_flight", 65), "genesis.consensus.max_in_flight: must be at most window"),
    (_set("consensus.max_view_change_timeout_ms", 1000),
     "genesis.consensus.max_view_change_timeout_ms: must be >= view_change_timeout_ms"),
]


@pytest.mark.parametrize("mutate, message", BROKEN)
def test_each_mistake_names_its_field(mutate, message: str) -> None:
    data = copy.deepcopy(genesis_dict())
    mutate(data)
    with pytest.raises(GenesisError) as info:
        parse_genesis(data)
    assert str(info.value).startswith(message), str(info.value)


def test_not_an_object() -> None:
    with pytest.raises(GenesisError, match="genesis: expected a JSON object"):
        parse_genesis([])


def test_file_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(GenesisError, match="cannot read genesis"):
        load_genesis(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(GenesisError, match=rf"{re.escape(str(bad))}: not valid JSON"):
        load_genesis(bad)
    broken = tmp_path / "broken.json"
    data = genesis_dict()
    data["validators"][0]["org"] = "nobody"
    broken.write_text(json.dumps(data))
    with pytest.raises(GenesisError, match=r"broken.json: genesis.validators\[0\].org"):
        load_genesis(broken)


def test_factory_is_deterministic() -> None:
    a, _, _ = make_genesis()
    b, _, _ = make_genesis()
    assert isinstance(a, Genesis) and a == b and a.hash == b.hash
