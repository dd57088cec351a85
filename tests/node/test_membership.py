"""The transport's allowlist follows the configuration, each change at the time
the configuration says: an observer's at once, a validator's at its epoch's
boundary; and the index <-> key mapping the driver uses."""

from __future__ import annotations

from ledger.contracts.gov_actions import carry_out
from node.core.membership import ValidatorIndex, allowlist
from node.transport.peers import Peer
from tests.factories import key_for, make_genesis

GENESIS, VALIDATORS, _ = make_genesis(4, roles={"finance": ["admin"], "tax": ["admin"]},
                                     checkpoint_interval=4, window=8)
OBSERVER = key_for("validator", "node4").public_key


def _added_observer():
    config = carry_out(GENESIS.config, "add_node", "node4",
                       {"org": GENESIS.nodes[0].org, "public_key": OBSERVER.hex(),
                        "p2p": "127.0.0.1:30004", "api": "127.0.0.1:30005"}, 3, 0)
    return config


def test_every_node_of_the_configuration_is_allowed_and_an_observer_from_its_block():
    table = allowlist(GENESIS.config, 0, {}, {})
    assert set(table) == set(GENESIS.validator_keys)
    assert table[VALIDATORS["node1"].public_key] == Peer("node1", GENESIS.nodes[1].p2p)
    config = _added_observer()
    table = allowlist(config, 3, {"node4": ("10.0.0.9", 4000)}, table)
    assert table[OBSERVER] == Peer("node4", ("10.0.0.9", 4000))        # the dial override wins
    removed = carry_out(config, "remove_node", "node4", {}, 5, 0)
    assert OBSERVER not in allowlist(removed, 5, {}, table)             # at once


def test_a_validator_keeps_its_old_key_until_its_epoch_ends():
    new_key = key_for("validator", "node1-new").public_key
    old_key = VALIDATORS["node1"].public_key
    config = carry_out(GENESIS.config, "rotate_node_key", "node1", {"public_key": new_key.hex()}, 3, 0)
    boundary = config.pending_boundary(3)
    assert boundary is not None and boundary > 3
    before = allowlist(config, boundary - 1, {}, {})
    assert old_key in before and new_key not in before
    after = allowlist(config, boundary, {}, before)
    assert new_key in after and old_key not in after
    assert after[new_key] == Peer("node1", GENESIS.nodes[1].p2p)


def test_a_removed_validator_stays_until_the_boundary_at_its_last_known_address():
    key = VALIDATORS["node3"].public_key
    table = allowlist(GENESIS.config, 2, {}, {})
    config = carry_out(GENESIS.config, "remove_node", "node3", {}, 3, 0)
    boundary = config.pending_boundary(3)
    still = allowlist(config, boundary - 1, {}, table)
    assert still[key] == table[key]           # the configuration no longer lists its address
    assert key not in allowlist(config, boundary, {}, still)


def test_validator_index_maps_both_ways_and_swaps_sets():
    index = ValidatorIndex(GENESIS.validator_keys)
    assert [index.index_of(index.key_of(i)) for i in range(4)] == [0, 1, 2, 3]
    assert index.index_of(OBSERVER) is None
    index.set_keys((OBSERVER, *GENESIS.validator_keys[:2]))
    assert index.index_of(OBSERVER) == 0 and index.index_of(GENESIS.validator_keys[3]) is None
