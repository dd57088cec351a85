"""The transport's allowlist follows the configuration, each change at the time
the configuration says: an observer's at once, a validator's at its epoch's
boundary; the index <-> key mapping the driver uses; who runs the consensus
core, and the epochs the driver hands it."""

from __future__ import annotations

from ledger.contracts.gov_actions import carry_out
from consensus.epochs import change_of
from node.core.membership import ValidatorIndex, allowlist, epoch_changes, runs_consensus
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


def test_a_promoted_observer_runs_the_core_from_the_block_that_scheduled_its_epoch():
    added = _added_observer()
    assert not runs_consensus(added, 3, OBSERVER)
    promoted = carry_out(added, "promote_node", "node4", {}, 4, 0)
    boundary = promoted.pending_boundary(4)
    assert boundary is not None and boundary >= 4 + 8
    # A validator-to-be runs the core (passive) before its epoch starts, and after.
    assert runs_consensus(promoted, 4, OBSERVER) and runs_consensus(promoted, boundary, OBSERVER)
    assert all(runs_consensus(promoted, 4, key) for key in GENESIS.validator_keys)
    demoted = carry_out(promoted, "demote_node", "node0", {}, boundary + 1, 0)
    later = demoted.pending_boundary(boundary + 1)
    node0 = VALIDATORS["node0"].public_key
    assert runs_consensus(demoted, later - 1, node0)          # votes until its epoch ends
    assert not runs_consensus(demoted, later, node0)          # then an observer (at a restart too)


def test_epoch_changes_are_the_epochs_a_block_scheduled_or_changed():
    added = _added_observer()
    assert epoch_changes(GENESIS.config, added) == ()        # an observer's addition: no epoch
    promoted = carry_out(added, "promote_node", "node4", {}, 4, 0)
    [scheduled] = epoch_changes(added, promoted)
    assert scheduled == change_of(promoted.epochs[-1]) and scheduled.epoch == 1
    assert scheduled.validators == (*GENESIS.validator_keys, OBSERVER)
    # A second change while epoch 1 is pending (and starts at or after h + W) replaces it.
    removed = carry_out(promoted, "remove_node", "node3", {}, 4, 0)
    [replaced] = epoch_changes(promoted, removed)
    assert (replaced.epoch, replaced.boundary) == (1, scheduled.boundary)
    assert VALIDATORS["node3"].public_key not in replaced.validators
    assert epoch_changes(promoted, promoted) == ()
    # One that cannot reach epoch 1 any more schedules epoch 2 after it.
    again = carry_out(promoted, "remove_node", "node3", {}, 5, 0)
    [later] = epoch_changes(promoted, again)
    assert (later.epoch, later.boundary) == (2, 16)
