"""How long this node's commits take, for the view-change timeout
(consensus.events.CommitPace).

A block's commit time runs from when this node accepted its proposal (or
proposed it) to when it executed it.  Only blocks committed in the view they
were accepted in count: a proposal caught in a view change waits for the
change, which says nothing about how fast the chain commits when it works.
The pace is the slowest of the last PACE_WINDOW commit times, so one slow
block (a large one, a moment of CPU contention) raises the timeout at once,
and it comes back down PACE_WINDOW commits after the load is gone.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

PACE_WINDOW = 32          # commits the pace looks back on
MAX_PENDING = 1024        # accepted, uncommitted heights remembered (a window's worth)


class CommitPaceMeter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._accepted_at: dict[int, float] = {}     # height -> first acceptance
        self._commit_s: deque[float] = deque(maxlen=PACE_WINDOW)

    def accepted(self, height: int) -> None:
        if height not in self._accepted_at and len(self._accepted_at) < MAX_PENDING:
            self._accepted_at[height] = self._clock()

    def view_changed(self) -> None:
        self._accepted_at.clear()

    def committed(self, height: int) -> int | None:
        """Block `height` was executed now: the pace in ms (None before the
        first commit that counts)."""
        accepted = self._accepted_at.pop(height, None)
        for stale in [h for h in self._accepted_at if h < height]:
            del self._accepted_at[stale]
        if accepted is not None:
            self._commit_s.append(self._clock() - accepted)
        return round(max(self._commit_s) * 1000) if self._commit_s else None
