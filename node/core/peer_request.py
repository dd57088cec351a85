"""One request to a peer at a time, answered by that peer or given up on.

Block sync (GET_BLOCKS) and the checkpoint fetch (GET_CHECKPOINTS) each ask
one peer and wait for its answer, which the dispatcher hands over when it
arrives (`answered`); an answer from another peer, or after the wait ended,
is dropped.
"""

from __future__ import annotations

from typing import Any, Callable

import trio

REQUEST_TIMEOUT_S = 5.0


class PeerRequest:
    __slots__ = ("_send", "_peer", "_done", "_answer")

    def __init__(self, send: Callable[[bytes, int, object], bool]) -> None:
        self._send = send
        self._peer: bytes | None = None        # asked, and not answered yet
        self._done = trio.Event()
        self._answer: Any = None

    async def ask(self, peer: bytes, msg_type: int, payload: object,
                  timeout: float = REQUEST_TIMEOUT_S) -> Any | None:
        """Send the request and return `peer`'s answer; None if it could not
        be sent (not connected) or no answer came within `timeout`."""
        self._peer, self._done, self._answer = peer, trio.Event(), None
        try:
            if not self._send(peer, msg_type, payload):
                return None
            with trio.move_on_after(timeout):
                await self._done.wait()
            return self._answer
        finally:
            self._peer = None

    def answered(self, peer: bytes, answer: Any) -> None:
        if peer == self._peer and not self._done.is_set():
            self._answer = answer
            self._done.set()
