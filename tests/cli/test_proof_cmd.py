"""`ynchain proof ...` (against a fake node serving real proof files) and
`ynchain verify` (offline: only the file and the genesis)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.ledger.test_fiscal import ISSUE, R
from tests.node.proven_chain import ProvenChain, two_changes

from .conftest import one_error_line

RECEIPT_PATH = f"/proofs/receipt/{R['code']}/{R['number']}"


@pytest.fixture(scope="module")
def chain() -> ProvenChain:
    c = ProvenChain()
    c.call("hospital", "fiscal", "issue", ISSUE)
    for _ in range(3):
        c.commit(None)
    return c


@pytest.fixture
def files(chain, fake, tmp_path):
    data, height = chain.builder.receipt(R["code"], R["number"])
    fake.docs[RECEIPT_PATH] = (200, {"kind": "receipt", "height": height, "bytes": len(data),
                                     "proof": base64.b64encode(data).decode()})
    genesis = tmp_path / "genesis.json"
    genesis.write_bytes(chain.genesis.raw)
    return fake, genesis, data


def test_fetch_then_verify_offline(run, files, tmp_path) -> None:
    fake, genesis, data = files
    out = tmp_path / "r.proof"
    result = run("proof", "receipt", R["code"], R["number"], "-o", out, "--node", fake.url)
    assert result.exit_code == 0, result.output
    assert f"a receipt proof at height 4 ({len(data):,} bytes)" in result.output
    assert out.read_bytes() == data
    result = run("verify", out, "--genesis", genesis)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "receipt 53010126-0000001234 of 426.50 yuan, issued by Hospital (hospital) at height 1 "
        "(2026-11-28 01:01 UTC), not reimbursed as of height 4, "
        "certified by 3 of 4 validators (node0, node2, node3)")
    doc = json.loads(run("verify", out, "--genesis", genesis, "--json").output)
    assert doc["valid"] and doc["kind"] == "receipt" and doc["anchors"][0]["signers"] == ["node0", "node2", "node3"]


def test_a_bad_proof_prints_the_first_reason_and_exits_1(run, files, tmp_path) -> None:
    _, genesis, data = files
    bad = tmp_path / "bad.proof"
    tampered = bytearray(data)
    tampered[-40] ^= 0x01              # inside the state proof's last hashes
    bad.write_bytes(bytes(tampered))
    line = one_error_line(run("verify", bad, "--genesis", genesis))
    assert line.startswith("error: the proof does not hold: ")
    result = run("verify", bad, "--genesis", genesis, "--json")
    assert result.exit_code == 1 and json.loads(result.output)["valid"] is False


def test_another_genesis_or_a_missing_file_is_one_clear_line(run, files, tmp_path) -> None:
    _, genesis, data = files
    good = tmp_path / "good.proof"
    good.write_bytes(data)
    other = tmp_path / "other.json"
    other.write_bytes(ProvenChain(chain_id="another-chain").genesis.raw)
    assert "the proof is for chain 'ynchain-test'" in one_error_line(run("verify", good, "--genesis", other))
    assert "cannot read" in one_error_line(run("verify", tmp_path / "nope", "--genesis", genesis))


def test_a_node_that_cannot_prove_yet_is_one_clear_line(run, fake, tmp_path) -> None:
    fake.docs["/proofs/tx/" + "ab" * 32] = (409, {"error": "height 9 is not covered by a stable checkpoint yet; "
                                                  "retry in a few blocks", "code": "not_provable"})
    line = one_error_line(run("proof", "tx", "ab" * 32, "-o", tmp_path / "t.proof", "--node", fake.url))
    assert "not covered by a stable checkpoint yet" in line
    assert not (tmp_path / "t.proof").exists()


def test_verify_names_the_set_in_force_after_validator_set_changes(run, tmp_path) -> None:
    chain = two_changes()                            # two changes: genesis's 4, then node2+node3, then +node0
    proof, genesis = tmp_path / "tx.proof", tmp_path / "genesis.json"
    proof.write_bytes(chain.builder.tx(chain.put2.id))
    genesis.write_bytes(chain.genesis.raw)
    result = run("verify", proof, "--genesis", genesis)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("certified by 3 of 3 validators (node2, node3, node0) of the set "
                                          "in force from height 29")
    doc = json.loads(run("verify", proof, "--genesis", genesis, "--json").output)
    assert [(e["number"], e["from_height"]) for e in doc["epochs"]] == [(0, 1), (1, 17), (2, 29)]
    assert doc["anchors"][0]["epoch"] == 2 and doc["txs"][0]["committed_by"] == ["node2", "node3", "node0"]
