"""Genesis: the consortium's founding document (JSON).

Loading validates every field and names the exact place of a problem, e.g.
`genesis.validators[2].public_key: expected 64 hex digits`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .certificate import MAX_VALIDATORS, quorum_size
from .codec import MAX_FRAME
from .contracts import VERSIONS, Schedule, build_schedule
from .crypto import hash256
from .errors import GenesisError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The largest PBFT window (high - low watermark): a VIEW-CHANGE carries up to this many
# prepared certificates, so message decoders bound their sizes by it.
MAX_WINDOW = 1024
# A block's encoded proposal never exceeds this, and never exceeds a window's share of
# one frame (ConsensusParams.max_proposal_bytes).
MAX_PROPOSAL_BYTES = 2 * 1024 * 1024
# What a NEW-VIEW or VIEW-CHANGE needs beside its payloads (votes, proofs, envelope).
CONSENSUS_MESSAGE_RESERVE = 1024 * 1024
# writer: kv (and fiscal v1); issuer: fiscal receipts; reimburser: fiscal claims;
# producer: commissions trace lots; lab: trace inspections; bank: finances
# receivables; auditor and admin: no contract method needs them yet.
ROLES = ("writer", "admin", "auditor", "issuer", "reimburser", "producer", "lab", "bank")
MAX_ACTIVATION_HEIGHT = 10**12


@dataclass(frozen=True, slots=True)
class Organisation:
    name: str
    display_name: str


@dataclass(frozen=True, slots=True)
class Validator:
    name: str
    org: str
    public_key: bytes
    p2p: tuple[str, int]          # host, port
    api: tuple[str, int]


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    org: str
    public_key: bytes
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    max_block_txs: int = 2000
    block_interval_ms: int = 100          # how long the primary waits to fill a block
    empty_blocks_interval_ms: int = 0     # 0: no empty blocks; else propose one this often
    checkpoint_interval: int = 16
    window: int = 64                      # PBFT high watermark - low watermark
    max_in_flight: int = 4                # blocks the primary may have proposed and not committed
    view_change_timeout_ms: int = 2000
    max_view_change_timeout_ms: int = 30000
    tx_validity_window: int = 1000        # valid_until <= height + this

    @property
    def max_proposal_bytes(self) -> int:
        """The largest encoded proposal a primary may send and a backup accepts.  A
        VIEW-CHANGE carries the payloads of up to `window` prepared blocks and a
        NEW-VIEW re-proposes up to `window` blocks, each in one transport frame
        (ledger.codec.MAX_FRAME): were blocks larger, a view change under load could
        produce a message no peer can receive, and the chain would stop."""
        return min(MAX_PROPOSAL_BYTES, (MAX_FRAME - CONSENSUS_MESSAGE_RESERVE) // self.window)


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    organisations: tuple[Organisation, ...]
    validators: tuple[Validator, ...]
    accounts: tuple[Account, ...]
    consensus: ConsensusParams
    # contract name -> ((first height, version), ...) ascending; only the contracts
    # whose schedule differs from ledger.contracts.DEFAULT_SCHEDULE
    contract_versions: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)
    _accounts: dict = field(default_factory=dict, compare=False, repr=False)
    _orgs: dict = field(default_factory=dict, compare=False, repr=False)
    _org_roles: dict = field(default_factory=dict, compare=False, repr=False)
    _schedule: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._accounts.update({a.public_key: a for a in self.accounts})
        self._orgs.update({o.name: o for o in self.organisations})
        for a in self.accounts:
            self._org_roles.setdefault(a.org, set()).update(a.roles)
        self._schedule.update(build_schedule(dict(self.contract_versions)))

    @property
    def contract_schedule(self) -> Schedule:
        """Each contract's (first height, rules) ascending (ledger.contracts.contract_at)."""
        return self._schedule

    @property
    def hash(self) -> bytes:
        return hash256(b"ynchain/genesis/v1\x00" + self.raw)

    @property
    def validator_keys(self) -> tuple[bytes, ...]:
        return tuple(v.public_key for v in self.validators)

    @property
    def f(self) -> int:
        return (len(self.validators) - 1) // 3

    @property
    def quorum(self) -> int:
        return quorum_size(len(self.validators))

    def validator_index(self, public_key: bytes) -> int | None:
        for i, v in enumerate(self.validators):
            if v.public_key == public_key:
                return i
        return None

    def validator_by_name(self, name: str) -> Validator | None:
        return next((v for v in self.validators if v.name == name), None)

    def account_by_key(self, public_key: bytes) -> Account | None:
        return self._accounts.get(public_key)

    # -- the directory contracts see (ledger.contracts.base.Directory) ----------------
    def organisation(self, name: str) -> Organisation | None:
        return self._orgs.get(name)

    def org_has_role(self, org: str, role: str) -> bool:
        return role in self._org_roles.get(org, ())

    def to_json(self) -> dict:
        return genesis_to_json(self)


# -- loading -----------------------------------------------------------------------

def _fail(where: str, what: str) -> GenesisError:
    return GenesisError(f"genesis.{where}: {what}")


def _obj(value: Any, where: str, required: set[str], optional: set[str] = frozenset()) -> dict:
    if not isinstance(value, dict):
        raise _fail(where, "expected an object")
    missing = sorted(required - value.keys())
    if missing:
        raise _fail(where, f"missing field(s): {', '.join(missing)}")
    unknown = sorted(value.keys() - required - optional)
    if unknown:
        raise _fail(where, f"unknown field(s): {', '.join(unknown)}")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise _fail(where, "expected a name of 1-64 letters, digits, '_', '.', '-'")
    return value


def _key(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise _fail(where, "expected 64 hex digits (an ed25519 public key)")
    return bytes.fromhex(value)


def parse_address(value: Any, where: str = "address") -> tuple[str, int]:
    if not isinstance(value, str) or value.count(":") != 1:
        raise _fail(where, "expected HOST:PORT")
    host, _, port = value.partition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _fail(where, "expected HOST:PORT with a port in 1-65535")
    return host, int(port)


def _posint(value: Any, where: str, minimum: int = 1, maximum: int = 10**9) -> int:
    if type(value) is not int or not minimum <= value <= maximum:
        raise _fail(where, f"expected an integer in {minimum}..{maximum}")
    return value


def _unique(items, key, where: str, what: str) -> None:
    seen: set = set()
    for i, item in enumerate(items):
        k = key(item)
        if k in seen:
            raise _fail(f"{where}[{i}]", f"duplicate {what}")
        seen.add(k)


def parse_genesis(data: Any, raw: bytes = b"") -> Genesis:
    top = data
    if not isinstance(top, dict):
        raise GenesisError("genesis: expected a JSON object")
    missing = sorted({"chain_id", "organisations", "validators", "accounts"} - top.keys())
    if missing:
        raise GenesisError(f"genesis: missing field(s): {', '.join(missing)}")
    unknown = sorted(top.keys() - {"chain_id", "organisations", "validators", "accounts", "consensus",
                                   "contract_versions"})
    if unknown:
        raise GenesisError(f"genesis: unknown field(s): {', '.join(unknown)}")
    chain_id = _name(top["chain_id"], "chain_id")

    orgs_raw = top["organisations"]
    if not isinstance(orgs_raw, list) or not orgs_raw:
        raise _fail("organisations", "expected a non-empty list")
    orgs = []
    for i, o in enumerate(orgs_raw):
        w = f"organisations[{i}]"
        _obj(o, w, {"name"}, {"display_name"})
        name = _name(o["name"], f"{w}.name")
        display = o.get("display_name", name)
        if not isinstance(display, str) or len(display) > 200:
            raise _fail(f"{w}.display_name", "expected a string of at most 200 characters")
        orgs.append(Organisation(name, display))
    _unique(orgs, lambda o: o.name, "organisations", "organisation name")
    org_names = {o.name for o in orgs}

    vals_raw = top["validators"]
    if not isinstance(vals_raw, list) or not 1 <= len(vals_raw) <= MAX_VALIDATORS:
        raise _fail("validators", f"expected a list of 1..{MAX_VALIDATORS} validators")
    validators = []
    for i, v in enumerate(vals_raw):
        w = f"validators[{i}]"
        _obj(v, w, {"name", "org", "public_key", "p2p", "api"})
        org = _name(v["org"], f"{w}.org")
        if org not in org_names:
            raise _fail(f"{w}.org", f"unknown organisation {org!r}")
        validators.append(Validator(_name(v["name"], f"{w}.name"), org,
                                    _key(v["public_key"], f"{w}.public_key"),
                                    parse_address(v["p2p"], f"{w}.p2p"),
                                    parse_address(v["api"], f"{w}.api")))
    _unique(validators, lambda v: v.name, "validators", "validator name")
    _unique(validators, lambda v: v.public_key, "validators", "validator public key")
    _unique(validators, lambda v: v.p2p, "validators", "p2p address")

    accts_raw = top["accounts"]
    if not isinstance(accts_raw, list):
        raise _fail("accounts", "expected a list")
    accounts = []
    for i, a in enumerate(accts_raw):
        w = f"accounts[{i}]"
        _obj(a, w, {"name", "org", "public_key"}, {"roles"})
        org = _name(a["org"], f"{w}.org")
        if org not in org_names:
            raise _fail(f"{w}.org", f"unknown organisation {org!r}")
        roles = a.get("roles", ["writer"])
        if not isinstance(roles, list) or any(r not in ROLES for r in roles):
            raise _fail(f"{w}.roles", f"expected a list of roles from {', '.join(ROLES)}")
        accounts.append(Account(_name(a["name"], f"{w}.name"), org,
                                _key(a["public_key"], f"{w}.public_key"), tuple(roles)))
    _unique(accounts, lambda a: a.name, "accounts", "account name")
    _unique(accounts, lambda a: a.public_key, "accounts", "account public key")

    c = top.get("consensus", {})
    defaults = ConsensusParams()
    fields = ConsensusParams.__dataclass_fields__
    if not isinstance(c, dict):
        raise _fail("consensus", "expected an object")
    unknown = sorted(c.keys() - fields.keys())
    if unknown:
        raise _fail("consensus", f"unknown field(s): {', '.join(unknown)}")
    values = {}
    for name in fields:
        minimum = 0 if name == "empty_blocks_interval_ms" else 1
        values[name] = _posint(c.get(name, getattr(defaults, name)), f"consensus.{name}", minimum)
    params = ConsensusParams(**values)
    if params.window < 2 * params.checkpoint_interval:
        raise _fail("consensus.window", "must be at least 2 * checkpoint_interval")
    if params.window > MAX_WINDOW:
        raise _fail("consensus.window", f"must be at most {MAX_WINDOW}")
    if params.max_in_flight > params.window:
        raise _fail("consensus.max_in_flight", "must be at most window")
    if params.max_view_change_timeout_ms < params.view_change_timeout_ms:
        raise _fail("consensus.max_view_change_timeout_ms", "must be >= view_change_timeout_ms")
    versions = _contract_versions(top.get("contract_versions", {}))
    return Genesis(chain_id, tuple(orgs), tuple(validators), tuple(accounts), params, versions, raw)


def _contract_versions(value: Any) -> tuple[tuple[str, tuple[tuple[int, int], ...]], ...]:
    """{"fiscal": {"1": 1, "2": 5000}}: contract -> version -> first height."""
    where = "contract_versions"
    if not isinstance(value, dict):
        raise _fail(where, 'expected an object like {"fiscal": {"1": 1, "2": 5000}} '
                           "(contract -> version -> first height)")
    out = []
    for name in sorted(value):
        if name not in VERSIONS:
            raise _fail(where, f"unknown contract {name!r} (contracts: {', '.join(sorted(VERSIONS))})")
        steps_raw = value[name]
        w = f"{where}.{name}"
        if not isinstance(steps_raw, dict) or not steps_raw:
            raise _fail(w, "expected a non-empty object of version -> first height")
        known = VERSIONS[name]
        steps = []
        for version_text, height in steps_raw.items():
            if not (version_text.isascii() and version_text.isdigit()) or int(version_text) not in known:
                raise _fail(w, f"unknown version {version_text!r} (versions: "
                               f"{', '.join(map(str, sorted(known)))})")
            steps.append((_posint(height, f"{w}.{version_text}", 1, MAX_ACTIVATION_HEIGHT),
                          int(version_text)))
        steps.sort()
        for (h1, v1), (h2, v2) in zip(steps, steps[1:]):
            if h1 == h2 or v2 < v1:
                raise _fail(w, f"versions must activate one after another in increasing order; "
                               f"version {v2} at height {h2} follows version {v1} at height {h1}")
        out.append((name, tuple(steps)))
    return tuple(out)


def load_genesis(path: str | Path) -> Genesis:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GenesisError(f"{path}: cannot read genesis: {exc.strerror}") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GenesisError(f"{path}: not valid JSON: {exc}") from None
    try:
        return parse_genesis(data, raw)
    except GenesisError as exc:
        raise GenesisError(f"{path}: {exc}") from None


def genesis_to_json(g: Genesis) -> dict:
    return {
        "chain_id": g.chain_id,
        "organisations": [{"name": o.name, "display_name": o.display_name} for o in g.organisations],
        "validators": [{"name": v.name, "org": v.org, "public_key": v.public_key.hex(),
                        "p2p": f"{v.p2p[0]}:{v.p2p[1]}", "api": f"{v.api[0]}:{v.api[1]}"}
                       for v in g.validators],
        "accounts": [{"name": a.name, "org": a.org, "public_key": a.public_key.hex(),
                      "roles": list(a.roles)} for a in g.accounts],
        "consensus": {name: getattr(g.consensus, name) for name in ConsensusParams.__dataclass_fields__},
        **({"contract_versions": {name: {str(v): h for h, v in steps} for name, steps in g.contract_versions}}
           if g.contract_versions else {}),
    }
