"""Process bookkeeping of `testnet up/down/kill` with stand-in processes (no node needed)."""

import os
import socket
import subprocess
import sys

import pytest

from cli import procs
from cli.errors import CliError
from cli.layout import NodeHome

SLEEPER = ("import signal, sys, time\n"
           "if sys.argv[1] == 'stubborn': signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
           "print('ready', flush=True)\n"
           "time.sleep(60)\n")


@pytest.fixture
def home(tmp_path):
    node_home = tmp_path / "node0"
    node_home.mkdir()
    return NodeHome("node0", "finance", node_home, ("127.0.0.1", 1), ("127.0.0.1", 2))


@pytest.fixture
def spawn(home):
    started = []

    def start(mode: str = "polite") -> int:
        # Looks like a node to procs: "node" and the home directory are on its command line.
        proc = subprocess.Popen([sys.executable, "-c", SLEEPER, mode, "node", "--home", str(home.home)],
                                stdout=subprocess.PIPE, start_new_session=True)
        started.append(proc)
        assert proc.stdout.readline() == b"ready\n"       # signal handler installed
        home.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid
    yield start
    for proc in started:
        proc.kill()
        proc.wait(5)
        proc.stdout.close()


def test_running_pid_follows_the_process(home, spawn):
    assert procs.running_pid(home) is None
    pid = spawn()
    assert procs.running_pid(home) == pid


def test_a_reused_pid_is_not_our_node(home):
    home.pid_file.write_text(f"{os.getpid()}\n")      # alive, but not a node of this home
    assert procs.running_pid(home) is None


def test_garbage_pid_file(home):
    home.pid_file.write_text("not a pid\n")
    assert procs.running_pid(home) is None


def test_sigterm_stops_and_pid_file_goes(home, spawn):
    pid = spawn()
    assert procs.stop_processes([(home, pid)], grace_s=5) == [(home, "stopped")]
    assert procs.running_pid(home) is None and not home.pid_file.exists()


def test_sigkill_after_grace(home, spawn):
    pid = spawn("stubborn")
    assert procs.stop_processes([(home, pid)], grace_s=0.3) == [(home, "killed")]
    assert not procs.is_node_process(pid, home.home)


def test_hard_kill(home, spawn):
    pid = spawn("stubborn")
    assert procs.stop_processes([(home, pid)], grace_s=0, hard=True) == [(home, "killed")]
    assert procs.running_pid(home) is None


def test_busy_port_is_reported(home):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        busy = NodeHome("node0", "finance", home.home, ("127.0.0.1", port + 0), ("127.0.0.1", port))
        with pytest.raises(CliError, match=f"node0: p2p address 127.0.0.1:{port} is already in use"):
            procs.check_ports_free(busy)


def test_log_tail(home):
    assert "no log" in procs.log_tail(home)
    home.log_file.write_text("".join(f"line {i}\n" for i in range(100)))
    assert procs.log_tail(home, 3) == "line 97\nline 98\nline 99"


def test_cpu_and_rss_of_this_process():
    assert procs.cpu_seconds(os.getpid()) > 0
    assert procs.peak_rss_mb(os.getpid()) > 1
    assert procs.cpu_seconds(2**22 + 7) is None
