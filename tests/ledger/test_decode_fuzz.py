"""Decoders: any input either decodes or raises DecodeError; valid objects
round-trip exactly."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.block import Block, BlockHeader, Proposal
from ledger.certificate import CommitCertificate, Vote
from ledger.errors import DecodeError
from ledger.receipt import Receipt
from ledger.tx import Transaction

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u64 = st.integers(0, 2**64 - 1)
name = st.text(max_size=64)
hash32 = st.binary(min_size=32, max_size=32)

plain_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=20))
plain = st.recursive(
    plain_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers(-1000, 1000)), inner, max_size=5)),
    max_leaves=20)

transactions = st.builds(
    Transaction, name, st.binary(min_size=32, max_size=32), u64, u64, name, name, plain,
    st.binary(min_size=64, max_size=64))
headers = st.builds(BlockHeader, name, u64, u64, hash32, hash32, hash32, hash32, name, u64)
blocks = st.builds(Block, headers, st.lists(transactions, max_size=3).map(tuple))
proposals = st.builds(Proposal, name, u64, u64, name.filter(bool), u64,
                      st.lists(transactions, max_size=3).map(tuple))
votes = st.builds(Vote, st.integers(0, 1023), st.binary(min_size=64, max_size=64))
certificates = st.builds(CommitCertificate, u64, u64, hash32, st.lists(votes, max_size=5).map(tuple))
receipts = st.builds(Receipt, st.integers(0, 255), st.text(max_size=100), plain)


def _receipt_decode(data: bytes) -> Receipt:
    return Receipt.from_record(codec.unpack(data))


def _receipt_encode(r: Receipt) -> bytes:
    return codec.pack(r.to_record())


# (decode, encode, strategy of valid objects)
CODECS: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes], st.SearchStrategy]] = {
    "transaction": (Transaction.decode, Transaction.encode, transactions),
    "header": (BlockHeader.decode, BlockHeader.encode, headers),
    "block": (Block.decode, Block.encode, blocks),
    "proposal": (Proposal.decode, Proposal.encode, proposals),
    "certificate": (CommitCertificate.decode, CommitCertificate.encode, certificates),
    "receipt": (_receipt_decode, _receipt_encode, receipts),
}


def _mutations(valid: st.SearchStrategy, encode: Callable[[Any], bytes]) -> st.SearchStrategy[bytes]:
    """Encodings of valid objects with one top-level field swapped for any
    plain value, dropped, or the bytes truncated: inputs that get past the
    msgpack layer and exercise the field checks."""
    @st.composite
    def mutate(draw) -> bytes:
        data = encode(draw(valid))
        rec = codec.unpack(data)
        kind = draw(st.sampled_from(["swap", "drop", "extra", "truncate"]))
        if kind == "truncate":
            return data[:draw(st.integers(0, max(0, len(data) - 1)))]
        i = draw(st.integers(0, len(rec) - 1))
        if kind == "swap":
            rec[i] = draw(plain)
        elif kind == "drop":
            del rec[i]
        else:
            rec.append(draw(plain))
        return codec.pack(rec)
    return mutate()


def _decodes_or_decode_error(decode: Callable[[bytes], Any], data: bytes) -> None:
    try:
        decode(data)
    except DecodeError:
        pass


@pytest.mark.parametrize("kind", CODECS)
@FUZZ
@given(data=st.data())
def test_any_input_decodes_or_raises_decode_error(kind: str, data: st.DataObject) -> None:
    decode, encode, valid = CODECS[kind]
    raw = data.draw(st.one_of(
        st.binary(max_size=200),
        plain.map(codec.pack),
        st.lists(plain, max_size=9).map(codec.pack),
        _mutations(valid, encode)))
    _decodes_or_decode_error(decode, raw)


@pytest.mark.parametrize("kind", CODECS)
@FUZZ
@given(data=st.data())
def test_valid_objects_round_trip_exactly(kind: str, data: st.DataObject) -> None:
    decode, encode, valid = CODECS[kind]
    obj = data.draw(valid)
    raw = encode(obj)
    back = decode(raw)
    assert back == obj
    assert encode(back) == raw


@pytest.mark.parametrize("raw", [
    b"", b"\xc1", b"\x92\x01", b"\xd4\x01\x00",              # empty, reserved byte, short, ext type
    b"\x91" * 100_000,                                       # absurdly deep nesting
    codec.pack([1, 2]) + b"\x00",                            # trailing bytes
    b"\xdd\xff\xff\xff\xff",                                 # array claiming 4G items
])
@pytest.mark.parametrize("kind", CODECS)
def test_hostile_inputs_raise_decode_error(kind: str, raw: bytes) -> None:
    with pytest.raises(DecodeError):
        CODECS[kind][0](raw)


def test_oversized_transaction_is_refused_before_parsing() -> None:
    with pytest.raises(DecodeError, match="larger than"):
        Transaction.decode(b"\x00" * (64 * 1024 + 1))


def test_non_plain_args_are_refused() -> None:
    rec = [*Transaction("c", bytes(32), 0, 0, "kv", "put", None, bytes(64)).to_record()]
    rec[6] = {(1, 2): 1}      # a map key msgpack decodes to a non-str/int/bytes
    with pytest.raises(DecodeError):
        Transaction.decode(codec.pack(rec))


@FUZZ
@given(tx=transactions)
def test_encoded_size_is_the_length_of_the_encoding(tx: Transaction) -> None:
    assert tx.encoded_size == len(tx.encode())
    unsigned = Transaction(tx.chain_id, tx.sender, tx.nonce, tx.valid_until, tx.contract,
                           tx.method, tx.args)
    assert unsigned.encoded_size == len(unsigned.encode())


@FUZZ
@given(block=blocks)
def test_a_block_header_decodes_without_its_txs(block: Block) -> None:
    assert Block.decode_header(block.encode()) == (block.header, len(block.txs))


@FUZZ
@given(data=st.data())
def test_any_input_decodes_as_a_block_header_or_raises_decode_error(data: st.DataObject) -> None:
    raw = data.draw(st.one_of(st.binary(max_size=200), st.lists(plain, max_size=9).map(codec.pack),
                              _mutations(blocks, Block.encode)))
    _decodes_or_decode_error(Block.decode_header, raw)


_HEADER = codec.pack(BlockHeader("c", 1, 0, bytes(32), bytes(32), bytes(32), bytes(32), "n", 1).to_record())


@pytest.mark.parametrize("raw", [
    b"", b"\xc1", b"\x92\x01", b"\x91" * 100_000, b"\xdd\xff\xff\xff\xff",
    codec.pack([1, []]), b"\x92" + _HEADER + codec.pack(7),              # txs not an array
    b"\x92" + _HEADER + b"\xdd" + (100_001).to_bytes(4, "big"),         # more txs than a block holds
])
def test_hostile_inputs_raise_decode_error_for_a_block_header(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        Block.decode_header(raw)
