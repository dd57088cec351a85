"""Static configuration of one PBFT replica."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .errors import LocalProtocolError
from .validators import ValidatorSet

if TYPE_CHECKING:
    from .events import EpochChange

VIEW_CHANGE_TIMER = "view_change"
RETRANSMIT_TIMER = "retransmit"
MAX_WINDOW = 1024       # the largest W a message decoder accepts (bounds VIEW-CHANGE size)


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    """`validators`, `me` and the consensus parameters are those of epoch 0
    (genesis, starting at seq 0); `epochs` lists the later epochs the host
    knows at boot, in order (from its committed configuration: every one
    scheduled so far, or at least the one in force and those after it).
    `me` is this replica's index in the genesis set, or None if it is not
    a genesis validator (an observer: it runs passively until an epoch
    includes its key).  The replica finds its index in each epoch by its
    signer's public key.

    `check_payload(seq, payload)` returns the proposal digest of `payload`
    if it is acceptable at `seq`, else None: it judges a fresh PRE-PREPARE.
    `payload_digest(seq, payload)` (default: check_payload) only binds a
    payload to its digest; it is used for payloads carried by prepared
    certificates in VIEW-CHANGE and NEW-VIEW, which a quorum already accepted:
    judging them again against today's state (a tx committed meanwhile, a cache
    that forgot a signature) could stall the view change for good.  Both must
    be deterministic about the digest.  The core never calls them for the null
    payload b"" (whose digest is NULL_DIGEST)."""

    chain_id: str
    validators: tuple[bytes, ...]
    me: int | None
    checkpoint_interval: int
    window: int
    view_change_timeout_ms: int
    max_view_change_timeout_ms: int
    check_payload: Callable[[int, bytes], bytes | None]
    max_in_flight: int = 4
    # How often lost messages are re-sent (0: half the base view-change timeout).
    retransmit_ms: int = 0
    payload_digest: Callable[[int, bytes], bytes | None] | None = None
    # Check Replica.check_invariants() after every event (tests and the
    # simulator; off in the node, where it would cost time on every message).
    check_invariants: bool = False
    epochs: tuple["EpochChange", ...] = ()
    validator_set: ValidatorSet = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validator_set = ValidatorSet(self.validators)
        object.__setattr__(self, "validator_set", validator_set)
        if self.me is not None and self.me not in validator_set:
            raise LocalProtocolError(f"me: {self.me} is not a validator index")
        check_params(self.checkpoint_interval, self.window, self.max_in_flight,
                     self.view_change_timeout_ms, self.max_view_change_timeout_ms)
        if type(self.epochs) is not tuple:
            raise LocalProtocolError("epochs must be a tuple of EpochChange")
        if self.retransmit_ms < 0:
            raise LocalProtocolError("retransmit_ms must be >= 0")
        if type(self.check_invariants) is not bool:
            raise LocalProtocolError("check_invariants must be a bool")

    @property
    def retransmit_interval_ms(self) -> int:
        return self.retransmit_ms or max(1, self.view_change_timeout_ms // 2)


def check_params(checkpoint_interval: int, window: int, max_in_flight: int,
                 view_change_timeout_ms: int, max_view_change_timeout_ms: int) -> None:
    """The consensus parameters the core reads (genesis's in ReplicaConfig,
    a later epoch's in EpochChange): LocalProtocolError if it cannot run them."""
    for name, value in (("checkpoint_interval", checkpoint_interval), ("window", window),
                        ("max_in_flight", max_in_flight),
                        ("view_change_timeout_ms", view_change_timeout_ms),
                        ("max_view_change_timeout_ms", max_view_change_timeout_ms)):
        if type(value) is not int or value < 1:
            raise LocalProtocolError(f"{name} must be an int >= 1, got {value!r}")
    if not checkpoint_interval <= window <= MAX_WINDOW:
        raise LocalProtocolError(
            f"window must be in [checkpoint_interval, {MAX_WINDOW}], got {window}")
    if view_change_timeout_ms > max_view_change_timeout_ms:
        raise LocalProtocolError("need view_change_timeout_ms <= max_view_change_timeout_ms")
