"""Replay: executing the committed blocks again from genesis, as a node that
syncs the whole chain does, gives the same state root at every height, also
across the height where a contract's new rules activate."""

from __future__ import annotations

import pytest

from cli.workload import mixed_round
from ledger.block import NULL_DIGEST, Proposal
from ledger.certificate import PHASE_COMMIT, CommitCertificate, Vote, vote_bytes
from node.core.chain import Chain, SyncedBlockError
from tests.factories import make_genesis, make_store, make_tx
from tests.ledger.chain import BLOCK_INTERVAL_MS, START_MS
from tests.ledger.world import ORGS, ROLES

ACTIVATION = 6           # fiscal v2 from this height; v1 before
ACCOUNTS_ROLES = {**ROLES, "finance": ("writer",)}
PARTIES = {"hospital": "hospital", "insurance": "insurance", "insurer": "insurer", "coop": "coop",
           "workshop": "workshop", "lab": "lab", "core": "core", "supplier": "steel",
           "supplier2": "bearings", "bank": "bank"}


def genesis_with(schedule: dict | None):
    return make_genesis(accounts=tuple(ACCOUNTS_ROLES), roles=ACCOUNTS_ROLES, orgs=ORGS,
                        contract_versions=schedule)


GENESIS, VALIDATORS, ACCOUNTS = genesis_with({"fiscal": {"1": 1, "2": ACTIVATION}})
KEYS = [VALIDATORS[v.name] for v in GENESIS.validators]


def certify(height: int, digest: bytes) -> CommitCertificate:
    msg = vote_bytes(PHASE_COMMIT, GENESIS.chain_id, 0, height, digest)
    return CommitCertificate(0, height, digest, tuple(Vote(i, KEYS[i].sign(msg)) for i in (0, 1, 2)))


def fresh_chain(genesis=GENESIS) -> Chain:
    return Chain(genesis, make_store(genesis))


def block_txs(height: int) -> list:
    """Each block: the business contracts' dependent round, kv writes, and fiscal
    calls in both versions' forms (one of the two is refused, depending on the height)."""
    nonce = height * 100
    calls = mixed_round(height, 4242, ["a1" * 32, "b2" * 32], PARTIES)
    calls += [("finance", "kv", "put", {"key": f"k{height % 3}", "value": height}),
              ("finance", "fiscal", "issue", {"receipt_no": f"FP-{height}", "amount_cents": 100 + height,
                                              "payer": "Ms. Li"}),
              ("finance", "fiscal", "reimburse", {"receipt_no": f"FP-{height - 1}", "claimant": "Ms. Li"})]
    return [make_tx(ACCOUNTS[account], GENESIS, contract, method, args, nonce=nonce + i,
                    valid_until=height + 100)
            for i, (account, contract, method, args) in enumerate(calls)]


@pytest.fixture(scope="module")
def original() -> Chain:
    """12 committed blocks; every fourth is a null block (a view change's)."""
    chain = fresh_chain()
    for height in range(1, 13):
        if height % 4 == 0:
            chain.commit(height, None, certify(height, NULL_DIGEST))
            continue
        proposal = Proposal(GENESIS.chain_id, height, 0, "node0", START_MS + height * BLOCK_INTERVAL_MS,
                            tuple(block_txs(height)))
        chain.commit(height, proposal, certify(height, proposal.digest()))
    return chain


def receipts(chain: Chain, height: int) -> dict[str, str]:
    """method -> receipt status of the fiscal v1 calls and a v2 call at `height`."""
    block = chain.store.get_block(height)
    out = {}
    for tx in block.txs:
        if tx.contract == "fiscal" and tx.method in ("issue", "reimburse", "claim"):
            label = f"{tx.method}-{'v1' if 'receipt_no' in tx.args else 'v2'}"
            out[label] = chain.store.get_tx(tx.id)[2].status_name
    return out


def test_the_history_crosses_the_activation_height(original) -> None:
    assert receipts(original, 2) == {"issue-v2": "permission_denied", "claim-v2": "unknown_method",
                                     "issue-v1": "ok", "reimburse-v1": "ok"}
    assert receipts(original, ACTIVATION + 1) == {"issue-v2": "ok", "claim-v2": "ok",
                                                  "issue-v1": "permission_denied", "reimburse-v1": "unknown_method"}
    roots = [original.store.get_block(h).header.state_root for h in range(1, 13)]
    assert len(set(roots)) == 9          # every non-null block changed the state


def test_replay_from_genesis_reaches_the_same_root_at_every_height(original) -> None:
    replica = fresh_chain()
    for height in range(1, original.height + 1):
        block = original.store.get_block(height)
        replica.apply_synced(block, original.store.get_certificate(height))   # re-executes, checks the hash
        assert replica.store.last_state_root() == block.header.state_root, height
        assert replica.store.last_block_hash() == block.hash
    prefix = b""
    assert replica.store.scan_state(prefix, None, 1000) == original.store.scan_state(prefix, None, 1000)


def test_the_same_blocks_under_other_rules_do_not_replay(original) -> None:
    """Without the activation height (v2 from height 1) the first block already
    executes differently: the schedule is what keeps old blocks' outcomes."""
    genesis, _, _ = genesis_with(None)
    replica = fresh_chain(genesis)
    with pytest.raises(SyncedBlockError, match="block 1: re-execution gives another header"):
        replica.apply_synced(original.store.get_block(1), original.store.get_certificate(1))
