"""The relay: chunked admission, re-offering pending txs to the primary, and
when the node may tell the core that requests are pending (suspect the primary)."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from node.core import peer_messages, tx_relay
from node.core.mempool import Mempool
from node.core.tx_relay import MAX_REOFFER_TXS, REOFFER_AGE_S, TxRelay
from node.metrics import NodeMetrics
from tests.factories import make_genesis, make_tx

GENESIS, _, ACCOUNTS = make_genesis(tx_validity_window=100)
ME, PRIMARY = 1, 0


class FakePeers:
    def __init__(self, connected=(0, 2, 3)) -> None:
        self.connected = set(connected)
        self.sent: list[tuple[int | None, int, list]] = []

    def send(self, peer: int, msg_type: int, payload) -> bool:
        if peer not in self.connected:
            return False
        self.sent.append((peer, msg_type, payload))
        return True

    def is_connected(self, peer: int) -> bool:
        return peer in self.connected

    def broadcast(self, msg_type: int, payload, to=None) -> int:
        assert to is not None       # txs go to the validators only
        self.sent.append((None, msg_type, payload))
        return len(self.connected & set(to))

    def txs_to(self, peer: int | None) -> list[bytes]:
        return [rec[-1] for p, kind, payload in self.sent if p == peer and kind == peer_messages.TXS
                for rec in payload]


def relay_with(n_txs: int = 0, *, primary: int = PRIMARY, connected=(0, 2, 3), max_txs: int = 10_000,
               last_commit=(0.0, 0)):
    mempool = Mempool(lambda: GENESIS.config, lambda tx_id: False, max_txs=max_txs, max_bytes=1 << 30)
    peers = FakePeers(connected)
    suspicions = []
    relay = TxRelay(mempool, SimpleNamespace(height=0, genesis=GENESIS, config=GENESIS.config), peers,
                    NodeMetrics(), me=ME, validators=lambda: (0, 2, 3), primary=lambda: primary, last_commit=lambda: last_commit, on_admitted=lambda: None,
                    on_pending_with_primary=lambda: suspicions.append(True))
    txs = [make_tx(ACCOUNTS["finance"], GENESIS, nonce=n, args={"key": f"k{n}", "value": n})
           for n in range(n_txs)]
    return relay, mempool, peers, suspicions, txs


def test_fresh_txs_are_not_suspected_then_aged_ones_go_to_the_primary(monkeypatch):
    relay, mempool, peers, suspicions, txs = relay_with(3)
    clock = [100.0]
    monkeypatch.setattr(tx_relay.time, "monotonic", lambda: clock[0])
    assert all(a.accepted for a in relay.admit(txs, relay=False))
    clock[0] += REOFFER_AGE_S / 2
    # Just admitted (and relayed by whoever got them first): the primary may not
    # have seen them yet, so the core is not told to expect progress.
    assert relay.reoffer(clock[0]) == 0
    assert suspicions == [] and peers.sent == []
    clock[0] += REOFFER_AGE_S
    assert relay.reoffer(clock[0]) == 3
    assert peers.txs_to(PRIMARY) == [t.signature for t in txs]
    assert peers.txs_to(2) == peers.txs_to(3) == []          # only the primary must propose them
    assert suspicions == [True]                               # it has had its chance now
    assert relay.reoffer(clock[0] + 0.1) == 0                 # handed just now: not again yet


def test_reoffers_are_bounded_per_round_and_rotate(monkeypatch):
    relay, mempool, peers, suspicions, txs = relay_with(MAX_REOFFER_TXS + 10)
    monkeypatch.setattr(tx_relay.time, "monotonic", lambda: 0.0)
    relay.admit(txs, relay=False)
    assert relay.reoffer(10.0) == MAX_REOFFER_TXS
    for peer, _, payload in peers.sent:
        assert len(payload) <= peer_messages.MAX_GOSSIP_TXS
    assert relay.reoffer(10.5) == 10                          # the rest, then round again
    assert relay.reoffer(10.5 + REOFFER_AGE_S) == MAX_REOFFER_TXS
    handed = peers.txs_to(PRIMARY)
    assert handed[:MAX_REOFFER_TXS + 10] == [t.signature for t in txs]
    assert handed[MAX_REOFFER_TXS + 10:] == [t.signature for t in txs[:MAX_REOFFER_TXS]]


def test_the_primary_keeps_its_txs_and_an_unreachable_primary_is_suspected(monkeypatch):
    monkeypatch.setattr(tx_relay.time, "monotonic", lambda: 0.0)
    relay, _, peers, suspicions, txs = relay_with(2, primary=ME)
    relay.admit(txs, relay=False)
    assert relay.reoffer(10.0) == 0 and peers.sent == [] and suspicions == []

    relay, _, peers, suspicions, txs = relay_with(2, connected=(2, 3))   # primary 0 is gone
    relay.admit(txs, relay=False)
    assert suspicions == [True]        # it cannot receive them: no point waiting
    assert relay.reoffer(10.0) == 0 and peers.sent == []
    assert suspicions == [True, True]  # still pending, still unreachable


def test_no_reoffers_while_the_primary_commits_full_blocks(monkeypatch):
    monkeypatch.setattr(tx_relay.time, "monotonic", lambda: 0.0)
    full = GENESIS.consensus.max_block_txs
    relay, _, peers, suspicions, txs = relay_with(3, last_commit=(9.5, full))
    relay.admit(txs, relay=False)
    # A full block just committed: the primary has a backlog; ours may be in it.
    assert relay.reoffer(10.0) == 0 and peers.sent == [] and suspicions == []
    # No full block for a while (or one with room to spare): the primary lacks them.
    assert relay.reoffer(9.5 + REOFFER_AGE_S) == 3 and suspicions == [True]
    relay, _, peers, suspicions, txs = relay_with(3, last_commit=(9.5, full - 1))
    relay.admit(txs, relay=False)
    assert relay.reoffer(10.0) == 3


async def test_large_batches_are_admitted_in_chunks_that_let_others_run():
    relay, mempool, _, _, txs = relay_with(3 * tx_relay.ADMIT_CHUNK + 5)
    seen: list[int] = []        # the pool's size each time the other task ran
    done = False

    async def other_task():
        while not done:
            seen.append(len(mempool))
            await trio.sleep(0)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other_task)
            results = await relay.admit_chunked(txs + [None], relay=True)
            done = True
    assert [r.accepted for r in results] == [True] * len(txs) + [False]
    assert results[-1].reason == "malformed" and len(mempool) == len(txs)
    # The other task ran while the batch was half admitted (trio may order the two
    # tasks either way within a scheduling batch, so count sizes, not turns).
    assert any(0 < size < len(txs) for size in seen), seen


async def test_chunked_admission_checks_signatures_on_the_worker_pool():
    """Signatures are checked on worker threads; the verdicts come back in
    order, a forged one is refused, a duplicate is never checked at all."""
    import dataclasses

    from node.core.verify_pool import VerifyPool
    relay, mempool, peers, _, txs = relay_with(300)
    pool = VerifyPool(2)
    relay._verifier = pool
    forged = dataclasses.replace(txs[7], signature=bytes(64), _payload=None, _id=None, _record=None)
    batch = txs[:7] + [forged] + txs[8:] + [txs[0]] + [None]
    with trio.fail_after(10):
        results = await relay.admit_chunked(batch, relay=True)
    assert [r.reason for r in results[:9]] == [None] * 7 + ["bad_signature", None]
    assert results[-2].reason == "duplicate" and results[-1].reason == "malformed"
    assert sum(r.accepted for r in results) == 299 and len(mempool) == 299
    assert pool.checked == 300          # the repeat was a duplicate before any check
    # Pooled txs are found by their exact record bytes, and leave with them.
    assert mempool.tx_by_record(txs[1].record_bytes) is txs[1] and mempool.is_pending(txs[1])
    assert mempool.tx_by_record(forged.record_bytes) is None and not mempool.is_pending(forged)
    mempool.committed(1, [txs[1].id])
    assert mempool.tx_by_record(txs[1].record_bytes) is None and not mempool.is_pending(txs[1])


def test_the_worker_pool_is_sized_by_config_or_by_the_host(tmp_path):
    import pytest

    from node.config import ConfigError, load_config, render_config
    from node.core.verify_pool import VerifyPool, default_workers
    text = render_config("node0", ("127.0.0.1", 1), ("127.0.0.1", 2))
    (tmp_path / "config.toml").write_text(text)
    assert load_config(tmp_path).verify_workers == 0 and default_workers() >= 1    # 0: the host's cores
    (tmp_path / "config.toml").write_text(text.replace("[node]\n", "[node]\nverify_workers = 3\n", 1))
    assert load_config(tmp_path).verify_workers == 3
    (tmp_path / "config.toml").write_text(text.replace("[node]\n", "[node]\nverify_workers = 257\n", 1))
    with pytest.raises(ConfigError, match="node.verify_workers must be from 0"):
        load_config(tmp_path)
    with pytest.raises(ValueError):
        VerifyPool(0)


async def test_chunked_admission_reads_the_store_once_per_tx():
    """The checks before the pooled signature check are not repeated at
    insertion while the chain has not moved (a store read per tx is the cost:
    is it committed?); a commit in between makes insertion check again."""
    from node.core.verify_pool import VerifyPool
    relay, mempool, _, _, txs = relay_with(200)
    relay._verifier = VerifyPool(2)
    reads = []
    mempool._is_committed = lambda tx_id: reads.append(tx_id) or False
    with trio.fail_after(10):
        results = await relay.admit_chunked(txs[:100], relay=False)
    assert all(r.accepted for r in results) and len(reads) == 100

    reads.clear()
    chain = relay._chain
    verify = relay._verifier.verify

    async def verify_while_a_block_commits(batch):
        chain.height += 1
        return await verify(batch)

    relay._verifier.verify = verify_while_a_block_commits
    with trio.fail_after(10):
        results = await relay.admit_chunked(txs[100:], relay=False)
    assert all(r.accepted for r in results) and len(reads) == 2 * 100
