"""Event logs of things that change hands (trace lots, receivables).

Each subject keeps a count of its events in its own record; event n is the
state entry `event/<subject>/<n, 8 digits>`:
    [kind, org, account, time_ms, height, tx_id, details]
(details: a small map of what happened).  Written by the tx that caused it,
read back in order by queries.
"""

from __future__ import annotations

from typing import Any

from .base import CallContext, ContractState, QueryReader
from .blocktime import local_time

EVENTS = "event"


def record_event(ctx: CallContext, state: ContractState, subject: str, seq: int, kind: str,
                 details: dict[str, Any]) -> None:
    state.put(f"{subject}/{seq:08d}",
              [kind, ctx.org, ctx.account.name, ctx.time_ms, ctx.height, ctx.tx_id, details], EVENTS)


def event_view(rec: list) -> dict[str, Any]:
    kind, org, account, time_ms, height, tx_id, details = rec
    return {"event": kind, "org": org, "account": account, "time_ms": time_ms,
            "time": local_time(time_ms), "height": height, "tx_id": tx_id.hex(), **details}


def read_events(reader: QueryReader, subject: str, limit: int) -> list[dict[str, Any]]:
    """The first `limit` events of `subject`, oldest first."""
    return [event_view(rec) for _, rec in reader.scan(EVENTS, subject + "/", None, limit)]
