"""Admission of inbound connections before they authenticate, and their refusals' log.

Anyone who can reach the p2p port can open connections, and until a dialer's
AUTH verifies we cannot tell a peer node from a stranger: the testnet's nodes
all share 127.0.0.1, and the source port is ephemeral.  So the gate bounds the
work strangers can cause without ever turning a validator away for it:

- A handshake is *unidentified* until the dialer's hello names a key that may
  dial us; the dialer sends its hello at once, so the handshake gives it only
  a short deadline for it (node.transport.handshake, `hello_timeout_s`).
- At most `max_unidentified` unidentified handshakes are pending.  When full,
  the newcomer is not refused: the *oldest* unidentified one is evicted.  A
  known node's hello arrives within a round trip of its connect, so a flood of
  idle or slow connections only evicts other idle ones, and a reconnecting
  validator is never locked out by connections that merely sit there.
- A source address that is no known node's host may hold at most
  `max_per_source` unidentified handshakes; beyond that it is refused ("busy").
- An identified handshake (a hello naming an allowed validator key, which
  anyone can copy: the key is only proven by AUTH) is kept per claimed key, at
  most `max_per_key`; a newer claim evicts the oldest, so forged hellos cannot
  hold a known node's place for the whole handshake timeout.

Pending handshakes are bounded by max_unidentified + max_per_key * validators.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter, deque

import trio

from .wire import HandshakeError


def normalise_host(host: str) -> str:
    """An IP address in canonical text (IPv4-mapped IPv6 as plain IPv4); a
    name is returned as given."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


class PendingHandshake:
    """One inbound handshake in progress; cancelling `scope` evicts it."""

    __slots__ = ("host", "scope", "key")

    def __init__(self, host: str) -> None:
        self.host = host
        self.scope = trio.CancelScope()
        self.key: bytes | None = None


class InboundGate:
    """Which inbound handshakes may proceed (see the module docstring)."""

    def __init__(self, validator_hosts: set[str], *, max_unidentified: int = 64,
                 max_per_source: int = 8, max_per_key: int = 4) -> None:
        if min(max_unidentified, max_per_source, max_per_key) < 1:
            raise ValueError("handshake limits must be positive")
        self._validator_hosts: set[str] = set()
        self.set_known_hosts(validator_hosts)
        self._max_unidentified = max_unidentified
        self._max_per_source = max_per_source
        self._max_per_key = max_per_key
        self._unidentified: dict[PendingHandshake, None] = {}   # insertion order: oldest first
        self._per_source: Counter[str] = Counter()               # unidentified, by host
        self._by_key: dict[bytes, deque[PendingHandshake]] = {}

    def set_known_hosts(self, hosts: set[str]) -> None:
        """The hosts of the nodes in the configuration now (it changes by governance)."""
        self._validator_hosts = {normalise_host(h) for h in hosts}

    @property
    def pending(self) -> int:
        return len(self._unidentified) + sum(len(q) for q in self._by_key.values())

    def admit(self, host: str) -> PendingHandshake | None:
        """A slot for a new connection from `host`, or None if refused."""
        host = normalise_host(host)
        if host not in self._validator_hosts and self._per_source[host] >= self._max_per_source:
            return None
        if len(self._unidentified) >= self._max_unidentified:
            self._evict(next(iter(self._unidentified)))
        pending = PendingHandshake(host)
        self._unidentified[pending] = None
        self._per_source[host] += 1
        return pending

    def identified(self, pending: PendingHandshake, key: bytes) -> None:
        """The handshake's hello names `key`, a validator allowed to dial us."""
        if not self._drop_unidentified(pending):
            return          # evicted meanwhile: its scope is cancelled already
        pending.key = key
        claims = self._by_key.setdefault(key, deque())
        claims.append(pending)
        if len(claims) > self._max_per_key:
            self._evict(claims[0])

    def release(self, pending: PendingHandshake) -> None:
        """The handshake ended (any way); idempotent."""
        if self._drop_unidentified(pending) or pending.key is None:
            return
        claims = self._by_key.get(pending.key)
        if claims is not None and pending in claims:
            claims.remove(pending)
            if not claims:
                del self._by_key[pending.key]

    def _evict(self, pending: PendingHandshake) -> None:
        self.release(pending)
        pending.scope.cancel()

    def _drop_unidentified(self, pending: PendingHandshake) -> bool:
        if pending not in self._unidentified:
            return False
        del self._unidentified[pending]
        self._per_source[pending.host] -= 1
        if not self._per_source[pending.host]:
            del self._per_source[pending.host]
        return True


class FailureLog:
    """Logs inbound handshake failures without letting a flood flood the log.

    The first failure after a quiet interval is logged in full (a misconfigured
    peer shows its reason at once); later ones are counted and summed up in
    one line per `interval_s`, by reason.  `run` does the periodic summary.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._log = logger
        self.interval_s = interval_s
        self._window: Counter[str] | None = None     # None: quiet, log the next one in full
        self._last_from = ""

    def record(self, where: str, exc: HandshakeError) -> None:
        if self._window is None:
            self._log.warning("peer %s: %s", where, exc)
            self._window = Counter()
        else:
            self._window[exc.reason] += 1
            self._last_from = where

    def flush(self) -> None:
        """End the interval: one summary line if anything was held back."""
        window = self._window
        if window is None:
            return
        if not window:
            self._window = None          # a quiet interval
            return
        reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(window.items()))
        self._log.warning("inbound handshakes: %d more failed in the last %gs (%s); last from %s",
                          sum(window.values()), self.interval_s, reasons, self._last_from)
        self._window = Counter()

    async def run(self) -> None:
        while True:
            await trio.sleep(self.interval_s)
            self.flush()
