"""Random sequences of operations by random organisations never break a
contract's invariants, and every refusal leaves the state exactly as it was
(no writes, same state root, same state).

Identifiers come from small sets so that operations collide: the same
receipt claimed twice, a lot shipped by someone who no longer holds it, a
receivable split after it matured.  Each choice is, three times in four,
one that can succeed (the holder ships, an amount within what is left),
and otherwise anything, so both successes and refusals are common.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ledger import codec
from ledger.contracts import fiscal, receivable, trace
from ledger.contracts.blocktime import block_date
from ledger.execution import query_state
from ledger.receipt import (ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION, Receipt)
from tests.factories import make_genesis
from tests.ledger.world import ORGS as WORLD_ORGS, ROLES, World

SETTINGS = settings(max_examples=50, stateful_step_count=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
# What a contract may answer; anything else (or an exception) is a bug.
CONTRACT_STATUSES = {ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION}
DAY_MS = 86_400_000


def likely(data, good: list, anything: st.SearchStrategy):
    """Mostly one of `good` (if any), else whatever `anything` draws."""
    if good and data.draw(st.integers(0, 3)) > 0:
        return data.draw(st.sampled_from(sorted(good)))
    return data.draw(anything)


class ContractMachine(RuleBasedStateMachine):
    contract = ""
    ok_changes_state = True      # every success changes the state (kv: a put of the same value does not)

    def __init__(self) -> None:
        super().__init__()
        self.w = World()
        self.now = self.w.chain.time_of(1)
        self.refusals = 0

    def do(self, account: str, method: str, args: Any) -> Receipt:
        chain = self.w.chain
        before, root = dict(chain.state), chain.root
        result = chain.run([self.w.tx(account, self.contract, method, args)], self.now)
        (receipt,) = result.receipts
        if not receipt.ok:
            assert receipt.status in CONTRACT_STATUSES, receipt
            assert receipt.message, receipt
            assert result.writes == {} and result.state_root == root
            assert chain.state == before
            self.refusals += 1
        else:
            assert result.writes
            assert (result.state_root != root) == (chain.state != before)    # the root follows the state
            assert chain.state != before or not self.ok_changes_state
        return receipt

    def table(self, table: str) -> dict[str, Any]:
        prefix = f"{self.contract}/{table}/".encode()
        return {k[len(prefix):].decode(): codec.unpack(v)
                for k, v in self.w.chain.state.items() if k.startswith(prefix)}


# -- fiscal ---------------------------------------------------------------------------------

ISSUERS, REIMBURSERS, OTHERS = ["hospital", "hospital-b", "clinic"], ["employer", "insurance", "insurer"], ["coop"]
FISCAL_ACCOUNTS = st.sampled_from(ISSUERS + REIMBURSERS + OTHERS)
NUMBERS = st.integers(0, 5).map(lambda i: f"{i:010d}")
PAYERS = st.sampled_from(["a1" * 32, "b2" * 32])
CODE = "53010126"


class FiscalMachine(ContractMachine):
    contract = "fiscal"

    def __init__(self) -> None:
        super().__init__()
        self.reimbursed: dict[tuple[str, str], int] = {}     # (receipt, org) -> cents, once done

    def receipts(self) -> dict[str, fiscal.FiscalReceipt]:
        return {k: fiscal.FiscalReceipt.from_record(v) for k, v in self.table("receipt").items()}

    def number(self, data) -> str:
        return likely(data, [r.number for r in self.receipts().values()], NUMBERS)

    @rule(data=st.data(), number=NUMBERS, payer=PAYERS,
          lines=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 5000)), min_size=1, max_size=3),
          skew=st.sampled_from([0, 0, 0, 1, -1]))
    def issue(self, data, number, payer, lines, skew) -> None:
        items = [{"name": f"item {i}", "quantity": q, "unit": "u", "unit_price_cents": p,
                  "amount_cents": q * p} for i, (q, p) in enumerate(lines)]
        total = sum(q * p for q, p in lines) + skew
        self.do(likely(data, ISSUERS, FISCAL_ACCOUNTS), "issue", {
            "code": CODE, "number": number, "payer_name": "P", "payer_id_hash": payer, "items": items,
            "total_cents": max(total, 1)})

    @rule(data=st.data(), red=NUMBERS)
    def void(self, data, red) -> None:
        self.do(likely(data, ISSUERS, FISCAL_ACCOUNTS), "void", {
            "code": CODE, "number": self.number(data), "red_code": CODE, "red_number": red, "reason": "r"})

    @rule(data=st.data())
    def claim(self, data) -> None:
        number = self.number(data)
        receipt = self.receipts().get(f"{CODE}-{number}")
        left = receipt.total - sum(c.amount for c in receipt.claims) if receipt else 0
        amount = likely(data, [a for a in (left - 1, left, left + 1) if a > 0], st.integers(1, 16000))
        self.do(likely(data, REIMBURSERS, FISCAL_ACCOUNTS), "claim",
                {"code": CODE, "number": number, "amount_cents": amount})

    @rule(data=st.data(), method=st.sampled_from(["complete", "release"]))
    def settle_claim(self, data, method) -> None:
        locked = [(r.number, c.org) for r in self.receipts().values() for c in r.claims if c.state == "locked"]
        number, account = likely(data, locked, st.tuples(NUMBERS, FISCAL_ACCOUNTS))
        receipt = self.do(account, method, {"code": CODE, "number": number})
        if receipt.ok and method == "complete":
            org = self.w.genesis.account_by_key(self.w.accounts[account].public_key).org
            self.reimbursed[(receipt.result["receipt"], org)] = receipt.result["reimbursed_cents"]

    @invariant()
    def receipts_hold_together(self) -> None:
        receipts = self.receipts()
        for key, r in receipts.items():
            claimed = sum(c.amount for c in r.claims)
            assert claimed <= r.total, (key, claimed, r.total)           # never over the total
            orgs = [c.org for c in r.claims]
            assert len(orgs) == len(set(orgs))                           # one claim per organisation
            assert sum(q * p for _, q, _, p, _ in r.items) == r.total
            if r.kind == fiscal.RED:
                assert not r.claims and receipts[r.red_of].voided_by == key
            if r.voided_by is not None:
                assert not r.claims and receipts[r.voided_by].red_of == key
        # a completed reimbursement never goes away or changes
        for (key, org), cents in self.reimbursed.items():
            claim = receipts[key].claim_of(org)
            assert claim is not None and claim.state == fiscal.REIMBURSED and claim.amount == cents
        # each receipt is listed once under its issuer and once under its payer
        by_issuer = sorted(v for v in self.table("by_issuer").values())
        by_payer = sorted(v for v in self.table("by_payer").values())
        assert by_issuer == by_payer == sorted(receipts)


TestFiscal = FiscalMachine.TestCase
TestFiscal.settings = SETTINGS


# -- trace ----------------------------------------------------------------------------------

PRODUCERS = ["coop", "coop-b"]
TRACE_ACCOUNTS = st.sampled_from(["coop", "coop-b", "lab", "workshop", "distributor", "shop"])
ORGS = st.sampled_from(["coop", "coop-b", "lab", "workshop", "distributor", "shop", "mars"])
LOT_IDS = ["L0", "L1", "L2", "L3", "P0", "P1"]
LOTS = st.sampled_from(LOT_IDS)
SHIPMENTS = st.sampled_from(["S0", "S1", "S2", "S3"])
QTY = st.integers(1, 60)


class TraceMachine(ContractMachine):
    contract = "trace"

    def __init__(self) -> None:
        super().__init__()
        self.sold_at_failure: dict[str, int] = {}

    def lots(self) -> dict[str, trace.Lot]:
        return {k: trace.Lot.from_record(v) for k, v in self.table("lot").items()}

    def holding(self, data) -> tuple[str, str, int]:
        """(account, lot, quantity): likely a holder's own lot and an amount it holds."""
        held = [(org, lot.lot, q) for lot in self.lots().values() for org, q in lot.holdings]
        org, lot, q = likely(data, held, st.tuples(TRACE_ACCOUNTS, LOTS, QTY))
        return org, lot, likely(data, [q, max(1, q // 2)], QTY)

    def held_lots(self, data, org: str) -> list[dict]:
        mine = [(lot.lot, q) for lot in self.lots().values() for o, q in lot.holdings if o == org]
        picked = likely(data, [tuple(mine[:3])] if mine else [], st.lists(st.tuples(LOTS, QTY),
                                                                           min_size=1, max_size=3))
        return [{"lot": lot, "quantity": max(1, q // 2)} for lot, q in picked] or [{"lot": "L0", "quantity": 1}]

    @rule(data=st.data(), lot=LOTS, quantity=QTY)
    def commission(self, data, lot, quantity) -> None:
        self.do(likely(data, PRODUCERS, TRACE_ACCOUNTS), "commission", {
            "lot": lot, "product": "leaf", "quantity": quantity, "unit": "kg",
            "origin": {"base": "menghai", "plot": "p", "harvest_date": "2026-01-01"}})

    @rule(data=st.data(), result=st.sampled_from(["pass", "fail", "pass"]))
    def inspect(self, data, result) -> None:
        self.do(likely(data, ["lab"], TRACE_ACCOUNTS), "inspect", {
            "lot": likely(data, list(self.lots()), LOTS), "report_hash": "cd" * 32, "result": result})

    @rule(data=st.data(), out=LOTS, quantity=QTY)
    def transform(self, data, out, quantity) -> None:
        account, _, _ = self.holding(data)
        self.do(account, "transform", {"inputs": self.held_lots(data, account), "output": {
            "lot": out, "product": "cake", "quantity": quantity, "unit": "cake"}})

    @rule(data=st.data(), package=LOTS)
    def aggregate(self, data, package) -> None:
        account, _, _ = self.holding(data)
        self.do(account, "aggregate", {"package": package, "lots": self.held_lots(data, account)})

    @rule(data=st.data())
    def disaggregate(self, data) -> None:
        account, lot, _ = self.holding(data)
        self.do(account, "disaggregate", {"package": lot})

    @rule(data=st.data(), shipment=SHIPMENTS, to=ORGS)
    def ship(self, data, shipment, to) -> None:
        account, lot, quantity = self.holding(data)
        self.do(account, "ship", {"shipment": shipment, "lot": lot, "quantity": quantity, "to": to})

    @rule(data=st.data())
    def receive(self, data) -> None:
        pending = [(s[3], k) for k, s in self.table("shipment").items() if s[4] == "in_transit"]
        account, shipment = likely(data, pending, st.tuples(TRACE_ACCOUNTS, SHIPMENTS))
        self.do(account, "receive", {"shipment": shipment})

    @rule(data=st.data(), retire=st.booleans())
    def sell_or_retire(self, data, retire) -> None:
        account, lot, quantity = self.holding(data)
        if retire:
            self.do(account, "retire", {"lot": lot, "quantity": quantity, "reason": "x"})
        else:
            self.do(account, "sell", {"lot": lot, "quantity": quantity})

    @invariant()
    def quantities_are_conserved(self) -> None:
        lots = self.lots()
        shipments = self.table("shipment").values()
        for lot in lots.values():
            held = sum(q for _, q in lot.holdings)
            assert all(q > 0 for _, q in lot.holdings)
            assert lot.quantity == (held + lot.in_transit + lot.used + lot.packed + lot.sold
                                    + lot.retired), lot
            assert lot.in_transit == sum(s[1] for s in shipments if s[0] == lot.lot and s[4] == "in_transit")
            assert set(lot.ancestors) <= set(lots)          # nothing made from an uncommissioned lot
            for parent, _ in lot.parents:
                assert parent in lot.ancestors
            failed = trace.failure_of(self.w.reader("trace"), lot)
            if failed is not None:
                self.sold_at_failure.setdefault(lot.lot, lot.sold)
                assert lot.sold == self.sold_at_failure[lot.lot]     # never sold after failing
        assert all(s[0] in lots for s in shipments)


TestTrace = TraceMachine.TestCase
TestTrace.settings = SETTINGS


# -- receivable -----------------------------------------------------------------------------

RCV_ACCOUNTS = st.sampled_from(["core", "steel", "bearings", "bank", "bank2"])
RCV_ORGS = st.sampled_from(["core", "steel", "bearings", "bank", "bank2", "mars"])
IDS = st.sampled_from(["R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7"])
DAYS_AHEAD = st.integers(0, 8)     # a maturity this many days after the block's day (0: refused)


class ReceivableMachine(ContractMachine):
    contract = "receivable"

    def __init__(self) -> None:
        super().__init__()
        self.settled: dict[str, Any] = {}
        self.financed: set[str] = set()

    def receivables(self) -> dict[str, receivable.Receivable]:
        return {k: receivable.Receivable.from_record(v) for k, v in self.table("rcv").items()}

    def held(self, data) -> tuple[str, str]:
        """(account, id): likely an open receivable and its holder."""
        held = [(r.holder, r.id) for r in self.receivables().values() if r.status == "open"]
        return likely(data, held, st.tuples(RCV_ACCOUNTS, IDS))

    @rule(days=st.integers(0, 2))
    def time_passes(self, days) -> None:
        self.now += days * DAY_MS

    @rule(data=st.data(), rid=IDS, to=RCV_ORGS, amount=st.integers(1, 1000), ahead=DAYS_AHEAD)
    def issue(self, data, rid, to, amount, ahead) -> None:
        self.do(likely(data, ["core"], RCV_ACCOUNTS), "issue",
                {"id": rid, "to": to, "amount_cents": amount,
                 "maturity_date": block_date(self.now + ahead * DAY_MS)})

    @rule(data=st.data(), ids=st.lists(IDS, min_size=2, max_size=3, unique=True),
          holders=st.lists(st.one_of(st.none(), RCV_ORGS), min_size=3, max_size=3))
    def split(self, data, ids, holders) -> None:
        account, rid = self.held(data)
        rec = self.receivables().get(rid)
        amount = rec.amount if rec else 100
        cuts = sorted(data.draw(st.lists(st.integers(1, max(1, amount - 1)), min_size=len(ids) - 1,
                                         max_size=len(ids) - 1)))
        amounts = [b - a for a, b in zip([0, *cuts], [*cuts, amount])]
        if data.draw(st.booleans()):
            amounts[0] += 1          # a split that does not add up
        parts = [{"id": p, "amount_cents": max(a, 1), **({"to": h} if h else {})}
                 for p, a, h in zip(ids, amounts, holders)]
        if self.do(account, "split", {"id": rid, "parts": parts}).ok:
            assert block_date(self.now) < rec.maturity and rec.status == "open"

    @rule(data=st.data(), to=RCV_ORGS)
    def transfer(self, data, to) -> None:
        account, rid = self.held(data)
        rec = self.receivables().get(rid)
        if self.do(account, "transfer", {"id": rid, "to": to}).ok:
            assert block_date(self.now) < rec.maturity and rec.status == "open"

    @rule(data=st.data(), bank=st.sampled_from(["bank", "bank2", "steel"]), advance=st.integers(1, 1000))
    def finance(self, data, bank, advance) -> None:
        account, rid = self.held(data)
        if self.do(account, "finance", {"id": rid, "bank": bank, "advance_cents": advance}).ok:
            rcv, lineage, node = self.receivables(), set(), rid
            while node is not None:
                lineage.add(node)
                node = rcv[node].parent
            assert not self.financed & lineage, "financed twice"
            self.financed.add(rid)

    @rule(data=st.data())
    def settle(self, data) -> None:
        debts = [(r.debtor, r.id) for r in self.receivables().values()]
        account, rid = likely(data, debts, st.tuples(RCV_ACCOUNTS, IDS))
        if self.do(account, "settle", {"id": rid}).ok:
            assert rid not in self.settled
            self.settled[rid] = None

    @invariant()
    def books_balance(self) -> None:
        rcv = self.receivables()
        open_by_holder: dict[str, list[tuple[str, int]]] = {}
        for r in rcv.values():
            if r.status == receivable.SPLIT:
                assert sum(rcv[c].amount for c in r.children) == r.amount      # parts sum to the parent
                assert all(rcv[c].parent == r.id for c in r.children)
            if r.status == receivable.OPEN:
                open_by_holder.setdefault(r.holder, []).append((r.id, r.amount))
                assert r.holder != r.debtor
            if r.id in self.settled:                                          # nothing after settlement
                record = r.to_record()
                assert self.settled[r.id] in (None, record)
                self.settled[r.id] = record
                assert r.status == receivable.SETTLED
        index = self.table("by_holder")
        assert sorted(index) == sorted(f"{org}/{rid}" for org, items in open_by_holder.items()
                                       for rid, _ in items)
        balances = self.table("balance")
        assert balances == {org: [len(items), sum(a for _, a in items)]
                            for org, items in open_by_holder.items()}


TestReceivable = ReceivableMachine.TestCase
TestReceivable.settings = SETTINGS


# -- kv, across the v1 -> v2 upgrade ----------------------------------------------------

KV_V2_AT = 15            # v1's two tables for the first 14 blocks (steps), then one record a key
KV_KEYS = st.sampled_from(["a", "b", "c/d"])
KV_WRITERS = st.sampled_from(["finance", "tax"])
KV_ROLES = {**ROLES, "tax": ("writer",)}
KV_GENESIS, _, KV_ACCOUNTS = make_genesis(accounts=tuple(KV_ROLES), roles=KV_ROLES, orgs=WORLD_ORGS,
                                          contract_versions={"kv": {"1": 1, "2": KV_V2_AT}})


class KvUpgradeMachine(ContractMachine):
    """Ownership and values behave the same under both versions and across the
    upgrade, and each key lives in one place: v1's tables or v2's entry."""
    contract = "kv"
    ok_changes_state = False

    def __init__(self) -> None:
        super().__init__()
        self.w = World(KV_GENESIS, KV_ACCOUNTS)
        self.owner: dict[str, str] = {}
        self.value: dict[str, Any] = {}

    @rule(org=KV_WRITERS, key=KV_KEYS, value=st.integers(0, 3))
    def put(self, org, key, value) -> None:
        receipt = self.do(org, "put", {"key": key, "value": value})
        if self.owner.get(key, org) != org:
            assert receipt.status == ERR_PERMISSION
            return
        assert receipt.ok, receipt
        self.owner.setdefault(key, org)
        self.value[key] = value

    @rule(org=KV_WRITERS, key=KV_KEYS)
    def delete(self, org, key) -> None:
        receipt = self.do(org, "delete", {"key": key})
        if self.owner.get(key, org) != org:
            assert receipt.status == ERR_PERMISSION
        elif key not in self.value:
            assert receipt.status == ERR_NOT_FOUND
        else:
            assert receipt.ok, receipt
            del self.value[key]

    @invariant()
    def one_place_per_key(self) -> None:
        entries, owners, data = self.table("entry"), self.table("owner"), self.table("data")
        if self.w.chain.height < KV_V2_AT:
            assert not entries
        assert not set(entries) & (set(owners) | set(data))
        assert set(data) <= set(owners)
        held = {k: e[0] for k, e in entries.items()} | owners
        assert held == self.owner
        for key in ("a", "b", "c/d"):
            assert query_state(self.w.chain.state.get, "kv", key) == self.value.get(key)


TestKvUpgrade = KvUpgradeMachine.TestCase
TestKvUpgrade.settings = SETTINGS
