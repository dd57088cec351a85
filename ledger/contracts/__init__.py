"""The built-in contracts, by name and version, and when each version runs.

Adding a contract or a version changes what every node computes: it is a
protocol change and must ship to all validators before the height it
activates at.  A version's rules never change once a chain has run them;
a rule change is a new version with an activation height, so a node
replaying the chain from genesis runs every block under the rules that ran
it the first time and reaches the same state root.

The schedule: DEFAULT_SCHEDULE below, unless the genesis's
`contract_versions` gives a contract's own (version -> first height, see
ledger.genesis).  Before its first scheduled height a contract does not
exist on the chain.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from ..errors import ContractError
from . import fiscal, fiscal_v1, gov, kv, kv_v1, receivable, trace
from .base import (CallContext, CommittedState, Contract, ContractState, Method, QueryReader,
                   StateReader, state_key)

# name -> version -> rules
VERSIONS: Mapping[str, Mapping[int, Contract]] = MappingProxyType({
    "kv": MappingProxyType({1: kv_v1.CONTRACT, 2: kv.CONTRACT}),
    "fiscal": MappingProxyType({1: fiscal_v1.CONTRACT, 2: fiscal.CONTRACT}),
    "trace": MappingProxyType({1: trace.CONTRACT}),
    "receivable": MappingProxyType({1: receivable.CONTRACT}),
    "gov": MappingProxyType({1: gov.CONTRACT}),
})

# name -> ((first height, version), ...) ascending: what new chains run.
DEFAULT_SCHEDULE: Mapping[str, tuple[tuple[int, int], ...]] = MappingProxyType({
    "kv": ((1, 2),),
    "fiscal": ((1, 2),),
    "trace": ((1, 1),),
    "receivable": ((1, 1),),
    "gov": ((1, 1),),
})

# The newest version of each contract: its query reads every version's records.
REGISTRY: Mapping[str, Contract] = MappingProxyType(
    {name: versions[max(versions)] for name, versions in VERSIONS.items()})

Schedule = Mapping[str, tuple[tuple[int, Contract], ...]]


def build_schedule(explicit: Mapping[str, tuple[tuple[int, int], ...]]) -> Schedule:
    """Each contract's (first height, rules) ascending, from the defaults and
    a genesis's validated `contract_versions` (which replace a contract's default)."""
    out = {}
    for name, versions in VERSIONS.items():
        steps = explicit.get(name, DEFAULT_SCHEDULE[name])
        out[name] = tuple((height, versions[version]) for height, version in steps)
    return MappingProxyType(out)


def contract_at(schedule: Schedule, name: str, height: int) -> Contract | str:
    """The rules of contract `name` at `height`, or why there are none."""
    steps = schedule.get(name)
    if steps is None:
        return f"unknown contract {name!r}"
    found = None
    for first, rules in steps:
        if first > height:
            break
        found = rules
    if found is None:
        return f"contract {name!r} is not active before height {steps[0][0]}"
    return found


__all__ = ["DEFAULT_SCHEDULE", "REGISTRY", "VERSIONS", "CallContext", "CommittedState", "Contract",
           "ContractError", "ContractState", "Method", "QueryReader", "Schedule", "StateReader",
           "build_schedule", "contract_at", "state_key"]
