"""Mempool admission, bounds and the in-flight bookkeeping across view changes."""

from ledger import admission
from node.core.mempool import Mempool
from tests.factories import make_genesis, make_tx

GENESIS, _, ACCOUNTS = make_genesis(tx_validity_window=100)
FIN = ACCOUNTS["finance"]


def pool(committed=frozenset(), **kw):
    kw.setdefault("max_txs", 100)
    kw.setdefault("max_bytes", 1 << 20)
    return Mempool(GENESIS, lambda tx_id: tx_id in committed, **kw)


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
    first = mp.take(2, 1 << 20)
    assert first == txs[:2]
    mp.mark_in_flight(1, [t.id for t in first])
    assert mp.take(10, 1 << 20) == txs[2:]
    assert mp.ready_count == 0 and len(mp) == 5


def test_pending_lists_ready_txs_oldest_first_up_to_a_limit():
    mp = pool()
    txs = [tx(n) for n in range(5)]
    for t in txs:
        mp.admit(t, 0, 0.0)
    mp.mark_in_flight(1, [txs[0].id])
    assert mp.pending(3) == txs[1:4]
    assert len(mp) == 5 and mp.ready_count == 4      # listing takes nothing out


def test_commit_removes_and_returns_what_did_not_make_it():
    mp = pool()
    txs = [tx(n) for n in range(4)]
    for t in txs:
        mp.admit(t, 0, 0.0)
    mp.mark_in_flight(1, [txs[0].id, txs[1].id])   # proposal at seq 1 (lost in a view change)
    mp.take(10, 1 << 20)
    mp.mark_in_flight(2, [txs[2].id, txs[3].id])
    removed = mp.committed(1, [])                   # seq 1 committed as a null block
    assert removed == [] and mp.ready_count == 2
    assert mp.take(10, 1 << 20) == txs[:2]
    removed = mp.committed(2, [txs[2].id, txs[3].id])
    assert {e.tx.id for e in removed} == {txs[2].id, txs[3].id} and len(mp) == 2


def test_a_second_proposal_for_a_seq_releases_the_first_ones_txs():
    mp = pool()
    a, b = tx(1), tx(2)
    mp.admit(a, 0, 0.0)
    mp.admit(b, 0, 0.0)
    mp.mark_in_flight(3, [a.id])
    mp.mark_in_flight(3, [b.id])
    assert mp.take(10, 1 << 20) == [a]


def test_evict_invalid_after_sync():
    committed = set()
    mp = pool(committed=committed)
    short, long_, done = tx(1, valid_until=3), tx(2, valid_until=90), tx(3)
    for t in (short, long_, done):
        assert mp.admit(t, 0, 0.0) is None
    committed.add(done.id)
    assert mp.evict_invalid(10) == 2
    assert len(mp) == 1 and long_.id in mp


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
