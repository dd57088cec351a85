"""Transport error types and the message envelope carried inside sealed frames.

Every error the transport raises on purpose is a `TransportError`, so callers
need one `except`.  Errors caused by what a peer sent are `RemoteProtocolError`
subclasses with a short `reason` (used as a metrics label); a handshake failure
is a `HandshakeError` whose `reason` is one of `HANDSHAKE_REASONS`.

Envelope: one message is the msgpack array ``[msg_type: uint16, payload]``.  A
frame body is a *batch*: a msgpack array of envelopes, so many messages cost
one seal and one socket write.  Each envelope is encoded once when it is
queued (a broadcast shares the same bytes across peers) and a batch is built
by prefixing the array header to the concatenated envelopes.
"""

from __future__ import annotations

import os
from typing import Any

import msgpack

from ledger.codec import pack, unpack
from ledger.errors import DecodeError

MSG_TYPE_MAX = 0xFFFF
# Largest msgpack array header (0xdd + u32); a batch is at most this much
# bigger than the envelopes it carries.
BATCH_HEADER_MAX = 5

Message = tuple[int, Any]
"""One received message: (msg_type, payload)."""


# -- errors ---------------------------------------------------------------------

class TransportError(Exception):
    """Base class of every error the transport raises on purpose."""


class ConnectionClosed(TransportError):
    """The connection ended (clean EOF between frames, reset, or closed locally)."""


class RemoteProtocolError(TransportError):
    """The peer sent something that breaks the protocol; the connection is dropped."""

    reason = "protocol"


class FrameError(RemoteProtocolError):
    """A frame that is not well formed: zero length, or truncated by EOF."""

    reason = "bad_frame"


class FrameTooLarge(FrameError):
    """A length prefix above the frame cap (checked before reading the body)."""

    reason = "frame_too_large"


class DecryptError(RemoteProtocolError):
    """A sealed frame that fails authentication or carries an unexpected tag."""

    reason = "decrypt"


class MalformedEnvelope(RemoteProtocolError):
    """A decrypted frame that is not a valid batch of envelopes."""

    reason = "malformed_envelope"


class IdleTimeout(RemoteProtocolError):
    """The peer sent nothing (not even a keepalive) for too long."""

    reason = "idle_timeout"


HANDSHAKE_REASONS = (
    "unknown_key",    # the peer's key is not allowed on this connection
    "bad_signature",  # transcript signature does not verify
    "wrong_chain",
    "wrong_genesis",
    "version",        # protocol version mismatch
    "timeout",        # the whole handshake took longer than its deadline
    "no_hello",       # the dialer sent no complete hello within the first-message deadline
    "malformed",      # undecodable or oversized handshake message
    "closed",         # the peer closed or reset the connection mid-handshake
    "busy",           # its source address has too many handshakes in progress; refused
    "evicted",        # dropped while unproven, to make room for a newer connection
)


class HandshakeError(TransportError):
    """The handshake failed; `reason` is one of HANDSHAKE_REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in HANDSHAKE_REASONS, reason
        self.reason = reason
        self.detail = detail
        super().__init__(f"handshake failed: {reason}" + (f" ({detail})" if detail else ""))


def connect_failure(exc: OSError) -> str:
    """Why a TCP connect failed, in a few words: trio.open_tcp_stream wraps the
    per-address errors ("Connection refused") in one OSError without a strerror."""
    cause = exc.__cause__
    while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
        cause = cause.exceptions[0]
    for err in (cause, exc):
        if isinstance(err, OSError) and err.errno:
            return os.strerror(err.errno).lower()
    return str(exc)


# -- envelope -------------------------------------------------------------------

def encode_message(msg_type: int, payload: Any) -> bytes:
    """Encode one envelope; raises ValueError for an out-of-range type and
    TypeError for a payload msgpack cannot encode (both caller bugs)."""
    if type(msg_type) is not int or not 0 <= msg_type <= MSG_TYPE_MAX:
        raise ValueError(f"msg_type must be an int in 0..{MSG_TYPE_MAX}, got {msg_type!r}")
    return pack([msg_type, payload])


_packer = msgpack.Packer()


def encode_batch(envelopes: list[bytes]) -> bytes:
    """Join already-encoded envelopes into one batch body (none: a keepalive)."""
    return b"".join((_packer.pack_array_header(len(envelopes)), *envelopes))  # one copy


def decode_batch(body: bytes) -> list[Message]:
    """Decode a batch body into [(msg_type, payload), ...]; an empty batch is
    a keepalive.  Every problem is a MalformedEnvelope."""
    try:
        batch = unpack(body)
    except DecodeError as exc:
        raise MalformedEnvelope(str(exc)) from None
    if type(batch) is not list:
        raise MalformedEnvelope(f"batch: expected an array, got {type(batch).__name__}")
    out: list[Message] = []
    for envelope in batch:
        if type(envelope) is not list or len(envelope) != 2:
            raise MalformedEnvelope("envelope: expected [msg_type, payload]")
        msg_type = envelope[0]
        if type(msg_type) is not int or not 0 <= msg_type <= MSG_TYPE_MAX:
            raise MalformedEnvelope(f"envelope: msg_type must be an int in 0..{MSG_TYPE_MAX}")
        out.append((msg_type, envelope[1]))
    return out
