"""Routing what peers send to the part of the node that handles it.

Each inbound batch (one frame from one peer) is decoded message by message:
consensus messages are stepped through the core together (one driver step per
frame, not per message), txs go to the relay's admission, STATUS and BLOCKS to
block sync, GET_BLOCKS is answered from the store.  A malformed message is
dropped and counted as a fault of that peer; the rest of the batch still counts.
"""

from __future__ import annotations

import logging
from typing import Callable

import trio

from consensus import events as ev
from consensus.errors import RemoteProtocolError
from consensus.messages import decode_message
from ledger.codec import DecodeError
from node.core import peer_messages
from node.core.driver import ConsensusDriver
from node.core.sync import BlockSync, blocks_for_peer
from node.core.tx_relay import TxRelay
from node.transport.wire import Message
from storage.base import Store

log = logging.getLogger("ynchain.node")


class PeerDispatcher:
    def __init__(self, inbound: trio.MemoryReceiveChannel, driver: ConsensusDriver, relay: TxRelay,
                 sync: BlockSync, store: Store, *, send: Callable[[int, int, object], bool],
                 on_fault: Callable[[int, str], None]) -> None:
        self._inbound = inbound
        self._driver = driver
        self._relay = relay
        self._sync = sync
        self._store = store
        self._send = send
        self._on_fault = on_fault

    async def run(self) -> None:
        async for peer, messages in self._inbound:
            self.dispatch(peer, messages)

    def dispatch(self, peer: int, messages: list[Message]) -> None:
        consensus_events = []
        for msg_type, payload in messages:
            try:
                if msg_type == peer_messages.CONSENSUS:
                    if type(payload) is not bytes:
                        raise DecodeError("CONSENSUS payload must be bytes")
                    consensus_events.append(ev.MessageReceived(peer, decode_message(payload)))
                elif msg_type == peer_messages.TXS:
                    self._relay.admit(peer_messages.decode_txs(payload), relay=False)
                elif msg_type == peer_messages.STATUS:
                    height, _ = peer_messages.decode_status(payload)
                    self._sync.peer_status(peer, height)
                elif msg_type == peer_messages.GET_BLOCKS:
                    first, last = peer_messages.decode_get_blocks(payload)
                    self._send(peer, peer_messages.BLOCKS, blocks_for_peer(self._store, first, last))
                elif msg_type == peer_messages.BLOCKS:
                    self._sync.on_blocks(peer, peer_messages.decode_blocks(payload))
                else:
                    raise DecodeError(f"unknown message type {msg_type}")
            except (DecodeError, RemoteProtocolError) as exc:
                self._on_fault(peer, f"malformed {peer_messages.NAMES.get(msg_type, 'unknown type')}")
                log.debug("dropped malformed message type %s from peer %d: %s", msg_type, peer, exc)
        if consensus_events:
            self._driver.step(consensus_events)
