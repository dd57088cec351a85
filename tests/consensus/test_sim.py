"""The simulator: many seeds hold every invariant, runs are reproducible from
the seed, and the checker is not blind (more than f twins fork the chain)."""

import json

from consensus.sim import run_seed
from consensus.sim.__main__ import main

SEEDS = range(0, 150)


def test_many_seeds_keep_safety_and_liveness():
    failures = []
    for seed in SEEDS:
        result = run_seed(seed)
        if result.violation or result.liveness_failure:
            failures.append((seed, result.violation or result.liveness_failure))
    assert failures == []


def test_seven_validators_tolerate_two_faults():
    for seed in range(0, 8):
        result = run_seed(seed, n=7)
        assert result.violation is None and result.liveness_failure is None, (seed, result)


def test_runs_are_reproducible_from_the_seed():
    assert run_seed(17) == run_seed(17)


def test_more_than_f_twins_are_caught_forking():
    forks = [run_seed(seed, twins=2).violation for seed in range(0, 10)]
    assert any(v and "AGREEMENT" in v for v in forks)


def test_f_twins_do_not_fork():
    for seed in range(0, 10):
        result = run_seed(seed, twins=1)
        assert result.violation is None, (seed, result.violation)


def test_cli_json_summary(capsys):
    assert main(["--seeds", "3", "--start", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("seeds", "violations", "liveness_failures", "blocks_committed_min",
                "seeds_per_second"):
        assert key in summary
    assert summary["seeds"] == 3 and summary["violations"] == 0


def test_cli_reports_a_failing_seed_with_its_replay_command(capsys):
    assert main(["--seeds", "1", "--start", "0", "--twins", "2"]) == 1
    out = capsys.readouterr().out
    assert "violations=1" in out
    assert "replay: python -m consensus.sim --seeds 1 --start 0 --nodes 4 --twins 2" in out
