"""The campaign's testnet: node processes on 127.0.0.1 that the campaign starts,
kills, freezes and always cleans up.

Ports: node i listens on BASE+2i (p2p) and BASE+2i+1 (API), as `testnet init`
lays out; the link proxies take the next C(n, 2) ports.  Each node's config.toml
dials every peer it dials (those with larger node keys) through its proxy (`[p2p] dial`).

Every process (nodes, schemathesis) is started by `spawn` from the campaign's main
thread through a two-line shim that sets PR_SET_PDEATHSIG, so even a campaign that
is itself killed with SIGKILL leaves no node behind; `close()` kills the rest on any
normal, failed or interrupted exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cli.layout import Testnet, init_testnet
from cli.ports import free_port_base
from cli.procs import node_command
from node.config import render_config

from .proxy import Mesh

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Dies with the thread that started it (the campaign's main thread); exits at once
# if the campaign is already gone, then becomes the real command.
_SHIM = ("import ctypes, os, signal, sys; "
         "ctypes.CDLL(None).prctl(1, signal.SIGKILL); "
         "os.getppid() == int(sys.argv[1]) or sys.exit(3); "
         "os.execv(sys.argv[2], sys.argv[2:])")

UP, FROZEN, DOWN = "up", "frozen", "down"


def spawn(argv: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `argv` in a session of its own, tied to this process's lifetime."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("spawn() must run on the main thread (PR_SET_PDEATHSIG follows the thread)")
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), full_env.get("PYTHONPATH")]))
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", _SHIM, str(os.getpid()), *argv],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=cwd, env=full_env, start_new_session=True)


@dataclass
class NodeProc:
    index: int
    name: str
    home: Path
    proc: subprocess.Popen | None = None
    state: str = DOWN
    started_at: float = 0.0
    expected_exit: bool = True     # False while running: an exit now is a crash

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.state != DOWN else None


class Testbed:
    def __init__(self, root: Path, nodes: int, mempool_max_txs: int) -> None:
        base = free_port_base(2 * nodes + Mesh.port_count(nodes))
        self.net: Testnet = init_testnet(root, nodes, base)
        self.mesh = Mesh([n.p2p for n in self.net.nodes], base + 2 * nodes,
                         list(self.net.genesis.validator_keys))
        names = [n.name for n in self.net.nodes]
        for i, node in enumerate(self.net.nodes):
            dial = {names[j]: address for j, address in self.mesh.dial_table(i).items()}
            (node.home / "config.toml").write_text(
                render_config(node.name, node.p2p, node.api, dial=dial, mempool_max_txs=mempool_max_txs))
        self.nodes = [NodeProc(i, n.name, n.home) for i, n in enumerate(self.net.nodes)]
        self.crashes: list[dict] = []          # exits nobody asked for

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def quorum(self) -> int:
        return self.net.genesis.quorum

    def url(self, i: int) -> str:
        return self.net.nodes[i].api_url

    # -- processes --------------------------------------------------------------------
    def start(self, i: int) -> None:
        node = self.nodes[i]
        if node.state != DOWN:
            raise RuntimeError(f"{node.name} is already running")
        node.proc = spawn(node_command(node.home), cwd=node.home, log=node.home / "node.log")
        node.state, node.started_at, node.expected_exit = UP, time.monotonic(), False

    def stop(self, i: int, sig: int) -> subprocess.Popen:
        """Send SIGKILL (a crash) or SIGTERM (a clean stop) to a running node; the
        caller waits for the exit (`exited`) and then marks it down."""
        node = self._running(i)
        node.expected_exit = True
        _signal_group(node.proc, sig)
        return node.proc

    def mark_down(self, i: int) -> None:
        self.nodes[i].state = DOWN

    def freeze(self, i: int) -> None:
        node = self._running(i)
        _signal_group(node.proc, signal.SIGSTOP)
        node.state = FROZEN

    def thaw(self, i: int) -> None:
        node = self.nodes[i]
        if node.state == FROZEN:
            _signal_group(node.proc, signal.SIGCONT)
            node.state = UP

    def _running(self, i: int) -> NodeProc:
        node = self.nodes[i]
        if node.state == DOWN or node.proc is None:
            raise RuntimeError(f"{node.name} is not running")
        return node

    def reap_crashes(self, now: float) -> list[int]:
        """Nodes that exited on their own since the last call (recorded in `crashes`)."""
        gone = []
        for node in self.nodes:
            if node.state != DOWN and node.proc is not None and node.proc.poll() is not None:
                node.state = DOWN
                if node.expected_exit:      # the campaign is stopping it
                    continue
                self.crashes.append({"node": node.name, "t": round(now, 1),
                                     "exit_code": node.proc.returncode, "log_tail": self.log_tail(node.index)})
                gone.append(node.index)
        return gone

    def log_tail(self, i: int, lines: int = 8) -> list[str]:
        path = self.nodes[i].home / "node.log"
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - 16384))
                return fh.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError:
            return []

    def close(self) -> None:
        """Kill every process still running; safe to call more than once."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.expected_exit = True
                _signal_group(node.proc, signal.SIGCONT)
                _signal_group(node.proc, signal.SIGKILL)
                try:
                    node.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            node.state = DOWN


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)       # the process leads its own session
    except ProcessLookupError:
        pass
