"""The doctor's look at a node's store: opened read-only in spirit (no block is
written; opening may bring the safety record copy up to date, as a start of
the node would) and only while the node is not running; a running node holds
the LevelDB lock, and then its tip is checked as its API serves it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.block import BlockHeader
from ledger.certificate import CommitCertificate, Vote
from ledger.genesis import Genesis
from node.config import NodeConfig
from storage.errors import StoreError, StoreLockedError
from storage.kv_store import refuse_if_voted
from storage.leveldb_store import open_store
from storage.safety_copy import SafetyCopy


@dataclass(frozen=True, slots=True)
class StoreFacts:
    height: int | None = None            # the tip, when the store opened
    absent: bool = False                 # no store yet: the node never started
    locked: bool = False                 # a process holds it (the node, presumably)
    error: StoreError | None = None      # it cannot be used
    tip_problem: str | None = None       # the tip block does not check out


def tip_problem(header: BlockHeader, block_hash: bytes, cert: CommitCertificate,
                genesis: Genesis) -> str | None:
    """None if the block is the one its certificate's quorum of genesis
    validators signed, else why not."""
    if header.hash != block_hash:
        return "the block's hash does not match its header"
    if cert.height != header.height:
        return f"the certificate is for height {cert.height}"
    if header.proposal_digest() != cert.digest:
        return "the certificate signs another block"
    problem = cert.problem(genesis.chain_id, genesis.validator_keys)
    return None if problem is None else f"invalid certificate: {problem}"


def tip_from_json(doc: Any) -> tuple[BlockHeader, bytes, CommitCertificate]:
    """A block as the API serves it (node.api.jsonview.block_to_json), back to
    the objects whose hashes and signatures can be checked.  Raises
    ValueError, KeyError or TypeError on a malformed document."""
    h, c = doc["header"], doc["certificate"]
    header = BlockHeader(h["chain_id"], int(h["height"]), int(h["view"]), bytes.fromhex(h["prev_hash"]),
                         bytes.fromhex(h["tx_root"]), bytes.fromhex(h["state_root"]),
                         bytes.fromhex(h["receipt_root"]), h["proposer"], int(h["timestamp_ms"]))
    votes = tuple(Vote(int(v["validator"]), bytes.fromhex(v["signature"])) for v in c["votes"])
    cert = CommitCertificate(int(c["view"]), int(c["height"]), bytes.fromhex(c["digest"]), votes)
    return header, bytes.fromhex(doc["hash"]), cert


def _is_empty_dir(path) -> bool:
    try:
        return path.is_dir() and next(path.iterdir(), None) is None
    except OSError:
        return False


def inspect_store(config: NodeConfig, genesis: Genesis) -> StoreFacts:
    """Open the store as the node would and check its tip block."""
    data = config.data_dir
    if not data.exists() or _is_empty_dir(data):
        copy = SafetyCopy(config.safety_dir)
        try:
            refuse_if_voted(str(data), copy, copy.load())
        except StoreError as exc:
            return StoreFacts(error=exc)
        return StoreFacts(absent=True)
    try:
        store = open_store(data, genesis.hash, create=False,
                           safety_dir=config.safety_dir)
    except StoreLockedError as exc:
        return StoreFacts(locked=True, error=exc)
    except StoreError as exc:
        return StoreFacts(error=exc)
    try:
        height = store.last_height()
        if height == 0:
            return StoreFacts(height=0)
        block, cert = store.get_block(height), store.get_certificate(height)
        if block is None or cert is None:
            return StoreFacts(height=height, tip_problem=f"block {height} or its certificate is missing")
        problem = tip_problem(block.header, store.last_block_hash(), cert, genesis)
        return StoreFacts(height=height, tip_problem=problem)
    except StoreError as exc:       # damage found while reading the tip
        return StoreFacts(error=exc)
    finally:
        store.close()
