"""Who this node talks to, and who votes: both read from the committed configuration.

`allowlist` is the transport's table (node.transport.peers.PeerManager.update):
every node of the configuration, validators and observers, by node key.  A
change takes effect when the configuration says it does:

- an observer added, removed, moved or given a new key: at once, from the
  block that carried the change (it does not vote, nothing waits for it);
- a validator: the set that votes at a seq is the epoch's
  (ledger.consortium.ChainConfig.epoch_of), so a validator removed or given a
  new key keeps its old key on the mesh until its epoch ends (it still votes
  until then) and is refused from the boundary on; its new key is accepted
  from the boundary.  A promoted observer stays on the mesh under its key.

`ValidatorIndex` is the replica's view of the same set: consensus messages
name validators by their index in the set, the transport by key; the driver,
the dispatcher and the relay translate through this one object.

Who runs the consensus core (`runs_consensus`, `consensus_keys`): the
validators of the epoch in force at the next height and of every epoch the
chain scheduled after it.  A node promoted by governance starts its core
(passive) when the block that scheduled its epoch commits, so it holds the
checkpoint at the boundary when its epoch starts; a node in no such set is an
observer.  `epoch_changes` is what the driver hands the core with Executed
and Synced: the epochs a commit scheduled or changed.
"""

from __future__ import annotations

from typing import Mapping

from consensus.epochs import change_of
from consensus.events import EpochChange
from ledger.consortium import ChainConfig
from node.transport.peers import Peer


def allowlist(config: ChainConfig, height: int, dial: Mapping[str, tuple[str, int]],
              previous: Mapping[bytes, Peer]) -> dict[bytes, Peer]:
    """The peers allowed after committed block `height` under `config`.
    `dial` are this node's address overrides by node name (config.toml
    p2p.dial); `previous` is the table in force so far, whose address is kept
    for a validator that left the configuration but votes until its epoch
    ends (the configuration no longer lists where it is)."""
    epoch = config.epoch_of(height + 1)
    table: dict[bytes, Peer] = {}
    for name, key in epoch.validators:
        node = config.nodes.get(name)
        if node is not None:
            table[key] = Peer(name, dial.get(name, node.p2p))
        elif key in previous:
            table[key] = previous[key]
    voting = set(epoch.names)
    for node in config.nodes.values():
        if node.name not in voting:
            table[node.public_key] = Peer(node.name, dial.get(node.name, node.p2p))
    return table


class ValidatorIndex:
    """index <-> node key for the validator set the replica runs with (its
    indexes are positions in that set).  `set_keys` replaces the set: the one
    place that changes when the replica moves to another epoch."""

    __slots__ = ("keys", "_by_key")

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        self.keys: tuple[bytes, ...] = ()
        self._by_key: dict[bytes, int] = {}
        self.set_keys(keys)

    def set_keys(self, keys: tuple[bytes, ...]) -> None:
        self.keys = tuple(keys)
        self._by_key = {key: i for i, key in enumerate(self.keys)}

    def key_of(self, index: int) -> bytes:
        return self.keys[index]

    def index_of(self, key: bytes) -> int | None:
        return self._by_key.get(key)


def consensus_keys(config: ChainConfig, height: int) -> frozenset[bytes]:
    """The keys that run the consensus core after committed block `height`:
    the validators of the epoch of height + 1 and of every later epoch."""
    current = config.epoch_of(height + 1).number
    return frozenset(key for epoch in config.epochs if epoch.number >= current for key in epoch.keys)


def runs_consensus(config: ChainConfig, height: int, key: bytes) -> bool:
    return key in consensus_keys(config, height)


def epoch_changes(before: ChainConfig, after: ChainConfig) -> tuple[EpochChange, ...]:
    """The epochs (after epoch 0) that `after` holds and `before` does not, or
    holds otherwise (a pending epoch a later block changed), in order."""
    if after.epochs is before.epochs:
        return ()
    held = dict((epoch.number, epoch) for epoch in before.epochs)
    return tuple(change_of(epoch) for epoch in after.epochs
                 if epoch.number > 0 and held.get(epoch.number) != epoch)
