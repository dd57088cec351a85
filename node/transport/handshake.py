"""The authenticated key exchange that turns a byte stream into a SecureChannel.

Two flights.  The dialer sends its HELLO at once; the acceptor answers with
its own as soon as the dialer's has arrived (no extra round trip: the dialer
never waits to speak), so a connection that sends nothing costs the acceptor
no key generation, and is dropped at `hello_timeout_s`.

1. HELLO  [protocol_version, chain_id, genesis_hash, node_key, ephemeral_kx_key, nonce]
   Each side checks the other's version, chain id, genesis hash and that the
   node key is allowed (permissioned: only nodes of the configuration) and is not
   its own.  Nothing is signed for a peer that fails these checks.
2. AUTH   [signature, secretstream_header]
   signature = ed25519(node key, DOMAIN || role || transcript_hash) where
   transcript_hash = blake2b-256(DOMAIN || len||client_hello || len||server_hello).
   The role byte stops a signature from being reflected back as the other
   side's.  Signing the transcript binds both ephemeral keys and nonces to both
   node keys, so a man in the middle cannot substitute its own kx key.

Session keys come from libsodium crypto_kx (client = dialer, server =
acceptor); each direction then runs its own secretstream whose header travels
in AUTH.  Every failure closes the stream and raises HandshakeError(reason).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable

import nacl.bindings as sodium
import nacl.exceptions
import trio

from ledger.codec import expect_bytes, expect_list, expect_str, expect_uint, pack, unpack
from ledger.crypto import HASH_LEN, PUBKEY_LEN, SIG_LEN, KeyPair, verify
from ledger.errors import DecodeError

from .framing import DEFAULT_MAX_FRAME, FramedStream
from .secure_channel import SecureChannel
from .wire import ConnectionClosed, HandshakeError, RemoteProtocolError

# 2: proposal digests cover tx signatures (ledger.block.tx_root); a version-1
# node would never agree with us on a digest, so it is refused at the hello.
# 3: state roots cover the on-chain configuration from genesis on.
# 4: a header carries a receipt root and its state root is the state tree's
# root (ledger.state_tree): a version-3 node computes other block hashes for
# the same blocks, so block sync and checkpoints could never agree with it.
# 5: the smaller node key dials (was: the lower genesis index), observers get NEW_BLOCK.
PROTOCOL_VERSION = 5
DEFAULT_HANDSHAKE_TIMEOUT_S = 5.0
DOMAIN = b"ynchain/p2p-handshake/v1"
NONCE_LEN = 32
KX_KEY_LEN = sodium.crypto_kx_PUBLIC_KEY_BYTES
STREAM_HEADER_LEN = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
# Handshake messages are tiny; a small cap means an unauthenticated peer can
# make us buffer at most this much.
HANDSHAKE_MAX_FRAME = 1024
_ROLE_CLIENT = b"\x01"
_ROLE_SERVER = b"\x02"


@dataclass(frozen=True, slots=True)
class Hello:
    version: int
    chain_id: str
    genesis_hash: bytes
    node_key: bytes
    kx_key: bytes
    nonce: bytes

    def encode(self) -> bytes:
        return pack([self.version, self.chain_id, self.genesis_hash,
                     self.node_key, self.kx_key, self.nonce])

    @classmethod
    def decode(cls, data: bytes) -> "Hello":
        """Raises HandshakeError("version") for another protocol version (its
        other fields may be laid out differently) and "malformed" otherwise."""
        try:
            fields = unpack(data)
            if type(fields) is list and fields and type(fields[0]) is int \
                    and fields[0] != PROTOCOL_VERSION:
                raise HandshakeError("version", f"peer speaks {fields[0]}, we speak {PROTOCOL_VERSION}")
            version, chain_id, genesis_hash, node_key, kx_key, nonce = expect_list(fields, 6, "hello")
            return cls(
                expect_uint(version, "hello.version"),
                expect_str(chain_id, "hello.chain_id", max_len=128),
                expect_bytes(genesis_hash, "hello.genesis_hash", HASH_LEN),
                expect_bytes(node_key, "hello.node_key", PUBKEY_LEN),
                expect_bytes(kx_key, "hello.kx_key", KX_KEY_LEN),
                expect_bytes(nonce, "hello.nonce", NONCE_LEN),
            )
        except DecodeError as exc:
            raise HandshakeError("malformed", str(exc)) from None


def _decode_auth(data: bytes) -> tuple[bytes, bytes]:
    try:
        signature, header = expect_list(unpack(data), 2, "auth")
        return (expect_bytes(signature, "auth.signature", SIG_LEN),
                expect_bytes(header, "auth.header", STREAM_HEADER_LEN))
    except DecodeError as exc:
        raise HandshakeError("malformed", str(exc)) from None


def transcript_hash(client_hello: bytes, server_hello: bytes) -> bytes:
    h = hashlib.blake2b(DOMAIN, digest_size=HASH_LEN)
    for part in (client_hello, server_hello):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


async def handshake(
    stream: trio.abc.Stream,
    *,
    initiator: bool,
    key: KeyPair,
    chain_id: str,
    genesis_hash: bytes,
    is_allowed: Callable[[bytes], bool],
    timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
    max_frame: int = DEFAULT_MAX_FRAME,
    hello_timeout_s: float | None = None,
    on_hello: Callable[[bytes], None] | None = None,
) -> SecureChannel:
    """Authenticate the peer on `stream` and return the encrypted channel.

    `initiator` is True on the side that dialed.  `is_allowed(node_key)` says
    whether that peer may hold this connection.  The acceptor waits at most
    `hello_timeout_s` (default: `timeout_s`) for the dialer's hello; the whole
    handshake takes at most `timeout_s`.  `on_hello(node_key)` runs once the
    peer's hello has passed every check (its key is allowed, not yet proven).
    On any failure the stream is closed and HandshakeError is raised; nothing
    else escapes.
    """
    framed = FramedStream(stream, HANDSHAKE_MAX_FRAME)
    hello_timeout_s = timeout_s if hello_timeout_s is None else min(hello_timeout_s, timeout_s)
    try:
        with trio.move_on_after(timeout_s) as scope:
            channel = await _exchange(framed, initiator, key, chain_id, genesis_hash, is_allowed,
                                      hello_timeout_s, on_hello)
        if scope.cancelled_caught:
            raise HandshakeError("timeout", f"no complete handshake within {timeout_s:g}s")
    except HandshakeError:
        await framed.aclose()
        raise
    except ConnectionClosed as exc:
        await framed.aclose()
        raise HandshakeError("closed", str(exc)) from None
    except RemoteProtocolError as exc:
        await framed.aclose()
        raise HandshakeError("malformed", str(exc)) from None
    except BaseException:  # cancellation from outside: never leak the socket
        await framed.aclose()
        raise
    framed.max_frame = max_frame
    return channel


async def _receive_hello(framed: FramedStream, timeout_s: float) -> bytes:
    with trio.move_on_after(timeout_s):
        return await framed.receive_frame()
    raise HandshakeError("no_hello", f"no hello within {timeout_s:g}s of connecting")


async def _exchange(framed: FramedStream, initiator: bool, key: KeyPair, chain_id: str,
                    genesis_hash: bytes, is_allowed: Callable[[bytes], bool],
                    hello_timeout_s: float, on_hello: Callable[[bytes], None] | None) -> SecureChannel:
    theirs = b"" if initiator else await _receive_hello(framed, hello_timeout_s)
    kx_public, kx_secret = sodium.crypto_kx_keypair()
    mine = Hello(PROTOCOL_VERSION, chain_id, genesis_hash, key.public_key,
                 kx_public, os.urandom(NONCE_LEN)).encode()
    await framed.send_frame(mine)
    if initiator:
        theirs = await framed.receive_frame()
    peer = Hello.decode(theirs)
    if peer.chain_id != chain_id:
        raise HandshakeError("wrong_chain", f"peer is on chain {peer.chain_id!r}")
    if peer.genesis_hash != genesis_hash:
        raise HandshakeError("wrong_genesis", f"peer genesis {peer.genesis_hash.hex()[:16]}")
    if peer.node_key == key.public_key or not is_allowed(peer.node_key):
        raise HandshakeError("unknown_key", f"node key {peer.node_key.hex()[:16]} not allowed")
    if on_hello is not None:
        on_hello(peer.node_key)

    client_hello, server_hello = (mine, theirs) if initiator else (theirs, mine)
    transcript = transcript_hash(client_hello, server_hello)
    my_role, peer_role = (_ROLE_CLIENT, _ROLE_SERVER) if initiator else (_ROLE_SERVER, _ROLE_CLIENT)
    try:
        if initiator:
            rx_key, tx_key = sodium.crypto_kx_client_session_keys(kx_public, kx_secret, peer.kx_key)
        else:
            rx_key, tx_key = sodium.crypto_kx_server_session_keys(kx_public, kx_secret, peer.kx_key)
    except nacl.exceptions.CryptoError:  # e.g. a low-order point as kx key
        raise HandshakeError("malformed", "unusable key-exchange public key") from None

    push_state = sodium.crypto_secretstream_xchacha20poly1305_state()
    push_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(push_state, tx_key)
    signature = key.sign(DOMAIN + my_role + transcript)
    await framed.send_frame(pack([signature, push_header]))

    peer_signature, pull_header = _decode_auth(await framed.receive_frame())
    if not verify(peer.node_key, DOMAIN + peer_role + transcript, peer_signature):
        raise HandshakeError("bad_signature", "transcript signature does not verify")
    pull_state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(pull_state, pull_header, rx_key)
    return SecureChannel(framed, push_state, pull_state, peer.node_key)
