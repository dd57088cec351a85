"""Scripted interactions with the PBFT core (etcd/raft style): every message
delivery, drop and timer firing is spelled out by the test."""

from dataclasses import replace

import pytest

from consensus.config import RETRANSMIT_TIMER, VIEW_CHANGE_TIMER
from consensus.errors import LocalProtocolError
from consensus.events import (Broadcast, CommitPace, Deliver, MessageReceived, PeersReachable, PersistSafety,
                              Propose, ReportFault, RequestsPending, SetTimer, Synced, TimerFired)
from consensus.messages import (Checkpoint, Commit, NewView, PrePrepare, Prepare, ViewChange,
                                decode_message, sign)
from consensus.replica import Replica
from consensus.safety import GENESIS_CHECKPOINT
from ledger.block import NULL_DIGEST

from .cluster import CHAIN, GENESIS, Cluster, config, keys, make_payload, payload_digest


def assert_agreement_and_certificates(cluster, members=None):
    members = range(cluster.n) if members is None else members
    validators = [k.public_key for k in cluster.keys]
    longest = max((cluster.digests(i) for i in members), key=len)
    for i in members:
        delivered = cluster.nodes[i].delivered
        assert [d.seq for d in delivered] == list(range(1, len(delivered) + 1))
        assert cluster.digests(i) == longest[:len(delivered)]
        for d in delivered:
            assert d.certificate.height == d.seq
            assert d.certificate.problem(CHAIN, validators) is None


def commit_blocks(cluster, count):
    for _ in range(count):
        assert cluster.propose() is not None
        cluster.step()


# -- normal case ---------------------------------------------------------------------

def test_normal_case_delivers_in_order_with_valid_certificates():
    c = Cluster(4)
    commit_blocks(c, 6)
    assert [len(node.delivered) for node in c.nodes] == [6] * 4
    assert_agreement_and_certificates(c)
    assert all(not node.faults for node in c.nodes)
    assert [d.payload for d in c.nodes[2].delivered][0] == make_payload(1)[0]


def test_single_node_chain_commits_on_propose():
    c = Cluster(1)
    replica = c.nodes[0].replica
    payload, digest = make_payload(1)
    actions = replica.handle(Propose(1, payload, digest))
    delivers = [a for a in actions if isinstance(a, Deliver)]
    assert [d.seq for d in delivers] == [1]
    assert delivers[0].certificate.problem(CHAIN, [keys(1)[0].public_key]) is None
    # the safety record is persisted before the pre-prepare and the commit leave
    kinds = [type(a) for a in actions]
    assert kinds.index(PersistSafety) < kinds.index(Broadcast)


def test_pipelining_stops_at_max_in_flight_and_resumes_after_commits():
    c = Cluster(4, max_in_flight=3)
    assert [c.propose() for _ in range(4)] == [1, 2, 3, None]
    assert c.nodes[0].replica.next_proposal_seq() is None
    c.step()
    assert [len(node.delivered) for node in c.nodes] == [3] * 4
    assert c.propose() == 4


def test_commits_out_of_order_are_delivered_in_seq_order_without_gaps():
    c = Cluster(4)
    c.propose(), c.propose()
    held = []
    c.step(drop=lambda s, d, m: m.seq == 1 and held.append((s, d, m)) is None
           if isinstance(m, (Prepare, Commit)) else False)
    assert all(not node.delivered for node in c.nodes)        # 2 is committed, 1 is not
    for src, dst, message in held:
        c.queue.append((src, dst, message.encode()))
    c.step()
    assert [[d.seq for d in node.delivered] for node in c.nodes] == [[1, 2]] * 4


def test_faulty_messages_are_reported_and_ignored():
    c = Cluster(4)
    replica = c.nodes[1].replica
    k = keys(4)
    d = make_payload(1)[1]
    cases = [
        (2, sign(Prepare(0, 1, d, 3), k[3], CHAIN), "claims to be from replica 3"),
        (2, replace(sign(Prepare(0, 1, d, 2), k[2], CHAIN), signature=bytes(64)), "bad prepare signature"),
        (2, sign(Prepare(0, 1, d, 2), k[2], "another-chain"), "bad prepare signature"),
        (2, sign(PrePrepare(0, 1, d, make_payload(1)[0], 2), k[2], CHAIN), "pre-prepare from a backup"),
        (0, sign(PrePrepare(0, 1, d, b"not msgpack", 0), k[0], CHAIN), "payload rejected"),
        (0, sign(Prepare(0, 1, d, 0), k[0], CHAIN), "prepare from the primary"),
        (2, sign(Checkpoint(3, d, 2), k[2], CHAIN), "not a checkpoint seq"),
    ]
    for sender, message, reason in cases:
        actions = replica.handle(MessageReceived(sender, message))
        assert [type(a) for a in actions] == [ReportFault], reason
        assert reason in actions[0].reason
    with pytest.raises(LocalProtocolError):
        replica.handle(MessageReceived(7, cases[0][1]))
    with pytest.raises(LocalProtocolError):
        replica.handle("not an event")


def test_equivocating_primary_is_reported_and_second_proposal_ignored():
    c = Cluster(4)
    replica = c.nodes[1].replica
    k0 = keys(4)[0]
    p1, d1 = make_payload(1, "a")
    p2, d2 = make_payload(1, "b")
    first = replica.handle(MessageReceived(0, sign(PrePrepare(0, 1, d1, p1, 0), k0, CHAIN)))
    assert any(isinstance(a, Broadcast) and isinstance(a.message, Prepare) for a in first)
    second = replica.handle(MessageReceived(0, sign(PrePrepare(0, 1, d2, p2, 0), k0, CHAIN)))
    assert [type(a) for a in second] == [ReportFault]
    assert "equivocated" in second[0].reason


# -- checkpoints and garbage collection ----------------------------------------------

def test_checkpoints_become_stable_and_log_stays_bounded_over_thousands_of_blocks():
    c = Cluster(1, checkpoint_interval=10, window=20)
    replica = c.nodes[0].replica
    sizes = []
    for _ in range(3000):
        c.propose()
        sizes.append(replica.log_size)
    assert replica.last_delivered == 3000
    assert replica.stable_checkpoint == 3000
    assert max(sizes) <= 3 * 20 + 10


def test_four_replicas_collect_garbage_at_each_stable_checkpoint():
    c = Cluster(4, checkpoint_interval=4, window=8)
    peak = 0
    for _ in range(300):
        c.propose()
        c.step()
        peak = max(peak, max(node.replica.log_size for node in c.nodes))
    assert all(node.replica.stable_checkpoint == 300 for node in c.nodes)
    assert peak <= 4 * 8
    assert_agreement_and_certificates(c)


# -- view change ---------------------------------------------------------------------

def crash_primary_and_change_view(c, live=(1, 2, 3)):
    c.down.add(0)
    for i in live:
        c.handle(i, RequestsPending())
        c.fire(i, VIEW_CHANGE_TIMER)
    c.step()


def test_view_change_carries_prepared_certificates_into_the_new_view():
    c = Cluster(4)
    proposed = [make_payload(s)[1] for s in (1, 2, 3)]
    for _ in range(3):
        c.propose()
    c.step(drop=lambda s, d, m: isinstance(m, Commit))        # prepared everywhere, committed nowhere
    assert all(not node.delivered for node in c.nodes)
    crash_primary_and_change_view(c)
    for i in (1, 2, 3):
        replica = c.nodes[i].replica
        assert (replica.view, replica.primary, replica.in_view_change) == (1, 1, False)
        assert c.digests(i) == proposed          # the same blocks, re-proposed in view 1
        assert all(d.certificate.view == 1 for d in c.nodes[i].delivered)
    commit_blocks(c, 2)
    assert_agreement_and_certificates(c, (1, 2, 3))
    assert len(c.nodes[1].delivered) == 5


def test_prepared_payloads_are_only_bound_to_their_digest_in_a_view_change():
    # After the blocks prepared, the application would refuse them as fresh
    # proposals (say a tx committed meanwhile elsewhere); the view change must
    # still carry them, checking only that each payload matches its digest.
    refuse = {"fresh": False}

    def check(seq, payload):
        return None if refuse["fresh"] else payload_digest(seq, payload)

    c = Cluster(4, check_payload=check, payload_digest=payload_digest)
    proposed = [make_payload(s)[1] for s in (1, 2)]
    c.propose()
    c.propose()
    c.step(drop=lambda s, d, m: isinstance(m, Commit))
    refuse["fresh"] = True
    crash_primary_and_change_view(c)
    for i in (1, 2, 3):
        assert c.nodes[i].replica.view == 1 and c.digests(i) == proposed
    assert_agreement_and_certificates(c, (1, 2, 3))


def test_view_change_fills_gaps_with_null_blocks():
    c = Cluster(4)
    for _ in range(3):
        c.propose()
    # seq 2 reaches nobody; 1 and 3 prepare but do not commit
    c.step(drop=lambda s, d, m: isinstance(m, Commit) or m.seq == 2 if hasattr(m, "seq") else False)
    crash_primary_and_change_view(c)
    digests = c.digests(1)
    assert digests == [make_payload(1)[1], NULL_DIGEST, make_payload(3)[1]]
    assert c.nodes[1].delivered[1].payload == b""
    # The host learns which proposals live on (the null one carries no txs).
    for i in (1, 2, 3):
        assert c.nodes[i].carried[1] == ((1, digests[0]), (3, digests[2]))
    assert_agreement_and_certificates(c, (1, 2, 3))


def tampered_new_view(c, mutate):
    """Replica 1 (primary of view 1) builds a NEW-VIEW; `mutate` changes it
    and the test re-signs it with the primary's real key."""
    sent = []
    c.step(drop=lambda s, d, m: isinstance(m, NewView) and sent.append(m) is None)
    nv = mutate(sent[0])
    return sign(nv, keys(4)[1], CHAIN)


@pytest.mark.parametrize("mutate, reason", [
    (lambda nv: replace(nv, pre_prepares=tuple(
        sign(replace(pp, digest=NULL_DIGEST, payload=b""), keys(4)[1], CHAIN)
        for pp in nv.pre_prepares)), "differ from the ones its view-changes imply"),
    (lambda nv: replace(nv, pre_prepares=nv.pre_prepares[:-1]), "differ from the ones"),
    (lambda nv: replace(nv, view_changes=nv.view_changes[:2]), "quorum of distinct replicas"),
    (lambda nv: replace(nv, view_changes=(nv.view_changes[0],) * 3), "quorum of distinct replicas"),
])
def test_bad_new_view_is_rejected(mutate, reason):
    c = Cluster(4)
    c.propose(), c.propose()
    c.step(drop=lambda s, d, m: isinstance(m, Commit))
    c.down.add(0)
    for i in (1, 2, 3):
        c.handle(i, RequestsPending())
        c.fire(i, VIEW_CHANGE_TIMER)
    bad = tampered_new_view(c, mutate)
    replica = c.nodes[2].replica
    actions = replica.handle(MessageReceived(1, bad))
    assert [type(a) for a in actions] == [ReportFault]
    assert reason in actions[0].reason
    assert replica.in_view_change and replica.view == 1
    forged = replace(bad, signature=bytes(64))
    assert "bad new-view signature" in replica.handle(MessageReceived(1, forged))[0].reason


def _fire_view_change_timer(replica: Replica, actions: list) -> tuple[int, list]:
    timer = next(a for a in actions if isinstance(a, SetTimer) and a.kind == VIEW_CHANGE_TIMER)
    return timer.delay_ms, replica.handle(TimerFired(VIEW_CHANGE_TIMER, timer.token))


def test_view_change_timeout_backs_off_and_is_capped():
    # n = 7 (quorum 5): replicas 0..3 ask for every view replica 6 moves to, so each
    # expiry is one the paper counts (2f+1 asked, the new primary failed them).
    n, me = 7, 6
    replica = Replica(config(n, me, view_change_timeout_ms=100, max_view_change_timeout_ms=1000),
                      keys(n)[me], None, (0, GENESIS))
    replica.start()
    delays = []
    actions = replica.handle(RequestsPending())
    for i in range(6):
        delay, actions = _fire_view_change_timer(replica, actions)
        delays.append(delay)
        if i == 5:
            break           # view 6 is replica 6's own: with a quorum it would start it
        for other in range(4):
            vc = sign(ViewChange(replica.view, GENESIS_CHECKPOINT, (), other), keys(n)[other], CHAIN)
            actions += replica.handle(MessageReceived(other, vc))
    assert delays == [100, 200, 400, 800, 1000, 1000]
    assert replica.view == 6 and replica.in_view_change
    # a stale token is ignored
    assert replica.handle(TimerFired(VIEW_CHANGE_TIMER, 1)) == []


def test_view_change_timeout_follows_the_commit_pace():
    """Slow commits (CommitPace) raise the timeout's base to PACE_FACTOR times
    the slowest recent one, within the epoch's maximum; back-off doubles that
    base; a fast pace leaves the configured base."""
    n, me = 7, 6
    replica = Replica(config(n, me, view_change_timeout_ms=100, max_view_change_timeout_ms=2000),
                      keys(n)[me], None, (0, GENESIS))
    replica.start()
    replica.handle(CommitPace(20))                 # 3 x 20 ms is below the configured base
    actions = replica.handle(RequestsPending())
    delay, _ = _fire_view_change_timer(replica, actions)
    assert delay == 100

    replica = Replica(config(n, me, view_change_timeout_ms=100, max_view_change_timeout_ms=2000),
                      keys(n)[me], None, (0, GENESIS))
    replica.start()
    replica.handle(CommitPace(150))
    actions = replica.handle(RequestsPending())
    delays = []
    for _ in range(3):
        delay, actions = _fire_view_change_timer(replica, actions)
        delays.append(delay)
        for other in range(4):
            vc = sign(ViewChange(replica.view, GENESIS_CHECKPOINT, (), other), keys(n)[other], CHAIN)
            actions += replica.handle(MessageReceived(other, vc))
    assert delays == [450, 900, 1800]
    replica.handle(CommitPace(10_000))             # never above the maximum
    delay, _ = _fire_view_change_timer(replica, actions)
    assert delay == 2000


def test_blocks_fetched_by_sync_count_as_progress():
    """A replica catching up by block sync while txs wait does not suspect the
    primary: the blocks it fetched were certified by a quorum."""
    replica = Replica(config(4, 2), keys(4)[2], None, (0, GENESIS))
    replica.start()
    actions = replica.handle(RequestsPending())
    armed = next(a for a in actions if isinstance(a, SetTimer) and a.kind == VIEW_CHANGE_TIMER)
    replica.handle(Synced(3, bytes(32)))
    replica.handle(TimerFired(VIEW_CHANGE_TIMER, armed.token))
    assert replica.view == 0 and not replica.in_view_change


def test_a_view_change_nobody_joins_stays_in_its_view():
    """Alone in its view change (the others still commit in view 0), a replica
    waits in view 1 re-sending its VIEW-CHANGE instead of climbing away from them."""
    replica = Replica(config(4, 2, view_change_timeout_ms=100, max_view_change_timeout_ms=1000),
                      keys(4)[2], None, (0, GENESIS))
    replica.start()
    actions = replica.handle(RequestsPending())
    for _ in range(5):
        _, actions = _fire_view_change_timer(replica, actions)
    assert replica.view == 1 and replica.in_view_change
    # one more replica asking is not yet a quorum (3 of 4)...
    vc = sign(ViewChange(1, GENESIS_CHECKPOINT, (), 0), keys(4)[0], CHAIN)
    actions += replica.handle(MessageReceived(0, vc))
    _, actions = _fire_view_change_timer(replica, actions)
    assert replica.view == 1
    # ...a third is: the primary of view 1 is failing a quorum now, so move on
    vc = sign(ViewChange(1, GENESIS_CHECKPOINT, (), 3), keys(4)[3], CHAIN)
    actions += replica.handle(MessageReceived(3, vc))
    _fire_view_change_timer(replica, actions)
    assert replica.view == 2 and replica.in_view_change


def test_a_replica_cut_off_from_a_quorum_asks_for_no_view_change():
    """Connected to fewer validators than make a quorum with it (cut off, or on
    the small side of a split), a replica with txs waiting keeps its view and
    asks again one timeout later; once a quorum is reachable the timer starts
    over, and the primary is suspected if nothing moves within it.  (Alone in
    view 1, it would wait there after the links heal while the others go on in
    view 0.)"""
    n, me = 4, 2
    replica = Replica(config(n, me, view_change_timeout_ms=100, max_view_change_timeout_ms=1000),
                      keys(n)[me], None, (0, GENESIS))
    replica.start()
    others = [k.public_key for i, k in enumerate(keys(n)) if i != me]
    replica.handle(PeersReachable(frozenset(others[:1])))          # 1 peer: 2 of the 3 a quorum needs
    actions = replica.handle(RequestsPending())
    for _ in range(3):
        delay, actions = _fire_view_change_timer(replica, actions)
        assert delay == 100 and not any(isinstance(a, Broadcast) for a in actions)
        assert replica.view == 0 and not replica.in_view_change
    stranger = keys(n + 1)[n].public_key                           # connected, but votes nowhere here
    replica.handle(PeersReachable(frozenset([others[0], stranger, keys(n)[me].public_key])))
    _, actions = _fire_view_change_timer(replica, actions)
    assert replica.view == 0 and not replica.in_view_change
    # A quorum again (2 peers and me): the timer starts over, the one that ran
    # while cut off is void; the next expiry with still no progress suspects.
    rearmed = replica.handle(PeersReachable(frozenset(others[:2])))
    assert [a.delay_ms for a in rearmed if isinstance(a, SetTimer) and a.kind == VIEW_CHANGE_TIMER] == [100]
    stale = next(a for a in actions if isinstance(a, SetTimer) and a.kind == VIEW_CHANGE_TIMER)
    assert replica.handle(TimerFired(VIEW_CHANGE_TIMER, stale.token)) == []
    assert replica.handle(PeersReachable(frozenset(others))) == []      # reachable before: no restart
    _, actions = _fire_view_change_timer(replica, rearmed)
    assert replica.view == 1 and replica.in_view_change
    assert any(isinstance(a, Broadcast) and isinstance(a.message, ViewChange) for a in actions)


def test_peers_reachable_takes_node_keys_only():
    with pytest.raises(LocalProtocolError):
        PeersReachable({keys(4)[0].public_key})
    with pytest.raises(LocalProtocolError):
        PeersReachable(frozenset([b"short"]))


def test_replica_joins_a_view_change_when_f_plus_1_are_ahead():
    c = Cluster(4)
    c.handle(1, RequestsPending())
    c.fire(1, VIEW_CHANGE_TIMER)                  # only replica 1 suspects the primary
    c.step()
    assert c.nodes[2].replica.view == 0           # one is not enough (f = 1)
    c.handle(3, RequestsPending())
    c.fire(3, VIEW_CHANGE_TIMER)                  # a second one: 0 and 2 join, view 1 starts
    c.step()
    assert [(n.replica.view, n.replica.in_view_change) for n in c.nodes] == [(1, False)] * 4
    commit_blocks(c, 1)
    assert [len(n.delivered) for n in c.nodes] == [1] * 4


# -- falling behind, restarts ---------------------------------------------------------

def test_lagging_replica_syncs_to_a_stable_checkpoint_and_catches_up():
    c = Cluster(4, checkpoint_interval=4, window=8)
    for _ in range(13):
        c.propose()
        c.step(drop=lambda s, d, m: d == 3)        # replica 3 hears nothing
    assert not c.nodes[3].delivered
    for i in (0, 1, 2):                            # it hears again: re-sent checkpoints
        c.fire(i, RETRANSMIT_TIMER)
    c.step()
    syncs = c.nodes[3].syncs
    assert syncs and syncs[-1].target_seq == 12 \
        and set(syncs[-1].peers) <= {k.public_key for k in keys(4)[:3]}
    c.sync(3, 0, 13)
    for _ in range(7):
        c.propose()
        c.step()
    assert len(c.nodes[3].delivered) == 20 == len(c.nodes[0].delivered)
    assert_agreement_and_certificates(c)


def test_a_peer_ahead_of_a_lagging_replica_is_not_reported_as_faulty():
    # Issue 8: after a kill loop, honest peers were counted as faulty for
    # "seq N above the high watermark".  A replica that is behind sees the
    # others' messages above its window: it drops them quietly and syncs.
    c = Cluster(4, checkpoint_interval=4, window=8)
    for _ in range(13):
        c.propose()
        c.step(drop=lambda s, d, m: d == 3)        # replica 3 hears nothing
    lagging = c.nodes[3]
    assert lagging.replica.last_delivered == 0 and lagging.replica.stable_checkpoint == 0
    heard = []

    def deliver_and_note(src, dst, message):
        if dst == 3:
            heard.append(message)
        return False

    c.propose()                                    # seq 14, far above 3's window (0, 8]
    c.step(drop=deliver_and_note)
    assert any(isinstance(m, (PrePrepare, Prepare, Commit)) and m.seq > 8 for m in heard)
    for i in (0, 1, 2):                            # and their checkpoints, re-sent
        c.fire(i, RETRANSMIT_TIMER)
    c.step()
    assert lagging.faults == []
    assert lagging.syncs and lagging.syncs[-1].target_seq == 12
    c.sync(3, 0, 14)
    commit_blocks(c, 2)
    assert len(lagging.delivered) == 16 and lagging.faults == []
    assert_agreement_and_certificates(c)


def test_restart_honours_the_safety_record():
    c = Cluster(4)
    c.propose()
    c.step(drop=lambda s, d, m: isinstance(m, Commit))
    record = c.nodes[2].record
    assert record is not None
    c.restart(2)
    replica = c.nodes[2].replica
    p, d = make_payload(1, "other")
    conflicting = sign(PrePrepare(0, 1, d, p, 0), keys(4)[0], CHAIN)
    actions = replica.handle(MessageReceived(0, conflicting))
    assert [type(a) for a in actions] == [ReportFault]
    assert "conflicts with my vote" in actions[0].reason


def test_a_primary_restarted_without_its_log_abdicates_and_the_backups_join_at_once():
    """Killed with a proposal out (its pre-prepare signed and persisted, the
    slot and payload lost with its memory), the primary cannot finish its view:
    at restart it asks for the next one, and the backups join without waiting
    for their timers; the new view commits."""
    c = Cluster(4)
    commit_blocks(c, 2)
    assert c.propose() == 3
    c.queue.clear()                      # killed before its PRE-PREPARE left
    c.restart(0)
    c.step()
    assert all(node.replica.view == 1 and not node.replica.in_view_change for node in c.nodes)
    assert all(VIEW_CHANGE_TIMER not in node.timers or node.replica.view == 1 for node in c.nodes)
    commit_blocks(c, 2)
    assert [len(node.delivered) for node in c.nodes] == [4] * 4
    assert_agreement_and_certificates(c)


def test_a_primary_restarted_between_blocks_keeps_its_view():
    c = Cluster(4)
    commit_blocks(c, 2)
    c.restart(0)
    c.step()
    assert all(node.replica.view == 0 and not node.replica.in_view_change for node in c.nodes)
    commit_blocks(c, 1)
    assert [len(node.delivered) for node in c.nodes] == [3] * 4


def test_only_the_primary_s_own_view_change_is_joined_at_once():
    """A backup's VIEW-CHANGE alone moves nobody (f+1 are needed to join);
    the primary's own request for the next view does."""
    def backup_after(sender: int, new_view: int):
        c = Cluster(4)
        vc = sign(ViewChange(new_view, GENESIS_CHECKPOINT, (), sender), keys(4)[sender], CHAIN)
        c.handle(3, MessageReceived(sender, vc))
        return c.nodes[3].replica

    assert backup_after(2, 1).view == 0                  # a backup's request
    assert backup_after(0, 2).view == 0                  # the primary, but not for the next view
    joined = backup_after(0, 1)
    assert joined.view == 1 and joined.in_view_change


def test_restart_keeps_the_view_and_rejoins_the_view_change():
    c = Cluster(4)
    c.propose()
    c.step(drop=lambda s, d, m: isinstance(m, Commit))
    crash_primary_and_change_view(c)
    assert c.nodes[3].replica.view == 1
    c.restart(3)
    assert c.nodes[3].replica.view == 1 and not c.nodes[3].replica.in_view_change
    # restarted during a view change: back in it, and its VIEW-CHANGE goes out again
    c.handle(2, RequestsPending())
    c.fire(2, VIEW_CHANGE_TIMER)
    c.queue.clear()
    c.restart(2)
    replica = c.nodes[2].replica
    assert replica.view == 2 and replica.in_view_change
    resent = [decode_message(data) for src, _, data in c.queue if src == 2]
    assert resent and all(isinstance(m, ViewChange) and m.new_view == 2 for m in resent)


def test_retransmission_recovers_lost_messages():
    c = Cluster(4)
    c.propose()
    c.step(drop=lambda s, d, m: True)              # everything is lost once
    for i in range(4):
        c.fire(i, RETRANSMIT_TIMER)
    c.step()
    for i in range(4):
        c.fire(i, RETRANSMIT_TIMER)
    c.step()
    assert [len(n.delivered) for n in c.nodes] == [1] * 4


def test_replicas_behind_in_a_view_change_catch_up_on_the_base_timeout():
    c = Cluster(4)                                  # base timeout 1000 ms
    c.down.add(1)                                   # the primary of view 1 is down
    for i in (0, 2, 3):
        c.handle(i, RequestsPending())
        c.fire(i, VIEW_CHANGE_TIMER)
    c.step()                                        # 0, 2, 3 all asked for view 1; no NEW-VIEW comes
    c.fire(2, VIEW_CHANGE_TIMER)                    # replica 2's timer ends first: on to view 2
    assert c.nodes[0].timers[VIEW_CHANGE_TIMER].delay_ms == 2000
    c.step()
    # one replica ahead is not f+1, but it shortens their wait to the base timeout
    assert [c.nodes[i].replica.view for i in (0, 2, 3)] == [1, 2, 1]
    assert c.nodes[0].timers[VIEW_CHANGE_TIMER].delay_ms == 1000
    c.fire(0, VIEW_CHANGE_TIMER)
    c.fire(3, VIEW_CHANGE_TIMER)
    c.step()
    assert [(c.nodes[i].replica.view, c.nodes[i].replica.in_view_change)
            for i in (0, 2, 3)] == [(2, False)] * 3


def test_a_replica_left_in_an_old_view_is_brought_in_by_a_relayed_new_view():
    c = Cluster(4)
    c.propose()
    c.step(drop=lambda s, d, m: isinstance(m, Commit))
    crash_primary_and_change_view(c)               # 1, 2, 3 are in view 1; 0 missed it all
    c.down.discard(0)
    old = c.nodes[0].replica
    assert old.view == 0
    c.handle(0, RequestsPending())
    c.fire(0, VIEW_CHANGE_TIMER)                   # it suspects its own view and asks around
    c.step()
    assert (old.view, old.in_view_change) == (1, False)
    commit_blocks(c, 2)
    assert [len(n.delivered) for n in c.nodes] == [0, 3, 3, 3]   # 0 misses the commits for 1
    for i in (1, 2, 3):
        c.fire(i, RETRANSMIT_TIMER)
    c.step()
    assert [len(n.delivered) for n in c.nodes] == [3, 3, 3, 3]
    assert_agreement_and_certificates(c)


def test_prepared_payloads_survive_when_every_holder_restarts():
    c = Cluster(4)
    proposed = make_payload(1)
    c.propose()
    c.step(drop=lambda s, d, m: isinstance(m, Commit))        # prepared at 1, 2, 3
    for i in (1, 2, 3):
        c.restart(i)                                          # every copy in memory is gone
    c.queue.clear()
    crash_primary_and_change_view(c)
    for i in (1, 2, 3):
        assert [(d.payload, d.certificate.digest) for d in c.nodes[i].delivered] == [proposed]
    assert_agreement_and_certificates(c, (1, 2, 3))


def test_a_restarted_replica_resends_its_last_checkpoint():
    c = Cluster(4, checkpoint_interval=4, window=8)
    for _ in range(12):
        c.propose()
        c.step(drop=lambda s, d, m: isinstance(m, Checkpoint) and m.seq >= 8)
    assert {n.replica.stable_checkpoint for n in c.nodes} == {4}   # later checkpoints lost
    assert c.propose() is None                                      # and the window is full
    for i in range(4):
        c.restart(i)
    c.step()
    assert {n.replica.stable_checkpoint for n in c.nodes} == {12}
    assert c.propose() == 13
