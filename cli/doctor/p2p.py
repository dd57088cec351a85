"""Handshakes with every peer under this node's key, to learn why a link fails.

Only while this node is NOT running.  A live node holds the same key, and a
peer that accepts a second session from a validator drops the first
(node.transport.peers: "the newer session replaces the older"): a doctor
handshake would cut the running node off.  The doctor then asks the node's
API for its own view instead (cli.doctor.checks_network).

The mesh's connection rule decides the direction, as in the node: of two
nodes the one with the smaller node key dials, and the other refuses a dial
the other way (node.transport.peers.dials).  So:

- peers with a larger key than this node's are dialed, with the full handshake;
- peers with a smaller key dial *us*: the doctor listens on this node's p2p
  address for a while (they redial at least every 2 s) and runs the
  acceptor's side;
- such a peer that does not come is dialed all the same: its hello (sent
  before it judges ours) tells whether it is up and on our chain and genesis;
  it then refuses us by design, which is reported as "it does not dial us".
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from ledger.crypto import KeyPair
from ledger.genesis import Genesis
from node.transport.handshake import handshake
from node.transport.peers import dials
from node.transport.wire import HandshakeError, connect_failure

# PeerManager redials with a back-off capped at 2 s (backoff_max_s), jittered down.
LISTEN_WINDOW_S = 3.0
HELLO_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class LinkResult:
    ok: bool
    how: str                  # "dialed" (we dialed it) or "accepted" (it dialed us)
    reason: str | None = None  # a HandshakeError reason, "unreachable", or "silent"
    detail: str = ""


async def _dial(key: KeyPair, genesis: Genesis, index: int, timeout_s: float,
                expect_refusal: bool) -> LinkResult:
    peer = genesis.validators[index]
    stream = None
    with trio.move_on_after(timeout_s):
        try:
            stream = await trio.open_tcp_stream(*peer.p2p)
        except OSError as exc:
            return LinkResult(False, "dialed", "unreachable", connect_failure(exc))
    if stream is None:
        return LinkResult(False, "dialed", "unreachable", f"no TCP connection within {timeout_s:g}s")
    hello_ok = False

    def hello_passed(_key: bytes) -> None:
        nonlocal hello_ok
        hello_ok = True
    try:
        channel = await handshake(stream, initiator=True, key=key, chain_id=genesis.chain_id,
                                  genesis_hash=genesis.hash, is_allowed=lambda k: k == peer.public_key,
                                  timeout_s=timeout_s, on_hello=hello_passed)
    except HandshakeError as exc:
        if expect_refusal and hello_ok and exc.reason == "closed":
            return LinkResult(False, "dialed", "silent", "")
        return LinkResult(False, "dialed", exc.reason, exc.detail)
    await channel.aclose()
    return LinkResult(True, "dialed")


class _Acceptor:
    """Runs the acceptor's side for the peers that dial us (smaller keys)."""

    def __init__(self, key: KeyPair, genesis: Genesis, lower: dict[bytes, int], timeout_s: float) -> None:
        self.key = key
        self.genesis = genesis
        self.lower = lower
        self.timeout_s = timeout_s
        self.results: dict[int, LinkResult] = {}
        self.all_heard = trio.Event()
        if not lower:
            self.all_heard.set()

    async def handle(self, stream: trio.SocketStream) -> None:
        claimed: list[bytes] = []
        try:
            channel = await handshake(stream, initiator=False, key=self.key,
                                      chain_id=self.genesis.chain_id, genesis_hash=self.genesis.hash,
                                      is_allowed=self.lower.__contains__, timeout_s=self.timeout_s,
                                      hello_timeout_s=min(HELLO_TIMEOUT_S, self.timeout_s),
                                      on_hello=claimed.append)
        except HandshakeError as exc:
            # Before its hello passed we cannot tell who it was; the fallback
            # dial learns that peer's reason from its own hello.
            if claimed:
                self._record(self.lower[claimed[0]], LinkResult(False, "accepted", exc.reason, exc.detail))
            return
        self._record(self.lower[channel.peer_key], LinkResult(True, "accepted"))
        await channel.aclose()

    def _record(self, index: int, result: LinkResult) -> None:
        if self.results.get(index, result).ok and not result.ok:
            return          # a success is not undone by a later failed attempt
        self.results[index] = result
        if len(self.results) == len(self.lower) and all(r.ok for r in self.results.values()):
            self.all_heard.set()


async def probe_links(key: KeyPair, genesis: Genesis, me: int, listen: tuple[str, int] | None,
                      timeout_s: float, window_s: float = LISTEN_WINDOW_S) -> dict[int, LinkResult]:
    """Handshake with every other validator (see the module docstring); one
    LinkResult per validator index.  `listen` is this node's p2p address (None:
    it cannot be bound, so peers below are only dialed)."""
    results: dict[int, LinkResult] = {}
    mine = key.public_key
    lower = {v.public_key: i for i, v in enumerate(genesis.validators)
             if i != me and dials(v.public_key, mine)}
    acceptor = _Acceptor(key, genesis, lower, timeout_s)

    async def dial_into(index: int, expect_refusal: bool) -> None:
        results[index] = await _dial(key, genesis, index, timeout_s, expect_refusal)

    async with trio.open_nursery() as nursery:
        for index, v in enumerate(genesis.validators):
            if index != me and dials(mine, v.public_key):
                nursery.start_soon(dial_into, index, False)
        listeners = []
        if lower and listen is not None:
            try:
                listeners = await trio.open_tcp_listeners(listen[1], host=listen[0])
            except OSError:
                pass            # taken meanwhile: the peers below are dialed instead
        try:
            if listeners:
                async with trio.open_nursery() as accepting:
                    accepting.start_soon(trio.serve_listeners, acceptor.handle, listeners)
                    with trio.move_on_after(min(window_s, timeout_s)):
                        await acceptor.all_heard.wait()
                    accepting.cancel_scope.cancel()
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)
    results.update(acceptor.results)
    async with trio.open_nursery() as nursery:
        for index in lower.values():
            if index not in results:
                nursery.start_soon(dial_into, index, True)
    return results
