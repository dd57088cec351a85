"""Real-clock timers for the consensus core's SetTimer / CancelTimer actions.

One task sleeps until the earliest deadline; arming or cancelling a timer just
edits a dict and wakes that task, so the consensus step stays synchronous.
"""

from __future__ import annotations

from typing import Callable

import trio


class Timers:
    def __init__(self, fire: Callable[[str, int], None]) -> None:
        self._fire = fire
        self._armed: dict[str, tuple[float, int]] = {}   # kind -> (deadline, token)
        self._changed = trio.Event()

    def set(self, kind: str, delay_ms: int, token: int) -> None:
        self._armed[kind] = (trio.current_time() + delay_ms / 1000, token)
        self._changed.set()

    def cancel(self, kind: str) -> None:
        if self._armed.pop(kind, None) is not None:
            self._changed.set()

    async def run(self) -> None:
        while True:
            self._changed = trio.Event()
            if not self._armed:
                await self._changed.wait()
                continue
            deadline = min(d for d, _ in self._armed.values())
            with trio.move_on_at(deadline):
                await self._changed.wait()
                continue
            now = trio.current_time()
            due = [(kind, token) for kind, (d, token) in self._armed.items() if d <= now]
            for kind, token in due:
                del self._armed[kind]
            for kind, token in due:
                self._fire(kind, token)
