"""Building proof files (ledger.proof_file) from this node's store.

Everything in a file hangs from a kept stable checkpoint proof (Store.
checkpoint_at_or_above): the lowest one at or above the item's height, with
the headers from that height up to it.  A height above the newest kept
checkpoint is not provable yet (a checkpoint comes every K blocks, 16 by
default).  The state tree keeps every height's nodes, but the store keeps only
the newest values: a value is served for an older height only while it is
still the newest one (its hash matches the tree at that height).

No trio here: a request builds one file synchronously (reading at most one
block and MAX_HEADERS headers per anchor).
"""

from __future__ import annotations

from ledger import codec, config_state, proof_file
from ledger.block import Block, BlockHeader, tx_proof
from ledger.certificate import Vote
from ledger.codec import DecodeError
from ledger.contracts import REGISTRY, fiscal
from ledger.contracts.base import state_key
from ledger.execution import DUPLICATE_COMMITTED, DUPLICATE_IN_BLOCK, receipt_proof
from ledger.genesis import Genesis
from ledger.receipt import Receipt
from ledger.state_tree import value_hash
from storage.base import Store
from storage.errors import CorruptStoreError


RECENT = 256        # blocks below the tip where the newest kept checkpoint is looked for first


class ProofUnavailable(Exception):
    """This node cannot make the proof asked for; `missing` says whether the
    thing does not exist (404) rather than not being provable yet (409)."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class ProofBuilder:
    def __init__(self, genesis: Genesis, store: Store) -> None:
        self.genesis = genesis
        self.store = store

    # -- the three kinds ---------------------------------------------------------------
    def tx(self, tx_id: bytes) -> bytes:
        anchors: dict[int, list] = {}
        txs = [self._tx_item(tx_id, anchors)]
        return self._encode("tx", tx_id, anchors, txs, [])

    def state(self, contract: str, key: str, height: int | None) -> tuple[bytes, int]:
        """The file and the height it proves the key at (default: the newest
        kept checkpoint)."""
        skey = self._state_key(contract, key)
        anchors: dict[int, list] = {}
        at = self._state_height(height)
        states = [self._state_item(skey, at, anchors)]
        return self._encode("state", [contract, key], anchors, [], states), at

    def receipt(self, code: str, number: str) -> tuple[bytes, int]:
        """A fiscal receipt as of the newest kept checkpoint: its record (or
        its absence) and the transaction that issued it."""
        skey = state_key(fiscal.CONTRACT.name, fiscal.RECEIPTS, fiscal.receipt_key(code, number))
        anchors: dict[int, list] = {}
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
    def _tx_item(self, tx_id: bytes, anchors: dict[int, list]) -> list:
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
        if height is None:
            newest = self._newest_checkpoint()
            if newest is None:
                raise ProofUnavailable("no stable checkpoint is kept yet; retry once the chain has "
                                       "passed its first checkpoint")
            return newest
        if not 0 <= height <= self.store.last_height():
            raise ProofUnavailable(f"height {height} is not committed (the chain is at "
                                   f"{self.store.last_height()})", missing=True)
        return height

    def _newest_checkpoint(self) -> int | None:
        """The highest kept checkpoint at or below the tip.  The store reads
        forwards only; checkpoints come every K blocks, so walking up from a
        little below the tip takes a few reads (from 0 only on a young chain)."""
        tip = self.store.last_height()
        for start in (max(0, tip - RECENT), 0):
            best = None
            lo = start
            while (found := self.store.checkpoint_at_or_above(lo)) is not None:
                best, lo = found[0], found[0] + 1
            if best is not None:
                return best
        return None

    def _state_item(self, skey: bytes, height: int, anchors: dict[int, list]) -> list:
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
    def _anchor(self, height: int, anchors: dict[int, list]) -> None:
        if height == 0:
            raise ProofUnavailable("height 0 (the genesis state) has no header to anchor it; "
                                   "ask for height 1 or later")
        for seq, anchor in anchors.items():
            if seq >= height >= anchor[1][0][1]:       # the first header's height
                return
        found = self.store.checkpoint_at_or_above(height)
        if found is None:
            raise ProofUnavailable(f"height {height} is not covered by a stable checkpoint yet; retry "
                                   "in a few blocks")
        seq, raw = found
        try:
            rec = codec.expect_list(codec.unpack(raw), 3, "checkpoint proof")
            block_hash = codec.expect_bytes(rec[1], "checkpoint proof.digest", 32)
            if type(rec[2]) is not list:
                raise DecodeError("checkpoint proof.votes: expected an array")
            votes = tuple(Vote.from_record(v) for v in rec[2])
        except DecodeError as exc:
            raise CorruptStoreError(f"kept checkpoint proof {seq} does not decode: {exc}") from None
        if seq - height >= proof_file.MAX_HEADERS:
            raise ProofUnavailable(f"the nearest kept checkpoint above height {height} is {seq}, too far "
                                   "to carry every header in between")
        headers = [self._header(h) for h in range(height, seq + 1)]
        if headers[-1].hash != block_hash:
            raise CorruptStoreError(f"kept checkpoint proof {seq} is not for the stored block {seq}")
        anchors[seq] = proof_file.anchor_record(seq, block_hash, votes, headers)

    def _header(self, height: int) -> BlockHeader:
        raw = self.store.get_block_bytes(height)
        if raw is None:
            raise CorruptStoreError(f"block {height} is missing below the tip")
        try:
            return Block.decode_header(raw)[0]      # the txs stay undecoded
        except DecodeError as exc:
            raise CorruptStoreError(f"block {height} does not decode: {exc}") from None

    def _encode(self, kind: str, subject, anchors: dict[int, list], txs: list, states: list) -> bytes:
        return proof_file.encode(kind, self.genesis.chain_id, self.genesis.hash, subject,
                                 [anchors[seq] for seq in sorted(anchors)], txs, states)
