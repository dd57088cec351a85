"""Canonical msgpack encoding and the checks every decoder shares.

Records are msgpack *arrays* (field order is the schema), binary fields are
msgpack bin, strings are str.  `unpack` turns every failure of the msgpack
library into one `DecodeError`, so callers never see another exception type.
"""

from __future__ import annotations

from typing import Any, Callable

import msgpack

from .errors import DecodeError

U64_MAX = 2**64 - 1
# The largest frame body a peer may send: the transport checks it before it
# reads a body, and no decoder of a peer's message needs a larger bound, since
# nothing larger can ever arrive.  Defined here, below both the transport and
# the consensus core, so that both use this one number.
MAX_FRAME = 16 * 1024 * 1024


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def packer() -> Callable[[Any], bytes]:
    """A reusable `pack` (same bytes) for one thread's loop: no packer built per value."""
    return msgpack.Packer(use_bin_type=True).pack


def array_header(n: int) -> bytes:
    """The msgpack header of an array of `n` elements: an array of values
    that are already encoded is this followed by their bytes, joined."""
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def unpacker(max_bytes: int):
    """A streaming msgpack.Unpacker with `unpack`'s rules (no ext types, str as
    str, any hashable map key), for reading one buffer piece by piece."""
    return msgpack.Unpacker(raw=False, use_list=True, strict_map_key=False, ext_hook=_no_ext,
                            timestamp=0, max_buffer_size=max(max_bytes, 1))


def _no_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"msgpack extension type {code} is not allowed")


class decoding:
    """A context in which msgpack's errors (a zoo of types, for truncated or
    mistyped data) become one DecodeError starting with `what`; a DecodeError
    passes.  A class, not @contextmanager: `unpack` runs it for every stored
    node and tx, and a generator-based context costs ~1 us more per use."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if kind is None or not issubclass(kind, Exception) or issubclass(kind, DecodeError):
            return None
        raise DecodeError(f"{self.what}: {kind.__name__}: {exc}") from None


def unpack(data: bytes) -> Any:
    """Decode one msgpack value, rejecting ext types, trailing bytes and
    non-hashable map keys."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    with decoding("invalid msgpack"):
        return msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=False,
            ext_hook=_no_ext, timestamp=0,
        )



def unpack_head(data: bytes) -> tuple[Any, int]:
    """Of an encoded array [first, [items...], ...]: `first` decoded, and the
    number of items of the second field without decoding them (a block's
    header and tx count: ~0.14 ms where the whole block of 2,000 txs takes ~13 ms)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    with decoding("invalid msgpack"):
        unpacker = msgpack.Unpacker(raw=False, use_list=True, strict_map_key=False,
                                    ext_hook=_no_ext, timestamp=0)
        unpacker.feed(data)
        if unpacker.read_array_header() < 2:
            raise DecodeError("expected an array of at least 2 fields")
        first = unpacker.unpack()
        return first, unpacker.read_array_header()

# -- field checks used by every record decoder ---------------------------------

def expect_list(value: Any, length: int, what: str) -> list:
    if not isinstance(value, list):
        raise DecodeError(f"{what}: expected an array, got {type(value).__name__}")
    if len(value) != length:
        raise DecodeError(f"{what}: expected {length} fields, got {len(value)}")
    return value


def expect_uint(value: Any, what: str, maximum: int = U64_MAX) -> int:
    if type(value) is not int or value < 0 or value > maximum:
        raise DecodeError(f"{what}: expected an unsigned integer <= {maximum}")
    return value


def expect_bytes(value: Any, what: str, length: int | None = None, max_len: int | None = None) -> bytes:
    if type(value) is not bytes:
        raise DecodeError(f"{what}: expected bytes, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise DecodeError(f"{what}: expected {length} bytes, got {len(value)}")
    if max_len is not None and len(value) > max_len:
        raise DecodeError(f"{what}: longer than {max_len} bytes")
    return value


def expect_str(value: Any, what: str, max_len: int = 256) -> str:
    if type(value) is not str:
        raise DecodeError(f"{what}: expected a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise DecodeError(f"{what}: longer than {max_len} characters")
    return value


def check_plain(value: Any, what: str, depth: int = 0) -> None:
    """Accept only plain msgpack data (nil, bool, int, float, str, bytes,
    arrays, maps with str/int/bytes keys), nested at most 32 deep."""
    if depth > 32:
        raise DecodeError(f"{what}: nested too deeply")
    if value is None or type(value) in (bool, int, float, str, bytes):
        return
    if type(value) is list:
        for item in value:
            check_plain(item, what, depth + 1)
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) not in (str, int, bytes):
                raise DecodeError(f"{what}: map keys must be str, int or bytes")
            check_plain(item, what, depth + 1)
        return
    raise DecodeError(f"{what}: {type(value).__name__} is not plain msgpack data")
