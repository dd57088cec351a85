"""A user-space fault proxy per ordered pair of validators (the kernel here has no netem).

Of two nodes only the one with the smaller node key dials the other, at the address
in its `[p2p] dial` table (node.config).  The campaign points that address at a
`LinkProxy` that forwards to the other's real listen port, so it can cut the link (drop live connections, refuse new
ones), delay it, or heal it.  The proxy sees only sealed frames; it never reads them.
"""

from __future__ import annotations

import itertools
import math

import trio

CHUNK = 64 * 1024
DELAY_QUEUE = 256          # chunks in flight per direction of a delayed connection


class LinkProxy:
    """Forwards connections from `listen_port` to `target`; starts healthy."""

    def __init__(self, dialer: int, target_index: int, listen_port: int,
                 target: tuple[str, int]) -> None:
        self.pair = (dialer, target_index)
        self.listen_port = listen_port
        self.target = target
        self.cut = False
        self.delay_s = 0.0
        self.connections = 0       # accepted and forwarded
        self.refused = 0           # accepted while cut and closed at once
        self._live: set[trio.CancelScope] = set()

    def set_cut(self, cut: bool) -> None:
        """Cut: every live connection is dropped and new ones are closed at once."""
        self.cut = cut
        if cut:
            for scope in list(self._live):
                scope.cancel()

    def set_delay(self, seconds: float) -> None:
        """Added one-way latency, from the next chunk on, for live connections too (0: none)."""
        self.delay_s = seconds

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream,
                    done: trio.CancelScope) -> None:
        """Copy one direction, each chunk held for the link's delay at the time it was
        read (in order); when either side ends, the whole connection ends."""
        send, receive = trio.open_memory_channel(DELAY_QUEUE)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_delayed_sender, receive, sink)
                async with send:
                    while data := await source.receive_some(CHUNK):
                        await send.send((trio.current_time() + self.delay_s, data))
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass          # either side went away: the connection ends
        finally:
            done.cancel()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.listen_port, host="127.0.0.1")
        self.listen_port = listeners[0].socket.getsockname()[1]     # port 0: the one we got
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.serve_listeners, self._serve, listeners)
                task_status.started()
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)

    async def _serve(self, inbound: trio.SocketStream) -> None:
        if self.cut:
            self.refused += 1
            await trio.aclose_forcefully(inbound)
            return
        scope = trio.CancelScope()
        self._live.add(scope)
        outbound = None
        try:
            with scope:
                with trio.move_on_after(5):
                    try:
                        outbound = await trio.open_tcp_stream(*self.target, local_address="127.0.0.1")
                    except OSError:
                        pass
                if outbound is None:
                    return
                self.connections += 1
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, inbound, outbound, nursery.cancel_scope)
                    nursery.start_soon(self._pump, outbound, inbound, nursery.cancel_scope)
        finally:
            self._live.discard(scope)
            await trio.aclose_forcefully(inbound)
            if outbound is not None:
                await trio.aclose_forcefully(outbound)


async def _delayed_sender(receive: trio.MemoryReceiveChannel, sink: trio.SocketStream) -> None:
    async with receive:
        async for due, data in receive:
            await trio.sleep_until(due)
            await sink.send_all(data)


class Mesh:
    """One LinkProxy per pair of nodes (i, j), i < j, on consecutive ports from
    `base_port`, forwarding from the pair's dialer to the other: with `keys`
    (the nodes' public keys) the one with the smaller key, else node i."""

    def __init__(self, p2p: list[tuple[str, int]], base_port: int,
                 keys: list[bytes] | None = None) -> None:
        pairs = list(itertools.combinations(range(len(p2p)), 2))
        self.links = {}
        for k, (i, j) in enumerate(pairs):
            dialer, target = (j, i) if keys is not None and keys[j] < keys[i] else (i, j)
            self.links[(i, j)] = LinkProxy(dialer, target, base_port + k, p2p[target])

    @staticmethod
    def port_count(nodes: int) -> int:
        return math.comb(nodes, 2)

    def dial_table(self, dialer: int) -> dict[int, tuple[str, int]]:
        """Where `dialer` must dial each peer it dials: that link's proxy."""
        return {link.pair[1]: ("127.0.0.1", link.listen_port)
                for link in self.links.values() if link.pair[0] == dialer}

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for link in self.links.values():
                await nursery.start(link.run)
            task_status.started()

    def link(self, a: int, b: int) -> LinkProxy:
        return self.links[(min(a, b), max(a, b))]

    def cut_pairs(self) -> frozenset[tuple[int, int]]:
        return frozenset(pair for pair, link in self.links.items() if link.cut)

    def partition(self, groups: list[list[int]]) -> None:
        """Cut every link between two different groups (nodes in no group: untouched)."""
        side = {node: g for g, members in enumerate(groups) for node in members}
        for (i, j), link in self.links.items():
            if i in side and j in side and side[i] != side[j]:
                link.set_cut(True)

    def heal(self) -> None:
        for link in self.links.values():
            link.set_cut(False)
            link.set_delay(0.0)

    def stats(self) -> dict[str, int]:
        return {"connections": sum(l.connections for l in self.links.values()),
                "refused_while_cut": sum(l.refused for l in self.links.values())}
