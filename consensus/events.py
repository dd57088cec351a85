"""The whole interface of the PBFT core: events in, actions out.

    actions = replica.handle(event)

The driver (node/core/driver.py, or the simulator) must carry out the
actions *in list order*, with one rule that safety depends on:

    a PersistSafety action must be durable (fsync'd) before any Send or
    Broadcast that follows it in the same list is handed to the network.

Drivers may merge consecutive PersistSafety actions into one write (only the
last record matters: each record supersedes the previous one; payload stores and
deletes apply in order).

consensus/executor.py carries out these rules once for every driver (the
node, the simulator, the test cluster), each of which implements its Host.

Validators are named by their index in the genesis validator list.  Time never
enters the core except as the delays it asks for in SetTimer.

Events check their own fields when they are built (as h11's events do) and
raise LocalProtocolError: a driver bug surfaces where it is made, not deep in
the core.  Whether `sender` is a validator index is the Replica's check (only
it knows the validator set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Union

from ledger.block import NULL_DIGEST
from ledger.certificate import CommitCertificate
from ledger.crypto import HASH_LEN

from .errors import LocalProtocolError
from .messages import MESSAGE_TYPES, Message


class Signer(Protocol):
    """What the Replica signs with (ledger.crypto.KeyPair): its public key must
    be the validator key of the replica it signs for."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


def _require_uint(value: object, what: str, minimum: int = 0) -> None:
    if type(value) is not int or value < minimum:
        raise LocalProtocolError(f"{what} must be an int >= {minimum}, got {value!r}")


def _require_digest(value: object, what: str) -> None:
    if type(value) is not bytes or len(value) != HASH_LEN:
        raise LocalProtocolError(f"{what} must be {HASH_LEN} bytes")


# -- events (driver -> core) ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A consensus message from validator `sender` (transport-authenticated),
    decoded by consensus.messages.decode_message."""
    sender: int
    message: Message

    def __post_init__(self) -> None:
        _require_uint(self.sender, "MessageReceived.sender")
        if type(self.message) not in _MESSAGE_TYPES:
            raise LocalProtocolError(
                f"not a consensus message: {type(self.message).__name__}")


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer set with SetTimer(kind, ...) expired; `token` echoes SetTimer.token
    so a stale timer that fires after being replaced is ignored."""
    kind: str
    token: int

    def __post_init__(self) -> None:
        if type(self.kind) is not str:
            raise LocalProtocolError(f"TimerFired.kind must be a str, got {self.kind!r}")
        _require_uint(self.token, "TimerFired.token")


@dataclass(frozen=True, slots=True)
class Propose:
    """The driver built a block payload for `seq` after next_proposal_seq()
    returned that seq; `digest` is the proposal digest of the payload."""
    seq: int
    payload: bytes
    digest: bytes

    def __post_init__(self) -> None:
        _require_uint(self.seq, "Propose.seq", 1)
        if type(self.payload) is not bytes:
            raise LocalProtocolError("Propose.payload must be bytes")
        _require_digest(self.digest, "Propose.digest")
        if (self.payload == b"") != (self.digest == NULL_DIGEST):
            raise LocalProtocolError('the null payload b"" and NULL_DIGEST go together')


@dataclass(frozen=True, slots=True)
class RequestsPending:
    """The driver holds client requests (txs) that are not yet committed: if
    they do not get committed in time, the primary is suspected (view change)."""


@dataclass(frozen=True, slots=True)
class Executed:
    """Block `seq` was executed and stored; `state_digest` is its block hash
    (covers the state root).  Drives checkpoints."""
    seq: int
    state_digest: bytes

    def __post_init__(self) -> None:
        _require_uint(self.seq, "Executed.seq", 1)
        _require_digest(self.state_digest, "Executed.state_digest")


@dataclass(frozen=True, slots=True)
class Synced:
    """The driver fetched, verified, executed and stored blocks up to `seq`
    (after a RequestSync or on its own); the core resumes from there."""
    seq: int
    state_digest: bytes

    def __post_init__(self) -> None:
        _require_uint(self.seq, "Synced.seq")
        _require_digest(self.state_digest, "Synced.state_digest")


Event = Union[MessageReceived, TimerFired, Propose, RequestsPending, Executed, Synced]


# -- actions (core -> driver) -----------------------------------------------------

@dataclass(frozen=True, slots=True)
class PersistSafety:
    """Make `record` durable (fsync) before carrying out any later send in the
    same action list.  Opaque bytes; handed back to Replica(...) on restart.

    Prepared payloads travel beside the record, not in it (blocks are large and
    the record is rewritten on every vote): store each of `payloads` under its
    (seq, digest) and delete the `dropped` keys, in the same durable write.
    At restart pass Replica(..., prepared_payloads={key: payload for every key in
    consensus.safety.payload_keys(record)})."""
    record: bytes
    payloads: tuple[tuple[int, bytes, bytes], ...] = ()   # (seq, digest, payload)
    dropped: tuple[tuple[int, bytes], ...] = ()            # (seq, digest)


@dataclass(frozen=True, slots=True)
class Send:
    to: int
    message: Message


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every other validator."""
    message: Message


@dataclass(frozen=True, slots=True)
class Deliver:
    """Block `seq` is committed.  Delivered exactly once each, in seq order with
    no gaps (after a Synced the next one is Synced.seq + 1).  payload == b""
    is a null block."""
    seq: int
    payload: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class SetTimer:
    """(Re)arm timer `kind` to fire after delay_ms; replaces an armed timer of
    the same kind."""
    kind: str
    delay_ms: int
    token: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    kind: str


@dataclass(frozen=True, slots=True)
class RequestSync:
    """The core is behind: a stable checkpoint at `target_seq` exists that its
    log cannot reach.  The driver should fetch certified blocks up to at least
    target_seq from `peers` and then feed Synced."""
    target_seq: int
    target_digest: bytes
    peers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ReportFault:
    """A peer sent something invalid (bad signature, malformed, equivocation...).
    Dropped already; the driver counts it and may penalise the peer."""
    sender: int
    reason: str


@dataclass(frozen=True, slots=True)
class ViewChanged:
    """The replica entered `view` (new primary = view % n).  `carried`: the
    (seq, digest) of each non-null proposal the NEW-VIEW re-proposes; every
    other proposal of an older view is dead, and the host may put its txs
    back in line."""
    view: int
    carried: tuple[tuple[int, bytes], ...] = ()


Action = Union[PersistSafety, Send, Broadcast, Deliver, SetTimer, CancelTimer,
               RequestSync, ReportFault, ViewChanged]

_MESSAGE_TYPES = frozenset(MESSAGE_TYPES)
