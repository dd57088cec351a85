"""Building proof files (ledger.proof_file) from this node's store.

Everything in a file hangs from a kept stable checkpoint proof (Store.
checkpoint_at_or_above): the lowest one at or above the item's height, with
the headers from that height up to it.  A height above the newest kept
checkpoint is not provable yet (a checkpoint comes every K blocks, 16 by
default).  The state tree keeps the versions from the newest kept checkpoint
up (older ones are pruned: a state proof below it is 409), persisted at
checkpoint heights only (others are 409 too, ledger.execution), and the store
keeps only the newest values: a value is served for an older height only
while it is still the newest one (its hash matches the tree at that height).

Every anchor also proves, in its own state, the record of the epoch after
its own (`gov/epoch/...`, rebuilt from the configuration history at its
height: a pending epoch's record may have changed since).  Its tree version
is pruned once a newer checkpoint is kept, so that state proof is made when
the checkpoint is kept (`next_epoch_proof`) and kept with it; a file whose
anchors lie past validator-set changes carries one epoch link per change: the
kept checkpoint at the boundary B where the change took effect (the last
one the old set signed) with header B and its proof of the new epoch's
record (ledger.proof_file).  A node whose core did not see those checkpoints
become stable (it caught up by block sync) fetches them from its peers after
the sync session, checked as a proof file verifier would check them
(node.core.checkpoint_fetch, `checked_next_epoch`), and builds the same files;
one that still lacks the checkpoint at a boundary (no peer kept it) answers
409 for a file that must cross it.

No trio here: a request builds one file synchronously (reading at most one
block and MAX_HEADERS headers per anchor).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import codec, config_state, proof_file
from ledger.block import Block, BlockHeader, tx_proof
from ledger.certificate import Vote
from ledger.codec import DecodeError
from ledger.contracts import REGISTRY, fiscal
from ledger.contracts.base import state_key
from ledger.execution import DUPLICATE_COMMITTED, DUPLICATE_IN_BLOCK, receipt_proof
from ledger.genesis import Genesis
from ledger.receipt import Receipt
from ledger.consortium import ChainConfig
from ledger.state_tree import StateProof, value_hash
from storage.base import Store
from storage.errors import CorruptStoreError

from .config_history import ConfigHistory


class ProofUnavailable(Exception):
    """This node cannot make the proof asked for; `missing` says whether the
    thing does not exist (404) rather than not being provable yet (409)."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def next_epoch(config: ChainConfig, seq: int) -> tuple[int, bytes | None]:
    """The number of the epoch after the one checkpoint `seq` lies in, and its
    record (`gov/epoch/<number>`) as the state after block `seq` holds it
    (None: not scheduled), from `config`, the configuration in force after `seq`."""
    number = config.epoch_of(seq).number + 1
    following = config.epochs[number] if number < len(config.epochs) else None
    return number, None if following is None else codec.pack(config_state.epoch_record(following))


def next_epoch_proof(store: Store, history: ConfigHistory, seq: int) -> bytes:
    """The state proof an anchor at checkpoint `seq` carries of the next
    epoch's record, against the state after block `seq`: made when the
    checkpoint is kept (its tree version is there until a newer one is) and
    kept with it (Store.put_checkpoint).  Builders check it against the
    anchor's header and the configuration history when they use it."""
    number, _ = next_epoch(history.at(seq), seq)
    return store.state_tree.prove(seq, proof_file.epoch_state_key(number)).encode()


def stored_header(store: Store, height: int) -> BlockHeader:
    """The header of committed block `height` (at or below the tip)."""
    raw = store.get_block_bytes(height)
    if raw is None:
        raise CorruptStoreError(f"block {height} is missing below the tip")
    try:
        return Block.decode_header(raw)[0]      # the txs stay undecoded
    except DecodeError as exc:
        raise CorruptStoreError(f"block {height} does not decode: {exc}") from None


class NextEpochProofError(Exception):
    """A kept (or offered) next-epoch proof does not hold; the message says why."""


def checked_next_epoch(history: ConfigHistory, seq: int, state_root: bytes,
                       raw: bytes) -> tuple[int, bytes | None, StateProof]:
    """The next epoch's number and record at checkpoint `seq` (from the
    configuration history) and `raw`, the encoded proof of it, checked against
    `state_root` (header seq's) by the verifier's rule (proof_file.
    next_epoch_problem): for the anchors this node builds and the checkpoints
    block sync fetches (node.core.checkpoint_fetch)."""
    number, value = next_epoch(history.at(seq), seq)
    try:
        proof = StateProof.decode(raw)
    except DecodeError as exc:
        raise NextEpochProofError(f"the next-epoch proof of checkpoint {seq} does not decode: {exc}") from None
    problem = proof_file.next_epoch_problem(state_root, number, value, proof)
    if problem is not None:
        raise NextEpochProofError(f"the configuration history and the state at height {seq} disagree on "
                                  f"{proof_file.epoch_state_key(number).decode()}: {problem}")
    return number, value, proof


@dataclass(slots=True)
class _Anchor:
    """A kept checkpoint proof and the headers it certifies (the last at seq)."""
    seq: int
    block_hash: bytes
    votes: tuple[Vote, ...]
    headers: list[BlockHeader]
    next_epoch: bytes                    # the kept proof of the next epoch's record


class ProofBuilder:
    def __init__(self, genesis: Genesis, store: Store, history: ConfigHistory) -> None:
        self.genesis = genesis
        self.store = store
        self.history = history

    # -- the three kinds ---------------------------------------------------------------
    def tx(self, tx_id: bytes) -> bytes:
        anchors: dict[int, _Anchor] = {}
        txs = [self._tx_item(tx_id, anchors)]
        return self._encode("tx", tx_id, anchors, txs, [])

    def state(self, contract: str, key: str, height: int | None) -> tuple[bytes, int]:
        """The file and the height it proves the key at (default: the newest
        kept checkpoint)."""
        skey = self._state_key(contract, key)
        anchors: dict[int, _Anchor] = {}
        at = self._state_height(height)
        states = [self._state_item(skey, at, anchors)]
        return self._encode("state", [contract, key], anchors, [], states), at

    def receipt(self, code: str, number: str) -> tuple[bytes, int]:
        """A fiscal receipt as of the newest kept checkpoint: its record (or
        its absence) and the transaction that issued it."""
        skey = state_key(fiscal.CONTRACT.name, fiscal.RECEIPTS, fiscal.receipt_key(code, number))
        anchors: dict[int, _Anchor] = {}
        at = self._state_height(None)
        states = [self._state_item(skey, at, anchors)]
        txs = []
        if states[0][2] is not None:
            record = fiscal.FiscalReceipt.from_record(codec.unpack(states[0][2]))
            txs.append(self._tx_item(record.issued_tx, anchors))
            # the issuer's record in the configuration: its name as people know it
            org = state_key(config_state.CONTRACT, config_state.ORG, record.issuer_org)
            states.append(self._state_item(org, at, anchors))
        return self._encode("receipt", [code, number], anchors, txs, states), at

    # -- items ---------------------------------------------------------------------------
    def _tx_item(self, tx_id: bytes, anchors: dict[int, _Anchor]) -> list:
        found = self.store.get_tx(tx_id)
        if found is None:
            raise ProofUnavailable(f"no committed transaction {tx_id.hex()}", missing=True)
        height, index, receipt = found
        self._anchor(height, anchors)
        block = self.store.get_block(height)
        certificate = self.store.get_certificate(height)
        if block is None or certificate is None:
            raise CorruptStoreError(f"block {height} or its certificate is missing")
        receipts = self._block_receipts(block)
        return proof_file.tx_record(height, index, block.txs[index], receipt, tx_proof(block.txs, index),
                                    receipt_proof(block.txs, receipts, index), certificate)

    def _block_receipts(self, block: Block) -> list[Receipt]:
        """Every receipt of a block, from the tx index.  A tx id is indexed once
        (its first commit); a repeat got a `duplicate` receipt whose message
        execution fixes (ledger.execution), so it is rebuilt here."""
        out = []
        for i, tx in enumerate(block.txs):
            height, index, receipt = self.store.get_tx(tx.id)
            if (height, index) == (block.height, i):
                out.append(receipt)
            else:
                out.append(DUPLICATE_IN_BLOCK if height == block.height else DUPLICATE_COMMITTED)
        return out

    def _state_key(self, contract: str, key: str) -> bytes:
        if contract not in REGISTRY:
            raise ProofUnavailable(f"no contract {contract!r}", missing=True)
        table, sep, rest = key.partition("/")
        if not sep or not table:
            raise ProofUnavailable(f"state key {key!r}: expected TABLE/KEY (e.g. receipt/CODE-NUMBER)",
                                   missing=True)
        return state_key(contract, table, rest)

    def _state_height(self, height: int | None) -> int:
        newest = self.store.newest_checkpoint()
        if height is None:
            if not newest:
                raise ProofUnavailable("no stable checkpoint is kept yet; retry once the chain has "
                                       "passed its first checkpoint")
            return newest
        if not 0 <= height <= self.store.last_height():
            raise ProofUnavailable(f"height {height} is not committed (the chain is at "
                                   f"{self.store.last_height()})", missing=True)
        if height < newest:
            raise ProofUnavailable(f"this node keeps the state tree from height {newest} (its newest "
                                   f"stable checkpoint; older heights are pruned): ask for height "
                                   f"{newest} or later")
        if not self.store.state_tree.readable(height):
            raise ProofUnavailable(f"this node keeps the state tree at checkpoint heights only (and its "
                                   f"tip); height {height} is not one: ask for height {newest}")
        return height

    def _state_item(self, skey: bytes, height: int, anchors: dict[int, _Anchor]) -> list:
        tree = self.store.state_tree
        held = tree.get(height, skey)
        value = None
        if held is not None:
            value = self.store.get_state(skey)
            if value is None or value_hash(value) != held:
                raise ProofUnavailable(
                    f"{skey.decode('utf-8', 'replace')} has changed since height {height}, and this node "
                    "keeps only the newest values: ask for a later height")
        self._anchor(height, anchors)
        return proof_file.state_record(height, skey, value, tree.prove(height, skey))

    # -- anchors -------------------------------------------------------------------------
    def _anchor(self, height: int, anchors: dict[int, _Anchor]) -> None:
        if height == 0:
            raise ProofUnavailable("height 0 (the genesis state) has no header to anchor it; "
                                   "ask for height 1 or later")
        for anchor in anchors.values():
            if anchor.seq >= height >= anchor.headers[0].height:
                return
        found = self._checkpoint(height)
        if found is None:
            raise ProofUnavailable(f"height {height} is not covered by a stable checkpoint yet; retry "
                                   "in a few blocks")
        seq, block_hash, votes, next_proof = found
        if seq - height >= proof_file.MAX_HEADERS:
            raise ProofUnavailable(f"the nearest kept checkpoint above height {height} is {seq}, too far "
                                   "to carry every header in between")
        anchors[seq] = self._checked(_Anchor(seq, block_hash, votes,
                                             [stored_header(self.store, h) for h in range(height, seq + 1)],
                                             next_proof))

    def _checkpoint(self, height: int) -> tuple[int, bytes, tuple[Vote, ...], bytes] | None:
        """The lowest kept stable checkpoint proof at or above `height`, with
        its kept next-epoch proof."""
        found = self.store.checkpoint_at_or_above(height)
        if found is None:
            return None
        seq, raw, next_proof = found
        try:
            rec = codec.expect_list(codec.unpack(raw), 3, "checkpoint proof")
            block_hash = codec.expect_bytes(rec[1], "checkpoint proof.digest", 32)
            if type(rec[2]) is not list:
                raise DecodeError("checkpoint proof.votes: expected an array")
            votes = tuple(Vote.from_record(v) for v in rec[2])
        except DecodeError as exc:
            raise CorruptStoreError(f"kept checkpoint proof {seq} does not decode: {exc}") from None
        return seq, block_hash, votes, next_proof

    def _checked(self, anchor: _Anchor) -> _Anchor:
        if anchor.headers[-1].hash != anchor.block_hash:
            raise CorruptStoreError(f"kept checkpoint proof {anchor.seq} is not for the stored block "
                                    f"{anchor.seq}")
        return anchor

    def _links(self, top: int) -> list[_Anchor]:
        """The epoch links a verifier needs to place a checkpoint at `top`: the
        kept checkpoint at each boundary from genesis's epochs to top's."""
        config = self.history.at(top)
        first, last = len(self.genesis.config.epochs), config.epoch_of(top).number
        if last - first + 1 > proof_file.MAX_EPOCH_LINKS:
            raise ProofUnavailable(f"height {top} lies {last} validator-set changes after genesis; a proof "
                                   f"file carries at most {proof_file.MAX_EPOCH_LINKS}")
        links = []
        for number in range(first, last + 1):
            boundary = config.epochs[number].start
            found = self._checkpoint(boundary)
            if found is None or found[0] != boundary:
                raise ProofUnavailable(
                    f"this node keeps no stable checkpoint at height {boundary}, where the validator set "
                    f"changed (epoch {number}), which a proof past it must carry; another node may keep it")
            header = stored_header(self.store, boundary)
            links.append(self._checked(_Anchor(boundary, found[1], found[2], [header], found[3])))
        return links

    def _anchor_record(self, anchor: _Anchor) -> list:
        """The anchor with its proof of the next epoch's record, as the state
        after block `seq` held it: the record from the configuration history,
        the proof kept with the checkpoint, checked against the anchor's header."""
        try:
            number, value, proof = checked_next_epoch(self.history, anchor.seq, anchor.headers[-1].state_root,
                                                      anchor.next_epoch)
        except NextEpochProofError as exc:
            raise CorruptStoreError(f"kept checkpoint {anchor.seq}: {exc}") from None
        return proof_file.anchor_record(anchor.seq, anchor.block_hash, anchor.votes, anchor.headers,
                                        number, value, proof)

    def _encode(self, kind: str, subject, anchors: dict[int, _Anchor], txs: list, states: list) -> bytes:
        links = self._links(max(anchors))
        return proof_file.encode(kind, self.genesis.chain_id, self.genesis.hash, subject,
                                 [self._anchor_record(a) for a in links],
                                 [self._anchor_record(anchors[seq]) for seq in sorted(anchors)], txs, states)
