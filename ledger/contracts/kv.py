"""`kv`: a shared key-value store where each key belongs to an organisation.

The organisation of a key's first writer owns it for good (the owner record
outlives a delete), so a department's key can never be taken over by another
department, even after the owner deletes its value.
"""

from __future__ import annotations

from typing import Any

from .. import codec
from ..errors import ContractError, DecodeError
from ..receipt import ERR_BAD_ARGS, ERR_NOT_FOUND, ERR_PERMISSION
from .base import CallContext, Contract, ContractState, arg_str, expect_args, require_role

MAX_KEY_LEN = 256
MAX_VALUE_BYTES = 4096
OWNER = "owner"       # table: key -> owning organisation


def _check_owner(ctx: CallContext, state: ContractState, key: str) -> str | None:
    owner = state.get(key, OWNER)
    if owner is not None and owner != ctx.org:
        raise ContractError(ERR_PERMISSION, f"key owned by {owner}")
    return owner


def put(ctx: CallContext, state: ContractState, args: Any) -> None:
    require_role(ctx, "writer")
    key, value = expect_args(args, "key", "value")
    arg_str(key, "key", MAX_KEY_LEN)
    if value is None:   # nil is how a query says "absent"
        raise ContractError(ERR_BAD_ARGS, "args.value: must not be nil (use delete)")
    try:
        codec.check_plain(value, "args.value")
    except DecodeError as exc:
        raise ContractError(ERR_BAD_ARGS, str(exc)) from None
    size = len(codec.pack(value))
    if size > MAX_VALUE_BYTES:
        raise ContractError(ERR_BAD_ARGS, f"args.value: {size} bytes packed, at most {MAX_VALUE_BYTES}")
    if _check_owner(ctx, state, key) is None:
        state.put(key, ctx.org, OWNER)
    state.put(key, value)


def delete(ctx: CallContext, state: ContractState, args: Any) -> None:
    require_role(ctx, "writer")
    (key,) = expect_args(args, "key")
    arg_str(key, "key", MAX_KEY_LEN)
    _check_owner(ctx, state, key)
    if state.get(key) is None:
        raise ContractError(ERR_NOT_FOUND, f"no key {key!r}")
    state.delete(key)


CONTRACT = Contract("kv", {"put": put, "delete": delete})
