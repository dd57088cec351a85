"""`trace` v1: farm-product traceability after GS1 EPCIS 2.0.

A lot (批次) is a quantity of one product: `commission`ed by its producer
with its origin (base, plot, harvest date), or made by `transform` (inputs
consumed, e.g. fresh leaf into 毛茶 into pressed cakes) or `aggregate`
(lots packed into a package for shipping; `disaggregate` unpacks it).  Every
event records what (lot, quantity), when (block time and height), where and
who (the organisation and account) and why (the event kind, a report hash,
a reason), and the tx id.

Custody: a lot's quantity is held by organisations (`holdings`).  Only a
holder ships, transforms, aggregates, sells or retires, and never more than
it holds; `ship` moves a quantity into a shipment addressed to another
organisation, which takes custody when it `receive`s it.  So quantities are
conserved, for every lot at every height:

    quantity = held + in transit + used (transformed, unpacked)
               + packed (inside a package) + sold + retired

Inspection: a lab (`lab` role) records a report's hash and pass/fail.  A
failed lot, and every lot made from it (its `ancestors` include the failed
one), can no longer be shipped, transformed, packed or sold; it can still be
received (it may be on a truck) and retired (destroyed).  The mark is read
through the lineage rather than copied downstream, so it also covers lots made
before the failing report and costs one read per ancestor.

State (tables of `trace`):
    lot/<lot>                                the lot record (class Lot)
    shipment/<id>                            [lot, quantity, from, to, state, height, tx,
                                              received_height]
    event/<lot>/<n:08>                       the lot's events (ledger.contracts.history)
    by_product/<product>/<height:012>/<lot>  -> lot
    by_origin/<base>/<height:012>/<lot>      -> lot
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ContractError
from ..receipt import ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION
from .base import CallContext, Contract, ContractState, Method, QueryReader, StateReader
from .blocktime import block_date, local_time
from .history import read_events, record_event
from .paging import height_part, page
from .schema import (HASH_HEX_PATTERN, Enum, Int, List, Record, Str, calendar_date, identifier,
                     organisation, text)

LOTS, SHIPMENTS, BY_PRODUCT, BY_ORIGIN = "lot", "shipment", "by_product", "by_origin"
COMMISSIONED, TRANSFORMED, PACKAGE = "commissioned", "transformed", "package"
IN_TRANSIT, RECEIVED = "in_transit", "received"
MAX_QUANTITY = 10**12
MAX_INPUTS = 20
MAX_PACKED = 50
MAX_HOLDERS = 64          # organisations holding part of one lot at once
MAX_ANCESTORS = 256       # lots one lot may descend from
MAX_ORIGINS = 16          # origin bases one lot may descend from
MAX_PROVENANCE_LOTS = 256
MAX_EVENTS_PER_LOT = 100  # in a provenance view


def _gtin_problem(value: str) -> str | None:
    digits = [int(c) for c in value.zfill(14)]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:13]))
    if (10 - total % 10) % 10 != digits[13]:
        return f"{value} has a wrong GS1 check digit"
    return None


def normalize_gtin(value: str) -> str:
    """GTIN-8/12/13/14 as the 14 digits GS1 Digital Link uses."""
    return value.zfill(14)


# -- the arguments, described once ----------------------------------------------------

LOT = identifier("the lot (batch) id, unique on the chain", "MH-2026-0412")
QUANTITY = Int("a quantity, in the lot's unit", 500, minimum=1, maximum=MAX_QUANTITY)
GTIN = Str("GS1 GTIN-8/12/13/14 of the product", "06901234567892", min_len=8, max_len=14,
           pattern=r"[0-9]{8}|[0-9]{12,14}", pattern_help="8, 12, 13 or 14 digits with a valid "
           "check digit", extra=_gtin_problem)
PRODUCT = identifier("the product code (lots are listed by it)", "puer-fresh-leaf")
UNIT = text("the unit of quantity", "kg", 16)
BASE = identifier("the production base (lots are listed by it)", "menghai-bulang")
LOT_QUANTITY = Record("a quantity of a lot", {"lot": LOT, "quantity": QUANTITY})
COMMISSION_ARGS = Record("trace.commission arguments", {
    "lot": LOT, "product": PRODUCT, "gtin": GTIN, "quantity": QUANTITY, "unit": UNIT,
    "origin": Record("where and when it was harvested", {
        "base": BASE,
        "plot": text("the plot within the base", "Laobanzhang plot 7", 64),
        "harvest_date": calendar_date("the harvest day (UTC+8), not after the block's day",
                                      "2026-04-12"),
    }),
}, optional=("gtin",))
INSPECT_ARGS = Record("trace.inspect arguments", {
    "lot": LOT,
    "report_hash": Str("blake2b/sha-256 hash of the inspection report", "cd" * 32, min_len=64,
                       max_len=64, pattern=HASH_HEX_PATTERN, pattern_help="64 lowercase hex digits"),
    "result": Enum("the inspection result", ("pass", "fail")),
    "report_id": identifier("the lab's report number", "YN-QC-2026-0815"),
}, optional=("report_id",))
TRANSFORM_ARGS = Record("trace.transform arguments", {
    "inputs": List("lots consumed, each with the quantity used", LOT_QUANTITY, max_items=MAX_INPUTS),
    "output": Record("the new lot made from them", {
        "lot": LOT, "product": PRODUCT, "gtin": GTIN, "quantity": QUANTITY, "unit": UNIT,
    }, optional=("gtin",)),
})
AGGREGATE_ARGS = Record("trace.aggregate arguments", {
    "package": identifier("the package id (e.g. an SSCC), a new lot of quantity 1",
                          "SSCC-069012340000000017"),
    "lots": List("lots packed, each with the quantity packed", LOT_QUANTITY, max_items=MAX_PACKED),
})
DISAGGREGATE_ARGS = Record("trace.disaggregate arguments", {
    "package": identifier("the package to unpack", "SSCC-069012340000000017")})
SHIP_ARGS = Record("trace.ship arguments", {
    "shipment": identifier("the shipment (waybill) id, unique on the chain", "WB-20261128-001"),
    "lot": LOT, "quantity": QUANTITY,
    "to": organisation("the receiving organisation", "kunming-tea-trading"),
})
RECEIVE_ARGS = Record("trace.receive arguments", {
    "shipment": identifier("the shipment to take custody of", "WB-20261128-001")})
SELL_ARGS = Record("trace.sell arguments", {"lot": LOT, "quantity": QUANTITY})
RETIRE_ARGS = Record("trace.retire arguments", {
    "lot": LOT, "quantity": QUANTITY, "reason": text("why (destroyed, expired, ...)", "expired", 200)})


# -- records ------------------------------------------------------------------------------

@dataclass(slots=True)
class Lot:
    lot: str
    kind: str
    product: str
    gtin: str | None
    unit: str
    quantity: int
    origin: list | None               # [base, plot, harvest_date] for commissioned lots
    origins: list[str]                # bases it descends from (sorted)
    creator: str
    height: int
    time_ms: int
    tx_id: bytes
    parents: list                     # [[lot, quantity]]
    ancestors: list[str]              # every lot it is made from, sorted
    holdings: list                    # [[org, quantity]] sorted by org, quantities > 0
    in_transit: int = 0
    used: int = 0
    packed: int = 0
    sold: int = 0
    retired: int = 0
    events: int = 0
    failed: list | None = None        # [lab org, report_hash, height, tx_id, time_ms]

    def to_record(self) -> list:
        return [self.lot, self.kind, self.product, self.gtin, self.unit, self.quantity, self.origin,
                self.origins, self.creator, self.height, self.time_ms, self.tx_id, self.parents,
                self.ancestors, self.holdings, self.in_transit, self.used, self.packed, self.sold,
                self.retired, self.events, self.failed]

    @classmethod
    def from_record(cls, rec: list) -> "Lot":
        return cls(*rec)

    def held_by(self, org: str) -> int:
        for holder, qty in self.holdings:
            if holder == org:
                return qty
        return 0


def _find(state: StateReader, lot_id: str) -> Lot | None:
    rec = state.get(lot_id, LOTS)
    return None if rec is None else Lot.from_record(rec)


def _load(state: StateReader, lot_id: str) -> Lot:
    lot = _find(state, lot_id)
    if lot is None:
        raise ContractError(ERR_NOT_FOUND, f"no lot {lot_id} (it must be commissioned first)")
    return lot


def _refuse_existing(state: StateReader, lot_id: str) -> None:
    lot = _find(state, lot_id)
    if lot is not None:
        raise ContractError(ERR_CONFLICT, f"lot {lot_id} already exists ({lot.kind} by {lot.creator} "
                                          f"at height {lot.height})")


FAILED_FIELD = 21      # Lot.failed in the record


def failure_of(state: StateReader, lot: Lot,
               memo: dict[str, list | None] | None = None) -> tuple[str, list] | None:
    """(failed lot, its failure record) for this lot or the first failed ancestor.
    `memo` (lot -> failure or None) lets a query that looks at many related lots
    read each ancestor once."""
    if lot.failed is not None:
        return lot.lot, lot.failed
    for ancestor in lot.ancestors:
        if memo is not None and ancestor in memo:
            failed = memo[ancestor]
        else:
            rec = state.get(ancestor, LOTS)
            failed = None if rec is None else rec[FAILED_FIELD]
            if memo is not None:
                memo[ancestor] = failed
        if failed is not None:
            return ancestor, failed
    return None


def _refuse_failed(state: StateReader, lot: Lot, action: str) -> None:
    failure = failure_of(state, lot)
    if failure is not None:
        failed_lot, (lab, _, height, _, _) = failure
        source = "it" if failed_lot == lot.lot else f"lot {failed_lot}, which it is made from,"
        raise ContractError(ERR_CONFLICT, f"lot {lot.lot}: {source} failed inspection by {lab} at "
                                          f"height {height}; it cannot be {action}")


def _take(ctx: CallContext, lot: Lot, quantity: int, action: str) -> None:
    """Remove `quantity` from the caller's holding (custody and conservation)."""
    held = lot.held_by(ctx.org)
    if held == 0:
        holders = ", ".join(f"{org} ({qty} {lot.unit})" for org, qty in lot.holdings) or "nobody"
        raise ContractError(ERR_PERMISSION, f"{ctx.org} does not hold lot {lot.lot} (held by "
                                            f"{holders}); only its custodian may {action} it")
    if quantity > held:
        raise ContractError(ERR_CONFLICT, f"{ctx.org} holds {held} {lot.unit} of lot {lot.lot}; "
                                          f"cannot {action} {quantity}")
    if quantity == held:
        lot.holdings = [h for h in lot.holdings if h[0] != ctx.org]
    else:
        for h in lot.holdings:
            if h[0] == ctx.org:
                h[1] -= quantity


def _give(lot: Lot, org: str, quantity: int) -> None:
    for h in lot.holdings:
        if h[0] == org:
            h[1] += quantity
            return
    if len(lot.holdings) >= MAX_HOLDERS:
        raise ContractError(ERR_CONFLICT, f"lot {lot.lot} is already held by {MAX_HOLDERS} "
                                          "organisations; consolidate it first")
    lot.holdings.append([org, quantity])
    lot.holdings.sort()


def _event(ctx: CallContext, state: ContractState, lot: Lot, kind: str, **details: Any) -> None:
    record_event(ctx, state, lot.lot, lot.events, kind, details)
    lot.events += 1


def _store(state: ContractState, lot: Lot) -> None:
    state.put(lot.lot, lot.to_record(), LOTS)


def _store_new(state: ContractState, lot: Lot, index: bool = True) -> None:
    _store(state, lot)
    if index:
        order = f"{height_part(lot.height)}/{lot.lot}"
        state.put(f"{lot.product}/{order}", lot.lot, BY_PRODUCT)
        for base in lot.origins:
            state.put(f"{base}/{order}", lot.lot, BY_ORIGIN)


def _consume(ctx: CallContext, state: ContractState, entries: list[dict], where: str,
             verb: str, done: str) -> tuple[list[Lot], list, list[str], list[str]]:
    """Load and take the listed lots from the caller: (lots, parents, ancestors, origins)."""
    lots, parents, seen = [], [], set()
    ancestors: set[str] = set()
    origins: set[str] = set()
    for i, entry in enumerate(entries):
        lot_id, quantity = entry["lot"], entry["quantity"]
        if lot_id in seen:
            raise ContractError(ERR_BAD_ARGS, f"args.{where}[{i}].lot: lot {lot_id} is listed twice")
        seen.add(lot_id)
        lot = _load(state, lot_id)
        _refuse_failed(state, lot, done)
        _take(ctx, lot, quantity, verb)
        lots.append(lot)
        parents.append([lot_id, quantity])
        ancestors.add(lot_id)
        ancestors.update(lot.ancestors)
        origins.update(lot.origins)
    if len(ancestors) > MAX_ANCESTORS:
        raise ContractError(ERR_CONFLICT, f"the new lot would descend from {len(ancestors)} lots; "
                                          f"at most {MAX_ANCESTORS}")
    if len(origins) > MAX_ORIGINS:
        raise ContractError(ERR_CONFLICT, f"the new lot would mix {len(origins)} origin bases; "
                                          f"at most {MAX_ORIGINS}")
    return lots, parents, sorted(ancestors), sorted(origins)


# -- methods ------------------------------------------------------------------------------

def commission(ctx: CallContext, state: ContractState, args: dict) -> dict:
    lot_id, origin = args["lot"], args["origin"]
    today = block_date(ctx.time_ms)
    if origin["harvest_date"] > today:
        raise ContractError(ERR_BAD_ARGS, f"args.origin.harvest_date: {origin['harvest_date']} is "
                                          f"after the block's date {today}")
    _refuse_existing(state, lot_id)
    gtin = args.get("gtin")
    lot = Lot(lot_id, COMMISSIONED, args["product"], None if gtin is None else normalize_gtin(gtin),
              args["unit"], args["quantity"], [origin["base"], origin["plot"], origin["harvest_date"]],
              [origin["base"]], ctx.org, ctx.height, ctx.time_ms, ctx.tx_id, [], [],
              [[ctx.org, args["quantity"]]])
    _event(ctx, state, lot, "commission", quantity=lot.quantity, unit=lot.unit, base=origin["base"],
           plot=origin["plot"], harvest_date=origin["harvest_date"])
    _store_new(state, lot)
    return {"lot": lot_id, "quantity": lot.quantity, "unit": lot.unit}


def inspect(ctx: CallContext, state: ContractState, args: dict) -> dict:
    lot = _load(state, args["lot"])
    result = args["result"]
    details: dict[str, Any] = {"result": result, "report_hash": args["report_hash"]}
    if "report_id" in args:
        details["report_id"] = args["report_id"]
    _event(ctx, state, lot, "inspect", **details)
    if result == "fail" and lot.failed is None:
        lot.failed = [ctx.org, args["report_hash"], ctx.height, ctx.tx_id, ctx.time_ms]
    _store(state, lot)
    return {"lot": lot.lot, "result": result}


def transform(ctx: CallContext, state: ContractState, args: dict) -> dict:
    out = args["output"]
    _refuse_existing(state, out["lot"])
    inputs, parents, ancestors, origins = _consume(ctx, state, args["inputs"], "inputs", "transform",
                                                        "transformed")
    gtin = out.get("gtin")
    lot = Lot(out["lot"], TRANSFORMED, out["product"], None if gtin is None else normalize_gtin(gtin),
              out["unit"], out["quantity"], None, origins, ctx.org, ctx.height, ctx.time_ms,
              ctx.tx_id, parents, ancestors, [[ctx.org, out["quantity"]]])
    for source, (_, quantity) in zip(inputs, parents):
        source.used += quantity
        _event(ctx, state, source, "transform", quantity=quantity, into=lot.lot)
        _store(state, source)
    _event(ctx, state, lot, "transform", quantity=lot.quantity, unit=lot.unit, inputs=parents)
    _store_new(state, lot)
    return {"lot": lot.lot, "quantity": lot.quantity, "unit": lot.unit}


def aggregate(ctx: CallContext, state: ContractState, args: dict) -> dict:
    package_id = args["package"]
    _refuse_existing(state, package_id)
    contents, parents, ancestors, origins = _consume(ctx, state, args["lots"], "lots", "pack", "packed")
    package = Lot(package_id, PACKAGE, PACKAGE, None, PACKAGE, 1, None, origins, ctx.org,
                  ctx.height, ctx.time_ms, ctx.tx_id, parents, ancestors, [[ctx.org, 1]])
    for content, (_, quantity) in zip(contents, parents):
        content.packed += quantity
        _event(ctx, state, content, "aggregate", quantity=quantity, package=package_id)
        _store(state, content)
    _event(ctx, state, package, "aggregate", contents=parents)
    _store_new(state, package, index=False)
    return {"package": package_id, "lots": len(parents)}


def disaggregate(ctx: CallContext, state: ContractState, args: dict) -> dict:
    package = _load(state, args["package"])
    if package.kind != PACKAGE:
        raise ContractError(ERR_BAD_ARGS, f"args.package: lot {package.lot} is not a package")
    _take(ctx, package, 1, "unpack")
    package.used += 1
    _event(ctx, state, package, "disaggregate", contents=package.parents)
    _store(state, package)
    for lot_id, quantity in package.parents:
        content = _load(state, lot_id)
        content.packed -= quantity
        _give(content, ctx.org, quantity)
        _event(ctx, state, content, "disaggregate", quantity=quantity, package=package.lot)
        _store(state, content)
    return {"package": package.lot, "lots": len(package.parents)}


def ship(ctx: CallContext, state: ContractState, args: dict) -> dict:
    shipment_id, to, quantity = args["shipment"], args["to"], args["quantity"]
    if to == ctx.org:
        raise ContractError(ERR_BAD_ARGS, f"args.to: {to} is the shipping organisation itself")
    if ctx.directory.organisation(to) is None:
        raise ContractError(ERR_NOT_FOUND, f"args.to: no organisation {to!r} on this chain")
    existing = state.get(shipment_id, SHIPMENTS)
    if existing is not None:
        raise ContractError(ERR_CONFLICT, f"shipment {shipment_id} already exists (lot {existing[0]}, "
                                          f"height {existing[5]})")
    lot = _load(state, args["lot"])
    _refuse_failed(state, lot, "shipped")
    _take(ctx, lot, quantity, "ship")
    lot.in_transit += quantity
    _event(ctx, state, lot, "ship", quantity=quantity, shipment=shipment_id, to=to)
    _store(state, lot)
    state.put(shipment_id, [lot.lot, quantity, ctx.org, to, IN_TRANSIT, ctx.height, ctx.tx_id, None],
              SHIPMENTS)
    return {"shipment": shipment_id, "lot": lot.lot, "quantity": quantity, "to": to}


def receive(ctx: CallContext, state: ContractState, args: dict) -> dict:
    shipment_id = args["shipment"]
    shipment = state.get(shipment_id, SHIPMENTS)
    if shipment is None:
        raise ContractError(ERR_NOT_FOUND, f"no shipment {shipment_id}")
    lot_id, quantity, sender, to, status = shipment[:5]
    if to != ctx.org:
        raise ContractError(ERR_PERMISSION, f"shipment {shipment_id} is addressed to {to}; "
                                            "only the receiver may confirm it")
    if status != IN_TRANSIT:
        raise ContractError(ERR_CONFLICT, f"shipment {shipment_id} was already received at "
                                          f"height {shipment[7]}")
    lot = _load(state, lot_id)
    lot.in_transit -= quantity
    _give(lot, ctx.org, quantity)
    _event(ctx, state, lot, "receive", quantity=quantity, shipment=shipment_id, **{"from": sender})
    _store(state, lot)
    shipment[4], shipment[7] = RECEIVED, ctx.height
    state.put(shipment_id, shipment, SHIPMENTS)
    return {"shipment": shipment_id, "lot": lot_id, "quantity": quantity}


def sell(ctx: CallContext, state: ContractState, args: dict) -> dict:
    lot = _load(state, args["lot"])
    _refuse_failed(state, lot, "sold")
    quantity = args["quantity"]
    _take(ctx, lot, quantity, "sell")
    lot.sold += quantity
    _event(ctx, state, lot, "sell", quantity=quantity)
    _store(state, lot)
    return {"lot": lot.lot, "sold": quantity}


def retire(ctx: CallContext, state: ContractState, args: dict) -> dict:
    lot = _load(state, args["lot"])
    quantity = args["quantity"]
    _take(ctx, lot, quantity, "retire")
    lot.retired += quantity
    _event(ctx, state, lot, "retire", quantity=quantity, reason=args["reason"])
    _store(state, lot)
    return {"lot": lot.lot, "retired": quantity}


METHODS: dict[str, Any] = {
    "commission": Method("Create a lot at its origin (the caller's organisation holds it)",
                         COMMISSION_ARGS, commission, role="producer"),
    "inspect": Method("Record an inspection report's hash and result; a failure marks the lot "
                      "and everything made from it", INSPECT_ARGS, inspect, role="lab"),
    "transform": Method("Consume held lots into a new lot", TRANSFORM_ARGS, transform),
    "aggregate": Method("Pack held lots into a new package", AGGREGATE_ARGS, aggregate),
    "disaggregate": Method("Unpack a held package; its contents return to the caller's holding",
                           DISAGGREGATE_ARGS, disaggregate),
    "ship": Method("Send a held quantity of a lot to another organisation", SHIP_ARGS, ship),
    "receive": Method("Take custody of a shipment addressed to the caller's organisation",
                      RECEIVE_ARGS, receive),
    "sell": Method("Sell a held quantity to consumers", SELL_ARGS, sell),
    "retire": Method("Take a held quantity out of the supply chain (destroyed, expired)",
                     RETIRE_ARGS, retire),
}


# -- queries ------------------------------------------------------------------------------

def lot_view(lot: Lot, failure: tuple[str, list] | None) -> dict[str, Any]:
    origin = None
    if lot.origin is not None:
        base, plot, harvest_date = lot.origin
        origin = {"base": base, "plot": plot, "harvest_date": harvest_date}
    inspection = None
    if failure is not None:
        failed_lot, (lab, report_hash, height, tx_id, time_ms) = failure
        inspection = {"lot": failed_lot, "lab": lab, "report_hash": report_hash, "height": height,
                      "tx_id": tx_id.hex(), "time": local_time(time_ms)}
    return {
        "lot": lot.lot, "kind": lot.kind, "product": lot.product, "gtin": lot.gtin, "unit": lot.unit,
        "quantity": lot.quantity, "status": "ok" if failure is None else "failed_inspection",
        "failed_inspection": inspection, "origin": origin, "origins": lot.origins,
        "creator": lot.creator, "created_height": lot.height, "created_time": local_time(lot.time_ms),
        "created_tx_id": lot.tx_id.hex(),
        "inputs": [{"lot": p, "quantity": q} for p, q in lot.parents],
        "holdings": [{"org": org, "quantity": q} for org, q in lot.holdings],
        "in_transit": lot.in_transit, "used": lot.used, "packed": lot.packed, "sold": lot.sold,
        "retired": lot.retired,
    }


def find(reader: StateReader, lot_id: str) -> Lot | None:
    return _find(reader, lot_id)


def view(reader: StateReader, lot_id: str, memo: dict | None = None) -> dict[str, Any] | None:
    lot = _find(reader, lot_id)
    return None if lot is None else lot_view(lot, failure_of(reader, lot, memo))


def provenance(reader: QueryReader, lot_id: str) -> dict[str, Any] | None:
    """The consumer's view: the lot, then every lot it is made from (nearest
    first), each with its events in order; bounded by MAX_PROVENANCE_LOTS lots
    and MAX_EVENTS_PER_LOT events per lot (`truncated` says if it was cut)."""
    lot = _find(reader, lot_id)
    if lot is None:
        return None
    order, queue, seen, truncated = [], [lot], {lot.lot}, False
    while queue:
        current = queue.pop(0)
        if len(order) >= MAX_PROVENANCE_LOTS:
            truncated = True
            break
        order.append(current)
        for parent_id, _ in current.parents:
            if parent_id not in seen:
                seen.add(parent_id)
                parent = _find(reader, parent_id)
                if parent is not None:
                    queue.append(parent)
    memo = {item.lot: item.failed for item in order}
    entries = []
    for item in order:
        events = read_events(reader, item.lot, MAX_EVENTS_PER_LOT)
        truncated = truncated or item.events > len(events)
        entries.append({**lot_view(item, failure_of(reader, item, memo)), "events": events,
                        "event_count": item.events})
    return {"lot": entries[0], "upstream": entries[1:], "truncated": truncated}


def _list(reader: QueryReader, table: str, group: str, after: str | None,
          limit: int) -> tuple[list[dict], str | None]:
    rows, cursor = page(reader, table, group, after, limit)
    memo: dict[str, list | None] = {}
    views = [v for _, lot_id in rows if (v := view(reader, lot_id, memo)) is not None]
    return views, cursor


def by_product(reader: QueryReader, product: str, after: str | None, limit: int):
    return _list(reader, BY_PRODUCT, product, after, limit)


def by_origin(reader: QueryReader, base: str, after: str | None, limit: int):
    return _list(reader, BY_ORIGIN, base, after, limit)


CONTRACT = Contract("trace", METHODS, view)
