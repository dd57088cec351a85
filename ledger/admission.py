"""Admission rules for transactions, shared by the mempool, proposal
validation and the execution engine, so all three agree on what is valid.

Each check returns None or one of the reason strings below (used verbatim in
HTTP answers and as metrics labels).  Signatures are checked with
`tx.verify_signature()` by the callers, who cache the result: it is the one
expensive check, done once per tx per node.

The sender is resolved through the consortium configuration in force
(ledger.consortium.ChainConfig): the mempool uses the committed one and the
wall clock, execution the one in force for the tx (a change earlier in the
same block counts) and the block's time.  Proposal validation applies only
`static_problem`: a revocation or an expiry may come between a primary's
admission and the block, and refusing such a proposal would stall the chain;
execution refuses those txs with a receipt instead.

Replay protection: a tx is a duplicate iff its id is committed.  The tx index
is permanent, so this holds forever; the validity window only bounds how long
a tx can wait, and so how much a mempool must remember.
"""

from __future__ import annotations

from typing import Callable

from .consortium import ACTIVE, ChainConfig
from .tx import Transaction

MALFORMED = "malformed"            # bytes that do not decode as a transaction
TOO_LARGE = "too_large"            # encoded tx over ledger.tx.MAX_TX_BYTES
WRONG_CHAIN = "wrong_chain"
UNKNOWN_SENDER = "unknown_sender"  # a key no account has or had
KEY_ROTATED = "key_rotated"        # the account has moved to another key
ACCOUNT_REVOKED = "account_revoked"
KEY_EXPIRED = "key_expired"        # the account's valid_until has passed (block time)
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"                # cannot enter the next block any more
TOO_FAR_AHEAD = "too_far_ahead"    # valid_until beyond the validity window
DUPLICATE = "duplicate"            # already committed (or already pending, for a mempool)
MEMPOOL_FULL = "mempool_full"

REASONS = (MALFORMED, TOO_LARGE, WRONG_CHAIN, UNKNOWN_SENDER, KEY_ROTATED, ACCOUNT_REVOKED,
           KEY_EXPIRED, BAD_SIGNATURE, EXPIRED, TOO_FAR_AHEAD, DUPLICATE, MEMPOOL_FULL)


def static_problem(tx: Transaction, config: ChainConfig) -> str | None:
    """What stays wrong with the tx under every later configuration: another
    chain, or a key the consortium never gave an account (a retired key was one)."""
    if tx.chain_id != config.chain_id:
        return WRONG_CHAIN
    if config.account_by_key(tx.sender) is None and tx.sender not in config.retired_keys:
        return UNKNOWN_SENDER
    return None


def sender_problem(tx: Transaction, config: ChainConfig, time_ms: int) -> str | None:
    """Whether the sender's key may sign at block time `time_ms` under `config`."""
    account = config.account_by_key(tx.sender)
    if account is None:
        retired = config.retired_keys.get(tx.sender)
        return KEY_ROTATED if retired is not None and retired.kind == "account" else UNKNOWN_SENDER
    if account.status != ACTIVE:
        return ACCOUNT_REVOKED
    if account.valid_until_ms is not None and time_ms >= account.valid_until_ms:
        return KEY_EXPIRED
    return None


def window_problem(tx: Transaction, height: int, config: ChainConfig) -> str | None:
    """Whether the tx may enter block height+1, `height` being the last
    committed height (the validity window of the epoch of height+1)."""
    if tx.valid_until <= height:
        return EXPIRED
    if tx.valid_until > height + config.params_at(height + 1).tx_validity_window:
        return TOO_FAR_AHEAD
    return None


def problem(tx: Transaction, height: int, config: ChainConfig, time_ms: int) -> str | None:
    """Everything but the signature and duplicates, for block height+1 at time
    `time_ms`: what the mempool and execution check."""
    if tx.chain_id != config.chain_id:
        return WRONG_CHAIN
    return sender_problem(tx, config, time_ms) or window_problem(tx, height, config)


def duplicate_problem(tx: Transaction, is_committed: Callable[[bytes], bool]) -> str | None:
    return DUPLICATE if is_committed(tx.id) else None
