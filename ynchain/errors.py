"""What can go wrong talking to a node, one class per kind, so a department's
system can `except` exactly what it handles.

    YnchainError
    ├── NodeUnavailable          no answer: refused, timed out, cut off
    ├── ProtocolViolation        an answer that is not what the API promises
    ├── ApiError                 an HTTP error answer (.status, .code)
    │   └── NotFound
    ├── TxRefused                the node did not accept the tx (.reason, .tx_id)
    │   └── one subclass per admission reason (ledger.admission.REASONS)
    ├── TxFailed                 committed, with an error receipt (.receipt)
    └── TxNotCommitted           accepted, not committed in time or dropped (.status)

Every message is one line that names the node, fit to print to a person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger import admission

if TYPE_CHECKING:
    from .models import Receipt, TxResult


class YnchainError(Exception):
    """Base of every SDK error."""


class NodeUnavailable(YnchainError):
    """The node could not be reached, did not answer in time, or said it is
    busy (429/503: `retry_after` is its Retry-After header, if any)."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProtocolViolation(YnchainError):
    """The node answered something the API does not promise."""


class ApiError(YnchainError):
    def __init__(self, message: str, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class NotFound(ApiError):
    pass


class TxRefused(YnchainError):
    reason: str = ""

    def __init__(self, message: str, tx_id: str | None, reason: str) -> None:
        super().__init__(message)
        self.tx_id = tx_id
        self.reason = reason


class TxFailed(YnchainError):
    """Committed, but its contract refused it: `receipt.code` says why."""

    def __init__(self, message: str, result: "TxResult") -> None:
        super().__init__(message)
        self.result = result
        self.tx_id = result.tx_id

    @property
    def receipt(self) -> "Receipt":
        assert self.result.receipt is not None
        return self.result.receipt


class TxNotCommitted(YnchainError):
    """Accepted but not committed: still pending when the wait ended, or
    dropped by the node (e.g. `status == "expired"`)."""

    def __init__(self, message: str, tx_id: str, status: str) -> None:
        super().__init__(message)
        self.tx_id = tx_id
        self.status = status


def _refusal(name: str, reason: str, doc: str) -> type[TxRefused]:
    return type(name, (TxRefused,), {"__doc__": doc, "reason": reason, "__module__": __name__})


Malformed = _refusal("Malformed", admission.MALFORMED, "The bytes do not decode as a transaction.")
TooLarge = _refusal("TooLarge", admission.TOO_LARGE, "The encoded transaction is over the size limit.")
WrongChain = _refusal("WrongChain", admission.WRONG_CHAIN, "Signed for another chain id.")
UnknownSender = _refusal("UnknownSender", admission.UNKNOWN_SENDER, "No account has this key.")
KeyRotated = _refusal("KeyRotated", admission.KEY_ROTATED, "The account moved to another key.")
AccountRevoked = _refusal("AccountRevoked", admission.ACCOUNT_REVOKED, "The account was revoked.")
KeyExpired = _refusal("KeyExpired", admission.KEY_EXPIRED, "The account's validity has ended.")
BadSignature = _refusal("BadSignature", admission.BAD_SIGNATURE, "The signature does not verify.")
Expired = _refusal("Expired", admission.EXPIRED, "The chain passed the tx's valid_until.")
TooFarAhead = _refusal("TooFarAhead", admission.TOO_FAR_AHEAD,
                       "valid_until is beyond the chain's validity window.")
Duplicate = _refusal("Duplicate", admission.DUPLICATE, "Already committed or already pending.")
MempoolFull = _refusal("MempoolFull", admission.MEMPOOL_FULL,
                       "The node's mempool is full; the same tx may be sent again later.")

__all__ = ["YnchainError", "NodeUnavailable", "ProtocolViolation", "ApiError", "NotFound",
           "TxRefused", "TxFailed", "TxNotCommitted", "Malformed", "TooLarge", "WrongChain",
           "UnknownSender", "KeyRotated", "AccountRevoked", "KeyExpired", "BadSignature",
           "Expired", "TooFarAhead", "Duplicate", "MempoolFull", "REFUSALS"]

REFUSALS: dict[str, type[TxRefused]] = {cls.reason: cls for cls in (
    Malformed, TooLarge, WrongChain, UnknownSender, KeyRotated, AccountRevoked, KeyExpired,
    BadSignature, Expired, TooFarAhead, Duplicate, MempoolFull)}


def refused(node: str, tx_id: str | None, reason: str | None, detail: str | None = None) -> TxRefused:
    """The exception for a refusal reason (TxRefused itself for one this SDK
    does not know: a newer node may add reasons)."""
    reason = reason or "unknown"
    cls = REFUSALS.get(reason, TxRefused)
    text = f"node at {node} refused transaction {tx_id or '(undecodable)'}: {reason}"
    return cls(f"{text} ({detail})" if detail else text, tx_id, reason)
