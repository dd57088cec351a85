"""A real chain built in-process (node.core.chain.Chain over a MemoryStore),
with commit certificates and stable checkpoint proofs signed by the genesis
validators' keys, as the consensus core makes them: what proof files are
built from in tests."""

from __future__ import annotations

import random
from typing import Any

import pytest

from consensus.messages import CheckpointProof
from ledger import codec
from ledger.genesis import Genesis
from ledger.proof_file import ProofError, verify
from ledger.block import NULL_DIGEST, Proposal
from ledger.certificate import PHASE_COMMIT, CommitCertificate, Vote, checkpoint_bytes, vote_bytes
from ledger.tx import Transaction
from node.core.chain import Chain, CommitResult
from node.core.config_history import ConfigHistory
from node.core.proofs import ProofBuilder, next_epoch_proof
from tests.factories import make_genesis, make_store, make_tx
from tests.ledger.test_fiscal import ISSUE, R
from tests.ledger.world import ORGS, ROLES

START_MS = 1_795_827_600_000         # 2026-11-28 09:00 UTC+8
EPOCHS, ANCHORS, TXS = 6, 7, 8          # sections of a proof file record (ledger.proof_file)


def rewrite(data: bytes, edit) -> bytes:
    """A proof file with `edit` applied to its decoded record."""
    rec = codec.unpack(data)
    edit(rec)
    return codec.pack(rec)


def assert_flips_refused(data: bytes, genesis: Genesis, seed: int, count: int = 1000) -> None:
    """Flip one bit at each of `count` seeded positions (every position of a
    smaller file): each variant is refused with a reason."""
    rng = random.Random(seed)
    for pos in rng.sample(range(len(data)), min(count, len(data))):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << rng.randrange(8)
        with pytest.raises(ProofError) as exc:
            verify(bytes(flipped), genesis)
        assert str(exc.value), pos


class ProvenChain:
    def __init__(self, signers: tuple[str, ...] = ("node0", "node2", "node3"),
                 chain_id: str = "ynchain-test", governed: bool = False, **params: int) -> None:
        """`signers`: the validators that sign, in whichever set is in force at
        a height (the others are offline).  `governed`: the finance account is
        an admin, the only voting organisation's, so its proposals pass at
        once.  `params`: the genesis consensus parameters (checkpoints every
        4 blocks unless they say otherwise)."""
        params.setdefault("checkpoint_interval", 4)
        roles = {**ROLES, "finance": ("writer", "admin")} if governed else ROLES
        self.genesis, self.validator_keys, self.accounts = make_genesis(
            accounts=tuple(ROLES), roles=roles, orgs=ORGS, chain_id=chain_id, **params)
        self.store = make_store(self.genesis)
        self.chain = Chain(self.genesis, self.store)
        self.builder = ProofBuilder(self.genesis, self.store,
                                    ConfigHistory(self.genesis.config, self.store.scan_state))
        self.signers = signers
        self._nonce = 0

    def tx(self, account: str, contract: str, method: str, args: Any) -> Transaction:
        self._nonce += 1
        return make_tx(self.accounts[account], self.genesis, contract, method, args,
                       nonce=self._nonce, valid_until=self.chain.height + 40)

    def commit(self, txs: list[Transaction] | None) -> CommitResult:
        """The next block (None: a null block), certified by the set in force
        at its height, and checkpointed at its epoch's checkpoint heights, as
        a node's core would (where the node persists its state tree)."""
        height = self.chain.height + 1
        epoch = self.chain.config.epoch_of(height)
        if txs is None:
            proposal, digest = None, NULL_DIGEST
        else:
            proposal = Proposal(self.genesis.chain_id, height, 0, epoch.names[height % epoch.n],
                                START_MS + 60_000 * height, tuple(txs))
            digest = proposal.digest()
        votes = self.sign(vote_bytes(PHASE_COMMIT, self.genesis.chain_id, 0, height, digest), epoch.names)
        result = self.chain.commit(height, proposal, CommitCertificate(0, height, digest, votes))
        if epoch.is_checkpoint(height):
            self.checkpoint(height)
        return result

    def sign(self, message: bytes, names: tuple[str, ...]) -> tuple[Vote, ...]:
        """The votes of `signers` over `message`, as members of the set `names`."""
        return tuple(Vote(i, self.validator_keys[name].sign(message))
                     for i, name in enumerate(names) if name in self.signers)

    def checkpoint(self, height: int) -> None:
        block_hash = self.store.get_block(height).hash
        message = checkpoint_bytes(self.genesis.chain_id, height, block_hash)
        votes = self.sign(message, self.chain.config.epoch_of(height).names)
        self.store.put_checkpoint(height, codec.pack(CheckpointProof(height, block_hash, votes).to_record()),
                                  next_epoch_proof(self.store, self.builder.history, height))

    def call(self, account: str, contract: str, method: str, args: Any) -> Transaction:
        tx = self.tx(account, contract, method, args)
        self.commit([tx])
        return tx


def two_changes(chain_id: str = "ynchain-test", unkept: int | None = None,
                keep_through: int | None = None) -> ProvenChain:
    """A governed chain whose validator set changes twice; `unkept`: a checkpoint
    this node never kept (as if it synced across it); `keep_through`: no
    checkpoint above it is kept, so the state tree is kept from the last one
    at or below it (a node whose older heights are still there).

    The story, checkpoints every 4 blocks (K = 4, W = 9; node1 is offline, so
    the signers are node0, node2 and node3 wherever they are in the set):
      1      receipt R issued                              epoch 0: node0..node3
      4      node0 demoted: epoch 1 at 16 (h + W = 13, next checkpoint 16)
      5      node1 demoted: the pending epoch 1 changes    epoch 1: node2, node3
             (5 + W <= 16; the state at checkpoint 4 still holds the first version)
      17     a kv put                                      (anchored at 20)
      18     node0 promoted: epoch 2 at 28                 epoch 2: node2, node3, node0
      29     a kv put; 30 R claimed; the tip is 32, a checkpoint
    """
    c = ProvenChain(governed=True, chain_id=chain_id, checkpoint_interval=4, window=9)
    keep = c.checkpoint
    c.checkpoint = lambda height: None if height == unkept or height > (keep_through or height) else keep(height)

    def gov(action: str, target: str) -> None:
        tx = c.call("finance", "gov", "propose", {"action": action, "target": target})
        receipt = c.store.get_tx(tx.id)[2]
        assert receipt.ok and receipt.result["status"] == "executed", receipt

    c.issue = c.call("hospital", "fiscal", "issue", ISSUE)
    c.commit(None)
    c.commit(None)
    gov("demote_node", "node0")
    gov("demote_node", "node1")
    while c.chain.height < 16:
        c.commit(None)
    c.put1 = c.call("finance", "kv", "put", {"key": "k", "value": 1})
    gov("promote_node", "node0")
    while c.chain.height < 28:
        c.commit(None)
    c.put2 = c.call("finance", "kv", "put", {"key": "k", "value": 2})
    c.call("insurance", "fiscal", "claim", {**R, "amount_cents": 42650})
    while c.chain.height < 32:
        c.commit(None)
    epochs = c.chain.config.epochs
    assert [(e.start, e.names) for e in epochs] == [
        (0, ("node0", "node1", "node2", "node3")), (16, ("node2", "node3")), (28, ("node2", "node3", "node0"))]
    return c
