"""The node mesh: one authenticated, encrypted session per peer node.

Peers are named by their ed25519 node key.  The allowlist is a table
key -> (name, dial address) that the node replaces whenever the on-chain
configuration changes it (`update`): a node that joins is accepted and dialled
from then on, one that leaves is disconnected and refused afterwards, a moved
one is redialled at its new address.  Validators and observers alike.

Connection rule: of two nodes, the one with the lexicographically smaller key
dials and the other only accepts it.  With one dialer per pair there is no race
that builds two connections and must pick one, and the rule needs nothing but
the two keys (no index in a list that governance reorders); if the same peer
still shows up twice (it restarted before we noticed its old socket died), the
newer session replaces the older.

Per session there is a nursery with a reader and a writer:

- writer: drains the peer's outbound queue, sending everything queued as one
  batch frame (up to the frame cap), so many small messages cost one seal and
  one write under load while an idle peer gets each message immediately.  The
  queue is bounded in bytes; a peer that cannot keep up overflows it and is
  disconnected (it resyncs later) so memory never grows with a slow peer.
  When idle it sends an empty batch every `keepalive_interval_s` seconds.
- reader: receives batch frames and hands each to the node as ONE
  `await inbound.send((peer_key, [(msg_type, payload), ...]))`.  The inbound
  channel is bounded, so a flooding peer is slowed at its own reader.  A peer
  silent for `idle_timeout_s` seconds is considered dead (half-open TCP).

Anything wrong a peer does (garbage, oversized frame, failed handshake, bad
ciphertext, malformed envelope) closes that one connection, is logged with
the peer's address and counted in `stats`; the manager keeps running.

Inbound connections are unauthenticated until their handshake completes:
node.transport.inbound bounds what strangers can make us hold (a short
deadline for the dialer's hello, eviction of the oldest unproven handshake
when full rather than refusing a newcomer, a per-source cap for addresses
that are no known node's), and logs their failures one summary line per
interval instead of one line each.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import trio

from ledger.crypto import KeyPair

from .framing import DEFAULT_MAX_FRAME
from .handshake import DEFAULT_HANDSHAKE_TIMEOUT_S, handshake
from .inbound import FailureLog, InboundGate, normalise_host
from .secure_channel import ABYTES, FRAME_OVERHEAD, SecureChannel
from .wire import (
    BATCH_HEADER_MAX, ConnectionClosed, HandshakeError, IdleTimeout, Message,
    RemoteProtocolError, connect_failure, decode_batch, encode_batch, encode_message,
)

log = logging.getLogger(__name__)

DEFAULT_QUEUE_BYTES = 64 * 1024 * 1024
# A peer removed from the configuration gets what was queued for it (the block
# that removed it, so it learns why) for at most this long, then it is cut off.
LEAVE_FLUSH_S = 2.0
Hook = Callable[[bytes], None]


@dataclass(frozen=True, slots=True)
class Peer:
    """An allowed peer node: its name (for logs) and where to dial it."""
    name: str
    address: tuple[str, int]


PeerTable = Mapping[bytes, Peer]      # node public key -> Peer


def dials(my_key: bytes, peer_key: bytes) -> bool:
    """Whether this node dials the peer (else it waits to be dialled)."""
    return my_key < peer_key


@dataclass(slots=True)
class TransportStats:
    """Plain counters the node exports as metrics (bytes include framing and
    the authentication tag, i.e. what crosses the socket)."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    sessions: int = 0            # authenticated sessions established
    disconnects: int = 0         # sessions ended, for any reason
    queue_overflows: int = 0
    dial_failures: int = 0       # TCP connects that failed or timed out (peer down)
    handshake_failures: Counter = field(default_factory=Counter)  # by HandshakeError.reason
    protocol_errors: Counter = field(default_factory=Counter)     # by RemoteProtocolError.reason


class _Session:
    """One live connection to a peer and its outbound queue."""

    __slots__ = ("key", "label", "address", "channel", "queue", "queued_bytes", "wakeup",
                 "cancel_scope", "end_reason", "leaving")

    def __init__(self, key: bytes, label: str, address: str, channel: SecureChannel) -> None:
        self.key = key
        self.label = label
        self.address = address
        self.channel = channel
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.wakeup = trio.Event()
        self.cancel_scope = trio.CancelScope()
        self.end_reason: str | None = None
        self.leaving: str | None = None      # close once the queue is sent, for this reason

    def close(self, reason: str) -> None:
        """End the session; the first reason given is the one reported."""
        if self.end_reason is None:
            self.end_reason = reason
        self.queue.clear()
        self.queued_bytes = 0
        self.cancel_scope.cancel()


class PeerManager:
    """Keeps authenticated sessions to every node in `peers`.

    `peers` maps node key -> Peer(name, address); it may include our own entry
    (ignored).  Received batches go to `inbound`.  `on_connect(key)` runs for
    every new session with a peer (including one that replaces an older
    session: the peer may have restarted and lost state); `on_disconnect(key)`
    runs when it no longer has any session.  Both are plain callbacks run in
    the transport's task: keep them quick; they may call `send`.
    """

    def __init__(
        self,
        my_key: KeyPair,
        chain_id: str,
        genesis_hash: bytes,
        peers: PeerTable,
        inbound: trio.MemorySendChannel,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        keepalive_interval_s: float = 5.0,
        idle_timeout_s: float = 20.0,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
        hello_timeout_s: float = 2.0,
        max_pending_handshakes: int = 64,
        max_handshakes_per_source: int = 8,
        failure_log_interval_s: float = 10.0,
        on_connect: Hook | None = None,
        on_disconnect: Hook | None = None,
    ) -> None:
        if max_frame <= ABYTES + BATCH_HEADER_MAX:
            raise ValueError(f"max_frame of {max_frame} bytes is too small")
        if queue_bytes < 1:
            raise ValueError("queue_bytes must be positive")
        if not 0 < keepalive_interval_s < idle_timeout_s:
            raise ValueError("need 0 < keepalive_interval_s < idle_timeout_s")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        if not 0 < hello_timeout_s <= handshake_timeout_s:
            raise ValueError("need 0 < hello_timeout_s <= handshake_timeout_s")
        self.stats = TransportStats()
        self._key = my_key
        self._chain_id = chain_id
        self._genesis_hash = genesis_hash
        self._me = my_key.public_key
        self._peers: dict[bytes, Peer] = {k: p for k, p in peers.items() if k != self._me}
        self._inbound = inbound
        self._max_frame = max_frame
        self._max_batch = max_frame - ABYTES
        self._queue_bytes = queue_bytes
        self._handshake_timeout_s = handshake_timeout_s
        self._keepalive_interval_s = keepalive_interval_s
        self._idle_timeout_s = idle_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._hello_timeout_s = hello_timeout_s
        self._gate = InboundGate({p.address[0] for p in self._peers.values()},
                                 max_unidentified=max_pending_handshakes,
                                 max_per_source=max_handshakes_per_source)
        self._inbound_failures = FailureLog(log, failure_log_interval_s)
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._sessions: dict[bytes, _Session] = {}
        self._last_errors: dict[bytes, str] = {}   # peers we dial: why the last attempt failed
        self._dialling: dict[bytes, trio.CancelScope] = {}    # peer key -> its dial loop
        self._nursery: trio.Nursery | None = None
        self._running = False

    # -- public API -------------------------------------------------------------

    async def run(self, listen_host: str, listen_port: int, *,
                  task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Listen, dial the peers with larger keys, and keep sessions up until
        cancelled.  Reports the actual listening port via task_status.started
        (so port 0 works).  Cancelling it closes every socket.  Raises OSError
        if it cannot listen; if the node closes `inbound`, the resulting
        trio.BrokenResourceError/ClosedResourceError ends run() too."""
        if self._running:
            raise RuntimeError("PeerManager.run is already running")
        self._running = True
        listeners = []
        try:
            listeners = await trio.open_tcp_listeners(listen_port, host=listen_host)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(trio.serve_listeners, self._accept, listeners)
                nursery.start_soon(self._inbound_failures.run)
                for key in sorted(self._peers):
                    self._start_dialling(key)
                task_status.started(listeners[0].socket.getsockname()[1])
        finally:
            self._running = False
            self._nursery = None
            self._dialling.clear()
            for listener in listeners:
                await trio.aclose_forcefully(listener)

    def update(self, peers: PeerTable) -> None:
        """Replace the allowlist (the node calls this when a committed block
        changed the configuration): a peer no longer listed is disconnected at
        once and refused from now on; a new one is dialled (if its key is the
        larger) or accepted; one whose address changed is redialled there."""
        new = {k: p for k, p in peers.items() if k != self._me}
        old, self._peers = self._peers, new
        self._gate.set_known_hosts({p.address[0] for p in new.values()})
        for key in old.keys() - new.keys():
            self._last_errors.pop(key, None)
            session = self._sessions.get(key)
            if session is not None:
                # Its dial loop (if we dial it) ends by itself once the session
                # has: the peer is no longer listed.
                log.info("peer %s (%s): removed from the configuration, disconnecting",
                         session.label, session.address)
                self._leave(session, "removed from the configuration")
            else:
                scope = self._dialling.pop(key, None)
                if scope is not None:
                    scope.cancel()
        for key in sorted(new.keys() - old.keys()):
            self._start_dialling(key)
        for key in sorted(new.keys() & old.keys()):
            if new[key].address != old[key].address and key not in self._sessions:
                # Waiting out a back-off to an address that is no longer the
                # peer's: dial the new one now.  A live session stays; when it
                # ends the dial loop uses the new address.
                scope = self._dialling.pop(key, None)
                if scope is not None:
                    scope.cancel()
                self._start_dialling(key)

    def _leave(self, session: _Session, reason: str) -> None:
        """Close a session once what is queued for it is sent (LEAVE_FLUSH_S at
        most); nothing more is queued for it or taken from it meanwhile."""
        session.leaving = reason
        if not session.queue or self._nursery is None:
            session.close(reason)
            return
        session.wakeup.set()

        async def cut_off() -> None:
            await trio.sleep(LEAVE_FLUSH_S)
            session.close(reason)
        self._nursery.start_soon(cut_off)

    @property
    def own_key(self) -> bytes:
        return self._me

    def allowed(self) -> list[bytes]:
        """The keys of every peer node this manager accepts or dials, sorted."""
        return sorted(self._peers)

    def send(self, peer: bytes, msg_type: int, payload: Any) -> bool:
        """Queue one message for a peer (by node key) without blocking.  False
        if the peer is not connected or was just disconnected for overflowing
        its queue.  Raises ValueError for a msg_type outside 0..65535 or a
        message too big for one frame, TypeError for a payload msgpack cannot
        encode."""
        session = self._sessions.get(peer)
        if session is None:
            return False
        return self._enqueue(session, self._encode(msg_type, payload))

    def broadcast(self, msg_type: int, payload: Any, to: Iterable[bytes] | None = None) -> int:
        """Queue one message for every connected peer, or for the connected
        ones among `to` (encoded once); returns how many it was queued for."""
        if not self._sessions:
            return 0
        if to is None:
            sessions = list(self._sessions.values())
        else:
            sessions = [s for k in to if (s := self._sessions.get(k)) is not None]
        if not sessions:
            return 0
        envelope = self._encode(msg_type, payload)
        queued = 0
        for session in sessions:
            queued += self._enqueue(session, envelope)
        return queued

    def connected(self) -> list[bytes]:
        """Keys of the peers with a live session, ascending."""
        return sorted(self._sessions)

    def is_connected(self, peer: bytes) -> bool:
        return peer in self._sessions

    def last_error(self, peer: bytes) -> str | None:
        """Why the last attempt to reach a peer this node dials failed ("refused:
        ...", or a handshake reason and detail); None once a session is up, and
        for peers that dial us (their side knows why)."""
        return self._last_errors.get(peer)

    def name_of(self, key: bytes) -> str:
        """The peer's node name (its key in hex, shortened, if it is not allowed)."""
        peer = self._peers.get(key)
        return peer.name if peer is not None else key.hex()[:16]

    # -- outbound queue -----------------------------------------------------------

    def _encode(self, msg_type: int, payload: Any) -> bytes:
        envelope = encode_message(msg_type, payload)
        if len(envelope) + BATCH_HEADER_MAX > self._max_batch:
            raise ValueError(f"message of {len(envelope)} bytes does not fit in a "
                             f"{self._max_frame}-byte frame")
        return envelope

    def _enqueue(self, session: _Session, envelope: bytes) -> bool:
        if session.end_reason is not None or session.leaving is not None:
            return False
        if session.queued_bytes + len(envelope) > self._queue_bytes:
            self.stats.queue_overflows += 1
            log.warning("peer %s (%s): outbound queue over %d bytes, disconnecting (too slow)",
                        session.label, session.address, self._queue_bytes)
            session.close("queue_overflow")
            return False
        session.queue.append(envelope)
        session.queued_bytes += len(envelope)
        session.wakeup.set()
        return True

    # -- connections ------------------------------------------------------------

    def _start_dialling(self, key: bytes) -> None:
        """Start the dial loop of a peer this node dials (by the key rule)."""
        if self._nursery is None or not dials(self._me, key) or key in self._dialling:
            return
        scope = self._dialling[key] = trio.CancelScope()
        self._nursery.start_soon(self._dial_loop, key, scope)

    async def _dial_loop(self, key: bytes, scope: trio.CancelScope) -> None:
        """Keep a session to a peer with a larger key, redialing with jittered
        exponential back-off until the peer leaves the allowlist (`update`
        cancels `scope`) or the manager stops.  The address is read afresh
        for every attempt: governance may move the peer."""
        try:
            with scope:
                await self._keep_dialling(key)
        finally:
            if self._dialling.get(key) is scope:
                del self._dialling[key]

    async def _keep_dialling(self, key: bytes) -> None:
        backoff = self._backoff_initial_s
        while True:
            peer = self._peers.get(key)
            if peer is None:
                return
            address = peer.address
            where = f"{address[0]}:{address[1]}"
            channel = await self._dial_once(key, address, where)
            if channel is not None:
                started = trio.current_time()
                await self._run_session(key, channel, where)
                if key not in self._peers:
                    return      # removed from the configuration meanwhile
                # Only a session that lived a while resets the back-off, so a
                # peer that accepts and promptly drops us is not hammered.
                if trio.current_time() - started >= self._backoff_max_s:
                    backoff = self._backoff_initial_s
            await trio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self._backoff_max_s)

    async def _dial_once(self, key: bytes, address: tuple[str, int],
                         where: str) -> SecureChannel | None:
        stream = None
        failure = f"unreachable: no connection within {self._handshake_timeout_s:g}s"
        with trio.move_on_after(self._handshake_timeout_s):
            try:
                stream = await trio.open_tcp_stream(*address)
            except OSError as exc:
                # A peer that is down is routine; the back-off loop retries.
                log.debug("peer %s (%s): dial failed: %s", self.name_of(key), where, exc)
                failure = f"unreachable: {connect_failure(exc)}"
        if stream is None:
            self.stats.dial_failures += 1
            self._last_errors[key] = failure
            return None
        try:
            return await handshake(
                stream, initiator=True, key=self._key, chain_id=self._chain_id,
                genesis_hash=self._genesis_hash, is_allowed=lambda peer: peer == key,
                timeout_s=self._handshake_timeout_s, max_frame=self._max_frame)
        except HandshakeError as exc:
            self._handshake_failed(where, exc)
            self._last_errors[key] = f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason
            return None

    async def _accept(self, stream: trio.SocketStream) -> None:
        host, port = _remote_address(stream)
        where = f"{host}:{port}"
        pending = self._gate.admit(host)
        if pending is None:
            self._inbound_failed(where, HandshakeError("busy", f"too many handshakes from {host}"))
            await trio.aclose_forcefully(stream)
            return
        channel = None
        try:
            with pending.scope:       # cancelled if the gate evicts this handshake
                channel = await handshake(
                    stream, initiator=False, key=self._key, chain_id=self._chain_id,
                    genesis_hash=self._genesis_hash, is_allowed=self._may_dial_us,
                    timeout_s=self._handshake_timeout_s, max_frame=self._max_frame,
                    hello_timeout_s=self._hello_timeout_s,
                    on_hello=lambda key: self._gate.identified(pending, key))
        except HandshakeError as exc:
            self._inbound_failed(where, exc)
            return
        finally:
            self._gate.release(pending)
        if channel is None:           # evicted; handshake() closed the stream
            self._inbound_failed(where, HandshakeError("evicted", "unproven while newer connections came"))
            return
        if channel.peer_key not in self._peers:
            # Removed from the configuration while its handshake was under way.
            self._inbound_failed(where, HandshakeError("unknown_key", "removed from the configuration"))
            await channel.aclose()
            return
        await self._run_session(channel.peer_key, channel, where)

    def _may_dial_us(self, key: bytes) -> bool:
        return key in self._peers and dials(key, self._me)

    def _handshake_failed(self, where: str, exc: HandshakeError) -> None:
        """An outbound handshake to a peer failed (paced by the dial back-off)."""
        self.stats.handshake_failures[exc.reason] += 1
        log.warning("peer %s: %s", where, exc)

    def _inbound_failed(self, where: str, exc: HandshakeError) -> None:
        """An inbound connection failed or was refused: anyone can cause these,
        so they are counted one by one but logged in summary."""
        self.stats.handshake_failures[exc.reason] += 1
        self._inbound_failures.record(where, exc)

    async def _run_session(self, key: bytes, channel: SecureChannel, where: str) -> None:
        session = _Session(key, self.name_of(key), where, channel)
        old = self._sessions.get(key)
        if old is not None:
            old.close("replaced")
        self._sessions[key] = session
        self._last_errors.pop(key, None)
        self.stats.sessions += 1
        log.info("peer %s (%s): connected", session.label, where)
        try:
            with session.cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guarded, session, self._reader)
                    nursery.start_soon(self._guarded, session, self._writer)
                    self._notify(self._on_connect, key)
        finally:
            session.close("shutdown")
            self.stats.disconnects += 1
            log.info("peer %s (%s): disconnected: %s", session.label, where, session.end_reason)
            if self._sessions.get(key) is session:
                del self._sessions[key]
                self._notify(self._on_disconnect, key)
            await channel.aclose()

    async def _guarded(self, session: _Session, loop: Callable) -> None:
        """Run the reader or writer; a transport error ends the whole session."""
        try:
            await loop(session)
        except ConnectionClosed as exc:
            session.close(f"closed ({exc})")
        except RemoteProtocolError as exc:
            self.stats.protocol_errors[exc.reason] += 1
            log.warning("peer %s (%s): protocol error: %s: %s",
                        session.label, session.address, exc.reason, exc)
            session.close(exc.reason)

    def _notify(self, hook: Hook | None, key: bytes) -> None:
        if hook is None:
            return
        try:
            hook(key)
        except Exception:  # a bug in the node's hook must not take the transport down
            log.exception("peer hook %r failed for peer %s", hook, self.name_of(key))

    async def _reader(self, session: _Session) -> None:
        channel, stats, key = session.channel, self.stats, session.key
        while True:
            body = None
            with trio.move_on_after(self._idle_timeout_s):
                body = await channel.receive()
            if body is None:
                raise IdleTimeout(f"nothing received for {self._idle_timeout_s:g}s")
            messages: list[Message] = decode_batch(body)
            stats.frames_in += 1
            stats.bytes_in += len(body) + FRAME_OVERHEAD
            if session.leaving is not None:
                continue      # removed from the configuration: nothing it sends counts
            if messages:  # an empty batch is a keepalive
                stats.messages_in += len(messages)
                await self._inbound.send((key, messages))

    async def _writer(self, session: _Session) -> None:
        channel, stats, queue = session.channel, self.stats, session.queue
        limit = self._max_batch - BATCH_HEADER_MAX
        while True:
            if not queue:
                session.wakeup = trio.Event()
                with trio.move_on_after(self._keepalive_interval_s):
                    await session.wakeup.wait()
            batch: list[bytes] = []
            size = 0
            while queue and size + len(queue[0]) <= limit:
                envelope = queue.popleft()
                size += len(envelope)
                batch.append(envelope)
            session.queued_bytes -= size
            body = encode_batch(batch)  # nothing queued: a keepalive
            await channel.send(body)
            stats.frames_out += 1
            stats.bytes_out += len(body) + FRAME_OVERHEAD
            stats.messages_out += len(batch)
            if session.leaving is not None and not queue:
                session.close(session.leaving)


def _remote_address(stream: trio.SocketStream) -> tuple[str, str]:
    try:
        host, port, *_ = stream.socket.getpeername()
        return normalise_host(host), str(port)
    except (OSError, ValueError, TypeError):
        return "unknown", "?"
