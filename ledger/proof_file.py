"""Proof files: what one node hands an outsider so that anyone can check,
offline and trusting no node, that a transaction, its receipt or a state
entry is what the chain says.

What certifies what
-------------------
A commit certificate signs a block's *proposal* digest (ledger.block): the tx
root, not the derived fields (prev_hash, state_root, receipt_root).  A stable
checkpoint does: a quorum of CHECKPOINT signatures over (chain id, C, hash of
header C) (ledger.certificate.checkpoint_bytes), and each header's prev_hash
is the hash of the one below.  So a checkpoint proof at C and the headers H..C
certify header H whole: its tx root, state root and receipt root.  Every item
of a proof file hangs from such an *anchor*; the commit certificate of a tx's
block is carried and checked too (it names who ordered the block).

Which set signs: the validator-set history
------------------------------------------
Epoch e covers seqs (B_e, B_{e+1}] (consensus.epochs); the checkpoint at C is
signed by the set of the epoch C lies in, and so is the commit certificate of
block H by the set of H's epoch.  The chain records epoch e as the state
`gov/epoch/<e:06d>` = [B_e, [[name, key], ...], params] (ledger.config_state),
written by the block whose execution scheduled it, before B_e.  What the
chain guarantees (ledger.consortium.ChainConfig.with_validators):

  (a) a record is never deleted and its start never changes: a later change
      replaces a pending epoch's set and parameters only, same number, same
      start; new epochs are appended after the last;
  (b) an epoch's record is final from its start on: a block h changes the
      pending epoch only if it starts at or after h + W > h;
  (c) every epoch starting at or below C was scheduled by a block below C, so
      the state after block C records it.

The verifier establishes the history from genesis (epoch 0, and any epoch
the genesis lists) one epoch at a time, and places every checkpoint with it:

  - a checkpoint at C is checked against the set of e, the last established
    epoch starting below C, and its anchor carries a state proof, against
    header C, of `gov/epoch/<e+1>`: absent, or starting at or after C.  By
    (c) no epoch the verifier does not know started below C, so e is the
    epoch of C (and of every height of the anchor);
  - an *epoch link* is an anchor at C = B_{e+1} exactly, the last checkpoint
    of epoch e, signed by e's set: its proof shows record e+1 starting at C,
    which by (b) is final there, and e+1 is established.  Links come in epoch
    order, one per epoch, from the first change up to the epoch of the
    file's highest anchor.

So a file that omits a link, reorders links, checks an anchor against a set
that was not in force at its height, or carries an altered epoch record
fails: the next-epoch proof names another epoch than the one the verifier
expects, shows an epoch starting below C, or does not match the certified
state root, or the signatures are not a quorum of the right set.

What is trusted: a quorum of each epoch's set never certifies a block that
is not the chain's (the PBFT assumption, at most f faulty per set) - the
same assumption the chain's own block sync makes.  A checkpoint's state is
also what says whether its signers' epoch was still running: a quorum of a
*past* set colluding long after its epoch could certify a fabricated
continuation in which it never ended.  No offline verifier without a trusted
notion of the current height can rule that out (light clients bound it with
a trusting period); retired keys are never reused on chain (Governance).

Format (FORMAT 2), the canonical msgpack encoding of
----------------------------------------------------
    [MAGIC, FORMAT, kind, chain_id, genesis_hash, subject, epochs, anchors, txs, states]
    kind      "tx" | "state" | "receipt"        what the file is about
    subject   kind "tx": tx id (bin 32); "state": [contract, key (str)];
              "receipt": [code, number] (a fiscal receipt)
    epochs    [anchor, ...]   the epoch links, in epoch order (empty while the
                              file's anchors lie in the genesis epochs)
    anchors   [anchor, ...]
              anchor     = [checkpoint, headers, next_epoch]
              checkpoint = [seq, block hash, [[validator index, signature], ...]]
                           (indices in the set of the anchor's epoch)
              headers    = header records of consecutive heights, the last at seq
              next_epoch = [number, value (bin | nil), state proof record]:
                           gov/epoch/<number> at height seq, number = the
                           anchor's epoch + 1
    txs       [[height, index, tx record, receipt record, tx path, receipt path,
                certificate record], ...]        path = [[sibling is left, hash], ...]
    states    [[height, state key (bin), value (bin | nil), state proof record], ...]
Every height an item names must be a header of some anchor (not of a link).
Format 1 (no epoch links; every signature against the genesis set) is
refused: it cannot show which set was in force at its anchors.

`verify(data, genesis)` returns a `Proved` (what the file shows) or raises
ProofError with the first reason it does not hold; `describe` says it in a
sentence for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import codec, config_state
from .block import BlockHeader, verify_tx_proof
from .certificate import MAX_VALIDATORS, CommitCertificate, Vote, checkpoint_bytes
from .codec import DecodeError
from .consortium import Epoch
from .contracts import fiscal
from .contracts.base import state_key
from .crypto import HASH_LEN, verify as verify_signature
from .execution import verify_receipt_proof
from .genesis import Genesis
from .receipt import STATUS_NAMES, Receipt
from .state_tree import StateProof, check as check_state
from .tx import Transaction

MAGIC = "ynchain-proof"
FORMAT = 2
KINDS = ("tx", "state", "receipt")
MAX_FILE_BYTES = 8 << 20
MAX_ANCHORS = 8
MAX_EPOCH_LINKS = 256       # validator-set changes a file can walk through (~4 KB each)
MAX_HEADERS = 4096          # per anchor: a checkpoint every K (16) blocks needs far fewer
MAX_ITEMS = 64
MAX_PATH = 64               # Merkle levels: 2**64 items is beyond any block


class ProofError(Exception):
    """The proof file does not hold; the message is the first reason."""


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    epoch: Epoch                      # the epoch the checkpoint lies in: its set signed it
    signers: tuple[str, ...]          # validator names, in index order
    headers: dict[int, BlockHeader]


@dataclass(frozen=True, slots=True)
class ProvedTx:
    height: int
    index: int
    tx: Transaction
    receipt: Receipt
    header: BlockHeader
    committers: tuple[str, ...]       # who signed the block's commit certificate


@dataclass(frozen=True, slots=True)
class ProvedState:
    height: int
    key: bytes
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Proved:
    kind: str
    subject: Any
    chain_id: str
    epochs: tuple[Epoch, ...]         # the validator-set history established, from genesis
    anchors: tuple[Anchor, ...]
    txs: tuple[ProvedTx, ...]
    states: tuple[ProvedState, ...]

    def anchor_of(self, height: int) -> Anchor:
        return next(a for a in self.anchors if height in a.headers)


def epoch_state_key(number: int) -> bytes:
    return state_key(config_state.CONTRACT, config_state.EPOCH, config_state.epoch_key(number))


def next_epoch_problem(state_root: bytes, number: int, value: bytes | None, proof: StateProof) -> str | None:
    """None if `proof` shows the record of epoch `number` (gov/epoch/<number>)
    as `value` (None: absent) in the state of `state_root`, else why not: the
    rule an anchor's next-epoch proof passes, for this verifier and for the
    node that keeps it (node.core.proofs.checked_next_epoch)."""
    return check_state(state_root, epoch_state_key(number), value, proof)


# -- building (the node side) ------------------------------------------------------

def anchor_record(checkpoint_seq: int, block_hash: bytes, votes: tuple[Vote, ...],
                  headers: list[BlockHeader], next_epoch: int, next_value: bytes | None,
                  next_proof: StateProof) -> list:
    return [[checkpoint_seq, block_hash, [v.to_record() for v in votes]],
            [h.to_record() for h in headers], [next_epoch, next_value, next_proof.to_record()]]


def tx_record(height: int, index: int, tx: Transaction, receipt: Receipt,
              tx_path: list[tuple[bool, bytes]], receipt_path: list[tuple[bool, bytes]],
              certificate: CommitCertificate) -> list:
    return [height, index, tx.to_record(), receipt.to_record(), [list(p) for p in tx_path],
            [list(p) for p in receipt_path], certificate.to_record()]


def state_record(height: int, key: bytes, value: bytes | None, proof: StateProof) -> list:
    return [height, key, value, proof.to_record()]


def encode(kind: str, chain_id: str, genesis_hash: bytes, subject: Any, epochs: list, anchors: list,
           txs: list, states: list) -> bytes:
    return codec.pack([MAGIC, FORMAT, kind, chain_id, genesis_hash, subject, epochs, anchors, txs,
                       states])


# -- checking (anyone, offline) ----------------------------------------------------

class _History:
    """The epochs established so far, from genesis, in order."""

    def __init__(self, genesis_epochs: tuple[Epoch, ...]) -> None:
        self.epochs = list(genesis_epochs)

    @property
    def last(self) -> Epoch:
        return self.epochs[-1]

    def get(self, number: int) -> Epoch | None:
        return self.epochs[number] if number < len(self.epochs) else None

    def of(self, height: int) -> Epoch:
        """The established epoch that `height` lies in (B_e < height), which is
        height's epoch once an anchor at or above it has been placed."""
        return next((e for e in reversed(self.epochs) if e.start < height), self.epochs[0])


def verify(data: bytes, genesis: Genesis) -> Proved:
    """What the proof file `data` proves on the chain of `genesis`; ProofError
    with the first reason if anything in it does not hold."""
    if len(data) > MAX_FILE_BYTES:
        raise ProofError(f"the file has {len(data)} bytes; a proof file has at most {MAX_FILE_BYTES}")
    try:
        rec = codec.unpack(data)
    except DecodeError as exc:
        raise ProofError(f"not a proof file: {exc}") from None
    if type(rec) is not list or len(rec) < 2 or rec[0] != MAGIC:
        raise ProofError("not a ynchain proof file")
    if rec[1] == 1:
        raise ProofError("proof file format 1 checks every signature against the genesis validator set "
                         "and cannot show which set was in force at its heights; rebuild the proof "
                         f"with a node of this version (format {FORMAT})")
    if rec[1] != FORMAT:
        raise ProofError(f"proof file format {rec[1]!r}; this ynchain reads format {FORMAT}")
    if len(rec) != 10:
        raise ProofError("not a ynchain proof file")
    _, _, kind, chain_id, genesis_hash, subject, raw_epochs, raw_anchors, raw_txs, raw_states = rec
    if kind not in KINDS:
        raise ProofError(f"unknown proof kind {kind!r}")
    if chain_id != genesis.chain_id or genesis_hash != genesis.hash:
        raise ProofError(f"the proof is for chain {chain_id!r} (genesis "
                         f"{genesis_hash.hex() if type(genesis_hash) is bytes else '?'}), "
                         f"not for {genesis.chain_id!r} (genesis {genesis.hash.hex()})")
    try:
        if codec.pack(rec) != data:
            raise ProofError("the proof file is not in canonical encoding")
        subject = _subject(kind, subject)
        history = _History(genesis.config.epochs)
        for i, link in enumerate(_list(raw_epochs, "epochs", MAX_EPOCH_LINKS)):
            _link(i, link, chain_id, history)
        anchors = tuple(_anchor(f"anchor {i}", a, chain_id, history)[0]
                        for i, a in enumerate(_list(raw_anchors, "anchors", MAX_ANCHORS, nonempty=True)))
        headers: dict[int, BlockHeader] = {}
        for a in anchors:
            headers.update(a.headers)
        txs = tuple(_tx(i, t, headers, chain_id, history)
                    for i, t in enumerate(_list(raw_txs, "txs", MAX_ITEMS)))
        states = tuple(_state(i, s, headers) for i, s in enumerate(_list(raw_states, "states", MAX_ITEMS)))
    except DecodeError as exc:
        raise ProofError(f"malformed proof file: {exc}") from None
    proved = Proved(kind, subject, chain_id, tuple(history.epochs), anchors, txs, states)
    _check_subject(proved)
    return proved


def _list(value: Any, what: str, limit: int, nonempty: bool = False) -> list:
    if type(value) is not list or len(value) > limit or (nonempty and not value):
        raise DecodeError(f"{what}: expected an array of {'1' if nonempty else '0'} to {limit} entries")
    return value


def _subject(kind: str, subject: Any) -> Any:
    if kind == "tx":
        return codec.expect_bytes(subject, "subject (tx id)", HASH_LEN)
    codec.expect_list(subject, 2, "subject")
    return (codec.expect_str(subject[0], "subject[0]", 256), codec.expect_str(subject[1], "subject[1]", 1024))


def _link(i: int, rec: Any, chain_id: str, history: _History) -> None:
    """Epoch link i: an anchor at the last checkpoint of the last established
    epoch e, whose state shows epoch e+1 starting there (final: see the
    module docstring); e+1 is established."""
    anchor, following = _anchor(f"epoch link {i}", rec, chain_id, history)
    if anchor.epoch.number != history.last.number:
        raise ProofError(f"epoch link {i} (checkpoint at height {anchor.seq}) lies in epoch "
                         f"{anchor.epoch.number}, before the last epoch the links up to it establish "
                         f"({history.last.number}): the links are not one per epoch, in order")
    if following is None or following.start != anchor.seq:
        raise ProofError(f"epoch link {i}: no epoch starts at its checkpoint (height {anchor.seq}); "
                         f"a link is the last checkpoint of an epoch")
    history.epochs.append(following)


def _anchor(what: str, rec: Any, chain_id: str, history: _History) -> tuple[Anchor, Epoch | None]:
    """The anchor `rec`, placed in its epoch and checked against that epoch's
    set; also the next epoch's record if the anchor's state holds it."""
    codec.expect_list(rec, 3, what)
    checkpoint, raw_headers, raw_next = rec
    codec.expect_list(checkpoint, 3, f"{what} checkpoint")
    seq = codec.expect_uint(checkpoint[0], f"{what} checkpoint seq")
    block_hash = codec.expect_bytes(checkpoint[1], f"{what} checkpoint hash", HASH_LEN)
    votes = [Vote.from_record(v) for v in _list(checkpoint[2], f"{what} votes", MAX_VALIDATORS)]
    headers = [BlockHeader.from_record(h) for h in _list(raw_headers, f"{what} headers", MAX_HEADERS,
                                                         nonempty=True)]
    codec.expect_list(raw_next, 3, f"{what} next epoch")
    number = codec.expect_uint(raw_next[0], f"{what} next epoch number")
    value = None if raw_next[1] is None else codec.expect_bytes(raw_next[1], f"{what} next epoch record",
                                                                max_len=MAX_FILE_BYTES)
    proof = StateProof.from_record(raw_next[2])
    last = headers[-1]
    if last.height != seq or last.hash != block_hash:
        raise ProofError(f"checkpoint at height {seq}: the last header (height {last.height}) is not "
                         "the block it certifies")
    for below, above in zip(headers, headers[1:]):
        if above.height != below.height + 1 or above.prev_hash != below.hash:
            raise ProofError(f"header {above.height} does not link to header {below.height} "
                             f"(anchor at height {seq})")
    for h in headers:
        if h.chain_id != chain_id:
            raise ProofError(f"header {h.height} belongs to chain {h.chain_id!r}")
    epoch = history.of(seq)
    following = _next_epoch(what, seq, last, epoch, number, value, proof, history)
    signers = _checkpoint_signers(seq, block_hash, votes, chain_id, epoch)
    return Anchor(seq, epoch, signers, {h.height: h for h in headers}), following


def _next_epoch(what: str, seq: int, header: BlockHeader, epoch: Epoch, number: int,
                value: bytes | None, proof: StateProof, history: _History) -> Epoch | None:
    """Check that no epoch after `epoch` started at or below `seq`, by the
    state after block seq; the next epoch's record if that state holds it."""
    expected = epoch.number + 1
    if number > expected:
        raise ProofError(f"{what} (checkpoint at height {seq}) is placed in epoch {number - 1}, but the "
                         f"file's validator-set history establishes epochs up to {history.last.number} "
                         f"below it: the link for epoch {expected} is missing or out of order")
    if number < expected:
        raise ProofError(f"{what} (checkpoint at height {seq}) is placed in epoch {number - 1}, but the "
                         f"file's validator-set history puts that height in epoch {epoch.number}")
    problem = next_epoch_problem(header.state_root, number, value, proof)
    if problem:
        raise ProofError(f"{what} (checkpoint at height {seq}): the proof of validator-set record "
                         f"gov/epoch/{config_state.epoch_key(number)} does not hold: {problem}")
    if value is None:
        return None
    try:
        following = config_state.decode_epoch(number, value)
    except DecodeError as exc:
        raise ProofError(f"{what}: validator-set record gov/epoch/{config_state.epoch_key(number)} does "
                         f"not decode: {exc}") from None
    if not 1 <= following.n <= MAX_VALIDATORS:
        raise ProofError(f"{what}: epoch {number} has {following.n} validators")
    if following.start < seq:
        raise ProofError(f"{what} (checkpoint at height {seq}) lies in epoch {number}, which starts at "
                         f"height {following.start}; the file's validator-set history does not establish "
                         f"it: the link for epoch {number} is missing")
    known = history.get(number)
    if known is not None and known.start != following.start:
        raise ProofError(f"{what}: epoch {number} starts at height {following.start} in its state and at "
                         f"{known.start} in the file's validator-set history")
    return following


def _checkpoint_signers(seq: int, block_hash: bytes, votes: list[Vote], chain_id: str,
                        epoch: Epoch) -> tuple[str, ...]:
    keys, names = epoch.keys, epoch.names
    message = checkpoint_bytes(chain_id, seq, block_hash)
    seen: list[int] = []
    for vote in votes:
        if vote.validator >= len(keys):
            raise ProofError(f"checkpoint at height {seq}: a vote from validator index {vote.validator}, "
                             f"the set of epoch {epoch.number} has {len(keys)}")
        if vote.validator in seen:
            raise ProofError(f"checkpoint at height {seq}: two votes from {names[vote.validator]}")
        if not verify_signature(keys[vote.validator], message, vote.signature):
            raise ProofError(f"checkpoint at height {seq}: the signature of {names[vote.validator]} "
                             f"does not verify (the set of epoch {epoch.number})")
        seen.append(vote.validator)
    if seen != sorted(seen):
        raise ProofError(f"checkpoint at height {seq}: the signatures are not in validator order "
                         "(a proof file has one encoding)")
    if len(seen) < epoch.quorum:
        raise ProofError(f"checkpoint at height {seq}: {len(seen)} signatures, a quorum is {epoch.quorum} "
                         f"of {epoch.n}")
    return tuple(names[v] for v in seen)


def _header(headers: dict[int, BlockHeader], height: int, what: str) -> BlockHeader:
    header = headers.get(height)
    if header is None:
        raise ProofError(f"{what}: no certified header at height {height}")
    return header


def _path(value: Any, what: str) -> list[tuple[bool, bytes]]:
    out = []
    for step in _list(value, what, MAX_PATH):
        codec.expect_list(step, 2, what)
        if type(step[0]) is not bool:
            raise DecodeError(f"{what}: expected a boolean side")
        out.append((step[0], codec.expect_bytes(step[1], what, HASH_LEN)))
    return out


def _tx(i: int, rec: Any, headers: dict[int, BlockHeader], chain_id: str, history: _History) -> ProvedTx:
    codec.expect_list(rec, 7, f"tx {i}")
    height = codec.expect_uint(rec[0], f"tx {i} height")
    index = codec.expect_uint(rec[1], f"tx {i} index", 0xFFFFFFFF)
    tx = Transaction.from_record(rec[2])
    receipt = Receipt.from_record(rec[3])
    tx_path = _path(rec[4], f"tx {i} tx path")
    receipt_path = _path(rec[5], f"tx {i} receipt path")
    certificate = CommitCertificate.from_record(rec[6])
    header = _header(headers, height, f"transaction {tx.id.hex()}")
    if not verify_tx_proof(tx.id, tx.signature, tx_path, header.tx_root):
        raise ProofError(f"transaction {tx.id.hex()}: its Merkle path does not lead to the tx root "
                         f"of block {height}")
    if not verify_receipt_proof(index, tx.id, receipt, receipt_path, header.receipt_root):
        raise ProofError(f"transaction {tx.id.hex()}: its receipt's Merkle path does not lead to the "
                         f"receipt root of block {height} (index {index})")
    if not tx.verify_signature():
        raise ProofError(f"transaction {tx.id.hex()}: the sender's signature does not verify")
    if certificate.height != height or certificate.digest != header.proposal_digest():
        raise ProofError(f"block {height}: the commit certificate is for another block")
    epoch = history.of(height)          # every anchor is placed: so is each of its heights
    problem = certificate.problem(chain_id, epoch.keys)
    if problem:
        raise ProofError(f"block {height}: commit certificate: {problem}")
    order = [v.validator for v in certificate.votes]
    if order != sorted(order):
        raise ProofError(f"block {height}: the commit certificate's signatures are not in validator "
                         "order (a proof file has one encoding)")
    committers = tuple(epoch.names[i] for i in order)
    return ProvedTx(height, index, tx, receipt, header, committers)


def _state(i: int, rec: Any, headers: dict[int, BlockHeader]) -> ProvedState:
    codec.expect_list(rec, 4, f"state {i}")
    height = codec.expect_uint(rec[0], f"state {i} height")
    key = codec.expect_bytes(rec[1], f"state {i} key", max_len=4096)
    value = None if rec[2] is None else codec.expect_bytes(rec[2], f"state {i} value", max_len=MAX_FILE_BYTES)
    proof = StateProof.from_record(rec[3])
    header = _header(headers, height, f"state key {key!r}")
    problem = check_state(header.state_root, key, value, proof)
    if problem:
        raise ProofError(f"state key {_show_key(key)} at height {height}: {problem}")
    return ProvedState(height, key, value)


def _check_subject(p: Proved) -> None:
    """The items must be about the subject the file names (what describe says)."""
    if p.kind == "tx":
        if not any(t.tx.id == p.subject for t in p.txs):
            raise ProofError(f"the file proves no transaction {p.subject.hex()}")
    elif p.kind == "state":
        if not any(s.key == state_key(p.subject[0], *_table_key(p.subject[1])) for s in p.states):
            raise ProofError(f"the file proves nothing about {p.subject[0]}/{p.subject[1]}")
    else:
        _receipt_facts(p)


def _table_key(text: str) -> tuple[str, str]:
    table, sep, key = text.partition("/")
    if not sep:
        raise ProofError(f"state key {text!r}: expected TABLE/KEY")
    return table, key


def _show_key(key: bytes) -> str:
    return key.decode("utf-8", "backslashreplace")


# -- saying it -------------------------------------------------------------------------

def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _certified(anchor: Anchor) -> str:
    said = (f"certified by {len(anchor.signers)} of {anchor.epoch.n} validators "
            f"({', '.join(anchor.signers)})")
    if anchor.epoch.number:
        said += f" of the set in force from height {anchor.epoch.start + 1:,}"
    return said


def _yuan(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d} yuan"


def _receipt_facts(p: Proved) -> tuple[ProvedState, fiscal.FiscalReceipt | None, ProvedTx | None]:
    code, number = p.subject
    key = state_key(fiscal.CONTRACT.name, fiscal.RECEIPTS, fiscal.receipt_key(code, number))
    found = [s for s in p.states if s.key == key]
    if not found:
        raise ProofError(f"the file proves nothing about receipt {code}-{number}")
    latest = max(found, key=lambda s: s.height)
    if latest.value is None:
        return latest, None, None
    try:
        receipt = fiscal.FiscalReceipt.from_record(codec.expect_list(codec.unpack(latest.value), 17,
                                                                     "fiscal receipt"))
    except (DecodeError, TypeError) as exc:
        raise ProofError(f"receipt {code}-{number}: the proven record does not decode: {exc}") from None
    issued = next((t for t in p.txs if t.tx.id == receipt.issued_tx), None)
    if issued is None:
        raise ProofError(f"receipt {code}-{number}: the file does not prove the transaction that "
                         f"issued it ({receipt.issued_tx.hex()})")
    if issued.height != receipt.issued_height or not issued.receipt.ok:
        raise ProofError(f"receipt {code}-{number}: the issuing transaction is not a successful "
                         f"transaction at height {receipt.issued_height}")
    return latest, receipt, issued


def _org_name(p: Proved, receipt: fiscal.FiscalReceipt) -> str:
    """The issuer's display name, from its proven configuration record
    (gov/org/<name> = [display name, status]) when the file carries it."""
    key = state_key(config_state.CONTRACT, config_state.ORG, receipt.issuer_org)
    for s in p.states:
        if s.key == key and s.value is not None:
            try:
                rec = codec.unpack(s.value)
            except DecodeError:
                break
            if type(rec) is list and rec and type(rec[0]) is str and rec[0]:
                return f"{rec[0]} ({receipt.issuer_org})"
    return receipt.issuer_org


def describe(p: Proved) -> str:
    """What the file proves, as one sentence a clerk can read."""
    if p.kind == "receipt":
        state, receipt, issued = _receipt_facts(p)
        anchor = p.anchor_of(state.height)
        code, number = p.subject
        if receipt is None:
            return (f"no fiscal receipt {code}-{number} exists as of height {state.height:,}, "
                    f"{_certified(anchor)}")
        if receipt.kind == fiscal.RED:
            status = f"a red receipt voiding {receipt.red_of}"
        elif receipt.voided_by is not None:
            status = f"voided by red receipt {receipt.voided_by}"
        else:
            reimbursed = receipt.amount_in(fiscal.REIMBURSED)
            locked = receipt.amount_in(fiscal.LOCKED)
            if reimbursed == receipt.total:
                status = "reimbursed in full"
            elif reimbursed:
                status = f"reimbursed for {_yuan(reimbursed)}"
            else:
                status = "not reimbursed"
            if locked:
                status += f", {_yuan(locked)} locked for reimbursement"
        return (f"receipt {code}-{number} of {_yuan(receipt.total)}, issued by {_org_name(p, receipt)} "
                f"at height {issued.height:,} ({_utc(issued.header.timestamp_ms)}), {status} as of "
                f"height {state.height:,}, {_certified(anchor)}")
    if p.kind == "tx":
        t = next(t for t in p.txs if t.tx.id == p.subject)
        outcome = "succeeded" if t.receipt.ok else (
            f"failed with {STATUS_NAMES.get(t.receipt.status, t.receipt.status)}"
            + (f" ({t.receipt.message})" if t.receipt.message else ""))
        return (f"transaction {t.tx.id.hex()} ({t.tx.contract}.{t.tx.method}) is in block "
                f"{t.height:,} ({_utc(t.header.timestamp_ms)}) at position {t.index} and {outcome}, "
                f"{_certified(p.anchor_of(t.height))}")
    contract, key = p.subject
    s = next(s for s in p.states if s.key == state_key(contract, *_table_key(key)))
    held = ("is absent" if s.value is None
            else f"holds {_show_value(s.value)}")
    return f"state {contract}/{key} {held} as of height {s.height:,}, {_certified(p.anchor_of(s.height))}"


def _show_value(value: bytes) -> str:
    try:
        shown = repr(codec.unpack(value))
    except DecodeError:
        shown = value.hex()
    return shown if len(shown) <= 200 else shown[:197] + "..."


def as_json(p: Proved) -> dict[str, Any]:
    """What `ynchain verify --json` prints."""
    return {
        "valid": True, "kind": p.kind, "chain_id": p.chain_id, "statement": describe(p),
        "epochs": [{"number": e.number, "from_height": e.start + 1, "validators": list(e.names)}
                   for e in p.epochs],
        "anchors": [{"height": a.seq, "epoch": a.epoch.number, "signers": list(a.signers),
                     "headers": [min(a.headers), max(a.headers)]} for a in p.anchors],
        "txs": [{"id": t.tx.id.hex(), "height": t.height, "index": t.index,
                 "contract": t.tx.contract, "method": t.tx.method,
                 "status": STATUS_NAMES.get(t.receipt.status, t.receipt.status),
                 "message": t.receipt.message, "committed_by": list(t.committers),
                 "time": _utc(t.header.timestamp_ms)} for t in p.txs],
        "states": [{"key": _show_key(s.key), "height": s.height,
                    "value": None if s.value is None else s.value.hex()} for s in p.states],
    }
