"""`gov`: the consortium governs its own configuration on chain.

An organisation's admin proposes a change (`propose {action, target, params}`,
actions in ledger.contracts.gov_actions); proposing counts as its
organisation's approval.  Admins of the other voting organisations (active,
with an active admin: ChainConfig.voting_orgs) `approve` or `reject`; each
organisation has one vote, which it may change until the proposal is decided
(a second vote the same way is refused: it would count once anyway).  The
proposal is carried out in the block whose vote reaches the policy's threshold
(more than, or at least, num/den of the voting organisations, counted at that
vote), and rejected once enough organisations reject that it never can.  It
can be voted on up to `expires_height` (created + proposal_lifetime_blocks):
every vote checks it.  At most one proposal per (action, target) is open; the
proposing organisation may `withdraw` it.  A proposal is checked when it is
made and again when it passes; if it can no longer be carried out, the
passing vote is refused and the proposal stays open (withdraw it, or let it
expire).

Two changes need no vote (Fabric: an organisation updates its own material
alone): an account rotates its own key (`rotate_key`, signed with its current
key), and an admin replaces the key of an account of its own organisation
(`replace_key`, for a lost key).  The old key is retired for good.

Tables: proposal/<id:012> (the Proposal record), open/<action>/<target> -> id,
meta/next_id; the configuration itself is in the tables ledger.config_state
describes, written (with the block's history entry) by `store_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .. import codec, config_state
from ..consortium import ACTIVE, ChainConfig, bft_warning
from ..errors import ContractError
from ..receipt import ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION
from .base import CallContext, Contract, ContractState, Method, QueryReader, StateReader
from .gov_actions import PROPOSAL_ARGS, PUBLIC_KEY, carry_out, describe, rotate_account_key
from .schema import Int, OneOf, Record, Str

PROPOSAL = "proposal"
OPEN_INDEX = "open"
META = "meta"
NEXT_ID = "next_id"
MAX_ID = 10**12
MAX_LISTED = 1000        # proposals a list request looks at (bounded work per request)

OPEN, EXECUTED, REJECTED, WITHDRAWN, EXPIRED = "open", "executed", "rejected", "withdrawn", "expired"
STATUSES = (OPEN, EXECUTED, REJECTED, WITHDRAWN, EXPIRED)
APPROVE, REJECT = "approve", "reject"


def proposal_key(pid: int) -> str:
    return f"{pid:012d}"


@dataclass(frozen=True, slots=True)
class Vote:
    org: str
    account: str
    decision: str            # APPROVE | REJECT
    height: int


@dataclass(frozen=True, slots=True)
class Proposal:
    id: int
    action: str
    target: str
    params: dict
    proposer: str            # account
    org: str                 # the proposing organisation
    created_height: int
    expires_height: int      # the last height a vote counts at
    status: str              # OPEN, EXECUTED, REJECTED, WITHDRAWN or EXPIRED (stored; see status_at)
    votes: tuple[Vote, ...]  # one per organisation, in the order they first voted
    closed_height: int = 0
    note: str = ""           # what happened when it closed
    # (approvals, rejections, needed, electorate) as counted when it was decided
    tally: tuple[int, ...] = ()

    def to_record(self) -> list:
        return [self.id, self.action, self.target, self.params, self.proposer, self.org,
                self.created_height, self.expires_height, self.status,
                [[v.org, v.account, v.decision, v.height] for v in self.votes], self.closed_height, self.note,
                list(self.tally)]

    @classmethod
    def from_record(cls, rec: Any) -> "Proposal":
        (pid, action, target, params, proposer, org, created, expires, status, votes, closed,
         note, tally) = codec.expect_list(rec, 13, "proposal")
        return cls(pid, action, target, params, proposer, org, created, expires, status,
                   tuple(Vote(*v) for v in votes), closed, note, tuple(tally))

    def status_at(self, height: int) -> str:
        """The status as of committed `height`: an open proposal past its expiry is expired."""
        return EXPIRED if self.status == OPEN and height > self.expires_height else self.status

    def count(self, decision: str, electorate: tuple[str, ...]) -> int:
        return sum(1 for v in self.votes if v.decision == decision and v.org in electorate)

    def counted(self, config: ChainConfig) -> tuple[int, int, int, int]:
        """(approvals, rejections, needed, electorate): as decided, or as they stand."""
        if self.tally:
            return self.tally      # type: ignore[return-value]
        electorate = config.voting_orgs
        return (self.count(APPROVE, electorate), self.count(REJECT, electorate),
                config.governance.needed(len(electorate)), len(electorate))

    def view(self, config: ChainConfig, height: int) -> dict[str, Any]:
        approvals, rejections, needed, electorate = self.counted(config)
        return {
            "id": self.id, "action": self.action, "target": self.target, "params": self.params,
            "summary": describe(self.action, self.target, self.params),
            "proposer": self.proposer, "org": self.org, "status": self.status_at(height),
            "created_height": self.created_height, "expires_height": self.expires_height,
            "votes": [{"org": v.org, "account": v.account, "vote": v.decision, "height": v.height}
                      for v in self.votes],
            "approvals": approvals, "rejections": rejections, "needed": needed, "electorate": electorate,
            "closed_height": self.closed_height or None, "note": self.note or None,
        }


def _load(state: StateReader, pid: int) -> Proposal | None:
    rec = state.get(proposal_key(pid), PROPOSAL)
    return None if rec is None else Proposal.from_record(rec)


def _save(state: ContractState, p: Proposal) -> None:
    state.put(proposal_key(p.id), p.to_record(), PROPOSAL)
    open_key = f"{p.action}/{p.target}"
    if p.status == OPEN:
        state.put(open_key, p.id, OPEN_INDEX)
    elif state.get(open_key, OPEN_INDEX) == p.id:
        state.delete(open_key, OPEN_INDEX)


def store_config(ctx: CallContext, state: ContractState, after: ChainConfig) -> dict[str, Any]:
    """Write the records that turn the configuration in force into `after`
    (the engine derives the new ChainConfig from them) and append them to
    this block's history entry; what changed for the consensus, for receipts."""
    changes = config_state.diff(ctx.config, after)
    for table, key, rec in changes:
        if rec is None:
            state.delete(key, table)
        else:
            state.put(key, rec, table)
    hkey = config_state.history_key(ctx.height)
    earlier = state.get(hkey, config_state.HISTORY) or []
    state.put(hkey, earlier + [[t, k, rec] for t, k, rec in changes], config_state.HISTORY)
    effect: dict[str, Any] = {}
    if after.epochs != ctx.config.epochs:
        epoch = after.epochs[-1]
        effect["epoch"] = {"number": epoch.number, "starts_after": epoch.start,
                           "validators": list(epoch.names)}
    warning = bft_warning(after)
    if warning and len(after.validators) != len(ctx.config.validators):
        effect["warning"] = warning
    return effect


def _refused(pid: int, what: str, code: int = ERR_CONFLICT) -> ContractError:
    return ContractError(code, f"proposal {pid}: {what}")


def _open_proposal(ctx: CallContext, state: ContractState, pid: int) -> Proposal:
    """Proposal `pid`, which must still take votes at this height."""
    p = _load(state, pid)
    if p is None:
        raise _refused(pid, "no such proposal", ERR_NOT_FOUND)
    if p.status != OPEN:
        raise _refused(pid, f"is {p.status} (at height {p.closed_height}); it takes no more votes")
    if ctx.height > p.expires_height:
        raise _refused(pid, f"expired at height {p.expires_height} (made at height {p.created_height}, "
                            f"lifetime {p.expires_height - p.created_height} blocks); propose it again")
    return p


def _decide(ctx: CallContext, state: ContractState, p: Proposal) -> dict[str, Any]:
    """Count the votes in force: carry the proposal out if it passed, close it
    if it can no longer pass; save it.  The receipt's result."""
    config = ctx.config
    policy = config.governance
    tally = p.counted(config)
    approvals, rejections, _, electorate = tally
    effect: dict[str, Any] = {}
    if policy.reached(approvals, electorate):
        try:
            after = carry_out(config, p.action, p.target, p.params, ctx.height, ctx.time_ms)
        except ContractError as exc:
            raise ContractError(exc.code, f"proposal {p.id} passes but cannot be carried out now: "
                                          f"{exc.message}; withdraw it or let it expire") from None
        effect = store_config(ctx, state, after)
        p = replace(p, status=EXECUTED, closed_height=ctx.height, tally=tally,
                    note=f"carried out at height {ctx.height}")
    elif not policy.reached(electorate - rejections, electorate):
        p = replace(p, status=REJECTED, closed_height=ctx.height, tally=tally,
                    note=f"rejected: it can no longer reach {policy.describe()}")
    _save(state, p)
    return {**p.view(config, ctx.height), **effect}


def propose(ctx: CallContext, state: ContractState, args: dict) -> dict[str, Any]:
    action, target, params = args["action"], args["target"], args.get("params", {})
    existing_id = state.get(f"{action}/{target}", OPEN_INDEX)
    if existing_id is not None:
        existing = _load(state, existing_id)
        if ctx.height <= existing.expires_height:
            raise ContractError(ERR_CONFLICT, f"proposal {existing.id} ({describe(action, target, existing.params)}) "
                                              f"is open until height {existing.expires_height}; vote on it, "
                                              "or its organisation may withdraw it")
        _save(state, replace(existing, status=EXPIRED, closed_height=existing.expires_height,
                             tally=existing.counted(ctx.config),
                             note="expired without reaching the threshold"))
    try:
        carry_out(ctx.config, action, target, params, ctx.height, ctx.time_ms)
    except ContractError as exc:
        raise ContractError(exc.code, f"cannot propose {action} {target}: {exc.message}") from None
    pid = state.get(NEXT_ID, META) or 1
    if pid > MAX_ID:
        raise ContractError(ERR_CONFLICT, "the chain has used every proposal number")
    state.put(NEXT_ID, pid + 1, META)
    lifetime = ctx.config.governance.proposal_lifetime_blocks
    proposal = Proposal(pid, action, target, params, ctx.account.name, ctx.org, ctx.height,
                        ctx.height + lifetime, OPEN, (Vote(ctx.org, ctx.account.name, APPROVE, ctx.height),))
    return _decide(ctx, state, proposal)


def _vote(decision: str):
    def vote(ctx: CallContext, state: ContractState, args: dict) -> dict[str, Any]:
        p = _open_proposal(ctx, state, args["id"])
        previous = next((v for v in p.votes if v.org == ctx.org), None)
        if previous is not None and previous.decision == decision:
            raise _refused(p.id, f"organisation {ctx.org} has {decision}d it already (account "
                                 f"{previous.account} at height {previous.height}); one vote per organisation")
        cast = Vote(ctx.org, ctx.account.name, decision, ctx.height)
        votes = tuple(cast if v.org == ctx.org else v for v in p.votes) if previous else (*p.votes, cast)
        return _decide(ctx, state, replace(p, votes=votes))
    return vote


def withdraw(ctx: CallContext, state: ContractState, args: dict) -> dict[str, Any]:
    p = _open_proposal(ctx, state, args["id"])
    if p.org != ctx.org:
        raise _refused(p.id, f"only an admin of organisation {p.org}, which made it, may withdraw it",
                       ERR_PERMISSION)
    p = replace(p, status=WITHDRAWN, closed_height=ctx.height, tally=p.counted(ctx.config),
                note=f"withdrawn by {ctx.account.name} at height {ctx.height}")
    _save(state, p)
    return p.view(ctx.config, ctx.height)


def _rotated(ctx: CallContext, state: ContractState, account_name: str, new_key: str,
             where: str) -> dict[str, Any]:
    account = ctx.config.accounts[account_name]
    after = rotate_account_key(ctx.config, account, new_key, ctx.height, where)
    store_config(ctx, state, after)
    return {"account": account_name, "public_key": new_key, "retired_key": account.public_key.hex()}


def rotate_key(ctx: CallContext, state: ContractState, args: dict) -> dict[str, Any]:
    return _rotated(ctx, state, ctx.account.name, args["new_public_key"], "args.new_public_key")


def replace_key(ctx: CallContext, state: ContractState, args: dict) -> dict[str, Any]:
    name = args["account"]
    account = ctx.config.accounts.get(name)
    if account is None:
        raise ContractError(ERR_NOT_FOUND, f"no account {name}")
    if account.org != ctx.org:
        raise ContractError(ERR_PERMISSION, f"account {name} belongs to organisation {account.org}; "
                                            "only its own organisation's admins may replace its key")
    if account.status != ACTIVE:
        raise ContractError(ERR_CONFLICT, f"account {name} is revoked; a revoked account stays revoked")
    return _rotated(ctx, state, name, args["new_public_key"], "args.new_public_key")


PROPOSAL_ID = Int("the proposal's number", 1, minimum=1, maximum=MAX_ID)
ID_ARGS = Record("a proposal", {"id": PROPOSAL_ID})

METHODS = {
    "propose": Method("Propose a change of the consortium's configuration; counts as your "
                      "organisation's approval",
                      OneOf("gov.propose arguments: the action, its target and its parameters",
                            "action", PROPOSAL_ARGS), propose, role="admin"),
    "approve": Method("Approve an open proposal for your organisation", ID_ARGS, _vote(APPROVE), role="admin"),
    "reject": Method("Reject an open proposal for your organisation", ID_ARGS, _vote(REJECT), role="admin"),
    "withdraw": Method("Withdraw an open proposal your organisation made", ID_ARGS, withdraw, role="admin"),
    "rotate_key": Method("Replace the calling account's key with a new one (signed with the current key)",
                         Record("gov.rotate_key arguments", {"new_public_key": PUBLIC_KEY}), rotate_key),
    "replace_key": Method("Replace the key of an account of your organisation (a lost key)",
                          Record("gov.replace_key arguments", {
                              "account": Str("the account whose key is replaced", "tax-clerk", max_len=64),
                              "new_public_key": PUBLIC_KEY}), replace_key, role="admin"),
}


def query(state: StateReader, key: str) -> Any | None:
    """GET /state/gov/<id>: a proposal's stored record (the /gov routes give the full view)."""
    if not (key.isascii() and key.isdigit()) or len(key) > 12:
        return None
    p = _load(state, int(key))
    return None if p is None else {"id": p.id, "action": p.action, "target": p.target, "params": p.params,
                                   "status": p.status, "proposer": p.proposer, "org": p.org,
                                   "created_height": p.created_height, "expires_height": p.expires_height}


CONTRACT = Contract("gov", METHODS, query)


# -- reads for the API ----------------------------------------------------------------------

def proposal_view(reader: QueryReader, config: ChainConfig, height: int, pid: int) -> dict[str, Any] | None:
    p = _load(reader, pid)
    return None if p is None else p.view(config, height)


def list_proposals(reader: QueryReader, config: ChainConfig, height: int, status: str | None,
                   after: int | None, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """Proposals in number order after number `after`, only those with `status`
    (as of `height`) if given; at most `limit`, looking at MAX_LISTED records
    at most.  ([view], the cursor of the next page or None)."""
    found: list[dict[str, Any]] = []
    cursor = None if after is None else proposal_key(after)
    budget = MAX_LISTED
    while budget > 0:
        want = min(100, budget)
        rows = reader.scan(PROPOSAL, "", cursor, want)
        for key, rec in rows:
            budget -= 1
            cursor = key
            p = Proposal.from_record(rec)
            if status is None or p.status_at(height) == status:
                found.append(p.view(config, height))
                if len(found) == limit:
                    more = reader.scan(PROPOSAL, "", cursor, 1)
                    return found, int(cursor) if more else None
        if len(rows) < want:
            return found, None
    return found, int(cursor) if cursor is not None else None
