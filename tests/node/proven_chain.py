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
    def __init__(self, checkpoint_every: int = 4, signers: tuple[str, ...] = ("node0", "node2", "node3"),
                 chain_id: str = "ynchain-test", governed: bool = False, **params: int) -> None:
        """`signers`: the validators that sign, in whichever set is in force at
        a height (the others are offline).  `governed`: the finance account is
        an admin, the only voting organisation's, so its proposals pass at
        once.  `params`: the genesis consensus parameters."""
        roles = {**ROLES, "finance": ("writer", "admin")} if governed else ROLES
        self.genesis, self.validator_keys, self.accounts = make_genesis(
            accounts=tuple(ROLES), roles=roles, orgs=ORGS, chain_id=chain_id, **params)
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
        """The next block (None: a null block), certified by the set in force
        at its height, and checkpointed when its height is a multiple of
        `checkpoint_every`."""
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
        if height % self.checkpoint_every == 0:
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
        self.store.put_checkpoint(height, codec.pack(CheckpointProof(height, block_hash, votes).to_record()))

    def call(self, account: str, contract: str, method: str, args: Any) -> Transaction:
        tx = self.tx(account, contract, method, args)
        self.commit([tx])
        return tx
