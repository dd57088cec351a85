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

Epochs (consensus/epochs.py): the validator set and the consensus
parameters change at boundaries the chain schedules (EpochChange, fed with
Executed and Synced).  A validator is named by its index in the set of the
epoch a message belongs to: a normal-case message or a CHECKPOINT belongs to
the epoch of its seq, a VIEW-CHANGE or NEW-VIEW names its epoch.  The driver
may give a message's sender as that index or, across epochs, as the node's
public key (the core maps it); Send.to is an index in Replica.validator_keys
(the replica's current epoch).  Time never enters the core except as the
delays it asks for in SetTimer.

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

from .config import check_params
from .errors import LocalProtocolError
from .messages import MESSAGE_TYPES, Message
from .validators import ValidatorSet


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


@dataclass(frozen=True, slots=True)
class EpochChange:
    """Epoch `epoch` starts after seq `boundary` (it covers boundary+1 up to
    the next epoch's boundary) with these validators (public keys, in index
    order) and these consensus parameters.  The host derives it from the
    committed chain (ledger.consortium.ChainConfig.epochs: the boundary B is
    the first checkpoint of the last epoch with B >= h + W, h the block whose
    execution scheduled it), identically on every node.  A later change for
    the same epoch number (a block that changed a still pending epoch)
    replaces it."""
    epoch: int
    boundary: int
    validators: tuple[bytes, ...]
    checkpoint_interval: int
    window: int
    max_in_flight: int
    view_change_timeout_ms: int
    max_view_change_timeout_ms: int

    def __post_init__(self) -> None:
        _require_uint(self.epoch, "EpochChange.epoch", 1)
        _require_uint(self.boundary, "EpochChange.boundary", 1)
        if type(self.validators) is not tuple:
            raise LocalProtocolError("EpochChange.validators must be a tuple of keys")
        ValidatorSet(self.validators)      # raises on a bad key, a duplicate, a bad size
        check_params(self.checkpoint_interval, self.window, self.max_in_flight,
                     self.view_change_timeout_ms, self.max_view_change_timeout_ms)


# -- events (driver -> core) ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A consensus message from `sender` (transport-authenticated), decoded by
    consensus.messages.decode_message.  `sender` is the node's public key
    (32 bytes), or its index in the set of the message's epoch (see the
    module docstring; with one epoch, the genesis index)."""
    sender: int | bytes
    message: Message

    def __post_init__(self) -> None:
        if type(self.sender) is bytes:
            if len(self.sender) != 32:
                raise LocalProtocolError("MessageReceived.sender: a key is 32 bytes")
        else:
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
class PeersReachable:
    """The node keys this node has a live connection to now (the driver sends
    it whenever that changes).  A replica that cannot reach a quorum does not
    start a view change: no quorum could answer it, and a replica alone in a
    view change waits there until the others move, so a node cut off for a
    few seconds would stay out of consensus long after its links came back.
    Like Raft's CheckQuorum and PreVote, local knowledge only: it decides
    when a replica asks for a view change, never what it signs.  Until the
    first one, every validator counts as reachable."""
    keys: frozenset[bytes]

    def __post_init__(self) -> None:
        if type(self.keys) is not frozenset or any(type(k) is not bytes or len(k) != 32 for k in self.keys):
            raise LocalProtocolError("PeersReachable.keys: a frozenset of 32-byte node keys")


@dataclass(frozen=True, slots=True)
class CommitPace:
    """How long this node's recent commits took: the slowest of the last few,
    from accepting a block's proposal to executing it, in ms, counting only
    blocks committed in the view they were proposed in (a view change's
    recovery time is not the pace of the chain).  The view-change timeout's
    base becomes at least PACE_FACTOR (consensus.replica) times this, never
    below the epoch's configured base nor above its maximum, so a node that
    commits slowly for a while (load, a profiler, a large block) does not
    suspect a primary that is doing its job.  Local timing only: it decides
    when a replica asks for a view change, never what it votes for."""
    slowest_ms: int

    def __post_init__(self) -> None:
        _require_uint(self.slowest_ms, "CommitPace.slowest_ms")


@dataclass(frozen=True, slots=True)
class Executed:
    """Block `seq` was executed and stored; `state_digest` is its block hash
    (covers the state root).  Drives checkpoints.  `next_epoch`: the epoch
    this block's execution scheduled (or changed, while still pending), if
    it did.  The host sends Executed for every delivered block, in order."""
    seq: int
    state_digest: bytes
    next_epoch: EpochChange | None = None

    def __post_init__(self) -> None:
        _require_uint(self.seq, "Executed.seq", 1)
        _require_digest(self.state_digest, "Executed.state_digest")
        if self.next_epoch is not None and type(self.next_epoch) is not EpochChange:
            raise LocalProtocolError("Executed.next_epoch must be an EpochChange or None")


@dataclass(frozen=True, slots=True)
class Synced:
    """The driver fetched, verified, executed and stored blocks up to `seq`
    (after a RequestSync or on its own); the core resumes from there.
    `epochs`: the epochs those blocks scheduled or changed, in order."""
    seq: int
    state_digest: bytes
    epochs: tuple[EpochChange, ...] = ()

    def __post_init__(self) -> None:
        _require_uint(self.seq, "Synced.seq")
        _require_digest(self.state_digest, "Synced.state_digest")
        if type(self.epochs) is not tuple or any(type(e) is not EpochChange for e in self.epochs):
            raise LocalProtocolError("Synced.epochs must be a tuple of EpochChange")


Event = Union[MessageReceived, TimerFired, Propose, RequestsPending, PeersReachable, CommitPace, Executed,
              Synced]


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
    """Send to validator `to` of the replica's current epoch
    (Replica.validator_keys[to])."""
    to: int
    message: Message


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every other node that runs the consensus core: the validators
    of the current and the next epoch, and observers (a passive replica
    follows the chain from what it receives, and a validator of the next
    epoch needs the checkpoint at the boundary to start it)."""
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
    target_seq from `peers` (node public keys), checking each certificate
    against the set of its height (consensus.epochs.certificate_problem),
    and then feed Synced."""
    target_seq: int
    target_digest: bytes
    peers: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ReportFault:
    """A peer sent something invalid (bad signature, malformed, equivocation...).
    Dropped already; the driver counts it and may penalise the peer.
    `sender` is as the driver gave it in MessageReceived."""
    sender: int | bytes
    reason: str


@dataclass(frozen=True, slots=True)
class ViewChanged:
    """The replica entered `view` of `epoch` (new primary: Replica.primary).
    `carried`: the (seq, digest) of each non-null proposal the NEW-VIEW
    re-proposes; every other proposal of an older view is dead, and the host
    may put its txs back in line.  Entering a new epoch (at view 0) is
    announced too, with nothing carried."""
    view: int
    carried: tuple[tuple[int, bytes], ...] = ()
    epoch: int = 0


Action = Union[PersistSafety, Send, Broadcast, Deliver, SetTimer, CancelTimer,
               RequestSync, ReportFault, ViewChanged]

_MESSAGE_TYPES = frozenset(MESSAGE_TYPES)
