"""The peer dispatcher: consensus messages never wait behind tx admission,
the queue of txs waiting for admission is bounded, consensus is stepped with
the sender's key (the core maps it in the message's epoch) and never reaches
a node without a core, and pushed blocks go to the follower of any node that
does not vote (an observer, a validator-to-be, a demoted validator)."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from consensus.messages import Prepare, sign
from ledger.block import Block, BlockHeader
from ledger.certificate import CommitCertificate
from ledger.merkle import EMPTY_ROOT
from node.core import peer_messages
from node.core.dispatch import MAX_QUEUED_TX_FRAMES, PeerDispatcher
from node.core.membership import ValidatorIndex
from node.metrics import NodeMetrics
from tests.factories import make_genesis, make_tx

GENESIS, VALIDATORS, ACCOUNTS = make_genesis()
KEYS = GENESIS.validator_keys
STRANGER = b"\x07" * 32          # a node of the configuration that does not vote (an observer)


class Recorder:
    def __init__(self) -> None:
        self.steps: list = []
        self.admitted: list[list] = []
        self.gate = trio.Event()          # admission waits on it (a slow signature check)
        self.validators = ValidatorIndex(KEYS)
        self.replica = SimpleNamespace(index=0)     # votes in its epoch
        self.pushed: list = []

    def step(self, events) -> None:
        self.steps.append(list(events))

    async def admit_chunked(self, txs, *, relay: bool):
        await self.gate.wait()
        self.admitted.append(txs)
        return []

    def pushed_block(self, peer, block, certificate) -> None:
        self.pushed.append((peer, block.height))


def dispatcher(observer: bool = False):
    recorder = Recorder()
    metrics = NodeMetrics()
    faults = []
    parts = dict(follower=SimpleNamespace(pushed=recorder.pushed_block))
    if not observer:
        parts["driver"] = recorder
    d = PeerDispatcher(trio.open_memory_channel(1)[1], recorder, SimpleNamespace(),
                       SimpleNamespace(), metrics, send=lambda *a: True,
                       on_fault=lambda peer, reason: faults.append((peer, reason)), **parts)
    return d, recorder, metrics, faults


def txs_payload(first: int, n: int) -> list:
    return [make_tx(ACCOUNTS["finance"], GENESIS, nonce=k).to_record() for k in range(first, first + n)]


async def test_consensus_messages_do_not_wait_for_tx_admission(nursery):
    d, recorder, _, _ = dispatcher()
    nursery.start_soon(d.run_tx_intake)
    vote = sign(Prepare(0, 1, bytes(32), 2), VALIDATORS["node2"], GENESIS.chain_id).encode()
    with trio.fail_after(10):
        d.dispatch(KEYS[2], [(peer_messages.TXS, txs_payload(0, 50)), (peer_messages.CONSENSUS, vote)])
        # Stepped at once, while the txs before it in the same frame still wait.
        assert len(recorder.steps) == 1 and type(recorder.steps[0][0].message) is Prepare
        assert recorder.steps[0][0].sender == KEYS[2]    # the core maps the key in the message's epoch
        assert recorder.admitted == []
        recorder.gate.set()
        while not recorder.admitted:
            await trio.sleep(0)
        assert len(recorder.admitted[0]) == 50


async def test_tx_frames_beyond_the_queue_are_dropped_and_counted(nursery):
    d, recorder, metrics, faults = dispatcher()
    for k in range(MAX_QUEUED_TX_FRAMES + 2):
        d.dispatch(KEYS[1], [(peer_messages.TXS, txs_payload(10 * k, 3))])
    d.dispatch(KEYS[1], [(peer_messages.TXS, "not a list")])      # dropped too: the queue is full
    assert metrics.registry.get_sample_value("ynchain_gossip_txs_dropped_total") == 2 * 3 + 1
    nursery.start_soon(d.run_tx_intake)
    recorder.gate.set()
    with trio.fail_after(10):
        while len(recorder.admitted) < MAX_QUEUED_TX_FRAMES:
            await trio.sleep(0)
        # In arrival order; a malformed frame is the sender's fault, the rest still count.
        d.dispatch(KEYS[3], [(peer_messages.TXS, "not a list")])
        while not faults:
            await trio.sleep(0)
    assert [t[0].nonce for t in recorder.admitted] == [10 * k for k in range(MAX_QUEUED_TX_FRAMES)]
    assert faults == [(KEYS[3], "malformed txs")]


def _pushed_block(height: int) -> list:
    header = BlockHeader(GENESIS.chain_id, height, 0, bytes(32), EMPTY_ROOT, bytes(32), EMPTY_ROOT, "", 0)
    return [Block(header, ()).encode(), CommitCertificate(0, height, header.proposal_digest(), ()).to_record()]


def test_consensus_goes_to_the_core_and_pushed_blocks_to_nodes_that_do_not_vote():
    d, recorder, _, faults = dispatcher()
    vote = sign(Prepare(0, 1, bytes(32), 2), VALIDATORS["node2"], GENESIS.chain_id).encode()
    d.dispatch(STRANGER, [(peer_messages.CONSENSUS, vote), (peer_messages.NEW_BLOCK, _pushed_block(1))])
    # The core judges who votes in the message's epoch; a voter's core delivers blocks itself.
    assert [e.sender for [e] in recorder.steps] == [STRANGER] and recorder.pushed == []
    assert faults == []

    recorder.replica.index = None           # passive: promoted, its epoch not begun (or demoted)
    d.dispatch(KEYS[1], [(peer_messages.NEW_BLOCK, _pushed_block(2))])
    assert recorder.pushed == [(KEYS[1], 2)]

    d, recorder, _, faults = dispatcher(observer=True)
    d.dispatch(KEYS[0], [(peer_messages.CONSENSUS, vote), (peer_messages.NEW_BLOCK, _pushed_block(4)),
                         (peer_messages.NEW_BLOCK, ["not", "a block"])])
    assert recorder.steps == [] and recorder.pushed == [(KEYS[0], 4)]
    assert faults == [(KEYS[0], "consensus message to an observer"), (KEYS[0], "malformed new_block")]




async def test_txs_a_pre_prepare_brings_are_checked_on_the_worker_pool_before_the_step():
    """A PRE-PREPARE's txs that this node has not admitted are checked on the
    worker pool and remembered, so the step's proposal check (on the event
    loop) finds them checked; pooled txs are not checked again, a forged one
    is not remembered, and the decoded proposal is handed on for the step."""
    import dataclasses

    from consensus import events as ev
    from consensus.messages import PrePrepare
    from ledger.block import Proposal
    from node.core.mempool import Mempool
    from node.core.verify_pool import VerifyPool

    txs = [make_tx(ACCOUNTS["finance"], GENESIS, args={"key": f"k{i}", "value": i}, nonce=i)
           for i in range(40)]
    forged = dataclasses.replace(txs[5], signature=bytes(64), _payload=None, _id=None, _record=None)
    carried = txs[:5] + [forged] + txs[6:]
    mempool = Mempool(lambda: GENESIS.config, lambda tx_id: False, max_txs=100, max_bytes=1 << 30)
    for tx in txs[:10]:                              # gossip brought these already
        assert mempool.admit(tx, 0, 0.0) is None
    decoded = []
    driver = SimpleNamespace(
        mempool=mempool, chain=SimpleNamespace(height=0, config=GENESIS.config),
        proposals=SimpleNamespace(decoded_ahead=lambda payload, p: decoded.append((payload, p))))
    pool = VerifyPool(2)
    d = PeerDispatcher(trio.open_memory_channel(1)[1], SimpleNamespace(), SimpleNamespace(),
                       SimpleNamespace(), NodeMetrics(), send=lambda *a: True,
                       on_fault=lambda peer, reason: None, follower=SimpleNamespace(),
                       driver=driver, verifier=pool)
    payload = Proposal(GENESIS.chain_id, 1, 0, "node0", 1_700_000_000_001, tuple(carried)).encode()
    message = PrePrepare(0, 1, bytes(32), payload, 0)
    with trio.fail_after(10):
        await d._verify_ahead([ev.MessageReceived(KEYS[0], message)])
    assert pool.checked == 31          # the 30 unpooled and the forged one; the 9 pooled ones not again
    assert all(mempool.knows_valid(tx) for tx in txs[10:])
    assert not mempool.knows_valid(forged)
    [(seen_payload, proposal)] = decoded
    assert seen_payload is payload and proposal.txs == tuple(carried)
    assert all(a is b for a, b in zip(proposal.txs[6:10], txs[6:10]))   # taken from the pool as they are
