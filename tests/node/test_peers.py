"""PeerManager over real TCP on 127.0.0.1: four managers in one process.

The test keys are sorted by public key, so "node i" of a test is also the i-th
smallest key: node i dials node j exactly when i < j (the smaller key dials)."""

from __future__ import annotations

import logging
import os
import socket
from typing import Callable

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from ledger.crypto import KeyPair
from node.transport.framing import FramedStream
from node.transport.handshake import PROTOCOL_VERSION, Hello, handshake
from node.transport.peers import Peer, PeerManager
from node.transport.wire import ConnectionClosed, HandshakeError, encode_batch

CHAIN = "peers-test"
GENESIS = b"\x33" * 32
T = 7  # a message type


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Watch:
    """Lets a test wait for a condition that hooks and receivers change,
    without polling or sleeping."""

    def __init__(self) -> None:
        self._changed = trio.Event()

    def poke(self, *_args) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()


class Node:
    """One PeerManager plus everything it has received, in order."""

    def __init__(self, index: int, keys: list[KeyPair], ports: list[int], watch: Watch,
                 inbound_capacity: int = 64, members: list[int] | None = None, **options) -> None:
        """`members`: the indexes in this node's allowlist (default: all)."""
        self.index = index
        self.port = ports[index]
        self.keys = [k.public_key for k in keys]
        self.ports = ports
        self.send_channel, self.receive_channel = trio.open_memory_channel(inbound_capacity)
        options.setdefault("backoff_max_s", 0.2)
        self.manager = PeerManager(keys[index], CHAIN, GENESIS, self.table(members), self.send_channel,
                                   on_connect=watch.poke, on_disconnect=watch.poke, **options)
        self.batches: list[tuple[bytes, list]] = []
        self.watch = watch
        self.scope: trio.CancelScope | None = None

    def table(self, members: list[int] | None = None) -> dict[bytes, Peer]:
        members = range(len(self.keys)) if members is None else members
        return {self.keys[i]: Peer(f"v{i}", ("127.0.0.1", self.ports[i])) for i in members}

    def connected(self) -> list[int]:
        return sorted(self.keys.index(k) for k in self.manager.connected())

    def send(self, peer: int, payload, msg_type: int = T) -> bool:
        return self.manager.send(self.keys[peer], msg_type, payload)

    def received(self, sender: int | None = None, msg_type: int = T) -> list:
        key = None if sender is None else self.keys[sender]
        return [payload for peer, messages in self.batches if key in (None, peer)
                for t, payload in messages if t == msg_type]

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as self.scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.manager.run, "127.0.0.1", self.port)
                nursery.start_soon(self._collect)
                task_status.started()

    async def _collect(self) -> None:
        async for batch in self.receive_channel:
            self.batches.append(batch)
            self.watch.poke()


def make_keys(n: int) -> list[KeyPair]:
    """n keys, sorted by public key (node i dials node j iff i < j)."""
    return sorted((KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(n)), key=lambda k: k.public_key)


def fully_connected(nodes: list[Node]) -> Callable[[], bool]:
    def check() -> bool:
        return all(n.connected() == [m.index for m in nodes if m is not n] for n in nodes)
    return check


async def start_mesh(nursery, n: int = 4, **options) -> tuple[list[Node], Watch, list[KeyPair]]:
    keys = make_keys(n)
    ports = [free_port() for _ in range(n)]
    watch = Watch()
    nodes = [Node(i, keys, ports, watch, **options) for i in range(n)]
    for node in nodes:
        await nursery.start(node.run)
    await watch.until(fully_connected(nodes))
    return nodes, watch, keys


async def exchange_all(nodes: list[Node], watch: Watch, tag: str) -> None:
    """Every node broadcasts `tag`; wait until every other node has it."""
    for node in nodes:
        assert node.manager.broadcast(T, [tag, node.index]) == len(nodes) - 1
    await watch.until(lambda: all(
        [tag, m.index] in n.received(m.index) for n in nodes for m in nodes if m is not n))


async def test_mesh_connects_and_delivers_batched_messages():
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nodes, watch, _ = await start_mesh(nursery)
            a, d = nodes[0], nodes[3]
            for i in range(500):
                assert a.send(3, i)
            await watch.until(lambda: len(d.received(0)) == 500)
            assert d.received(0) == list(range(500))  # in order, none lost
            batches_from_a = [b for b in d.batches if b[0] == a.manager.own_key]
            assert len(batches_from_a) < 100  # many messages per frame, not one each
            assert a.manager.stats.messages_out >= 500
            assert a.manager.stats.frames_out < a.manager.stats.messages_out

            await exchange_all(nodes, watch, "hello")
            assert a.send(0, "to myself") is False  # not a peer
            for node in nodes:
                stats = node.manager.stats
                assert stats.disconnects == 0 and not stats.protocol_errors
                assert not stats.handshake_failures
            nursery.cancel_scope.cancel()


async def test_restarted_manager_is_reconnected_and_cancel_closes_sockets():
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nodes, watch, keys = await start_mesh(nursery)
            victim = nodes[1]
            victim.scope.cancel()
            others = [n for n in nodes if n is not victim]
            await watch.until(lambda: all(1 not in n.connected() for n in others))
            # its listener is closed: nobody can connect to it now
            with pytest.raises(OSError):
                await trio.open_tcp_stream("127.0.0.1", victim.port)

            ports = [n.port for n in nodes]
            reborn = Node(1, keys, ports, watch)
            nodes[1] = reborn
            await nursery.start(reborn.run)
            await watch.until(fully_connected(nodes))
            await exchange_all(nodes, watch, "after restart")
            nursery.cancel_scope.cancel()


async def raw_connection(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def read_until_eof(stream) -> None:
    """Returns once the manager has closed the connection and finished
    handling it (so its counters are up to date)."""
    try:
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:  # a reset is a close too
        pass
    await wait_all_tasks_blocked()


async def lone_manager(nursery, **options) -> tuple[Node, list[KeyPair]]:
    """Node 1 running alone; the test plays node 0 (the smaller key, which 1
    only accepts, never dials), so nothing else competes for that session."""
    keys = make_keys(2)
    node = Node(1, keys, [free_port(), free_port()], Watch(), **options)
    await nursery.start(node.run)
    return node, keys


async def impersonate(port: int, key: KeyPair):
    """An authenticated session to the manager on `port`, as `key`."""
    stream = await raw_connection(port)
    channel = await handshake(stream, initiator=True, key=key, chain_id=CHAIN,
                              genesis_hash=GENESIS, is_allowed=lambda k: True)
    return stream, channel


async def test_garbage_and_strangers_do_not_disturb_the_mesh():
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nodes, watch, keys = await start_mesh(nursery)
            target = nodes[3]
            failures = target.manager.stats.handshake_failures

            garbage = await raw_connection(target.port)
            await garbage.send_all(b"\x00\x00\x00\x08GARBAGE!")
            await read_until_eof(garbage)

            oversized = await raw_connection(target.port)
            await oversized.send_all(b"\x7f\xff\xff\xff")
            await read_until_eof(oversized)
            assert failures["malformed"] == 2

            stranger = KeyPair.from_seed(b"\x99" * 32)
            with pytest.raises(HandshakeError) as info:
                await handshake(await raw_connection(target.port), initiator=True, key=stranger,
                                chain_id=CHAIN, genesis_hash=GENESIS, is_allowed=lambda k: True)
            assert info.value.reason == "closed"
            await wait_all_tasks_blocked()
            assert failures["unknown_key"] == 1

            # the larger key must not dial the smaller one
            with pytest.raises(HandshakeError):
                await handshake(await raw_connection(nodes[0].port), initiator=True, key=keys[3],
                                chain_id=CHAIN, genesis_hash=GENESIS, is_allowed=lambda k: True)
            await wait_all_tasks_blocked()
            assert nodes[0].manager.stats.handshake_failures["unknown_key"] == 1

            assert fully_connected(nodes)()
            await exchange_all(nodes, watch, "still fine")
            for node in nodes:
                assert node.manager.stats.disconnects == 0
            nursery.cancel_scope.cancel()


async def test_newer_session_replaces_older_and_the_dropped_peer_redials():
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            # a slow first redial keeps validator 0 from replacing our session at once
            nodes, watch, keys = await start_mesh(nursery, backoff_initial_s=0.5, backoff_max_s=1.0)
            target = nodes[3]
            sessions_before = target.manager.stats.sessions
            stream, channel = await impersonate(target.port, keys[0])
            await watch.until(lambda: 3 not in nodes[0].connected())
            assert nodes[0].manager.stats.disconnects == 1  # its session was replaced by ours
            await stream.send_all(b"\xff\xff\xff\xff")  # a length prefix far over the cap
            await read_until_eof(stream)
            assert target.manager.stats.protocol_errors["frame_too_large"] == 1
            # the real validator 0 dials again and the mesh is whole
            await watch.until(lambda: target.manager.stats.sessions >= sessions_before + 2
                              and fully_connected(nodes)())
            await exchange_all(nodes, watch, "recovered")
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("wire, reason", [
    (b"\x00\x00\x00\x20" + b"\x00" * 32, "decrypt"),     # not sealed with the session key
    (b"\x00\x00\x00\x00", "bad_frame"),                   # zero-length frame
    (b"\x00\x00\x01\x00", "frame_too_large"),             # over this manager's 255-byte cap
])
async def test_authenticated_peer_sending_bad_frames_is_dropped(wire, reason):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            node, keys = await lone_manager(nursery, max_frame=255)
            stream, _ = await impersonate(node.port, keys[0])
            await stream.send_all(wire)
            await read_until_eof(stream)
            assert dict(node.manager.stats.protocol_errors) == {reason: 1}
            assert node.connected() == []
            nursery.cancel_scope.cancel()


async def test_authenticated_peer_sending_a_malformed_envelope_is_dropped():
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            node, keys = await lone_manager(nursery)
            stream, channel = await impersonate(node.port, keys[0])
            await channel.send(b"\x91\x93\x01\x02\x03")  # [[1, 2, 3]]: not [type, payload]
            await read_until_eof(stream)
            assert dict(node.manager.stats.protocol_errors) == {"malformed_envelope": 1}
            nursery.cancel_scope.cancel()


async def test_peer_that_stops_reading_is_disconnected_at_the_queue_bound():
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            keys = make_keys(2)
            ports = [free_port(), free_port()]
            watch = Watch()
            fast = Node(0, keys, ports, watch, queue_bytes=1024 * 1024)
            # capacity 0 and nobody collecting: its reader blocks on the first batch,
            # so it stops reading its socket
            stuck = Node(1, keys, ports, watch, inbound_capacity=0)
            await nursery.start(fast.run)
            await nursery.start(stuck.manager.run, "127.0.0.1", stuck.port)
            await watch.until(lambda: fast.connected() == [1])

            blob = b"\x5a" * (256 * 1024)
            sent = 0
            while fast.send(1, blob):
                sent += 1
                await wait_all_tasks_blocked()  # the writer pushed what the socket takes
            # Some messages went out before the socket filled up; then exactly the
            # queue bound (4 messages of 256 KiB) was held before the peer was cut off.
            assert fast.manager.stats.messages_out >= 1
            assert sent >= fast.manager.stats.messages_out + 4
            assert fast.manager.stats.queue_overflows == 1
            await watch.until(lambda: fast.manager.stats.disconnects >= 1)
            nursery.cancel_scope.cancel()


class LogWatch(logging.Handler):
    """Collects the transport's warnings; `until` waits for one to match."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.watch = Watch()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.watch.poke()

    async def until(self, needle: str) -> str:
        await self.watch.until(lambda: any(needle in line for line in self.lines))
        return next(line for line in self.lines if needle in line)


@pytest.fixture
def transport_log():
    handler = LogWatch()
    logger = logging.getLogger("node.transport.peers")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def flood(port: int, idle: list, n_idle: int, n_garbage: int) -> None:
    """What a stranger does to the p2p port: connections that send nothing
    (kept open in `idle`) and connections that send garbage."""
    for i in range(max(n_idle, n_garbage)):
        if i < n_idle:
            idle.append(await raw_connection(port))
        if i < n_garbage:
            junk = await raw_connection(port)
            await junk.send_all(b"\x00\x00\x00\x08GARBAGE!" if i % 2 else b"GET / HTTP/1.1\r\n\r\n")
            await junk.aclose()


async def test_a_flood_of_idle_and_garbage_connections_does_not_lock_out_a_validator(transport_log):
    """The issue's attack: strangers on the validators' own address hold more
    idle connections than there are handshake slots, and keep coming, while a
    validator reconnects.  It must get in at once (not after the strangers'
    handshakes time out), and the log must not get a line per refusal."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            node, keys = await lone_manager(nursery)
            idle: list[trio.SocketStream] = []
            await flood(node.port, idle, 200, 200)
            await wait_all_tasks_blocked()
            async with trio.open_nursery() as attack:
                attack.start_soon(flood, node.port, idle, 200, 0)    # still coming meanwhile
                with trio.fail_after(2):    # well inside the 5 s handshake timeout
                    _, channel = await impersonate(node.port, keys[0])
            assert channel.peer_key == keys[1].public_key
            await node.watch.until(lambda: node.connected() == [0])
            await wait_all_tasks_blocked()
            failures = node.manager.stats.handshake_failures
            # Every stranger beyond the 64 slots made room, none was refused;
            # a slow machine may let some reach their hello deadline first.
            assert failures["evicted"] + failures["no_hello"] >= 400 - 64
            assert failures["malformed"] > 0 and "busy" not in failures
            assert len(transport_log.lines) <= 1     # one in full, the rest summed up later
            for stream in idle:
                await stream.aclose()
            nursery.cancel_scope.cancel()


async def test_inbound_failures_are_logged_as_one_summary_per_interval(transport_log):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            interval_s = 0.5
            node, keys = await lone_manager(nursery, max_pending_handshakes=4,
                                            failure_log_interval_s=interval_s)
            started = trio.current_time()
            idle: list[trio.SocketStream] = []
            await flood(node.port, idle, 20, 10)
            summary = await transport_log.until(f"more failed in the last {interval_s:g}s")
            first = transport_log.lines[0]
            assert first.startswith("peer 127.0.0.1:") and "handshake failed" in first
            # counted by reason in one line, like the metrics
            assert "evicted=" in summary and "malformed=" in summary
            failures = sum(node.manager.stats.handshake_failures.values())
            assert failures >= 26
            # One full line, then at most one summary per interval (however slow the box).
            intervals = (trio.current_time() - started) / interval_s
            assert len(transport_log.lines) <= 2 + intervals, (len(transport_log.lines), intervals)
            assert len(transport_log.lines) < failures
            for stream in idle:
                await stream.aclose()
            nursery.cancel_scope.cancel()


async def test_a_source_that_is_no_validators_host_is_capped():
    """Validators listed at 127.0.0.2: strangers on 127.0.0.1 get a few
    handshake slots and no more, while a validator from its own host gets in."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            keys = make_keys(2)
            ports = [free_port(), free_port()]
            table = {k.public_key: Peer(f"v{i}", ("127.0.0.2", ports[i])) for i, k in enumerate(keys)}
            send, receive = trio.open_memory_channel(8)
            manager = PeerManager(keys[1], CHAIN, GENESIS, table, send, max_handshakes_per_source=3)
            port = await nursery.start(manager.run, "127.0.0.1", ports[1])
            idle = [await raw_connection(port) for _ in range(3)]
            await wait_all_tasks_blocked()
            refused = await raw_connection(port)
            await read_until_eof(refused)
            assert dict(manager.stats.handshake_failures) == {"busy": 1}
            stream = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.2")
            channel = await handshake(stream, initiator=True, key=keys[0], chain_id=CHAIN,
                                      genesis_hash=GENESIS, is_allowed=lambda k: True)
            assert channel.peer_key == keys[1].public_key
            for s in idle:
                await s.aclose()
            nursery.cancel_scope.cancel()


async def test_forged_hellos_claiming_a_validator_cannot_hold_its_place():
    """A hello is public (anyone can name validator 0's key); only AUTH proves
    it.  Strangers sending such hellos and then nothing hold at most a few
    places for that key; the newest claim, the real validator's, gets in."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            node, keys = await lone_manager(nursery)
            forged = []
            for _ in range(30):
                stream = await raw_connection(node.port)
                hello = Hello(PROTOCOL_VERSION, CHAIN, GENESIS, keys[0].public_key,
                              os.urandom(32), os.urandom(32))
                await FramedStream(stream).send_frame(hello.encode())
                forged.append(stream)
            await wait_all_tasks_blocked()
            _, channel = await impersonate(node.port, keys[0])
            assert channel.peer_key == keys[1].public_key
            await node.watch.until(lambda: node.connected() == [0])
            assert node.manager.stats.handshake_failures["evicted"] >= 30 - 4
            for stream in forged:
                await stream.aclose()
            nursery.cancel_scope.cancel()


async def test_a_connection_that_sends_no_hello_is_dropped_at_the_hello_deadline():
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            node, keys = await lone_manager(nursery, hello_timeout_s=0.2)
            silent = await raw_connection(node.port)
            received = b""
            while chunk := await silent.receive_some(65536):
                received += chunk
            assert received == b""    # it was sent nothing: no key was generated for it
            await wait_all_tasks_blocked()
            assert dict(node.manager.stats.handshake_failures) == {"no_hello": 1}
            nursery.cancel_scope.cancel()


async def test_keepalives_hold_an_idle_session_and_silence_ends_one():
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            node, keys = await lone_manager(nursery, keepalive_interval_s=0.05, idle_timeout_s=0.5)
            stream, channel = await impersonate(node.port, keys[0])
            # Answer each keepalive with one of ours for well over idle_timeout_s:
            # the session stays up although no message is exchanged.
            start = trio.current_time()
            while trio.current_time() - start < 1.5:
                assert await channel.receive() == encode_batch([])
                await channel.send(encode_batch([]))
            assert node.connected() == [0]
            assert node.manager.stats.messages_in == 0 and node.manager.stats.disconnects == 0
            # fall silent: the manager cuts the session off
            with pytest.raises(ConnectionClosed):
                while True:
                    await channel.receive()
            await wait_all_tasks_blocked()
            assert dict(node.manager.stats.protocol_errors) == {"idle_timeout": 1}
            nursery.cancel_scope.cancel()


def test_send_rejects_messages_that_cannot_fit_a_frame():
    keys = make_keys(2)
    send, _ = trio.open_memory_channel(1)
    table = {keys[1].public_key: Peer("v1", ("127.0.0.1", 1))}
    manager = PeerManager(keys[0], CHAIN, GENESIS, table, send, max_frame=1024)
    assert manager.send(keys[1].public_key, T, b"x") is False  # not connected
    assert manager.broadcast(T, b"x") == 0


async def test_last_error_says_why_dialing_a_peer_fails_until_it_connects():
    """What /validators reports as last_error (and `ynchain node doctor` reads)."""
    keys = make_keys(2)
    ports = [free_port(), free_port()]
    watch = Watch()
    dialer = Node(0, keys, ports, watch)

    async def until(predicate) -> None:
        while not predicate():
            await trio.sleep(0.01)     # the dial loop retries every 0.2 s at most
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(dialer.run)
            peer = keys[1].public_key
            await until(lambda: dialer.manager.last_error(peer) is not None)
            assert dialer.manager.last_error(peer) == "unreachable: connection refused"
            # node1 up, but on another genesis
            send, _ = trio.open_memory_channel(8)
            odd = PeerManager(keys[1], CHAIN, b"\x44" * 32, dialer.table(), send)
            with trio.CancelScope() as odd_scope:
                async with trio.open_nursery() as inner:
                    await inner.start(odd.run, "127.0.0.1", ports[1])
                    await until(lambda: (dialer.manager.last_error(peer) or "").startswith("wrong_genesis"))
                    assert dialer.manager.last_error(peer) == "wrong_genesis: peer genesis " + "44" * 8
                    odd_scope.cancel()
            # node1 as it should be: connected, and no error left
            right = Node(1, keys, ports, watch)
            await nursery.start(right.run)
            await watch.until(lambda: dialer.connected() == [1])
            assert dialer.manager.last_error(peer) is None
            nursery.cancel_scope.cancel()


# -- the allowlist follows the configuration (PeerManager.update) ---------------------------

async def test_a_node_removed_from_the_allowlist_is_disconnected_and_refused_afterwards():
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nodes, watch, keys = await start_mesh(nursery, n=3)
            removed = nodes[0]          # the smallest key: it keeps dialling the others
            refusals = [n.manager.stats.handshake_failures for n in nodes[1:]]
            for node in nodes[1:]:
                node.manager.update(node.table([1, 2]))
            await watch.until(lambda: removed.connected() == [] and nodes[1].connected() == [2]
                              and nodes[2].connected() == [1])
            # It still has the old table and redials both every 0.2 s: refused each time.
            while not all(r["unknown_key"] >= 2 for r in refusals):
                await trio.sleep(0.02)
            assert removed.connected() == [] and nodes[1].connected() == [2]
            assert nodes[1].manager.allowed() == [keys[2].public_key]
            with pytest.raises(HandshakeError):
                await impersonate(nodes[2].port, keys[0])
            await exchange_all(nodes[1:], watch, "without node 0")
            nursery.cancel_scope.cancel()


async def test_a_node_added_to_the_allowlist_is_accepted_and_dialled():
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            keys = make_keys(3)
            ports = [free_port() for _ in range(3)]
            watch = Watch()
            # node 1 (the middle key) is new: 0 and 2 do not know it yet; it knows them
            nodes = [Node(0, keys, ports, watch, members=[0, 2]), Node(1, keys, ports, watch),
                     Node(2, keys, ports, watch, members=[0, 2])]
            for node in nodes:
                await nursery.start(node.run)
            await watch.until(lambda: nodes[0].connected() == [2])
            # node 1 dials node 2, which refuses a key it does not know
            while nodes[2].manager.stats.handshake_failures["unknown_key"] < 1:
                await trio.sleep(0.02)
            assert nodes[1].connected() == []
            for node in (nodes[0], nodes[2]):
                node.manager.update(node.table())
            # node 0 dials it (smaller key), node 2 accepts its dial (larger key)
            await watch.until(fully_connected(nodes))
            await exchange_all(nodes, watch, "with node 1")
            nursery.cancel_scope.cancel()


async def test_a_moved_node_is_redialled_at_its_new_address():
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            keys = make_keys(2)
            ports = [free_port(), free_port()]
            watch = Watch()
            # node 0 dials an address where nothing listens, then backs off 10-20 s
            dialer = Node(0, keys, [ports[0], free_port()], watch, backoff_initial_s=20.0,
                          backoff_max_s=20.0)
            moved = Node(1, keys, ports, watch)
            await nursery.start(dialer.run)
            await nursery.start(moved.run)
            peer = keys[1].public_key
            while dialer.manager.stats.dial_failures < 1:
                await trio.sleep(0.02)
            assert dialer.connected() == []
            table = dialer.table()
            table[peer] = Peer("v1", ("127.0.0.1", ports[1]))
            dialer.manager.update(table)
            with trio.fail_after(8):     # dialled at once, not after the back-off of 10 s or more
                await watch.until(lambda: dialer.connected() == [1])
            assert dialer.manager.last_error(peer) is None
            nursery.cancel_scope.cancel()
