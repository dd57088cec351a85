"""The pieces of `ynchain bench` that need no running node."""

import math

import pytest

from cli import bench, workload
from cli.bench import (MAX_PRESIGNED, Workload, is_timed, latency_sample_every, make_batches,
                       percentile, presign, presign_count, sign_all)
from cli.layout import load_genesis
from ledger import codec
from ledger.crypto import KeyPair
from ledger.tx import Transaction
from tests.factories import make_genesis
from tests.ledger.chain import Chain


@pytest.mark.parametrize("n", [0, 1, 15, 16, 65535, 65536])
def test_array_header_matches_msgpack(n):
    assert codec.array_header(n) == codec.pack([None] * n)[:len(codec.array_header(n))]
    assert codec.unpack(codec.array_header(n) + b"\xc0" * n) == [None] * n


def test_presigned_batches_decode_to_valid_distinct_txs():
    keys = [KeyPair.generate() for _ in range(3)]
    signed = sign_all(Workload("kv", seeds=[k.seed for k in keys]), "chain-x", 99, "t", 25)
    batches = make_batches(signed, size=10, nodes=2)
    assert [b.node for b in batches] == [0, 1, 0]
    assert [len(b.ids) for b in batches] == [10, 10, 5]
    txs = [Transaction.from_record(rec) for b in batches for rec in codec.unpack(b.body)]
    assert [tx.id for tx in txs] == [i for b in batches for i in b.ids]
    assert len({tx.id for tx in txs}) == 25
    assert all(tx.verify_signature() and tx.valid_until == 99 and tx.chain_id == "chain-x" for tx in txs)
    assert [tx.sender for tx in txs[:4]] == [k.public_key for k in keys] + [keys[0].public_key]
    assert len({tx.args["key"] for tx in txs}) == 25
    assert {(tx.contract, tx.method) for tx in txs} == {("kv", "put")}


def test_presigned_batch_file_holds_every_tx_once_and_times_an_even_sample(tmp_path):
    keys = [KeyPair.generate() for _ in range(2)]
    load = Workload("kv", seeds=[k.seed for k in keys])
    with open(tmp_path / "batches", "wb") as out:
        refs = presign(load, "chain-x", 99, "t", 45, batch_size=10, nodes=3, out=out, every=3)
    data = (tmp_path / "batches").read_bytes()
    assert [r.node for r in refs] == [0, 1, 2, 0, 1] and [r.count for r in refs] == [10] * 4 + [5]
    txs = [Transaction.from_record(rec) for r in refs
           for rec in codec.unpack(data[r.offset:r.offset + r.length])]
    assert len({tx.id for tx in txs}) == 45 and all(tx.verify_signature() for tx in txs)
    timed = {i for r in refs for i in r.timed}
    assert timed == {tx.id.hex() for tx in txs if int.from_bytes(tx.id[:4], "big") % 3 == 0}
    assert latency_sample_every(200_000) == 1 and latency_sample_every(3_000_000) == 15
    assert is_timed(b"\xff" * 32, 1)


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (50.0, 90.0, 99.0)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_more_accounts_than_key_files(tmp_path):
    from cli.bench import run_bench
    from cli.errors import CliError
    from cli.layout import init_testnet
    net = init_testnet(tmp_path / "tn", 4, 31000)
    with pytest.raises(CliError, match="--accounts 9: .* has only 4 writer account key files"):
        run_bench(net, 10, None, 9, 10, progress=False)


def test_bench_dir_must_be_running(run, tmp_path):
    from cli.layout import init_testnet
    from .conftest import one_error_line
    init_testnet(tmp_path / "tn", 4, 31000)
    assert "is not (fully) running" in one_error_line(run("bench", "--dir", tmp_path / "tn"))


ROLES = {"kunming-first-hospital": ("issuer",), "kunming-medical-insurance": ("reimburser",),
         "yunnan-life-insurance": ("reimburser",), "menghai-tea-coop": ("producer",),
         "bulang-workshop": (), "yunnan-tea-lab": ("lab",), "kunming-heavy-machinery": (),
         "dianchi-steel": (), "xishan-bearings": (), "dianchi-bank": ("bank",)}


def test_mixed_rounds_stay_whole_in_one_batch_and_all_succeed_in_order():
    genesis, _, keys = make_genesis(accounts=tuple(ROLES), roles=ROLES)
    seeds = {account: keys[account].seed for account in workload.PARTIES.values()}
    load = Workload("mixed", account_seeds=seeds, payer_hashes=["a1" * 32, "b2" * 32])
    signed = sign_all(load, genesis.chain_id, 99, "00c0ffee", 30)      # rounded up to 3 rounds
    assert len(signed) == 36
    batches = make_batches(signed, size=20, nodes=2, unit=load.unit)     # 20 -> 12: whole rounds
    assert [len(b.ids) for b in batches] == [12, 12, 12] and [b.node for b in batches] == [0, 1, 0]
    txs = [Transaction.from_record(rec) for b in batches for rec in codec.unpack(b.body)]
    assert len({tx.id for tx in txs}) == 36
    result = Chain(genesis).run(txs)
    assert [r.status_name for r in result.receipts] == ["ok"] * 36
    contracts = [tx.contract for tx in txs[:12]]
    assert contracts.count("fiscal") == contracts.count("trace") == contracts.count("receivable") == 4


def test_a_duration_run_presigns_what_the_validity_window_leaves_time_to_commit():
    assert presign_count(30, 5000, 1000) == 150_000
    assert presign_count(600, 5000, 1000) == 1_000_000             # the default window: ~400 s saturated
    assert presign_count(600, 5000, bench.BENCH_VALIDITY_WINDOW) == MAX_PRESIGNED == 3_000_000
    assert presign_count(0.1, 1.05, 1000) == 1


def test_a_temporary_testnet_keeps_txs_valid_long_enough_for_a_ten_minute_run(tmp_path, monkeypatch):
    seen = {}

    def up(net, **kw):
        seen["window"] = load_genesis(net.dir / "genesis.json").consensus.tx_validity_window

    monkeypatch.setattr(bench, "bring_up", up)
    monkeypatch.setattr(bench, "bring_down", lambda net, **kw: None)
    monkeypatch.setattr(bench.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "net"))
    with bench.temporary_testnet(4, progress=False):
        pass
    assert seen["window"] == bench.BENCH_VALIDITY_WINDOW == 10_000
    assert presign_count(600, bench.PRESIGN_RATE, seen["window"]) == 600 * bench.PRESIGN_RATE
