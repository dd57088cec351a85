"""Proof files across validator-set changes: built in-process from a chain
whose set governance changes twice (tests/node/proven_chain.py), checked
offline with only the genesis, and every way of getting the history wrong
refused with a reason (ledger.proof_file, "Which set signs").

The chain: `tests.node.proven_chain.two_changes`.
"""

from __future__ import annotations

import pytest

from ledger import codec, proof_file
from ledger.proof_file import ProofError, describe, verify
from ledger.state_tree import root_key
from node.core.proofs import ProofUnavailable
from tests.ledger.test_fiscal import R
from tests.node.proven_chain import ANCHORS, EPOCHS, ProvenChain, assert_flips_refused, rewrite, two_changes

NEXT = 2                                    # an anchor's next-epoch proof: [number, value, proof]


@pytest.fixture(scope="module")
def chain() -> ProvenChain:
    return two_changes()


def test_a_tx_after_two_changes_verifies_against_genesis_and_names_the_new_signers(chain) -> None:
    data = chain.builder.tx(chain.put2.id)
    proved = verify(data, chain.genesis)
    assert [e.start for e in proved.epochs] == [0, 16, 28]
    assert [a[0][0] for a in codec.unpack(data)[EPOCHS]] == [16, 28]     # one link per change
    said = describe(proved)
    assert said.startswith(f"transaction {chain.put2.id.hex()} (kv.put) is in block 29 ")
    assert said.endswith("certified by 3 of 3 validators (node2, node3, node0) of the set in force "
                         "from height 29")
    assert proved.txs[0].committers == ("node2", "node3", "node0")
    doc = proof_file.as_json(proved)
    assert doc["epochs"] == [
        {"number": 0, "from_height": 1, "validators": ["node0", "node1", "node2", "node3"]},
        {"number": 1, "from_height": 17, "validators": ["node2", "node3"]},
        {"number": 2, "from_height": 29, "validators": ["node2", "node3", "node0"]}]
    assert doc["anchors"] == [{"height": 32, "epoch": 2, "signers": ["node2", "node3", "node0"],
                               "headers": [29, 32]}]


def test_a_tx_in_the_middle_epoch_is_certified_by_that_set(chain) -> None:
    proved = verify(chain.builder.tx(chain.put1.id), chain.genesis)
    assert [e.number for e in proved.epochs] == [0, 1]                  # no link past its anchor
    assert describe(proved).endswith("certified by 2 of 2 validators (node2, node3) of the set in force "
                                     "from height 17")


def test_a_tx_before_any_change_needs_no_link_and_keeps_its_sentence(chain) -> None:
    data = chain.builder.tx(chain.issue.id)
    assert codec.unpack(data)[EPOCHS] == []
    # the state at its anchor (4) holds epoch 1 as first decided (node1..node3), which
    # changed at 5: the builder proves the record as it was there, from the history
    assert codec.unpack(codec.unpack(data)[ANCHORS][0][NEXT][1])[1] == [
        [name, chain.validator_keys[name].public_key] for name in ("node1", "node2", "node3")]
    assert describe(verify(data, chain.genesis)).endswith(
        "certified by 3 of 4 validators (node0, node2, node3)")


def test_a_receipt_proof_spans_the_epochs(chain) -> None:
    data, at = chain.builder.receipt(R["code"], R["number"])
    assert at == 32
    proved = verify(data, chain.genesis)
    assert [a.epoch.number for a in proved.anchors] == [0, 2]           # issued at 1, status at 32
    assert describe(proved) == (
        "receipt 53010126-0000001234 of 426.50 yuan, issued by Hospital (hospital) at height 1 "
        "(2026-11-28 01:01 UTC), not reimbursed, 426.50 yuan locked for reimbursement as of height 32, "
        "certified by 3 of 3 validators (node2, node3, node0) of the set in force from height 29")
    assert proved.txs[0].committers == ("node0", "node2", "node3")      # block 1: the genesis set


def test_state_proofs_members_and_non_members_after_the_changes(chain) -> None:
    data, at = chain.builder.state("kv", "entry/k", None)
    assert at == 32 and describe(verify(data, chain.genesis)).startswith("state kv/entry/k holds ['finance', 2] as of height 32")
    absent, _ = chain.builder.state("kv", "entry/nothing", None)
    said = describe(verify(absent, chain.genesis))
    assert said.startswith("state kv/entry/nothing is absent as of height 32") and "(node2, node3, node0)" in said
    # the validator-set records themselves are provable like any state
    record, _ = chain.builder.state("gov", "epoch/000002", None)
    assert "as of height 32" in describe(verify(record, chain.genesis))
    # heights below the newest checkpoint are pruned here
    with pytest.raises(ProofUnavailable, match="keeps the state tree from height 32"):
        chain.builder.state("kv", "entry/nothing", 20)


def test_state_proofs_in_the_middle_epoch_where_its_heights_are_kept() -> None:
    """A node whose newest checkpoint is 20 (none above is kept) keeps the state
    tree from 20: proofs there are certified by epoch 1's set."""
    c = two_changes(keep_through=20)
    for _ in range(3):
        c.commit(None)                  # commits prune up to the newest checkpoint
    said = describe(verify(c.builder.state("kv", "entry/nothing", 20)[0], c.genesis))
    assert said == ("state kv/entry/nothing is absent as of height 20, certified by 2 of 2 validators "
                    "(node2, node3) of the set in force from height 17")
    # at 20 the key held 1, rewritten at 29 (this node keeps the newest values only: said so)
    with pytest.raises(ProofUnavailable, match="changed since height 20"):
        c.builder.state("kv", "entry/k", 20)
    with pytest.raises(ProofUnavailable, match="keeps the state tree from height 20"):
        c.builder.state("kv", "entry/k", 16)
    # above it, the tree is persisted at checkpoint heights (24, 28, 32) and kept at the tip (35)
    with pytest.raises(ProofUnavailable, match="at checkpoint heights only .* height 22 is not one: "
                                               "ask for height 20"):
        c.builder.state("kv", "entry/nothing", 22)
    with pytest.raises(ProofUnavailable, match="not covered by a stable checkpoint"):
        c.builder.state("kv", "entry/nothing", 24)


# -- getting the history wrong ------------------------------------------------------------

@pytest.fixture(scope="module")
def receipt_file(chain) -> bytes:
    return chain.builder.receipt(R["code"], R["number"])[0]


def test_a_dropped_link_is_refused(chain, receipt_file) -> None:
    with pytest.raises(ProofError, match=r"epoch link 0 \(checkpoint at height 28\) is placed in epoch 1.*"
                                         r"link for epoch 1 is missing"):
        verify(rewrite(receipt_file, lambda r: r[EPOCHS].pop(0)), chain.genesis)
    with pytest.raises(ProofError, match=r"anchor 1 \(checkpoint at height 32\).*link for epoch 2 is missing"):
        verify(rewrite(receipt_file, lambda r: r[EPOCHS].pop()), chain.genesis)
    with pytest.raises(ProofError, match="link for epoch 1 is missing"):
        verify(rewrite(receipt_file, lambda r: r.__setitem__(EPOCHS, [])), chain.genesis)


def test_links_out_of_order_or_twice_are_refused(chain, receipt_file) -> None:
    with pytest.raises(ProofError, match=r"epoch link 0 .*link for epoch 1 is missing or out of order"):
        verify(rewrite(receipt_file, lambda r: r[EPOCHS].reverse()), chain.genesis)

    def twice(rec):
        rec[EPOCHS].insert(1, rec[EPOCHS][0])
    with pytest.raises(ProofError, match=r"epoch link 1 \(checkpoint at height 16\) lies in epoch 0, before "
                                         r"the last epoch the links up to it establish \(1\)"):
        verify(rewrite(receipt_file, twice), chain.genesis)

    def not_a_boundary(rec):                 # the anchor at 32 presented as a link: no epoch starts there
        rec[EPOCHS].append(rec[ANCHORS][1])
    with pytest.raises(ProofError, match=r"epoch link 2: no epoch starts at its checkpoint \(height 32\)"):
        verify(rewrite(receipt_file, not_a_boundary), chain.genesis)


def test_an_altered_epoch_record_is_refused(chain, receipt_file) -> None:
    def forge(rec):                          # epoch 1 said to be node0 and node2: another value
        link = rec[EPOCHS][0]
        record = codec.unpack(link[NEXT][1])
        record[1] = [[name, chain.validator_keys[name].public_key] for name in ("node0", "node2")]
        link[NEXT][1] = codec.pack(record)
    with pytest.raises(ProofError, match=r"epoch link 0 \(checkpoint at height 16\): the proof of validator-set "
                                         r"record gov/epoch/000001 does not hold: the proof shows the key "
                                         r"holding another value"):
        verify(rewrite(receipt_file, forge), chain.genesis)

    def absent(rec):                         # the record claimed absent: the proof says otherwise
        rec[EPOCHS][0][NEXT][1] = None
    with pytest.raises(ProofError, match="gov/epoch/000001 does not hold: the proof shows the key present"):
        verify(rewrite(receipt_file, absent), chain.genesis)


def test_an_anchor_signed_by_the_old_set_after_the_boundary_is_refused(chain, receipt_file) -> None:
    genesis_names = tuple(v.name for v in chain.genesis.validators)

    def old_set(rec):                        # node0, node2, node3 sign 32 as members of epoch 0's set
        checkpoint = rec[ANCHORS][1][0]
        message = proof_file.checkpoint_bytes(chain.genesis.chain_id, 32, checkpoint[1])
        checkpoint[2] = [v.to_record() for v in chain.sign(message, genesis_names)]
    with pytest.raises(ProofError, match=r"checkpoint at height 32: the signature of node2 does not verify "
                                         r"\(the set of epoch 2\)"):
        verify(rewrite(receipt_file, old_set), chain.genesis)

    def old_set_and_no_links(rec):           # ... and the links dropped, the anchor's proof of the
        rec[EPOCHS] = []                     # next epoch swapped for the (genuine) one of epoch 1
        old_set(rec)
        epoch1, _ = chain.builder.state("gov", "epoch/000001", 32)
        state = codec.unpack(epoch1)[9][0]
        rec[ANCHORS][1][NEXT] = [1, state[2], state[3]]
    with pytest.raises(ProofError, match=r"anchor 1 \(checkpoint at height 32\) lies in epoch 1, which starts "
                                         r"at height 16; .* the link for epoch 1 is missing"):
        verify(rewrite(receipt_file, old_set_and_no_links), chain.genesis)

    def below_quorum(rec):                   # the link at 16 keeps one of epoch 0's signatures
        checkpoint = rec[EPOCHS][0][0]
        checkpoint[2] = checkpoint[2][:1]
    with pytest.raises(ProofError, match="checkpoint at height 16: 1 signatures, a quorum is 3 of 4"):
        verify(rewrite(receipt_file, below_quorum), chain.genesis)


def test_a_link_from_another_chain_is_refused(chain, receipt_file) -> None:
    other = two_changes("another-chain")
    foreign = other.builder.tx(other.put2.id)
    assert verify(foreign, other.genesis).epochs[-1].start == 28

    def swap(rec):
        rec[EPOCHS][0] = codec.unpack(foreign)[EPOCHS][0]
    with pytest.raises(ProofError, match="header 16 belongs to chain 'another-chain'"):
        verify(rewrite(receipt_file, swap), chain.genesis)


def test_a_seeded_sample_of_flipped_bytes_in_a_file_with_links_is_refused(chain, receipt_file) -> None:
    assert_flips_refused(receipt_file, chain.genesis, seed=11)


def test_a_node_without_the_boundary_checkpoint_says_so() -> None:
    thin = two_changes(unkept=28)
    with pytest.raises(ProofUnavailable, match="keeps no stable checkpoint at height 28, where the "
                                               "validator set changed"):
        thin.builder.tx(thin.put2.id)
    assert "block 17" in describe(verify(thin.builder.tx(thin.put1.id), thin.genesis))   # before it: fine


def test_files_anchored_where_the_state_tree_is_pruned_still_verify() -> None:
    """Once the tree is pruned up to checkpoint 40, the anchors at 4 (the issue),
    20 (put1) and the links at 16 and 28 have lost their tree versions: their
    next-epoch proofs were kept with the checkpoints, so the files still build
    and verify across both changes."""
    c = two_changes()
    for _ in range(11):
        c.commit(None)                              # checkpoints 36, 40; commits to 43 prune to 40
    assert c.store.newest_checkpoint() == 40
    for version in (4, 16, 20, 28, 39):
        assert c.store._kv.get(b"n/" + root_key(version)) is None, version
    issued = verify(c.builder.tx(c.issue.id), c.genesis)
    assert [a.seq for a in issued.anchors] == [4] and issued.txs[0].committers == ("node0", "node2", "node3")
    put1 = verify(c.builder.tx(c.put1.id), c.genesis)
    assert [e.start for e in put1.epochs] == [0, 16]
    assert describe(put1).endswith("certified by 2 of 2 validators (node2, node3) of the set in force "
                                   "from height 17")
    data, at = c.builder.receipt(R["code"], R["number"])
    proved = verify(data, c.genesis)
    assert at == 40 and [e.start for e in proved.epochs] == [0, 16, 28]
    assert [a.seq for a in proved.anchors] == [4, 40]
    # the anchor at 4 still proves the record of epoch 1 as decided then (node1..node3)
    assert codec.unpack(codec.unpack(c.builder.tx(c.issue.id))[ANCHORS][0][NEXT][1])[1] == [
        [name, c.validator_keys[name].public_key] for name in ("node1", "node2", "node3")]
    with pytest.raises(ProofUnavailable, match="keeps the state tree from height 40") as exc:
        c.builder.state("kv", "entry/k", 32)
    assert not exc.value.missing
