"""The node's Prometheus metrics, in a registry of its own.

One `NodeMetrics` per node (a private CollectorRegistry, so several nodes in
one test process never share or clash).  The daemon calls the small methods
below; the ones on hot paths (frames, admissions) use label children bound
once, so a call is one locked add; transport totals are plain integers read
at scrape time (see track_transport).  Label values that come from reasons are
bounded: once MAX_LABEL_VALUES - 1 distinct reasons are in use, new ones
count as "other", so a peer that invents reasons cannot grow the registry.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator, Mapping, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledger.consortium import NODE_ROLES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_LABEL_VALUES = 32
OTHER_REASON = "other"

COMMIT_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BLOCK_TXS_BUCKETS = (0, 1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 50000, 100000)


class _ReasonCounter:
    """A Counter labelled by `reason` with a bounded set of label values."""

    __slots__ = ("_counter", "_children")

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict = {}

    def inc(self, reason: str, amount: int = 1) -> None:
        child = self._children.get(reason)
        if child is None:
            if len(self._children) >= MAX_LABEL_VALUES - 1:  # keep one for "other"
                reason = OTHER_REASON
            child = self._children.get(reason)
            if child is None:
                child = self._children[reason] = self._counter.labels(reason=reason)
        child.inc(amount)


class TransportTotals(Protocol):
    """What the transport counts (node.transport.peers.TransportStats has this shape)."""
    frames_in: int
    frames_out: int
    bytes_in: int
    bytes_out: int
    handshake_failures: Mapping[str, int]


class _TransportTally:
    """The totals kept here when the transport's own are not tracked."""

    __slots__ = ("frames_in", "frames_out", "bytes_in", "bytes_out", "handshake_failures")

    def __init__(self) -> None:
        self.frames_in = self.frames_out = self.bytes_in = self.bytes_out = 0
        self.handshake_failures: dict[str, int] = {}


class _TransportCollector(Collector):
    """Reads the transport's plain integer totals at scrape time, so the
    per-frame cost is an integer add in the transport, not a metrics call."""

    def __init__(self) -> None:
        self.totals: TransportTotals = _TransportTally()

    def collect(self) -> Iterator[Metric]:
        t = self.totals
        frames = CounterMetricFamily("ynchain_transport_frames", "Transport frames", labels=["direction"])
        frames.add_metric(["in"], t.frames_in)
        frames.add_metric(["out"], t.frames_out)
        nbytes = CounterMetricFamily("ynchain_transport_bytes",
                                     "Transport bytes (framing and authentication tag included)",
                                     labels=["direction"])
        nbytes.add_metric(["in"], t.bytes_in)
        nbytes.add_metric(["out"], t.bytes_out)
        failures = CounterMetricFamily("ynchain_handshake_failures", "Failed peer handshakes",
                                       labels=["reason"])
        for reason, count in _bounded(t.handshake_failures).items():
            failures.add_metric([reason], count)
        return iter((frames, nbytes, failures))


class _KeyExpiryCollector(Collector):
    """ynchain_key_expiry_seconds{account}: computed at scrape time, so it counts
    down without a timer and follows governance changes at once."""

    def __init__(self) -> None:
        self.source: Callable[[], list[tuple[str, int]]] = list

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("ynchain_key_expiry_seconds",
                                  "Seconds until the key of an account of this node's organisation "
                                  "expires (negative: expired)", labels=["account"])
        for account, seconds in self.source():
            gauge.add_metric([account], seconds)
        yield gauge


class _DiskCollector(Collector):
    """Free and total bytes of the file system holding the data directory,
    read at scrape time (alerts need no node_exporter on the host)."""

    def __init__(self) -> None:
        self.path: str | None = None

    def collect(self) -> Iterator[Metric]:
        free = GaugeMetricFamily("ynchain_disk_free_bytes",
                                 "Bytes available to the node on its data directory's file system")
        total = GaugeMetricFamily("ynchain_disk_size_bytes",
                                  "Size in bytes of the data directory's file system")
        if self.path is not None:
            try:
                st = os.statvfs(self.path)
            except OSError:
                pass          # not created yet, or gone: no sample rather than a wrong one
            else:
                free.add_metric([], st.f_bavail * st.f_frsize)
                total.add_metric([], st.f_blocks * st.f_frsize)
        return iter((free, total))


def _bounded(by_reason: Mapping[str, int]) -> dict[str, int]:
    """At most MAX_LABEL_VALUES reasons: the rest summed as "other"."""
    if len(by_reason) <= MAX_LABEL_VALUES:
        return dict(by_reason)
    reasons = sorted(by_reason)
    kept = {r: by_reason[r] for r in reasons[:MAX_LABEL_VALUES - 1]}
    kept[OTHER_REASON] = kept.get(OTHER_REASON, 0) + sum(by_reason[r] for r in reasons[MAX_LABEL_VALUES - 1:])
    return kept


class NodeMetrics:
    """Everything /metrics reports.  Gauges and counters are public attributes
    for anything the methods below do not cover."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.height = Gauge("ynchain_height", "Height of the last committed block", registry=r)
        self.view = Gauge("ynchain_view", "Current PBFT view", registry=r)
        self.view_changes = Counter("ynchain_view_changes", "View changes completed", registry=r)
        self.committed_txs = Counter("ynchain_committed_txs", "Transactions committed", registry=r)
        self.committed_blocks = Counter("ynchain_committed_blocks", "Blocks committed", registry=r)
        self.mempool_size = Gauge("ynchain_mempool_size", "Transactions in the mempool", registry=r)
        self.mempool_bytes = Gauge("ynchain_mempool_bytes", "Encoded bytes in the mempool", registry=r)
        self.mempool_max_txs = Gauge("ynchain_mempool_max_txs", "Mempool capacity in transactions",
                                     registry=r)
        self.mempool_max_bytes = Gauge("ynchain_mempool_max_bytes", "Mempool capacity in bytes",
                                       registry=r)
        self.validators = Gauge("ynchain_validators", "Validators in the consensus set", registry=r)
        self.quorum = Gauge("ynchain_quorum", "Validators needed to commit a block (this node included)",
                            registry=r)
        self.peers_connected = Gauge("ynchain_peers_connected", "Connected peers", registry=r)
        self.role = Gauge("ynchain_node_role",
                          "1 for the role this node runs as (validator: votes; observer: follows)",
                          ["role"], registry=r)
        self.commit_latency = Histogram(
            "ynchain_commit_latency_seconds",
            "Seconds from proposal (or admission to this node's mempool) to commit",
            buckets=COMMIT_LATENCY_BUCKETS, registry=r)
        self.block_txs = Histogram("ynchain_block_txs", "Transactions per committed block",
                                   buckets=BLOCK_TXS_BUCKETS, registry=r)
        self.sync_target_height = Gauge("ynchain_sync_target_height",
                                        "Height block sync is catching up to (0 when idle)", registry=r)
        self.sync_blocks = Counter("ynchain_sync_blocks", "Blocks fetched and applied by block sync",
                                   registry=r)
        self.mempool_rejections = _ReasonCounter(Counter(
            "ynchain_mempool_rejections", "Transactions the mempool refused", ["reason"], registry=r))
        self.consensus_faults = _ReasonCounter(Counter(
            "ynchain_consensus_faults", "Consensus messages dropped as faulty", ["reason"], registry=r))
        # Labelled by node name: bounded by the nodes the configuration has allowed.
        self.peer_faults = Counter("ynchain_peer_faults",
                                   "Messages from this peer dropped as faulty (any reason)", ["peer"],
                                   registry=r)
        self.mempool_drops = _ReasonCounter(Counter(
            "ynchain_mempool_dropped", "Admitted transactions dropped without being committed",
            ["reason"], registry=r))
        self.gossip_dropped = Counter(
            "ynchain_gossip_txs_dropped",
            "Transactions from peers dropped unexamined because admission was behind", registry=r)
        self.txs_reoffered_total = Counter(
            "ynchain_txs_reoffered", "Pending transactions handed to the primary again", registry=r)
        self._transport = _TransportCollector()
        r.register(self._transport)
        self._key_expiry = _KeyExpiryCollector()
        r.register(self._key_expiry)
        self._disk = _DiskCollector()
        r.register(self._disk)

    def set_limits(self, *, validators: int, quorum: int, mempool_max_txs: int,
                   mempool_max_bytes: int) -> None:
        """What alerts compare live values against (peers below quorum, mempool near full)."""
        self.validators.set(validators)
        self.quorum.set(quorum)
        self.mempool_max_txs.set(mempool_max_txs)
        self.mempool_max_bytes.set(mempool_max_bytes)

    def set_role(self, role: str) -> None:
        for each in NODE_ROLES:
            self.role.labels(role=each).set(1 if each == role else 0)

    def track_disk(self, path: str | os.PathLike) -> None:
        """Report free and total space of the file system holding `path`."""
        self._disk.path = os.fspath(path)

    # -- consensus and commit ---------------------------------------------------

    def block_committed(self, height: int, tx_count: int) -> None:
        self.height.set(height)
        self.committed_blocks.inc()
        self.committed_txs.inc(tx_count)
        self.block_txs.observe(tx_count)

    def commit_latency_observed(self, seconds: float) -> None:
        self.commit_latency.observe(seconds)

    def view_changed(self, view: int) -> None:
        self.view.set(view)
        self.view_changes.inc()

    def consensus_fault(self, reason: str) -> None:
        self.consensus_faults.inc(reason)

    def peer_fault(self, peer_name: str) -> None:
        self.peer_faults.labels(peer=peer_name).inc()

    # -- mempool ------------------------------------------------------------------

    def mempool_changed(self, size: int, nbytes: int) -> None:
        self.mempool_size.set(size)
        self.mempool_bytes.set(nbytes)

    def mempool_rejected(self, reason: str, count: int = 1) -> None:
        self.mempool_rejections.inc(reason, count)

    def mempool_dropped(self, reason: str, count: int = 1) -> None:
        self.mempool_drops.inc(reason, count)

    def gossip_txs_dropped(self, count: int) -> None:
        self.gossip_dropped.inc(count)

    def txs_reoffered(self, count: int) -> None:
        self.txs_reoffered_total.inc(count)

    # -- peers and transport ------------------------------------------------------

    def peers_changed(self, connected: int) -> None:
        self.peers_connected.set(connected)

    def track_transport(self, totals: TransportTotals) -> None:
        """Report the transport's own totals (e.g. node.transport.peers.TransportStats),
        read at scrape time; frame_sent/frame_received/handshake_failed are then
        not needed."""
        self._transport.totals = totals

    def frame_sent(self, nbytes: int) -> None:
        t = self._transport.totals
        t.frames_out += 1
        t.bytes_out += nbytes

    def frame_received(self, nbytes: int) -> None:
        t = self._transport.totals
        t.frames_in += 1
        t.bytes_in += nbytes

    def handshake_failed(self, reason: str) -> None:
        failures = self._transport.totals.handshake_failures
        failures[reason] = failures.get(reason, 0) + 1

    # -- keys -------------------------------------------------------------------------

    def track_key_expiry(self, source: Callable[[], list[tuple[str, int]]]) -> None:
        """Report (account, seconds until its key expires) from `source` at scrape time."""
        self._key_expiry.source = source

    # -- block sync -----------------------------------------------------------------

    def sync_started(self, target_height: int) -> None:
        self.sync_target_height.set(target_height)

    def sync_block_applied(self) -> None:
        self.sync_blocks.inc()

    def sync_finished(self) -> None:
        self.sync_target_height.set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
