"""What the campaign watches while it runs, and the pure analyses over it.

The monitor samples every node about twice a second: GET /status (height, view,
tip hash, mempool), VmRSS from /proc, and how many lines its log grew by.  Each
sample also records what the campaign itself had done to the network at that
moment: which nodes were up, and whether some quorum of up nodes could reach each
other through uncut links ("healthy").  The analyses below turn the samples into
stalls, lonely view changes, unresponsive APIs, RSS peaks and log floods.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import trio

from cli import procs
from cli.client import NodeClient
from cli.errors import NodeError

from .testbed import UP, Testbed

SAMPLE_INTERVAL_S = 0.5
STATUS_TIMEOUT_S = 2.0
STALL_REPORT_S = 3.0          # stalls at least this long are listed in the summary
LOG_WINDOW_S = 10.0


@dataclass(slots=True)
class NodeSample:
    state: str                 # up | frozen | down (what the campaign did)
    in_quorum: bool            # up and in some quorum of mutually reachable up nodes
    answered: bool = False
    height: int | None = None
    view: int | None = None
    tip: str | None = None
    mempool: int | None = None
    rss_kb: int | None = None        # VmRSS: all resident pages, file-backed ones included
    anon_kb: int | None = None       # RssAnon: the private memory the node itself holds
    log_lines: int = 0         # lines the log grew by since the previous sample


@dataclass(slots=True)
class Tick:
    t: float                   # seconds since the campaign started
    healthy: bool
    load_on: bool
    nodes: list[NodeSample]


def quorum_members(states: Sequence[str], cut: Iterable[tuple[int, int]], quorum: int) -> set[int]:
    """Nodes that belong to some set of >= quorum up nodes with no cut link among them."""
    cut = set(cut)
    up = [i for i, s in enumerate(states) if s == UP]
    members: set[int] = set()
    for size in range(len(up), quorum - 1, -1):
        for group in itertools.combinations(up, size):
            if not any((a, b) in cut for a, b in itertools.combinations(group, 2)):
                members.update(group)
    return members


class Monitor:
    def __init__(self, bed: Testbed, clock) -> None:
        self.bed = bed
        self.clock = clock                       # seconds since the campaign started
        self.ticks: list[Tick] = []
        self.load_on = False
        self._clients = [NodeClient(bed.url(i), timeout=STATUS_TIMEOUT_S) for i in range(bed.n)]
        self._log_offsets = [0] * bed.n
        self._top = 0

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def _status(self, i: int) -> dict | None:
        try:
            doc = self._clients[i].get("/status")
        except NodeError:
            return None
        return doc if isinstance(doc, dict) else None

    def _new_log_lines(self, i: int) -> int:
        path: Path = self.bed.nodes[i].home / "node.log"
        try:
            with open(path, "rb") as fh:
                fh.seek(self._log_offsets[i])
                data = fh.read(8 * 1024 * 1024)
        except OSError:
            return 0
        self._log_offsets[i] += len(data)
        return data.count(b"\n")

    async def sample(self) -> Tick:
        bed = self.bed
        bed.reap_crashes(self.clock())
        states = [node.state for node in bed.nodes]
        members = quorum_members(states, bed.mesh.cut_pairs(), bed.quorum)
        samples = [NodeSample(states[i], i in members) for i in range(bed.n)]
        load_on = self.load_on

        async def one(i: int) -> None:
            s = samples[i]
            pid = bed.nodes[i].pid
            if pid is not None:
                s.rss_kb, s.anon_kb = procs.memory_kb(pid)
            s.log_lines = self._new_log_lines(i)
            if s.state != UP:
                return
            doc = await trio.to_thread.run_sync(self._status, i, abandon_on_cancel=True)
            if doc is not None:
                s.answered = True
                s.height, s.view = _int(doc.get("height")), _int(doc.get("view"))
                s.mempool = _int(doc.get("mempool"))
                tip = doc.get("last_block_hash")
                s.tip = tip if isinstance(tip, str) else None

        t = self.clock()
        async with trio.open_nursery() as nursery:
            for i in range(bed.n):
                nursery.start_soon(one, i)
        tick = Tick(t, bool(members), load_on, samples)
        self._top = max([self._top, *(s.height for s in samples if s.height is not None)])
        self.ticks.append(tick)
        return tick

    async def run(self) -> None:
        while True:
            began = trio.current_time()
            await self.sample()
            await trio.sleep_until(began + SAMPLE_INTERVAL_S)

    def max_height(self) -> int:
        """The highest height any node has reported (heights never go down)."""
        return self._top


def _int(value) -> int | None:
    return value if type(value) is int else None


# -- analyses (pure) ----------------------------------------------------------------------

@dataclass
class Stall:
    start: float               # last height increase before it
    end: float                 # next increase, or the end of the samples
    counted_s: float           # seconds of it while healthy and under load

    def to_json(self) -> dict:
        return {"from_s": round(self.start, 1), "to_s": round(self.end, 1),
                "counted_s": round(self.counted_s, 1)}


def stalls(ticks: Sequence[Tick]) -> list[Stall]:
    """Periods without any height increase anywhere, counting only the time during
    which a quorum was up and connected and load was offered; longest first."""
    found: list[Stall] = []
    best = None
    start = counted = None
    previous_t = None
    for tick in ticks:
        heights = [s.height for s in tick.nodes if s.height is not None]
        top = max(heights, default=None)
        if top is not None and (best is None or top > best):
            if start is not None and counted > 0:
                found.append(Stall(start, tick.t, counted))
            best, start, counted = top, tick.t, 0.0
        elif start is not None and previous_t is not None and tick.healthy and tick.load_on:
            counted += tick.t - previous_t
        previous_t = tick.t
    if start is not None and counted:
        found.append(Stall(start, ticks[-1].t, counted))
    return sorted(found, key=lambda s: -s.counted_s)


@dataclass
class Streak:
    node: int
    start: float
    seconds: float
    detail: str = ""

    def to_json(self, names: Sequence[str]) -> dict:
        out = {"node": names[self.node], "from_s": round(self.start, 1), "seconds": round(self.seconds, 1)}
        if self.detail:
            out["detail"] = self.detail
        return out


def lonely_views(ticks: Sequence[Tick], n: int, quorum: int) -> tuple[list[Streak], list[Streak]]:
    """(lonely, carried): runs during which a node that could reach a quorum sat in a
    view above every other answering node's (at least quorum - 1 answering).

    `lonely` runs are view changes a node in step with the others made by itself
    while it could reach a quorum.  `carried` runs belong to a node that went ahead
    while cut off (timing out alone is what PBFT does there) and has not been back
    in step since, even if it kept climbing after the heal: not a failure here, but
    reported, since such a node takes no part in consensus until the others reach
    its view."""
    lonely: list[Streak] = []
    carried_runs: list[Streak] = []
    for i in range(n):
        carried = None          # the view it had when last cut off (None: in step since)
        run: tuple[list[Streak], float, float, str] | None = None   # (into, start, last, detail)

        def close(end: float) -> None:
            nonlocal run
            if run is not None:
                into, start, _, detail = run
                into.append(Streak(i, start, end - start, detail))
                run = None
        for tick in ticks:
            me = tick.nodes[i]
            if me.state != UP or not me.in_quorum:
                close(tick.t)
                if me.view is not None:
                    carried = me.view
                continue
            others = [s.view for j, s in enumerate(tick.nodes) if j != i and s.view is not None]
            if me.view is None or len(others) < quorum - 1:
                continue
            if me.view <= max(others):
                close(tick.t)
                carried = None
                continue
            into = carried_runs if carried is not None else lonely
            if run is not None and run[0] is not into:
                close(tick.t)
            detail = f"view {me.view} while the others were at <= {max(others)}"
            run = (into, tick.t if run is None else run[1], tick.t, detail)
        if run is not None:
            close(run[2])
    key = lambda s: -s.seconds   # noqa: E731
    return sorted(lonely, key=key), sorted(carried_runs, key=key)


def unresponsive(ticks: Sequence[Tick], n: int) -> list[Streak]:
    """Runs during which a running, unfrozen node that had answered since its
    (re)start did not answer GET /status within the sampling timeout."""
    found = []
    for i in range(n):
        answered_once = False
        start = None
        for tick in ticks:
            s = tick.nodes[i]
            if s.state != UP:
                answered_once = False
            if start is not None and (s.state != UP or s.answered):
                found.append(Streak(i, start, tick.t - start))
                start = None
            if s.answered:
                answered_once = True
            elif s.state == UP and answered_once and start is None:
                start = tick.t
        if start is not None:
            found.append(Streak(i, start, ticks[-1].t - start))
    return sorted(found, key=lambda s: -s.seconds)


def max_memory_mb(ticks: Sequence[Tick], n: int, field: str = "rss_kb") -> list[float | None]:
    """Per node, the highest sample of `field` ("rss_kb" or "anon_kb") in MB."""
    peaks: list[float | None] = [None] * n
    for tick in ticks:
        for i, s in enumerate(tick.nodes):
            kb = getattr(s, field)
            if kb is not None:
                peaks[i] = max(peaks[i] or 0.0, kb / 1024)
    return [None if p is None else round(p, 1) for p in peaks]


def max_log_rate(ticks: Sequence[Tick], n: int, window_s: float = LOG_WINDOW_S) -> list[float]:
    """Per node, the most log lines per second over any `window_s` window."""
    rates = []
    for i in range(n):
        window: deque[tuple[float, int]] = deque()
        total = 0
        best = 0.0
        for tick in ticks:
            window.append((tick.t, tick.nodes[i].log_lines))
            total += tick.nodes[i].log_lines
            while window and window[0][0] <= tick.t - window_s:
                total -= window.popleft()[1]
            best = max(best, total / window_s)
        rates.append(round(best, 1))
    return rates


def view_changes(ticks: Sequence[Tick], n: int) -> list[dict]:
    out = []
    for i in range(n):
        views = [tick.nodes[i].view for tick in ticks if tick.nodes[i].view is not None]
        changes = sum(1 for a, b in zip(views, views[1:]) if b > a)
        out.append({"final": views[-1] if views else None, "max": max(views, default=None),
                    "changes_seen": changes})
    return out


def live_forks(ticks: Sequence[Tick]) -> list[dict]:
    """Samples where two nodes reported the same height with different tip hashes."""
    forks = []
    for tick in ticks:
        tips: dict[int, set[str]] = {}
        for s in tick.nodes:
            if s.height is not None and s.tip is not None:
                tips.setdefault(s.height, set()).add(s.tip)
        forks += [{"t": round(tick.t, 1), "height": h, "hashes": sorted(v)}
                  for h, v in tips.items() if len(v) > 1]
    return forks


@dataclass
class Timeline:
    """The faults the campaign applied, in order (seconds since start)."""
    events: list[dict] = field(default_factory=list)

    def add(self, t: float, what: str, **details) -> None:
        self.events.append({"t": round(t, 1), "what": what, **details})
