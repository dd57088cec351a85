"""GET /events/blocks: committed blocks as server-sent events.

    id: <height>
    event: block
    data: {"height": ..., "hash": ..., "txs": <count>, "proposer": ..., "timestamp_ms": ...}

With ?tx_ids=true the data also lists the block's tx ids ("tx_ids"), so a
client following its own txs (the benchmark's observer) needs no GET
/blocks/{height} per block.

With a start height (?from=H, or a reconnecting browser's Last-Event-ID + 1)
the stream first replays stored blocks from H, then follows live ones with no
gap and no repeat: it subscribes before its last look at the store, skips live
blocks it already sent and fills any gap from the store.  Its place among the
node's subscribers is reserved by the route before the response starts (so
a burst of clients cannot overrun the cap), and the channel itself opens
after the first replay (so a long replay does not overflow it).  The node closes the
subscription of a reader that falls too far behind; the stream then ends and
the client resumes with ?from=.

Written as a plain ASGI response rather than a streaming generator so that
trio cancel scopes never straddle a `yield`, and so that a client going away
(http.disconnect) cancels the stream at once.
"""

from __future__ import annotations

import json
import logging

import trio

from .facade import BlockSubscription, NodeFacade
from .jsonview import block_summary_to_json

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _event(block, tx_ids: bool) -> bytes:
    summary = block_summary_to_json(block.header, len(block.txs))
    if tx_ids:
        summary["tx_ids"] = [tx.id.hex() for tx in block.txs]
    data = json.dumps(summary, separators=(",", ":"))
    return f"id: {block.height}\nevent: block\ndata: {data}\n\n".encode()


class BlockEventStream:
    """An ASGI response over a reserved subscriber place (given back when the
    response ends, however it ends); `start` is the first height to replay,
    or None for live only."""

    def __init__(self, facade: NodeFacade, subscription: BlockSubscription, start: int | None,
                 heartbeat_s: float = HEARTBEAT_S, tx_ids: bool = False) -> None:
        self.facade = facade
        self.subscription = subscription
        self.start = start
        self.heartbeat_s = heartbeat_s
        self.tx_ids = tx_ids

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self._respond(receive, send)
        finally:
            self.subscription.close()

    async def _respond(self, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        client_gone = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_disconnect, receive, client_gone, nursery.cancel_scope)
            try:
                await self._pump(send)
            except Exception:
                log.exception("block event stream failed")
            nursery.cancel_scope.cancel()
        # Ended by the node (or a failure): finish the response outside the
        # nursery, because finishing it makes hypercorn report a disconnect
        # and the watcher must not cancel hypercorn's own close path midway.
        if not client_gone.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _watch_disconnect(receive, client_gone: trio.Event, scope: trio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        client_gone.set()
        scope.cancel()

    async def _pump(self, send) -> None:
        async def body(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        next_height = self.start
        if next_height is not None:
            next_height = await self._replay(next_height, body)
        with self.subscription.open() as blocks:
            if next_height is not None:
                next_height = await self._replay(next_height, body)
            await body(b": subscribed\n\n")
            while True:
                try:
                    committed = await self._next(blocks)
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
                if committed is None:
                    await body(b": heartbeat\n\n")
                    continue
                block = committed.block
                if next_height is None:
                    next_height = block.height
                if block.height < next_height:
                    continue
                # Blocks committed between two looks at the store.
                next_height = await self._replay(next_height, body, stop=block.height)
                await body(_event(block, self.tx_ids))
                next_height = block.height + 1

    async def _next(self, blocks: trio.MemoryReceiveChannel):
        """The next committed block, or None when a heartbeat is due."""
        with trio.move_on_after(self.heartbeat_s):
            return await blocks.receive()
        return None

    async def _replay(self, height: int, body, stop: int | None = None) -> int:
        """Send stored blocks from `height` (up to `stop`, exclusive); return the
        next height to send."""
        while stop is None or height < stop:
            committed = self.facade.get_block(height)
            if committed is None:
                break
            await body(_event(committed.block, self.tx_ids))
            height += 1
        return height
