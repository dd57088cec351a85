"""The short fault campaign (what CI runs): `python -m cli.chaos --profile ci`.

Real node processes on 127.0.0.1 under load, every kind of fault once in the
order a fixed seed decides (CHAOS_SEED overrides it), then every check of
cli/chaos/checks.py.  The campaign bounds itself (profile `ci`: at most
`max_fault_s` of faults, then a bounded drain) and kills every process it
started, also when it is interrupted; this test only adds an outer timeout.
Deselect it with `-m "not chaos"`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CI_SEED = 20240611
OUTER_TIMEOUT_S = 280       # below the suite's hang guard (tests/conftest.py)


@pytest.mark.chaos
def test_the_short_fault_campaign_passes_every_check(tmp_path):
    seed = os.environ.get("CHAOS_SEED", str(CI_SEED))
    summary_path = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cli.chaos", "--profile", "ci", "--minutes", "0", "--seed", seed,
         "--dir", str(tmp_path / "run"), "--out", str(summary_path)],
        cwd=REPO, capture_output=True, text=True, timeout=OUTER_TIMEOUT_S,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert summary_path.exists(), f"no summary (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    summary = json.loads(summary_path.read_text())
    failed = {name: check for name, check in summary["checks"].items() if not check["ok"]}
    assert not failed and proc.returncode == 0, (
        f"seed {seed}: failed checks {json.dumps(failed, indent=1)}\n"
        f"replay: python -m cli.chaos --profile ci --minutes 0 --seed {seed}\n"
        f"{proc.stderr[-3000:]}")
    # It did run every kind of fault and checked something real.
    faults = summary["faults"]
    assert faults["kills"] >= 2 and faults["partitions"] >= 2 and faults["freezes"] == 1
    assert summary["txs"]["acked"] > 0 and summary["txs"]["lost"] == 0
