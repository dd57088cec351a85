"""Admission rules for transactions, shared by the mempool, proposal
validation and the execution engine, so all three agree on what is valid.

Each check returns None or one of the reason strings below (used verbatim in
HTTP answers and as metrics labels).  Signatures are checked with
`tx.verify_signature()` by the callers, who cache the result: it is the one
expensive check, done once per tx per node.

Replay protection: a tx is a duplicate iff its id is committed.  The tx index
is permanent, so this holds forever; the validity window only bounds how long
a tx can wait, and so how much a mempool must remember.
"""

from __future__ import annotations

from typing import Callable

from .genesis import Genesis
from .tx import Transaction

MALFORMED = "malformed"            # bytes that do not decode as a transaction
TOO_LARGE = "too_large"            # encoded tx over ledger.tx.MAX_TX_BYTES
WRONG_CHAIN = "wrong_chain"
UNKNOWN_SENDER = "unknown_sender"  # sender is no genesis account
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"                # cannot enter the next block any more
TOO_FAR_AHEAD = "too_far_ahead"    # valid_until beyond the validity window
DUPLICATE = "duplicate"            # already committed (or already pending, for a mempool)
MEMPOOL_FULL = "mempool_full"

REASONS = (MALFORMED, TOO_LARGE, WRONG_CHAIN, UNKNOWN_SENDER, BAD_SIGNATURE, EXPIRED,
           TOO_FAR_AHEAD, DUPLICATE, MEMPOOL_FULL)


def static_problem(tx: Transaction, genesis: Genesis) -> str | None:
    """What is wrong with the tx whatever the height (not the signature)."""
    if tx.chain_id != genesis.chain_id:
        return WRONG_CHAIN
    if genesis.account_by_key(tx.sender) is None:
        return UNKNOWN_SENDER
    return None


def window_problem(tx: Transaction, height: int, genesis: Genesis) -> str | None:
    """Whether the tx may enter block height+1, `height` being the last
    committed height."""
    if tx.valid_until <= height:
        return EXPIRED
    if tx.valid_until > height + genesis.consensus.tx_validity_window:
        return TOO_FAR_AHEAD
    return None


def duplicate_problem(tx: Transaction, is_committed: Callable[[bytes], bool]) -> str | None:
    return DUPLICATE if is_committed(tx.id) else None
