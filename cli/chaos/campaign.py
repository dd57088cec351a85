"""Running one campaign: a fresh testnet, steady load, the seeded faults, the drain,
the final scan and the verdict.

Everything runs in one trio nursery: the link proxies, the monitor, the steady load
and the fault episodes one after another.  Whatever ends the run (the last episode,
an error, Ctrl-C, SIGTERM) the nursery is cancelled and `Testbed.close()` kills
every node it started.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import trio

from cli.client import NodeClient
from cli.errors import NodeError
from cli.submit import load_key_file

from . import attacks
from .checks import SIGTERM_TIMEOUT_S, verdict
from .load import EXPIRY, FLOOD, WAIT, Signer, SteadyLoad, TxBook, post
from .monitor import Monitor, Timeline
from .plan import Profile, episodes, first_pass_length
from .scan import scan_chains
from .testbed import DOWN, FROZEN, UP, Testbed

START_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 30.0
WARMUP_S = 4.0
FLOOD_BATCH = 2000
QUIET_TIMEOUT_S = 15.0
AFTERMATH_MEMPOOL = 500      # a look after a flood-like episode ends once every mempool is below this


FAULT_COUNTS = ("kills", "kill_all", "freezes", "partitions", "delays", "sigterms",
                "p2p_garbage_rounds", "conn_floods", "api_abuse_requests", "schemathesis_runs",
                "mempool_floods", "near_expiry_batches", "wait_batches")


async def _exited(proc, timeout_s: float) -> bool:
    """Wait (without blocking the event loop) until the process has exited."""
    with trio.move_on_after(timeout_s):
        while proc.poll() is None:
            await trio.sleep(0.02)
        return True
    return False


class Interrupted(Exception):
    """SIGTERM/SIGHUP to the campaign: stop, clean up, exit non-zero."""


class Campaign:
    def __init__(self, root: Path, seed: int, profile: Profile, minutes: float, nodes: int,
                 log: Callable[[str], None]) -> None:
        self.root = root
        self.seed = seed
        self.profile = profile
        self.minutes = minutes
        self.say = log
        self.began = time.monotonic()
        self.bed = Testbed(root / "testnet", nodes, profile.mempool_max_txs)
        genesis = self.bed.net.genesis
        seeds = [load_key_file(p).seed for p in self.bed.net.account_key_files("writer")]
        self.signer = Signer(seeds, genesis.chain_id, genesis.consensus.tx_validity_window)
        self.book = TxBook()
        self.load: SteadyLoad | None = None
        self.monitor = Monitor(self.bed, self.clock)
        self.timeline = Timeline()
        self.downs: list[tuple[float, int | None]] = []
        self.sigterms: list[dict] = []
        self.p2p = Counter()
        self.schemathesis: list[dict] = []
        self.counts = Counter()
        self.skipped: list[str] = []    # episodes that could not run, and why
        self.extra: dict = {"wait_batches": [], "floods": [], "conn_floods": []}
        # Runtime randomness (garbage bytes, which node gets each abuse request): seeded
        # too, though apart from the schedule.
        self.rng = random.Random(seed ^ 0x5EED)

    def clock(self) -> float:
        return time.monotonic() - self.began

    def event(self, what: str, **details) -> None:
        self.timeline.add(self.clock(), what, **details)
        extra = " ".join(f"{k}={v}" for k, v in details.items())
        self.say(f"[{self.clock():6.1f}s] {what} {extra}".rstrip())

    # -- the run ----------------------------------------------------------------------
    async def run(self) -> dict:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_signals)
                await nursery.start(self.bed.mesh.run)
                for i in range(self.bed.n):
                    self.bed.start(i)
                nursery.start_soon(self.monitor.run)
                await self._wait_ready()
                self.event("testnet ready", nodes=self.bed.n)
                self.load = load = SteadyLoad(self.bed, self.book, self.signer, self.clock,
                                              self.monitor.max_height, self.profile.load_batch,
                                              self.profile.load_interval_s)
                async with trio.open_nursery() as load_nursery:
                    self.monitor.load_on = True
                    load_nursery.start_soon(load.run)
                    await trio.sleep(WARMUP_S)
                    await self._faults()
                    self.monitor.load_on = False
                    load_nursery.cancel_scope.cancel()
                self.counts["load_requests"] = load.stats.requests
                await self._drain()
                scan = await trio.to_thread.run_sync(scan_chains, [self.bed.url(i) for i in range(self.bed.n)])
                await self._stop_all()
                nursery.cancel_scope.cancel()
        finally:
            self.monitor.close()
            self.bed.close()
        return self._summary(scan)

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
            async for signum in signals:
                raise Interrupted(f"received {signal.Signals(signum).name}")

    async def _wait_ready(self) -> None:
        with trio.fail_after(START_TIMEOUT_S):
            while True:
                tick = self.monitor.ticks[-1] if self.monitor.ticks else None
                if tick and all(s.answered for s in tick.nodes):
                    if await self._all_connected():
                        return
                await trio.sleep(0.2)

    async def _all_connected(self) -> bool:
        def check() -> bool:
            for i in range(self.bed.n):
                try:
                    with NodeClient(self.bed.url(i), timeout=2.0) as client:
                        peers = client.get("/status").get("peers", [])
                except (NodeError, AttributeError):
                    return False
                if len(peers) < self.bed.n - 1:
                    return False
            return True
        return await trio.to_thread.run_sync(check)

    async def _faults(self) -> None:
        budget_s = self.minutes * 60
        start = self.clock()
        first = first_pass_length(self.profile)
        bound = self.profile.max_fault_s
        for k, episode in enumerate(episodes(self.seed, self.profile, self.bed.n)):
            if k >= first and self.clock() - start >= budget_s:
                break
            if bound is not None and self.clock() - start >= bound:
                left = max(0, first - k)
                if left:
                    self.skipped.append(f"first pass cut short by the {bound:g}s bound: {left} episodes left")
                self.event("fault phase cut short", bound_s=bound, first_pass_left=left)
                break
            self.counts["episodes"] += 1
            await getattr(self, f"_ep_{episode.kind}")(**episode.params)
            await self._settle()

    async def _settle(self) -> None:
        """Bring back anything down or cut, then wait (bounded) until every node answers
        and the chain has moved on."""
        for i, node in enumerate(self.bed.nodes):
            if node.state == FROZEN:
                self.bed.thaw(i)
            elif node.state == DOWN:
                self.event("restart after crash", node=node.name)
                self.bed.start(i)
        self.bed.mesh.heal()
        base = self.monitor.max_height()
        with trio.move_on_after(SETTLE_TIMEOUT_S) as scope:
            while True:
                await trio.sleep(0.5)
                tick = self.monitor.ticks[-1]
                if all(s.answered for s in tick.nodes) and self.monitor.max_height() > base:
                    break
        if scope.cancelled_caught:
            self.event("not settled", within_s=SETTLE_TIMEOUT_S, height=self.monitor.max_height())
        await trio.sleep(1.0)

    # -- episodes ---------------------------------------------------------------------
    def _skip(self, why: str) -> None:
        self.skipped.append(why)
        self.event("skipped", why=why)

    def _name(self, i: int) -> str:
        return self.bed.nodes[i].name

    async def _kill(self, i: int, all_nodes: bool = False) -> None:
        """kill -9, as a crash would (a frozen node dies too)."""
        if self.bed.nodes[i].state == DOWN:
            return
        proc = self.bed.stop(i, signal.SIGKILL)
        self.downs.append((self.clock(), None if all_nodes else i))
        await _exited(proc, 10.0)
        self.bed.mark_down(i)

    async def _ep_kill(self, node: int, down_s: float) -> None:
        self.event("kill -9", node=self._name(node), down_s=down_s)
        await self._kill(node)
        self.counts["kills"] += 1
        await trio.sleep(down_s)
        self.bed.start(node)

    async def _ep_kill_all(self, down_s: float) -> None:
        self.event("kill -9 all", down_s=down_s)
        self.counts["kill_all"] += 1
        for i in range(self.bed.n):
            await self._kill(i, all_nodes=True)
        self.counts["kills"] += self.bed.n
        await trio.sleep(down_s)
        for i in range(self.bed.n):
            self.bed.start(i)

    async def _primary(self) -> int | None:
        def ask() -> int | None:
            votes = Counter()
            names = [n.name for n in self.bed.nodes]
            for i, node in enumerate(self.bed.nodes):
                if node.state != UP:
                    continue
                try:
                    with NodeClient(self.bed.url(i), timeout=2.0) as client:
                        primary = client.get("/status").get("primary")
                except (NodeError, AttributeError):
                    continue
                if primary in names:
                    votes[names.index(primary)] += 1
            return votes.most_common(1)[0][0] if votes else None
        return await trio.to_thread.run_sync(ask)

    async def _ep_freeze_primary(self, node: str, frozen_s: float) -> None:
        target = await self._primary()
        if target is None or self.bed.nodes[target].state != UP:
            self._skip("freeze_primary: no primary known")
            return
        self.event("SIGSTOP primary", node=self._name(target), frozen_s=frozen_s)
        self.bed.freeze(target)
        self.counts["freezes"] += 1
        await trio.sleep(frozen_s)
        self.bed.thaw(target)
        self.event("SIGCONT", node=self._name(target))

    async def _ep_isolate(self, node: int, cut_s: float) -> None:
        others = [i for i in range(self.bed.n) if i != node]
        self.event("partition: isolate", node=self._name(node), cut_s=cut_s)
        self.bed.mesh.partition([[node], others])
        self.counts["partitions"] += 1
        await trio.sleep(cut_s)
        self.bed.mesh.heal()
        self.event("heal")

    async def _ep_split(self, groups: list[list[int]], cut_s: float) -> None:
        self.event("partition: split", groups=[[self._name(i) for i in g] for g in groups], cut_s=cut_s)
        self.bed.mesh.partition(groups)
        self.counts["partitions"] += 1
        await trio.sleep(cut_s)
        self.bed.mesh.heal()
        self.event("heal")

    async def _ep_delay(self, links: list[tuple[int, int]], delay_ms: int, for_s: float) -> None:
        self.event("delay links", links=len(links), delay_ms=delay_ms, for_s=for_s)
        self.counts["delays"] += 1
        for a, b in links:
            self.bed.mesh.link(a, b).set_delay(delay_ms / 1000)
        await trio.sleep(for_s)
        self.bed.mesh.heal()

    async def _ep_p2p_garbage(self) -> None:
        self.event("p2p garbage and stranger handshakes", nodes=self.bed.n)
        self.counts["p2p_garbage_rounds"] += 1
        genesis = self.bed.net.genesis

        async def one(i: int) -> None:
            outcome = await attacks.p2p_garbage(self.bed.net.nodes[i].p2p[1], random.Random(self.rng.random()),
                                                genesis.chain_id, genesis.hash)
            self.p2p.update(outcome)
        async with trio.open_nursery() as nursery:
            for i, node in enumerate(self.bed.nodes):
                if node.state == UP:
                    nursery.start_soon(one, i)

    async def _ep_conn_flood(self, per_port: int, for_s: float, restart: list[int]) -> None:
        ports = [n.p2p[1] for n in self.bed.net.nodes]
        self.event("connection flood", per_port=per_port, for_s=for_s,
                   restart=[self._name(i) for i in restart])
        stats = Counter()
        self.counts["conn_floods"] += 1
        async with trio.open_nursery() as nursery:
            nursery.start_soon(attacks.connection_flood, ports, per_port, for_s, stats)
            await trio.sleep(1.0)       # the flood's connections are in place
            for i in restart:
                await self._kill(i)
                self.counts["kills"] += 1
            self.event("kill -9 under the flood", nodes=[self._name(i) for i in restart])
            await trio.sleep(0.5)
            for i in restart:
                self.bed.start(i)
        self.extra["conn_floods"].append(dict(stats))
        self.event("flood over", **dict(stats))

    async def _ep_api_abuse(self) -> None:
        urls = [self.bed.url(i) for i, node in enumerate(self.bed.nodes) if node.state == UP]
        answers = await trio.to_thread.run_sync(attacks.api_abuse, urls, random.Random(self.rng.random()))
        answered = attacks.record_abuse(self.book, answers)
        self.counts["api_abuse_requests"] += answered
        self.event("API abuse", answered=answered)

    async def _ep_schemathesis(self, node: int, seed: int, examples: int) -> None:
        if self.bed.nodes[node].state != UP:
            node = next(i for i, n in enumerate(self.bed.nodes) if n.state == UP)
        self.event("schemathesis", node=self._name(node), seed=seed, examples=examples)
        workdir = self.root / f"schemathesis-{len(self.schemathesis)}"
        workdir.mkdir(parents=True, exist_ok=True)
        outcome = await attacks.schemathesis_run(self.bed, node, seed, examples,
                                                 self.profile.schemathesis_s, workdir)
        self.schemathesis.append(outcome)
        self.counts["schemathesis_runs"] += 1
        self.event("schemathesis done", exit_code=outcome.get("exit_code"))

    async def _send_batches(self, kind: str, node: int, batches, valid_until: int, path: str,
                            timeout_s: float) -> float:
        """POST batches one after another to one node; seconds it took."""
        began = trio.current_time()
        with NodeClient(self.bed.url(node), timeout=timeout_s) as client:
            for batch in batches:
                if self.bed.nodes[node].state != UP:
                    break
                asked_at = self.clock()
                status, doc = await trio.to_thread.run_sync(
                    post, client, path, batch.body, "application/msgpack", timeout_s,
                    abandon_on_cancel=True)
                self.book.record(kind, node, batch.ids, valid_until, status, doc, asked_at, path)
        return trio.current_time() - began

    async def _aftermath(self) -> None:
        """After a flood-like episode, under the steady load: watch until every mempool
        is nearly empty again, at most the profile's aftermath_s (long enough to see a
        stall, a lonely view change or stranded txs)."""
        began = self.clock()
        with trio.move_on_after(self.profile.aftermath_s):
            while True:
                await trio.sleep(0.5)
                tick = self.monitor.ticks[-1]
                if all(s.answered and s.mempool is not None and s.mempool < AFTERMATH_MEMPOOL
                       for s in tick.nodes):
                    break
        tick = self.monitor.ticks[-1]
        self.event("aftermath", seconds=round(self.clock() - began, 1),
                   mempools=[s.mempool for s in tick.nodes])

    async def _quiet(self) -> int | None:
        """Pause the steady load and wait (bounded) until every mempool is empty and all
        nodes are at one height: the chain then stands still (no empty blocks).  The
        height, or None if it did not get quiet."""
        self.load.paused = True
        self.monitor.load_on = False
        with trio.move_on_after(QUIET_TIMEOUT_S):
            while True:
                await trio.sleep(0.5)
                tick = self.monitor.ticks[-1]
                heights = {s.height for s in tick.nodes}
                if (self.load.in_flight == 0 and len(heights) == 1
                        and all(s.answered and s.mempool == 0 for s in tick.nodes)):
                    return heights.pop()
        return None

    def _resume_load(self) -> None:
        self.load.paused = False
        self.monitor.load_on = True

    async def _ep_mempool_flood(self, txs_per_node: int) -> None:
        n = self.bed.n
        valid_until = self.monitor.max_height() + self.signer.window
        batches = await trio.to_thread.run_sync(self.signer.batches, txs_per_node * n, FLOOD_BATCH,
                                                valid_until, n)
        self.event("mempool flood", txs=txs_per_node * n, batch=FLOOD_BATCH)
        self.counts["mempool_floods"] += 1
        before = Counter(self.book.tx_refusals)
        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(self._send_batches, FLOOD, i, [b for b in batches if b.node == i],
                                   valid_until, "/txs", 60.0)
        refused = Counter(self.book.tx_refusals) - before
        self.extra["floods"].append({"txs": txs_per_node * n, "refused": dict(refused)})
        self.event("flood sent", refused=dict(refused))
        await self._aftermath()

    async def _ep_near_expiry(self, node: int, txs: int) -> None:
        """As the issue saw it: a quiet chain at height h, one request of `txs` txs
        with valid_until = h + 1 (more than one block holds), then load again."""
        if self.bed.nodes[node].state != UP:
            return
        height = await self._quiet()
        try:
            if height is None:
                self._skip("near_expiry: the chain did not get quiet (mempools never emptied)")
                return
            [batch] = await trio.to_thread.run_sync(self.signer.batches, txs, txs, height + 1)
            self.event("near-expiry batch", node=self._name(node), txs=txs, valid_until=height + 1)
            self.counts["near_expiry_batches"] += 1
            await self._send_batches(EXPIRY, node, [batch], height + 1, "/txs", 60.0)
        finally:
            self._resume_load()
        await self._aftermath()

    async def _ep_wait_batches(self, nodes: list[int], txs: int) -> None:
        valid_until = self.monitor.max_height() + self.signer.window
        batches = await trio.to_thread.run_sync(self.signer.batches, txs * len(nodes), txs, valid_until,
                                                len(nodes))
        self.event("large wait=true batches", nodes=[self._name(i) for i in nodes], txs=txs)
        self.counts["wait_batches"] += len(nodes)
        wait_s = self.profile.big_wait_timeout_s
        path = f"/txs?wait=true&timeout={wait_s:g}"
        took: dict[str, float] = {}

        async def one(k: int, i: int) -> None:
            took[self._name(i)] = round(await self._send_batches(
                WAIT, i, [batches[k]], valid_until, path, wait_s + 60), 1)
        async with trio.open_nursery() as nursery:
            for k, i in enumerate(nodes):
                nursery.start_soon(one, k, i)
        self.extra["wait_batches"].append({"txs": txs, "answer_s": took})
        self.event("wait=true answered", seconds=took)
        await self._aftermath()

    async def _ep_sigterm(self, node: int, down_s: float) -> None:
        if self.bed.nodes[node].state != UP:
            return
        self.event("SIGTERM under load", node=self._name(node))
        self.downs.append((self.clock(), node))
        code, seconds = await self._terminate(node)
        self.sigterms.append({"node": self._name(node), "exit_code": code, "seconds": round(seconds, 1)})
        self.counts["sigterms"] += 1
        await trio.sleep(down_s)
        self.bed.start(node)

    async def _terminate(self, i: int) -> tuple[int | None, float]:
        """SIGTERM; (exit code, or None if it had to be killed; seconds it took)."""
        began = trio.current_time()
        proc = self.bed.stop(i, signal.SIGTERM)
        code = proc.returncode if await _exited(proc, SIGTERM_TIMEOUT_S + 5) else None
        if code is None:
            self.bed.stop(i, signal.SIGKILL)
            await _exited(proc, 10.0)
        self.bed.mark_down(i)
        return code, trio.current_time() - began

    # -- the end ---------------------------------------------------------------------------
    async def _drain(self) -> None:
        """No more faults or load: wait (bounded) until every mempool is empty and all
        nodes are at one height."""
        for i, node in enumerate(self.bed.nodes):
            if node.state == FROZEN:
                self.bed.thaw(i)
            elif node.state == DOWN:
                self.bed.start(i)
        self.bed.mesh.heal()
        self.event("drain", up_to_s=self.profile.drain_s)
        with trio.move_on_after(self.profile.drain_s):
            while True:
                await trio.sleep(0.5)
                tick = self.monitor.ticks[-1]
                if (all(s.answered and s.mempool == 0 for s in tick.nodes)
                        and len({s.height for s in tick.nodes}) == 1):
                    break
        tick = self.monitor.ticks[-1]
        self.event("drained", mempools=[s.mempool for s in tick.nodes], heights=[s.height for s in tick.nodes])

    async def _stop_all(self) -> None:
        for i, node in enumerate(self.bed.nodes):
            if node.state == UP:
                code, seconds = await self._terminate(i)
                self.sigterms.append({"node": node.name, "exit_code": code, "seconds": round(seconds, 1),
                                      "at": "end"})

    def _summary(self, scan) -> dict:
        names = [n.name for n in self.bed.nodes]
        checks, figures = verdict(
            names=names, quorum=self.bed.quorum, ticks=self.monitor.ticks, book=self.book, scan=scan,
            downs=self.downs, crashes=self.bed.crashes, sigterms=self.sigterms, p2p=self.p2p,
            schemathesis=self.schemathesis, rss_limit_mb=self.profile.rss_limit_mb,
            skipped=self.skipped)
        failed = sorted(k for k, v in checks.items() if not v["ok"])
        c = self.counts
        return {
            "ok": not failed,
            "failed": failed,
            "seed": self.seed,
            "profile": self.profile.name,
            "minutes": self.minutes,
            "nodes": self.bed.n,
            "mempool_max_txs": self.profile.mempool_max_txs,
            "duration_s": round(self.clock(), 1),
            "faults": {k: c[k] for k in FAULT_COUNTS},
            "episodes": c["episodes"], "skipped": self.skipped,
            **figures,
            "checks": checks,
            "details": {**self.extra, "proxy": self.bed.mesh.stats(), "load_requests": c["load_requests"],
                        "schemathesis": self.schemathesis},
            "timeline": self.timeline.events,
        }
