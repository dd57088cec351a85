"""`fiscal`: electronic fiscal receipts that can be reimbursed only once.

A tax department (or any writer) issues a receipt under a unique number; a
claimant's reimbursement is recorded on it (who, through which account and
organisation, at which height, in which tx), and a second reimbursement of the
same receipt is refused — on every node, since it is decided by the ledger.

Stored record (msgpack array, compact):
    [amount_cents, payer, issuer_account, issuer_org, issued_height, issued_tx,
     reimbursement]        reimbursement: nil or
    [claimant, account, org, height, tx_id]
`query` turns it into a readable map.
"""

from __future__ import annotations

from typing import Any

from ..errors import ContractError
from ..receipt import ERR_CONFLICT, ERR_NOT_FOUND
from .base import (CallContext, Contract, ContractState, StateReader, arg_positive_int,
                   arg_str, expect_args, require_role)

MAX_RECEIPT_NO_LEN = 128
MAX_PARTY_LEN = 256
MAX_AMOUNT_CENTS = 2**63 - 1


def issue(ctx: CallContext, state: ContractState, args: Any) -> None:
    require_role(ctx, "writer")
    receipt_no, amount, payer = expect_args(args, "receipt_no", "amount_cents", "payer")
    arg_str(receipt_no, "receipt_no", MAX_RECEIPT_NO_LEN)
    arg_positive_int(amount, "amount_cents", MAX_AMOUNT_CENTS)
    arg_str(payer, "payer", MAX_PARTY_LEN)
    if state.get(receipt_no) is not None:
        raise ContractError(ERR_CONFLICT, f"receipt {receipt_no!r} already issued")
    state.put(receipt_no, [amount, payer, ctx.account.name, ctx.org, ctx.height, ctx.tx_id, None])


def reimburse(ctx: CallContext, state: ContractState, args: Any) -> int:
    """Returns the amount reimbursed, in cents."""
    require_role(ctx, "writer")
    receipt_no, claimant = expect_args(args, "receipt_no", "claimant")
    arg_str(receipt_no, "receipt_no", MAX_RECEIPT_NO_LEN)
    arg_str(claimant, "claimant", MAX_PARTY_LEN)
    record = state.get(receipt_no)
    if record is None:
        raise ContractError(ERR_NOT_FOUND, f"no fiscal receipt {receipt_no!r}")
    done = record[6]
    if done is not None:
        raise ContractError(ERR_CONFLICT, f"receipt {receipt_no!r} already reimbursed to "
                                          f"{done[0]!r} at height {done[3]}")
    record[6] = [claimant, ctx.account.name, ctx.org, ctx.height, ctx.tx_id]
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


CONTRACT = Contract("fiscal", {"issue": issue, "reimburse": reimburse}, query)
