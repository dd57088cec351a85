"""Giving freed heap memory back to the system after a burst.

A flood (tens of thousands of txs, 5,000-tx wait=true answers, sync answers of 64
blocks) leaves glibc's heaps full of free chunks: after two 60k-tx floods a node's
main heap held 35 MB free of 75 MB, and glibc returns only what lies at the top of
a heap, so that memory stayed resident for good.  `malloc_trim(0)` releases the
free pages anywhere in every arena (the main heap and the worker threads').

Every TRIM_INTERVAL_S on a worker thread, so the event loop goes on meanwhile: on a
quiet heap a trim finds nothing and costs microseconds; after a burst it costs a
few milliseconds of that thread.  Only on glibc (elsewhere there is no
malloc_trim, and `HeapTrimmer.available` is False).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Callable

import trio

log = logging.getLogger(__name__)

TRIM_INTERVAL_S = 30.0


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):       # not glibc (musl, macOS)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class HeapTrimmer:
    """Trims with `trim` (malloc_trim's signature); None where there is none."""

    def __init__(self, trim: Callable[[int], int] | None, interval_s: float = TRIM_INTERVAL_S) -> None:
        self._trim = trim
        self.interval_s = interval_s
        self.trims = 0
        self.released = 0          # trims that gave memory back

    @classmethod
    def for_this_system(cls) -> "HeapTrimmer":
        return cls(_glibc_malloc_trim())

    @property
    def available(self) -> bool:
        return self._trim is not None

    def trim_now(self) -> bool:
        """Release free heap pages; True if any were given back."""
        if self._trim is None:
            return False
        self.trims += 1
        released = bool(self._trim(0))
        self.released += released
        return released

    async def run(self) -> None:
        if self._trim is None:
            log.debug("no malloc_trim on this system; freed heap stays with the process")
            return
        while True:
            await trio.sleep(self.interval_s)
            await trio.to_thread.run_sync(self.trim_now)
