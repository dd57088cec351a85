"""The consortium configuration (ledger.consortium.ChainConfig) in the state,
under the gov contract's tables, as canonical msgpack arrays:

    gov/org/<name>            [display_name, status]
    gov/account/<name>        [org, public_key, [roles], valid_until_ms | nil, status]
    gov/node/<name>           [org, public_key, "host:port" (p2p), "host:port" (api), role]
    gov/retired/<key hex>     [kind, name, height]
    gov/policy/governance     [num, den, strict, proposal_lifetime_blocks]
    gov/epoch/<number:06d>    [start, [[node name, node key], ...], [ConsensusParams in field order]]
    gov/history/<height:012>  [[table, key, record | nil], ...]

The store writes every record of the genesis configuration when it is created
(`genesis_state`), so the state after any height holds the whole configuration
in force and a header's state root covers it (the validator-set history is
provable from genesis).  A block that changes it writes the changed records
and appends them to its `history` entry, which is what `config_at` replays to
answer "the configuration at height H".  The node rebuilds the configuration
from these tables at restart (`load`), without replaying blocks, and execution
derives the new configuration from a gov transaction's writes
(`apply_writes`), so the value in memory is always what the state says.
"""

from __future__ import annotations

from typing import Any, Mapping

from . import codec
from .codec import DecodeError
from .consortium import (ACCOUNT_KEY, ACTIVE, NODE_KEY, NODE_ROLES, REMOVED, REVOKED, Account,
                         ChainConfig, ConsensusParams, Epoch, GovernancePolicy, Node, Organisation,
                         RetiredKey, address_text, split_address)
from .contracts.base import ScanState, Writes, state_key
from .crypto import PUBKEY_LEN

CONTRACT = "gov"
ORG, ACCOUNT, NODE, RETIRED, POLICY, EPOCH, HISTORY = (
    "org", "account", "node", "retired", "policy", "epoch", "history")
CONFIG_TABLES = (ORG, ACCOUNT, NODE, RETIRED, POLICY, EPOCH)
GOVERNANCE_KEY = "governance"
_PARAM_FIELDS = tuple(ConsensusParams.__dataclass_fields__)
_CONFIG_PREFIXES = {f"{CONTRACT}/{t}/".encode(): t for t in CONFIG_TABLES}
_SCAN_PAGE = 1000        # storage.layout.MAX_SCAN

Records = dict[tuple[str, str], Any]      # (table, key) -> record


def epoch_key(number: int) -> str:
    return f"{number:06d}"


def history_key(height: int) -> str:
    return f"{height:012d}"


# -- ChainConfig <-> records -------------------------------------------------------------

def to_records(config: ChainConfig) -> Records:
    out: Records = {}
    for o in config.organisations.values():
        out[ORG, o.name] = [o.display_name, o.status]
    for a in config.accounts.values():
        out[ACCOUNT, a.name] = [a.org, a.public_key, list(a.roles), a.valid_until_ms, a.status]
    for n in config.nodes.values():
        out[NODE, n.name] = [n.org, n.public_key, address_text(n.p2p), address_text(n.api), n.role]
    for k in config.retired_keys.values():
        out[RETIRED, k.public_key.hex()] = [k.kind, k.name, k.height]
    g = config.governance
    out[POLICY, GOVERNANCE_KEY] = [g.num, g.den, g.strict, g.proposal_lifetime_blocks]
    for e in config.epochs:
        out[EPOCH, epoch_key(e.number)] = epoch_record(e)
    return out


def epoch_record(e: Epoch) -> list:
    return [e.start, [[name, key] for name, key in e.validators],
            [getattr(e.params, f) for f in _PARAM_FIELDS]]


def _status(value: Any, what: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise DecodeError(f"{what}: expected one of {', '.join(allowed)}")
    return value


def _parse_address(text: Any, what: str) -> tuple[str, int]:
    address = split_address(text)
    if address is None:
        raise DecodeError(f"{what}: expected HOST:PORT")
    return address


def _key(value: Any, what: str) -> bytes:
    return codec.expect_bytes(value, what, PUBKEY_LEN)


def _decode(table: str, key: str, rec: Any) -> Any:
    where = f"gov/{table}/{key}"
    if table == ORG:
        display, status = codec.expect_list(rec, 2, where)
        return Organisation(key, codec.expect_str(display, where), _status(status, where, (ACTIVE, REMOVED)))
    if table == ACCOUNT:
        org, public_key, roles, valid_until, status = codec.expect_list(rec, 5, where)
        if type(roles) is not list or any(type(r) is not str for r in roles):
            raise DecodeError(f"{where}: roles must be a list of strings")
        if valid_until is not None:
            codec.expect_uint(valid_until, where)
        return Account(key, codec.expect_str(org, where), _key(public_key, where), tuple(roles),
                       valid_until, _status(status, where, (ACTIVE, REVOKED)))
    if table == NODE:
        org, public_key, p2p, api, role = codec.expect_list(rec, 5, where)
        return Node(key, codec.expect_str(org, where), _key(public_key, where),
                    _parse_address(p2p, where), _parse_address(api, where), _status(role, where, NODE_ROLES))
    if table == RETIRED:
        kind, name, height = codec.expect_list(rec, 3, where)
        try:
            public_key = bytes.fromhex(key)
        except ValueError:
            raise DecodeError(f"{where}: key is not hex") from None
        return RetiredKey(_key(public_key, where), _status(kind, where, (ACCOUNT_KEY, NODE_KEY)),
                          codec.expect_str(name, where), codec.expect_uint(height, where))
    if table == POLICY:
        num, den, strict, lifetime = codec.expect_list(rec, 4, where)
        if type(strict) is not bool:
            raise DecodeError(f"{where}: strict must be a bool")
        return GovernancePolicy(codec.expect_uint(num, where), codec.expect_uint(den, where), strict,
                                codec.expect_uint(lifetime, where))
    if table == EPOCH:
        start, validators, params = codec.expect_list(rec, 3, where)
        if type(validators) is not list:
            raise DecodeError(f"{where}: validators must be a list")
        pairs = tuple((codec.expect_str(p[0], where), _key(p[1], where))
                      for p in (codec.expect_list(v, 2, where) for v in validators))
        values = codec.expect_list(params, len(_PARAM_FIELDS), where)
        return Epoch(int(key), codec.expect_uint(start, where), pairs,
                     ConsensusParams(*(codec.expect_uint(v, where) for v in values)))
    raise DecodeError(f"{where}: not a configuration table")


def decode_epoch(number: int, value: bytes) -> Epoch:
    """The epoch a `gov/epoch/<number>` state value holds (a proof file's
    verifier reads them from state proofs); DecodeError if it is not one."""
    return _decode(EPOCH, epoch_key(number), codec.unpack(value))


def from_records(chain_id: str, schedule: Any, records: Mapping[tuple[str, str], Any]) -> ChainConfig:
    """The configuration the records describe; DecodeError if they are not a
    complete, well-formed one (a damaged or foreign state)."""
    parts: dict[str, list] = {t: [] for t in CONFIG_TABLES}
    for (table, key), rec in records.items():
        parts[table].append(_decode(table, key, rec))
    if len(parts[POLICY]) != 1:
        raise DecodeError("gov/policy: expected exactly the governance policy")
    epochs = sorted(parts[EPOCH], key=lambda e: e.number)
    if not epochs or [e.number for e in epochs] != list(range(len(epochs))) or epochs[0].start != 0:
        raise DecodeError("gov/epoch: expected epochs 0, 1, ... with epoch 0 starting at 0")
    return ChainConfig.build(chain_id, parts[ORG], parts[ACCOUNT], parts[NODE], parts[RETIRED],
                             parts[POLICY][0], epochs, schedule)


def diff(before: ChainConfig, after: ChainConfig) -> list[tuple[str, str, Any]]:
    """The record writes that turn `before` into `after`: [(table, key, record or
    None for a delete)], in (table, key) order."""
    old, new = to_records(before), to_records(after)
    out = [(t, k, rec) for (t, k), rec in new.items() if old.get((t, k)) != rec]
    out += [(t, k, None) for (t, k) in old if (t, k) not in new]
    return sorted(out, key=lambda c: (c[0], c[1]))


def genesis_state(config: ChainConfig) -> Writes:
    """The state a store starts with: every record of the genesis configuration."""
    return {state_key(CONTRACT, table, key): codec.pack(rec)
            for (table, key), rec in sorted(to_records(config).items())}


def config_key(skey: bytes) -> tuple[str, str] | None:
    """(table, key) if state key `skey` is a configuration record's, else None."""
    if not skey.startswith(b"gov/"):
        return None
    for prefix, table in _CONFIG_PREFIXES.items():
        if skey.startswith(prefix):
            return table, skey[len(prefix):].decode()
    return None


def apply_writes(config: ChainConfig, writes: Writes) -> ChainConfig | None:
    """The configuration after `writes` (a gov call's write set) are applied to
    the state holding `config`; None if they touch no configuration record."""
    changed = {}
    for skey, value in writes.items():
        where = config_key(skey)
        if where is not None:
            changed[where] = None if value is None else codec.unpack(value)
    if not changed:
        return None
    records = to_records(config)
    _overlay(records, changed.items())
    return from_records(config.chain_id, config.contract_schedule, records)


def _overlay(records: Records, changes) -> None:
    for where, rec in changes:
        if rec is None:
            records.pop(where, None)
        else:
            records[where] = rec


# -- reading the state -----------------------------------------------------------------

def _scan_all(scan: ScanState, prefix: bytes, after: bytes | None = None):
    while True:
        page = scan(prefix, after, _SCAN_PAGE)
        yield from page
        if len(page) < _SCAN_PAGE:
            return
        after = page[-1][0]


def load(chain_id: str, schedule: Any, scan: ScanState) -> ChainConfig:
    """The configuration held by a state (the one in force after its height).
    DecodeError if the state holds none or a damaged one."""
    records: Records = {}
    for prefix, table in _CONFIG_PREFIXES.items():
        for skey, value in _scan_all(scan, prefix):
            records[table, skey[len(prefix):].decode()] = codec.unpack(value)
    if not records:
        raise DecodeError("the state holds no consortium configuration (gov/ tables)")
    return from_records(chain_id, schedule, records)


def history(scan: ScanState, up_to: int | None = None, after: int | None = None):
    """(height, [(table, key, record | None), ...]) of every block that changed
    the configuration, oldest first, after height `after` up to height `up_to`."""
    prefix = state_key(CONTRACT, HISTORY, "")
    start = None if after is None else prefix + history_key(after).encode()
    for skey, value in _scan_all(scan, prefix, start):
        height = int(skey[len(prefix):])
        if up_to is not None and height > up_to:
            return
        changes = codec.unpack(value)
        yield height, [(t, k, rec) for t, k, rec in changes]


def config_at(genesis_config: ChainConfig, scan: ScanState, height: int) -> ChainConfig:
    """The configuration in force after block `height`: genesis plus every
    recorded change up to it."""
    records = to_records(genesis_config)
    for _, changes in history(scan, height):
        _overlay(records, (((t, k), rec) for t, k, rec in changes))
    return from_records(genesis_config.chain_id, genesis_config.contract_schedule, records)
