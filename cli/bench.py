"""`ynchain bench`: committed throughput and submit-to-commit latency of a testnet.

Everything that costs client CPU happens before the clock starts: transactions
are signed in a process pool and packed into ready-made msgpack batch bodies.
Workloads: `kv` (puts of distinct keys, round-robin over the accounts with the
writer role) and `mixed` (the business contracts' calls, in the dependent
rounds of cli/workload.py; a batch never splits a round, so each round reaches
one node in order). Presigned batches go to a temporary file and are read back
as they are sent, so a 10-minute run fits in memory. The run then only
POSTs bodies (one thread and one persistent connection per node, batches dealt
round-robin over the nodes, the threads starting staggered) while one observer
follows the last node's block stream with tx ids (`/events/blocks?tx_ids=true`:
no request per block, and not node0, the primary of view 0) and records when
each block is seen; per tx, latency = that moment minus the moment its batch
was sent (every tx, or an even sample by id beyond MAX_TIMED_TXS). Every
committed tx is counted, so run it on a testnet nobody else loads. In-flight
txs are capped below the mempool's size so the load is closed-loop instead of
a flood of `mempool_full` refusals. The report adds a timeline (every 10 s:
tx/s, node CPU per tx, largest RSS), view changes during the run and disk
bytes written per 100k txs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import click

from ledger.codec import array_header
from ledger.crypto import KeyPair
from ledger.tx import Transaction

from ledger.contracts.fiscal import payer_id_hash

from . import procs, workload
from .errors import CliError, NodeError
from .client import NodeClient
from .launch import bring_down, bring_up
from .layout import Testnet, init_testnet, load_testnet
from .ports import free_port_base
from .submit import chain_head, load_key_file, random_nonce
from .target import print_fields, print_json

PRESIGN_RATE = 5000          # with --duration: txs signed per second of run time (above
                             # what a 2-core testnet commits, so the run is not cut short)
MAX_PRESIGNED = 3_000_000    # 10 minutes at PRESIGN_RATE; on disk (171 bytes a kv put: ~510 MB), not in memory
# Every presigned tx is valid for the testnet's tx_validity_window blocks from
# the start, so a run presigns at most this many per block of it: a saturated
# run here commits ~1,100 per block, and more would expire before their turn.
PRESIGNED_PER_WINDOW_BLOCK = 1_000
# A temporary testnet's window: with the default 1,000 blocks a saturated run
# here expires after ~400 s (~1M txs), short of a 10-minute run.
BENCH_VALIDITY_WINDOW = 10_000
MAX_INFLIGHT = 20_000        # well below the default mempool (50,000 txs)
MAX_TIMED_TXS = 200_000      # txs whose latency a run measures (a sample beyond this)
TIMELINE_S = 10.0            # the report's timeline: one point per this many seconds
STAGGER_S = 0.1              # saturated runs: submitters start this far apart, in all
STALL_TIMEOUT_S = 30.0       # no commit of ours for this long: give up
RECEIPT_SAMPLE = 200         # committed txs whose receipts are checked afterwards
POOL_THRESHOLD = 4000        # below this, signing in-process beats starting a pool
SIGN_CHUNK = 2000


# -- signing (runs in worker processes) ------------------------------------------------

@dataclass(frozen=True, slots=True)
class Workload:
    """What to sign: `kv` over `seeds`, or `mixed` with the seed of each story account."""
    name: str
    seeds: list[bytes] | None = None
    account_seeds: dict[str, bytes] | None = None
    payer_hashes: list[str] | None = None

    @property
    def unit(self) -> int:
        """Txs that must stay together, in order, in one batch."""
        return workload.ROUND if self.name == "mixed" else 1


def _sign_chunk(load: Workload, chain_id: str, valid_until: int, tag: str,
                start: int, stop: int) -> list[tuple[bytes, bytes]]:
    """(id, encoded tx) for txs start..stop-1 (kv: tx i is sent by account i % len(seeds);
    mixed: start and stop are multiples of a round)."""
    nonce = random_nonce() >> 1     # room for + i without overflowing 64 bits
    out = []
    if load.name == "kv":
        keys = [KeyPair.from_seed(s) for s in load.seeds]
        for i in range(start, stop):
            tx = Transaction.create(keys[i % len(keys)], chain_id, nonce + i, valid_until,
                                    "kv", "put", {"key": f"bench/{tag}/{i}", "value": i})
            out.append((tx.id, tx.encode()))
        return out
    keys = {account: KeyPair.from_seed(s) for account, s in load.account_seeds.items()}
    run_tag = int(tag, 16)
    for r in range(start // workload.ROUND, stop // workload.ROUND):
        for j, (account, contract, method, args) in enumerate(
                workload.mixed_round(r, run_tag, load.payer_hashes)):
            i = r * workload.ROUND + j
            tx = Transaction.create(keys[account], chain_id, nonce + i, valid_until, contract, method, args)
            out.append((tx.id, tx.encode()))
    return out


def sign_all(load: Workload, chain_id: str, valid_until: int, tag: str,
             count: int) -> list[tuple[bytes, bytes]]:
    count = -(-count // load.unit) * load.unit          # whole rounds
    chunk = SIGN_CHUNK - SIGN_CHUNK % load.unit
    ranges = [(s, min(s + chunk, count)) for s in range(0, count, chunk)]
    if count < POOL_THRESHOLD:
        return [item for a, b in ranges for item in _sign_chunk(load, chain_id, valid_until, tag, a, b)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [pool.submit(_sign_chunk, load, chain_id, valid_until, tag, a, b) for a, b in ranges]
        return [item for f in futures for item in f.result()]


def load_workload(net: Testnet, name: str, accounts: int | None) -> Workload:
    """The workload's keys from the testnet (payer hashes are added once the chain id is known)."""
    if name == "kv":
        key_files = net.account_key_files("writer")
        if not key_files:
            raise CliError(f"no key files of writer accounts in {net.accounts_dir}")
        accounts = accounts or len(key_files)
        if accounts > len(key_files):
            raise CliError(f"--accounts {accounts}: the testnet in {net.dir} has only "
                           f"{len(key_files)} writer account key files")
        return Workload("kv", seeds=[load_key_file(p).seed for p in key_files[:accounts]])
    if accounts is not None:
        raise CliError("--accounts applies to the kv workload only (mixed uses the story's accounts)")
    seeds = {}
    for party, account in workload.PARTIES.items():
        path = net.accounts_dir / f"{account}.key"
        if net.genesis.organisation(account) is None or not path.is_file():
            raise CliError(f"the mixed workload needs the account {account} (the {party}) with its key "
                           f"in {net.accounts_dir}; create the testnet with this version of "
                           "`ynchain testnet init`")
        seeds[account] = load_key_file(path).seed
    return Workload("mixed", account_seeds=seeds)


def with_payers(load: Workload, chain_id: str) -> Workload:
    """A mixed workload's payer id hashes (salted by the chain id; scrypt, so computed once here)."""
    if load.name != "mixed":
        return load
    hashes = [payer_id_hash(chain_id, f"53010219900101{k:03d}X") for k in range(workload.PAYERS)]
    return dataclasses.replace(load, payer_hashes=hashes)


@dataclass(frozen=True, slots=True)
class Batch:
    node: int
    ids: tuple[bytes, ...]
    body: bytes


def make_batches(signed: list[tuple[bytes, bytes]], size: int, nodes: int, unit: int = 1) -> list[Batch]:
    """Batches of `size` txs (rounded down to whole `unit`s), dealt round-robin to `nodes`."""
    size = max(unit, size - size % unit)
    batches = []
    for k, start in enumerate(range(0, len(signed), size)):
        part = signed[start:start + size]
        body = array_header(len(part)) + b"".join(enc for _, enc in part)
        batches.append(Batch(k % nodes, tuple(i for i, _ in part), body))
    return batches


# -- presigning to disk ---------------------------------------------------------------

def latency_sample_every(count: int) -> int:
    """Every how many txs (by id) the run times one: all of them up to
    MAX_TIMED_TXS, so a 10-minute run's bookkeeping stays within memory."""
    return max(1, -(-count // MAX_TIMED_TXS))


def is_timed(tx_id: bytes, every: int) -> bool:
    return every == 1 or int.from_bytes(tx_id[:4], "big") % every == 0


@dataclass(frozen=True, slots=True)
class BatchRef:
    """A presigned batch in the run's batch file: POSTed as read, never kept."""
    node: int
    offset: int
    length: int
    count: int
    timed: tuple[str, ...]        # hex ids of the txs whose latency is measured


def presign(load: Workload, chain_id: str, valid_until: int, tag: str, count: int,
            batch_size: int, nodes: int, out, every: int) -> list[BatchRef]:
    """Sign `count` txs (whole rounds) in a process pool, as batch bodies of
    `batch_size` (whole units) dealt round-robin to `nodes`, written to the
    binary file `out`; only the batches' places and timed ids stay in memory."""
    count = -(-count // load.unit) * load.unit
    size = max(load.unit, batch_size - batch_size % load.unit)
    chunk = SIGN_CHUNK - SIGN_CHUNK % load.unit
    ranges = [(s, min(s + chunk, count)) for s in range(0, count, chunk)]
    refs: list[BatchRef] = []
    pending: list[tuple[bytes, bytes]] = []

    def flush(final: bool) -> None:
        nonlocal pending
        while len(pending) >= size or (final and pending):
            part, pending = pending[:size], pending[size:]
            body = array_header(len(part)) + b"".join(enc for _, enc in part)
            refs.append(BatchRef(len(refs) % nodes, out.tell(), len(body), len(part),
                                 tuple(i.hex() for i, _ in part if is_timed(i, every))))
            out.write(body)

    if count < POOL_THRESHOLD:
        for a, b in ranges:
            pending += _sign_chunk(load, chain_id, valid_until, tag, a, b)
            flush(False)
    else:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            futures = [pool.submit(_sign_chunk, load, chain_id, valid_until, tag, a, b)
                       for a, b in ranges]
            for future in futures:
                pending += future.result()
                flush(False)
    flush(True)
    out.flush()
    return refs


# -- the run ----------------------------------------------------------------------------

def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class _Run:
    """State shared by the submitter threads, the observer and the main thread.
    Every committed tx is counted (from the block events); the latency of the
    timed ones (all of them, or a sample on long runs) is measured."""
    lock: threading.Condition = field(default_factory=threading.Condition)
    stop: threading.Event = field(default_factory=threading.Event)
    sent_at: dict[str, float] = field(default_factory=dict)              # timed hex id -> sent
    accepted: int = 0
    refused: Counter = field(default_factory=Counter)
    committed: int = 0
    committed_timed: dict[str, tuple[float, int]] = field(default_factory=dict)  # -> (t, height)
    blocks: int = 0
    first_sent: float | None = None
    last_commit: float | None = None
    submitting: int = 0
    error: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc
            self.stop.set()
            self.lock.notify_all()

    def inflight(self) -> int:
        return self.accepted - self.committed


def _submitter(run: _Run, url: str, path: Path, batches: list[BatchRef], deadline: float | None,
               batch_interval: float | None, offset_s: float) -> None:
    """Submit `batches` in order, reading each from the batch file; with
    `batch_interval`, one batch per interval (an open-loop offered load, so
    latency is measured below saturation).  Submitters start `offset_s` apart,
    so their batches do not reach the nodes in step."""
    try:
        with NodeClient(url, timeout=60.0) as client, open(path, "rb") as fh:
            if offset_s and run.stop.wait(offset_s):
                return
            started = time.monotonic()
            for k, batch in enumerate(batches):
                if batch_interval is not None:
                    delay = started + k * batch_interval - time.monotonic()
                    if delay > 0 and run.stop.wait(delay):
                        break
                with run.lock:
                    run.lock.wait_for(lambda: run.stop.is_set() or run.inflight() < MAX_INFLIGHT)
                if run.stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                    break
                body = os.pread(fh.fileno(), batch.length, batch.offset)
                sent = time.monotonic()
                doc = client.post_msgpack("/txs", body)
                results = doc.get("results") if isinstance(doc, dict) else None
                if (not isinstance(results, list) or len(results) != batch.count
                        or not all(isinstance(r, dict) for r in results)):
                    raise NodeError(f"node at {url} answered a batch of {batch.count} "
                                    "txs without one result per tx")
                timed = set(batch.timed)
                with run.lock:
                    if run.first_sent is None:
                        run.first_sent = sent
                    for result in results:
                        if result.get("accepted"):
                            run.accepted += 1
                            tx_id = result.get("id")
                            if tx_id in timed:
                                run.sent_at[tx_id] = sent
                        else:
                            run.refused[result.get("reason") or "unknown"] += 1
    except BaseException as exc:
        run.fail(exc)
    finally:
        with run.lock:
            run.submitting -= 1
            run.lock.notify_all()


def _observer(run: _Run, url: str, from_height: int, timed: frozenset[str]) -> None:
    """Follow a node's block events with their tx ids (no request per block)."""
    next_height = from_height
    try:
        with NodeClient(url, timeout=30.0) as client:
            while not run.stop.is_set():
                try:
                    for event, data in client.events(f"/events/blocks?from={next_height}&tx_ids=true",
                                                     idle_timeout=STALL_TIMEOUT_S):
                        if event != "block" or not isinstance(data, dict):
                            continue
                        seen = time.monotonic()
                        height, ids = data.get("height"), data.get("tx_ids")
                        if type(height) is not int or height < next_height or not isinstance(ids, list):
                            continue
                        next_height = height + 1
                        if ids:
                            mine = [i for i in ids if i in timed]
                            with run.lock:
                                run.committed += len(ids)
                                run.blocks += 1
                                run.last_commit = seen
                                for tx_id in mine:
                                    run.committed_timed.setdefault(tx_id, (seen, height))
                                run.lock.notify_all()
                        if run.stop.is_set():
                            return
                except NodeError as exc:
                    # The API closes a subscriber that falls behind; resume where we were.
                    if "closed the event stream" not in str(exc):
                        raise
    except BaseException as exc:
        run.fail(exc)


def time_left(done: int, total: int, elapsed: float, duration: float | None) -> float | None:
    """Seconds the run still needs: what is left of --duration, else the txs
    still to commit at the rate so far (None before the first commit)."""
    if duration is not None:
        return max(duration - elapsed, 0.0)
    if not done or elapsed <= 0:
        return None
    return (total - done) / (done / elapsed)


class _ProgressLine:
    """On stderr (stdout stays clean for --json): a bar rewritten in place on a
    terminal, a line every 5 s elsewhere."""

    def __init__(self, total: int, duration: float | None):
        self.total = total
        self.duration = duration
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0

    def show(self, run: _Run, elapsed: float, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last_print < (0.2 if self.tty else 5.0):
            return
        self.last_print = now
        done = run.committed
        width = 30
        filled = min(width, int(width * done / self.total)) if self.total else width
        left = None if final else time_left(done, self.total, elapsed, self.duration)
        eta = "" if left is None else f", about {left:.0f}s left"
        line = (f"[{'#' * filled}{'.' * (width - filled)}] committed {done}/{self.total}  "
                f"{done / elapsed if elapsed > 0 else 0:.0f} tx/s  accepted {run.accepted}  "
                f"refused {sum(run.refused.values())}  {elapsed:.1f}s{eta}")
        if self.tty:
            click.echo(f"\r{line}\033[K", err=True, nl=final)
        else:
            click.echo(line, err=True)


class _Timeline:
    """Every TIMELINE_S: committed tx/s, node CPU per committed tx (summed over
    the nodes), the largest node RSS; a run's drift shows here, not in its mean."""

    def __init__(self, pids: dict[str, int | None], start: float) -> None:
        self.pids = pids
        self.points: list[dict] = []
        self._last = (start, 0, self._cpu())

    def _cpu(self) -> float:
        return sum(procs.cpu_seconds(pid) or 0.0 for pid in self.pids.values() if pid)

    def due(self, now: float) -> bool:
        return now - self._last[0] >= TIMELINE_S

    def sample(self, now: float, committed: int, start: float) -> None:
        t0, done0, cpu0 = self._last
        cpu = self._cpu()
        txs = committed - done0
        memory = [procs.memory_kb(pid) for pid in self.pids.values() if pid]
        rss = [r for r, _ in memory if r is not None]
        anon = [a for _, a in memory if a is not None]
        self.points.append({"t_s": round(now - start, 1), "tps": round(txs / (now - t0), 1),
                            "us_per_tx": round((cpu - cpu0) / txs * 1e6) if txs else None,
                            # VmRSS counts LevelDB's mapped tables (procs.memory_kb); RssAnon not
                            "max_rss_mb": round(max(rss, default=0) / 1024, 1),
                            "max_anon_mb": round(max(anon, default=0) / 1024, 1)})
        self._last = (now, committed, cpu)


def _views(urls: list[str]) -> list[int | None]:
    views = []
    for url in urls:
        try:
            with NodeClient(url, timeout=5.0) as client:
                doc = client.get("/status")
            views.append(doc.get("view") if isinstance(doc, dict) else None)
        except NodeError:
            views.append(None)
    return views


def _data_bytes(net: Testnet) -> int:
    total = 0
    for node in net.nodes:
        for path in (node.home / "data", node.home / "safety"):
            for entry in path.rglob("*") if path.is_dir() else ():
                with contextlib.suppress(OSError):
                    if entry.is_file():
                        total += entry.stat().st_size
    return total


def presign_count(duration: float, rate: float, window: int) -> int:
    """Txs a --duration run presigns: `rate` per second, within MAX_PRESIGNED and
    what the testnet's validity window leaves time to commit."""
    return max(1, min(MAX_PRESIGNED, window * PRESIGNED_PER_WINDOW_BLOCK, int(duration * rate)))


def run_bench(net: Testnet, txs: int | None, duration: float | None, accounts: int | None,
              batch_size: int, progress: bool = True, rate: float | None = None,
              workload_name: str = "kv") -> dict:
    load = load_workload(net, workload_name, accounts)
    urls = [n.api_url for n in net.nodes]
    with NodeClient(urls[0]) as client:
        chain_id, height = chain_head(client)
    load = with_payers(load, chain_id)
    presign_rate = rate * 1.05 if rate else PRESIGN_RATE
    window = net.genesis.consensus.tx_validity_window
    count = txs if txs is not None else presign_count(duration, presign_rate, window)
    valid_until = height + window
    senders = len(load.seeds) if load.seeds else len(load.account_seeds)
    if progress:
        click.echo(f"signing {count} {workload_name} transactions from {senders} accounts...", err=True)
    every = latency_sample_every(count)
    with tempfile.TemporaryDirectory(prefix="ynchain-bench-batches-") as tmp:
        path = Path(tmp) / "batches"
        with open(path, "wb") as out:
            batches = presign(load, chain_id, valid_until, os.urandom(4).hex(), count, batch_size,
                              len(urls), out, every)
        report = _run(net, urls, path, batches, height, duration, rate, progress, every)
    report.update({"batch": batches[0].count, "accounts": senders, "workload": workload_name,
                   "offered_rate": rate})
    return report


def _run(net: Testnet, urls: list[str], path: Path, batches: list[BatchRef], height: int,
         duration: float | None, rate: float | None, progress: bool, every: int) -> dict:
    count = sum(b.count for b in batches)
    batch_size = batches[0].count
    timed = frozenset(i for b in batches for i in b.timed)
    pids = {n.name: procs.running_pid(n) for n in net.nodes}
    cpu_before = {name: procs.cpu_seconds(pid) if pid else None for name, pid in pids.items()}
    views_before = _views(urls)
    disk_before = _data_bytes(net)

    run = _Run(submitting=len(urls))
    # The observer follows the last node: the primary of view 0 (node0) has the most to do.
    observer = threading.Thread(target=_observer, args=(run, urls[-1], height + 1, timed), daemon=True)
    observer.start()
    start = time.monotonic()
    deadline = start + duration if duration is not None else None
    # Each of the len(urls) submitters offers rate/len(urls) tx/s.
    batch_interval = batch_size * len(urls) / rate if rate else None
    stagger = (batch_interval or STAGGER_S) / len(urls)
    submitters = [threading.Thread(target=_submitter, daemon=True,
                                   args=(run, url, path, batches[j::len(urls)], deadline,
                                         batch_interval, j * stagger))
                  for j, url in enumerate(urls)]
    for thread in submitters:
        thread.start()
    bar = _ProgressLine(count, duration) if progress else None
    timeline = _Timeline(pids, start)
    last_count, last_change = 0, time.monotonic()
    try:
        with run.lock:
            while True:
                run.lock.wait(timeout=0.2)
                if run.error is not None:
                    raise run.error
                now = time.monotonic()
                if bar:
                    bar.show(run, now - start)
                if timeline.due(now):
                    timeline.sample(now, run.committed, start)
                if run.submitting == 0 and run.committed >= run.accepted:
                    break
                if run.committed != last_count:
                    last_count, last_change = run.committed, now
                elif run.submitting == 0 and now - last_change > STALL_TIMEOUT_S:
                    raise CliError(f"only {run.committed} of {run.accepted} accepted txs "
                                   f"committed; none for {STALL_TIMEOUT_S:g}s")
    except NodeError as exc:
        raise CliError(f"benchmark failed: {exc.message}") from None
    finally:
        run.stop.set()
        with run.lock:
            run.lock.notify_all()
    if bar:
        bar.show(run, time.monotonic() - start, final=True)
    if not run.accepted:
        raise CliError(f"every transaction was refused: {dict(run.refused)}")

    latencies = sorted(t - run.sent_at[i] for i, (t, _) in run.committed_timed.items()
                       if i in run.sent_at)
    elapsed = max((run.last_commit or start) - (run.first_sent or start), 1e-9)
    committed = run.committed
    nodes = []
    cpu_total = 0.0
    for name, pid in pids.items():
        cpu_after = procs.cpu_seconds(pid) if pid else None
        before = cpu_before[name]
        rss = procs.peak_rss_mb(pid) if pid else None
        cpu = cpu_after - before if cpu_after is not None and before is not None else None
        cpu_total += cpu or 0.0
        nodes.append({"name": name, "pid": pid, "cpu_s": None if cpu is None else round(cpu, 3),
                      "peak_rss_mb": round(rss, 1) if rss is not None else None})
    views_after = _views(urls)
    view_changes = max((b - a for a, b in zip(views_before, views_after)
                        if a is not None and b is not None), default=None)
    disk = _data_bytes(net) - disk_before
    return {
        "tps": round(committed / elapsed, 1),
        "latency_ms_p50": round(percentile(latencies, 50) * 1000, 1),
        "latency_ms_p90": round(percentile(latencies, 90) * 1000, 1),
        "latency_ms_p99": round(percentile(latencies, 99) * 1000, 1),
        "latency_sampled": len(latencies), "latency_sample_every": every,
        "txs": committed, "refused": dict(run.refused), "duration_s": round(elapsed, 3),
        "blocks": run.blocks,
        "avg_txs_per_block": round(committed / run.blocks, 1) if run.blocks else 0,
        "us_per_tx": round(cpu_total / committed * 1e6) if committed else None,
        "view_changes": view_changes,
        # per node: data directory and safety copy growth (LevelDB's preallocated logs
        # dominate short runs)
        "disk_bytes_per_100k_txs": round(disk / len(urls) / committed * 100_000) if committed else None,
        "timeline": timeline.points,
        "receipts_sampled": sample_receipts(urls[-1], sorted(bytes.fromhex(i) for i in run.committed_timed)),
        "nodes": nodes,
    }


def sample_receipts(url: str, tx_ids: list[bytes], size: int = RECEIPT_SAMPLE) -> dict[str, int]:
    """Receipt status -> count over an even sample of the committed txs: committed
    is not the same as succeeded, and a workload that fails is no benchmark."""
    step = max(1, len(tx_ids) // size)
    counts: Counter = Counter()
    with NodeClient(url, timeout=30.0) as client:
        for tx_id in tx_ids[::step][:size]:
            doc = client.get(f"/txs/{tx_id.hex()}")
            counts[((doc or {}).get("receipt") or {}).get("status", "unknown")] += 1
    return dict(counts)


@contextlib.contextmanager
def temporary_testnet(nodes: int, progress: bool) -> Iterator[Testnet]:
    root = tempfile.mkdtemp(prefix="ynchain-bench-")
    try:
        net = init_testnet(Path(root), nodes, free_port_base(2 * nodes),
                           tx_validity_window=BENCH_VALIDITY_WINDOW)
        try:
            bring_up(net, timeout_s=60.0, progress=progress)
            yield net
        finally:
            bring_down(net, grace_s=5.0)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@click.command()
@click.option("--dir", "root", type=click.Path(file_okay=False), default=None,
              help="Use this running testnet (default: a temporary one).")
@click.option("--nodes", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Validators of the temporary testnet.")
@click.option("--txs", type=click.IntRange(1, MAX_PRESIGNED), default=None,
              help="Transactions to submit (default 5000).")
@click.option("--duration", type=click.FloatRange(0.1, 3600), default=None,
              help=f"Submit for this many seconds instead (pre-signs {PRESIGN_RATE} tx/s).")
@click.option("--accounts", type=click.IntRange(1), default=None,
              help="kv: sending accounts (the testnet's writer keys; default: all of them).")
@click.option("--workload", "workload_name", type=click.Choice(["kv", "mixed"]), default="kv",
              show_default=True,
              help="kv: puts of distinct keys; mixed: fiscal receipts, trace lots and receivables in "
                   "dependent rounds of 12 calls (cli/workload.py).")
@click.option("--batch", "batch_size", type=click.IntRange(1, 10_000), default=200,
              show_default=True, help="Transactions per POST.")
@click.option("--rate", type=click.FloatRange(1, 1_000_000), default=None,
              help="Offer this many tx/s in total (open loop) instead of submitting as fast "
                   "as the nodes accept; latency is only meaningful below saturation.")
@click.option("--catch-up", "catch_up_blocks", type=click.IntRange(1, 100_000), default=None,
              metavar="BLOCKS", help="Afterwards, kill the last node, commit BLOCKS blocks of "
                                     "--batch txs without it, restart it and time its catch-up.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench(root, nodes, txs, duration, accounts, workload_name, batch_size, rate, catch_up_blocks, as_json):
    """Measure committed tx/s and submit-to-commit latency of a local testnet.

    Latency is observed on the last node's block stream; CPU time and RSS are
    read from /proc for the node processes on this machine, every 10 s for the
    report's timeline.
    """
    if txs is not None and duration is not None:
        raise click.UsageError("give --txs or --duration, not both")
    if txs is None and duration is None:
        txs = 5000
    progress = True
    if root is not None:
        net = load_testnet(Path(root))
        if not all(procs.running_pid(n) for n in net.nodes):
            raise CliError(f"the testnet in {root} is not (fully) running; "
                           f"start it with `ynchain testnet up --dir {root}`")
        report = _measure(net, txs, duration, accounts, batch_size, progress, rate, catch_up_blocks,
                          workload_name)
    else:
        with temporary_testnet(nodes, progress) as net:
            report = _measure(net, txs, duration, accounts, batch_size, progress, rate,
                              catch_up_blocks, workload_name)
    if as_json:
        print_json(report)
        return
    print_fields([("workload", report["workload"]), ("committed txs", report["txs"]),
                  ("refused", report["refused"] or None),
                  ("offered", f"{rate:g} tx/s" if rate else "as fast as accepted"),
                  ("duration", f"{report['duration_s']} s"), ("throughput", f"{report['tps']} tx/s"),
                  ("latency p50", f"{report['latency_ms_p50']} ms"),
                  ("latency p90", f"{report['latency_ms_p90']} ms"),
                  ("latency p99", f"{report['latency_ms_p99']} ms"),
                  ("blocks", report["blocks"]), ("txs per block", report["avg_txs_per_block"]),
                  ("node cpu per tx", f"{report['us_per_tx']} us (all nodes)"),
                  ("view changes", report["view_changes"]),
                  ("disk per 100k txs", f"{report['disk_bytes_per_100k_txs']} bytes per node"),
                  ("receipts sampled", report["receipts_sampled"])])
    for point in report["timeline"]:
        click.echo(f"  t={point['t_s']:>6}s  {point['tps']:>8} tx/s  {point['us_per_tx']} us/tx  "
                   f"max rss {point['max_rss_mb']} MB (private {point['max_anon_mb']} MB)")
    for n in report["nodes"]:
        click.echo(f"  {n['name']}: cpu {n['cpu_s']} s, peak rss {n['peak_rss_mb']} MB")
    if catch_up := report.get("catch_up"):
        click.echo(f"catch-up:      {catch_up['node']} synced {catch_up['blocks']} blocks in "
                   f"{catch_up['seconds']} s ({catch_up['blocks_per_s']} blocks/s, "
                   f"{catch_up['txs_per_s']} tx/s)")


def _measure(net: Testnet, txs, duration, accounts, batch_size, progress, rate,
             catch_up_blocks, workload_name) -> dict:
    report = run_bench(net, txs, duration, accounts, batch_size, progress, rate, workload_name)
    if catch_up_blocks:
        from .bench_catchup import measure_catch_up   # it imports this module
        report["catch_up"] = measure_catch_up(net, catch_up_blocks, batch_size, progress)
    return report
