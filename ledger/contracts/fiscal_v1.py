"""`fiscal` v1: the first receipt rules (any writer issues, any writer
reimburses, once).  Superseded by v2 (ledger/contracts/fiscal.py) and kept
unchanged, so a chain whose genesis activates v1 for a while replays its
blocks to the very same state.  New chains run v2 from height 1.

Stored record (table `data`, key = receipt number, msgpack array):
    [amount_cents, payer, issuer_account, issuer_org, issued_height, issued_tx,
     reimbursement]        reimbursement: nil or
    [claimant, account, org, height, tx_id]
`query` turns it into a readable map.
"""

from __future__ import annotations

from typing import Any

from ..errors import ContractError
from ..receipt import ERR_CONFLICT, ERR_NOT_FOUND
from .base import CallContext, Contract, ContractState, Method, StateReader
from .schema import Int, Record, Str

MAX_RECEIPT_NO_LEN = 128
MAX_PARTY_LEN = 256
MAX_AMOUNT_CENTS = 2**63 - 1

RECEIPT_NO = Str("the receipt number", "FP-2026-0001", max_len=MAX_RECEIPT_NO_LEN)


def issue(ctx: CallContext, state: ContractState, args: dict) -> None:
    receipt_no = args["receipt_no"]
    if state.get(receipt_no) is not None:
        raise ContractError(ERR_CONFLICT, f"receipt {receipt_no!r} already issued")
    state.put(receipt_no, [args["amount_cents"], args["payer"], ctx.account.name, ctx.org,
                           ctx.height, ctx.tx_id, None])


def reimburse(ctx: CallContext, state: ContractState, args: dict) -> int:
    """Returns the amount reimbursed, in cents."""
    receipt_no = args["receipt_no"]
    record = state.get(receipt_no)
    if record is None:
        raise ContractError(ERR_NOT_FOUND, f"no fiscal receipt {receipt_no!r}")
    done = record[6]
    if done is not None:
        raise ContractError(ERR_CONFLICT, f"receipt {receipt_no!r} already reimbursed to "
                                          f"{done[0]!r} at height {done[3]}")
    record[6] = [args["claimant"], ctx.account.name, ctx.org, ctx.height, ctx.tx_id]
    state.put(receipt_no, record)
    return record[0]


def query(state: StateReader, receipt_no: str) -> dict | None:
    record = state.get(receipt_no)
    if record is None:
        return None
    amount, payer, issuer, issuer_org, height, tx_id, done = record
    reimbursed = None
    if done is not None:
        claimant, account, org, r_height, r_tx = done
        reimbursed = {"claimant": claimant, "account": account, "org": org,
                      "height": r_height, "tx_id": r_tx}
    return {"receipt_no": receipt_no, "amount_cents": amount, "payer": payer,
            "issuer": issuer, "issuer_org": issuer_org, "issued_height": height,
            "issued_tx_id": tx_id, "reimbursed": reimbursed}


METHODS: dict[str, Any] = {
    "issue": Method("Issue a receipt under a new number", Record("fiscal v1 issue arguments", {
        "receipt_no": RECEIPT_NO,
        "amount_cents": Int("the amount in cents", 12550, minimum=1, maximum=MAX_AMOUNT_CENTS),
        "payer": Str("who paid", "Hotel Lijiang", max_len=MAX_PARTY_LEN)}), issue, role="writer"),
    "reimburse": Method("Reimburse a receipt, once", Record("fiscal v1 reimburse arguments", {
        "receipt_no": RECEIPT_NO,
        "claimant": Str("who is reimbursed", "Li Wei", max_len=MAX_PARTY_LEN)}),
        reimburse, role="writer"),
}
CONTRACT = Contract("fiscal", METHODS, query, version=1)
