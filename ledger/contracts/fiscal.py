"""`fiscal` v2: fiscal electronic receipts (财政电子票据), issued once,
voided (冲红) only by their issuer, reimbursed at most up to their total.

A receipt is identified by its code (票据代码, 8 digits) and number (票据号码,
10 digits); its key is "<code>-<number>".  It carries the issuing unit (the
caller's organisation, which needs the `issuer` role), the payer's name and
identity number as a salted hash only, line items (amount = quantity x unit
price, in cents; the total is their sum), the block time it was issued at,
and a check code (校验码).

Check code: the first 8 bytes of blake2b-256(CHECK_CODE_DOMAIN ||
msgpack([tx_id, code, number, issuer_org, total_cents])) as a big-endian
integer, modulo 10**10, written as 10 decimal digits.  Anyone holding the tx
can recompute it; nobody can predict it before the tx exists.

Payer identity numbers never reach the chain: the client sends
`payer_id_hash` = scrypt(id, salt = "ynchain/fiscal/payer-id/v1/" + chain id,
n=2**14, r=8, p=1, 32 bytes) in lowercase hex, the id upper-cased with
spaces removed (`payer_id_hash` below).  The salt is per chain, so the same
person has the same hash on one chain (receipts by payer work) and unrelated
hashes on others; scrypt makes each guess cost ~50 ms.  An identity number is
guessable from a person's birth date and region, so this hides the number
from casual readers and cross-chain linking, not from a determined search.

Reimbursement (报销), in two steps by an organisation with the `reimburser`
role: `claim` locks an amount, then the same organisation `complete`s
(reimbursed) or `release`s it.  Each organisation holds at most one claim on
a receipt; claims by several organisations (medical insurance, then a
commercial insurer) may share a receipt while locked + reimbursed stays at
or below the total.  Released claims are removed (the tx history keeps them).

`void` (冲红) by the issuing unit, while no claim exists, creates a red
receipt under its own code and number that refers to the original; the
original records the red receipt that voided it.  Red receipts cannot be
claimed or voided.

State (tables of `fiscal`):
    receipt/<code>-<number>                      the receipt record (below)
    by_issuer/<org>/<height:012>/<code>-<number> -> "<code>-<number>"
    by_payer/<payer hash>/<height:012>/<code>-<number> -> "<code>-<number>"
Receipt record (msgpack array):
    [code, number, kind ("blue"|"red"), issuer_org, issuer_account, payer_name,
     payer_id_hash, items [[name, quantity, unit, unit_price_cents, amount_cents]],
     total_cents, check_code, issued_ms, issued_height, issued_tx,
     red_of (key or nil), voided_by (key or nil), void ([reason, account, height, tx, ms] or nil),
     claims [[org, account, amount_cents, state, height, tx, ms, done_height, done_tx, done_ms]]]
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from .. import codec
from ..crypto import hash256
from ..errors import ContractError
from ..receipt import ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION
from . import fiscal_v1
from .base import CallContext, Contract, ContractState, Method, QueryReader, StateReader
from .blocktime import local_time
from .paging import height_part, page
from .schema import HASH_HEX_PATTERN, Int, List, Record, Str, cents, organisation, text

RECEIPTS, BY_ISSUER, BY_PAYER = "receipt", "by_issuer", "by_payer"
BLUE, RED = "blue", "red"
LOCKED, REIMBURSED = "locked", "reimbursed"
CHECK_CODE_DOMAIN = b"ynchain/fiscal/check-code/v1\x00"
PAYER_SALT_PREFIX = "ynchain/fiscal/payer-id/v1/"
MAX_ITEMS = 50
MAX_QUANTITY = 1_000_000
KEY_RE = re.compile(r"[0-9]{8}-[0-9]{10}")
_PAYER_ID_RE = re.compile(r"[0-9A-Za-z]{1,32}")

# -- the arguments, described once ----------------------------------------------------

CODE = Str("票据代码, the receipt code", "53010126", min_len=8, max_len=8,
           pattern=r"[0-9]{8}", pattern_help="8 digits")
NUMBER = Str("票据号码, the receipt number", "0000001234", min_len=10, max_len=10,
             pattern=r"[0-9]{10}", pattern_help="10 digits")
ITEM = Record("one line of the receipt", {
    "name": text("what was paid for", "CT scan", 64),
    "quantity": Int("how many units", 1, minimum=1, maximum=MAX_QUANTITY),
    "unit": text("the unit of quantity", "次", 16),
    "unit_price_cents": cents("price of one unit, in cents", 38000),
    "amount_cents": cents("quantity x unit price, in cents", 38000),
})
ISSUE_ARGS = Record("fiscal.issue arguments", {
    "code": CODE,
    "number": NUMBER,
    "payer_name": text("the payer's name as printed on the receipt", "Li Wei", 64),
    "payer_id_hash": Str("salted hash of the payer's identity number (see fiscal.payer_id_hash; "
                         "the CLI computes it from --payer-id)", "ab" * 32, min_len=64, max_len=64,
                         pattern=HASH_HEX_PATTERN, pattern_help="64 lowercase hex digits"),
    "items": List("the receipt's lines", ITEM, max_items=MAX_ITEMS),
    "total_cents": cents("the total, in cents: the sum of the items' amounts", 38000),
})
VOID_ARGS = Record("fiscal.void arguments", {
    "code": CODE,
    "number": NUMBER,
    "red_code": Str("code of the red receipt that voids it", "53010126", min_len=8, max_len=8,
                    pattern=r"[0-9]{8}", pattern_help="8 digits"),
    "red_number": Str("number of the red receipt", "0000001235", min_len=10, max_len=10,
                      pattern=r"[0-9]{10}", pattern_help="10 digits"),
    "reason": text("why it is voided", "wrong payer name", 200),
})
CLAIM_ARGS = Record("fiscal.claim arguments", {
    "code": CODE,
    "number": NUMBER,
    "amount_cents": cents("the amount to lock for reimbursement, in cents", 30000),
})
SETTLE_ARGS = Record("receipt and claim", {"code": CODE, "number": NUMBER})


# -- records ------------------------------------------------------------------------------

def receipt_key(code: str, number: str) -> str:
    return f"{code}-{number}"


def compute_check_code(tx_id: bytes, code: str, number: str, issuer_org: str, total_cents: int) -> str:
    digest = hash256(CHECK_CODE_DOMAIN + codec.pack([tx_id, code, number, issuer_org, total_cents]))
    return f"{int.from_bytes(digest[:8], 'big') % 10**10:010d}"


def payer_id_hash(chain_id: str, id_number: str) -> str:
    """The salted hash a client sends instead of an identity number (module doc)."""
    normalized = "".join(id_number.split()).upper()
    if not _PAYER_ID_RE.fullmatch(normalized):
        raise ValueError("an identity number is 1..32 letters and digits")
    salt = (PAYER_SALT_PREFIX + chain_id).encode()
    return hashlib.scrypt(normalized.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32).hex()


@dataclass(slots=True)
class Claim:
    org: str
    account: str
    amount: int
    state: str
    height: int
    tx_id: bytes
    time_ms: int
    done_height: int | None = None
    done_tx: bytes | None = None
    done_ms: int | None = None

    def to_record(self) -> list:
        return [self.org, self.account, self.amount, self.state, self.height, self.tx_id,
                self.time_ms, self.done_height, self.done_tx, self.done_ms]


@dataclass(slots=True)
class FiscalReceipt:
    code: str
    number: str
    kind: str
    issuer_org: str
    issuer_account: str
    payer_name: str
    payer_id_hash: str
    items: list
    total: int
    check_code: str
    issued_ms: int
    issued_height: int
    issued_tx: bytes
    red_of: str | None
    voided_by: str | None
    void: list | None
    claims: list[Claim]

    @property
    def key(self) -> str:
        return receipt_key(self.code, self.number)

    def to_record(self) -> list:
        return [self.code, self.number, self.kind, self.issuer_org, self.issuer_account,
                self.payer_name, self.payer_id_hash, self.items, self.total, self.check_code,
                self.issued_ms, self.issued_height, self.issued_tx, self.red_of, self.voided_by,
                self.void, [c.to_record() for c in self.claims]]

    @classmethod
    def from_record(cls, rec: list) -> "FiscalReceipt":
        return cls(*rec[:16], [Claim(*c) for c in rec[16]])

    def amount_in(self, state: str) -> int:
        return sum(c.amount for c in self.claims if c.state == state)

    def status(self) -> str:
        if self.kind == RED:
            return "red"
        if self.voided_by is not None:
            return "voided"
        if any(c.state == LOCKED for c in self.claims):
            return "locked"
        reimbursed = self.amount_in(REIMBURSED)
        if reimbursed == self.total:
            return "reimbursed"
        return "partially_reimbursed" if reimbursed else "valid"

    def claim_of(self, org: str) -> Claim | None:
        return next((c for c in self.claims if c.org == org), None)


def _load(state: StateReader, code: str, number: str) -> FiscalReceipt:
    rec = state.get(receipt_key(code, number), RECEIPTS)
    if rec is None:
        raise ContractError(ERR_NOT_FOUND, f"no fiscal receipt {receipt_key(code, number)}")
    return FiscalReceipt.from_record(rec)


def _store(state: ContractState, receipt: FiscalReceipt) -> None:
    state.put(receipt.key, receipt.to_record(), RECEIPTS)


def _store_new(state: ContractState, receipt: FiscalReceipt) -> None:
    """A new receipt and its index entries."""
    key = receipt.key
    order = f"{height_part(receipt.issued_height)}/{key}"
    _store(state, receipt)
    state.put(f"{receipt.issuer_org}/{order}", key, BY_ISSUER)
    state.put(f"{receipt.payer_id_hash}/{order}", key, BY_PAYER)


def _refuse_taken(state: StateReader, code: str, number: str) -> None:
    existing = state.get(receipt_key(code, number), RECEIPTS)
    if existing is not None:
        raise ContractError(ERR_CONFLICT, f"receipt {receipt_key(code, number)} already exists "
                                          f"(issued by {existing[3]} at height {existing[11]})")


def _claimable(receipt: FiscalReceipt) -> None:
    if receipt.kind == RED:
        raise ContractError(ERR_CONFLICT, f"receipt {receipt.key} is a red receipt "
                                          f"(it voids {receipt.red_of}); it cannot be reimbursed")
    if receipt.voided_by is not None:
        raise ContractError(ERR_CONFLICT, f"receipt {receipt.key} was voided by red receipt "
                                          f"{receipt.voided_by}; it cannot be reimbursed")


# -- methods ------------------------------------------------------------------------------

def issue(ctx: CallContext, state: ContractState, args: dict) -> dict:
    code, number, total = args["code"], args["number"], args["total_cents"]
    items = args["items"]
    rows, amount_sum = [], 0
    for i, item in enumerate(items):
        quantity, price, amount = item["quantity"], item["unit_price_cents"], item["amount_cents"]
        if amount != quantity * price:
            raise ContractError(ERR_BAD_ARGS, f"args.items[{i}].amount_cents: {amount} is not "
                                              f"quantity {quantity} x unit_price_cents {price} "
                                              f"= {quantity * price}")
        amount_sum += amount
        rows.append([item["name"], quantity, item["unit"], price, amount])
    if total != amount_sum:
        raise ContractError(ERR_BAD_ARGS, f"args.total_cents: {total} is not the sum of the "
                                          f"items' amounts, {amount_sum}")
    _refuse_taken(state, code, number)
    check_code = compute_check_code(ctx.tx_id, code, number, ctx.org, total)
    receipt = FiscalReceipt(code, number, BLUE, ctx.org, ctx.account.name, args["payer_name"],
                            args["payer_id_hash"], rows, total, check_code, ctx.time_ms,
                            ctx.height, ctx.tx_id, None, None, None, [])
    _store_new(state, receipt)
    return {"receipt": receipt.key, "check_code": check_code, "total_cents": total}


def void(ctx: CallContext, state: ContractState, args: dict) -> dict:
    receipt = _load(state, args["code"], args["number"])
    if receipt.issuer_org != ctx.org:
        raise ContractError(ERR_PERMISSION, f"receipt {receipt.key} was issued by {receipt.issuer_org}; "
                                            "only its issuing unit may void it")
    if receipt.kind == RED:
        raise ContractError(ERR_CONFLICT, f"receipt {receipt.key} is a red receipt; it cannot be voided")
    if receipt.voided_by is not None:
        raise ContractError(ERR_CONFLICT, f"receipt {receipt.key} was already voided by red receipt "
                                          f"{receipt.voided_by} at height {receipt.void[2]}")
    if receipt.claims:
        held = ", ".join(f"{c.org} ({c.state} {c.amount} cents)" for c in receipt.claims)
        raise ContractError(ERR_CONFLICT, f"receipt {receipt.key}: reimbursement has begun ({held}); "
                                          "it can no longer be voided")
    red_code, red_number = args["red_code"], args["red_number"]
    _refuse_taken(state, red_code, red_number)
    red = FiscalReceipt(red_code, red_number, RED, ctx.org, ctx.account.name, receipt.payer_name,
                        receipt.payer_id_hash, receipt.items, receipt.total,
                        compute_check_code(ctx.tx_id, red_code, red_number, ctx.org, receipt.total),
                        ctx.time_ms, ctx.height, ctx.tx_id, receipt.key, None, None, [])
    receipt.voided_by = red.key
    receipt.void = [args["reason"], ctx.account.name, ctx.height, ctx.tx_id, ctx.time_ms]
    _store(state, receipt)
    _store_new(state, red)
    return {"receipt": receipt.key, "red_receipt": red.key, "red_check_code": red.check_code}


def claim(ctx: CallContext, state: ContractState, args: dict) -> dict:
    receipt = _load(state, args["code"], args["number"])
    _claimable(receipt)
    mine = receipt.claim_of(ctx.org)
    if mine is not None:
        what = ("holds a locked claim of" if mine.state == LOCKED else "already reimbursed")
        raise ContractError(ERR_CONFLICT, f"{ctx.org} {what} {mine.amount} cents on receipt "
                                          f"{receipt.key} (height {mine.height}); an organisation "
                                          "reimburses a receipt once")
    amount = args["amount_cents"]
    locked, reimbursed = receipt.amount_in(LOCKED), receipt.amount_in(REIMBURSED)
    available = receipt.total - locked - reimbursed
    if amount > available:
        raise ContractError(ERR_CONFLICT, f"receipt {receipt.key}: claim of {amount} cents exceeds "
                                          f"what remains ({available} of {receipt.total} cents; "
                                          f"{locked} locked, {reimbursed} reimbursed)")
    receipt.claims.append(Claim(ctx.org, ctx.account.name, amount, LOCKED, ctx.height, ctx.tx_id,
                                ctx.time_ms))
    _store(state, receipt)
    return {"receipt": receipt.key, "locked_cents": amount, "available_cents": available - amount}


def _locked_claim(ctx: CallContext, receipt: FiscalReceipt) -> Claim:
    mine = receipt.claim_of(ctx.org)
    if mine is None or mine.state != LOCKED:
        held = "" if mine is None else f" (its claim is already {mine.state})"
        raise ContractError(ERR_CONFLICT, f"{ctx.org} holds no locked claim on receipt "
                                          f"{receipt.key}{held}")
    return mine


def complete(ctx: CallContext, state: ContractState, args: dict) -> dict:
    receipt = _load(state, args["code"], args["number"])
    mine = _locked_claim(ctx, receipt)
    mine.state = REIMBURSED
    mine.done_height, mine.done_tx, mine.done_ms = ctx.height, ctx.tx_id, ctx.time_ms
    _store(state, receipt)
    return {"receipt": receipt.key, "reimbursed_cents": mine.amount,
            "total_reimbursed_cents": receipt.amount_in(REIMBURSED)}


def release(ctx: CallContext, state: ContractState, args: dict) -> dict:
    receipt = _load(state, args["code"], args["number"])
    mine = _locked_claim(ctx, receipt)
    receipt.claims.remove(mine)
    _store(state, receipt)
    return {"receipt": receipt.key, "released_cents": mine.amount}


METHODS: dict[str, Any] = {
    "issue": Method("Issue a receipt (the caller's organisation is the issuing unit)",
                    ISSUE_ARGS, issue, role="issuer"),
    "void": Method("Void (冲红) a receipt before any reimbursement, creating its red receipt",
                   VOID_ARGS, void, role="issuer"),
    "claim": Method("Lock an amount of a receipt for reimbursement (报销锁定)",
                    CLAIM_ARGS, claim, role="reimburser"),
    "complete": Method("Mark the caller's locked claim reimbursed (已报销)",
                       Record("fiscal.complete arguments", SETTLE_ARGS.fields), complete,
                       role="reimburser"),
    "release": Method("Give up the caller's locked claim",
                      Record("fiscal.release arguments", SETTLE_ARGS.fields), release,
                      role="reimburser"),
}


# -- queries ------------------------------------------------------------------------------

def _amounts(receipt: FiscalReceipt) -> dict[str, int]:
    locked, reimbursed = receipt.amount_in(LOCKED), receipt.amount_in(REIMBURSED)
    return {"total_cents": receipt.total, "locked_cents": locked, "reimbursed_cents": reimbursed,
            "available_cents": 0 if receipt.kind == RED or receipt.voided_by
            else receipt.total - locked - reimbursed}


def receipt_view(receipt: FiscalReceipt) -> dict[str, Any]:
    void_info = None
    if receipt.void is not None:
        reason, account, height, tx_id, time_ms = receipt.void
        void_info = {"reason": reason, "account": account, "height": height, "tx_id": tx_id.hex(),
                     "time": local_time(time_ms)}
    return {
        "receipt": receipt.key, "code": receipt.code, "number": receipt.number, "kind": receipt.kind,
        "status": receipt.status(), "issuer_org": receipt.issuer_org,
        "issuer_account": receipt.issuer_account, "payer_name": receipt.payer_name,
        "payer_id_hash": receipt.payer_id_hash,
        "items": [{"name": n, "quantity": q, "unit": u, "unit_price_cents": p, "amount_cents": a}
                  for n, q, u, p, a in receipt.items],
        **_amounts(receipt), "check_code": receipt.check_code,
        "issued_time": local_time(receipt.issued_ms), "issued_ms": receipt.issued_ms,
        "issued_height": receipt.issued_height, "issued_tx_id": receipt.issued_tx.hex(),
        "red_of": receipt.red_of, "voided_by": receipt.voided_by, "void": void_info,
        "claims": [{"org": c.org, "account": c.account, "amount_cents": c.amount, "state": c.state,
                    "height": c.height, "tx_id": c.tx_id.hex(), "time": local_time(c.time_ms),
                    "done_height": c.done_height,
                    "done_tx_id": None if c.done_tx is None else c.done_tx.hex()}
                   for c in receipt.claims],
    }


def find(reader: StateReader, code: str, number: str) -> FiscalReceipt | None:
    rec = reader.get(receipt_key(code, number), RECEIPTS)
    return None if rec is None else FiscalReceipt.from_record(rec)


def verify(reader: StateReader, code: str, number: str, check_code: str,
           amount_cents: int) -> dict[str, Any]:
    """查验: does a receipt with exactly these four facts exist, and what is its
    status?  A mismatch answers like an absent receipt, so the answer reveals
    nothing to someone who does not hold the receipt."""
    receipt = find(reader, code, number)
    if receipt is None or receipt.check_code != check_code or receipt.total != amount_cents:
        return {"found": False, "receipt": receipt_key(code, number)}
    return {"found": True, "receipt": receipt.key, "kind": receipt.kind, "status": receipt.status(),
            "issuer_org": receipt.issuer_org, **_amounts(receipt),
            "issued_time": local_time(receipt.issued_ms), "issued_height": receipt.issued_height,
            "red_of": receipt.red_of, "voided_by": receipt.voided_by}


def _list(reader: QueryReader, table: str, group: str, after: str | None,
          limit: int) -> tuple[list[dict], str | None]:
    rows, cursor = page(reader, table, group, after, limit)
    views = []
    for _, key in rows:
        code, _, number = key.partition("-")
        receipt = find(reader, code, number)
        if receipt is not None:       # an index entry is written with its receipt, always
            views.append(receipt_view(receipt))
    return views, cursor


def by_issuer(reader: QueryReader, org: str, after: str | None, limit: int):
    return _list(reader, BY_ISSUER, org, after, limit)


def by_payer(reader: QueryReader, payer_hash: str, after: str | None, limit: int):
    return _list(reader, BY_PAYER, payer_hash, after, limit)


def query(reader: StateReader, key: str) -> Any | None:
    """GET /state/fiscal/<key>: a v2 receipt for "<code>-<number>", else a v1 record."""
    if KEY_RE.fullmatch(key):
        code, _, number = key.partition("-")
        receipt = find(reader, code, number)
        return None if receipt is None else receipt_view(receipt)
    return fiscal_v1.query(reader, key)


CONTRACT = Contract("fiscal", METHODS, query, version=2)
