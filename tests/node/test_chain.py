"""Chain: executing ordered proposals into stored blocks, and checking blocks
served by peers (certificate, proposal digest, re-execution)."""

import dataclasses

import pytest

from ledger.block import NULL_DIGEST, Block, Proposal
from ledger.certificate import PHASE_COMMIT, CommitCertificate, Vote, vote_bytes
from ledger.execution import genesis_state
from ledger.state_tree import check
from node.core.chain import Chain, SyncedBlockError
from storage import open_store
from tests.factories import make_genesis, make_store, make_tx

GENESIS, VALIDATORS, ACCOUNTS = make_genesis()
KEYS = [VALIDATORS[v.name] for v in GENESIS.validators]


def certify(height, digest, view=0, signers=(0, 1, 2)):
    msg = vote_bytes(PHASE_COMMIT, GENESIS.chain_id, view, height, digest)
    return CommitCertificate(view, height, digest, tuple(Vote(i, KEYS[i].sign(msg)) for i in signers))


def new_chain():
    return Chain(GENESIS, make_store(GENESIS))


def proposal(height, txs, view=0):
    return Proposal(GENESIS.chain_id, height, view, "node0", 1_700_000_000_000 + height, tuple(txs))


def txs(n, start=0):
    return [make_tx(ACCOUNTS["finance"], GENESIS, args={"key": f"k{i}", "value": i}, nonce=i)
            for i in range(start, start + n)]


def build(chain, n_blocks):
    out = []
    for h in range(1, n_blocks + 1):
        p = proposal(h, txs(3, 10 * h)) if h % 3 else None   # every third block is null
        cert = certify(h, p.digest() if p else NULL_DIGEST)
        out.append(chain.commit(h, p, cert))
    return out


def test_commit_executes_and_links_blocks():
    chain = new_chain()
    results = build(chain, 6)
    assert chain.height == 6
    for prev, cur in zip(results, results[1:]):
        assert cur.block.header.prev_hash == prev.block.hash
    null = results[2].block
    assert null.header.is_null and null.txs == () and null.header.view == results[1].block.header.view
    assert all(r.ok for r in results[0].receipts)
    assert chain.store.get_tx(results[0].block.txs[0].id)[0] == 1


class Memo:
    """A SignatureMemo that records the signatures it is told about; `pooled`
    txs are those of a mempool (looked up by their record bytes)."""

    def __init__(self, known=(), pooled=()):
        self.known = {(t.id, t.signature) for t in known}
        self.remembered = []
        self.pooled = {t.record_bytes: t for t in pooled}

    def tx_by_record(self, record):
        return self.pooled.get(record)

    def is_pending(self, tx):
        return any(tx is t for t in self.pooled.values())

    def knows_valid(self, tx):
        return (tx.id, tx.signature) in self.known

    def remember_verified(self, tx):
        self.remembered.append(tx.id)
        self.known.add((tx.id, tx.signature))


def test_check_proposal_rejects_bad_payloads():
    chain = new_chain()
    good = proposal(1, txs(2))
    assert isinstance(chain.check_proposal(1, good.encode(), Memo()), Proposal)
    assert "height" in chain.check_proposal(2, good.encode(), Memo())
    assert "malformed" in chain.check_proposal(1, b"\xc1garbage", Memo())
    dup = proposal(1, txs(1) * 2)
    assert "duplicate" in chain.check_proposal(1, dup.encode(), Memo())
    t = txs(1)[0]
    forged = dataclasses.replace(t, signature=bytes(64), _payload=None, _id=None, _record=None)
    assert "bad_signature" in chain.check_proposal(1, proposal(1, [forged]).encode(), Memo())
    # A signature this node already verified is not checked again.
    assert isinstance(chain.check_proposal(1, proposal(1, [forged]).encode(), Memo([forged])), Proposal)
    # ...but the same id with other signature bytes is checked (the id does not cover them).
    assert "bad_signature" in chain.check_proposal(1, proposal(1, [forged]).encode(), Memo([t]))
    stranger = dataclasses.replace(good, proposer="mallory")
    assert "not a validator" in chain.check_proposal(1, stranger.encode(), Memo())


def test_a_proposal_takes_pooled_txs_as_they_are():
    """A tx the mempool holds is found by its record bytes: not decoded, not
    looked up in the store, not verified again; the others are."""
    chain = new_chain()
    pooled, fresh = txs(3)[:2], txs(3)[2:]
    checked = chain.check_proposal(1, proposal(1, pooled + fresh).encode(), memo := Memo(pooled=pooled))
    assert isinstance(checked, Proposal)
    assert [a is b for a, b in zip(checked.txs, pooled + fresh)] == [True, True, False]
    assert checked.txs[2] == fresh[0] and memo.remembered == [fresh[0].id]
    # A pooled tx whose signature was swapped in the proposal is a different record: decoded, checked.
    forged = dataclasses.replace(pooled[0], signature=bytes(64), _payload=None, _id=None, _record=None)
    assert "bad_signature" in chain.check_proposal(1, proposal(1, [forged]).encode(), Memo(pooled=pooled))


def test_a_stranger_proposer_is_refused():
    chain = new_chain()
    stranger = dataclasses.replace(proposal(1, txs(2)), proposer="mallory")
    assert "not a validator" in chain.check_proposal(1, stranger.encode(), Memo())


def test_a_proposal_may_not_move_block_time_backwards_or_far_ahead():
    # Contracts date receipts, votes and key expiries by block time: a faulty
    # primary must not be able to choose it freely.
    now_ms = 1_700_000_100_000
    chain = Chain(GENESIS, make_store(GENESIS), clock_ms=lambda: now_ms)
    build(chain, 2)                                  # head time 1_700_000_000_002
    head_ms = chain.head_timestamp_ms
    assert head_ms == 1_700_000_000_002

    def at(timestamp_ms):
        p = dataclasses.replace(proposal(3, txs(1, 99)), timestamp_ms=timestamp_ms)
        return chain.check_proposal(3, p.encode(), Memo())

    assert isinstance(at(head_ms), Proposal) and isinstance(at(now_ms + 10_000), Proposal)
    assert "before the last committed block" in at(head_ms - 1)
    assert "ahead of this node's clock" in at(now_ms + 10_001)
    assert Chain(GENESIS, chain.store).head_timestamp_ms == head_ms      # reopened


def test_a_proposal_too_large_for_a_view_change_is_refused():
    chain = new_chain()
    limit = GENESIS.consensus.max_proposal_bytes
    big = [make_tx(ACCOUNTS["finance"], GENESIS, args={"key": f"k{i}", "value": "x" * 3000}, nonce=i)
           for i in range(limit // 3000 + 2)]
    payload = proposal(1, big).encode()
    assert len(payload) > limit
    assert chain.check_proposal(1, payload, Memo()) == f"proposal of {len(payload)} bytes; at most {limit}"


def test_a_new_view_of_a_window_of_largest_blocks_fits_one_frame():
    """The bound on proposals exists for this: a NEW-VIEW re-proposing a whole
    window of largest blocks, with a quorum's VIEW-CHANGEs each carrying a whole
    window of prepared certificates, is still one frame."""
    from consensus.messages import NewView, PrePrepare, PreparedProof, ViewChange
    from consensus.safety import GENESIS_CHECKPOINT
    from ledger.codec import MAX_FRAME
    params = GENESIS.consensus
    n = len(GENESIS.validators)
    quorum = GENESIS.quorum
    sig = bytes(64)
    payload = bytes(params.max_proposal_bytes)
    votes = tuple(Vote(i, sig) for i in range(1, quorum))
    proofs = tuple(PreparedProof(3, seq, bytes([1]) * 32, sig, votes, None)
                   for seq in range(1, params.window + 1))
    vcs = tuple(ViewChange(4, GENESIS_CHECKPOINT, proofs, r, sig) for r in range(quorum))
    pps = tuple(PrePrepare(4, seq, bytes([1]) * 32, payload, 4 % n, sig)
                for seq in range(1, params.window + 1))
    message = NewView(4, vcs, pps, 4 % n, sig).encode()
    assert len(message) + 64 <= MAX_FRAME, len(message)   # + the envelope and batch headers
    # and a VIEW-CHANGE carrying the payload of every prepared block in its window
    loaded = tuple(dataclasses.replace(p, payload=payload) for p in proofs)
    message = ViewChange(4, GENESIS_CHECKPOINT, loaded, 0, sig).encode()
    assert len(message) + 64 <= MAX_FRAME, len(message)


def test_signatures_checked_for_a_proposal_are_remembered():
    chain = new_chain()
    memo = Memo()
    good = proposal(1, txs(3))
    assert isinstance(chain.check_proposal(1, good.encode(), memo), Proposal)
    assert memo.remembered == [tx.id for tx in good.txs]


def test_synced_blocks_verify_and_reproduce_the_same_chain():
    source = new_chain()
    results = build(source, 6)
    replica = new_chain()
    for r in results:
        block = Block.decode(source.store.get_block_bytes(r.block.height))
        replica.apply_synced(block, source.store.get_certificate(r.block.height))
    assert replica.store.last_block_hash() == source.store.last_block_hash()
    assert replica.store.last_state_root() == source.store.last_state_root()


@pytest.mark.parametrize("tamper", ["short_cert", "wrong_digest", "bad_state_root", "bad_sig", "gap"])
def test_synced_block_that_does_not_check_out_is_refused(tamper):
    source = new_chain()
    [r1, r2] = build(source, 2)
    replica = new_chain()
    block, cert = r1.block, r1.certificate
    if tamper == "short_cert":
        cert = dataclasses.replace(cert, votes=cert.votes[:2])
    elif tamper == "wrong_digest":
        cert = certify(1, r2.certificate.digest)
    elif tamper == "bad_state_root":
        block = Block(dataclasses.replace(block.header, state_root=bytes(32), _hash=None), block.txs)
    elif tamper == "bad_sig":
        cert = dataclasses.replace(cert, votes=(Vote(0, bytes(64)),) + cert.votes[1:])
    elif tamper == "gap":
        block, cert = r2.block, r2.certificate
    with pytest.raises(SyncedBlockError):
        replica.apply_synced(block, cert)
    assert replica.height == 0
    # A refused block leaves the state tree at the tip: the real one applies.
    replica.apply_synced(r1.block, r1.certificate)
    assert replica.store.last_state_root() == r1.block.header.state_root


def test_a_restarted_node_reopens_the_state_tree_and_reaches_the_same_roots(tmp_path):
    """The tree's nodes are in the store (written in the batches of
    checkpoint heights, with the keys of the heights between): reopened at
    its tip, the chain goes on to the roots of a chain that never stopped,
    and the heights it persisted and its tip stay provable."""
    reference = new_chain()
    expected = build(reference, 9)
    state = genesis_state(GENESIS.config)[0]
    with open_store(tmp_path / "db", GENESIS.hash, initial_state=state) as store:
        chain = Chain(GENESIS, store)
        for r in expected[:5]:
            chain.apply_synced(r.block, r.certificate)
    with open_store(tmp_path / "db", GENESIS.hash, create=False) as store:
        assert store.state_tree.version == 5
        assert store.last_state_root() == expected[4].block.header.state_root
        chain = Chain(GENESIS, store)
        for r in expected[5:]:
            chain.apply_synced(r.block, r.certificate)       # re-executes: the roots must match
        key = b"kv/entry/k21"                                  # written by block 2
        value = store.get_state(key)
        assert value is not None
        # K = 16: persisted at genesis only, so the reopening re-applied the
        # keys of heights 1..5; only the tip is readable
        assert not any(GENESIS.config.epoch_of(h).is_checkpoint(h) for h in range(1, 10))
        assert [h for h in range(10) if store.state_tree.readable(h)] == [0, 9]
        root = expected[8].block.header.state_root
        assert store.state_tree.root_hash(9) == root
        assert check(root, key, value, store.state_tree.prove(9, key)) is None


def _with_signatures(block, signatures):
    txs = tuple(dataclasses.replace(tx, signature=sig) for tx, sig in zip(block.txs, signatures))
    return Block(block.header, txs)


@pytest.mark.parametrize("tamper", ["zeroed", "swapped"])
def test_synced_block_with_other_signatures_is_refused(tamper):
    """The tx ids do not cover the signatures; the tx root must, or a peer could
    serve a block whose signatures it replaced under a valid certificate."""
    source = new_chain()
    [r1] = build(source, 1)
    block = r1.block
    sigs = [tx.signature for tx in block.txs]
    sigs = [bytes(64)] * len(sigs) if tamper == "zeroed" else sigs[1:] + sigs[:1]
    tampered = _with_signatures(block, sigs)
    assert [tx.id for tx in tampered.txs] == [tx.id for tx in block.txs]   # same ids
    replica = new_chain()
    with pytest.raises(SyncedBlockError, match="tx root does not match"):
        replica.apply_synced(tampered, r1.certificate)
    assert replica.height == 0
    replica.apply_synced(block, r1.certificate)                        # the real one is fine
    assert replica.store.get_block_bytes(1) == source.store.get_block_bytes(1)


def test_a_payload_with_other_signatures_does_not_match_its_digest():
    """A re-proposal (NEW-VIEW) is only bound to its digest: changing any
    signature must change the digest."""
    good = proposal(1, txs(3))
    zeroed = dataclasses.replace(good, txs=tuple(dataclasses.replace(t, signature=bytes(64))
                                                 for t in good.txs), _root=None)
    assert Proposal.decode(zeroed.encode()).digest() != good.digest()
    one_changed = dataclasses.replace(good, txs=(dataclasses.replace(good.txs[0], signature=bytes(64)),
                                                 *good.txs[1:]), _root=None)
    assert Proposal.decode(one_changed.encode()).digest() != good.digest()
    assert Proposal.decode(good.encode()).digest() == good.digest()
