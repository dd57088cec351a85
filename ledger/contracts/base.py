"""What a contract is and what it sees.

A contract is a name, a table of methods and a query function.  A method gets
the call context (who, at which height, in which tx), a state view scoped to
its contract, and the tx args; it returns a plain msgpack result or raises
ContractError.  Contracts see nothing else: no clock, no randomness, no I/O,
which is what makes execution deterministic.

State layout: a contract keeps its data in named tables; the state key of
(contract, table, key) is b"<contract>/<table>/<key>" (UTF-8).  Contract and
table names are fixed in code and never contain "/", so the first two "/"
delimit them and any user key (which may contain "/") maps to exactly one
state key.  Values are ledger.codec.pack of plain msgpack data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .. import codec
from ..errors import ContractError
from ..genesis import Account
from ..receipt import ERR_BAD_ARGS, ERR_PERMISSION

DATA = "data"      # the table `query_state` reads unless a contract says otherwise

ReadState = Callable[[bytes], "bytes | None"]     # state key -> packed value
Writes = dict[bytes, "bytes | None"]              # state key -> packed value, None = deleted
_MISSING = object()


def state_key(contract: str, table: str, key: str) -> bytes:
    # surrogatepass: a query key from outside (URL, JSON) may hold a lone
    # surrogate; it then names a key no tx can write (txs carry valid UTF-8)
    # instead of raising.
    return f"{contract}/{table}/{key}".encode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class CallContext:
    account: Account        # the sender, from genesis
    height: int             # of the block being executed
    tx_id: bytes

    @property
    def org(self) -> str:
        return self.account.org


class StateReader:
    """Read-only view of one contract's tables (queries)."""

    __slots__ = ("_contract", "_read")

    def __init__(self, contract: str, read: ReadState) -> None:
        self._contract = contract
        self._read = read

    def get(self, key: str, table: str = DATA) -> Any | None:
        raw = self._read(state_key(self._contract, table, key))
        return None if raw is None else codec.unpack(raw)


class ContractState(StateReader):
    """Read-write view for one contract call.  Writes go to `writes` (the
    call's own write set, state key -> packed value or None for a delete),
    which the engine keeps or throws away as a whole."""

    __slots__ = ("_writes",)

    def __init__(self, contract: str, read: ReadState, writes: Writes) -> None:
        super().__init__(contract, read)
        self._writes = writes

    def get(self, key: str, table: str = DATA) -> Any | None:
        raw = self._writes.get(state_key(self._contract, table, key), _MISSING)
        if raw is _MISSING:
            return super().get(key, table)
        return None if raw is None else codec.unpack(raw)

    def put(self, key: str, value: Any, table: str = DATA) -> None:
        self._writes[state_key(self._contract, table, key)] = codec.pack(value)

    def delete(self, key: str, table: str = DATA) -> None:
        self._writes[state_key(self._contract, table, key)] = None


Method = Callable[[CallContext, ContractState, Any], Any]


def default_query(state: StateReader, key: str) -> Any | None:
    return state.get(key)


@dataclass(frozen=True, slots=True)
class Contract:
    name: str
    methods: Mapping[str, Method]
    query: Callable[[StateReader, str], Any | None] = default_query


# -- helpers for methods ------------------------------------------------------------

def require_role(ctx: CallContext, role: str) -> None:
    if role not in ctx.account.roles:
        raise ContractError(ERR_PERMISSION, f"account {ctx.account.name} lacks role {role!r}")


def expect_args(args: Any, *names: str) -> list[Any]:
    """The values of exactly these fields of a map, in order."""
    if type(args) is not dict:
        raise ContractError(ERR_BAD_ARGS, f"args: expected a map with {', '.join(names)}")
    missing = [n for n in names if n not in args]
    if missing:
        raise ContractError(ERR_BAD_ARGS, f"args: missing {', '.join(missing)}")
    if len(args) != len(names):
        unknown = sorted(repr(k) for k in args if k not in names)
        raise ContractError(ERR_BAD_ARGS, f"args: unknown field(s) {', '.join(unknown)}")
    return [args[n] for n in names]


def arg_str(value: Any, name: str, max_len: int) -> str:
    if type(value) is not str or not 1 <= len(value) <= max_len:
        raise ContractError(ERR_BAD_ARGS, f"args.{name}: expected a string of 1..{max_len} characters")
    return value


def arg_positive_int(value: Any, name: str, maximum: int) -> int:
    if type(value) is not int or not 1 <= value <= maximum:
        raise ContractError(ERR_BAD_ARGS, f"args.{name}: expected an integer in 1..{maximum}")
    return value
