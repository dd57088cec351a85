"""The end-of-campaign read of every node's chain, through the public API only.

Block hashes at every height come from each node's block stream replayed from
height 1 (`GET /events/blocks?from=1`, one summary per block); the tx ids of
every non-empty block from `GET /blocks/{h}`, spread over the nodes that agree
with the reference chain.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cli.client import NodeClient
from cli.errors import NodeError

SSE_IDLE_S = 30.0
MAX_RESUMES = 50


@dataclass
class ChainScan:
    heights: list[int | None]                       # per node: its height at the scan (None: unreadable)
    hashes: list[list[str]]                         # per node: block hash at heights 1..
    tx_counts: list[int]                            # per height (reference node)
    occurrences: dict[bytes, list[int]] = field(default_factory=dict)   # tx id -> heights
    disagreements: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _stream_hashes(url: str, upto: int) -> tuple[list[str], list[int]]:
    hashes: list[str] = []
    counts: list[int] = []
    with NodeClient(url, timeout=30.0) as client:
        for _ in range(MAX_RESUMES):
            if len(hashes) >= upto:
                break
            try:
                for event, data in client.events(f"/events/blocks?from={len(hashes) + 1}",
                                                  idle_timeout=SSE_IDLE_S):
                    if event != "block" or not isinstance(data, dict):
                        continue
                    if data.get("height") != len(hashes) + 1:
                        continue
                    hashes.append(str(data.get("hash")))
                    counts.append(int(data.get("txs") or 0))
                    if len(hashes) >= upto:
                        break
            except NodeError as exc:
                if "closed the event stream" not in str(exc):
                    raise
    return hashes, counts


def _height(url: str) -> int | None:
    try:
        with NodeClient(url, timeout=10.0) as client:
            doc = client.get("/status")
    except NodeError:
        return None
    height = doc.get("height") if isinstance(doc, dict) else None
    return height if type(height) is int else None


def _block_txs(url: str, height: int) -> list[bytes] | str:
    """The block's tx ids, or why they could not be read."""
    try:
        with NodeClient(url, timeout=30.0) as client:
            doc = client.get(f"/blocks/{height}")
        return [bytes.fromhex(t) for t in doc["txs"]]
    except NodeError as exc:
        return f"block {height}: {exc}"
    except (TypeError, KeyError, ValueError):
        return f"block {height}: malformed answer from {url}"


def scan_chains(urls: list[str]) -> ChainScan:
    n = len(urls)
    with ThreadPoolExecutor(max_workers=n) as pool:
        heights = list(pool.map(_height, urls))
        hashes: list[list[str]] = [[] for _ in range(n)]
        counts: list[list[int]] = [[] for _ in range(n)]
        errors: list[str] = []
        futures = {i: pool.submit(_stream_hashes, urls[i], h) for i, h in enumerate(heights) if h}
        for i, future in futures.items():
            try:
                hashes[i], counts[i] = future.result()
            except NodeError as exc:
                errors.append(f"node{i}: block stream: {exc}")
        for i, h in enumerate(heights):
            if h is None:
                errors.append(f"node{i}: did not answer /status for the final scan")
            elif len(hashes[i]) < h:
                errors.append(f"node{i}: streamed {len(hashes[i])} of its {h} blocks")
        ref = max(range(n), key=lambda i: len(hashes[i]))
        scan = ChainScan(heights, hashes, counts[ref], errors=errors)
        for height in range(1, len(hashes[ref]) + 1):
            seen = {i: hashes[i][height - 1] for i in range(n) if len(hashes[i]) >= height}
            if len(set(seen.values())) > 1:
                scan.disagreements.append({"height": height, "hashes": {f"node{i}": h for i, h in seen.items()}})
        # Tx ids of every non-empty block, each from a node that agrees with the reference.
        wanted = [h for h in range(1, len(hashes[ref]) + 1) if counts[ref][h - 1] > 0]

        def source(height: int) -> str:
            for k in range(n):
                i = (height + k) % n
                if len(hashes[i]) >= height and hashes[i][height - 1] == hashes[ref][height - 1]:
                    return urls[i]
            return urls[ref]
        occurrences: dict[bytes, list[int]] = defaultdict(list)
        for height, ids in zip(wanted, pool.map(lambda h: _block_txs(source(h), h), wanted)):
            if isinstance(ids, str):
                scan.errors.append(ids)
                continue
            for tx_id in ids:
                occurrences[tx_id].append(height)
        scan.occurrences = dict(occurrences)
    return scan
