"""Local node processes of a testnet: start, identify, stop, measure.

A pid file alone is not proof: after a crash the pid can be reused by another
program. A pid counts as our node only if /proc/<pid>/cmdline is the node command
for that home directory; a zombie (exited, not yet reaped) counts as stopped.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import cli

from .errors import CliError
from .layout import NodeHome

_PROJECT_ROOT = Path(cli.__file__).resolve().parent.parent
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_POLL_S = 0.05


def node_command(home: Path) -> list[str]:
    return [sys.executable, "-m", "cli.main", "node", "start", "--home", str(home)]


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode("utf-8", "replace").split("\0")[:-1]


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split(" ", 1)[0]


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our own child (tests, bench)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_node_process(pid: int, home: Path) -> bool:
    _reap(pid)
    state = _state(pid)
    if state is None or state in ("Z", "X"):
        return False
    cmd = _cmdline(pid)
    return cmd is not None and "node" in cmd and str(home) in cmd


def read_pid(node: NodeHome) -> int | None:
    try:
        text = node.pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"cannot read {node.pid_file}: {exc.strerror}") from None
    return int(text) if text.isdigit() else None


def running_pid(node: NodeHome) -> int | None:
    """The pid of this node's live process, or None."""
    pid = read_pid(node)
    return pid if pid is not None and is_node_process(pid, node.home) else None


def port_in_use(host: str, port: int) -> bool:
    # SO_REUSEADDR like a listening server, so a port in TIME_WAIT is not "busy".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise CliError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    return False


def check_ports_free(node: NodeHome) -> None:
    for what, (host, port) in (("p2p", node.p2p), ("api", node.api)):
        if port_in_use(host, port):
            raise CliError(f"{node.name}: {what} address {host}:{port} is already in use "
                           "(another testnet or program holds it; change the ports with "
                           "`testnet init --base-port` or stop that program)")


def start_node(node: NodeHome) -> int:
    """Start the node in a session of its own (it outlives this command)."""
    env = dict(os.environ)
    # `python -m cli.main` must find the project even when it is not pip-installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
    try:
        with open(node.log_file, "ab") as log:
            proc = subprocess.Popen(node_command(node.home), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, cwd=node.home,
                                    env=env, start_new_session=True)
        tmp = node.pid_file.with_suffix(".pid.tmp")
        tmp.write_text(f"{proc.pid}\n")
        tmp.replace(node.pid_file)
    except OSError as exc:
        raise CliError(f"{node.name}: cannot start: {exc}") from None
    return proc.pid


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)       # the node leads its own session/group
    except ProcessLookupError:
        pass
    except PermissionError:
        raise CliError(f"not allowed to signal process {pid}") from None


def stop_processes(targets: list[tuple[NodeHome, int]], grace_s: float,
                   hard: bool = False) -> list[tuple[NodeHome, str]]:
    """SIGTERM each (SIGKILL at once if `hard`), SIGKILL what is still alive after
    `grace_s`; remove pid files. Returns (node, "stopped" | "killed") for each."""
    for _, pid in targets:
        _signal(pid, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    outcome: dict[str, str] = {}
    pending = list(targets)
    while pending:
        pending = [(n, p) for n, p in pending if is_node_process(p, n.home)]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    for node, pid in pending:
        _signal(pid, signal.SIGKILL)
        outcome[node.name] = "killed"
    if hard:
        outcome = {node.name: "killed" for node, _ in targets}
    kill_deadline = time.monotonic() + 5.0
    for node, pid in pending:
        while is_node_process(pid, node.home) and time.monotonic() < kill_deadline:
            time.sleep(_POLL_S)
    for node, _ in targets:
        node.pid_file.unlink(missing_ok=True)
    return [(node, outcome.get(node.name, "stopped")) for node, _ in targets]


def log_tail(node: NodeHome, lines: int = 20) -> str:
    try:
        with open(node.log_file, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 64 * 1024))
            tail = deque(fh.read().decode("utf-8", "replace").splitlines(), maxlen=lines)
    except OSError:
        return f"(no log at {node.log_file})"
    return "\n".join(tail) if tail else f"({node.log_file} is empty)"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (utime, stime: fields 14 and 15 of stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _status_mb(pid: int, field: str) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def memory_kb(pid: int) -> tuple[int | None, int | None]:
    """(VmRSS, RssAnon) of a process in kB; None for what could not be read.

    The two differ by the file pages mapped into the process, and in a node these are
    LevelDB's table files (it maps every open table, up to 1,000 of them): they grow
    with the chain (131 of a node's 292 MB after two 60k-tx floods), are clean page
    cache the kernel reclaims under pressure, and are shared with every reader of the
    file.  RssAnon is what the node allocated and only it can give back."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "RssAnon:")):
                    found[line.split(":", 1)[0]] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None, None
    return found.get("VmRSS"), found.get("RssAnon")


def peak_rss_mb(pid: int) -> float | None:
    return _status_mb(pid, "VmHWM:")


