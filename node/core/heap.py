"""Giving memory back to the operating system after a large drain.

A flood fills the mempool (tens of thousands of decoded txs, frames, proposals);
once it drains, CPython frees the objects but glibc keeps most of the freed
heap mapped, so the process's RSS stays near its peak for good.  glibc's
malloc_trim(0) returns the free pages.  It walks the heap (a few ms), so the
node calls it only after a large drain, not per block.  On a libc without
malloc_trim (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("ynchain.node")

# A drain of at least this many txs (from the pool's high-water mark down to an
# eighth of it) is worth a trim.
TRIM_AFTER_DRAINED_TXS = 10_000


def _malloc_trim():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


class DrainWatch:
    """Calls malloc_trim once the mempool has drained after filling up."""

    def __init__(self, trim=_TRIM) -> None:
        self._trim = trim
        self._high_water = 0
        self.trims = 0

    def observe(self, pool_size: int) -> None:
        if pool_size > self._high_water:
            self._high_water = pool_size
        elif (self._high_water - pool_size >= TRIM_AFTER_DRAINED_TXS
              and pool_size <= self._high_water // 8):
            self._high_water = pool_size
            if self._trim is not None:
                self._trim(0)
                self.trims += 1
                log.debug("mempool drained: free heap memory returned to the system")
