"""The consortium configuration as of any committed height (GET /config?height=H).

The state keeps, per block that changed the configuration, the records it
changed (gov/history, ledger.config_state).  The configuration after height H
is genesis plus every change up to H, so it only differs between change
heights: this keeps the sorted change heights (read incrementally as the
chain grows) and a few rebuilt configurations, keyed by change height.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict

from ledger import config_state
from ledger.consortium import ChainConfig
from ledger.contracts.base import ScanState

MAX_CACHED = 16          # rebuilt configurations kept (each one is the size of the consortium)


class ConfigHistory:
    def __init__(self, genesis_config: ChainConfig, scan: ScanState) -> None:
        self._genesis = genesis_config
        self._scan = scan
        self._heights: list[int] = []         # heights of the blocks that changed it, ascending
        self._cache: OrderedDict[int, ChainConfig] = OrderedDict()

    def _refresh(self) -> None:
        last = self._heights[-1] if self._heights else None
        self._heights += [h for h, _ in config_state.history(self._scan, after=last)]

    def at(self, height: int) -> ChainConfig:
        """The configuration in force after committed block `height`."""
        self._refresh()
        i = bisect.bisect_right(self._heights, height)
        if i == 0:
            return self._genesis
        changed_at = self._heights[i - 1]
        config = self._cache.get(changed_at)
        if config is None:
            config = config_state.config_at(self._genesis, self._scan, changed_at)
            self._cache[changed_at] = config
            if len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(changed_at)
        return config
