"""The one action executor: carries out a Replica's actions for a Host.

The node (node/core/driver.py), the simulator (sim/world.py) and the
scripted test cluster each implement `Host` (how to persist, send, deliver,
arm timers...); the rules the core relies on live here, once:

  * actions are carried out in list order, dispatched on their type;
  * consecutive PersistSafety actions merge into one write (the last record,
    payload stores and deletes applied in order), and that write is made
    (Host.persist returns only once it is durable) before any Send or
    Broadcast after it is handed over, and at the latest at the end of the list;
  * Host.deliver returns the follow-up events (Executed, ...); they are fed
    back to the replica only after the whole list is carried out, never from
    inside it, so a newer record is never overwritten by an older pending one;
  * a step is not re-entrant: a Host calling back into step() or start()
    from inside an action is a bug (LocalProtocolError).

Like etcd raft's Ready loop: the core decides, the executor orders, the host
does the I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterable, Protocol, Sequence

from .errors import LocalProtocolError
from .events import (Action, Broadcast, CancelTimer, Deliver, Event, PersistSafety,
                     ReportFault, RequestSync, Send, SetTimer, ViewChanged)
from .messages import Message
from .replica import Replica


class Host(Protocol):
    """What a driver does with each action (see consensus/events.py)."""

    def persist(self, action: PersistSafety) -> None:
        """Write the record and its payload changes; durable when it returns."""

    def send(self, to: int, message: Message) -> None: ...

    def broadcast(self, message: Message) -> None: ...

    def deliver(self, action: Deliver) -> Iterable[Event]:
        """Execute and store the committed block; the events that follow from
        it (Executed(seq, block hash), ...) to feed back to the replica."""

    def set_timer(self, kind: str, delay_ms: int, token: int) -> None: ...

    def cancel_timer(self, kind: str) -> None: ...

    def request_sync(self, action: RequestSync) -> None: ...

    def fault(self, sender: int, reason: str) -> None: ...

    def view_changed(self, view: int, carried: tuple[tuple[int, bytes], ...]) -> None: ...


class Executor:
    __slots__ = ("replica", "host", "_running")

    def __init__(self, replica: Replica, host: Host) -> None:
        self.replica = replica
        self.host = host
        self._running = False

    def start(self) -> None:
        """Carry out what the replica asks for at boot (Replica.start)."""
        self._run(deque(), boot=True)

    def step(self, events: Iterable[Event]) -> None:
        """Feed `events` to the replica, carrying out the actions of each (and
        of every follow-up event) before the next."""
        self._run(deque(events), boot=False)

    def _run(self, queue: deque[Event], boot: bool) -> None:
        if self._running:
            raise LocalProtocolError("Executor.step is not re-entrant: a host action called back")
        self._running = True
        try:
            replica = self.replica
            if boot:
                self._execute(replica.start(), queue)
            while queue:
                self._execute(replica.handle(queue.popleft()), queue)
        finally:
            self._running = False

    def _execute(self, actions: Sequence[Action], queue: deque[Event]) -> None:
        host = self.host
        pending: PersistSafety | None = None
        for action in actions:
            kind = type(action)
            if kind is PersistSafety:
                pending = action if pending is None else merge_persists(pending, action)
                continue
            if kind is Send:
                if pending is not None:
                    host.persist(pending)       # durable before the vote leaves
                    pending = None
                host.send(action.to, action.message)
            elif kind is Broadcast:
                if pending is not None:
                    host.persist(pending)
                    pending = None
                host.broadcast(action.message)
            else:
                carry_out = _OTHER_ACTIONS.get(kind)
                if carry_out is None:
                    raise LocalProtocolError(f"not a consensus action: {action!r}")
                carry_out(host, action, queue)
        if pending is not None:
            host.persist(pending)


def merge_persists(first: PersistSafety, then: PersistSafety) -> PersistSafety:
    """One write equivalent to writing `first`, then `then`: the later record
    (each supersedes the last) and the payload changes of both, in order."""
    changes: dict[tuple[int, bytes], bytes | None] = {}      # None: delete
    for action in (first, then):
        for seq, digest, payload in action.payloads:
            changes[(seq, digest)] = payload
        for key in action.dropped:
            changes[key] = None
    return PersistSafety(
        then.record,
        tuple((seq, digest, p) for (seq, digest), p in changes.items() if p is not None),
        tuple(key for key, p in changes.items() if p is None))


def _deliver(host: Host, action: Deliver, queue: deque[Event]) -> None:
    queue.extend(host.deliver(action))


_OTHER_ACTIONS: dict[type, Callable[[Host, Action, deque[Event]], None]] = {
    Deliver: _deliver,
    SetTimer: lambda host, a, _: host.set_timer(a.kind, a.delay_ms, a.token),
    CancelTimer: lambda host, a, _: host.cancel_timer(a.kind),
    RequestSync: lambda host, a, _: host.request_sync(a),
    ReportFault: lambda host, a, _: host.fault(a.sender, a.reason),
    ViewChanged: lambda host, a, _: host.view_changed(a.view, a.carried),
}
