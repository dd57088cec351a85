"""Handshake success and every failure reason; the encrypted channel."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

from ledger.codec import pack
from ledger.crypto import KeyPair
from node.transport.framing import FramedStream
from node.transport.handshake import PROTOCOL_VERSION, handshake
from node.transport.wire import ConnectionClosed, DecryptError, HandshakeError

CHAIN = "test-chain"
GENESIS = b"\x11" * 32
CLIENT = KeyPair.from_seed(b"\x01" * 32)
SERVER = KeyPair.from_seed(b"\x02" * 32)


class TamperingStream(trio.abc.Stream):
    """Wraps a stream; records every write, and flips one byte of write
    number `tamper_write` (1-based; each frame is one write) at `offset`."""

    def __init__(self, inner: trio.abc.Stream, tamper_write: int = 0, offset: int = 0) -> None:
        self.inner = inner
        self.tamper_write = tamper_write
        self.offset = offset
        self.writes: list[bytes] = []

    async def send_all(self, data) -> None:
        data = bytes(data)
        if len(self.writes) + 1 == self.tamper_write:
            data = data[:self.offset] + bytes([data[self.offset] ^ 0x01]) + data[self.offset + 1:]
        self.writes.append(data)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def receive_some(self, max_bytes=None) -> bytes:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


def params(key: KeyPair, peer: KeyPair, **overrides):
    p = dict(key=key, chain_id=CHAIN, genesis_hash=GENESIS,
             is_allowed=lambda k: k == peer.public_key)
    p.update(overrides)
    return p


async def run_pair(client_stream, server_stream, client_params, server_params):
    """Run both sides; returns (client result, server result), each a
    SecureChannel or the HandshakeError raised."""
    results = {}

    async def side(name, stream, initiator, p):
        try:
            results[name] = await handshake(stream, initiator=initiator, **p)
        except HandshakeError as exc:
            results[name] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, "client", client_stream, True, client_params)
        nursery.start_soon(side, "server", server_stream, False, server_params)
    return results["client"], results["server"]


async def connected_pair(tamper_write: int = 0, offset: int = 0):
    """Handshake CLIENT with SERVER; returns (client, server, the client's
    TamperingStream, which records what the client wrote)."""
    left, right = trio.testing.memory_stream_pair()
    wire = TamperingStream(left, tamper_write, offset)
    client, server = await run_pair(wire, right, params(CLIENT, SERVER), params(SERVER, CLIENT))
    return client, server, wire


async def test_handshake_success_and_two_way_traffic():
    with trio.fail_after(5):
        client, server, _ = await connected_pair()
        assert client.peer_key == SERVER.public_key
        assert server.peer_key == CLIENT.public_key
        for i in range(5):
            await client.send(b"ping %d" % i)
            await server.send(b"pong %d" % i)
        assert [await server.receive() for _ in range(5)] == [b"ping %d" % i for i in range(5)]
        assert [await client.receive() for _ in range(5)] == [b"pong %d" % i for i in range(5)]


async def test_largest_message_fits_and_larger_is_refused():
    with trio.fail_after(5):
        left, right = trio.testing.memory_stream_pair()
        client, server = await run_pair(left, right, params(CLIENT, SERVER, max_frame=4096),
                                        params(SERVER, CLIENT, max_frame=4096))
        big = os.urandom(client.max_message)
        await client.send(big)
        assert await server.receive() == big
        with pytest.raises(ValueError):
            await client.send(big + b"!")


async def test_payload_is_not_visible_on_the_wire():
    with trio.fail_after(5):
        client, server, recorder = await connected_pair()
        secret = b"TAX-RECEIPT-4711-CONFIDENTIAL" * 4
        await client.send(secret)
        assert await server.receive() == secret
        wire = b"".join(recorder.writes)
        assert secret not in wire and secret[:16] not in wire


async def test_tampered_ciphertext_closes_the_channel():
    with trio.fail_after(5):
        # writes: 1 = hello, 2 = auth, 3 = first sealed frame; flip a ciphertext byte
        client, server, _ = await connected_pair(tamper_write=3, offset=10)
        await client.send(b"transfer 100 to alice")
        with pytest.raises(DecryptError):
            await server.receive()
        with pytest.raises(ConnectionClosed):
            await server.receive()
        # the client sees the connection end
        with pytest.raises(ConnectionClosed):
            await client.receive()


async def test_replayed_frame_is_rejected():
    with trio.fail_after(5):
        client, server, recorder = await connected_pair()
        await client.send(b"pay once")
        assert await server.receive() == b"pay once"
        await recorder.inner.send_all(recorder.writes[-1])  # the same sealed frame again
        with pytest.raises(DecryptError):
            await server.receive()


async def test_unknown_key_is_rejected():
    with trio.fail_after(5):
        stranger = KeyPair.from_seed(b"\x09" * 32)
        left, right = trio.testing.memory_stream_pair()
        client, server = await run_pair(left, right, params(stranger, SERVER), params(SERVER, CLIENT))
        assert isinstance(server, HandshakeError) and server.reason == "unknown_key"
        # the server hung up before signing anything
        assert isinstance(client, HandshakeError) and client.reason == "closed"


async def test_own_key_is_rejected_even_if_allowed():
    with trio.fail_after(5):
        left, right = trio.testing.memory_stream_pair()
        anyone = lambda k: True  # noqa: E731
        client, server = await run_pair(left, right, params(SERVER, SERVER, is_allowed=anyone),
                                        params(SERVER, SERVER, is_allowed=anyone))
        assert client.reason == server.reason == "unknown_key"


@pytest.mark.parametrize("override, reason", [
    ({"chain_id": "other-chain"}, "wrong_chain"),
    ({"genesis_hash": b"\x22" * 32}, "wrong_genesis"),
])
async def test_chain_and_genesis_must_match(override, reason):
    with trio.fail_after(5):
        left, right = trio.testing.memory_stream_pair()
        client, server = await run_pair(left, right, params(CLIENT, SERVER, **override),
                                        params(SERVER, CLIENT))
        assert client.reason == server.reason == reason


async def test_bad_signature_is_rejected():
    with trio.fail_after(5):
        # write 2 is AUTH = header(4) + 0x92 0xc4 0x40 + 64-byte signature: flip a signature byte
        client, server, _ = await connected_pair(tamper_write=2, offset=20)
        assert isinstance(server, HandshakeError) and server.reason == "bad_signature"


async def fake_peer_sends(frames: list[bytes]) -> HandshakeError:
    """A server handshake against a hand-driven client; returns its error."""
    left, right = trio.testing.memory_stream_pair()
    raw = FramedStream(left)
    for frame in frames:
        await raw.send_frame(frame)
    with pytest.raises(HandshakeError) as info:
        await handshake(right, initiator=False, **params(SERVER, CLIENT))
    await read_until_eof(left)  # the server closed the connection
    return info.value


async def read_until_eof(stream) -> None:
    """Returns once the other side has closed (the caller's fail_after bounds it)."""
    while await stream.receive_some(65536):
        pass


def hello(version=PROTOCOL_VERSION, **fields):
    f = dict(chain_id=CHAIN, genesis=GENESIS, key=CLIENT.public_key, kx=os.urandom(32),
             nonce=os.urandom(32))
    f.update(fields)
    return pack([version, f["chain_id"], f["genesis"], f["key"], f["kx"], f["nonce"]])


async def test_other_protocol_version_is_rejected():
    with trio.fail_after(5):
        assert (await fake_peer_sends([hello(version=PROTOCOL_VERSION + 1)])).reason == "version"


@pytest.mark.parametrize("frame", [
    b"\xc1garbage",
    pack([PROTOCOL_VERSION, CHAIN]),
    hello(kx=b"\x00" * 31),
    hello(nonce=b"short"),
    hello(key="not bytes"),
])
async def test_malformed_hello_is_rejected(frame):
    with trio.fail_after(5):
        assert (await fake_peer_sends([frame])).reason == "malformed"


async def test_low_order_kx_key_is_rejected():
    with trio.fail_after(5):
        # the all-zero X25519 point gives an all-zero shared secret; libsodium refuses it
        assert (await fake_peer_sends([hello(kx=b"\x00" * 32)])).reason == "malformed"


async def test_garbage_bytes_and_oversized_prefix_are_rejected():
    with trio.fail_after(5):
        for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\x10\x00\x00" + b"A" * 64):
            left, right = trio.testing.memory_stream_pair()
            await left.send_all(junk)
            with pytest.raises(HandshakeError) as info:
                await handshake(right, initiator=False, **params(SERVER, CLIENT))
            assert info.value.reason == "malformed"
            await read_until_eof(left)


async def test_peer_closing_mid_handshake_is_reported_as_closed():
    with trio.fail_after(5):
        left, right = trio.testing.memory_stream_pair()
        await left.aclose()
        with pytest.raises(HandshakeError) as info:
            await handshake(right, initiator=False, **params(SERVER, CLIENT))
        assert info.value.reason == "closed"


async def test_silent_peer_times_out(autojump_clock):
    with trio.fail_after(60):
        left, right = trio.testing.memory_stream_pair()
        start = trio.current_time()
        with pytest.raises(HandshakeError) as info:
            await handshake(right, initiator=False, timeout_s=5.0, **params(SERVER, CLIENT))
        assert info.value.reason == "timeout"
        assert trio.current_time() - start == pytest.approx(5.0)


async def test_acceptor_waits_for_the_dialers_hello_and_gives_it_a_deadline(autojump_clock):
    """A connection that sends nothing costs the acceptor no key generation
    (it says nothing first) and is dropped at the hello deadline, well before
    the handshake's own timeout."""
    with trio.fail_after(60):
        left, right = trio.testing.memory_stream_pair()
        start = trio.current_time()
        with pytest.raises(HandshakeError) as info:
            await handshake(right, initiator=False, timeout_s=5.0, hello_timeout_s=1.0,
                            **params(SERVER, CLIENT))
        assert info.value.reason == "no_hello"
        assert trio.current_time() - start == pytest.approx(1.0)
        assert await left.receive_some(65536) == b""     # closed, and nothing was sent


async def test_on_hello_reports_the_claimed_key_before_it_is_proven():
    with trio.fail_after(5):
        claimed = []
        left, right = trio.testing.memory_stream_pair()
        client, server = await run_pair(left, right, params(CLIENT, SERVER),
                                        params(SERVER, CLIENT, on_hello=claimed.append))
        assert claimed == [CLIENT.public_key] and server.peer_key == CLIENT.public_key
        # a hello naming a key that is not allowed is not reported
        claimed.clear()
        stranger = KeyPair.from_seed(b"\x09" * 32)
        left, right = trio.testing.memory_stream_pair()
        await run_pair(left, right, params(stranger, SERVER), params(SERVER, CLIENT, on_hello=claimed.append))
        assert claimed == []
