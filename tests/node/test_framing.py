"""Frames (length prefix, cap, truncation) and the batch envelope."""

import msgpack
import pytest
import trio
import trio.testing

from node.transport.framing import FramedStream
from node.transport.wire import (
    ConnectionClosed, FrameError, FrameTooLarge, MalformedEnvelope, decode_batch,
    encode_batch, encode_message,
)

CAP = 1024


def framed_pair(cap: int = CAP):
    left, right = trio.testing.memory_stream_pair()
    return FramedStream(left, cap), FramedStream(right, cap), left, right


async def test_frames_round_trip_including_exact_cap():
    with trio.fail_after(5):
        a, b, _, _ = framed_pair()
        bodies = [b"x", b"hello" * 10, bytes(range(256)) * 4]  # the last is exactly CAP
        assert len(bodies[-1]) == CAP
        for body in bodies:
            await a.send_frame(body)
        assert [await b.receive_frame() for _ in bodies] == bodies


async def test_many_frames_in_one_write_and_one_frame_in_many_writes():
    with trio.fail_after(5):
        _, b, left, _ = framed_pair()
        frames = [i.to_bytes(2, "big") * (i + 1) for i in range(100)]
        await left.send_all(b"".join(len(f).to_bytes(4, "big") + f for f in frames))
        assert [await b.receive_frame() for _ in frames] == frames

        body = bytes(range(200))
        wire = len(body).to_bytes(4, "big") + body
        async with trio.open_nursery() as nursery:
            async def trickle():
                for i in range(0, len(wire), 7):
                    await left.send_all(wire[i:i + 7])
                    await trio.sleep(0)
            nursery.start_soon(trickle)
            assert await b.receive_frame() == body


@pytest.mark.parametrize("length", [CAP + 1, 2**32 - 1])
async def test_length_over_cap_rejected_before_the_body_arrives(length):
    with trio.fail_after(5):
        _, b, left, _ = framed_pair()
        # Only the header is sent: if the reader waited for the body it would hang.
        await left.send_all(length.to_bytes(4, "big"))
        with pytest.raises(FrameTooLarge):
            await b.receive_frame()


async def test_zero_length_frame_rejected():
    with trio.fail_after(5):
        _, b, left, _ = framed_pair()
        await left.send_all(b"\x00\x00\x00\x00")
        with pytest.raises(FrameError):
            await b.receive_frame()


@pytest.mark.parametrize("wire", [
    b"\x00\x00\x00\x0aabcde",  # body cut short
    b"\x00\x00",               # header cut short
])
async def test_eof_mid_frame_is_a_frame_error(wire):
    with trio.fail_after(5):
        _, b, left, _ = framed_pair()
        await left.send_all(wire)
        await left.send_stream.aclose()
        with pytest.raises(FrameError) as info:
            await b.receive_frame()
        assert not isinstance(info.value, FrameTooLarge)


async def test_clean_eof_between_frames_is_connection_closed():
    with trio.fail_after(5):
        a, b, left, _ = framed_pair()
        await a.send_frame(b"last")
        await left.send_stream.aclose()
        assert await b.receive_frame() == b"last"
        with pytest.raises(ConnectionClosed):
            await b.receive_frame()


async def test_sending_on_a_broken_stream_is_connection_closed():
    with trio.fail_after(5):
        a, _, _, right = framed_pair()
        await right.aclose()
        with pytest.raises(ConnectionClosed):
            await a.send_frame(b"into the void")


async def test_sender_refuses_empty_and_oversized_bodies():
    a, _, _, _ = framed_pair()
    with pytest.raises(ValueError):
        await a.send_frame(b"")
    with pytest.raises(ValueError):
        await a.send_frame(b"x" * (CAP + 1))


# -- envelope ---------------------------------------------------------------------

def test_batch_round_trip():
    messages = [(0, b"raw"), (7, [1, "two", b"3"]), (65535, {"k": None})]
    body = encode_batch([encode_message(t, p) for t, p in messages])
    assert decode_batch(body) == messages
    assert decode_batch(encode_batch([])) == []  # the keepalive


def test_batch_header_for_large_batches():
    envelopes = [encode_message(1, i) for i in range(70000)]  # needs a 32-bit array header
    decoded = decode_batch(encode_batch(envelopes))
    assert len(decoded) == 70000 and decoded[-1] == (1, 69999)


@pytest.mark.parametrize("body", [
    b"\xc1",                                   # never-used msgpack byte
    b"\x92\x01",                               # truncated
    msgpack.packb({"type": 1}),                # not an array
    msgpack.packb([[1]]),                      # envelope of one field
    msgpack.packb([[1, 2, 3]]),                # envelope of three fields
    msgpack.packb([["1", b""]]),               # type not an int
    msgpack.packb([[-1, b""]]),                # negative type
    msgpack.packb([[65536, b""]]),             # type out of range
    msgpack.packb([[True, b""]]),              # bool is not a type
    msgpack.packb([[1, msgpack.ExtType(5, b"x")]]),  # ext types are refused
    msgpack.packb([[1, b""]]) + b"\x00",       # trailing bytes
])
def test_malformed_batches_raise_malformed_envelope(body):
    with pytest.raises(MalformedEnvelope):
        decode_batch(body)


@pytest.mark.parametrize("msg_type", [-1, 65536, "1", 1.0, True])
def test_encode_message_rejects_bad_types(msg_type):
    with pytest.raises(ValueError):
        encode_message(msg_type, b"")


async def test_large_frames_round_trip():
    with trio.fail_after(5):
        a, b, _, _ = framed_pair(cap=4 * 1024 * 1024)
        bodies = [bytes([i]) * (3 * 1024 * 1024 + i) for i in range(3)]  # several reads each
        async with trio.open_nursery() as nursery:
            async def send():
                for body in bodies:
                    await a.send_frame(body)
            nursery.start_soon(send)
            for body in bodies:
                assert await b.receive_frame() == body
