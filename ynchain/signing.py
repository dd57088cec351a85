"""Building and signing transactions with an account's key file, locally: the
private key never leaves this process."""

from __future__ import annotations

import os
from typing import Any

from ledger.codec import DecodeError, check_plain
from ledger.crypto import KeyPair, load_key
from ledger.tx import MAX_TX_BYTES, Transaction

DEFAULT_VALID_FOR = 500      # blocks from the current height


def load_signer(key: "KeyPair | str | os.PathLike[str]") -> KeyPair:
    """A KeyPair as is, or loaded from a key file (ledger.errors.KeyFileError
    names what is wrong with the file)."""
    return key if isinstance(key, KeyPair) else load_key(key)


def random_nonce() -> int:
    # Random, not a counter: building the same call twice makes two transactions.
    return int.from_bytes(os.urandom(8), "big")


def build_tx(key: KeyPair, chain_id: str, height: int, contract: str, method: str, args: Any,
             valid_for: int = DEFAULT_VALID_FOR, nonce: int | None = None) -> Transaction:
    """Sign CONTRACT.METHOD(ARGS) for `chain_id`, committable until height + valid_for.
    ValueError for args msgpack cannot carry exactly or a tx over the size limit."""
    try:
        check_plain(args, "args")
    except DecodeError as exc:
        raise ValueError(str(exc)) from None
    if valid_for < 1:
        raise ValueError("valid_for must be at least 1 block")
    tx = Transaction.create(key, chain_id, random_nonce() if nonce is None else nonce,
                            height + valid_for, contract, method, args)
    if len(tx.encode()) > MAX_TX_BYTES:
        raise ValueError(f"transaction is larger than {MAX_TX_BYTES} bytes")
    return tx
