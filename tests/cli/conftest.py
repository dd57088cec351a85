from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger.crypto import KeyPair, save_key

from .fake_node import FakeNode


@pytest.fixture
def run(monkeypatch, tmp_path):
    """Invoke `ynchain ARGS...` in-process, from an empty cwd and without YNCHAIN_NODE."""
    monkeypatch.delenv("YNCHAIN_NODE", raising=False)
    monkeypatch.delenv("YNCHAIN_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, **kwargs):
        return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)
    return invoke


def one_error_line(result, exit_code: int = 1) -> str:
    """Assert the command failed with exactly one 'error: ...' line and no traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def fake():
    """A fake node's HTTP API (tests/cli/fake_node.py), for the commands that talk to one."""
    with FakeNode() as node:
        yield node


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "sender.key"
    save_key(path, KeyPair.generate())
    return path
