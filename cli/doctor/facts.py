"""What the doctor looks at, gathered once and only when a check asks for it.

Local files (config.toml, genesis, key, store), this node's own API, the
peers' APIs (sampled twice, `sample_s` apart, to see whether the chain
commits) and, only while this node is not running, p2p handshakes with each
peer (cli.doctor.p2p).  Every network call is bounded by `timeout_s`.
"""

from __future__ import annotations

import ipaddress
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import trio
from prometheus_client.parser import text_string_to_metric_families

from ledger.crypto import KeyPair, load_key
from ledger.errors import LedgerError
from ledger.consortium import Node
from ledger.genesis import Genesis, load_genesis
from node.config import ConfigError, NodeConfig, load_config

from ..client import NodeClient
from ..errors import CliError, NodeError
from ..procs import port_in_use
from .p2p import LinkResult, probe_links
from .store import StoreFacts, inspect_store

GiB = 1024 ** 3


@dataclass(frozen=True, slots=True)
class Limits:
    """Where ok turns into warn or fail."""
    disk_warn_bytes: int = 5 * GiB        # warn below this much free space, or below the fraction
    disk_warn_fraction: float = 0.05
    disk_fail_bytes: int = 1 * GiB
    disk_fail_fraction: float = 0.01
    clock_warn_s: float = 2.0             # block times follow the proposer's clock
    clock_fail_s: float = 60.0
    lag_blocks: int = 4                   # behind by up to this many is pipelining, not lag


@dataclass(frozen=True, slots=True)
class Probe:
    """One GET of a node's API: its JSON answer, or why there was none."""
    url: str
    doc: Any = None
    error: str | None = None
    sent: float = 0.0              # local clock just before the request and just after the answer
    received: float = 0.0
    text: str | None = None        # the raw body, for /metrics


def get(url: str, path: str, timeout_s: float, raw: bool = False) -> Probe:
    sent = time.time()
    try:
        with NodeClient(url, timeout_s) as client:
            if raw:
                status, body = client.request_raw("GET", path)
                if status != 200:
                    raise NodeError(f"node at {url} answered HTTP {status} for GET {path}")
                return Probe(url, None, None, sent, time.time(), body.decode("utf-8", "replace"))
            doc = client.get(path)
    except CliError as exc:         # NodeError, and a malformed URL
        return Probe(url, None, exc.message, sent, time.time())
    return Probe(url, doc, None, sent, time.time())


def connect_host(host: str) -> str:
    """Where to reach a service that listens on `host` (a wildcard means this host)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def url_of(address: tuple[str, int]) -> str:
    host = connect_host(address[0])
    return f"http://[{host}]:{address[1]}" if ":" in host else f"http://{host}:{address[1]}"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def metric_values(text: str | None) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text exposition, by sample name."""
    if not text:
        return {}
    values = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if not sample.labels:
                    values[sample.name] = sample.value
    except ValueError:
        return {}
    return values


class Facts:
    def __init__(self, home: str | Path, *, timeout_s: float = 5.0, sample_s: float = 2.0,
                 limits: Limits = Limits()) -> None:
        self.home = Path(home)
        self.timeout_s = timeout_s
        self.sample_s = sample_s
        self.limits = limits
        self.errors: dict[str, str] = {}     # "config", "genesis", "key": why it did not load
        self._sampled_at = 0.0

    # -- local files -----------------------------------------------------------------
    @cached_property
    def config(self) -> NodeConfig | None:
        try:
            return load_config(self.home)
        except ConfigError as exc:
            self.errors["config"] = str(exc)
            return None

    @cached_property
    def genesis(self) -> Genesis | None:
        if self.config is None:
            return None
        try:
            return load_genesis(self.config.genesis)
        except LedgerError as exc:
            self.errors["genesis"] = str(exc)
            return None

    @cached_property
    def key(self) -> KeyPair | None:
        if self.config is None:
            return None
        try:
            return load_key(self.config.key_file)
        except LedgerError as exc:
            self.errors["key"] = str(exc)
            return None

    @cached_property
    def index(self) -> int | None:
        """This node's validator index, by its configured name; None if genesis
        has no such validator or lists this node's key for another one."""
        if self.genesis is None:
            return None
        for i, v in enumerate(self.genesis.validators):
            if v.name == self.config.name:
                mismatch = self.key is not None and self.key.public_key != v.public_key
                return None if mismatch else i
        return None

    @property
    def name(self) -> str:
        return self.config.name if self.config is not None else self.home.name

    # -- this node's own API -------------------------------------------------------------
    @cached_property
    def own(self) -> Probe | None:
        if self.config is None:
            return None
        return get(url_of(self.config.api_listen), "/status", self.timeout_s)

    def is_this_node(self, doc: Any) -> bool:
        if not isinstance(doc, dict) or self.config is None or doc.get("node") != self.config.name:
            return False
        return self.genesis is None or doc.get("chain_id") == self.genesis.chain_id

    @property
    def running(self) -> bool:
        """This node's API answers as this node."""
        return self.own is not None and self.is_this_node(self.own.doc)

    def own_get(self, path: str, raw: bool = False) -> Probe | None:
        if not self.running:
            return None
        return get(url_of(self.config.api_listen), path, self.timeout_s, raw)

    @cached_property
    def own_validators(self) -> list[dict] | None:
        answer = self.own_get("/validators")
        doc = answer.doc if answer is not None else None
        found = doc.get("validators") if isinstance(doc, dict) else None
        return found if isinstance(found, list) else None

    def port_state(self, address: tuple[str, int]) -> str | None:
        """None if the address can be bound now, "in use", or why it cannot be bound."""
        try:
            return "in use" if port_in_use(*address) else None
        except CliError as exc:
            return exc.message

    # -- the store -----------------------------------------------------------------------
    @cached_property
    def store(self) -> StoreFacts | None:
        """None while the node runs (it holds the store) or without config and genesis."""
        if self.config is None or self.genesis is None or self.running:
            return None
        return inspect_store(self.config, self.genesis)

    # -- peers ---------------------------------------------------------------------------
    @cached_property
    def peers(self) -> list[tuple[int, Node]]:
        if self.genesis is None:
            return []
        return [(i, v) for i, v in enumerate(self.genesis.validators) if v.name != self.config.name]

    def api_unreachable_by_design(self, v: Node) -> bool:
        """Genesis gives a loopback API address for a peer on another host."""
        return is_loopback(v.api[0]) and not is_loopback(v.p2p[0])

    def _sample(self) -> dict[int, Probe]:
        targets = {i: url_of(v.api) for i, v in self.peers if not self.api_unreachable_by_design(v)}
        if self.running and self.index is not None:
            targets[self.index] = url_of(self.config.api_listen)
        if not targets:
            return {}
        with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
            futures = {i: pool.submit(get, url, "/status", self.timeout_s) for i, url in targets.items()}
            return {i: f.result() for i, f in futures.items()}

    @cached_property
    def sample(self) -> dict[int, Probe]:
        """/status of every validator whose API can be reached (this node's too, if running)."""
        self._sampled_at = time.monotonic()
        return self._sample()

    @cached_property
    def later_sample(self) -> dict[int, Probe]:
        """The same, `sample_s` after the first sample."""
        first = self.sample
        wait = self._sampled_at + self.sample_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return self._sample() if first else {}

    def status_of(self, index: int, sample: dict[int, Probe] | None = None) -> dict | None:
        """A validator's /status from a sample, if the node that answered is that validator."""
        probe = (self.sample if sample is None else sample).get(index)
        doc = probe.doc if probe is not None else None
        if not isinstance(doc, dict) or doc.get("node") != self.genesis.validators[index].name:
            return None
        return doc

    def chain_status_of(self, index: int, sample: dict[int, Probe] | None = None) -> dict | None:
        """status_of, and only if that node is on this node's chain and genesis:
        heights of another chain say nothing about this one."""
        doc = self.status_of(index, sample)
        if doc is None or doc.get("chain_id") != self.genesis.chain_id:
            return None
        theirs = doc.get("genesis_hash")
        return doc if theirs is None or theirs == self.genesis.hash.hex() else None

    def peer_get(self, index: int, path: str, raw: bool = False) -> Probe:
        return get(url_of(self.genesis.validators[index].api), path, self.timeout_s, raw)

    # -- p2p links (only while this node is not running) -----------------------------------
    @cached_property
    def links(self) -> dict[int, LinkResult] | str:
        """Handshake results by validator index, or why no handshake was tried."""
        if self.key is None or self.index is None or self.genesis is None:
            return "this node's key or its place in genesis is unusable (see above)"
        if self.running:
            return "this node is running"
        if self.store is not None and self.store.locked:
            return "a process holds this node's store (the node starting or hung?)"
        listen = self.config.p2p_listen
        if self.port_state(listen) is not None:
            return f"its p2p address {listen[0]}:{listen[1]} is in use or cannot be bound"
        return trio.run(probe_links, self.key, self.genesis, self.index, listen, self.timeout_s)
