"""`kv` version 1 (kept unchanged: chains that ran it replay it): a shared
key-value store where each key belongs to an organisation, in two tables.

The organisation of a key's first writer owns it for good (the owner record
outlives a delete), so a department's key can never be taken over by another
department, even after the owner deletes its value.
"""

from __future__ import annotations

from typing import Any

from ..errors import ContractError
from ..receipt import ERR_NOT_FOUND, ERR_PERMISSION
from .base import CallContext, Contract, ContractState, Method
from .schema import Plain, Record, Str

MAX_KEY_LEN = 256
MAX_VALUE_BYTES = 4096
OWNER = "owner"       # table: key -> owning organisation

KEY = Str("the key (may contain '/')", "tea/lot-7", max_len=MAX_KEY_LEN)


def _check_owner(ctx: CallContext, state: ContractState, key: str) -> str | None:
    owner = state.get(key, OWNER)
    if owner is not None and owner != ctx.org:
        raise ContractError(ERR_PERMISSION, f"key owned by {owner}")
    return owner


def put(ctx: CallContext, state: ContractState, args: dict) -> None:
    key = args["key"]
    if _check_owner(ctx, state, key) is None:
        state.put(key, ctx.org, OWNER)
    state.put(key, args["value"])


def delete(ctx: CallContext, state: ContractState, args: dict) -> None:
    key = args["key"]
    _check_owner(ctx, state, key)
    if state.get(key) is None:
        raise ContractError(ERR_NOT_FOUND, f"no key {key!r}")
    state.delete(key)


METHODS: dict[str, Any] = {
    "put": Method("Set a key's value; the first writer's organisation owns the key for good",
                  Record("kv.put arguments", {
                      "key": KEY,
                      "value": Plain("the value: any JSON/msgpack value but null",
                                     "Pu-erh, Menghai", max_bytes=MAX_VALUE_BYTES)}),
                  put, role="writer"),
    "delete": Method("Delete a key's value (its owner stays)",
                     Record("kv.delete arguments", {"key": KEY}), delete, role="writer"),
}
CONTRACT = Contract("kv", METHODS, version=1)
