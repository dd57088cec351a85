"""The invariants a Replica checks after every event (ReplicaConfig.check_invariants:
on in tests and the simulator, off in the node).  Each is a rule of Castro &
Liskov's protocol or of this implementation's bookkeeping; a broken one is a
bug, reported as AssertionError:

  * the phase agrees with the safety record's `active` flag, and the replica
    steps with that phase's table;
  * (epoch, view), delivered height and stable checkpoint never go back;
  * everything kept (slots, payloads, votes, prepared certificates,
    checkpoints) lies in the window (low, low + W], which ends at the next
    boundary: memory stays bounded and no slot spans two epochs;
  * a passive replica (not in its epoch's set) signs nothing;
  * committed => prepared => pre-prepared, with 2f matching PREPAREs and the
    prepared certificate in the safety record; COMMIT only after prepared;
  * each of the replica's own votes in the log is in the safety record, and
    each vote it sends was in the last record persisted before it;
  * it never sends two digests for one (view, seq, phase);
  * only the primary of a view pre-prepares in it, and never again at a seq;
  * a delivered block was committed, and no seq is delivered twice;
  * a started replica has its retransmit timer armed, and a view-change timer
    while it waits for NEW-VIEW (it can always make progress).

The checker reads the Replica's internals: it is part of the core, kept out of
replica.py so the protocol reads on its own.
"""

from __future__ import annotations

from typing import Sequence

from .config import RETRANSMIT_TIMER, VIEW_CHANGE_TIMER
from .events import Action, Broadcast, Deliver, PersistSafety, Send
from .messages import (PHASE_COMMIT, PHASE_PRE_PREPARE, PHASE_PREPARE, Checkpoint, Commit,
                       Message, NewView, PrePrepare, Prepare, ViewChange, epoch_of_message,
                       signed_votes)
from .replica import MAX_PAYLOADS_PER_SEQ, Phase, Replica, _Slot
from .safety import recorded_epoch, recorded_votes


def check(r: Replica, audit: Audit, actions: Sequence[Action]) -> None:
    """Raise AssertionError if `r`, having just produced `actions`, breaks an invariant."""
    audit.check_actions(r, actions)
    problem = _state_problem(r, audit)
    if problem is not None:
        raise AssertionError(f"replica {r._me} (view {r.view}): {problem}")


def _state_problem(r: Replica, audit: Audit) -> str | None:
    safety, me = r._safety, r._me
    low, high, view = r._low, r._high, safety.view
    votes = safety.votes
    # The phase is one state, kept in two places: memory and the record.
    normal = r._phase is Phase.NORMAL
    if normal != safety.active:
        return f"phase {r._phase.value} but the safety record says active={safety.active}"
    if r._step is not (r._STEP_NORMAL if normal else r._STEP_VIEW_CHANGING):
        return f"phase {r._phase.value} steps with the other phase's table"
    # Never back: views, deliveries, the stable checkpoint.
    epoch = r._epoch
    if safety.epoch != epoch.number:
        return f"runs epoch {epoch.number} but the safety record says {safety.epoch}"
    if (safety.epoch, view) < audit.view or r._last_delivered < audit.delivered \
            or low < audit.low:
        return (f"went back: (epoch, view) {audit.view}->{(safety.epoch, view)}, delivered "
                f"{audit.delivered}->{r._last_delivered}, checkpoint {audit.low}->{low}")
    audit.view, audit.delivered, audit.low = (safety.epoch, view), r._last_delivered, low
    if low < epoch.start:
        return f"stable checkpoint {low} before epoch {epoch.number}"
    if r._last_executed >= low and r._schedule.epoch_of(low + 1) is not epoch:
        return f"caught up to the stable checkpoint {low} but still in epoch {epoch.number}"
    if r._me != epoch.validators.index_of(r._key):
        return "my index is not my key's in the epoch's set"
    if high != r._compute_high():
        return f"stale high watermark {high} (it is {r._compute_high()})"
    # Everything kept is bounded by the window (low, high].
    if low and not r._schedule.epoch_of(low).is_checkpoint(low):
        return f"stable checkpoint {low} is not a checkpoint seq"
    for what, seqs in (("slots", r._slots), ("payloads", r._payloads),
                       ("prepared certificates", safety.prepared),
                       ("votes", [seq for seq, _ in votes])):
        if seqs and (min(seqs) <= low or max(seqs) > high):
            return f"{what} at seqs {sorted(seqs)} outside the window ({low}, {high}]"
    if any(not 0 < len(p) <= MAX_PAYLOADS_PER_SEQ for p in r._payloads.values()):
        return "payloads per seq out of bounds"
    problem = r._checkpoints.problem(low, high, epoch.is_checkpoint, r._validators.n)
    if problem is not None:
        return problem
    if r._me is None and (votes or not normal):
        return "a passive replica holds votes or changes views"
    own = r._checkpoints.own
    if own is not None and (own.seq, own.state_digest) != safety.own_checkpoint:
        return "the checkpoint I send is not the one in my safety record"
    if len(r._view_changes) > r._validators.n:
        return "more VIEW-CHANGEs held than validators"
    if not r._uncommitted_own <= r._slots.keys():
        return "own uncommitted proposals without a slot"
    # Only the primary of a view pre-prepares in it, and never twice at a seq.
    primary = r._validators.primary(view)
    for seq, phase in votes:
        if phase == PHASE_PRE_PREPARE:
            if primary != me:
                return f"pre-prepare vote in view {view}, whose primary is not me"
            if normal and seq >= r._next_seq:
                return f"next proposal seq {r._next_seq} at or below one I pre-prepared"
    # The log of the view: committed => prepared => pre-prepared with a
    # quorum, and each of my votes in it is in the safety record.
    for seq, slot in r._slots.items():
        problem = _slot_problem(r, seq, slot, view, primary, votes)
        if problem is not None:
            return f"slot {seq}: {problem}"
    # Liveness: a started replica always has a reason to wake up.
    if audit.started:
        if RETRANSMIT_TIMER not in r._timers:
            return "no retransmit timer armed"
        if not normal and VIEW_CHANGE_TIMER not in r._timers:
            return "waiting for a NEW-VIEW without a view-change timer"
    return None


def _slot_problem(r: Replica, seq: int, slot: _Slot, view: int, primary: int,
                  votes: dict[tuple[int, str], bytes]) -> str | None:
    me, quorum = r._me, r._validators.quorum
    pp = slot.pre_prepare
    if pp is not None:
        if pp.view != view or pp.seq != seq:
            return f"holds a pre-prepare for ({pp.view}, {pp.seq})"
        if pp.replica == me and votes.get((seq, PHASE_PRE_PREPARE)) != pp.digest:
            return "my pre-prepare is not in my safety record"
    if slot.prepared:
        if pp is None:
            return "prepared without a pre-prepare"
        digest = pp.digest
        matching = sum(1 for sender, p in slot.prepares.items()
                       if p.digest == digest and sender != primary)
        if matching < quorum - 1:
            return f"prepared with {matching} matching prepares"
        proof = r._safety.prepared.get(seq)
        if proof is None or proof.view != view or proof.digest != digest:
            return "prepared, but its certificate is not in the safety record"
        if slot.committed and sum(1 for c in slot.commits.values()
                                  if c.digest == digest) < quorum:
            return "committed without a quorum of commits"
    elif slot.committed:
        return "committed but not prepared"
    prepare = slot.prepares.get(me)
    if prepare is not None and (prepare.view != view
                                or votes.get((seq, PHASE_PREPARE)) != prepare.digest):
        return "my prepare is not in my safety record"
    commit = slot.commits.get(me)
    if commit is not None:
        if not slot.prepared:
            return "I sent a commit without having prepared"
        if commit.view != view or votes.get((seq, PHASE_COMMIT)) != commit.digest:
            return "my commit is not in my safety record"
    return None


class Audit:
    """What check_invariants remembers between events: the highest values
    seen (they never go back), the votes of the last persisted record (what
    would survive a crash now), and every vote sent since the replica was
    built (never two digests for one (view, seq, phase))."""
    __slots__ = ("started", "view", "delivered", "low", "durable", "durable_epoch", "sent")

    def __init__(self, replica: Replica) -> None:
        safety = replica._safety
        self.started = False
        self.view, self.low = (safety.epoch, safety.view), safety.checkpoint.seq
        self.delivered = replica._last_delivered
        self.durable = (safety.view, safety.checkpoint.seq, dict(safety.votes))
        self.durable_epoch = safety.epoch
        self.sent: dict[tuple[int, int, str], bytes] = {}

    def check_actions(self, replica: Replica, actions: Sequence[Action]) -> None:
        delivered = self.delivered
        for action in actions:
            kind = type(action)
            if kind is PersistSafety:
                self.durable = recorded_votes(action.record)
                self.durable_epoch = recorded_epoch(action.record)
            elif kind is Send or kind is Broadcast:
                self._check_sent(replica, action.message)
            elif kind is Deliver:
                if action.seq <= delivered:
                    raise AssertionError(f"delivered {action.seq} again (at {delivered})")
                delivered = action.seq
                slot = replica._slots.get(action.seq)
                if slot is not None and slot.pre_prepare is not None and not (
                        slot.committed and slot.pre_prepare.digest == action.certificate.digest):
                    raise AssertionError(f"delivered {action.seq} without committing it")
        low = replica._safety.checkpoint.seq
        if low > self.low:  # bounded: what the stable checkpoint made garbage goes
            self.sent = {key: d for key, d in self.sent.items() if key[1] > low}

    def _check_sent(self, replica: Replica, message: Message) -> None:
        view, low, votes = self.durable
        kind = type(message)
        schedule = replica._schedule
        epoch = schedule.get(epoch_of_message(message, lambda s: schedule.epoch_of(s).number))
        assert epoch is not None, f"sent a message of an epoch I do not know: {message}"
        me = epoch.validators.index_of(replica._key)
        if me is None and kind is not NewView:
            raise AssertionError(f"sent {kind.__name__} in epoch {epoch.number}, where I am "
                                 "not a validator")
        if kind is Checkpoint:
            return
        if (kind is NewView or kind is ViewChange) and message.replica == me and \
                (message.epoch, _view_of(message)) > (self.durable_epoch, view):
            raise AssertionError(f"sent {kind.__name__} for ({message.epoch}, "
                                 f"{_view_of(message)}) before persisting view {view}")
        if me is None:
            return      # a NEW-VIEW relayed, signed by another
        for vote in signed_votes(message, me, epoch.validators.primary):
            key = vote[:3]
            if self.sent.setdefault(key, vote[3]) != vote[3]:
                raise AssertionError(f"signed two digests for (view, seq, phase) {key}")
        if message.replica != me:
            return
        if kind is NewView:
            direct = message.pre_prepares
        elif kind is PrePrepare or kind is Prepare or kind is Commit:
            direct = (message,)
        else:
            return
        for vote in direct:
            if vote.seq <= low:
                continue    # forgotten with the checkpoint, where nothing is signed again
            if vote.view != view or votes.get((vote.seq, vote.PHASE)) != vote.digest:
                raise AssertionError(f"sent ({vote.view}, {vote.seq}, {vote.PHASE}) before "
                                     f"it was in a persisted safety record")


def _view_of(message: NewView | ViewChange) -> int:
    return message.view if type(message) is NewView else message.new_view
