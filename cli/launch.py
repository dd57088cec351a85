"""Bringing a local testnet up and down, and asking each node how it is doing.

"Ready" means: every node's process is alive, answers GET /status and is
connected to all other validators. The chain proposes empty blocks only if
genesis sets consensus.empty_blocks_interval_ms (the testnet default is 0, so the
height stays 0 until the first transaction); when it does, ready also requires a
first committed block.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from . import procs
from .errors import CliError, NodeError
from .client import NodeClient
from .layout import NodeHome, Testnet

STATUS_TIMEOUT_S = 2.0
_POLL_S = 0.2


def node_state(node: NodeHome, pid: int | None) -> dict[str, Any]:
    """One row of `testnet status`: the process and, if it answers, its /status."""
    state: dict[str, Any] = {"name": node.name, "org": node.org, "pid": pid,
                             "alive": pid is not None, "api": node.api_url,
                             "p2p": f"{node.p2p[0]}:{node.p2p[1]}", "height": None,
                             "view": None, "primary": None, "peers": [], "mempool": None,
                             "error": None}
    if pid is None:
        return state
    try:
        with NodeClient(node.api_url, STATUS_TIMEOUT_S) as client:
            doc = client.get("/status")
    except NodeError as exc:
        state["error"] = str(exc)
        return state
    if isinstance(doc, dict):
        for key in ("height", "view", "primary", "mempool"):
            state[key] = doc.get(key)
        peers = doc.get("peers")
        state["peers"] = peers if isinstance(peers, list) else []
    return state


def testnet_states(testnet: Testnet) -> list[dict[str, Any]]:
    return [node_state(n, procs.running_pid(n)) for n in testnet.nodes]


def is_ready(state: dict[str, Any], testnet: Testnet) -> bool:
    if not state["alive"] or state["height"] is None:
        return False
    others = {n.name for n in testnet.nodes} - {state["name"]}
    if not others <= set(state["peers"]):
        return False
    return testnet.genesis.consensus.empty_blocks_interval_ms == 0 or state["height"] >= 1


def describe(state: dict[str, Any], testnet: Testnet) -> str:
    if not state["alive"]:
        return "stopped"
    if state["height"] is None:
        return "not answering"
    if is_ready(state, testnet):
        return "ready"
    return f"connecting ({len(state['peers'])}/{len(testnet.nodes) - 1} peers)"


class _Progress:
    """One status line on stderr: rewritten in place on a terminal; elsewhere (logs,
    CI) printed only when `key` changes, so the log is not a line per poll."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last_key: object = None

    def show(self, key: object, text: str) -> None:
        if not self.enabled or (not self.tty and key == self.last_key):
            return
        self.last_key = key
        click.echo(f"\r{text}\033[K" if self.tty else text, err=True, nl=not self.tty)

    def done(self) -> None:
        if self.enabled and self.tty and self.last_key is not None:
            click.echo("", err=True)


def _last_up_file(testnet: Testnet) -> Path:
    return testnet.dir / ".last-up-seconds"


def last_up_seconds(testnet: Testnet) -> float | None:
    """How long the last successful `up` of this testnet took: the estimate."""
    try:
        return float(_last_up_file(testnet).read_text())
    except (OSError, ValueError):
        return None


def _remember_up_seconds(testnet: Testnet, seconds: float) -> None:
    try:
        _last_up_file(testnet).write_text(f"{seconds:.2f}\n")
    except OSError:
        pass          # only an estimate is lost


def progress_text(states: list[dict[str, Any]], testnet: Testnet, elapsed: float,
                  last_s: float | None) -> str:
    """One line: how many nodes are ready, an estimate, and which are where."""
    total = len(testnet.nodes)
    ready, connecting, starting = [], [], []
    for s in states:
        if is_ready(s, testnet):
            ready.append(s["name"])
        elif s["height"] is not None:
            connecting.append(f"{s['name']} {len(s['peers'])}/{total - 1} peers")
        else:
            starting.append(s["name"])
    if last_s is None:
        estimate = "first start, no estimate yet"
    elif last_s > elapsed:
        estimate = f"about {last_s - elapsed:.0f}s left"
    else:
        estimate = f"longer than the last start ({last_s:.1f}s)"
    parts = [f"{label}: {', '.join(names)}" for label, names in
             (("ready", ready), ("connecting", connecting), ("starting", starting)) if names]
    return f"{len(ready)}/{total} nodes ready ({elapsed:.1f}s, {estimate}); " + "; ".join(parts)


def _startup_failure(node: NodeHome) -> str:
    return (f"{node.name} exited during start-up; last lines of {node.log_file}:\n"
            f"{procs.log_tail(node)}")


def bring_up(testnet: Testnet, timeout_s: float, progress: bool = True) -> tuple[list[str], list[dict]]:
    """Start every stopped node and wait until all are ready.

    Returns (names of nodes started, final states). On failure the nodes this call
    started are stopped again and a CliError explains what went wrong."""
    to_start = [n for n in testnet.nodes if procs.running_pid(n) is None]
    for node in to_start:
        procs.check_ports_free(node)
    started: list[tuple[NodeHome, int]] = []
    try:
        for node in to_start:
            started.append((node, procs.start_node(node)))
        states = _wait_ready(testnet, started, timeout_s, _Progress(progress))
    except BaseException:
        procs.stop_processes(started, grace_s=3.0)
        raise
    return [n.name for n, _ in started], states


def _wait_ready(testnet: Testnet, started: list[tuple[NodeHome, int]], timeout_s: float,
                progress: _Progress) -> list[dict]:
    begin = time.monotonic()
    deadline = begin + timeout_s
    last_s = last_up_seconds(testnet)
    try:
        while True:
            for node, pid in started:
                if not procs.is_node_process(pid, node.home):
                    raise CliError(_startup_failure(node))
            states = testnet_states(testnet)
            elapsed = time.monotonic() - begin
            progress.show(tuple(describe(s, testnet) for s in states),
                          progress_text(states, testnet, elapsed, last_s))
            if all(is_ready(s, testnet) for s in states):
                _remember_up_seconds(testnet, elapsed)
                return states
            if time.monotonic() >= deadline:
                late = ", ".join(f"{s['name']} ({describe(s, testnet)})" for s in states
                                 if not is_ready(s, testnet))
                raise CliError(f"testnet not ready after {timeout_s:g}s: {late}; "
                               f"see the node.log files under {testnet.dir}")
            time.sleep(_POLL_S)
    finally:
        progress.done()


def bring_down(testnet: Testnet, grace_s: float) -> list[tuple[NodeHome, str]]:
    targets = []
    for node in testnet.nodes:
        pid = procs.running_pid(node)
        if pid is None:
            node.pid_file.unlink(missing_ok=True)     # stale
        else:
            targets.append((node, pid))
    return procs.stop_processes(targets, grace_s)
