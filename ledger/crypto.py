"""Hashing, ed25519 keys and signatures, and key files.

Hashing uses hashlib's blake2b (fast, no FFI hop per call).  Every signature
covers a domain-separation prefix, so bytes signed for one purpose can never be
replayed as another (a transaction is never a vote).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

from .errors import KeyFileError

HASH_LEN = 32
PUBKEY_LEN = 32
SIG_LEN = 64


def hash256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASH_LEN).digest()


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` is a valid ed25519 signature of `message`."""
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
        return True
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, TypeError, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An ed25519 key pair, built from its 32-byte seed."""

    seed: bytes
    public_key: bytes
    _signing_key: nacl.signing.SigningKey

    @classmethod
    def from_seed(cls, seed: bytes) -> "KeyPair":
        sk = nacl.signing.SigningKey(seed)
        return cls(seed, bytes(sk.verify_key), sk)

    @classmethod
    def generate(cls) -> "KeyPair":
        return cls.from_seed(os.urandom(32))

    def sign(self, message: bytes) -> bytes:
        return self._signing_key.sign(message).signature

    def __repr__(self) -> str:  # never print the seed
        return f"KeyPair(public_key={self.public_key.hex()})"


# -- key files -------------------------------------------------------------------

def save_key(path: str | os.PathLike, key: KeyPair, *, overwrite: bool = False) -> None:
    """Write a key file (JSON, mode 0600), refusing to overwrite unless asked."""
    path = Path(path)
    body = json.dumps(
        {"type": "ed25519", "public_key": key.public_key.hex(), "seed": key.seed.hex()},
        indent=2,
    ) + "\n"
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists (refusing to overwrite a key)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write key file: {exc.strerror}") from None
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fd, 0o600)
        fh.write(body)
        fh.flush()
        os.fsync(fd)


def load_key(path: str | os.PathLike) -> KeyPair:
    """Read a key file written by `save_key`; every problem is a KeyFileError."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path}: not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(
            f"{path}: key file is accessible by others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod 600 {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"{path}: not a valid key file ({exc})") from None
    if not isinstance(data, dict) or data.get("type") != "ed25519":
        raise KeyFileError(f"{path}: not an ed25519 key file (missing \"type\": \"ed25519\")")
    try:
        seed = bytes.fromhex(data["seed"])
        public_key = bytes.fromhex(data["public_key"])
    except (KeyError, TypeError, ValueError):
        raise KeyFileError(f"{path}: \"seed\" and \"public_key\" must be hex strings") from None
    if len(seed) != 32:
        raise KeyFileError(f"{path}: seed must be 32 bytes, got {len(seed)}")
    key = KeyPair.from_seed(seed)
    if key.public_key != public_key:
        raise KeyFileError(f"{path}: public_key does not match the seed")
    return key
