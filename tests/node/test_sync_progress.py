"""Block sync shows its progress: {target, height, rate, eta_s} for /status
while a session runs, and a log line with rate and time left at a bounded rate."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import trio

from node.core import peer_messages
from node.core.sync import PROGRESS_LOG_INTERVAL_S, RATE_WINDOW_S, BlockSync, SyncProgress

PEER = b"\x01" * 32      # peers are named by node key

PER_ANSWER = peer_messages.MAX_SYNC_BLOCKS


def test_rate_and_time_left_over_a_sliding_window():
    p = SyncProgress(100, 1100, now=0.0)
    assert p.as_dict() == {"target": 1100, "height": 100, "rate": None, "eta_s": None}
    for t in range(1, 21):                      # 50 blocks/s for 20 s
        p.advance(100 + 50 * t, 1100, now=float(t))
    assert p.rate == 50.0 and p.eta_s == 0.0 and p.height == 1100
    # The rate follows the recent pace, not the whole session's average.
    q = SyncProgress(0, 10_000, now=0.0)
    for t in range(1, 31):
        q.advance(100 * t if t <= 20 else 2000 + 10 * (t - 20), 10_000, now=float(t))
    assert q.rate == pytest.approx(10.0)       # the last RATE_WINDOW_S seconds: 10 blocks/s
    assert q.eta_s == pytest.approx((10_000 - 2100) / 10.0)
    assert RATE_WINDOW_S == 10.0
    assert "height 2100 of 10000 (2100 blocks fetched, 7900 to go, 10 blocks/s, about 790s left)" == q.describe()


def test_a_target_that_moves_up_while_syncing():
    p = SyncProgress(0, 100, now=0.0)
    p.advance(64, 300, now=1.0)
    assert p.as_dict() == {"target": 300, "height": 64, "rate": 64.0, "eta_s": 3.7}


def test_progress_lines_are_rate_limited():
    p = SyncProgress(0, 100, now=0.0)
    due = [t for t in range(0, 60) if p.due_for_log(float(t))]
    assert due == list(range(int(PROGRESS_LOG_INTERVAL_S), 60, int(PROGRESS_LOG_INTERVAL_S)))


class FakeChain:
    """Heights only: every synced block is taken as is."""

    def __init__(self) -> None:
        self.height = 0

    def apply_synced(self, block, cert):
        assert block.height == self.height + 1
        self.height = block.height
        return SimpleNamespace(block=block)


async def test_a_sync_session_reports_progress_and_logs_it_sparingly(autojump_clock, caplog):
    caplog.set_level(logging.INFO, logger="ynchain.sync")
    chain, target = FakeChain(), 40 * PER_ANSWER
    seen, progress_calls = [], []
    async with trio.open_nursery() as nursery:
        def send(peer, msg_type, payload):
            assert msg_type == peer_messages.GET_BLOCKS
            first, last = payload
            seen.append(sync.progress())

            async def answer():
                await trio.sleep(0.5)             # a peer serving 64 blocks per half second
                sync.on_blocks(peer, [(SimpleNamespace(height=h), None) for h in range(first, last + 1)])
            nursery.start_soon(answer)
            return True

        sync = BlockSync(chain, send=send, connected=lambda: [PEER], apply=lambda results: None,
                         on_progress=lambda h, t, n: progress_calls.append((h, t, n)))
        nursery.start_soon(sync.run)
        sync.peer_status(PEER, target)
        assert sync.progress() is None
        with trio.fail_after(120):
            sync.want(target)
            while chain.height < target or sync.session is not None:
                await trio.sleep(0.1)
        nursery.cancel_scope.cancel()

    assert chain.height == target and sync.progress() is None
    assert seen[0] == {"target": target, "height": 0, "rate": None, "eta_s": None}
    middle = seen[20]
    assert middle["height"] == 20 * PER_ANSWER and middle["target"] == target
    assert middle["rate"] == pytest.approx(PER_ANSWER / 0.5, rel=0.05)
    assert middle["eta_s"] == pytest.approx(20 * 0.5, rel=0.05)
    assert progress_calls[-1] == (target, 0, 0)          # the session's end
    lines = [r.getMessage() for r in caplog.records if "to go" in r.getMessage()]
    # 20 s of syncing: a line per PROGRESS_LOG_INTERVAL_S, not one per answer.
    assert 2 <= len(lines) <= 20 / PROGRESS_LOG_INTERVAL_S
    assert all("blocks/s" in line and "left" in line for line in lines)
    assert any(r.getMessage().startswith(f"block sync: {target} blocks") for r in caplog.records)


def test_status_with_sync_progress_fits_the_documented_schema():
    from tests.node.fake_node import FakeNode
    from tests.node.test_api import DOC, _matches
    node = FakeNode()
    progress = SyncProgress(10, 500, now=0.0)
    progress.advance(74, 500, now=0.5)
    node.sync = progress.as_dict()
    status = node.status()
    assert status["syncing"] and status["sync"] == {"target": 500, "height": 74, "rate": 128.0, "eta_s": 3.3}
    schema = {"$ref": "#/components/schemas/Status"}
    assert _matches(schema, status) is None
    assert _matches(schema, {**status, "sync": {"target": 500}}) is not None     # the schema has teeth


def test_behind_only_when_more_than_f_connected_peers_say_so():
    # A node that lags must not suspect the primary; one lying peer must not be
    # able to make a node believe it lags (and so never suspect a faulty primary).
    peers = [bytes([i]) * 32 for i in range(1, 4)]
    connected = list(peers)
    sync = BlockSync(SimpleNamespace(height=100), send=lambda *a: True, connected=lambda: connected,
                     apply=lambda results: None, on_progress=lambda h, t, n: None)
    sync.peer_status(peers[0], 10_000)                 # a liar, or the only one ahead
    assert not sync.known_behind(16, f=1)
    sync.peer_status(peers[1], 117)
    assert sync.known_behind(16, f=1)                  # two of three, each > 16 ahead
    sync.peer_status(peers[1], 116)
    assert not sync.known_behind(16, f=1)              # within the margin
    sync.peer_status(peers[1], 200)
    connected.remove(peers[1])
    assert not sync.known_behind(16, f=1)              # only connected peers count
