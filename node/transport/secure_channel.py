"""An authenticated, encrypted message channel over framed TCP.

Built by node.transport.handshake once both sides have proven their keys.  Each frame
body is one libsodium secretstream (XChaCha20-Poly1305) message; the stream
state binds every message to its position, so a dropped, replayed, reordered
or altered frame fails authentication.  Any such failure closes the channel:
secretstream state cannot be resynchronised, and the peer is misbehaving.
"""

from __future__ import annotations

import nacl.bindings as sodium
import nacl.exceptions
import trio

from .framing import HEADER_LEN, FramedStream
from .wire import ConnectionClosed, DecryptError

ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
# Bytes on the wire per message beyond its plaintext.
FRAME_OVERHEAD = HEADER_LEN + ABYTES


class SecureChannel:
    """`send(body)` / `receive() -> body` with the peer whose ed25519 key is
    `peer_key`.  One sender and one receiver may run concurrently; concurrent
    senders are serialised (sealing and writing must happen in the same order).
    """

    def __init__(self, framed: FramedStream, push_state, pull_state, peer_key: bytes) -> None:
        self.peer_key = peer_key
        self._framed = framed
        self._push = push_state
        self._pull = pull_state
        self._send_lock = trio.Lock()
        self._closed = False

    @property
    def max_message(self) -> int:
        """Largest plaintext that fits in one frame."""
        return self._framed.max_frame - ABYTES

    async def send(self, body: bytes) -> None:
        if len(body) > self.max_message:
            raise ValueError(f"message of {len(body)} bytes exceeds {self.max_message}")
        async with self._send_lock:
            if self._closed:
                raise ConnectionClosed("channel is closed")
            sealed = sodium.crypto_secretstream_xchacha20poly1305_push(self._push, body)
            await self._framed.send_frame(sealed)

    async def receive(self) -> bytes:
        if self._closed:
            raise ConnectionClosed("channel is closed")
        sealed = await self._framed.receive_frame()
        try:
            body, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._pull, sealed)
        except (nacl.exceptions.CryptoError, TypeError, ValueError):
            await self.aclose()
            raise DecryptError("sealed frame failed authentication") from None
        if tag != TAG_MESSAGE:
            await self.aclose()
            raise DecryptError(f"unexpected secretstream tag {tag}")
        return body

    async def aclose(self) -> None:
        self._closed = True
        await self._framed.aclose()
