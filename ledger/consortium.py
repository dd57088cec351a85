"""The consortium's configuration on chain: who is in it, who may sign what, who
votes in consensus and under which rules.  Types in one place.

`ChainConfig` is one immutable value: organisations, accounts (key, roles,
validity), nodes (validators and observers), the retired keys, the governance
policy, and the epochs (the validator-set history, with the consensus
parameters each epoch runs).  Genesis seeds it (ledger.genesis); afterwards it
changes only by `gov` transactions (ledger.contracts.gov).  It lives in the
state under the gov contract's tables (ledger.config_state), and every node
keeps the value in force in memory: execution returns a new one when a block
changed it, and the node swaps it at commit.

Epochs (the schedule).  Epoch e covers seqs (B_e, B_{e+1}]; epoch 0 starts at
B_0 = 0 with the genesis validators.  A block h whose execution changes the
validator list (a promotion, demotion, removal, a validator's key) or the
consensus parameters schedules a new epoch at the first checkpoint B of the
last epoch's grid (checkpoints of epoch e are B_e + k * K_e) with B >= h + W,
W the window of the epoch in force at h; if that is at or before an epoch
already scheduled and not started, that pending epoch takes the change
instead (it starts at B_pending >= h + W too).  So a replica that has executed
block x knows set(s) for every s <= x + W, and every node derives the same
schedule from the committed chain alone.  With K fixed, B is the smallest
multiple of K with B >= h + W.  Consensus parameters belong to epochs too:
anything a replica judges about seq s (block size, tx validity window,
checkpoints, timeouts) uses `params_at(s)`, identical on every node.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Iterable, Mapping

from .certificate import MAX_VALIDATORS, quorum_size
from .codec import MAX_FRAME

if TYPE_CHECKING:     # the contracts import this module; only the type is needed here
    from .contracts import Schedule

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# writer: kv (and fiscal v1); issuer: fiscal receipts; reimburser: fiscal claims;
# producer: commissions trace lots; lab: trace inspections; bank: finances
# receivables; admin: votes for its organisation in governance (gov); auditor:
# no contract method needs it yet.
ROLES = ("writer", "admin", "auditor", "issuer", "reimburser", "producer", "lab", "bank")
ADMIN = "admin"

ACTIVE = "active"
REVOKED = "revoked"           # an account's status once revoked (for good)
REMOVED = "removed"           # an organisation's status once removed (for good)
VALIDATOR = "validator"
OBSERVER = "observer"
NODE_ROLES = (VALIDATOR, OBSERVER)
ACCOUNT_KEY = "account"       # RetiredKey.kind
NODE_KEY = "node"

# The largest PBFT window (high - low watermark): a VIEW-CHANGE carries up to this many
# prepared certificates, so message decoders bound their sizes by it.
MAX_WINDOW = 1024
# A block's encoded proposal never exceeds this, and never exceeds a window's share of
# one frame (ConsensusParams.max_proposal_bytes).
MAX_PROPOSAL_BYTES = 2 * 1024 * 1024
# What a NEW-VIEW or VIEW-CHANGE needs beside its payloads (votes, proofs, envelope).
CONSENSUS_MESSAGE_RESERVE = 1024 * 1024
MAX_DISPLAY_NAME = 200
DAY_MS = 86_400_000
# Block times and validity dates: 1970-01-01 .. 9999-12-31 (what ISO-8601 text can say).
MAX_TIME_MS = 253_402_300_799_999


# -- times ------------------------------------------------------------------------------

_UTC_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})Z)?$")


def parse_utc(text: str) -> int | None:
    """'2027-06-30T00:00:00Z' or '2027-06-30' (midnight UTC) -> ms since the epoch;
    None if it is not one of those.  Integer arithmetic: every node gets the same."""
    match = _UTC_RE.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    parts = [int(p) if p is not None else 0 for p in match.groups()]
    try:
        moment = datetime(*parts, tzinfo=timezone.utc)
    except ValueError:
        return None
    return calendar.timegm(moment.utctimetuple()) * 1000


def format_utc(ms: int) -> str:
    """ms since the epoch -> '2027-06-30T00:00:00Z' (whole seconds, as parse_utc reads)."""
    return datetime.fromtimestamp(ms // 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the parts --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Organisation:
    name: str
    display_name: str
    status: str = ACTIVE          # ACTIVE | REMOVED


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    org: str
    public_key: bytes
    roles: tuple[str, ...]
    valid_until_ms: int | None = None     # block time from which its key signs nothing
    status: str = ACTIVE                  # ACTIVE | REVOKED


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    org: str
    public_key: bytes
    p2p: tuple[str, int]          # host, port
    api: tuple[str, int]
    role: str = VALIDATOR         # VALIDATOR | OBSERVER


@dataclass(frozen=True, slots=True)
class RetiredKey:
    """A key no longer in use: rotated out (account or node) or of a removed node.
    Keys are never used twice, so a retired key stays taken for good."""
    public_key: bytes
    kind: str                     # ACCOUNT_KEY | NODE_KEY
    name: str                     # the account or node that used it
    height: int                   # the block that retired it


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


PARAM_LIMITS = {name: (0 if name == "empty_blocks_interval_ms" else 1, 10**9)
                for name in ConsensusParams.__dataclass_fields__}


def consensus_problem(params: ConsensusParams) -> tuple[str, str] | None:
    """(field, what is wrong) for parameters a chain cannot run, else None."""
    for name, (low, high) in PARAM_LIMITS.items():
        value = getattr(params, name)
        if type(value) is not int or not low <= value <= high:
            return name, f"expected an integer in {low}..{high}"
    if params.window < 2 * params.checkpoint_interval:
        return "window", "must be at least 2 * checkpoint_interval"
    if params.window > MAX_WINDOW:
        return "window", f"must be at most {MAX_WINDOW}"
    if params.max_in_flight > params.window:
        return "max_in_flight", "must be at most window"
    if params.max_view_change_timeout_ms < params.view_change_timeout_ms:
        return "max_view_change_timeout_ms", "must be >= view_change_timeout_ms"
    return None


@dataclass(frozen=True, slots=True)
class GovernancePolicy:
    """A proposal passes when the organisations approving it are more than
    (strict) or at least num/den of the voting organisations; it can be voted
    on for proposal_lifetime_blocks blocks after the one that created it."""
    num: int = 2
    den: int = 3
    strict: bool = True
    proposal_lifetime_blocks: int = 10_000

    def reached(self, approvals: int, electorate: int) -> bool:
        if approvals < 1:
            return False
        if self.strict:
            return approvals * self.den > self.num * electorate
        return approvals * self.den >= self.num * electorate

    def needed(self, electorate: int) -> int:
        """The fewest approvals that pass a proposal among `electorate` organisations."""
        if self.strict:
            return max(1, self.num * electorate // self.den + 1)
        return max(1, -(-self.num * electorate // self.den))

    def describe(self) -> str:
        return f"{'more than' if self.strict else 'at least'} {self.num}/{self.den} of the organisations"


MAX_THRESHOLD_DEN = 1000
MAX_LIFETIME = 10**9


def policy_problem(policy: GovernancePolicy) -> tuple[str, str] | None:
    """(field, what is wrong) for a policy no proposal could pass under, else None."""
    if type(policy.den) is not int or not 1 <= policy.den <= MAX_THRESHOLD_DEN:
        return "threshold.den", f"expected an integer in 1..{MAX_THRESHOLD_DEN}"
    if type(policy.num) is not int or not 1 <= policy.num <= policy.den:
        return "threshold.num", "expected an integer in 1..den"
    if type(policy.strict) is not bool:
        return "threshold.strict", "expected true or false"
    if policy.strict and policy.num == policy.den:
        return "threshold", "more than all organisations can never approve; use strict false"
    if type(policy.proposal_lifetime_blocks) is not int or \
            not 1 <= policy.proposal_lifetime_blocks <= MAX_LIFETIME:
        return "proposal_lifetime_blocks", f"expected an integer in 1..{MAX_LIFETIME}"
    return None


@dataclass(frozen=True, slots=True)
class Epoch:
    """A stretch of seqs with one validator set and one set of consensus
    parameters: seqs start+1 .. the next epoch's start.  A validator's index
    (in votes and certificates) is its position in `validators`."""
    number: int
    start: int
    validators: tuple[tuple[str, bytes], ...]     # (node name, node key), in index order
    params: ConsensusParams
    keys: tuple[bytes, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(key for _, key in self.validators))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.validators)

    @property
    def n(self) -> int:
        return len(self.validators)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def quorum(self) -> int:
        return quorum_size(self.n)

    def index_of(self, public_key: bytes) -> int | None:
        try:
            return self.keys.index(public_key)
        except ValueError:
            return None

    def is_checkpoint(self, seq: int) -> bool:
        """Whether `seq` is one of this epoch's checkpoints (B_e + k * K_e, k >= 1)."""
        return seq > self.start and (seq - self.start) % self.params.checkpoint_interval == 0


@dataclass(frozen=True, slots=True)
class KeyExpiry:
    """An account key that expires (or expired) soon, for warnings."""
    account: str
    org: str
    valid_until_ms: int
    seconds_left: int             # negative once expired


def _by_name(items: Iterable) -> Mapping:
    return MappingProxyType({item.name: item for item in sorted(items, key=lambda i: i.name)})


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """The consortium as the chain knows it after some block.  Build it with
    `ChainConfig.build` (any iterables), change it with `changed` (which keeps
    the indexes right); the mappings are read-only and in name order."""
    chain_id: str
    organisations: Mapping[str, Organisation]
    accounts: Mapping[str, Account]
    nodes: Mapping[str, Node]
    retired_keys: Mapping[bytes, RetiredKey]
    governance: GovernancePolicy
    epochs: tuple[Epoch, ...]
    # Which contract version runs at which height: fixed at genesis, never governed.
    contract_schedule: "Schedule" = field(compare=False, repr=False)
    _account_keys: dict = field(init=False, compare=False, repr=False)
    _node_keys: dict = field(init=False, compare=False, repr=False)
    _org_roles: dict = field(init=False, compare=False, repr=False)
    _voting: tuple = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        accounts = {a.public_key: a for a in self.accounts.values()}
        org_roles: dict[str, set[str]] = {}
        for a in self.accounts.values():
            if a.status == ACTIVE:
                org_roles.setdefault(a.org, set()).update(a.roles)
        active = {o.name for o in self.organisations.values() if o.status == ACTIVE}
        object.__setattr__(self, "_account_keys", accounts)
        object.__setattr__(self, "_node_keys", {n.public_key: n for n in self.nodes.values()})
        object.__setattr__(self, "_org_roles", {o: r for o, r in org_roles.items() if o in active})
        object.__setattr__(self, "_voting", tuple(sorted(
            o for o, roles in self._org_roles.items() if ADMIN in roles)))
        assert self.epochs and self.epochs[0].start == 0, "epoch 0 starts at seq 0"

    @classmethod
    def build(cls, chain_id: str, organisations: Iterable[Organisation], accounts: Iterable[Account],
              nodes: Iterable[Node], retired_keys: Iterable[RetiredKey], governance: GovernancePolicy,
              epochs: Iterable[Epoch], contract_schedule: "Schedule") -> "ChainConfig":
        return cls(chain_id, _by_name(organisations), _by_name(accounts), _by_name(nodes),
                   MappingProxyType({k.public_key: k for k in sorted(retired_keys, key=lambda k: k.public_key)}),
                   governance, tuple(epochs), contract_schedule)

    def changed(self, *, organisations: Iterable[Organisation] | None = None,
                accounts: Iterable[Account] | None = None, nodes: Iterable[Node] | None = None,
                retired_keys: Iterable[RetiredKey] | None = None,
                governance: GovernancePolicy | None = None,
                epochs: Iterable[Epoch] | None = None) -> "ChainConfig":
        """A copy with the given parts replaced (the others kept)."""
        return ChainConfig.build(
            self.chain_id,
            self.organisations.values() if organisations is None else organisations,
            self.accounts.values() if accounts is None else accounts,
            self.nodes.values() if nodes is None else nodes,
            self.retired_keys.values() if retired_keys is None else retired_keys,
            self.governance if governance is None else governance,
            self.epochs if epochs is None else epochs, self.contract_schedule)

    # -- keys and accounts ---------------------------------------------------------------
    def account_by_key(self, public_key: bytes) -> Account | None:
        """The account whose current key this is (whatever its status); None for
        a key no account holds now (unknown, retired, or a node's)."""
        return self._account_keys.get(public_key)

    def node_by_key(self, public_key: bytes) -> Node | None:
        return self._node_keys.get(public_key)

    def key_user(self, public_key: bytes) -> str | None:
        """Who uses or used this key, in words; None if it is free."""
        account = self._account_keys.get(public_key)
        if account is not None:
            return f"account {account.name}"
        node = self._node_keys.get(public_key)
        if node is not None:
            return f"node {node.name}"
        retired = self.retired_keys.get(public_key)
        if retired is not None:
            return f"{retired.kind} {retired.name} until height {retired.height} (a retired key)"
        return None

    def admins(self, org: str) -> tuple[Account, ...]:
        """The active accounts of `org` with the admin role."""
        return tuple(a for a in self.accounts.values()
                     if a.org == org and a.status == ACTIVE and ADMIN in a.roles)

    @property
    def voting_orgs(self) -> tuple[str, ...]:
        """The organisations that vote in governance: active, with an active admin."""
        return self._voting

    def expiring_keys(self, org: str, now_ms: int, within_ms: int) -> list[KeyExpiry]:
        """Active accounts of `org` whose key expires before now + within (or has
        expired), soonest first: what a node of `org` warns its operator about."""
        out = [KeyExpiry(a.name, a.org, a.valid_until_ms, (a.valid_until_ms - now_ms) // 1000)
               for a in self.accounts.values()
               if a.org == org and a.status == ACTIVE and a.valid_until_ms is not None
               and a.valid_until_ms < now_ms + within_ms]
        return sorted(out, key=lambda k: (k.valid_until_ms, k.account))

    # -- the directory contracts see (ledger.contracts.base.Directory) --------------------
    def organisation(self, name: str) -> Organisation | None:
        """An active organisation by name (a removed one is None)."""
        org = self.organisations.get(name)
        return org if org is not None and org.status == ACTIVE else None

    def org_has_role(self, org: str, role: str) -> bool:
        """True if an active account of active organisation `org` has `role`."""
        return role in self._org_roles.get(org, ())

    # -- nodes and epochs ----------------------------------------------------------------
    @property
    def validators(self) -> tuple[Node, ...]:
        """The nodes whose role is validator now (name order).  The set that
        votes at a given seq is `set_for_seq(seq)`: a change takes effect at
        its epoch's start, later."""
        return tuple(n for n in self.nodes.values() if n.role == VALIDATOR)

    @property
    def consensus(self) -> ConsensusParams:
        """The newest consensus parameters decided (the last epoch's); the ones
        in force at a seq are `params_at(seq)`."""
        return self.epochs[-1].params

    def epoch_of(self, seq: int) -> Epoch:
        """The epoch seq belongs to (B_e < seq <= B_{e+1}; seq 0 is epoch 0's).
        Final only for seq <= (last executed height) + window: a block not yet
        executed may still schedule an epoch beyond that."""
        epochs = self.epochs
        for epoch in reversed(epochs):
            if epoch.start < seq:
                return epoch
        return epochs[0]

    def set_for_seq(self, seq: int) -> tuple[bytes, ...]:
        """The validator keys that decide seq, in index order (see epoch_of)."""
        return self.epoch_of(seq).keys

    def params_at(self, seq: int) -> ConsensusParams:
        return self.epoch_of(seq).params

    def pending_boundary(self, height: int) -> int | None:
        """The start of the first epoch that has not begun at committed `height`
        (the boundary the chain is heading for), or None."""
        for epoch in self.epochs:
            if epoch.start > height:
                return epoch.start
        return None

    def rescheduled(self, height: int, params: ConsensusParams | None = None) -> "ChainConfig":
        """After a change executed in block `height`: the epochs updated so the
        validator list this config now holds (and `params`, new consensus
        parameters, if given) take effect at the scheduled boundary (module
        docstring).  Unchanged if the last epoch already has them."""
        last = self.epochs[-1]
        params = last.params if params is None else params
        wanted = _next_validators(last.validators, self.nodes)
        if wanted == last.validators and params == last.params:
            return self
        reach = height + self.epoch_of(height).params.window
        if reach <= last.start:        # a pending epoch starts late enough: it takes the change
            epochs = (*self.epochs[:-1], Epoch(last.number, last.start, wanted, params))
        else:
            step = last.params.checkpoint_interval
            start = last.start + -(-(reach - last.start) // step) * step
            epochs = (*self.epochs, Epoch(last.number + 1, start, wanted, params))
        return self.changed(epochs=epochs)


def _next_validators(previous: tuple[tuple[str, bytes], ...],
                     nodes: Mapping[str, Node]) -> tuple[tuple[str, bytes], ...]:
    """The next epoch's validator list: the previous order kept for the nodes
    still validators (with their current keys), newcomers appended by name."""
    out = []
    kept = set()
    for name, _ in previous:
        node = nodes.get(name)
        if node is not None and node.role == VALIDATOR:
            out.append((name, node.public_key))
            kept.add(name)
    out += [(n.name, n.public_key) for n in nodes.values() if n.role == VALIDATOR and n.name not in kept]
    return tuple(out)


def config_problem(before: ChainConfig, after: ChainConfig) -> str | None:
    """What makes `after` (the result of one change to `before`) unacceptable:
    the invariants every change must keep.  None if it is fine."""
    validators = after.validators
    if not validators:
        return "the chain would have no validator left; promote another node first"
    if len(validators) > MAX_VALIDATORS:
        return f"the chain would have more than {MAX_VALIDATORS} validators"
    for org in before.voting_orgs:
        if after.organisation(org) is not None and not after.admins(org):
            return (f"organisation {org} would be left without an active admin account; "
                    "give another of its accounts the admin role first")
    if not after.voting_orgs:
        return "no organisation with an admin would be left to govern the chain"
    seen: dict[bytes, str] = {}
    for what, key in [*((f"account {a.name}", a.public_key) for a in after.accounts.values()),
                      *((f"node {n.name}", n.public_key) for n in after.nodes.values()),
                      *((f"retired key of {k.name}", k.public_key) for k in after.retired_keys.values())]:
        if key in seen:
            return f"{what} and {seen[key]} would share key {key.hex()}"
        seen[key] = what
    p2p: dict[tuple[str, int], str] = {}
    for node in after.nodes.values():
        if node.p2p in p2p:
            return f"nodes {p2p[node.p2p]} and {node.name} would share p2p address {node.p2p[0]}:{node.p2p[1]}"
        p2p[node.p2p] = node.name
    for account in after.accounts.values():
        if account.status == ACTIVE and after.organisation(account.org) is None:
            return f"account {account.name} would belong to organisation {account.org}, which is not active"
    for node in after.nodes.values():
        if after.organisation(node.org) is None:
            return f"node {node.name} would belong to organisation {node.org}, which is not active"
    return None


def bft_warning(config: ChainConfig) -> str | None:
    """A warning for a validator count that tolerates no faulty validator."""
    n = len(config.validators)
    if n < 4:
        return (f"{n} validator{'s' if n != 1 else ''} tolerate no faulty or stopped validator; "
                "BFT needs at least 4 to tolerate one")
    return None


def address_text(addr: tuple[str, int]) -> str:
    return f"{addr[0]}:{addr[1]}"


def split_address(text: object) -> tuple[str, int] | None:
    """'HOST:PORT' -> (host, port) with a port in 1-65535; None if it is not one."""
    if not isinstance(text, str) or text.count(":") != 1:
        return None
    host, _, port = text.partition(":")
    if not host or not (port.isascii() and port.isdigit()) or len(port) > 5 or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def _params_view(params: ConsensusParams) -> dict[str, int]:
    return {name: getattr(params, name) for name in ConsensusParams.__dataclass_fields__}


def config_view(config: ChainConfig, height: int) -> dict:
    """The configuration in force after block `height`, for people and the API
    (keys in hex, validity in ISO-8601 UTC)."""
    voting = set(config.voting_orgs)
    policy = config.governance
    return {
        "chain_id": config.chain_id, "height": height,
        "organisations": [{"name": o.name, "display_name": o.display_name, "status": o.status,
                           "voting": o.name in voting} for o in config.organisations.values()],
        "accounts": [{"name": a.name, "org": a.org, "public_key": a.public_key.hex(), "roles": list(a.roles),
                      "valid_until": None if a.valid_until_ms is None else format_utc(a.valid_until_ms),
                      "status": a.status} for a in config.accounts.values()],
        "nodes": [{"name": n.name, "org": n.org, "public_key": n.public_key.hex(), "p2p": address_text(n.p2p),
                   "api": address_text(n.api), "role": n.role} for n in config.nodes.values()],
        "retired_keys": [{"public_key": k.public_key.hex(), "kind": k.kind, "name": k.name, "height": k.height}
                         for k in config.retired_keys.values()],
        "consensus": _params_view(config.params_at(height + 1)),
        "governance": {"threshold": {"num": policy.num, "den": policy.den, "strict": policy.strict},
                       "proposal_lifetime_blocks": policy.proposal_lifetime_blocks,
                       "voting_orgs": sorted(voting), "needed": policy.needed(len(voting))},
        "epochs": [{"number": e.number, "start": e.start,
                    "validators": [{"name": name, "public_key": key.hex()} for name, key in e.validators],
                    "params": _params_view(e.params)} for e in config.epochs],
        "pending_boundary": config.pending_boundary(height),
    }
