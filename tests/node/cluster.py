"""A real ynchain network for integration tests: N node processes on 127.0.0.1.

Written with `cli.layout.init_testnet` on free ports, each node started as
`python -m node --home DIR` in its own process group; every process is killed
when the test ends (the `cluster` fixture calls close()).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import trio

from cli.layout import init_testnet, load_testnet
from cli.ports import free_port_base
from ledger.crypto import KeyPair, load_key, save_key
from node.config import render_config
from ledger.tx import Transaction

REPO = Path(__file__).resolve().parents[2]


class Cluster:
    def __init__(self, root: Path, n: int = 4, **consensus: int) -> None:
        """`consensus` overrides genesis consensus parameters (e.g. empty_blocks_interval_ms)."""
        self.root = root
        self.testnet = init_testnet(root, nodes=n, base_port=free_port_base(2 * n))
        if consensus:
            path = root / "genesis.json"
            doc = json.loads(path.read_text())
            doc["consensus"].update(consensus)
            path.write_text(json.dumps(doc, indent=2))
            self.testnet = load_testnet(root)
        self.n = n
        self.homes = {i: node.home for i, node in enumerate(self.testnet.nodes)}
        self.urls = {i: node.api_url for i, node in enumerate(self.testnet.nodes)}
        self.procs: dict[int, subprocess.Popen] = {}
        self.accounts = {p.stem: load_key(p) for p in sorted((root / "accounts").glob("*.key"))}
        self._nonce = 0

    def set_mempool_limit(self, i: int, max_txs: int) -> None:
        """Rewrite node i's config.toml with a mempool of `max_txs` (before it starts)."""
        path = self.testnet.nodes[i].home / "config.toml"
        text = re.sub(r"(?m)^max_txs = \d+$", f"max_txs = {max_txs}", path.read_text())
        assert f"max_txs = {max_txs}" in text
        path.write_text(text)

    # -- processes -----------------------------------------------------------------------
    def add_node_home(self, name: str, key: KeyPair, p2p: tuple[str, int],
                      api: tuple[str, int]) -> int:
        """A home for one more node (one governance adds), next to the testnet's,
        sharing its genesis; its number for start(), url() and the rest."""
        i = len(self.homes)
        home = self.root / name
        home.mkdir()
        save_key(home / "node.key", key)
        (home / "config.toml").write_text(render_config(name, p2p, api))
        self.homes[i] = home
        self.urls[i] = f"http://{api[0]}:{api[1]}"
        return i

    def start(self, i: int) -> None:
        home = self.homes[i]
        log = open(home / "node.log", "ab")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "node", "--home", str(home)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=REPO,
            start_new_session=True)
        log.close()

    def start_all(self) -> None:
        for i in range(self.n):
            self.start(i)

    def kill(self, i: int) -> None:
        """SIGKILL, as a crash would."""
        proc = self.procs.pop(i)
        proc.kill()
        proc.wait(timeout=10)

    def stop(self, i: int, timeout: float = 10.0) -> int:
        """SIGTERM and wait; the exit code."""
        proc = self.procs.pop(i)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"node{i} did not stop within {timeout}s of SIGTERM")

    def freeze(self, i: int) -> None:
        """SIGSTOP: the node stops dead (a partition, a long GC pause) but keeps its sockets."""
        self.procs[i].send_signal(signal.SIGSTOP)

    def thaw(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGCONT)

    def alive(self, i: int) -> bool:
        proc = self.procs.get(i)
        return proc is not None and proc.poll() is None

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)   # a frozen process still dies of SIGKILL, but be plain
                proc.kill()
            proc.wait()
        self.procs.clear()

    def log_tail(self, i: int, lines: int = 30) -> str:
        path = self.homes[i] / "node.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # -- HTTP ------------------------------------------------------------------------------
    def url(self, i: int) -> str:
        return self.urls[i]

    def request(self, i: int, method: str, path: str, body: Any = None,
                timeout: float = 30.0) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url(i) + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    async def get(self, i: int, path: str) -> tuple[int, Any]:
        return await trio.to_thread.run_sync(self.request, i, "GET", path)

    async def status(self, i: int) -> dict | None:
        try:
            code, body = await trio.to_thread.run_sync(lambda: self.request(i, "GET", "/status", timeout=2))
        except (OSError, ValueError):
            return None
        return body if code == 200 else None

    def make_tx(self, account: str, contract: str, method: str, args: Any,
                valid_until: int = 900) -> Transaction:
        self._nonce += 1
        return Transaction.create(self.accounts[account], self.testnet.genesis.chain_id,
                                  self._nonce, valid_until, contract, method, args)

    async def submit(self, i: int, txs: list[Transaction], wait: bool = False,
                     timeout: float = 30) -> list[dict]:
        path = f"/txs?wait=true&timeout={timeout}" if wait else "/txs"
        body = {"txs": [tx.encode().hex() for tx in txs]}
        code, answer = await trio.to_thread.run_sync(
            lambda: self.request(i, "POST", path, body, timeout=timeout + 10))
        assert code == 200, answer
        return answer["results"]

    async def wait_until(self, predicate, timeout: float, what: str, poll: float = 0.1):
        """Poll an async predicate until it returns a truthy value (returned)."""
        deadline = time.monotonic() + timeout
        while True:
            value = await predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await trio.sleep(poll)

    async def wait_ready(self, nodes=None, timeout: float = 30.0) -> None:
        nodes = list(range(self.n)) if nodes is None else nodes

        async def ready():
            for i in nodes:
                s = await self.status(i)
                if s is None or len(s["peers"]) < len(nodes) - 1:
                    return False
            return True
        await self.wait_until(ready, timeout, f"nodes {nodes} to be up and connected")

    async def load(self, node: int, acknowledged: list[str], stop: trio.Event) -> None:
        """Submit kv txs to `node`, one every 50 ms, until `stop`; the ids of the
        accepted ones (which must commit exactly once) go to `acknowledged`."""
        n = 0
        while not stop.is_set():
            n += 1
            tx = self.make_tx("tourism", "kv", "put", {"key": f"load-{node}-{n}", "value": n})
            for result in await self.submit(node, [tx]):
                if result["accepted"]:
                    acknowledged.append(tx.id.hex())
            await trio.sleep(0.05)

    async def wait_committed(self, txs: list[str], node: int = 0, timeout: float = 20.0) -> None:
        """Until `node` knows every tx of `txs` (ids) as committed."""
        async def all_committed():
            for tx in txs:
                code, answer = await self.get(node, f"/txs/{tx}")
                if code != 200 or answer["status"] != "committed":
                    return False
            return True
        await self.wait_until(all_committed, timeout, "every acknowledged tx committed")

    async def wait_level(self, nodes: list[int], timeout: float = 20.0) -> int:
        """Until every node of `nodes` is at one height (returned)."""
        async def level():
            heights = await self.heights(nodes)
            return None not in heights.values() and len(set(heights.values())) == 1 and heights
        heights = await self.wait_until(level, timeout, f"nodes {nodes} at one height")
        return heights[nodes[0]]

    async def heights(self, nodes=None) -> dict[int, int | None]:
        return await self._status_field("height", nodes)

    async def views(self, nodes=None) -> dict[int, int | None]:
        return await self._status_field("view", nodes)

    async def _status_field(self, field: str, nodes) -> dict[int, int | None]:
        """`field` of each node's /status (None for a node that does not answer)."""
        nodes = list(range(self.n)) if nodes is None else nodes
        out = {}
        for i in nodes:
            s = await self.status(i)
            out[i] = None if s is None else s[field]
        return out
