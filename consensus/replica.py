"""PBFT (Castro & Liskov) as a pure state machine: `handle(event) -> actions`.

One Replica orders blocks for the node that owns it.  It keeps:
  * the log of the current view, one _Slot per seq in (low, low + W]
    (low = the stable checkpoint), garbage-collected when a checkpoint
    becomes stable, so memory stays bounded on a chain of any length;
  * the safety record (safety.py), persisted before anything it signs leaves;
  * the latest VIEW-CHANGE of each replica and the latest far-ahead
    CHECKPOINT of each replica (one per replica: bounded).

Lost messages are re-sent on a periodic "retransmit" timer (the network may
drop anything), receivers drop duplicates before checking signatures, and
every peer message is verified once before it changes state.
"""

from __future__ import annotations

from typing import Any, Mapping

from ledger.block import NULL_DIGEST
from ledger.certificate import CommitCertificate, Vote
from ledger.crypto import HASH_LEN

from .config import RETRANSMIT_TIMER, VIEW_CHANGE_TIMER, ReplicaConfig
from .errors import LocalProtocolError
from .events import (Action, Broadcast, CancelTimer, Deliver, Event, Executed, MessageReceived,
                     PersistSafety, Propose, ReportFault, RequestsPending, RequestSync, Send,
                     SetTimer, Synced, TimerFired, ViewChanged)
from .messages import (Checkpoint, CheckpointProof, Commit, NewView, PrePrepare, Prepare,
                       PreparedProof, ViewChange, sign)
from .safety import PHASE_COMMIT, PHASE_PRE_PREPARE, PHASE_PREPARE, SafetyState
from .verification import Verifier, reproposals


MAX_PAYLOADS_PER_SEQ = 4


class _Slot:
    """What the current view knows about one sequence number."""
    __slots__ = ("pre_prepare", "prepares", "commits", "prepared", "committed")

    def __init__(self) -> None:
        self.pre_prepare: PrePrepare | None = None
        self.prepares: dict[int, Prepare] = {}
        self.commits: dict[int, Commit] = {}
        self.prepared = False
        self.committed = False


class Replica:
    def __init__(self, config: ReplicaConfig, signer: Any, safety_record: bytes | None,
                 last_executed: tuple[int, bytes], *,
                 prepared_payloads: Mapping[tuple[int, bytes], bytes] | None = None) -> None:
        height, block_hash = last_executed
        if type(height) is not int or height < 0 or len(block_hash) != HASH_LEN:
            raise LocalProtocolError("last_executed must be (height >= 0, 32-byte hash)")
        public_key = getattr(signer, "public_key", None)
        if public_key is not None and public_key != config.validators[config.me]:
            raise LocalProtocolError("signer's key is not validator `me`'s key")
        self._cfg = config
        self._signer = signer
        self._me = config.me
        self._n = len(config.validators)
        self._f = (self._n - 1) // 3
        self._v = Verifier(config.chain_id, config.validators, config.checkpoint_interval,
                           config.window, config.check_payload, config.payload_digest)
        self._quorum = self._v.quorum
        self._safety = (SafetyState.decode(safety_record, prepared_payloads) if safety_record
                        else SafetyState())
        self._dirty = False                       # safety record changed since last persist

        self._last_delivered = height
        self._booted_at = (height, block_hash)
        self._slots: dict[int, _Slot] = {}
        # seq -> digest -> payload of every pre-prepare seen in the window, across
        # views: a view change must re-propose a prepared digest with its payload
        self._payloads: dict[int, dict[bytes, bytes]] = {}
        self._next_seq = self._restart_seq()       # next seq I propose as primary
        self._uncommitted_own: set[int] = set()

        self._checkpoints: dict[int, dict[int, Checkpoint]] = {}   # seq in window -> replica -> msg
        self._far_checkpoints: dict[int, Checkpoint] = {}          # replica -> latest beyond window
        self._own_checkpoint: Checkpoint | None = None
        self._sync: RequestSync | None = None
        self._delivered_at_last_tick = height

        self._view_changes: dict[int, ViewChange] = {}   # replica -> its latest view-change
        self._new_view: NewView | None = None            # the one that started my view
        self._answered: set[int] = set()                 # replicas sent a NEW-VIEW this tick
        self._pending_requests = False
        self._failed_view_changes = 0                     # consecutive, without a delivery
        self._vc_timer_delay = 0
        self._timers: dict[str, int] = {}                 # kind -> token of the armed timer
        self._token = 0

    # -- queries -------------------------------------------------------------------

    @property
    def view(self) -> int:
        return self._safety.view

    @property
    def primary(self) -> int:
        return self._v.primary(self._safety.view)

    @property
    def is_primary(self) -> bool:
        return self.primary == self._me

    @property
    def in_view_change(self) -> bool:
        return not self._safety.active

    @property
    def last_delivered(self) -> int:
        return self._last_delivered

    @property
    def stable_checkpoint(self) -> int:
        return self._safety.checkpoint.seq

    @property
    def log_size(self) -> int:
        """Entries held for the log (for tests and metrics): stays bounded by W."""
        return (len(self._slots) + len(self._payloads) + len(self._checkpoints)
                + len(self._safety.votes) + len(self._safety.prepared))

    def next_proposal_seq(self) -> int | None:
        if not (self._safety.active and self.is_primary):
            return None
        seq = self._next_seq
        if seq > self._high or len(self._uncommitted_own) >= self._cfg.max_in_flight:
            return None
        return seq

    @property
    def _low(self) -> int:
        return self._safety.checkpoint.seq

    @property
    def _high(self) -> int:
        return self._safety.checkpoint.seq + self._cfg.window

    # -- entry points --------------------------------------------------------------

    def start(self) -> list[Action]:
        """Call once before the first event: arms timers, and after a restart
        rejoins an unfinished view change or asks to sync to the checkpoint."""
        out: list[Action] = [self._set_timer(RETRANSMIT_TIMER, self._cfg.retransmit_interval_ms)]
        checkpoint = self._safety.checkpoint
        if checkpoint.seq > self._last_delivered:
            self._request_sync(out, checkpoint.seq, checkpoint.state_digest,
                               tuple(v.validator for v in checkpoint.votes))
        if not self._safety.active:
            self._send_view_change(out)
        seq, state_digest = self._safety.own_checkpoint
        height, block_hash = self._booted_at
        if height % self._cfg.checkpoint_interval == 0 and height > seq:
            seq, state_digest = height, block_hash      # stored, but Executed never came
        if seq > self._low:
            self._checkpoint(out, seq, state_digest)
        return out

    def handle(self, event: Event) -> list[Action]:
        out: list[Action] = []
        if type(event) is MessageReceived:
            self._on_message(out, event.sender, event.message)
        elif type(event) is TimerFired:
            self._on_timer(out, event)
        elif type(event) is Propose:
            self._on_propose(out, event)
        elif type(event) is RequestsPending:
            self._pending_requests = True
            self._refresh_progress_timer(out, progress=False)
        elif type(event) is Executed:
            self._on_executed(out, event.seq, event.state_digest)
        elif type(event) is Synced:
            self._on_synced(out, event.seq, event.state_digest)
        else:
            raise LocalProtocolError(f"not a consensus event: {event!r}")
        return out

    # -- plumbing ------------------------------------------------------------------

    def _send(self, out: list[Action], message: Any, to: int | None = None) -> None:
        """Queue a message; the safety record goes first if it changed."""
        self._persist(out)
        out.append(Broadcast(message) if to is None else Send(to, message))

    def _persist(self, out: list[Action]) -> None:
        """Queue the safety record (and prepared payloads) if they changed."""
        if self._dirty:
            payloads, dropped = self._safety.take_payload_changes()
            out.append(PersistSafety(self._safety.encode(), payloads, dropped))
            self._dirty = False

    def _sign(self, message: Any) -> Any:
        return sign(message, self._signer, self._cfg.chain_id)

    def _set_timer(self, kind: str, delay_ms: int) -> SetTimer:
        self._token += 1
        self._timers[kind] = self._token
        return SetTimer(kind, delay_ms, self._token)

    def _cancel_timer(self, out: list[Action], kind: str) -> None:
        if self._timers.pop(kind, None) is not None:
            out.append(CancelTimer(kind))

    def _view_change_timeout(self) -> int:
        cfg = self._cfg
        return min(cfg.view_change_timeout_ms << min(self._failed_view_changes, 32),
                   cfg.max_view_change_timeout_ms)

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
        out.append(ReportFault(sender, reason))

    # -- messages ------------------------------------------------------------------

    def _on_message(self, out: list[Action], sender: int, message: Any) -> None:
        if type(sender) is not int or not 0 <= sender < self._n:
            raise LocalProtocolError(f"sender {sender!r} is not a validator index")
        kind = type(message)
        if kind is NewView:               # self-certifying: may be relayed by anyone
            self._on_new_view(out, sender, message)
            return
        handler = self._HANDLERS.get(kind)
        if handler is None:
            raise LocalProtocolError(f"not a consensus message: {kind.__name__}")
        if message.replica != sender:
            self._fault(out, sender, f"{kind.__name__} claims to be from replica {message.replica}")
            return
        if sender == self._me:
            return
        handler(self, out, sender, message)

    def _accepts_normal_case(self, out: list[Action], sender: int, view: int, seq: int) -> bool:
        """Normal-case messages count only in the active current view and
        within the watermarks; older ones are stale, not faults."""
        if view != self._safety.view or not self._safety.active or seq <= self._low:
            return False
        if seq > self._high:
            self._fault(out, sender, f"seq {seq} above the high watermark {self._high}")
            return False
        return True

    def _on_pre_prepare(self, out: list[Action], sender: int, m: PrePrepare) -> None:
        if not self._accepts_normal_case(out, sender, m.view, m.seq):
            return
        if sender != self.primary:
            self._fault(out, sender, "pre-prepare from a backup")
            return
        slot = self._slot(m.seq)
        held = slot.pre_prepare
        if held is not None and held.digest == m.digest:
            return
        if not self._v.signed(m):
            self._fault(out, sender, "bad pre-prepare signature")
            return
        if held is not None:
            self._fault(out, sender, f"primary equivocated at seq {m.seq}")
            return
        if not self._v.payload_matches(m.seq, m.payload, m.digest):
            self._fault(out, sender, f"payload rejected or not matching its digest at seq {m.seq}")
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
        if not self._accepts_normal_case(out, sender, m.view, m.seq):
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
        if not self._v.signed(m):
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
        if not slot.prepared:
            primary = self.primary
            prepares = [p for r, p in sorted(slot.prepares.items())
                        if p.digest == digest and r != primary]
            if len(prepares) < self._quorum - 1:
                return
            slot.prepared = True
            proof = PreparedProof(view, seq, digest, pp.signature,
                                  tuple(Vote(p.replica, p.signature)
                                        for p in prepares[:self._quorum - 1]), pp.payload)
            self._safety.record_prepared(proof)
            self._dirty = True
            if self._safety.record_vote(view, seq, PHASE_COMMIT, digest):
                commit = self._sign(Commit(view, seq, digest, self._me))
                slot.commits[self._me] = commit
                self._send(out, commit)
        if slot.committed:
            return
        if sum(1 for c in slot.commits.values() if c.digest == digest) < self._quorum:
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
            certificate = CommitCertificate(pp.view, seq, pp.digest, votes[:self._quorum])
            out.append(Deliver(seq, pp.payload, certificate))
            self._last_delivered = seq
            delivered = True
        if delivered:
            self._failed_view_changes = 0
            self._pending_requests = False
            self._refresh_progress_timer(out, progress=True)

    # -- the primary ---------------------------------------------------------------

    def _on_propose(self, out: list[Action], event: Propose) -> None:
        if type(event.payload) is not bytes or type(event.digest) is not bytes \
                or len(event.digest) != HASH_LEN:
            raise LocalProtocolError("Propose needs a bytes payload and a 32-byte digest")
        if (event.payload == b"") != (event.digest == NULL_DIGEST):
            raise LocalProtocolError("the null payload b\"\" and NULL_DIGEST go together")
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

    # -- checkpoints and state sync ------------------------------------------------

    def _on_executed(self, out: list[Action], seq: int, state_digest: bytes) -> None:
        if seq > self._last_delivered:
            raise LocalProtocolError(f"Executed({seq}) before Deliver({seq})")
        if seq % self._cfg.checkpoint_interval == 0 and seq > self._low:
            self._checkpoint(out, seq, state_digest)

    def _checkpoint(self, out: list[Action], seq: int, state_digest: bytes) -> None:
        own = self._sign(Checkpoint(seq, state_digest, self._me))
        self._own_checkpoint = own
        self._safety.own_checkpoint = (seq, state_digest)
        self._dirty = True
        self._send(out, own)
        self._store_checkpoint(out, own)

    def _on_checkpoint(self, out: list[Action], sender: int, m: Checkpoint) -> None:
        if m.seq % self._cfg.checkpoint_interval or m.seq == 0:
            self._fault(out, sender, f"checkpoint at {m.seq} is not a checkpoint seq")
            return
        if m.seq <= self._low:
            return
        if m.seq <= self._high:
            held = self._checkpoints.get(m.seq, {}).get(sender)
        else:
            held = self._far_checkpoints.get(sender)
            if held is not None and held.seq > m.seq:
                return
        if held is not None and held.seq == m.seq and held.state_digest == m.state_digest:
            return
        if not self._v.signed(m):
            self._fault(out, sender, "bad checkpoint signature")
            return
        if held is not None and held.seq == m.seq:
            self._fault(out, sender, f"two checkpoints at {m.seq}")
            return
        self._store_checkpoint(out, m)

    def _store_checkpoint(self, out: list[Action], m: Checkpoint) -> None:
        if m.seq > self._high:
            self._far_checkpoints[m.replica] = m
            matching = [c for c in self._far_checkpoints.values()
                        if c.seq == m.seq and c.state_digest == m.state_digest]
        else:
            by_replica = self._checkpoints.setdefault(m.seq, {})
            by_replica[m.replica] = m
            matching = [c for c in by_replica.values() if c.state_digest == m.state_digest]
        if len(matching) >= self._quorum:
            votes = tuple(sorted((Vote(c.replica, c.signature) for c in matching),
                                 key=lambda v: v.validator))
            self._stabilize(out, CheckpointProof(m.seq, m.state_digest, votes[:self._quorum]))
        elif len(matching) > self._f and m.seq > self._high:
            # f+1 agree on a state beyond what my log can reach: one of them is correct.
            self._request_sync(out, m.seq, m.state_digest, tuple(c.replica for c in matching))

    def _stabilize(self, out: list[Action], proof: CheckpointProof) -> None:
        """`proof` is a valid stable checkpoint above mine: collect garbage."""
        if proof.seq <= self._low:
            return
        seq = proof.seq
        self._safety.advance_checkpoint(proof)
        self._dirty = True
        self._slots = {s: slot for s, slot in self._slots.items() if s > seq}
        self._payloads = {s: p for s, p in self._payloads.items() if s > seq}
        self._uncommitted_own = {s for s in self._uncommitted_own if s > seq}
        in_window = {s: c for s, c in self._checkpoints.items() if s > seq}
        for replica, c in list(self._far_checkpoints.items()):
            if c.seq <= self._high:
                del self._far_checkpoints[replica]
                if c.seq > seq:
                    in_window.setdefault(c.seq, {})[replica] = c
        self._checkpoints = in_window
        self._next_seq = max(self._next_seq, seq + 1)
        if seq > self._last_delivered:
            self._request_sync(out, seq, proof.state_digest,
                               tuple(v.validator for v in proof.votes))

    def _request_sync(self, out: list[Action], seq: int, digest: bytes,
                      peers: tuple[int, ...]) -> None:
        if seq <= self._last_delivered or (self._sync and self._sync.target_seq >= seq):
            return
        self._sync = RequestSync(seq, digest, tuple(p for p in peers if p != self._me))
        out.append(self._sync)

    def _on_synced(self, out: list[Action], seq: int, state_digest: bytes) -> None:
        if seq <= self._last_delivered:
            return
        self._last_delivered = seq
        self._uncommitted_own = {s for s in self._uncommitted_own if s > seq}
        self._next_seq = max(self._next_seq, seq + 1)
        if self._sync is not None and self._sync.target_seq <= seq:
            self._sync = None
        if seq % self._cfg.checkpoint_interval == 0 and seq > self._low:
            self._checkpoint(out, seq, state_digest)
        self._deliver_ready(out)

    # -- view change ---------------------------------------------------------------

    def _refresh_progress_timer(self, out: list[Action], progress: bool) -> None:
        """While the view is active, the view-change timer runs iff there is
        work the primary should be finishing; a delivery restarts it."""
        if not self._safety.active:
            return
        work = self._pending_requests or any(
            seq > self._last_delivered and slot.pre_prepare is not None
            for seq, slot in self._slots.items())
        if not work:
            self._cancel_timer(out, VIEW_CHANGE_TIMER)
        elif progress or VIEW_CHANGE_TIMER not in self._timers:
            out.append(self._set_timer(VIEW_CHANGE_TIMER, self._view_change_timeout()))

    def _start_view_change(self, out: list[Action], new_view: int) -> None:
        self._safety.enter_view(new_view, active=False)
        self._dirty = True
        self._slots.clear()
        self._uncommitted_own.clear()
        self._new_view = None
        self._failed_view_changes += 1
        self._send_view_change(out)
        self._try_new_view(out)

    def _send_view_change(self, out: list[Action]) -> None:
        checkpoint = self._safety.checkpoint
        proofs = [proof for _, proof in sorted(self._safety.prepared.items())]
        vc = self._sign(ViewChange(self._safety.view, checkpoint, tuple(proofs), self._me))
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
        delay = self._cfg.view_change_timeout_ms if behind else self._view_change_timeout()
        self._vc_timer_delay = delay
        out.append(self._set_timer(VIEW_CHANGE_TIMER, delay))

    def _on_view_change(self, out: list[Action], sender: int, m: ViewChange) -> None:
        view = self._safety.view
        if m.new_view < view or (m.new_view == view and self._safety.active):
            # The sender is behind: show it the NEW-VIEW that started my view.
            if self._new_view is not None and sender not in self._answered:
                self._answered.add(sender)
                out.append(Send(sender, self._new_view))
            return
        held = self._view_changes.get(sender)
        if held is not None and (held.new_view > m.new_view or held == m):
            return
        problem = self._v.view_change_problem(m)
        if problem:
            self._fault(out, sender, problem)
            return
        self._view_changes[sender] = m
        # Liveness: f+1 replicas ahead of me include a correct one, so join them.
        ahead = sorted((vc.new_view for r, vc in self._view_changes.items()
                        if r != self._me and vc.new_view > view), reverse=True)
        if len(ahead) > self._f:
            self._start_view_change(out, ahead[self._f])
        elif m.new_view == view:
            self._try_new_view(out)
        elif not self._safety.active and self._vc_timer_delay > self._cfg.view_change_timeout_ms:
            self._arm_view_change_timer(out)

    def _try_new_view(self, out: list[Action]) -> None:
        """As the primary of a view being changed to, send NEW-VIEW once a
        quorum of VIEW-CHANGEs (and the payloads they re-propose) is in hand."""
        view = self._safety.view
        if self._safety.active or self._v.primary(view) != self._me:
            return
        candidates = sorted((vc for vc in self._view_changes.values() if vc.new_view == view),
                            key=lambda vc: (vc.replica != self._me, vc.replica))
        if len(candidates) < self._quorum:
            return
        chosen = candidates[:self._quorum]
        checkpoint, plan = reproposals(chosen)
        payloads = self._known_payloads(candidates)
        if any(digest != NULL_DIGEST and (seq, digest) not in payloads for seq, digest in plan):
            return      # wait for a VIEW-CHANGE that carries the missing payload
        pre_prepares = []
        self._dirty = True
        for seq, digest in plan:
            # (at or below my stable checkpoint nothing is recorded, nor needed:
            # no correct replica with that checkpoint votes there any more)
            if seq > self._low and not self._safety.record_vote(view, seq, PHASE_PRE_PREPARE,
                                                                 digest):
                return  # signed another NEW-VIEW for this view before a crash: time out
            pre_prepares.append(self._sign(PrePrepare(
                view, seq, digest, payloads.get((seq, digest), b""), self._me)))
        self._dirty = True
        nv = self._sign(NewView(view, tuple(vc.without_payloads() for vc in chosen),
                                tuple(pre_prepares), self._me))
        self._send(out, nv)
        self._enter_view(out, nv, checkpoint)

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

    def _on_new_view(self, out: list[Action], sender: int, m: NewView) -> None:
        view = self._safety.view
        if m.view < view or (m.view == view and self._safety.active):
            return

        def known(vc: ViewChange) -> bool:
            held = self._view_changes.get(vc.replica)
            return held is not None and held.without_payloads() == vc

        problem = self._v.new_view_problem(m, known)
        if problem:
            self._fault(out, sender, problem)
            return
        if m.view > view:
            self._safety.enter_view(m.view, active=False)
            self._slots.clear()
            self._uncommitted_own.clear()
        checkpoint, _ = reproposals(m.view_changes)
        self._enter_view(out, m, checkpoint)

    def _enter_view(self, out: list[Action], nv: NewView, checkpoint: CheckpointProof) -> None:
        view = nv.view
        self._safety.enter_view(view, active=True)
        self._dirty = True
        self._new_view = nv
        self._view_changes = {r: vc for r, vc in self._view_changes.items() if vc.new_view > view}
        self._cancel_timer(out, VIEW_CHANGE_TIMER)
        out.append(ViewChanged(view))
        if checkpoint.seq > self._low:
            self._stabilize(out, checkpoint)
        primary = self._me == nv.replica
        last = self._low
        prepares = []
        for pp in nv.pre_prepares:
            last = max(last, pp.seq)
            if pp.seq <= self._low:
                continue
            if primary:
                self._store_pre_prepare(pp)
                self._uncommitted_own.add(pp.seq)
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

    # -- timers --------------------------------------------------------------------

    def _on_timer(self, out: list[Action], event: TimerFired) -> None:
        if self._timers.get(event.kind) != event.token:
            return      # replaced or cancelled since it was set
        del self._timers[event.kind]
        if event.kind == VIEW_CHANGE_TIMER:
            self._start_view_change(out, self._safety.view + 1)
        elif event.kind == RETRANSMIT_TIMER:
            self._retransmit(out)
            out.append(self._set_timer(RETRANSMIT_TIMER, self._cfg.retransmit_interval_ms))

    def _retransmit(self, out: list[Action]) -> None:
        """Re-send what peers may have lost; receivers drop duplicates cheaply."""
        self._answered.clear()
        if not self._safety.active:
            own = self._view_changes.get(self._me)
            if own is not None and own.new_view == self._safety.view:
                out.append(Broadcast(own))
        else:
            for seq, slot in sorted(self._slots.items()):
                if len(slot.commits) == self._n:
                    continue        # everyone has committed it
                if slot.pre_prepare is not None and slot.pre_prepare.replica == self._me:
                    out.append(Broadcast(slot.pre_prepare))
                for votes in (slot.prepares, slot.commits):
                    own_vote = votes.get(self._me)
                    if own_vote is not None:
                        out.append(Broadcast(own_vote))
        if self._own_checkpoint is not None:
            out.append(Broadcast(self._own_checkpoint))
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
        for seq, by_replica in sorted(self._checkpoints.items(), reverse=True):
            if seq <= self._last_delivered:
                break
            counts: dict[bytes, list[int]] = {}
            for c in by_replica.values():
                counts.setdefault(c.state_digest, []).append(c.replica)
            for digest, replicas in counts.items():
                if len(replicas) > self._f:
                    self._request_sync(out, seq, digest, tuple(replicas))
                    return

    _HANDLERS = {
        PrePrepare: _on_pre_prepare,
        Prepare: _on_vote,
        Commit: _on_vote,
        Checkpoint: _on_checkpoint,
        ViewChange: _on_view_change,
    }
