"""A real chain built in-process (node.core.chain.Chain over a MemoryStore),
with commit certificates and stable checkpoint proofs signed by the genesis
validators' keys, as the consensus core makes them: what proof files are
built from in tests."""

from __future__ import annotations

from typing import Any

from consensus.messages import CheckpointProof
from ledger import codec
from ledger.block import NULL_DIGEST, Proposal
from ledger.certificate import PHASE_COMMIT, CommitCertificate, Vote, checkpoint_bytes, vote_bytes
from ledger.tx import Transaction
from node.core.chain import Chain, CommitResult
from node.core.config_history import ConfigHistory
from node.core.proofs import ProofBuilder
from tests.factories import make_genesis, make_store, make_tx
from tests.ledger.world import ORGS, ROLES

START_MS = 1_795_827_600_000         # 2026-11-28 09:00 UTC+8


class ProvenChain:
    def __init__(self, checkpoint_every: int = 4, signers: tuple[int, ...] = (0, 2, 3),
                 chain_id: str = "ynchain-test") -> None:
        self.genesis, self.validator_keys, self.accounts = make_genesis(
            accounts=tuple(ROLES), roles=ROLES, orgs=ORGS, chain_id=chain_id)
        self.keys = [self.validator_keys[v.name] for v in self.genesis.validators]
        self.store = make_store(self.genesis)
        self.chain = Chain(self.genesis, self.store)
        self.builder = ProofBuilder(self.genesis, self.store,
                                    ConfigHistory(self.genesis.config, self.store.scan_state))
        self.checkpoint_every = checkpoint_every
        self.signers = signers
        self._nonce = 0

    def tx(self, account: str, contract: str, method: str, args: Any) -> Transaction:
        self._nonce += 1
        return make_tx(self.accounts[account], self.genesis, contract, method, args,
                       nonce=self._nonce, valid_until=self.chain.height + 40)

    def commit(self, txs: list[Transaction] | None) -> CommitResult:
        """The next block (None: a null block), certified, and checkpointed
        when its height is a multiple of `checkpoint_every`."""
        height = self.chain.height + 1
        if txs is None:
            proposal, digest = None, NULL_DIGEST
        else:
            proposal = Proposal(self.genesis.chain_id, height, 0, self.genesis.validators[height % 4].name,
                                START_MS + 60_000 * height, tuple(txs))
            digest = proposal.digest()
        message = vote_bytes(PHASE_COMMIT, self.genesis.chain_id, 0, height, digest)
        votes = tuple(Vote(i, self.keys[i].sign(message)) for i in self.signers)
        result = self.chain.commit(height, proposal, CommitCertificate(0, height, digest, votes))
        if height % self.checkpoint_every == 0:
            self.checkpoint(height)
        return result

    def checkpoint(self, height: int) -> None:
        block_hash = self.store.get_block(height).hash
        message = checkpoint_bytes(self.genesis.chain_id, height, block_hash)
        proof = CheckpointProof(height, block_hash,
                                tuple(Vote(i, self.keys[i].sign(message)) for i in self.signers))
        self.store.put_checkpoint(height, codec.pack(proof.to_record()))

    def call(self, account: str, contract: str, method: str, args: Any) -> Transaction:
        tx = self.tx(account, contract, method, args)
        self.commit([tx])
        return tx
