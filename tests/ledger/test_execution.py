"""The execution engine: write sets, receipts, admission outcomes, state root."""

from __future__ import annotations

import dataclasses

import pytest

from ledger import codec, execution
from ledger.contracts import Contract, ContractError
from ledger.execution import (RECEIPT_DOMAIN, execute_block, query_state, receipt_item, receipt_proof,
                              receipt_root, verify_receipt_proof)
from ledger.merkle import EMPTY_ROOT as MERKLE_EMPTY_ROOT
from ledger.state_tree import EMPTY_ROOT, MemoryNodeStore, StateTree, check, value_hash
from ledger.receipt import (ERR_BAD_ARGS, ERR_DUPLICATE, ERR_EXPIRED, ERR_INVALID, ERR_NOT_FOUND, ERR_PERMISSION,
                            ERR_UNKNOWN_CONTRACT, ERR_UNKNOWN_METHOD, OK, Receipt)
from tests.factories import key_for, make_genesis, make_tx
from tests.ledger.chain import Chain

# fiscal v1 (any writer issues) keeps _history's receipts short.
GENESIS, VALIDATORS, ACCOUNTS = make_genesis(tx_validity_window=50, contract_versions={"fiscal": {"1": 1}})
FIN, TAX = ACCOUNTS["finance"], ACCOUNTS["tax"]


def put(key=FIN, k="k", v=1, nonce=0, valid_until=20, **kw):
    return make_tx(key, GENESIS, "kv", "put", {"key": k, "value": v}, nonce=nonce,
                   valid_until=valid_until, **kw)


def delete(key=FIN, k="k", nonce=0):
    return make_tx(key, GENESIS, "kv", "delete", {"key": k}, nonce=nonce, valid_until=20)


def call(key, contract, method, args, nonce=0):
    return make_tx(key, GENESIS, contract, method, args, nonce=nonce, valid_until=20)


def statuses(result) -> list[int]:
    return [r.status for r in result.receipts]


def test_one_receipt_per_tx_in_order_and_writes_are_packed() -> None:
    chain = Chain(GENESIS)
    r = chain.run([put(k="a", v=[1, "x"]), put(TAX, k="a", v=2), put(k="b", v={"n": 1})])
    assert statuses(r) == [OK, ERR_PERMISSION, OK]
    assert r.writes[b"kv/entry/a"] == codec.pack(["finance", [1, "x"]])     # owner, value
    assert query_state(chain.state.get, "kv", "a") == [1, "x"]
    assert query_state(chain.state.get, "kv", "b") == {"n": 1}
    for receipt in r.receipts:      # storable as they are
        assert Receipt.from_record(codec.unpack(codec.pack(receipt.to_record()))) == receipt


def test_later_txs_see_earlier_writes_of_the_block() -> None:
    chain = Chain(GENESIS)
    r = chain.run([put(v=1), put(v=2, nonce=1), delete(nonce=2), delete(nonce=3)])
    assert statuses(r) == [OK, OK, OK, ERR_NOT_FOUND]
    assert r.writes[b"kv/entry/k"] == codec.pack(["finance"])    # deleted within the block
    assert query_state(chain.state.get, "kv", "k") is None


def _writes_then_fails(ctx, state, args):
    state.put("half", "done")
    if args == "fail":
        raise ContractError(ERR_BAD_ARGS, "x" * 5000)
    return "fine"


@pytest.fixture
def test_contract(monkeypatch):
    real = execution.contract_at
    extra = Contract("t", {"go": _writes_then_fails})
    monkeypatch.setattr(execution, "contract_at",
                        lambda schedule, name, height: extra if name == "t" else real(schedule, name, height))


def test_a_failed_tx_leaves_no_writes(test_contract) -> None:
    chain = Chain(GENESIS)
    root = chain.root
    r = chain.run([call(FIN, "t", "go", "fail")])
    assert statuses(r) == [ERR_BAD_ARGS]
    assert r.writes == {} and r.state_root == root
    assert len(r.receipts[0].message) == 1024          # bounded like Receipt.from_record wants
    r = chain.run([call(FIN, "t", "go", "ok")])
    assert r.receipts[0] == Receipt(OK, "", "fine")
    assert r.writes == {b"t/data/half": codec.pack("done")}


def test_duplicates_committed_or_within_the_block() -> None:
    chain = Chain(GENESIS)
    first = put(v=1)
    r = chain.run([first, put(v=2, nonce=1), first])
    assert statuses(r) == [OK, OK, ERR_DUPLICATE]
    assert "earlier in this block" in r.receipts[2].message
    assert query_state(chain.state.get, "kv", "k") == 2      # the repeat did not write 1 again
    r = chain.run([first])
    assert statuses(r) == [ERR_DUPLICATE] and r.writes == {}
    assert "already committed" in r.receipts[0].message


def test_expiry_is_relative_to_the_block_height() -> None:
    chain = Chain(GENESIS)
    chain.run([])
    chain.run([])                                      # next block is height 3
    r = chain.run([put(valid_until=2), put(valid_until=3, nonce=1)])
    assert statuses(r) == [ERR_EXPIRED, OK]
    assert r.receipts[0].message == "expired"


def test_too_far_ahead_is_invalid() -> None:
    chain = Chain(GENESIS)
    r = chain.run([put(valid_until=51), put(valid_until=50, nonce=1)])   # block 1, window 50
    assert statuses(r) == [ERR_INVALID, OK]
    assert r.receipts[0].message == "too_far_ahead"


def test_wrong_chain_and_unknown_sender_are_invalid_and_have_no_effect() -> None:
    chain = Chain(GENESIS)
    root = chain.root
    stranger = key_for("account", "stranger")
    r = chain.run([put(chain_id="other-chain"), put(stranger), put(VALIDATORS["node0"])])
    assert statuses(r) == [ERR_INVALID] * 3
    assert [x.message for x in r.receipts] == ["wrong_chain", "unknown_sender", "unknown_sender"]
    assert r.writes == {} and r.state_root == root


def test_unknown_contract_and_method() -> None:
    chain = Chain(GENESIS)
    r = chain.run([call(FIN, "nope", "put", {}), call(FIN, "kv", "nope", {})])
    assert statuses(r) == [ERR_UNKNOWN_CONTRACT, ERR_UNKNOWN_METHOD]
    assert r.receipts[0].message == "unknown contract 'nope'"
    assert r.receipts[1].message == "contract kv (version 2) has no method 'nope'"


def test_signatures_are_not_checked_again() -> None:
    unsigned = dataclasses.replace(put(), signature=bytes(64))
    assert statuses(Chain(GENESIS).run([unsigned])) == [OK]


def _history(n_blocks: int) -> list[list]:
    return [[put(k=f"k{h % 3}", v=h, nonce=h), put(TAX, k=f"t{h}", v=[h], nonce=h),
             call(TAX, "fiscal", "issue",
                  {"receipt_no": f"R{h}", "amount_cents": 100 + h, "payer": "p"}, nonce=h)]
            for h in range(n_blocks)]


def test_same_history_same_roots() -> None:
    a, b = Chain(GENESIS), Chain(GENESIS)
    roots_a = [a.run(txs).state_root for txs in _history(8)]
    roots_b = [b.run(txs).state_root for txs in _history(8)]
    assert roots_a == roots_b and len(set(roots_a)) == 8
    assert a.state == b.state


def test_the_root_commits_to_the_whole_state() -> None:
    chain = Chain(GENESIS)
    genesis_root = chain.root
    assert genesis_root != EMPTY_ROOT                  # the gov/ configuration is in it
    r1 = chain.run([put(v=1)])
    assert r1.state_root != genesis_root
    r2 = chain.run([])                                 # no writes: root unchanged
    assert r2.state_root == r1.state_root
    other = Chain(GENESIS)
    assert other.run([put(v=2)]).state_root != r1.state_root
    # The root is the tree's over every key the state holds: a tree built from
    # the whole state at once, in any order, has it, and proves each key.
    rebuilt = StateTree(MemoryNodeStore())
    assert rebuilt.apply(0, dict(reversed(list(chain.state.items())))).root == r2.state_root
    key = b"kv/entry/k"
    assert chain.tree.get(2, key) == value_hash(chain.state[key])
    proof = chain.tree.prove(2, key)
    assert check(r2.state_root, key, chain.state[key], proof) is None
    assert check(r2.state_root, key, codec.pack(["finance", 2]), proof) is not None
    # every earlier version stays provable: before block 1 the key was absent
    assert check(genesis_root, key, None, chain.tree.prove(0, key)) is None


def test_a_put_back_value_gives_the_old_root() -> None:
    """Unlike the hash chain it replaces, the root is of the state, not of its history."""
    chain = Chain(GENESIS)
    r1 = chain.run([put(v=1)])
    chain.run([put(v=2, nonce=1)])
    assert chain.run([put(v=1, nonce=2)]).state_root == r1.state_root


def test_height_must_be_positive() -> None:
    with pytest.raises(ValueError):
        execute_block(GENESIS.config, {}.get, 0, [], StateTree(MemoryNodeStore()), lambda _: False,
                      timestamp_ms=0)


def test_query_state_of_absent_things_is_none() -> None:
    chain = Chain(GENESIS)
    chain.run([put(k="k", v=1)])
    assert query_state(chain.state.get, "kv", "k") == 1
    assert query_state(chain.state.get, "kv", "absent") is None
    assert query_state(chain.state.get, "nope", "k") is None
    assert query_state(chain.state.get, "kv", "\ud800") is None     # a lone surrogate from a URL


def test_the_receipt_root_commits_to_every_receipt_in_block_order() -> None:
    chain = Chain(GENESIS)
    txs = [put(v=1), put(chain_id="other-chain"), put(v=2, nonce=1)]
    r = chain.run(txs)
    assert [x.status for x in r.receipts] == [OK, ERR_INVALID, OK]
    assert r.receipts[0] == r.receipts[2]              # equal receipts, different txs
    assert r.receipt_root == receipt_root(txs, r.receipts)
    for i, receipt in enumerate(r.receipts):
        proof = receipt_proof(txs, r.receipts, i)
        assert verify_receipt_proof(i, txs[i].id, receipt, proof, r.receipt_root)
        # another status, message, tx or place is not proved
        assert not verify_receipt_proof(i, txs[i].id, dataclasses.replace(receipt, status=receipt.status ^ 1),
                                        proof, r.receipt_root)
        assert not verify_receipt_proof(i, txs[i].id, dataclasses.replace(receipt, message="x"), proof,
                                        r.receipt_root)
        other = (i + 2) % 3
        assert not verify_receipt_proof(i, txs[other].id, receipt, proof, r.receipt_root)
        assert not verify_receipt_proof(other, txs[i].id, receipt, proof, r.receipt_root)
        assert not verify_receipt_proof(i, txs[i].id, receipt, receipt_proof(txs, r.receipts, other),
                                        r.receipt_root)
    assert receipt_root(txs[::-1], r.receipts[::-1]) != r.receipt_root
    # the item is domain-separated and its record length-prefixed
    item = receipt_item(1, txs[1].id, r.receipts[1])
    assert item.startswith(RECEIPT_DOMAIN + (1).to_bytes(4, "big") + txs[1].id)
    at = len(RECEIPT_DOMAIN) + 4 + 32
    assert int.from_bytes(item[at:at + 4], "big") == len(item) - at - 4
    assert chain.run([]).receipt_root == MERKLE_EMPTY_ROOT
