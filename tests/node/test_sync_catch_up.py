"""A node that syncs toward a chain still committing ends its session where
the serving peer is, not where the peer said it was up to a second earlier:
every BLOCKS answer is followed by the server's STATUS.  On a chain making
tens of blocks a second, stopping at the older height leaves a node further
behind than the consensus window, and it would never vote again."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from ledger.block import Block, BlockHeader
from ledger.certificate import CommitCertificate
from ledger.merkle import EMPTY_ROOT
from node.core.dispatch import PeerDispatcher
from node.core.sync import BlockSync
from tests.factories import make_genesis

GENESIS = make_genesis()[0]
SERVER, CLIENT = b"\x01" * 32, b"\x02" * 32
BLOCKS_PER_S = 36                 # the pace of the failing promotion test's chain
LATENCY_S = 0.005


class GrowingStore:
    """A store on a chain that commits BLOCKS_PER_S blocks a second from 0 s."""

    def last_height(self) -> int:
        return int(trio.current_time() * BLOCKS_PER_S)

    def last_block_hash(self) -> bytes:
        return self.last_height().to_bytes(32, "big")

    def get_block_bytes(self, height: int) -> bytes | None:
        if height > self.last_height():
            return None
        header = BlockHeader(GENESIS.chain_id, height, 0, bytes(32), EMPTY_ROOT, bytes(32), EMPTY_ROOT, "", 0)
        return Block(header, ()).encode()

    def get_certificate(self, height: int) -> CommitCertificate | None:
        return None if height > self.last_height() else CommitCertificate(0, height, bytes(32), ())


class FakeChain:
    """Heights only: every synced block is taken as is."""

    def __init__(self, height: int) -> None:
        self.height = height

    def apply_synced(self, block, cert):
        assert block.height == self.height + 1
        self.height = block.height
        return SimpleNamespace(block=block)


def peer_dispatcher(sync, store, send) -> PeerDispatcher:
    """A dispatcher for the sync messages only (no core, relay or follower)."""
    return PeerDispatcher(trio.open_memory_channel(1)[1], None, sync, store, None, send=send,
                          on_fault=lambda peer, reason: None, follower=None)


async def test_a_session_ends_where_the_serving_peer_is_now(autojump_clock, nursery):
    store, chain = GrowingStore(), FakeChain(0)
    sessions = []

    def on_progress(height, target, applied):
        if target == 0:
            sessions.append((trio.current_time(), height, store.last_height()))

    def client_send(peer, msg_type, payload) -> bool:
        assert peer == SERVER
        nursery.start_soon(deliver, server, CLIENT, [(msg_type, payload)])
        return True

    def server_send(peer, msg_type, payload) -> bool:
        assert peer == CLIENT
        frame.append((msg_type, payload))     # what one GET_BLOCKS makes goes in one frame
        return True

    async def deliver(to, sender, messages):
        await trio.sleep(LATENCY_S)
        to.dispatch(sender, messages)
        if frame:
            answer = list(frame)
            frame.clear()
            nursery.start_soon(deliver, client, SERVER, answer)

    frame: list = []
    sync = BlockSync(chain, send=client_send, connected=lambda: [SERVER], apply=lambda results: None,
                     on_progress=on_progress)
    client = peer_dispatcher(sync, None, lambda *a: True)
    server = peer_dispatcher(None, store, server_send)
    nursery.start_soon(sync.run)

    with trio.fail_after(60):
        await trio.sleep(10)                  # 360 blocks behind
        reported = store.last_height()
        sync.peer_status(SERVER, reported)    # its periodic STATUS
        await trio.sleep(0.9)                 # the chain moves on before the session starts
        sync.want(reported)
        while not sessions:
            await trio.sleep(0.001)

    [(ended_at, height, server_height)] = sessions
    assert server_height > reported + 30
    # Within the blocks made during one round trip of where the server is.
    assert height >= server_height - BLOCKS_PER_S * 2 * LATENCY_S - 1, (height, server_height, reported)
