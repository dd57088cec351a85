"""The inbound gate and the failure log, without sockets (node.transport.inbound)."""

from __future__ import annotations

import logging

import pytest
import trio

from node.transport.inbound import FailureLog, InboundGate, normalise_host
from node.transport.wire import HandshakeError

VALIDATOR_HOST = "10.0.0.1"
KEY_A, KEY_B = b"A" * 32, b"B" * 32


def gate(**limits) -> InboundGate:
    """Evicting cancels a trio.CancelScope: tests that evict run under trio."""
    limits = {"max_unidentified": 3, "max_per_source": 2, "max_per_key": 2, **limits}
    return InboundGate({VALIDATOR_HOST}, **limits)


async def test_when_full_the_oldest_unidentified_handshake_makes_room():
    with trio.fail_after(5):
        g = gate()
        first, second, third = (g.admit(VALIDATOR_HOST) for _ in range(3))
        fourth = g.admit(VALIDATOR_HOST)              # not refused
        assert fourth is not None
        assert first.scope.cancel_called and not second.scope.cancel_called
        assert g.pending == 3
        g.release(first)                              # its task ends later: no double count
        assert g.pending == 3


async def test_an_identified_handshake_is_not_evicted_by_unidentified_ones():
    with trio.fail_after(5):
        g = gate()
        validator = g.admit(VALIDATOR_HOST)
        g.identified(validator, KEY_A)
        strangers = [g.admit(VALIDATOR_HOST) for _ in range(10)]
        assert not validator.scope.cancel_called
        assert sum(not s.scope.cancel_called for s in strangers) == 3
        assert g.pending == 4


async def test_claims_of_one_key_are_bounded_and_the_newest_wins():
    with trio.fail_after(5):
        g = gate(max_unidentified=10)
        claims = []
        for _ in range(4):
            p = g.admit(VALIDATOR_HOST)
            g.identified(p, KEY_A)
            claims.append(p)
        assert [p.scope.cancel_called for p in claims] == [True, True, False, False]
        other = g.admit(VALIDATOR_HOST)
        g.identified(other, KEY_B)                    # another key has its own room
        assert not other.scope.cancel_called
        for p in claims + [other]:
            g.release(p)
        assert g.pending == 0


def test_a_source_that_is_no_validators_host_is_capped_others_are_not():
    g = gate(max_unidentified=10)
    assert g.admit("192.0.2.7") and g.admit("192.0.2.7")
    assert g.admit("192.0.2.7") is None           # refused: "busy"
    assert g.admit("::ffff:192.0.2.7") is None    # the same address over IPv6
    assert g.admit("192.0.2.8") is not None
    assert all(g.admit(VALIDATOR_HOST) is not None for _ in range(5))
    # identifying frees the source's unidentified slot
    g2 = gate()
    p = g2.admit("192.0.2.7")
    g2.admit("192.0.2.7")
    g2.identified(p, KEY_A)
    assert g2.admit("192.0.2.7") is not None


async def test_identifying_an_evicted_handshake_changes_nothing():
    with trio.fail_after(5):
        g = gate(max_unidentified=1)
        old = g.admit(VALIDATOR_HOST)
        new = g.admit(VALIDATOR_HOST)
        g.identified(old, KEY_A)                      # its hello was already in flight
        assert g.pending == 1 and not new.scope.cancel_called


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        InboundGate(set(), max_per_source=0)


def test_normalise_host():
    assert normalise_host("::ffff:127.0.0.1") == "127.0.0.1"
    assert normalise_host("::1") == "::1"
    assert normalise_host("node3.example") == "node3.example"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_failure_log_logs_the_first_in_full_then_one_summary_per_interval():
    logger = logging.getLogger("test.inbound.failures")
    lines = Lines()
    logger.addHandler(lines)
    try:
        failures = FailureLog(logger, interval_s=10)
        failures.record("192.0.2.7:1", HandshakeError("wrong_chain", "peer is on chain 'x'"))
        for i in range(1000):
            failures.record(f"192.0.2.7:{i}", HandshakeError("evicted" if i % 4 else "malformed"))
        assert lines.lines == ["peer 192.0.2.7:1: handshake failed: wrong_chain (peer is on chain 'x')"]
        failures.flush()
        assert lines.lines[1] == ("inbound handshakes: 1000 more failed in the last 10s "
                                  "(evicted=750, malformed=250); last from 192.0.2.7:999")
        failures.flush()                          # a quiet interval: nothing to say
        failures.flush()
        assert len(lines.lines) == 2
        failures.record("192.0.2.9:5", HandshakeError("no_hello"))   # after quiet: in full again
        assert lines.lines[2].startswith("peer 192.0.2.9:5: handshake failed: no_hello")
    finally:
        logger.removeHandler(lines)
