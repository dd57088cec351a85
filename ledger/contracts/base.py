"""What a contract is and what it sees.

A contract is one version of a named contract's rules: a table of methods
and a query function (ledger.contracts keeps the versions and the heights
they activate at).  A method gets the call context (who, at which height
and block time, in which tx, and the directory of organisations), a state
view scoped to its contract, and the tx args; it returns a plain msgpack
result or raises ContractError.  Contracts see nothing else: no clock, no
randomness, no I/O, which is what makes execution deterministic.

Methods declared with `Method` carry their argument description
(ledger.contracts.schema) and the role they need; calling one checks the
role, then the arguments, then runs it.

State layout: a contract keeps its data in named tables; the state key of
(contract, table, key) is b"<contract>/<table>/<key>" (UTF-8).  Contract and
table names are fixed in code and never contain "/", so the first two "/"
delimit them and any user key (which may contain "/") maps to exactly one
state key.  Values are ledger.codec.pack of plain msgpack data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from .. import codec
from ..errors import ContractError
from ..receipt import ERR_PERMISSION
from .schema import Record

if TYPE_CHECKING:      # the consortium types refer to the contract registry, so not at run time
    from ..consortium import Account, ChainConfig, Organisation

DATA = "data"      # the table `query_state` reads unless a contract says otherwise

ReadState = Callable[[bytes], "bytes | None"]     # state key -> packed value
# (prefix, start_after or None, limit) -> [(state key, packed value)] in key order
ScanState = Callable[[bytes, "bytes | None", int], "list[tuple[bytes, bytes]]"]
Writes = dict[bytes, "bytes | None"]              # state key -> packed value, None = deleted
_MISSING = object()


_PREFIXES: dict[tuple[str, str], bytes] = {}     # (contract, table) -> b"contract/table/"
_MAX_PREFIXES = 1024                              # names come from code; a cap all the same


def state_key(contract: str, table: str, key: str) -> bytes:
    prefix = _PREFIXES.get((contract, table))
    if prefix is None:
        prefix = f"{contract}/{table}/".encode()
        if len(_PREFIXES) < _MAX_PREFIXES:
            _PREFIXES[(contract, table)] = prefix
    # surrogatepass: a query key from outside (URL, JSON) may hold a lone
    # surrogate; it then names a key no tx can write (txs carry valid UTF-8)
    # instead of raising.
    return prefix + key.encode("utf-8", "surrogatepass")


class Directory(Protocol):
    """The consortium's organisations as execution sees them (the ChainConfig in force)."""

    def organisation(self, name: str) -> "Organisation | None": ...

    def org_has_role(self, org: str, role: str) -> bool:
        """True if some account of organisation `org` has `role`."""


@dataclass(frozen=True, slots=True)
class CallContext:
    account: "Account"      # the sender, from the chain's configuration
    height: int             # of the block being executed
    tx_id: bytes
    time_ms: int            # the block's timestamp (header.timestamp_ms), never a clock
    # The consortium configuration in force for this tx (after the block's
    # earlier txs): contracts read organisations through `directory`; only the
    # gov contract changes it.
    config: "ChainConfig"

    @property
    def org(self) -> str:
        return self.account.org

    @property
    def directory(self) -> Directory:
        return self.config


class StateReader:
    """Read-only view of one contract's tables (queries)."""

    __slots__ = ("_contract", "_read")

    def __init__(self, contract: str, read: ReadState) -> None:
        self._contract = contract
        self._read = read

    def get(self, key: str, table: str = DATA) -> Any | None:
        raw = self._read(state_key(self._contract, table, key))
        return None if raw is None else codec.unpack(raw)


@dataclass(frozen=True, slots=True)
class CommittedState:
    """Committed state at one height, for queries (never for execution): point
    reads, ordered scans, and the directory of organisations."""
    get: ReadState
    scan: ScanState
    height: int
    directory: Directory


class QueryReader(StateReader):
    """A StateReader over committed state that can also page through a table."""

    __slots__ = ("_scan",)

    def __init__(self, contract: str, committed: CommittedState) -> None:
        super().__init__(contract, committed.get)
        self._scan = committed.scan

    def scan(self, table: str, prefix: str, after: str | None, limit: int) -> list[tuple[str, Any]]:
        """Entries of `table` whose key starts with `prefix`, in key order, after
        the key `prefix + after`: [(key without the prefix, value)]."""
        base = state_key(self._contract, table, prefix)
        start = None if after is None else base + after.encode("utf-8", "surrogatepass")
        skip = len(base)
        return [(key[skip:].decode("utf-8", "surrogatepass"), codec.unpack(raw))
                for key, raw in self._scan(base, start, limit)]


class ContractState(StateReader):
    """Read-write view for one contract call.  Writes go to `writes` (the
    call's own write set, state key -> packed value or None for a delete),
    which the engine keeps or throws away as a whole."""

    __slots__ = ("_writes", "_pack")

    def __init__(self, contract: str, read: ReadState, writes: Writes,
                 pack: Callable[[Any], bytes] = codec.pack) -> None:
        """`pack` may be a reusable packer (codec.packer()) of the one executing thread."""
        super().__init__(contract, read)
        self._writes = writes
        self._pack = pack

    def get(self, key: str, table: str = DATA) -> Any | None:
        skey = state_key(self._contract, table, key)
        raw = self._writes.get(skey, _MISSING)
        if raw is _MISSING:
            raw = self._read(skey)
        return None if raw is None else codec.unpack(raw)

    def put(self, key: str, value: Any, table: str = DATA) -> None:
        self._writes[state_key(self._contract, table, key)] = self._pack(value)

    def delete(self, key: str, table: str = DATA) -> None:
        self._writes[state_key(self._contract, table, key)] = None


def require_role(ctx: CallContext, role: str) -> None:
    if role not in ctx.account.roles:
        raise ContractError(ERR_PERMISSION, f"account {ctx.account.name} lacks role {role!r}")


@dataclass(frozen=True, slots=True)
class Method:
    """A contract method with its one description: what it does, who may call
    it (`role`, None: any account) and its arguments."""
    summary: str
    args: Record
    run: Callable[[CallContext, "ContractState", dict], Any]
    role: str | None = None

    def __call__(self, ctx: CallContext, state: "ContractState", args: Any) -> Any:
        if self.role is not None:
            require_role(ctx, self.role)
        self.args.check(args, "args")
        return self.run(ctx, state, args)


MethodFn = Callable[[CallContext, ContractState, Any], Any]


def default_query(state: StateReader, key: str) -> Any | None:
    return state.get(key)


@dataclass(frozen=True, slots=True)
class Contract:
    """One version of a contract's rules.  `query` answers GET /state for the
    contract's name; the newest version's query must read the records of every
    earlier version too (they stay in state after an upgrade)."""
    name: str
    methods: Mapping[str, MethodFn]
    query: Callable[[StateReader, str], Any | None] = default_query
    version: int = 1
