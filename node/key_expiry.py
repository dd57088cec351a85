"""Warnings well before a key of this node's organisation expires.

Account keys may carry a validity end (`valid_until`, a block time); from then
on every tx they sign is refused.  The node warns its operator in three
places: a log line per expiring key at start and once a day, `/status`
(`key_expiry`, shown by `ynchain status`), and the gauge
`ynchain_key_expiry_seconds{account=...}` (seconds left, negative once
expired) for every account of its organisation that has a validity end, so an
alert can fire at any threshold.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import trio

from ledger.consortium import DAY_MS, ChainConfig, KeyExpiry, format_utc

log = logging.getLogger("ynchain.keys")

WARN_EVERY_S = 86_400
# No account expires before this many years from now in practice; the gauge
# lists every account with a validity end up to it.
ALL_WITHIN_MS = 1000 * 365 * DAY_MS


def _now_ms() -> int:
    return int(time.time() * 1000)


class KeyExpiryWatch:
    def __init__(self, config: Callable[[], ChainConfig], org: str, warning_days: int,
                 clock_ms: Callable[[], int] = _now_ms) -> None:
        self._config = config
        self.org = org
        self.warning_ms = warning_days * DAY_MS
        self._clock_ms = clock_ms

    def expiring(self) -> list[KeyExpiry]:
        """Keys of this organisation's active accounts that expire within the
        warning period (or have expired), soonest first."""
        return self._config().expiring_keys(self.org, self._clock_ms(), self.warning_ms)

    def all(self) -> list[KeyExpiry]:
        """Every active account of this organisation with a validity end (the gauge)."""
        return self._config().expiring_keys(self.org, self._clock_ms(), ALL_WITHIN_MS)

    def status(self) -> list[dict]:
        return [{"account": k.account, "valid_until": format_utc(k.valid_until_ms),
                 "seconds_left": k.seconds_left} for k in self.expiring()]

    def warn(self) -> int:
        """Log one warning per expiring key; how many."""
        keys = self.expiring()
        for k in keys:
            if k.seconds_left <= 0:
                log.warning("the key of account %s (organisation %s) expired at %s: it signs nothing "
                            "any more; an admin can renew it (gov propose update_account)",
                            k.account, k.org, format_utc(k.valid_until_ms))
            else:
                log.warning("the key of account %s (organisation %s) expires at %s, in %.1f days; "
                            "renew it (gov propose update_account) or rotate to a new key",
                            k.account, k.org, format_utc(k.valid_until_ms), k.seconds_left / 86400)
        return len(keys)

    async def run(self) -> None:
        """Warn now and then once a day."""
        while True:
            self.warn()
            await trio.sleep(WARN_EVERY_S)
