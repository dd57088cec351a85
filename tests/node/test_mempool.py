"""Mempool admission, bounds, the in-flight bookkeeping across view changes,
expiry as the chain grows, and the re-offer queue."""

from ledger import admission
from node.core.mempool import Mempool
from tests.factories import make_genesis, make_tx

GENESIS, _, ACCOUNTS = make_genesis(tx_validity_window=100)
FIN = ACCOUNTS["finance"]


def pool(committed=frozenset(), **kw):
    kw.setdefault("max_txs", 100)
    kw.setdefault("max_bytes", 1 << 20)
    return Mempool(lambda: GENESIS.config, lambda tx_id: tx_id in committed, **kw)


def tx(n, **kw):
    return make_tx(FIN, GENESIS, args={"key": f"k{n}", "value": n}, nonce=n, **kw)


def test_admits_once_and_refuses_with_reasons():
    mp = pool()
    t = tx(1)
    assert mp.admit(t, 0, 0.0) is None
    assert mp.admit(t, 0, 0.0) == admission.DUPLICATE
    assert mp.admit(tx(2, chain_id="other"), 0, 0.0) == admission.WRONG_CHAIN
    assert mp.admit(tx(3, valid_until=5), 5, 0.0) == admission.EXPIRED
    assert mp.admit(tx(4, valid_until=500), 0, 0.0) == admission.TOO_FAR_AHEAD
    _, _, strangers = make_genesis(accounts=("stranger",))
    assert mp.admit(make_tx(strangers["stranger"], GENESIS), 0, 0.0) == admission.UNKNOWN_SENDER
    forged = tx(5)
    forged = type(forged)(*forged.to_record()[:7], bytes(64))
    assert mp.admit(forged, 0, 0.0) == admission.BAD_SIGNATURE
    assert len(mp) == 1 and mp.knows_valid(t)


def test_committed_elsewhere_is_a_duplicate():
    t = tx(1)
    assert pool(committed={t.id}).admit(t, 0, 0.0) == admission.DUPLICATE


def test_bounded_by_count_and_bytes():
    mp = pool(max_txs=3)
    assert [mp.admit(tx(n), 0, 0.0) for n in range(4)] == [None, None, None, admission.MEMPOOL_FULL]
    size = len(tx(0).encode())
    mp = pool(max_bytes=2 * size + 10)
    results = [mp.admit(tx(n), 0, 0.0) for n in range(3)]
    assert results[:2] == [None, None] and results[2] == admission.MEMPOOL_FULL
    assert mp.bytes <= 2 * size + 10


def test_take_is_fifo_and_in_flight_txs_are_not_proposed_twice():
    mp = pool()
    txs = [tx(n) for n in range(5)]
    for t in txs:
        mp.admit(t, 0, 0.0)
    first = mp.take(1, 2, 1 << 20)
    assert first == txs[:2]
    mp.mark_in_flight(1, [t.id for t in first])
    assert mp.take(1, 10, 1 << 20) == txs[2:]
    assert mp.ready_count == 0 and len(mp) == 5


def test_commit_removes_and_returns_what_did_not_make_it():
    mp = pool()
    txs = [tx(n) for n in range(4)]
    for t in txs:
        mp.admit(t, 0, 0.0)
    mp.mark_in_flight(1, [txs[0].id, txs[1].id])   # proposal at seq 1 (lost in a view change)
    mp.take(1, 10, 1 << 20)
    mp.mark_in_flight(2, [txs[2].id, txs[3].id])
    removed = mp.committed(1, []).committed         # seq 1 committed as a null block
    assert removed == [] and mp.ready_count == 2
    assert mp.take(1, 10, 1 << 20) == txs[:2]
    removed = mp.committed(2, [txs[2].id, txs[3].id]).committed
    assert {e.tx.id for e in removed} == {txs[2].id, txs[3].id} and len(mp) == 2


def test_a_second_proposal_for_a_seq_releases_the_first_ones_txs():
    mp = pool()
    a, b = tx(1), tx(2)
    mp.admit(a, 0, 0.0)
    mp.admit(b, 0, 0.0)
    mp.mark_in_flight(3, [a.id])
    mp.mark_in_flight(3, [b.id])
    assert mp.take(1, 10, 1 << 20) == [a]


def test_a_tx_that_arrives_after_the_proposal_carrying_it_is_not_proposed_again():
    # Under load gossip lags behind consensus: the pre-prepare for seq 1 (with t)
    # is accepted before t itself arrives.  If t then became ready, the next
    # proposal would carry it a second time and backups would refuse that block.
    mp = pool()
    t, other = tx(1), tx(2)
    mp.mark_in_flight(1, [t.id])
    assert mp.admit(t, 0, 0.0) is None and mp.admit(other, 0, 0.0) is None
    assert mp.ready_count == 1 and mp.take(2, 10, 1 << 20) == [other]
    mp.committed(1, [])                                # seq 1 became a null block
    assert mp.take(2, 10, 1 << 20) == [t]


def test_a_tx_held_by_two_proposals_is_ready_only_when_both_let_it_go():
    mp = pool()
    t = tx(1)
    assert mp.admit(t, 0, 0.0) is None
    mp.mark_in_flight(2, [t.id])
    mp.mark_in_flight(3, [t.id])          # a faulty primary proposed it twice
    mp.committed(2, [])
    assert mp.ready_count == 0
    mp.committed(3, [])
    assert mp.ready_count == 1


def test_a_new_view_frees_the_txs_of_the_proposals_it_does_not_carry():
    # A primary alone in a stale view (restarted while the others moved on)
    # proposes seqs nobody will ever commit.  Once it joins the new view those
    # txs must be proposable again: with nothing else pending, no commit would
    # ever release them and they would wait forever.
    mp = pool()
    txs = [tx(n) for n in range(3)]
    for t in txs:
        mp.admit(t, 0, 0.0)
    mp.mark_in_flight(5, [txs[0].id])
    mp.mark_in_flight(6, [txs[1].id])
    mp.mark_in_flight(7, [txs[2].id])
    mp.release_in_flight_except({6})          # the new view re-proposes seq 6 only
    assert mp.take(5, 10, 1 << 20) == [txs[0], txs[2]]
    mp.committed(6, [txs[1].id])
    assert len(mp) == 2


def test_a_proposal_never_carries_a_tx_too_old_for_its_seq():
    # Pipelining: the primary proposes seq 4 while 1..3 are in flight; a tx valid
    # until 2 may enter blocks 1 and 2 but not 4 (backups would refuse the block).
    mp = pool()
    old, mid, fresh = tx(1, valid_until=2), tx(2, valid_until=4), tx(3, valid_until=50)
    for t in (old, mid, fresh):
        assert mp.admit(t, 0, 0.0) is None
    assert mp.take(4, 10, 1 << 20) == [mid, fresh]
    assert mp.ready_count == 1 and old.id in mp     # it may still enter block 1 or 2
    assert mp.take(1, 10, 1 << 20) == [old]


def test_the_chain_passing_valid_until_expires_txs_and_remembers_why():
    mp = pool()
    short, edge, long_ = tx(1, valid_until=3), tx(2, valid_until=5), tx(3, valid_until=90)
    for t in (short, edge, long_):
        assert mp.admit(t, 0, 0.0) is None
    assert mp.committed(2, []).expired == []
    assert mp.committed(3, []).expired == [short.id]
    drained = mp.committed(5, [])                       # block 6 can no longer take `edge`
    assert drained.expired == [edge.id] and drained.committed == []
    assert len(mp) == 1 and long_.id in mp and mp.bytes == long_.encoded_size
    assert mp.dropped_reason(short.id) == mp.dropped_reason(edge.id) == admission.EXPIRED
    assert mp.dropped_reason(long_.id) is None
    assert mp.take(6, 10, 1 << 20) == [long_]


def test_a_committed_tx_is_not_reported_expired_later():
    mp = pool()
    t = tx(1, valid_until=5)
    assert mp.admit(t, 0, 0.0) is None
    assert [e.tx for e in mp.committed(2, [t.id]).committed] == [t]
    assert mp.committed(9, []).expired == []
    assert mp.dropped_reason(t.id) is None


def test_expiry_looks_only_at_what_expires(monkeypatch):
    # Found through the valid_until index: no validity check of the other txs
    # (the old eviction re-checked the whole pool after every sync).
    mp = pool(max_txs=2000)
    doomed = tx(0, valid_until=3)
    assert mp.admit(doomed, 0, 0.0) is None
    for n in range(1, 1001):
        assert mp.admit(tx(n, valid_until=60), 0, 0.0) is None
    checks = []
    real = admission.window_problem
    monkeypatch.setattr(admission, "window_problem", lambda *a: checks.append(a) or real(*a))
    assert mp.committed(3, []).expired == [doomed.id]
    assert checks == [] and len(mp) == 1000


def test_remembered_drops_are_bounded(monkeypatch):
    import node.core.mempool as mempool_module
    monkeypatch.setattr(mempool_module, "MAX_REMEMBERED_DROPS", 2)
    mp = pool()
    txs = [tx(n, valid_until=n + 1) for n in range(4)]
    for t in txs:
        assert mp.admit(t, 0, 0.0) is None
    assert len(mp.committed(10, []).expired) == 4
    assert [mp.dropped_reason(t.id) for t in txs] == [None, None, admission.EXPIRED, admission.EXPIRED]


def test_due_for_offer_hands_aged_ready_txs_least_recently_handed_first():
    mp = pool()
    txs = [tx(n) for n in range(5)]
    for k, t in enumerate(txs):
        assert mp.admit(t, 0, float(k)) is None       # admitted (and relayed) at t = k
    mp.mark_in_flight(1, [txs[0].id])                 # the primary has this one already
    assert mp.due_for_offer(handed_before=0.5, now=10.0, limit=5) == []      # only txs[0], in flight
    assert mp.due_for_offer(handed_before=3.0, now=10.0, limit=2) == txs[1:3]
    # Handed at 10 now: the next round starts with the ones not handed since.
    assert mp.due_for_offer(handed_before=9.0, now=11.0, limit=5) == txs[3:]
    assert mp.due_for_offer(handed_before=9.0, now=11.0, limit=5) == []
    assert mp.due_for_offer(handed_before=10.0, now=12.0, limit=5) == txs[1:3]
    mp.committed(1, [txs[1].id])                      # seq 1 committed: txs[0] is ready again
    assert mp.due_for_offer(handed_before=12.0, now=13.0, limit=5) == [txs[3], txs[4], txs[0], txs[2]]


def test_a_signature_verified_for_a_proposal_is_not_checked_again_at_admission():
    mp = pool()
    t = tx(1)
    mp.remember_verified(t)
    assert mp.knows_valid(t)
    forged = type(t)(*t.to_record()[:7], bytes(64))     # same id, other signature bytes
    assert not mp.knows_valid(forged)
    assert mp.admit(forged, 0, 0.0) == admission.BAD_SIGNATURE
    assert mp.admit(t, 0, 0.0) is None
    assert mp.knows_valid(t) and not mp.knows_valid(forged)


def test_an_admitted_tx_vouches_only_for_its_own_signature():
    mp = pool()
    t = tx(1)
    assert mp.admit(t, 0, 0.0) is None
    assert mp.knows_valid(t)
    assert not mp.knows_valid(type(t)(*t.to_record()[:7], bytes(64)))


def test_remembered_signatures_are_bounded(monkeypatch):
    import node.core.mempool as mempool_module
    monkeypatch.setattr(mempool_module, "MAX_REMEMBERED_SIGNATURES", 3)
    mp = pool()
    txs = [tx(i) for i in range(5)]
    for t in txs:
        mp.remember_verified(t)
    assert [mp.knows_valid(t) for t in txs] == [False, False, True, True, True]


def test_a_large_drain_gives_memory_back_once():
    from node.core.heap import TRIM_AFTER_DRAINED_TXS, DrainWatch
    calls = []
    watch = DrainWatch(trim=calls.append)
    for size in (100, TRIM_AFTER_DRAINED_TXS // 2, 50):          # small ups and downs: no trim
        watch.observe(size)
    assert calls == []
    for size in (4 * TRIM_AFTER_DRAINED_TXS, 2 * TRIM_AFTER_DRAINED_TXS, TRIM_AFTER_DRAINED_TXS // 4):
        watch.observe(size)
    assert calls == [0]
    watch.observe(0)                                               # already trimmed for this drain
    assert calls == [0]
