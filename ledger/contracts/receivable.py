"""`receivable` v1: supply-chain receivables (应收账款) a core enterprise owes,
split along its supply chain and financed by a bank exactly once.

A core enterprise (the debtor: the caller's organisation) `issue`s a
receivable to a supplier: an amount in cents and a maturity date.  Its
holder may `split` it (the parts sum exactly to it, which is then closed),
`transfer` it, or `finance` it at a bank (an organisation with an account in
the `bank` role): the bank becomes the holder, and neither the receivable
nor any part later split from it can be financed again.  On or after the
maturity date the debtor `settle`s it once, paying whoever holds it.
Nothing is split, transferred or financed on or after the maturity date, or
once it is settled.  Dates are UTC+8 calendar days of the block time.

State (tables of `receivable`):
    rcv/<id>                  the record (class Receivable)
    by_holder/<org>/<id>      -> amount_cents, for open receivables only
    balance/<org>             -> [count, total_cents] of the open receivables it holds
    event/<id>/<n:08>         its events (ledger.contracts.history)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ContractError
from ..receipt import ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION
from .base import CallContext, Contract, ContractState, Method, QueryReader, StateReader
from .blocktime import block_date, local_time
from .history import read_events, record_event
from .paging import page
from .schema import List, Record, calendar_date, cents, identifier, organisation

RECEIVABLES, BY_HOLDER, BALANCES = "rcv", "by_holder", "balance"
OPEN, SPLIT, SETTLED = "open", "split", "settled"
MAX_PARTS = 20
MAX_EVENTS_SHOWN = 100

ID = identifier("the receivable id, unique on the chain", "KMHM-2026-0088")
ISSUE_ARGS = Record("receivable.issue arguments", {
    "id": ID,
    "to": organisation("the supplier it is owed to", "dianchi-steel"),
    "amount_cents": cents("the amount owed, in cents", 50_000_000),
    "maturity_date": calendar_date("the day it falls due (UTC+8), after the block's day",
                                   "2027-03-31"),
})
PART = Record("one part of a split", {
    "id": ID,
    "amount_cents": cents("the part's amount, in cents", 20_000_000),
    "to": organisation("who holds the part (default: the splitting holder)", "xishan-bearings"),
}, optional=("to",))
SPLIT_ARGS = Record("receivable.split arguments", {
    "id": ID,
    "parts": List("the parts; their amounts sum exactly to the receivable's", PART,
                  min_items=2, max_items=MAX_PARTS,
                  example=[{"id": "KMHM-2026-0088-1", "amount_cents": 30_000_000},
                           {"id": "KMHM-2026-0088-2", "amount_cents": 20_000_000,
                            "to": "xishan-bearings"}]),
})
TRANSFER_ARGS = Record("receivable.transfer arguments", {
    "id": ID, "to": organisation("the new holder", "xishan-bearings")})
FINANCE_ARGS = Record("receivable.finance arguments", {
    "id": ID,
    "bank": organisation("the financing bank (an organisation with the bank role); it becomes "
                         "the holder", "dianchi-bank"),
    "advance_cents": cents("what the bank pays the holder now, in cents (at most the amount)",
                           19_400_000),
})
SETTLE_ARGS = Record("receivable.settle arguments", {"id": ID})


@dataclass(slots=True)
class Receivable:
    id: str
    debtor: str
    holder: str
    amount: int
    maturity: str
    status: str
    parent: str | None
    children: list[str]
    financed: list | None     # [bank, advance_cents, height, tx_id, time_ms, financed id]
    height: int
    time_ms: int
    tx_id: bytes
    settled: list | None      # [paid_to, height, tx_id, time_ms]
    events: int = 0

    def to_record(self) -> list:
        return [self.id, self.debtor, self.holder, self.amount, self.maturity, self.status,
                self.parent, self.children, self.financed, self.height, self.time_ms, self.tx_id,
                self.settled, self.events]

    @classmethod
    def from_record(cls, rec: list) -> "Receivable":
        return cls(*rec)


def _find(state: StateReader, rid: str) -> Receivable | None:
    rec = state.get(rid, RECEIVABLES)
    return None if rec is None else Receivable.from_record(rec)


def _load(state: StateReader, rid: str) -> Receivable:
    found = _find(state, rid)
    if found is None:
        raise ContractError(ERR_NOT_FOUND, f"no receivable {rid}")
    return found


def _refuse_existing(state: StateReader, rid: str, where: str) -> None:
    found = _find(state, rid)
    if found is not None:
        raise ContractError(ERR_CONFLICT, f"{where}: receivable {rid} already exists (owed by "
                                          f"{found.debtor}, height {found.height})")


def _known_org(ctx: CallContext, org: str, where: str) -> None:
    if ctx.directory.organisation(org) is None:
        raise ContractError(ERR_NOT_FOUND, f"{where}: no organisation {org!r} on this chain")


def _check_new_holder(ctx: CallContext, rec: Receivable, org: str, where: str,
                      may_be_holder: bool = False) -> None:
    """`org` may come to hold (part of) `rec`: a known organisation, not its debtor."""
    if org == rec.holder and not may_be_holder:
        raise ContractError(ERR_BAD_ARGS, f"{where}: {org} already holds receivable {rec.id}")
    if org == rec.debtor:
        raise ContractError(ERR_BAD_ARGS, f"{where}: {org} is the debtor; a debtor does not hold "
                                          "its own debt (settle instead)")
    _known_org(ctx, org, where)


def _as_holder(ctx: CallContext, rec: Receivable, action: str) -> None:
    """The caller holds `rec`, and it can still change hands."""
    if rec.status == SETTLED:
        paid_to, height = rec.settled[0], rec.settled[1]
        raise ContractError(ERR_CONFLICT, f"receivable {rec.id} was settled at height {height} "
                                          f"(paid to {paid_to}); it cannot be {action}")
    if rec.status == SPLIT:
        raise ContractError(ERR_CONFLICT, f"receivable {rec.id} was split into "
                                          f"{', '.join(rec.children)}; use its parts")
    if rec.holder != ctx.org:
        raise ContractError(ERR_PERMISSION, f"receivable {rec.id} is held by {rec.holder}; only its "
                                            f"holder may have it {action}")
    today = block_date(ctx.time_ms)
    if today >= rec.maturity:
        raise ContractError(ERR_CONFLICT, f"receivable {rec.id} matured on {rec.maturity} (today is "
                                          f"{today}); it can only be settled now, not {action}")


def _adjust_balance(state: ContractState, org: str, count: int, amount: int) -> None:
    old = state.get(org, BALANCES) or [0, 0]
    new = [old[0] + count, old[1] + amount]
    if new[0] == 0:
        state.delete(org, BALANCES)
    else:
        state.put(org, new, BALANCES)


def _hold(state: ContractState, rec: Receivable) -> None:
    state.put(f"{rec.holder}/{rec.id}", rec.amount, BY_HOLDER)
    _adjust_balance(state, rec.holder, 1, rec.amount)


def _unhold(state: ContractState, rec: Receivable) -> None:
    state.delete(f"{rec.holder}/{rec.id}", BY_HOLDER)
    _adjust_balance(state, rec.holder, -1, -rec.amount)


def _event(ctx: CallContext, state: ContractState, rec: Receivable, kind: str, **details: Any) -> None:
    record_event(ctx, state, rec.id, rec.events, kind, details)
    rec.events += 1


def _move(ctx: CallContext, state: ContractState, rec: Receivable, to: str, kind: str,
          **details: Any) -> None:
    """Hand `rec` to `to`: the holder index, both balances and its history follow."""
    _unhold(state, rec)
    _event(ctx, state, rec, kind, to=to, **{"from": rec.holder}, **details)
    rec.holder = to
    _store(state, rec)
    _hold(state, rec)


def _store(state: ContractState, rec: Receivable) -> None:
    state.put(rec.id, rec.to_record(), RECEIVABLES)


# -- methods ------------------------------------------------------------------------------

def issue(ctx: CallContext, state: ContractState, args: dict) -> dict:
    rid, to, maturity = args["id"], args["to"], args["maturity_date"]
    if to == ctx.org:
        raise ContractError(ERR_BAD_ARGS, f"args.to: {to} is the debtor itself; a receivable is "
                                          "owed to another organisation")
    _known_org(ctx, to, "args.to")
    today = block_date(ctx.time_ms)
    if maturity <= today:
        raise ContractError(ERR_BAD_ARGS, f"args.maturity_date: {maturity} is not after the block's "
                                          f"date {today}")
    _refuse_existing(state, rid, "args.id")
    rec = Receivable(rid, ctx.org, to, args["amount_cents"], maturity, OPEN, None, [], None,
                     ctx.height, ctx.time_ms, ctx.tx_id, None)
    _event(ctx, state, rec, "issue", to=to, amount_cents=rec.amount, maturity_date=maturity)
    _store(state, rec)
    _hold(state, rec)
    return {"id": rid, "holder": to, "amount_cents": rec.amount}


def split(ctx: CallContext, state: ContractState, args: dict) -> dict:
    parent = _load(state, args["id"])
    _as_holder(ctx, parent, "split")
    parts = args["parts"]
    total = sum(p["amount_cents"] for p in parts)
    if total != parent.amount:
        raise ContractError(ERR_BAD_ARGS, f"args.parts: the parts sum to {total} cents; receivable "
                                          f"{parent.id} is {parent.amount} cents")
    seen: set[str] = set()
    children = []
    for i, part in enumerate(parts):
        where = f"args.parts[{i}]"
        if part["id"] in seen or part["id"] == parent.id:
            raise ContractError(ERR_BAD_ARGS, f"{where}.id: {part['id']} is used twice")
        seen.add(part["id"])
        _refuse_existing(state, part["id"], f"{where}.id")
        holder = part.get("to", ctx.org)
        _check_new_holder(ctx, parent, holder, f"{where}.to", may_be_holder=True)
        children.append(Receivable(part["id"], parent.debtor, holder, part["amount_cents"],
                                   parent.maturity, OPEN, parent.id, [],
                                   parent.financed, ctx.height, ctx.time_ms, ctx.tx_id, None))
    _unhold(state, parent)
    parent.status, parent.children = SPLIT, [c.id for c in children]
    _event(ctx, state, parent, "split", parts=[[c.id, c.amount, c.holder] for c in children])
    _store(state, parent)
    for child in children:
        _event(ctx, state, child, "split_from", parent=parent.id, amount_cents=child.amount,
               to=child.holder)
        _store(state, child)
        _hold(state, child)
    return {"id": parent.id, "parts": [c.id for c in children]}


def transfer(ctx: CallContext, state: ContractState, args: dict) -> dict:
    rec = _load(state, args["id"])
    _as_holder(ctx, rec, "transferred")
    to = args["to"]
    _check_new_holder(ctx, rec, to, "args.to")
    _move(ctx, state, rec, to, "transfer")
    return {"id": rec.id, "holder": to}


def finance(ctx: CallContext, state: ContractState, args: dict) -> dict:
    rec = _load(state, args["id"])
    _as_holder(ctx, rec, "financed")
    if rec.financed is not None:
        bank, _, height, _, _, financed_id = rec.financed
        how = "" if financed_id == rec.id else f" as part of {financed_id}"
        raise ContractError(ERR_CONFLICT, f"receivable {rec.id} was already financed by {bank} at "
                                          f"height {height}{how}; it is financed at most once")
    bank, advance = args["bank"], args["advance_cents"]
    _check_new_holder(ctx, rec, bank, "args.bank")
    if not ctx.directory.org_has_role(bank, "bank"):
        raise ContractError(ERR_PERMISSION, f"args.bank: {bank} is not a bank (no account with the "
                                            "bank role)")
    if advance > rec.amount:
        raise ContractError(ERR_BAD_ARGS, f"args.advance_cents: {advance} is more than the "
                                          f"receivable's {rec.amount} cents")
    rec.financed = [bank, advance, ctx.height, ctx.tx_id, ctx.time_ms, rec.id]
    _move(ctx, state, rec, bank, "finance", advance_cents=advance)
    return {"id": rec.id, "holder": bank, "advance_cents": advance}


def settle(ctx: CallContext, state: ContractState, args: dict) -> dict:
    rec = _load(state, args["id"])
    if rec.debtor != ctx.org:
        raise ContractError(ERR_PERMISSION, f"receivable {rec.id} is owed by {rec.debtor}; only the "
                                            "debtor settles it")
    if rec.status == SETTLED:
        raise ContractError(ERR_CONFLICT, f"receivable {rec.id} was already settled at height "
                                          f"{rec.settled[1]} (paid to {rec.settled[0]})")
    if rec.status == SPLIT:
        raise ContractError(ERR_CONFLICT, f"receivable {rec.id} was split; settle its parts: "
                                          f"{', '.join(rec.children)}")
    today = block_date(ctx.time_ms)
    if today < rec.maturity:
        raise ContractError(ERR_CONFLICT, f"receivable {rec.id} is not yet due: it matures on "
                                          f"{rec.maturity}, today is {today}")
    _unhold(state, rec)
    rec.status = SETTLED
    rec.settled = [rec.holder, ctx.height, ctx.tx_id, ctx.time_ms]
    _event(ctx, state, rec, "settle", paid_to=rec.holder, amount_cents=rec.amount)
    _store(state, rec)
    return {"id": rec.id, "paid_to": rec.holder, "amount_cents": rec.amount}


METHODS: dict[str, Any] = {
    "issue": Method("Owe a supplier an amount due on a date (the caller's organisation is the debtor)",
                    ISSUE_ARGS, issue),
    "split": Method("Split a held receivable into parts that sum to it", SPLIT_ARGS, split),
    "transfer": Method("Hand a held receivable to another organisation", TRANSFER_ARGS, transfer),
    "finance": Method("Finance a held receivable at a bank, once; the bank becomes its holder",
                      FINANCE_ARGS, finance),
    "settle": Method("Pay a due receivable to its holder (the debtor only, once)", SETTLE_ARGS, settle),
}


# -- queries ------------------------------------------------------------------------------

def receivable_view(rec: Receivable) -> dict[str, Any]:
    financed = settled = None
    if rec.financed is not None:
        bank, advance, height, tx_id, time_ms, financed_id = rec.financed
        financed = {"bank": bank, "advance_cents": advance, "height": height, "tx_id": tx_id.hex(),
                    "time": local_time(time_ms), "receivable": financed_id}
    if rec.settled is not None:
        paid_to, height, tx_id, time_ms = rec.settled
        settled = {"paid_to": paid_to, "height": height, "tx_id": tx_id.hex(), "time": local_time(time_ms)}
    return {"id": rec.id, "debtor": rec.debtor, "holder": rec.holder, "amount_cents": rec.amount,
            "maturity_date": rec.maturity, "status": rec.status, "parent": rec.parent,
            "parts": rec.children, "financed": financed, "settled": settled,
            "issued_height": rec.height, "issued_time": local_time(rec.time_ms),
            "issued_tx_id": rec.tx_id.hex()}


def view(reader: StateReader, rid: str) -> dict[str, Any] | None:
    rec = _find(reader, rid)
    return None if rec is None else receivable_view(rec)


def detail(reader: QueryReader, rid: str) -> dict[str, Any] | None:
    """The receivable with its history (first MAX_EVENTS_SHOWN events)."""
    rec = _find(reader, rid)
    if rec is None:
        return None
    return {**receivable_view(rec), "events": read_events(reader, rid, MAX_EVENTS_SHOWN),
            "event_count": rec.events}


def holdings(reader: QueryReader, org: str, after: str | None, limit: int) -> dict[str, Any]:
    """What `org` holds: its balance, and one page of its open receivables."""
    count, total = reader.get(org, BALANCES) or [0, 0]
    rows, cursor = page(reader, BY_HOLDER, org, after, limit)
    items = [v for rid, _ in rows if (v := view(reader, rid)) is not None]
    return {"org": org, "count": count, "total_cents": total, "receivables": items, "next": cursor}


CONTRACT = Contract("receivable", METHODS, view)
