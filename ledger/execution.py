"""The execution engine: apply a committed block's transactions to the state.

Every node runs `execute_block` on the same committed blocks in the same order,
so it must be a pure function of its inputs: no clock, no randomness, no I/O,
no iteration over unordered containers that could leak into the result.

Contracts are looked up by name and block height (ledger.contracts.contract_at
over the genesis's schedule), so a block always runs under the rule version
that was active at its height, also when it is executed again years later.
A contract sees the block's timestamp (`CallContext.time_ms`), never a clock.

The consortium configuration (ledger.consortium.ChainConfig) in force decides
who may send: each tx's sender is resolved through it (ledger.admission).  A
gov call that changes it writes the configuration records (ledger.config_state),
and the engine derives the new configuration from those writes at once, so the
block's later txs run under it (a key revoked earlier in the block signs
nothing after); the block's result carries the configuration it ends with.

Per-tx write sets: a call writes into its own dict; on success the dict is
merged into the block's write set (so later txs of the block read it), on
failure it is dropped, so a failed tx leaves no trace in the state.  The
receipt says what happened either way.

Txs that admission would have refused (duplicate, wrong chain, a sender that
is unknown, revoked, expired or rotated out, outside the validity window) get
an error receipt and no effect.  Honest
primaries never propose them, but a faulty one may, and every node must then
still compute the same thing.  Signatures are not checked again here: every
validator checked them before voting for the block.

State root.  The root of the state tree (ledger.state_tree) over the whole
state after the block: every contract's tables, the gov/ configuration
included.  `execute_block` applies the block's write set to the tree as one
batched update at version = height, persisted at checkpoint heights only,
so a header's state root commits to what every key holds, and a state proof
shows it to anyone holding the certified header.  The tree's root depends only
on the set of key/value pairs, and the write set only on the committed
history (deterministic execution), so two nodes with the same history agree.

Receipt root.  A binary Merkle root (ledger.merkle, like the tx root) over
one item per tx, in block order: RECEIPT_DOMAIN ‖ the tx's index in the
block (4 bytes big-endian) ‖ its id ‖ the canonical msgpack of the receipt
record [status, message, result] with a 4-byte big-endian length prefix
(`receipt_item`).  The index and id bind a receipt to its tx: two txs with
equal receipts (or a repeated tx id, whose repeat gets `duplicate`) still
have different items.  So "this tx failed with conflict" is
provable with the header, as the tx itself is with the tx root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from . import admission, codec, config_state
from .consortium import ChainConfig
from .contracts import REGISTRY, Contract, contract_at
from .contracts.base import CallContext, ContractState, ReadState, StateReader, Writes
from .errors import ContractError
from .merkle import merkle_proof, merkle_root, verify_proof
from .receipt import (ERR_DUPLICATE, ERR_EXPIRED, ERR_INVALID, ERR_UNKNOWN_CONTRACT,
                      ERR_UNKNOWN_METHOD, OK, Receipt)
from .state_tree import MemoryNodeStore, StateTree, UpdateResult
from .tx import Transaction

RECEIPT_DOMAIN = b"ynchain/receipt/v1\x00"
# What a repeated tx id gets.  The tx index keeps a tx id's first commit only,
# so a proof builder rebuilds a block's repeats' receipts from these.
DUPLICATE_IN_BLOCK = Receipt(ERR_DUPLICATE, "transaction appears earlier in this block")
DUPLICATE_COMMITTED = Receipt(ERR_DUPLICATE, "transaction already committed")
MAX_MESSAGE_LEN = 1024            # Receipt.from_record's bound

_MISSING = object()
# What a tx that fails admission gets (all but the signature, see module doc).
_ADMISSION_STATUS = {
    admission.WRONG_CHAIN: ERR_INVALID,
    admission.UNKNOWN_SENDER: ERR_INVALID,
    admission.KEY_ROTATED: ERR_INVALID,
    admission.ACCOUNT_REVOKED: ERR_INVALID,
    admission.KEY_EXPIRED: ERR_INVALID,
    admission.TOO_FAR_AHEAD: ERR_INVALID,
    admission.EXPIRED: ERR_EXPIRED,
}


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    receipts: tuple[Receipt, ...]          # one per tx, in block order
    writes: Writes                         # what to apply to the state store
    tree: UpdateResult                     # the state tree's nodes for the block (Store.commit)
    receipt_root: bytes
    config: ChainConfig | None = None      # the configuration after the block, if it changed it

    @property
    def state_root(self) -> bytes:
        return self.tree.root


def receipt_item(index: int, tx_id: bytes, receipt: Receipt,
                 pack: Callable[[Any], bytes] = codec.pack) -> bytes:
    """The Merkle item of the receipt of the tx at `index` in its block (module doc)."""
    body = pack(receipt.to_record())
    return RECEIPT_DOMAIN + index.to_bytes(4, "big") + tx_id + len(body).to_bytes(4, "big") + body


def _receipt_items(txs: Sequence[Transaction], receipts: Sequence[Receipt]) -> list[bytes]:
    pack = codec.packer()
    return [receipt_item(i, tx.id, r, pack) for i, (tx, r) in enumerate(zip(txs, receipts, strict=True))]


def receipt_root(txs: Sequence[Transaction], receipts: Sequence[Receipt]) -> bytes:
    return merkle_root(_receipt_items(txs, receipts))


def receipt_proof(txs: Sequence[Transaction], receipts: Sequence[Receipt],
                  index: int) -> list[tuple[bool, bytes]]:
    """Inclusion proof of receipts[index] (of txs[index]) in receipt_root(txs, receipts)."""
    return merkle_proof(_receipt_items(txs, receipts), index)


def verify_receipt_proof(index: int, tx_id: bytes, receipt: Receipt,
                         proof: list[tuple[bool, bytes]], root: bytes) -> bool:
    return verify_proof(receipt_item(index, tx_id, receipt), proof, root)


def genesis_state(config: ChainConfig) -> tuple[Writes, bytes]:
    """The state a new store starts with (the genesis configuration's records,
    storage.open_store's initial_state) and its state tree root (version 0)."""
    writes = config_state.genesis_state(config)
    return writes, StateTree(MemoryNodeStore()).apply(0, writes).root


def execute_block(config: ChainConfig, get_state: ReadState, height: int,
                  txs: Sequence[Transaction], tree: StateTree,
                  is_committed: Callable[[bytes], bool], *, timestamp_ms: int) -> ExecutionResult:
    """Execute block `height` (>= 1), proposed at `timestamp_ms`, on top of the
    state `get_state` reads (the state after height-1, under which `config` is
    in force, and whose state tree is `tree`, at version height-1).  The
    block's writes are applied to `tree` as version `height`: the caller
    stores `result.tree` or rewinds the tree.  `is_committed(tx_id)` answers
    for txs of earlier blocks; duplicates inside the block are found here."""
    if height < 1:
        raise ValueError(f"block height must be >= 1, got {height}")
    block_writes: Writes = {}
    schedule = config.contract_schedule
    pack = codec.packer()
    start_config = config

    def read(key: bytes) -> bytes | None:
        value = block_writes.get(key, _MISSING)
        return get_state(key) if value is _MISSING else value

    seen: set[bytes] = set()
    receipts = []
    for tx in txs:
        tx_id = tx.id
        if tx_id in seen:
            receipts.append(DUPLICATE_IN_BLOCK)
            continue
        if is_committed(tx_id):
            receipts.append(DUPLICATE_COMMITTED)
            continue
        seen.add(tx_id)
        problem = admission.problem(tx, height - 1, config, timestamp_ms)
        if problem is not None:
            receipts.append(Receipt(_ADMISSION_STATUS[problem], problem))
            continue
        ctx = CallContext(config.account_by_key(tx.sender), height, tx_id, timestamp_ms, config)
        receipt, tx_writes = _call(ctx, contract_at(schedule, tx.contract, height), tx, read, pack)
        receipts.append(receipt)
        if receipt.ok:
            block_writes.update(tx_writes)
            if tx.contract == config_state.CONTRACT:
                config = config_state.apply_writes(config, tx_writes) or config
    # The tree persists at the heights proofs are anchored at, checkpoints
    # (node.core.proofs); the others' pages stay in memory (ledger.state_tree.tree).
    persist = start_config.epoch_of(height).is_checkpoint(height)
    return ExecutionResult(tuple(receipts), block_writes, tree.apply(height, block_writes, persist=persist),
                           receipt_root(txs, receipts), None if config is start_config else config)


def _call(ctx: CallContext, contract: Contract | str, tx: Transaction, read: ReadState,
          pack: Callable[[Any], bytes]) -> tuple[Receipt, Writes]:
    if type(contract) is str:
        return Receipt(ERR_UNKNOWN_CONTRACT, contract), {}
    method = contract.methods.get(tx.method)
    if method is None:
        return Receipt(ERR_UNKNOWN_METHOD, f"contract {contract.name} (version {contract.version}) "
                                           f"has no method {tx.method!r}"), {}
    writes: Writes = {}
    try:
        result = method(ctx, ContractState(contract.name, read, writes, pack), tx.args)
    except ContractError as exc:
        return Receipt(exc.code, exc.message[:MAX_MESSAGE_LEN]), {}
    return Receipt(OK, "", result), writes


def query_state(get_state: ReadState, contract: str, key: str) -> Any | None:
    """The decoded value a contract shows for `key`; None if absent, which
    includes every key of a contract that does not exist.  The newest version's
    query answers: it reads the records of every earlier version too."""
    found = REGISTRY.get(contract)
    if found is None:
        return None
    return found.query(StateReader(found.name, get_state), key)
