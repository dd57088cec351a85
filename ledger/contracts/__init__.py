"""The built-in contracts, by name.

Adding a contract changes what every node computes: it is a protocol change
and must ship to all validators at the same height.
"""

from __future__ import annotations

from types import MappingProxyType

from ..errors import ContractError
from . import fiscal, kv
from .base import CallContext, Contract, ContractState, StateReader, state_key

REGISTRY: MappingProxyType[str, Contract] = MappingProxyType(
    {c.name: c for c in (kv.CONTRACT, fiscal.CONTRACT)})

__all__ = ["REGISTRY", "CallContext", "Contract", "ContractError", "ContractState",
           "StateReader", "state_key"]
