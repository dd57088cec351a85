"""The campaign's schedule: a pure function of the seed and the profile.

`episodes(seed, profile, nodes)` yields the faults in order: first every kind once
(and `kills` random kills) in a seeded order, then random episodes for as long as
the campaign's time budget lasts.  Each episode's parameters (targets, durations,
groups) are drawn here, so the same seed always gives the same sequence; only what
the network does in response varies from run to run.  Targets named "primary" are
resolved when the episode runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterator

KINDS = ("kill", "kill_all", "freeze_primary", "isolate", "split", "delay", "p2p_garbage",
         "conn_flood", "api_abuse", "schemathesis", "mempool_flood", "near_expiry",
         "wait_batches", "sigterm")
# Relative frequency after the first pass (the expensive ones are rarer).
WEIGHTS = {"kill": 10, "kill_all": 2, "freeze_primary": 4, "isolate": 4, "split": 3, "delay": 3,
           "p2p_garbage": 2, "conn_flood": 2, "api_abuse": 2, "schemathesis": 1,
           "mempool_flood": 1, "near_expiry": 2, "wait_batches": 2, "sigterm": 3}


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    kills: int                   # random kill -9s in the first pass
    mempool_max_txs: int         # each node's mempool.max_txs (small: floods stay cheap)
    load_batch: int              # txs per steady-load request
    load_interval_s: float       # per node and lane
    flood_txs_per_node: int
    expiry_batch: int            # txs with valid_until = height + 1, in one request
    wait_batch: int              # txs per wait=true request (two requests, two nodes)
    conn_flood_per_port: int     # idle connections per p2p port (the handshake cap is 64)
    conn_flood_s: float
    schemathesis_examples: int
    schemathesis_s: float
    drain_s: float               # after the faults: time allowed for every accepted tx to commit
    rss_limit_mb: int            # each node's private memory (RssAnon), checks.py
    aftermath_s: float           # longest look at the chain after a flood-like episode
    big_wait_timeout_s: float    # ?timeout= of the large wait=true batches
    max_fault_s: float | None    # hard bound on the fault phase (the first pass included)


PROFILES = {
    "ci": Profile("ci", kills=2, mempool_max_txs=6000, load_batch=20, load_interval_s=0.5,
                  flood_txs_per_node=8000, expiry_batch=3000, wait_batch=2500,
                  conn_flood_per_port=80, conn_flood_s=15.0, schemathesis_examples=8,
                  schemathesis_s=10.0, drain_s=30.0, rss_limit_mb=256, aftermath_s=12.0,
                  big_wait_timeout_s=20.0, max_fault_s=170.0),
    "full": Profile("full", kills=4, mempool_max_txs=20000, load_batch=25, load_interval_s=0.4,
                    flood_txs_per_node=15000, expiry_batch=3000, wait_batch=5000,
                    conn_flood_per_port=100, conn_flood_s=25.0, schemathesis_examples=50,
                    schemathesis_s=60.0, drain_s=60.0, rss_limit_mb=384, aftermath_s=20.0,
                    big_wait_timeout_s=60.0, max_fault_s=None),
}


@dataclass(frozen=True, slots=True)
class Episode:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.kind}({args})"


def _params(kind: str, rng: random.Random, nodes: int, profile: Profile) -> dict[str, Any]:
    everyone = list(range(nodes))
    if kind == "kill":
        return {"node": rng.randrange(nodes), "down_s": round(rng.uniform(1.0, 4.0), 1)}
    if kind == "kill_all":
        return {"down_s": round(rng.uniform(0.5, 3.0), 1)}
    if kind == "freeze_primary":
        return {"node": "primary", "frozen_s": round(rng.uniform(3.0, 8.0), 1)}
    if kind == "isolate":
        return {"node": rng.randrange(nodes), "cut_s": round(rng.uniform(4.0, 10.0), 1)}
    if kind == "split":
        rng.shuffle(everyone)
        half = nodes // 2
        return {"groups": [sorted(everyone[:half]), sorted(everyone[half:])],
                "cut_s": round(rng.uniform(3.0, 8.0), 1)}
    if kind == "delay":
        links = [(i, j) for i in range(nodes) for j in range(i + 1, nodes)]
        chosen = rng.sample(links, rng.randint(1, len(links)))
        return {"links": sorted(chosen), "delay_ms": rng.choice((50, 100, 200, 400)),
                "for_s": round(rng.uniform(4.0, 10.0), 1)}
    if kind == "conn_flood":
        victims = rng.sample(everyone, 2)
        return {"per_port": profile.conn_flood_per_port, "for_s": profile.conn_flood_s,
                "restart": sorted(victims)}
    if kind == "schemathesis":
        return {"node": rng.randrange(nodes), "seed": rng.randrange(2**31),
                "examples": profile.schemathesis_examples}
    if kind == "mempool_flood":
        return {"txs_per_node": profile.flood_txs_per_node}
    if kind == "near_expiry":
        return {"node": rng.randrange(nodes), "txs": profile.expiry_batch}
    if kind == "wait_batches":
        return {"nodes": sorted(rng.sample(everyone, 2)), "txs": profile.wait_batch}
    if kind == "sigterm":
        return {"node": rng.randrange(nodes), "down_s": round(rng.uniform(1.0, 3.0), 1)}
    return {}


def episodes(seed: int, profile: Profile, nodes: int) -> Iterator[Episode]:
    """The endless seeded sequence; the campaign stops taking from it when time is up
    (but always runs the whole first pass)."""
    rng = random.Random(seed)
    first = [k for k in KINDS if k != "kill"] + ["kill"] * profile.kills
    rng.shuffle(first)
    for kind in first:
        yield Episode(kind, _params(kind, rng, nodes, profile))
    kinds = list(WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    while True:
        kind = rng.choices(kinds, weights)[0]
        yield Episode(kind, _params(kind, rng, nodes, profile))


def first_pass_length(profile: Profile) -> int:
    return len(KINDS) - 1 + profile.kills
