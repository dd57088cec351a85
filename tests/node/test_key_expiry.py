"""Warnings before a key of this node's organisation expires: the pure
helper, the log lines, /status's list, the Prometheus gauge, the config knob."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledger.consortium import parse_utc
from node.config import ConfigError, load_config, render_config
from node.key_expiry import KeyExpiryWatch
from node.metrics import NodeMetrics
from tests.factories import make_genesis

NOW = parse_utc("2027-01-01T00:00:00Z")
GENESIS, _, _ = make_genesis(accounts=("tax", "tax-old", "tax-later", "tax-forever", "finance"),
                             orgs={"tax-old": "tax", "tax-later": "tax", "tax-forever": "tax"},
                             valid_until={"tax": "2027-01-11", "tax-old": "2026-12-31T00:00:00Z",
                                          "tax-later": "2027-06-01", "finance": "2027-01-02"})


def watch(days: int = 30) -> KeyExpiryWatch:
    return KeyExpiryWatch(lambda: GENESIS.config, "tax", days, clock_ms=lambda: NOW)


def test_only_this_organisations_keys_within_the_warning_period() -> None:
    w = watch()
    assert [(k.account, k.seconds_left) for k in w.expiring()] == [("tax-old", -86400), ("tax", 10 * 86400)]
    assert w.status() == [
        {"account": "tax-old", "valid_until": "2026-12-31T00:00:00Z", "seconds_left": -86400},
        {"account": "tax", "valid_until": "2027-01-11T00:00:00Z", "seconds_left": 864000}]
    assert [k.account for k in w.all()] == ["tax-old", "tax", "tax-later"]      # never: no gauge
    assert [k.account for k in watch(days=200).expiring()] == ["tax-old", "tax", "tax-later"]


def test_warnings_are_logged(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="ynchain.keys"):
        assert watch().warn() == 2
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("the key of account tax-old (organisation tax) expired at 2026-12-31T00:00:00Z")
    assert lines[1].startswith("the key of account tax (organisation tax) expires at 2027-01-11T00:00:00Z, "
                               "in 10.0 days")


def test_the_gauge_counts_down_at_scrape_time() -> None:
    metrics = NodeMetrics()
    w = watch()
    metrics.track_key_expiry(lambda: [(k.account, k.seconds_left) for k in w.all()])
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    samples = {s.labels["account"]: s.value for s in families["ynchain_key_expiry_seconds"].samples}
    assert samples == {"tax-old": -86400.0, "tax": 864000.0, "tax-later": 13046400.0}


def test_the_warning_period_is_configurable(tmp_path) -> None:
    text = render_config("node0", ("127.0.0.1", 1), ("127.0.0.1", 2))
    (tmp_path / "config.toml").write_text(text)
    assert load_config(tmp_path).key_expiry_warning_days == 30
    (tmp_path / "config.toml").write_text(text + "\n[keys]\nexpiry_warning_days = 90\n")
    assert load_config(tmp_path).key_expiry_warning_days == 90
    (tmp_path / "config.toml").write_text(text + "\n[keys]\nexpiry_warning_days = -1\n")
    with pytest.raises(ConfigError, match="keys.expiry_warning_days must be in 0..3650"):
        load_config(tmp_path)
