"""Length-prefixed frames over a trio byte stream.

A frame is a 4-byte big-endian length followed by that many body bytes.  The
length is checked against the cap *before* any of the body is read, so a peer
cannot make us buffer more than `max_frame` bytes per connection.  Reads go
through one buffer filled by large `receive_some` calls (never byte by byte).

Every failure surfaces as a TransportError: ConnectionClosed for a clean end
between frames or a broken socket, FrameError / FrameTooLarge for what a
misbehaving peer sent.
"""

from __future__ import annotations

import trio

from ledger.codec import MAX_FRAME

from .wire import ConnectionClosed, FrameError, FrameTooLarge

DEFAULT_MAX_FRAME = MAX_FRAME      # one definition: the consensus core bounds messages by it too
HEADER_LEN = 4
_LEN_MAX = 2**32 - 1
# Bytes asked of the socket per read: big enough that large frames need few
# calls, small enough that an idle connection's read buffer stays cheap.
_READ_MIN = 64 * 1024
_READ_MAX = 1024 * 1024
# Up to this size the header is joined to the body (one write, one packet);
# above it a second write is cheaper than copying the body.
_JOIN_MAX = 64 * 1024


class FramedStream:
    """Sends and receives whole frames on `stream`.

    Not safe for concurrent senders or concurrent receivers (one task each,
    as trio's streams themselves require); SecureChannel serialises its users.
    """

    __slots__ = ("stream", "max_frame", "_buf")

    def __init__(self, stream: trio.abc.Stream, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not 1 <= max_frame <= _LEN_MAX:
            raise ValueError(f"max_frame must be in 1..{_LEN_MAX}, got {max_frame}")
        self.stream = stream
        self.max_frame = max_frame
        self._buf = bytearray()

    async def send_frame(self, body: bytes) -> None:
        n = len(body)
        if not 1 <= n <= self.max_frame:
            # Our own bug, not the peer's: refuse rather than emit a frame the
            # peer must reject.
            raise ValueError(f"frame body of {n} bytes is outside 1..{self.max_frame}")
        header = n.to_bytes(HEADER_LEN, "big")
        try:
            if n <= _JOIN_MAX:
                await self.stream.send_all(header + body)
            else:
                await self.stream.send_all(header)
                await self.stream.send_all(body)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed(f"send failed: {_describe(exc)}") from None

    async def receive_frame(self) -> bytes:
        header = await self._read_exactly(HEADER_LEN, at_boundary=True)
        n = int.from_bytes(header, "big")
        if n == 0:
            raise FrameError("zero-length frame")
        if n > self.max_frame:
            raise FrameTooLarge(f"frame of {n} bytes exceeds the cap of {self.max_frame}")
        return await self._read_exactly(n, at_boundary=False)

    async def _read_exactly(self, n: int, *, at_boundary: bool) -> bytes:
        buf = self._buf
        while len(buf) < n:
            want = min(max(n - len(buf), _READ_MIN), _READ_MAX)
            try:
                chunk = await self.stream.receive_some(want)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionClosed(f"receive failed: {_describe(exc)}") from None
            if not chunk:
                if at_boundary and not buf:
                    raise ConnectionClosed("peer closed the connection")
                raise FrameError(f"connection closed mid-frame ({len(buf)} of {n} bytes)")
            buf += chunk
        if len(buf) == n:
            out = bytes(buf)
            buf.clear()
        else:
            with memoryview(buf) as view:
                out = view[:n].tobytes()
            del buf[:n]  # cheap: CPython bytearrays drop a prefix without moving the rest
        return out

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
