"""PBFT (Castro & Liskov, OSDI '99 / TOCS '02) as a pure state machine:
`handle(event) -> actions`.

One Replica orders blocks for the node that owns it.  Read it beside the paper:

    phase           paper                        here
    normal          4.2 normal-case operation    _STEP_NORMAL: _on_pre_prepare,
                                                 _on_vote, _advance, _deliver_ready
    (both)          4.3 garbage collection       _on_checkpoint, _stabilize
                                                 (CheckpointLog in checkpoints.py)
    view-changing   4.4 view changes             _STEP_VIEW_CHANGING: _on_view_change_*,
                                                 _try_new_view, _on_new_view_*,
                                                 _become_view_changing, _become_normal
    (both)          (not in the paper) epochs    _learn_epoch, _enter_epoch_if_due,
                                                 _high (the window cut at the boundary)

Epochs (consensus/epochs.py): the validator set and the parameters change at
boundaries the chain schedules.  Views are per epoch; a replica enters epoch
e+1 (at view 0, primary (e+1+0) mod n) once the checkpoint at its boundary B
is stable and it has executed B.  Until then nothing above B is proposed or
accepted, so every slot is decided by one set.  In an epoch whose set does
not hold its key the replica is passive: it delivers what certificates prove
and never votes, checkpoints or asks for a view change.

As in etcd's raft (stepLeader / stepFollower), each phase has its own step
table mapping every message type to its handler, NEW-VIEW included; the
phase changes only in `_become_view_changing` and `_become_normal`.  The
phase is also in the safety record (`active`), so a restart resumes it.

It keeps:
  * the log of the current view, one _Slot per seq in (low, low + W]
    (low = the stable checkpoint), garbage-collected when a checkpoint
    becomes stable, so memory stays bounded on a chain of any length;
  * the safety record (safety.py), persisted before anything it signs leaves;
  * the latest VIEW-CHANGE of each replica, and the checkpoint log.

Lost messages are re-sent on a periodic "retransmit" timer (the network may
drop anything), receivers drop duplicates before checking signatures, and
every peer message is verified once before it changes state.  Everything
that depends on who the validators are goes through one ValidatorSet.

With ReplicaConfig.check_invariants (tests, the simulator) every event ends
with check_invariants(), which raises AssertionError on a broken rule.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Callable, Mapping, Sequence, TypeVar

from ledger.block import NULL_DIGEST
from ledger.certificate import CommitCertificate, Vote
from ledger.crypto import HASH_LEN

from .checkpoints import CheckpointLog
from .config import RETRANSMIT_TIMER, VIEW_CHANGE_TIMER, ReplicaConfig
from .epochs import Epoch, genesis_epoch, schedule_of
from .errors import LocalProtocolError
from .events import (Action, Broadcast, CancelTimer, CommitPace, Deliver, EpochChange, Event, Executed,
                     MessageReceived, PeersReachable, PersistSafety, Propose, ReportFault, RequestsPending,
                     RequestSync, Send, SetTimer, Signer, Synced, TimerFired, ViewChanged)
from .messages import (PHASE_COMMIT, PHASE_PRE_PREPARE, PHASE_PREPARE, Checkpoint,
                       CheckpointProof, Commit, Message, NewView, PrePrepare, Prepare,
                       PreparedProof, ViewChange, sign)
from .safety import SafetyState
from .validators import ValidatorSet
from .epochs import checkpoint_proof_problem
from .verification import Verifier, reproposals

if TYPE_CHECKING:
    from .invariants import Audit


MAX_PAYLOADS_PER_SEQ = 4
# The view-change timeout's base is at least this times the slowest recent
# commit (CommitPace): a block that commits in T under load is not suspected
# before 3T, and a primary that stops is still suspected within 3T.
PACE_FACTOR = 3


_Signed = TypeVar("_Signed")
_Handler = Callable[["Replica", list, int, Message], None]


class Phase(enum.Enum):
    NORMAL = "normal"                   # a NEW-VIEW (or genesis) started the view
    VIEW_CHANGING = "view-changing"     # VIEW-CHANGE sent, waiting for NEW-VIEW


class _Slot:
    """What the current view knows about one sequence number."""
    __slots__ = ("pre_prepare", "prepares", "commits", "prepared", "committed")

    def __init__(self) -> None:
        self.pre_prepare: PrePrepare | None = None
        self.prepares: dict[int, Prepare] = {}
        self.commits: dict[int, Commit] = {}
        self.prepared = False
        self.committed = False


class _Timers:
    """The timers the core has asked the driver to arm: kind -> the token of
    the armed one.  TimerFired echoes the token, so a timer replaced or
    cancelled since it was set, whose expiry the driver reports anyway, is
    told apart and ignored."""
    __slots__ = ("_armed", "_token")

    def __init__(self) -> None:
        self._armed: dict[str, int] = {}
        self._token = 0

    def __contains__(self, kind: str) -> bool:
        return kind in self._armed

    def arm(self, kind: str, delay_ms: int) -> SetTimer:
        self._token += 1
        self._armed[kind] = self._token
        return SetTimer(kind, delay_ms, self._token)

    def cancel(self, out: list[Action], kind: str) -> None:
        if self._armed.pop(kind, None) is not None:
            out.append(CancelTimer(kind))

    def take(self, event: TimerFired) -> bool:
        """True if `event` is the armed timer of its kind, which is now disarmed."""
        if self._armed.get(event.kind) != event.token:
            return False
        del self._armed[event.kind]
        return True


class Replica:
    def __init__(self, config: ReplicaConfig, signer: Signer, safety_record: bytes | None,
                 last_executed: tuple[int, bytes], *,
                 prepared_payloads: Mapping[tuple[int, bytes], bytes] | None = None) -> None:
        height, block_hash = last_executed
        if type(height) is not int or height < 0 or type(block_hash) is not bytes \
                or len(block_hash) != HASH_LEN:
            raise LocalProtocolError("last_executed must be (height >= 0, 32-byte hash)")
        key = getattr(signer, "public_key", None)
        if (config.me is None) != (key not in config.validators) or \
                (config.me is not None and key != config.validators[config.me]):
            raise LocalProtocolError("signer's key is not validator `me`'s key")
        self._cfg = config
        self._signer = signer
        self._key: bytes = key
        self._safety = (SafetyState.decode(safety_record, prepared_payloads) if safety_record
                        else SafetyState())
        self._schedule = schedule_of(
            genesis_epoch(config.validators, config.checkpoint_interval, config.window,
                          config.max_in_flight, config.view_change_timeout_ms,
                          config.max_view_change_timeout_ms), config.epochs)
        epoch = self._schedule.get(self._safety.epoch)
        if epoch is None:
            raise LocalProtocolError(
                f"the safety record is in epoch {self._safety.epoch}: ReplicaConfig.epochs "
                "must hold it and every later one")
        self._use_epoch(epoch)
        self._last_executed = height
        self._move_window()
        self._dirty = False                       # safety record changed since last persist
        self._phase = Phase.NORMAL if self._safety.active else Phase.VIEW_CHANGING
        self._step = self._STEP_NORMAL if self._safety.active else self._STEP_VIEW_CHANGING

        self._last_delivered = height
        self._booted_at = (height, block_hash)
        self._slots: dict[int, _Slot] = {}
        # seq -> digest -> payload of every pre-prepare seen in the window, across
        # views: a view change must re-propose a prepared digest with its payload
        self._payloads: dict[int, dict[bytes, bytes]] = {}
        self._next_seq = self._restart_seq()       # next seq I propose as primary
        self._uncommitted_own: set[int] = set()

        self._checkpoints = CheckpointLog()
        self._sync: RequestSync | None = None
        self._delivered_at_last_tick = height

        self._view_changes: dict[int, ViewChange] = {}   # replica -> its latest view-change
        self._new_view: NewView | None = None            # the one that started my view
        self._answered: set[int] = set()                 # replicas sent a NEW-VIEW this tick
        self._pending_requests = False
        self._failed_view_changes = 0                     # consecutive, without a delivery
        self._vc_timer_delay_ms = 0
        self._pace_ms = 0                                 # CommitPace: the slowest recent commit
        self._reachable: frozenset[bytes] | None = None   # PeersReachable (None: not told, all)
        self._timers = _Timers()
        self._audit: Audit | None = None
        if config.check_invariants:
            from . import invariants             # loaded only where checks run
            self._audit = invariants.Audit(self)

    # -- queries -------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def epoch(self) -> int:
        return self._epoch.number

    @property
    def validator_keys(self) -> tuple[bytes, ...]:
        """The current epoch's validators by index (what Send.to names)."""
        return self._validators.keys

    @property
    def index(self) -> int | None:
        """This replica's index in the current epoch, None while passive."""
        return self._me

    def keys_at(self, seq: int) -> tuple[bytes, ...] | None:
        """The validator keys that decide `seq`, if this replica knows them yet."""
        if seq > self._schedule.reach(self._last_executed):
            return None
        return self._schedule.epoch_of(seq).validators.keys

    @property
    def view(self) -> int:
        return self._safety.view

    @property
    def primary(self) -> int:
        return self._validators.primary(self._safety.view)

    @property
    def is_primary(self) -> bool:
        return self.primary == self._me

    @property
    def in_view_change(self) -> bool:
        return self._phase is Phase.VIEW_CHANGING

    @property
    def last_delivered(self) -> int:
        return self._last_delivered

    @property
    def stable_checkpoint(self) -> int:
        return self._safety.checkpoint.seq

    @property
    def stable_checkpoint_proof(self) -> CheckpointProof:
        """2f+1 signatures over the block hash at `stable_checkpoint`."""
        return self._safety.checkpoint

    @property
    def log_size(self) -> int:
        """Entries held for the log (for tests and metrics): stays bounded by W."""
        return (len(self._slots) + len(self._payloads) + len(self._checkpoints)
                + len(self._safety.votes) + len(self._safety.prepared))

    def next_proposal_seq(self) -> int | None:
        if self._phase is not Phase.NORMAL or not self.is_primary:
            return None
        seq = self._next_seq
        if seq > self._high or len(self._uncommitted_own) >= self._epoch.max_in_flight:
            return None
        return seq

    @property
    def _low(self) -> int:
        return self._safety.checkpoint.seq

    @property
    def _high(self) -> int:
        return self._window_end

    def _move_window(self) -> None:
        """Recompute the high watermark after the stable checkpoint, the
        executed height, the epoch or the schedule changed."""
        self._window_end = self._compute_high()

    def _compute_high(self) -> int:
        """The high watermark: the window (low, low + W], cut at the next
        boundary (a window never spans two epochs) and at the reach of what
        this replica executed (beyond it, a block it has not executed yet
        could still schedule a boundary)."""
        high = min(self._low + self._epoch.window, self._schedule.reach(self._last_executed))
        end = self._boundary()
        return high if end is None else min(high, end)

    def _boundary(self) -> int | None:
        """The end of the current epoch, if the chain scheduled one."""
        following = self._schedule.following(self._epoch)
        return None if following is None else following.start

    @property
    def _retransmit_ms(self) -> int:
        return self._cfg.retransmit_ms or max(1, self._epoch.view_change_timeout_ms // 2)

    # -- entry points --------------------------------------------------------------

    def start(self) -> list[Action]:
        """Call once before the first event: arms timers, and after a restart
        rejoins an unfinished view change or asks to sync to the checkpoint."""
        out: list[Action] = [self._timers.arm(RETRANSMIT_TIMER, self._retransmit_ms)]
        checkpoint = self._safety.checkpoint
        if checkpoint.seq > self._last_delivered:
            self._request_sync(out, checkpoint.seq, checkpoint.state_digest,
                               self._voters(checkpoint))
        if self._phase is Phase.VIEW_CHANGING:
            self._send_view_change(out)
        elif self._lost_own_proposals():
            # My log of this view went with the crash, and the proposals I signed
            # in it cannot be re-sent (nor replaced at their seqs): every backup
            # would wait out its view-change timer for them.  Abdicate instead;
            # the backups join at once (_on_view_change_normal).
            self._become_view_changing(out, self._safety.view + 1)
        seq, state_digest = self._safety.own_checkpoint
        height, block_hash = self._booted_at
        if self._schedule.epoch_of(height).is_checkpoint(height) and height > seq:
            seq, state_digest = height, block_hash      # stored, but Executed never came
        if seq > self._low:
            self._checkpoint(out, seq, state_digest)
        self._enter_epoch_if_due(out)
        if self._audit is not None:
            self._audit.started = True
            self.check_invariants(out)
        return out

    def handle(self, event: Event) -> list[Action]:
        out: list[Action] = []
        kind = type(event)
        if kind is MessageReceived:
            self._on_message(out, event.sender, event.message)
        elif kind is TimerFired:
            self._on_timer(out, event)
        elif kind is Propose:
            self._on_propose(out, event)
        elif kind is RequestsPending:
            self._pending_requests = True
            self._refresh_progress_timer(out, progress=False)
        elif kind is CommitPace:
            self._pace_ms = event.slowest_ms
        elif kind is PeersReachable:
            cut_off = not self._quorum_reachable()
            self._reachable = event.keys
            if cut_off and self._quorum_reachable():
                # Back in touch with a quorum: the progress timer starts over, so the
                # chain has a whole timeout to move again.  The timer that ran while
                # nothing could (a primary restarting, a partition) would fire at once,
                # and asking alone, with the others about to commit in v again, would
                # leave me in v+1 without them.
                self._refresh_progress_timer(out, progress=True)
        elif kind is Executed:
            self._on_executed(out, event)
        elif kind is Synced:
            self._on_synced(out, event)
        else:
            raise LocalProtocolError(f"not a consensus event: {event!r}")
        if self._audit is not None:
            self.check_invariants(out)
        return out

    def _on_message(self, out: list[Action], sender: int | bytes, message: Message) -> None:
        kind = type(message)
        handler = self._step.get(kind)
        if handler is None:
            raise LocalProtocolError(f"not a consensus message: {kind.__name__}")
        if kind is Checkpoint:
            self._on_checkpoint(out, sender, message)
            return
        if kind is ViewChange or kind is NewView:
            if message.epoch != self._epoch.number:
                # Stale, or from a replica ahead of me.  One of a later epoch still
                # proves a stable checkpoint, which may be all I need to catch up.
                self._adopt_checkpoint(out, sender, message)
                return
        elif not self._in_window(message.view, message.seq):
            return      # the window lies in my epoch; outside it: stale, or from one ahead
        index = self._index_of(sender)
        if index is None:
            return      # not a validator of my epoch (a passive node has nothing to say)
        if kind is not NewView:
            # A NEW-VIEW is self-certifying and may be relayed by anyone; every
            # other message must come from the replica that signed it.
            if message.replica != index:
                self._fault(out, sender,
                            f"{kind.__name__} claims to be from replica {message.replica}")
                return
            if index == self._me:
                return
        handler(self, out, index, message)

    def _index_of(self, sender: int | bytes) -> int | None:
        """The sender's index in my epoch's set: a key is looked up, an index
        (the driver's, for a chain of one epoch) checked."""
        if type(sender) is bytes:
            return self._validators.index_of(sender)
        if sender not in self._validators:
            raise LocalProtocolError(f"sender {sender!r} is not a validator index")
        return sender

    # -- phase transitions -----------------------------------------------------------

    def _become_view_changing(self, out: list[Action], new_view: int) -> None:
        """Suspect the primary (or join f+1 who do): leave the view, stop taking
        normal-case messages, announce what I prepared (VIEW-CHANGE)."""
        assert self._me is not None, "a passive replica never asks for a view change"
        self._safety.enter_view(new_view, active=False)
        self._phase, self._step = Phase.VIEW_CHANGING, self._STEP_VIEW_CHANGING
        self._dirty = True
        self._slots.clear()
        self._uncommitted_own.clear()
        self._new_view = None
        self._failed_view_changes += 1
        self._send_view_change(out)
        self._try_new_view(out)

    def _become_normal(self, out: list[Action], nv: NewView, checkpoint: CheckpointProof) -> None:
        """A verified NEW-VIEW (mine or the primary's) starts view nv.view:
        adopt its checkpoint, accept its re-proposals (PREPARE each one, as
        for any PRE-PREPARE), and resume the normal case."""
        view = nv.view
        if view > self._safety.view:          # straight from an older view
            self._slots.clear()
            self._uncommitted_own.clear()
        self._safety.enter_view(view, active=True)
        self._phase, self._step = Phase.NORMAL, self._STEP_NORMAL
        self._dirty = True
        self._new_view = nv
        self._view_changes = {r: vc for r, vc in self._view_changes.items() if vc.new_view > view}
        self._timers.cancel(out, VIEW_CHANGE_TIMER)
        out.append(ViewChanged(view, tuple((pp.seq, pp.digest) for pp in nv.pre_prepares
                                           if pp.digest != NULL_DIGEST), self._epoch.number))
        if checkpoint.seq > self._low:
            self._stabilize(out, checkpoint)
        primary = self._me == nv.replica
        last = self._low
        prepares = []
        high = self._high
        for pp in nv.pre_prepares:
            last = max(last, pp.seq)
            if pp.seq <= self._low or pp.seq > high:
                continue    # above: I am behind my stable checkpoint; sync brings me up
            if primary:
                self._store_pre_prepare(pp)
                self._uncommitted_own.add(pp.seq)
                continue
            if self._me is None:
                self._store_pre_prepare(pp)
                continue
            prepare = self._accept_pre_prepare(pp)
            if prepare is None:
                self._fault(out, nv.replica, f"re-proposal at {pp.seq} conflicts with my vote")
            else:
                prepares.append(prepare)
        if primary:
            self._next_seq = max(self._next_seq, last + 1, self._last_delivered + 1)
        self._persist(out)      # even with nothing to vote on, remember the view is active
        out.extend(Broadcast(p) for p in prepares)
        for seq in sorted(self._slots):
            if seq in self._slots:
                self._advance(out, seq)
        self._refresh_progress_timer(out, progress=False)

    # -- normal case (section 4.2) ------------------------------------------------------

    def _in_window(self, view: int, seq: int) -> bool:
        """Normal-case messages count only in the current view and within the
        watermarks.  Neither side is a fault: below, the message is stale;
        above, it comes from a peer ahead of me (I am behind, and the
        checkpoint/sync path brings me up)."""
        return view == self._safety.view and self._low < seq <= self._high

    def _on_pre_prepare(self, out: list[Action], sender: int, m: PrePrepare) -> None:
        if not self._in_window(m.view, m.seq):
            return
        if sender != self.primary:
            self._fault(out, sender, "pre-prepare from a backup")
            return
        slot = self._slot(m.seq)
        held = slot.pre_prepare
        if held is not None and held.digest == m.digest:
            return
        if not self._verify.signed(m):
            self._fault(out, sender, "bad pre-prepare signature")
            return
        if held is not None:
            self._fault(out, sender, f"primary equivocated at seq {m.seq}")
            return
        if not self._verify.payload_matches(m.seq, m.payload, m.digest):
            self._fault(out, sender, f"payload rejected or not matching its digest at seq {m.seq}")
            return
        if self._me is None:            # passive: keep it, to deliver what commits prove
            self._store_pre_prepare(m)
            self._advance(out, m.seq)
            return
        prepare = self._accept_pre_prepare(m)
        if prepare is None:
            self._fault(out, sender, f"pre-prepare at seq {m.seq} conflicts with my vote")
            return
        self._send(out, prepare)
        self._advance(out, m.seq)
        self._refresh_progress_timer(out, progress=False)

    def _accept_pre_prepare(self, m: PrePrepare) -> Prepare | None:
        """Store a verified pre-prepare; my PREPARE for it (to send), or None
        if it conflicts with a vote in the safety record."""
        view, seq, digest = m.view, m.seq, m.digest
        if not self._safety.record_vote(view, seq, PHASE_PREPARE, digest):
            return None
        self._dirty = True
        self._store_pre_prepare(m)
        prepare = self._sign(Prepare(view, seq, digest, self._me))
        self._slots[seq].prepares[self._me] = prepare
        return prepare

    def _on_vote(self, out: list[Action], sender: int, m: Prepare | Commit) -> None:
        if not self._in_window(m.view, m.seq):
            return
        is_prepare = type(m) is Prepare
        if is_prepare and sender == self.primary:
            self._fault(out, sender, "prepare from the primary")
            return
        slot = self._slot(m.seq)
        votes = slot.prepares if is_prepare else slot.commits
        held = votes.get(sender)
        if held is not None and held.digest == m.digest:
            return
        if not self._verify.signed(m):
            self._fault(out, sender, f"bad {m.PHASE} signature")
            return
        if held is not None:
            self._fault(out, sender, f"two {m.PHASE} votes at seq {m.seq}")
            return
        votes[sender] = m
        self._advance(out, m.seq)

    def _advance(self, out: list[Action], seq: int) -> None:
        """Move one slot along prepared -> committed -> delivered."""
        slot = self._slots[seq]
        pp = slot.pre_prepare
        if pp is None:
            return
        view, digest = pp.view, pp.digest
        quorum = self._validators.quorum
        if not slot.prepared:
            primary = self.primary
            prepares = [p for r, p in sorted(slot.prepares.items())
                        if p.digest == digest and r != primary]
            if len(prepares) < quorum - 1:
                return
            slot.prepared = True
            proof = PreparedProof(view, seq, digest, pp.signature,
                                  tuple(Vote(p.replica, p.signature)
                                        for p in prepares[:quorum - 1]), pp.payload)
            self._safety.record_prepared(proof)
            self._dirty = True
            if self._me is not None and self._safety.record_vote(view, seq, PHASE_COMMIT, digest):
                commit = self._sign(Commit(view, seq, digest, self._me))
                slot.commits[self._me] = commit
                self._send(out, commit)
        if slot.committed:
            return
        if sum(1 for c in slot.commits.values() if c.digest == digest) < quorum:
            return
        slot.committed = True
        self._uncommitted_own.discard(seq)
        self._deliver_ready(out)

    def _deliver_ready(self, out: list[Action]) -> None:
        delivered = False
        while True:
            seq = self._last_delivered + 1
            slot = self._slots.get(seq)
            if slot is None or not slot.committed:
                break
            pp = slot.pre_prepare
            votes = tuple(Vote(c.replica, c.signature)
                          for _, c in sorted(slot.commits.items()) if c.digest == pp.digest)
            certificate = CommitCertificate(pp.view, seq, pp.digest,
                                            votes[:self._validators.quorum])
            assert seq <= self._high, f"delivering {seq} beyond the window of epoch {self.epoch}"
            out.append(Deliver(seq, pp.payload, certificate))
            self._last_delivered = seq
            delivered = True
        if delivered:
            self._progressed(out)

    def _progressed(self, out: list[Action]) -> None:
        """The chain moved on (a delivery, or certified blocks fetched by sync):
        whatever was pending had its chance, so the progress timer starts over."""
        self._failed_view_changes = 0
        self._pending_requests = False
        self._refresh_progress_timer(out, progress=True)

    def _on_propose(self, out: list[Action], event: Propose) -> None:
        """As the primary: PRE-PREPARE the driver's block (Propose validated
        its own fields when it was built)."""
        if event.seq != self.next_proposal_seq():
            return      # the view or the window moved since the driver asked: stale
        view, seq = self._safety.view, event.seq
        self._next_seq = seq + 1
        if not self._safety.record_vote(view, seq, PHASE_PRE_PREPARE, event.digest):
            return
        self._dirty = True
        pp = self._sign(PrePrepare(view, seq, event.digest, event.payload, self._me))
        self._store_pre_prepare(pp)
        self._uncommitted_own.add(seq)
        self._send(out, pp)
        self._advance(out, seq)
        self._refresh_progress_timer(out, progress=False)

    # -- checkpoints and state sync (section 4.3) -------------------------------------

    def _on_executed(self, out: list[Action], event: Executed) -> None:
        seq = event.seq
        if seq > self._last_delivered:
            raise LocalProtocolError(f"Executed({seq}) before Deliver({seq})")
        if event.next_epoch is not None:
            self._learn_epoch(event.next_epoch)
        self._last_executed = max(self._last_executed, seq)
        self._move_window()
        self._checkpoints.collect_garbage(self._low, self._high)    # the window may reach further
        if self._schedule.epoch_of(seq).is_checkpoint(seq) and seq > self._low:
            self._checkpoint(out, seq, event.state_digest)
        self._enter_epoch_if_due(out)

    def _checkpoint(self, out: list[Action], seq: int, state_digest: bytes) -> None:
        """Sign my CHECKPOINT at `seq` if I am a validator of its epoch."""
        validators = self._schedule.epoch_of(seq).validators
        me = validators.index_of(self._key)
        if me is None:
            return
        own = self._sign(Checkpoint(seq, state_digest, me))
        self._checkpoints.own = own
        self._safety.own_checkpoint = (seq, state_digest)
        self._dirty = True
        self._send(out, own)
        self._store_checkpoint(out, own, self._key, validators)

    def _on_checkpoint(self, out: list[Action], sender: int | bytes, m: Checkpoint) -> None:
        """A CHECKPOINT belongs to the epoch of its seq, whichever epoch I am
        in: the one at a boundary is the old set's, and the ones of an epoch
        I have not entered yet are how I learn that the others have."""
        if m.seq <= self._low:
            return
        if m.seq > self._schedule.reach(self._last_executed):
            # An epoch I cannot know yet: unverifiable, only a hint to sync, from
            # f+1 of a set I know (the checkpoint at a boundary I know is signed
            # by the set that ends there).  A driver that names senders by index
            # knows one set: the newest.
            newest = self._schedule.last.validators
            key = sender if type(sender) is bytes else (
                newest.keys[sender] if sender in newest else None)
            if key is not None:
                sets = [e.validators for e in self._schedule if e.number >= self._epoch.number]
                target = self._checkpoints.hint(key, m, sets)
                if target is not None:
                    self._request_sync(out, *target)
            return
        epoch = self._schedule.epoch_of(m.seq)
        validators = epoch.validators
        key = sender if type(sender) is bytes else (
            validators.keys[sender] if sender in validators else None)
        if key is None or validators.index_of(key) is None:
            return      # not a validator of that epoch
        if validators.index_of(key) != m.replica:
            self._fault(out, sender, f"Checkpoint claims to be from replica {m.replica}")
            return
        if key == self._key:
            return
        if not epoch.is_checkpoint(m.seq):
            self._fault(out, sender, f"checkpoint at {m.seq} is not a checkpoint seq")
            return
        held = self._checkpoints.held(key, m.replica, m.seq, self._high)
        if held is not None:
            if held.seq > m.seq:
                return      # it sent a later one already
            if held.seq == m.seq and held.state_digest == m.state_digest:
                return
        if not validators.verify(m.replica, m.signed_bytes(self._cfg.chain_id), m.signature):
            self._fault(out, sender, "bad checkpoint signature")
            return
        if held is not None and held.seq == m.seq:
            self._fault(out, sender, f"two checkpoints at {m.seq}")
            return
        self._store_checkpoint(out, m, key, validators)

    def _store_checkpoint(self, out: list[Action], m: Checkpoint, key: bytes,
                          validators: ValidatorSet) -> None:
        stable, matching = self._checkpoints.add(m, key, self._high, validators)
        if stable is not None:
            self._stabilize(out, stable)
        elif len(matching) > validators.f and m.seq > self._high:
            # f+1 agree on a state beyond what my log can reach: one of them is correct.
            self._request_sync(out, m.seq, m.state_digest, matching)

    def _adopt_checkpoint(self, out: list[Action], sender: int | bytes,
                          m: ViewChange | NewView) -> None:
        """A VIEW-CHANGE or NEW-VIEW of a later epoch: if I know that epoch and
        its stable checkpoint is above mine, it proves I may move on."""
        if m.epoch <= self._epoch.number or self._schedule.get(m.epoch) is None:
            return
        proofs = [m.checkpoint] if type(m) is ViewChange else [vc.checkpoint for vc in m.view_changes]
        proof = max(proofs, key=lambda c: c.seq, default=None)
        if proof is None or proof.seq <= self._low or \
                proof.seq > self._schedule.reach(self._last_executed):
            return
        if checkpoint_proof_problem(self._schedule, self._cfg.chain_id, proof) is None:
            self._stabilize(out, proof)

    def _stabilize(self, out: list[Action], proof: CheckpointProof) -> None:
        """`proof` is a valid stable checkpoint above mine: collect garbage."""
        if proof.seq <= self._low:
            return
        seq = proof.seq
        self._safety.advance_checkpoint(proof)
        self._move_window()
        self._dirty = True
        self._slots = {s: slot for s, slot in self._slots.items() if s > seq}
        self._payloads = {s: p for s, p in self._payloads.items() if s > seq}
        self._uncommitted_own = {s for s in self._uncommitted_own if s > seq}
        self._checkpoints.collect_garbage(seq, self._high)
        self._next_seq = max(self._next_seq, seq + 1)
        if seq > self._last_delivered:
            self._request_sync(out, seq, proof.state_digest, self._voters(proof))
        self._enter_epoch_if_due(out)

    def _voters(self, proof: CheckpointProof) -> tuple[bytes, ...]:
        keys = self._schedule.epoch_of(proof.seq).validators.keys
        return tuple(keys[v.validator] for v in proof.votes if v.validator < len(keys))

    def _request_sync(self, out: list[Action], seq: int, digest: bytes,
                      peers: tuple[bytes, ...]) -> None:
        if seq <= self._last_delivered or (self._sync and self._sync.target_seq >= seq):
            return
        self._sync = RequestSync(seq, digest, tuple(p for p in peers if p != self._key))
        out.append(self._sync)

    def _on_synced(self, out: list[Action], event: Synced) -> None:
        for change in event.epochs:
            self._learn_epoch(change)
        seq = event.seq
        if seq <= self._last_delivered:
            self._enter_epoch_if_due(out)
            return
        self._last_delivered = seq
        self._last_executed = max(self._last_executed, seq)
        self._move_window()
        self._checkpoints.collect_garbage(self._low, self._high)
        self._uncommitted_own = {s for s in self._uncommitted_own if s > seq}
        self._next_seq = max(self._next_seq, seq + 1)
        if self._sync is not None and self._sync.target_seq <= seq:
            self._sync = None
        if self._schedule.epoch_of(seq).is_checkpoint(seq) and seq > self._low:
            self._checkpoint(out, seq, event.state_digest)
        # A quorum certified these blocks: the primary is working, this replica was
        # only behind.  Without this, a replica catching up by sync while txs wait
        # would suspect a primary that is doing its job and leave the view alone.
        if self._phase is Phase.NORMAL:
            self._progressed(out)
        self._deliver_ready(out)
        self._recheck_hints(out)
        self._enter_epoch_if_due(out)
        if self._phase is Phase.VIEW_CHANGING:
            self._try_new_view(out)     # it may have waited for this sync

    def _recheck_hints(self, out: list[Action]) -> None:
        """Checkpoints held as hints whose epoch I know now: check them for real."""
        for key, m in self._checkpoints.take_hints(self._schedule.reach(self._last_executed)):
            self._on_checkpoint(out, key, m)

    # -- epochs (validator-set changes; not in the paper) -------------------------------

    def _learn_epoch(self, change: EpochChange) -> None:
        """The chain scheduled (or changed, while pending) an epoch."""
        if change.epoch <= self._epoch.number:
            return      # started already: what the chain said then is what I run
        if change.boundary <= self._low and self._schedule.get(change.epoch) is None:
            raise LocalProtocolError(f"epoch {change.epoch} at {change.boundary} learnt after "
                                     f"the checkpoint at {self._low} was stable")
        self._schedule.learn(change)
        self._move_window()

    def _enter_epoch_if_due(self, out: list[Action]) -> None:
        """Move to the epoch my window now lies in: its boundary checkpoint
        (or a later one) is stable and I have executed up to it, so I hold
        the epoch's final set (every block that could change it is below)."""
        target = self._schedule.epoch_of(self._low + 1)
        if target.number <= self._epoch.number or self._last_executed < self._low:
            return
        self._safety.enter_epoch(target.number)
        self._dirty = True
        self._use_epoch(target)
        self._move_window()
        self._phase, self._step = Phase.NORMAL, self._STEP_NORMAL
        self._slots.clear()
        self._payloads.clear()
        self._uncommitted_own.clear()
        self._view_changes.clear()
        self._new_view = None
        self._failed_view_changes = 0
        self._next_seq = max(self._low, self._last_delivered) + 1
        self._timers.cancel(out, VIEW_CHANGE_TIMER)
        self._schedule.forget_before(target.number - 1)    # the one before proves my checkpoint
        self._checkpoints.collect_garbage(self._low, self._high)
        out.append(ViewChanged(0, (), target.number))
        self._persist(out)
        self._refresh_progress_timer(out, progress=True)

    def _use_epoch(self, epoch: Epoch) -> None:
        self._epoch = epoch
        self._validators = epoch.validators
        self._me = epoch.validators.index_of(self._key)
        self._verify = Verifier(self._cfg.chain_id, self._schedule, epoch,
                                self._cfg.check_payload, self._cfg.payload_digest)

    # -- view change (section 4.4) ----------------------------------------------------

    def _on_view_change_normal(self, out: list[Action], sender: int, m: ViewChange) -> None:
        view = self._safety.view
        if m.new_view <= view:
            self._show_new_view(out, sender)
            return
        if not self._record_view_change(out, sender, m):
            return
        if sender == self.primary and m.new_view == view + 1 and self._me is not None:
            # The primary itself gives up its view (restarted without its log):
            # waiting for a timeout would only delay the change it asks for.  A
            # faulty primary gains nothing: by going silent it forces the same
            # view change, one timeout later.
            self._become_view_changing(out, m.new_view)
            return
        self._join_if_ahead(out)

    def _on_view_change_changing(self, out: list[Action], sender: int, m: ViewChange) -> None:
        view = self._safety.view
        if m.new_view < view:
            self._show_new_view(out, sender)
            return
        if not self._record_view_change(out, sender, m) or self._join_if_ahead(out):
            return
        if m.new_view == view:
            self._try_new_view(out)
        elif self._vc_timer_delay_ms > self._base_timeout_ms():
            self._arm_view_change_timer(out)

    def _show_new_view(self, out: list[Action], sender: int) -> None:
        """The sender is behind: show it the NEW-VIEW that started my view
        (once per retransmit tick)."""
        if self._new_view is not None and sender not in self._answered:
            self._answered.add(sender)
            out.append(Send(sender, self._new_view))

    def _record_view_change(self, out: list[Action], sender: int, m: ViewChange) -> bool:
        """Hold a new VIEW-CHANGE after verifying it; False if it was old,
        a duplicate or invalid."""
        held = self._view_changes.get(sender)
        if held is not None and (held.new_view > m.new_view or held == m):
            return False
        if m.checkpoint.seq > self._schedule.reach(self._last_executed):
            return False    # I am too far behind to know the set of its checkpoint
        problem = self._verify.view_change_problem(m)
        if problem:
            self._fault(out, sender, problem)
            return False
        self._view_changes[sender] = m
        return True

    def _view_change_has_quorum(self) -> bool:
        """A quorum (me included) has sent VIEW-CHANGEs for my view or above."""
        view = self._safety.view
        return sum(1 for vc in self._view_changes.values() if vc.new_view >= view) >= self._validators.quorum

    def _quorum_reachable(self) -> bool:
        """Connected to enough validators of my epoch to make a quorum with me."""
        reachable = self._reachable
        if reachable is None:
            return True
        me = self._key
        return 1 + sum(1 for k in self._validators.keys if k != me and k in reachable) >= self._validators.quorum

    def _join_if_ahead(self, out: list[Action]) -> bool:
        """Liveness: f+1 replicas in views above mine include a correct one,
        so join the lowest view that f+1 of them reached.  (A passive replica
        waits for their NEW-VIEW instead.)"""
        if self._me is None:
            return False
        view, f = self._safety.view, self._validators.f
        ahead = sorted((vc.new_view for r, vc in self._view_changes.items()
                        if r != self._me and vc.new_view > view), reverse=True)
        if len(ahead) <= f:
            return False
        self._become_view_changing(out, ahead[f])
        return True

    def _send_view_change(self, out: list[Action]) -> None:
        checkpoint = self._safety.checkpoint
        proofs = [proof for _, proof in sorted(self._safety.prepared.items())]
        vc = self._sign(ViewChange(self._safety.view, checkpoint, tuple(proofs), self._me,
                                   epoch=self._epoch.number))
        self._view_changes[self._me] = vc
        self._send(out, vc)
        self._arm_view_change_timer(out)

    def _arm_view_change_timer(self, out: list[Action]) -> None:
        """While waiting for NEW-VIEW: the backed-off timeout, unless another
        replica is already in a higher view.  Then the base one, so that
        replicas left a few views behind (whose capped timeouts would keep
        them exactly that far behind) catch up and meet in one view."""
        view = self._safety.view
        behind = any(vc.new_view > view for r, vc in self._view_changes.items() if r != self._me)
        delay_ms = self._base_timeout_ms() if behind else self._view_change_timeout_ms()
        self._vc_timer_delay_ms = delay_ms
        out.append(self._timers.arm(VIEW_CHANGE_TIMER, delay_ms))

    def _try_new_view(self, out: list[Action]) -> None:
        """As the primary of the view being changed to, send NEW-VIEW once a
        quorum of VIEW-CHANGEs (and the payloads they re-propose) is in hand."""
        view = self._safety.view
        if self._validators.primary(view) != self._me:
            return
        quorum = self._validators.quorum
        candidates = sorted((vc for vc in self._view_changes.values() if vc.new_view == view),
                            key=lambda vc: (vc.replica != self._me, vc.replica))
        if len(candidates) < quorum:
            return
        chosen = candidates[:quorum]
        checkpoint, plan = reproposals(chosen)
        if plan and plan[-1][0] > self._high:
            # Behind the quorum's checkpoint: I cannot know the set of every seq I
            # would re-propose yet.  Adopt the checkpoint (and sync to it) first.
            self._stabilize(out, checkpoint)
            return
        payloads = self._known_payloads(candidates)
        if any(digest != NULL_DIGEST and (seq, digest) not in payloads for seq, digest in plan):
            return      # wait for a VIEW-CHANGE that carries the missing payload
        # (at or below my stable checkpoint nothing is recorded, nor needed: no
        # correct replica with that checkpoint votes there any more)
        votes = [(seq, digest) for seq, digest in plan if seq > self._low]
        if not all(self._safety.may_sign(view, seq, PHASE_PRE_PREPARE, digest)
                   for seq, digest in votes):
            return  # signed another NEW-VIEW for this view before a crash: time out
        for seq, digest in votes:
            self._safety.record_vote(view, seq, PHASE_PRE_PREPARE, digest)
        self._dirty = True
        pre_prepares = [self._sign(PrePrepare(view, seq, digest,
                                              payloads.get((seq, digest), b""), self._me))
                        for seq, digest in plan]
        nv = self._sign(NewView(view, tuple(vc.without_payloads() for vc in chosen),
                                tuple(pre_prepares), self._me, epoch=self._epoch.number))
        self._send(out, nv)
        self._become_normal(out, nv, checkpoint)

    def _known_payloads(self, view_changes: list[ViewChange]) -> dict[tuple[int, bytes], bytes]:
        known = {(seq, digest): payload for seq, by_digest in self._payloads.items()
                 for digest, payload in by_digest.items()}
        for proof in self._safety.prepared.values():
            if proof.payload is not None:
                known[(proof.seq, proof.digest)] = proof.payload
        for vc in view_changes:
            for proof in vc.prepared:
                if proof.payload is not None:
                    known[(proof.seq, proof.digest)] = proof.payload
        return known

    def _on_new_view_normal(self, out: list[Action], sender: int, m: NewView) -> None:
        if m.view > self._safety.view:      # a view I missed entirely
            self._accept_new_view(out, sender, m)

    def _on_new_view_changing(self, out: list[Action], sender: int, m: NewView) -> None:
        if m.view >= self._safety.view:
            self._accept_new_view(out, sender, m)

    def _accept_new_view(self, out: list[Action], sender: int, m: NewView) -> None:
        def known(vc: ViewChange) -> bool:
            held = self._view_changes.get(vc.replica)
            return held is not None and held.without_payloads() == vc

        reach = self._schedule.reach(self._last_executed)
        if any(vc.checkpoint.seq > reach for vc in m.view_changes):
            return          # too far behind to check it: the checkpoints bring me up
        problem = self._verify.new_view_problem(m, known)
        if problem:
            self._fault(out, sender, problem)
            return
        checkpoint, _ = reproposals(m.view_changes)
        self._become_normal(out, m, checkpoint)

    # -- timers --------------------------------------------------------------------

    def _on_timer(self, out: list[Action], event: TimerFired) -> None:
        if not self._timers.take(event):
            return      # replaced or cancelled since it was set
        if event.kind == VIEW_CHANGE_TIMER:
            if self._phase is Phase.VIEW_CHANGING and not self._view_change_has_quorum():
                # Castro & Liskov 4.5.2: the timer that moves on to view v+2 runs only once
                # 2f+1 replicas asked for v+1, i.e. once the new primary is the one failing
                # them.  A replica alone (or nearly) in its view change climbing view after
                # view would only drift further from the others: it waits in v+1 instead,
                # re-sending its VIEW-CHANGE, and is in place when they move.
                self._arm_view_change_timer(out)
                return
            if self._phase is Phase.NORMAL and not self._quorum_reachable():
                # Cut off: no quorum could answer a VIEW-CHANGE, and asking alone
                # would strand me in v+1 after the links heal (the others, never
                # having suspected their primary, stay in v).  Ask again later.
                self._refresh_progress_timer(out, progress=True)
                return
            self._become_view_changing(out, self._safety.view + 1)
        elif event.kind == RETRANSMIT_TIMER:
            self._retransmit(out)
            out.append(self._timers.arm(RETRANSMIT_TIMER, self._retransmit_ms))

    def _refresh_progress_timer(self, out: list[Action], progress: bool) -> None:
        """In the normal phase the view-change timer runs iff there is work
        the primary should be finishing; a delivery restarts it.  A passive
        replica suspects no one."""
        if self._phase is not Phase.NORMAL or self._me is None:
            return
        work = self._pending_requests or any(
            seq > self._last_delivered and slot.pre_prepare is not None
            for seq, slot in self._slots.items())
        if not work:
            self._timers.cancel(out, VIEW_CHANGE_TIMER)
        elif progress or VIEW_CHANGE_TIMER not in self._timers:
            out.append(self._timers.arm(VIEW_CHANGE_TIMER, self._view_change_timeout_ms()))

    def _base_timeout_ms(self) -> int:
        """The epoch's view-change timeout, raised to PACE_FACTOR times the
        slowest recent commit (CommitPace), at most the epoch's maximum."""
        epoch = self._epoch
        return min(max(epoch.view_change_timeout_ms, PACE_FACTOR * self._pace_ms),
                   epoch.max_view_change_timeout_ms)

    def _view_change_timeout_ms(self) -> int:
        """The base timeout, doubled per consecutive failed view change."""
        return min(self._base_timeout_ms() << min(self._failed_view_changes, 32),
                   self._epoch.max_view_change_timeout_ms)

    def _retransmit(self, out: list[Action]) -> None:
        """Re-send what peers may have lost; receivers drop duplicates cheaply."""
        self._answered.clear()
        if self._phase is Phase.VIEW_CHANGING:
            own = self._view_changes.get(self._me)
            if own is not None and own.new_view == self._safety.view:
                out.append(Broadcast(own))
        else:
            n = self._validators.n
            for seq, slot in sorted(self._slots.items()):
                if len(slot.commits) == n:
                    continue        # everyone has committed it
                if slot.pre_prepare is not None and slot.pre_prepare.replica == self._me:
                    out.append(Broadcast(slot.pre_prepare))
                for votes in (slot.prepares, slot.commits):
                    own_vote = votes.get(self._me)
                    if own_vote is not None:
                        out.append(Broadcast(own_vote))
        if self._checkpoints.own is not None:
            out.append(Broadcast(self._checkpoints.own))
        self._sync_if_stuck(out)
        self._delivered_at_last_tick = self._last_delivered

    def _sync_if_stuck(self, out: list[Action]) -> None:
        """Re-ask a sync that got no answer, and sync to an f+1 checkpoint
        above me if nothing was delivered for a whole tick (the blocks below
        it may have been garbage-collected by everyone else)."""
        if self._sync is not None and self._sync.target_seq > self._last_delivered:
            out.append(self._sync)
            return
        if self._last_delivered != self._delivered_at_last_tick:
            return
        target = self._checkpoints.sync_target(self._last_delivered, self._validators)
        if target is not None:
            self._request_sync(out, *target)

    # -- plumbing ------------------------------------------------------------------

    def _send(self, out: list[Action], message: Message, to: int | None = None) -> None:
        """Queue a message; the safety record goes first if it changed."""
        self._persist(out)
        out.append(Broadcast(message) if to is None else Send(to, message))

    def _persist(self, out: list[Action]) -> None:
        """Queue the safety record (and prepared payloads) if they changed."""
        if self._dirty:
            payloads, dropped = self._safety.take_payload_changes()
            out.append(PersistSafety(self._safety.encode(), payloads, dropped))
            self._dirty = False

    def _sign(self, message: _Signed) -> _Signed:
        return sign(message, self._signer, self._cfg.chain_id)

    def _lost_own_proposals(self) -> bool:
        """Started as the primary of my view with pre-prepares I signed above
        the last delivered block: their payloads and slots were in memory only."""
        if self._me is None or not self.is_primary:
            return False
        return any(phase == PHASE_PRE_PREPARE and seq > self._last_delivered
                   for seq, phase in self._safety.votes)

    def _restart_seq(self) -> int:
        """Never propose again at a seq already pre-prepared in this view."""
        mine = [seq for seq, phase in self._safety.votes if phase == PHASE_PRE_PREPARE]
        return max(mine + [self._low, self._last_delivered]) + 1

    def _store_pre_prepare(self, pp: PrePrepare) -> None:
        self._slot(pp.seq).pre_prepare = pp
        by_digest = self._payloads.setdefault(pp.seq, {})
        by_digest[pp.digest] = pp.payload
        if len(by_digest) > MAX_PAYLOADS_PER_SEQ:     # one per view: keep the latest few,
            proof = self._safety.prepared.get(pp.seq)  # and always the prepared one
            keep = proof.digest if proof is not None else None
            del by_digest[next(d for d in by_digest if d != keep)]

    def _slot(self, seq: int) -> _Slot:
        slot = self._slots.get(seq)
        if slot is None:
            slot = self._slots[seq] = _Slot()
        return slot

    def _fault(self, out: list[Action], sender: int, reason: str) -> None:
        """`sender` provably misbehaved (ReportFault is for nothing less)."""
        out.append(ReportFault(sender, reason))

    def _drop(self, out: list[Action], sender: int, m: Message) -> None:
        """Not for this phase: a normal-case message while the view changes
        (section 4.4: only CHECKPOINT, VIEW-CHANGE and NEW-VIEW count)."""

    # -- the step tables: one per phase, every message type in each ------------------

    _STEP_NORMAL: dict[type, _Handler] = {
        PrePrepare: _on_pre_prepare,
        Prepare: _on_vote,
        Commit: _on_vote,
        Checkpoint: _on_checkpoint,
        ViewChange: _on_view_change_normal,
        NewView: _on_new_view_normal,
    }
    _STEP_VIEW_CHANGING: dict[type, _Handler] = {
        PrePrepare: _drop,
        Prepare: _drop,
        Commit: _drop,
        Checkpoint: _on_checkpoint,
        ViewChange: _on_view_change_changing,
        NewView: _on_new_view_changing,
    }

    # -- invariants ----------------------------------------------------------------

    def check_invariants(self, actions: Sequence[Action] = ()) -> None:
        """Raise AssertionError if the state breaks a rule of the protocol
        (consensus/invariants.py lists them).  `actions` are what the last event
        produced: every vote among them must be in the safety record persisted
        before it.  Runs after every event with ReplicaConfig.check_invariants
        (tests, the simulator); never on the node's hot path."""
        from . import invariants                 # loaded only where checks run
        audit = self._audit if self._audit is not None else invariants.Audit(self)
        invariants.check(self, audit, actions)
