"""The peer dispatcher: consensus messages never wait behind tx admission,
and the queue of txs waiting for admission is bounded."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from consensus.messages import Prepare, sign
from node.core import peer_messages
from node.core.dispatch import MAX_QUEUED_TX_FRAMES, PeerDispatcher
from node.metrics import NodeMetrics
from tests.factories import make_genesis, make_tx

GENESIS, VALIDATORS, ACCOUNTS = make_genesis()


class Recorder:
    def __init__(self) -> None:
        self.steps: list = []
        self.admitted: list[list] = []
        self.gate = trio.Event()          # admission waits on it (a slow signature check)

    def step(self, events) -> None:
        self.steps.append(list(events))

    async def admit_chunked(self, txs, *, relay: bool):
        await self.gate.wait()
        self.admitted.append(txs)
        return []


def dispatcher():
    recorder = Recorder()
    metrics = NodeMetrics()
    faults = []
    d = PeerDispatcher(trio.open_memory_channel(1)[1], recorder, recorder, SimpleNamespace(),
                       SimpleNamespace(), metrics, send=lambda *a: True,
                       on_fault=lambda peer, reason: faults.append((peer, reason)))
    return d, recorder, metrics, faults


def txs_payload(first: int, n: int) -> list:
    return [make_tx(ACCOUNTS["finance"], GENESIS, nonce=k).to_record() for k in range(first, first + n)]


async def test_consensus_messages_do_not_wait_for_tx_admission(nursery):
    d, recorder, _, _ = dispatcher()
    nursery.start_soon(d.run_tx_intake)
    vote = sign(Prepare(0, 1, bytes(32), 2), VALIDATORS["node2"], GENESIS.chain_id).encode()
    with trio.fail_after(10):
        d.dispatch(2, [(peer_messages.TXS, txs_payload(0, 50)), (peer_messages.CONSENSUS, vote)])
        # Stepped at once, while the txs before it in the same frame still wait.
        assert len(recorder.steps) == 1 and type(recorder.steps[0][0].message) is Prepare
        assert recorder.admitted == []
        recorder.gate.set()
        while not recorder.admitted:
            await trio.sleep(0)
        assert len(recorder.admitted[0]) == 50


async def test_tx_frames_beyond_the_queue_are_dropped_and_counted(nursery):
    d, recorder, metrics, faults = dispatcher()
    for k in range(MAX_QUEUED_TX_FRAMES + 2):
        d.dispatch(1, [(peer_messages.TXS, txs_payload(10 * k, 3))])
    d.dispatch(1, [(peer_messages.TXS, "not a list")])      # dropped too: the queue is full
    assert metrics.registry.get_sample_value("ynchain_gossip_txs_dropped_total") == 2 * 3 + 1
    nursery.start_soon(d.run_tx_intake)
    recorder.gate.set()
    with trio.fail_after(10):
        while len(recorder.admitted) < MAX_QUEUED_TX_FRAMES:
            await trio.sleep(0)
        # In arrival order; a malformed frame is the sender's fault, the rest still count.
        d.dispatch(3, [(peer_messages.TXS, "not a list")])
        while not faults:
            await trio.sleep(0)
    assert [t[0].nonce for t in recorder.admitted] == [10 * k for k in range(MAX_QUEUED_TX_FRAMES)]
    assert faults == [(3, "malformed txs")]
