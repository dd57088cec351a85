"""Proof files end to end: built from a real chain in-process
(tests/node/proven_chain.py), checked offline with only the genesis
(ledger.proof_file.verify), and every tampered variant refused with a reason."""

from __future__ import annotations

import dataclasses

import pytest

from ledger import proof_file
from ledger.proof_file import ProofError, describe, verify
from node.core.proofs import ProofUnavailable
from tests.ledger.test_fiscal import ISSUE, R
from tests.node.proven_chain import ANCHORS, TXS, ProvenChain, assert_flips_refused, rewrite


@pytest.fixture(scope="module")
def chain() -> ProvenChain:
    """Receipt R issued at height 1, a failed call at 2, a claim at 5 and its
    completion at 6, a null block, other receipts; checkpoints every 4 blocks
    up to 12; block 13 (the tip) is above the newest checkpoint."""
    c = ProvenChain()
    c.issue = c.call("hospital", "fiscal", "issue", ISSUE)
    c.failed = c.call("hospital", "fiscal", "issue", ISSUE)          # the number is taken: conflict
    c.commit([c.tx("finance", "kv", "put", {"key": "k", "value": 1})])
    c.commit(None)
    c.call("insurance", "fiscal", "claim", {**R, "amount_cents": 42650})
    c.call("insurance", "fiscal", "complete", R)
    for i in range(7):
        c.call("hospital", "fiscal", "issue", {**ISSUE, "number": f"000000200{i}", "payer_id_hash": "c3" * 32})
    assert c.chain.height == 13
    return c


def test_a_receipt_proof_says_what_a_clerk_needs(chain) -> None:
    data, at = chain.builder.receipt(R["code"], R["number"])
    assert at == 12
    proved = verify(data, chain.genesis)
    assert describe(proved) == (
        "receipt 53010126-0000001234 of 426.50 yuan, issued by Hospital (hospital) at height 1 "
        "(2026-11-28 01:01 UTC), reimbursed in full as of height 12, "
        "certified by 3 of 4 validators (node0, node2, node3)")
    assert proof_file.as_json(proved)["txs"][0]["committed_by"] == ["node0", "node2", "node3"]


def test_a_receipt_that_does_not_exist_is_proved_absent(chain) -> None:
    data, _ = chain.builder.receipt("53010126", "0000009999")
    assert describe(verify(data, chain.genesis)) == (
        "no fiscal receipt 53010126-0000009999 exists as of height 12, "
        "certified by 3 of 4 validators (node0, node2, node3)")


def test_tx_proofs_show_success_and_failure(chain) -> None:
    ok = describe(verify(chain.builder.tx(chain.issue.id), chain.genesis))
    assert ok.startswith(f"transaction {chain.issue.id.hex()} (fiscal.issue) is in block 1 ") and \
        "at position 0 and succeeded" in ok
    failed = describe(verify(chain.builder.tx(chain.failed.id), chain.genesis))
    assert "is in block 2 " in failed and "failed with conflict (" in failed


def test_state_proofs_members_non_members_and_older_heights(chain) -> None:
    data, at = chain.builder.state("kv", "entry/k", None)
    proved = verify(data, chain.genesis)
    assert at == 12 and describe(proved).startswith("state kv/entry/k holds ['finance', 1] as of height 12, certified")
    absent, _ = chain.builder.state("kv", "entry/nothing", None)
    assert describe(verify(absent, chain.genesis)).startswith("state kv/entry/nothing is absent as of height 12")
    # the state tree is kept from the newest checkpoint (12) up: block 3 wrote the
    # key, but heights below 12 are pruned, which is said (409, not 404)
    with pytest.raises(ProofUnavailable, match="keeps the state tree from height 12") as exc:
        chain.builder.state("kv", "entry/k", 3)
    assert not exc.value.missing


def test_what_cannot_be_proved_is_said(chain) -> None:
    with pytest.raises(ProofUnavailable, match="not covered by a stable checkpoint"):
        chain.builder.state("kv", "entry/k", 13)
    with pytest.raises(ProofUnavailable, match="not committed"):
        chain.builder.state("kv", "entry/k", 14)
    with pytest.raises(ProofUnavailable, match="no committed transaction") as exc:
        chain.builder.tx(bytes(32))
    assert exc.value.missing


def test_a_seeded_sample_of_flipped_bytes_is_always_refused(chain) -> None:
    data, _ = chain.builder.receipt(R["code"], R["number"])
    assert len(data) >= 1200
    assert_flips_refused(data, chain.genesis, seed=13, count=1200)


def test_signatures_dropped_or_reordered_are_refused(chain) -> None:
    data, _ = chain.builder.receipt(R["code"], R["number"])

    def drop(rec):
        rec[ANCHORS][0][0][2] = rec[ANCHORS][0][0][2][1:]
    with pytest.raises(ProofError, match="2 signatures, a quorum is 3 of 4"):
        verify(rewrite(data, drop), chain.genesis)

    def reorder(rec):
        rec[ANCHORS][0][0][2] = rec[ANCHORS][0][0][2][::-1]
    with pytest.raises(ProofError, match="not in validator order"):
        verify(rewrite(data, reorder), chain.genesis)

    def reorder_certificate(rec):
        rec[TXS][0][6][3] = rec[TXS][0][6][3][::-1]
    with pytest.raises(ProofError, match="not in validator order"):
        verify(rewrite(data, reorder_certificate), chain.genesis)

    def someone_else(rec):
        rec[ANCHORS][0][0][2][0][0] = 1                 # node0's signature presented as node1's
    with pytest.raises(ProofError, match="the signature of node1 does not verify"):
        verify(rewrite(data, someone_else), chain.genesis)


def test_another_blocks_header_is_refused(chain) -> None:
    data = chain.builder.tx(chain.failed.id)        # anchored at 4: headers 2, 3, 4
    other = chain.store.get_block(3).header

    def swap(rec):
        rec[ANCHORS][0][1][0] = dataclasses.replace(other, height=2, _hash=None).to_record()
    with pytest.raises(ProofError, match="header 3 does not link to header 2"):
        verify(rewrite(data, swap), chain.genesis)

    def swap_last(rec):
        rec[ANCHORS][0][1][-1] = chain.store.get_block(8).header.to_record()
    with pytest.raises(ProofError, match="is not the block it certifies"):
        verify(rewrite(data, swap_last), chain.genesis)

    def other_tx_height(rec):
        rec[TXS][0][0] = 3
    with pytest.raises(ProofError, match="Merkle path does not lead to the tx root of block 3"):
        verify(rewrite(data, other_tx_height), chain.genesis)


def test_a_proof_of_another_chain_is_refused(chain) -> None:
    other = ProvenChain(chain_id="another-chain")
    tx = other.call("hospital", "fiscal", "issue", ISSUE)
    for _ in range(3):
        other.commit(None)
    data = other.builder.tx(tx.id)
    assert "is in block 1" in describe(verify(data, other.genesis))
    with pytest.raises(ProofError, match="the proof is for chain 'another-chain'"):
        verify(data, chain.genesis)

    def claim_this_chain(rec):                    # relabelled: the signatures do not follow
        rec[3], rec[4] = chain.genesis.chain_id, chain.genesis.hash
    with pytest.raises(ProofError, match="header 1 belongs to chain|does not verify"):
        verify(rewrite(data, claim_this_chain), chain.genesis)


def test_garbage_and_other_versions_are_refused_clearly(chain) -> None:
    data = chain.builder.tx(chain.issue.id)
    for bad, reason in [(b"", "not a proof file"), (b"\x93\x01\x02\x03", "not a ynchain proof file"),
                        (rewrite(data, lambda r: r.__setitem__(1, 3)), "format 3; this ynchain reads format 2"),
                        (rewrite(data, lambda r: r.__setitem__(1, 1)), "format 1 .* rebuild the proof"),
                        (rewrite(data, lambda r: r.__setitem__(2, "poem")), "unknown proof kind"),
                        (rewrite(data, lambda r: r.__setitem__(5, bytes(32))), "proves no transaction"),
                        (data + b"\x00", "not a proof file")]:
        with pytest.raises(ProofError, match=reason):
            verify(bad, chain.genesis)
