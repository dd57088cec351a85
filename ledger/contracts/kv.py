"""`kv` version 2: a shared key-value store where each key belongs to an
organisation, one record per key.

The organisation of a key's first writer owns it for good (the owner stays
after a delete), so a department's key can never be taken over by another
department, even after the owner deletes its value.

Records: ENTRY table, key -> [owner, value], or [owner] once the value is
deleted (a value is never null, so the two shapes cannot be confused).
Version 1 (kv_v1.py) kept the owner and the value in two tables; one record
means a put of a new key reads and writes one state key instead of two, and
a state proof of the entry proves who owns the key together with what it
holds.  On a chain that ran version 1, a key is read from its version-1
records until version 2 first writes it; that write moves it to ENTRY and
deletes the old records, so every key lives in one place.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import ContractError
from ..receipt import ERR_NOT_FOUND, ERR_PERMISSION
from . import kv_v1
from .base import DATA, CallContext, Contract, ContractState, StateReader

ENTRY = "entry"       # table: key -> [owner] or [owner, value]


def _v1_entry(state: StateReader, key: str) -> list | None:
    """A key as version 1 left it, as an entry (None: version 1 never wrote it)."""
    owner = state.get(key, kv_v1.OWNER)
    if owner is None:
        return None
    value = state.get(key, DATA)
    return [owner] if value is None else [owner, value]


def _ran_v1(ctx: CallContext) -> bool:
    """Whether this chain's schedule ever ran version 1 (otherwise there are no
    version-1 records to look for: a new chain's puts read one state key)."""
    return ctx.config.contract_schedule[CONTRACT.name][0][1].version == 1


def _owned_entry(ctx: CallContext, state: ContractState, key: str) -> tuple[list | None, list | None]:
    """(the key's entry or None, the same if it is still in version-1 records
    else None), refusing a key another organisation owns."""
    entry = state.get(key, ENTRY)
    v1 = None
    if entry is None and _ran_v1(ctx):
        entry = v1 = _v1_entry(state, key)
    if entry is not None and entry[0] != ctx.org:
        raise ContractError(ERR_PERMISSION, f"key owned by {entry[0]}")
    return entry, v1


def _write(state: ContractState, key: str, entry: list, v1: list | None) -> None:
    """Store `entry`, deleting the version-1 records the key still had."""
    state.put(key, entry, ENTRY)
    if v1 is not None:
        state.delete(key, kv_v1.OWNER)
        if len(v1) == 2:
            state.delete(key, DATA)


def put(ctx: CallContext, state: ContractState, args: dict) -> None:
    key = args["key"]
    entry, v1 = _owned_entry(ctx, state, key)
    _write(state, key, [ctx.org if entry is None else entry[0], args["value"]], v1)


def delete(ctx: CallContext, state: ContractState, args: dict) -> None:
    key = args["key"]
    entry, v1 = _owned_entry(ctx, state, key)
    if entry is None or len(entry) < 2:
        raise ContractError(ERR_NOT_FOUND, f"no key {key!r}")
    _write(state, key, [entry[0]], v1)


def query(reader: StateReader, key: str) -> Any | None:
    """GET /state/kv/<key>: the key's value (None once deleted or never set)."""
    entry = reader.get(key, ENTRY)
    if entry is None:
        entry = _v1_entry(reader, key)
    return None if entry is None or len(entry) < 2 else entry[1]


# Same arguments, summaries and roles as version 1; only the records differ.
METHODS: dict[str, Any] = {"put": replace(kv_v1.METHODS["put"], run=put),
                           "delete": replace(kv_v1.METHODS["delete"], run=delete)}
CONTRACT = Contract("kv", METHODS, query, version=2)
