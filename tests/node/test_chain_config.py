"""The node's Chain under governance: the configuration in force is swapped
at commit and rebuilt from the state at restart; proposals are judged under
it without stalling on changes in flight; a synced block's certificate is
checked against the validator set of its height."""

from __future__ import annotations

import pytest

from ledger.block import NULL_DIGEST, Block, Proposal
from ledger.certificate import PHASE_COMMIT, CommitCertificate, Vote, vote_bytes
from ledger.execution import genesis_state
from ledger.receipt import ERR_INVALID
from node.core.chain import Chain, SyncedBlockError
from storage.errors import CorruptStoreError
from storage.leveldb_store import open_store
from storage.memory_store import MemoryStore
from tests.factories import key_for, make_store, make_tx
from tests.ledger.gov_world import gov_genesis

GENESIS, VALIDATORS, ACCOUNTS = gov_genesis()
NODE5 = key_for("fresh", "node5")
_nonce = iter(range(1, 10**9))


class Memo:
    """A SignatureMemo of a node whose mempool holds none of the txs."""

    def tx_by_record(self, record):
        return None

    def is_pending(self, tx):
        return False

    def knows_valid(self, tx):
        return False

    def remember_verified(self, tx):
        pass


def tx(account, contract="kv", method="put", args=None, key=None):
    args = {"key": "k", "value": 1} if args is None else args
    return make_tx(key or ACCOUNTS[account], GENESIS, contract, method, args, nonce=next(_nonce), valid_until=900)


def certify(height, digest, signers):
    msg = vote_bytes(PHASE_COMMIT, GENESIS.chain_id, 0, height, digest)
    return CommitCertificate(0, height, digest, tuple(Vote(i, k.sign(msg)) for i, k in signers))


def signers_for(config, seq, count=None):
    keys = {k.public_key: k for k in (*VALIDATORS.values(), NODE5)}
    epoch = config.epoch_of(seq)
    chosen = list(enumerate(epoch.keys))[:count or epoch.quorum]
    return [(i, keys[k]) for i, k in chosen]


def commit(chain, txs=()):
    seq = chain.height + 1
    p = Proposal(GENESIS.chain_id, seq, 0, chain.config.epoch_of(seq).names[0], 1_800_000_000_000 + seq,
                 tuple(txs)) if txs else None
    digest = p.digest() if p else NULL_DIGEST
    return chain.commit(seq, p, certify(seq, digest, signers_for(chain.config, seq)))


def passed(chain, action, target, params=None):
    args = {"action": action, "target": target, **({"params": params} if params is not None else {})}
    r = commit(chain, [tx("finance-admin", "gov", "propose", args)])
    pid = r.receipts[0].result["id"]
    commit(chain, [tx("tax-admin", "gov", "approve", {"id": pid})])
    result = commit(chain, [tx("agriculture-admin", "gov", "approve", {"id": pid})])
    assert result.receipts[0].result["status"] == "executed", result.receipts[0]
    return result


def test_the_configuration_is_swapped_at_commit_and_rebuilt_at_restart(tmp_path):
    state, root = genesis_state(GENESIS.config)
    with open_store(tmp_path / "db", GENESIS.hash, initial_state=state) as store:
        chain = Chain(GENESIS, store)
        assert chain.config == GENESIS.config and store.last_state_root() == root
        result = passed(chain, "add_org", "bank")
        assert result.config is chain.config and chain.config.organisation("bank") is not None
        assert commit(chain).config is None                            # a block that changes nothing
        config, height = chain.config, chain.height
    with open_store(tmp_path / "db", GENESIS.hash, create=False) as store:
        reopened = Chain(GENESIS, store)
        assert reopened.height == height and reopened.config == config


def test_a_state_without_a_configuration_is_a_damaged_store():
    with pytest.raises(CorruptStoreError, match="consortium configuration in the state is missing"):
        Chain(GENESIS, MemoryStore(GENESIS.hash))


def test_proposals_are_judged_under_the_configuration_without_stalling_on_changes_in_flight():
    # The blocks of this test are dated 2027 (account validity needs a fixed time).
    chain = Chain(GENESIS, make_store(GENESIS), clock_ms=lambda: 1_900_000_000_000)
    stranger = tx(None, key=key_for("account", "stranger"))
    p = Proposal(GENESIS.chain_id, 1, 0, "node0", 1, (stranger,))
    assert "unknown_sender" in chain.check_proposal(1, p.encode(), Memo())
    # pipelined: a block in between may add the account; execution judges it then
    p3 = Proposal(GENESIS.chain_id, 3, 0, "node0", 1, (stranger,))
    assert isinstance(chain.check_proposal(3, p3.encode(), Memo()), Proposal)
    # a revocation between a primary's admission and the block is no reason to refuse
    # the proposal (that could stall the chain); execution refuses the tx
    passed(chain, "revoke_account", "tax-clerk")
    late = tx("tax-clerk")
    seq = chain.height + 1
    p = Proposal(GENESIS.chain_id, seq, 0, "node0", 1_800_000_000_000 + seq, (late,))
    assert isinstance(chain.check_proposal(seq, p.encode(), Memo()), Proposal)
    r = chain.commit(seq, p, certify(seq, p.digest(), signers_for(chain.config, seq)))
    assert (r.receipts[0].status, r.receipts[0].message) == (ERR_INVALID, "account_revoked")


def test_a_synced_block_is_checked_against_the_set_of_its_height():
    source = Chain(GENESIS, make_store(GENESIS))
    passed(source, "add_org", "bank")
    passed(source, "add_node", "node5", {"org": "bank", "public_key": NODE5.public_key.hex(),
                                         "p2p": "10.0.0.5:1", "api": "10.0.0.5:2"})
    passed(source, "promote_node", "node5")
    boundary = source.config.pending_boundary(source.height)
    assert boundary == 80 and source.config.epoch_of(81).n == 5
    while source.height < boundary + 2:
        commit(source)
    replica = Chain(GENESIS, make_store(GENESIS))
    for height in range(1, boundary + 1):
        replica.apply_synced(Block.decode(source.store.get_block_bytes(height)), source.store.get_certificate(height))
    block = Block.decode(source.store.get_block_bytes(boundary + 1))
    # three genesis validators were a quorum of the old set, not of the five in force at 81
    old_quorum = certify(boundary + 1, NULL_DIGEST, signers_for(GENESIS.config, 1))
    with pytest.raises(SyncedBlockError, match="3 votes, a quorum is 4"):
        replica.apply_synced(block, old_quorum)
    replica.apply_synced(block, source.store.get_certificate(boundary + 1))
    assert replica.store.last_block_hash() == source.store.get_block(boundary + 1).hash
    assert replica.config == source.config
