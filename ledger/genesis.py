"""Genesis: the consortium's founding document (JSON).

Loading validates every field and names the exact place of a problem, e.g.
`genesis.nodes[2].public_key: expected 64 hex digits`.  The document seeds the
chain's configuration (`Genesis.config`, a ledger.consortium.ChainConfig):

    chain_id, organisations [{name, display_name}],
    nodes [{name, org, public_key, p2p, api, role: validator | observer}]
        (the older `validators` list is read as nodes with role validator),
    accounts [{name, org, public_key, roles, valid_until (ISO-8601 UTC, optional)}],
    consensus {ConsensusParams fields}, governance {threshold: {num, den, strict},
    proposal_lifetime_blocks}, contract_versions {contract: {version: first height}}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .certificate import MAX_VALIDATORS, quorum_size
from .consortium import (MAX_DISPLAY_NAME, MAX_TIME_MS, MAX_WINDOW, NAME_RE, NODE_ROLES, ROLES,
                         VALIDATOR, Account, ChainConfig, ConsensusParams, Epoch, GovernancePolicy,
                         Node, Organisation, consensus_problem, format_utc, parse_utc,
                         policy_problem, split_address)
from .contracts import VERSIONS, Schedule, build_schedule
from .crypto import hash256
from .errors import GenesisError

MAX_ACTIVATION_HEIGHT = 10**12

__all__ = ["MAX_WINDOW", "NAME_RE", "ROLES", "Account", "ConsensusParams", "Genesis",
           "GovernancePolicy", "Node", "Organisation", "genesis_to_json", "load_genesis",
           "parse_address", "parse_genesis"]


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    organisations: tuple[Organisation, ...]
    nodes: tuple[Node, ...]                # in document order
    accounts: tuple[Account, ...]
    consensus: ConsensusParams
    governance: GovernancePolicy = GovernancePolicy()
    # contract name -> ((first height, version), ...) ascending; only the contracts
    # whose schedule differs from ledger.contracts.DEFAULT_SCHEDULE
    contract_versions: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)
    config: ChainConfig = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        validators = tuple((n.name, n.public_key) for n in self.nodes if n.role == VALIDATOR)
        object.__setattr__(self, "config", ChainConfig.build(
            self.chain_id, self.organisations, self.accounts, self.nodes, (), self.governance,
            (Epoch(0, 0, validators, self.consensus),), build_schedule(dict(self.contract_versions))))

    @property
    def contract_schedule(self) -> Schedule:
        """Each contract's (first height, rules) ascending (ledger.contracts.contract_at)."""
        return self.config.contract_schedule

    @property
    def hash(self) -> bytes:
        return hash256(b"ynchain/genesis/v1\x00" + self.raw)

    @property
    def validators(self) -> tuple[Node, ...]:
        """The genesis validators in document order: epoch 0's set (its indexes)."""
        return tuple(n for n in self.nodes if n.role == VALIDATOR)

    @property
    def validator_keys(self) -> tuple[bytes, ...]:
        return self.config.epochs[0].keys

    @property
    def f(self) -> int:
        return (len(self.validator_keys) - 1) // 3

    @property
    def quorum(self) -> int:
        return quorum_size(len(self.validator_keys))

    def validator_index(self, public_key: bytes) -> int | None:
        return self.config.epochs[0].index_of(public_key)

    def validator_by_name(self, name: str) -> Node | None:
        return next((v for v in self.validators if v.name == name), None)

    def node_by_name(self, name: str) -> Node | None:
        return self.config.nodes.get(name)

    def account_by_key(self, public_key: bytes) -> Account | None:
        return self.config.account_by_key(public_key)

    # -- the directory contracts see (ledger.contracts.base.Directory) ----------------
    def organisation(self, name: str) -> Organisation | None:
        return self.config.organisation(name)

    def org_has_role(self, org: str, role: str) -> bool:
        return self.config.org_has_role(org, role)

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


def parse_chain_id(value: Any) -> str:
    return _name(value, "chain_id")


def _key(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise _fail(where, "expected 64 hex digits (an ed25519 public key)")
    return bytes.fromhex(value)


def parse_address(value: Any, where: str = "address") -> tuple[str, int]:
    address = split_address(value)
    if address is None:
        shaped = isinstance(value, str) and value.count(":") == 1
        raise _fail(where, "expected HOST:PORT with a port in 1-65535" if shaped else "expected HOST:PORT")
    return address


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


MAX_ITEMS = 100_000


def _list(value: Any, where: str, minimum: int = 0, maximum: int = MAX_ITEMS, what: str = "items") -> list:
    if not isinstance(value, list) or not minimum <= len(value) <= maximum:
        if minimum == 0:
            raise _fail(where, f"expected a list of at most {maximum} {what}")
        if maximum == MAX_ITEMS:
            raise _fail(where, "expected a non-empty list")
        raise _fail(where, f"expected a list of {minimum}..{maximum} {what}")
    return value


def _org_ref(value: Any, where: str, org_names: set[str] | frozenset[str]) -> str:
    org = _name(value, where)
    if org not in org_names:
        raise _fail(where, f"unknown organisation {org!r}")
    return org


def parse_organisation(o: Any, where: str) -> Organisation:
    _obj(o, where, {"name"}, {"display_name"})
    name = _name(o["name"], f"{where}.name")
    display = o.get("display_name", name)
    if not isinstance(display, str) or not display or len(display) > MAX_DISPLAY_NAME:
        raise _fail(f"{where}.display_name", f"expected a string of 1..{MAX_DISPLAY_NAME} characters")
    return Organisation(name, display)


def parse_node(v: Any, where: str, org_names: set[str] | frozenset[str], *, legacy: bool = False) -> Node:
    """One entry of `nodes` (or, `legacy`, of the older `validators`: no role, a validator)."""
    _obj(v, where, {"name", "org", "public_key", "p2p", "api"}, set() if legacy else {"role"})
    role = v.get("role", VALIDATOR)
    if role not in NODE_ROLES:
        raise _fail(f"{where}.role", f"expected {' or '.join(NODE_ROLES)}")
    return Node(_name(v["name"], f"{where}.name"), _org_ref(v["org"], f"{where}.org", org_names),
                _key(v["public_key"], f"{where}.public_key"), parse_address(v["p2p"], f"{where}.p2p"),
                parse_address(v["api"], f"{where}.api"), role)


def parse_valid_until(value: Any, where: str) -> int:
    ms = parse_utc(value) if isinstance(value, str) else None
    if ms is None or ms > MAX_TIME_MS:
        raise _fail(where, "expected an ISO-8601 UTC time like 2027-06-30T00:00:00Z (or a date 2027-06-30)")
    return ms


def parse_account(a: Any, where: str, org_names: set[str] | frozenset[str]) -> Account:
    _obj(a, where, {"name", "org", "public_key"}, {"roles", "valid_until"})
    roles = a.get("roles", ["writer"])
    if not isinstance(roles, list) or any(r not in ROLES for r in roles) or len(set(roles)) != len(roles):
        raise _fail(f"{where}.roles", f"expected a list of roles from {', '.join(ROLES)}, each at most once")
    valid_until = a.get("valid_until")
    return Account(_name(a["name"], f"{where}.name"), _org_ref(a["org"], f"{where}.org", org_names),
                   _key(a["public_key"], f"{where}.public_key"), tuple(roles),
                   None if valid_until is None else parse_valid_until(valid_until, f"{where}.valid_until"))


def parse_consensus(c: Any) -> ConsensusParams:
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
    problem = consensus_problem(params)
    if problem:
        raise _fail(f"consensus.{problem[0]}", problem[1])
    return params


def parse_governance(g: Any) -> GovernancePolicy:
    _obj(g, "governance", set(), {"threshold", "proposal_lifetime_blocks"})
    defaults = GovernancePolicy()
    threshold = g.get("threshold", {"num": defaults.num, "den": defaults.den, "strict": defaults.strict})
    _obj(threshold, "governance.threshold", {"num", "den"}, {"strict"})
    strict = threshold.get("strict", True)
    if type(strict) is not bool:
        raise _fail("governance.threshold.strict", "expected true or false")
    policy = GovernancePolicy(threshold["num"], threshold["den"], strict,
                              g.get("proposal_lifetime_blocks", defaults.proposal_lifetime_blocks))
    problem = policy_problem(policy)
    if problem:
        raise _fail(f"governance.{problem[0]}", problem[1])
    return policy


TOP_REQUIRED = {"chain_id", "organisations", "accounts"}
TOP_OPTIONAL = {"nodes", "validators", "consensus", "governance", "contract_versions"}


def parse_genesis(data: Any, raw: bytes = b"") -> Genesis:
    top = data
    if not isinstance(top, dict):
        raise GenesisError("genesis: expected a JSON object")
    missing = sorted(TOP_REQUIRED - top.keys())
    if not {"nodes", "validators"} & top.keys():
        missing.append("nodes")
    if missing:
        raise GenesisError(f"genesis: missing field(s): {', '.join(missing)}")
    unknown = sorted(top.keys() - TOP_REQUIRED - TOP_OPTIONAL)
    if unknown:
        raise GenesisError(f"genesis: unknown field(s): {', '.join(unknown)}")
    if {"nodes", "validators"} <= top.keys():
        raise GenesisError("genesis: give nodes (with roles) or the older validators list, not both")
    chain_id = parse_chain_id(top["chain_id"])

    orgs = [parse_organisation(o, f"organisations[{i}]")
            for i, o in enumerate(_list(top["organisations"], "organisations", 1))]
    _unique(orgs, lambda o: o.name, "organisations", "organisation name")
    org_names = frozenset(o.name for o in orgs)

    legacy = "validators" in top
    kind = "validators" if legacy else "nodes"
    nodes = [parse_node(v, f"{kind}[{i}]", org_names, legacy=legacy)
             for i, v in enumerate(_list(top[kind], kind, 1, MAX_VALIDATORS if legacy else MAX_ITEMS - 1,
                                         kind))]
    _unique(nodes, lambda v: v.name, kind, "node name" if not legacy else "validator name")
    _unique(nodes, lambda v: v.public_key, kind, "node public key" if not legacy else "validator public key")
    _unique(nodes, lambda v: v.p2p, kind, "p2p address")
    validators = sum(1 for n in nodes if n.role == VALIDATOR)
    if not 1 <= validators <= MAX_VALIDATORS:
        raise _fail(kind, f"expected 1..{MAX_VALIDATORS} nodes with role validator, got {validators}")

    accounts = [parse_account(a, f"accounts[{i}]", org_names)
                for i, a in enumerate(_list(top["accounts"], "accounts"))]
    _unique(accounts, lambda a: a.name, "accounts", "account name")
    _unique(accounts, lambda a: a.public_key, "accounts", "account public key")
    node_keys = {n.public_key: n.name for n in nodes}
    for i, a in enumerate(accounts):
        if a.public_key in node_keys:
            raise _fail(f"accounts[{i}].public_key", f"is also the key of node {node_keys[a.public_key]}; "
                                                     "every key must be used once")

    params = parse_consensus(top.get("consensus", {}))
    governance = parse_governance(top.get("governance", {}))
    versions = _contract_versions(top.get("contract_versions", {}))
    return Genesis(chain_id, tuple(orgs), tuple(nodes), tuple(accounts), params, governance, versions, raw)


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
    policy = g.governance
    return {
        "chain_id": g.chain_id,
        "organisations": [{"name": o.name, "display_name": o.display_name} for o in g.organisations],
        "nodes": [{"name": v.name, "org": v.org, "public_key": v.public_key.hex(),
                   "p2p": f"{v.p2p[0]}:{v.p2p[1]}", "api": f"{v.api[0]}:{v.api[1]}", "role": v.role}
                  for v in g.nodes],
        "accounts": [{"name": a.name, "org": a.org, "public_key": a.public_key.hex(), "roles": list(a.roles),
                      **({"valid_until": format_utc(a.valid_until_ms)} if a.valid_until_ms is not None else {})}
                     for a in g.accounts],
        "consensus": {name: getattr(g.consensus, name) for name in ConsensusParams.__dataclass_fields__},
        "governance": {"threshold": {"num": policy.num, "den": policy.den, "strict": policy.strict},
                       "proposal_lifetime_blocks": policy.proposal_lifetime_blocks},
        **({"contract_versions": {name: {str(v): h for h, v in steps} for name, steps in g.contract_versions}}
           if g.contract_versions else {}),
    }
