"""status / tx / query / watch against a fake node, an unreachable one, and node resolution."""

import json
import os

import pytest

from cli.errors import CliError
from cli.layout import init_testnet
from cli.target import NO_NODE, resolve_node_url

from .conftest import one_error_line
from .fake_node import CHAIN_ID


# -- default --node resolution -------------------------------------------------------

def test_explicit_node_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("YNCHAIN_NODE", "http://env:1")
    assert resolve_node_url("http://given:2", tmp_path) == "http://given:2"


def test_env_var_next(monkeypatch, tmp_path):
    monkeypatch.setenv("YNCHAIN_NODE", "http://env:1")
    init_testnet(tmp_path, 4, 31000)
    assert resolve_node_url(None, tmp_path) == "http://env:1"


@pytest.mark.parametrize("sub", ["", "testnet"])
def test_testnet_in_cwd(monkeypatch, tmp_path, sub):
    monkeypatch.delenv("YNCHAIN_NODE", raising=False)
    init_testnet(tmp_path / sub if sub else tmp_path, 4, 31000)
    assert resolve_node_url(None, tmp_path) == "http://127.0.0.1:31001"


def test_nothing_to_go_on(monkeypatch, tmp_path):
    monkeypatch.delenv("YNCHAIN_NODE", raising=False)
    (tmp_path / "genesis.json").write_text("{}")      # not a genesis: ignored
    with pytest.raises(CliError, match=NO_NODE):
        resolve_node_url(None, tmp_path)


def test_command_without_node(run):
    assert one_error_line(run("status")) == f"error: {NO_NODE}"


def test_command_uses_testnet_of_cwd(run, tmp_path, fake, monkeypatch):
    port = int(fake.url.rsplit(":", 1)[1])
    init_testnet(tmp_path / "testnet", 1, port - 1)   # node0's API port = base + 1
    result = run("status", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["chain_id"] == CHAIN_ID


def test_env_var_used_by_command(run, fake, monkeypatch):
    monkeypatch.setenv("YNCHAIN_NODE", fake.url.removeprefix("http://"))
    assert run("status").exit_code == 0


# -- against the fake node -------------------------------------------------------------

def test_status(run, fake):
    doc = json.loads(run("status", "--node", fake.url, "--json").stdout)
    assert doc == fake.status()
    text = run("status", "--node", fake.url).stdout
    assert "height:" in text and "node1, node2, node3" in text


def test_status_shows_block_sync_progress(run, fake):
    fake.sync = {"target": 900, "height": 340, "rate": 112.5, "eta_s": 4.98}
    text = run("status", "--node", fake.url).stdout
    assert "syncing:         height 340 of 900, 112.5 blocks/s, about 5s left" in text


def test_tx_submit_signs_locally_and_waits(run, fake, key_file):
    args = '{"key": "a", "value": [1, 2]}'
    result = run("tx", "submit", "--node", fake.url, "--key", key_file, "kv", "put", args,
                 "--wait", "--json", "--valid-for", 20)
    assert result.exit_code == 0, result.output
    (tx,) = fake.received
    assert tx.verify_signature()
    assert (tx.chain_id, tx.contract, tx.method, tx.args) == (CHAIN_ID, "kv", "put", {"key": "a", "value": [1, 2]})
    assert tx.valid_until == fake.height + 20
    doc = json.loads(result.stdout)
    assert doc["id"] == tx.id.hex() and doc["committed"] and doc["receipt"]["status"] == "ok"


def test_resubmitting_makes_a_new_tx(run, fake, key_file):
    for _ in range(2):
        assert run("tx", "submit", "--node", fake.url, "--key", key_file, "kv", "put", "{}").exit_code == 0
    first, second = fake.received
    assert first.nonce != second.nonce and first.id != second.id


def test_tx_submit_prints_id(run, fake, key_file):
    result = run("tx", "submit", "--node", fake.url, "--key", key_file, "kv", "put")
    assert result.exit_code == 0
    assert result.stdout.strip() == fake.received[0].id.hex()
    assert fake.received[0].args == {}


def test_refused_tx_exits_1_with_reason(run, fake, key_file):
    fake.refuse_reason = "unknown_sender"
    result = run("tx", "submit", "--node", fake.url, "--key", key_file, "kv", "put", "{}")
    assert "refused: unknown_sender" in one_error_line(result)


def test_failed_receipt_exits_1(run, fake, key_file):
    fake.receipt = {"status": "permission_denied", "code": 4, "message": "key owned by tax", "result": None}
    result = run("tx", "submit", "--node", fake.url, "--key", key_file, "kv", "put", "{}", "--wait")
    line = one_error_line(result)
    assert "permission_denied: key owned by tax" in line
    assert "receipt: permission_denied" in result.stdout        # the receipt is printed too


def test_not_committed_in_time_exits_1(run, fake, key_file):
    fake.commit = False
    result = run("tx", "submit", "--node", fake.url, "--key", key_file, "kv", "put", "{}", "--wait",
                 "--timeout", 1)
    assert "not committed within 1s" in one_error_line(result)


def test_submit_with_bad_key_file(run, fake, tmp_path):
    bad = tmp_path / "k"
    bad.write_text("{}")
    os.chmod(bad, 0o600)
    assert "not an ed25519 key file" in one_error_line(
        run("tx", "submit", "--node", fake.url, "--key", bad, "kv", "put"))
    assert not fake.received


def test_tx_status_not_found(run, fake):
    line = one_error_line(run("tx", "status", "ab" * 32, "--node", fake.url))
    assert line == f"error: node at {fake.url}: transaction {'ab' * 32} not found"


def test_query_block(run, fake):
    doc = json.loads(run("query", "block", "latest", "--node", fake.url, "--json").stdout)
    assert doc["height"] == 7
    text = run("query", "block", "7", "--node", fake.url).stdout
    assert "cd" * 32 in text and "ef" * 32 in text and "node0" in text
    assert "block 8 not found" in one_error_line(run("query", "block", "8", "--node", fake.url))


def test_query_state_escapes_the_key(run, fake):
    result = run("query", "state", "kv", "a/b c", "--node", fake.url, "--json")
    assert result.exit_code == 0, result.output
    assert fake.queries[-1] == "/state/kv/a%2Fb%20c"
    assert json.loads(result.stdout)["value"] == {"n": 1}


def test_query_validators(run, fake):
    text = run("query", "validators", "--node", fake.url).stdout
    assert text.splitlines()[0].split() == ["NAME", "ORG", "P2P", "API", "CONNECTED", "PRIMARY"]
    assert len(text.splitlines()) == 5
    doc = json.loads(run("query", "validators", "--node", fake.url, "--json").stdout)
    assert [v["name"] for v in doc["validators"]] == ["node0", "node1", "node2", "node3"]


def test_watch_prints_a_line_per_block(run, fake):
    # The fake closes the stream after three blocks; watch reports that as an error.
    result = run("watch", "--node", fake.url, "--from", 8, "--json")
    assert [json.loads(l)["height"] for l in result.stdout.splitlines()] == [8, 9, 10]
    assert fake.queries[-1] == "/events/blocks?from=8"
    assert "closed the event stream" in one_error_line(result)


def test_non_json_error_answer(fake):
    from cli.client import NodeClient
    from cli.errors import NodeError
    with NodeClient(fake.url) as client, pytest.raises(NodeError) as info:
        client.get("/broken")
    assert str(info.value) == f"node at {fake.url} answered HTTP 500 for GET /broken"
    assert info.value.status == 500


def test_connection_is_reused(fake):
    from cli.client import NodeClient
    with NodeClient(fake.url) as client:
        client.get("/status")
        conn = client._conn
        client.get("/status")
        assert client._conn is conn


# -- an unreachable node -----------------------------------------------------------------

UNREACHABLE = [["status"], ["tx", "status", "ab" * 32], ["query", "block", "latest"],
               ["query", "state", "kv", "k"], ["query", "validators"], ["watch"]]


@pytest.mark.parametrize("args", UNREACHABLE, ids=lambda a: " ".join(a[:2]))
def test_unreachable_node(run, args):
    from cli.ports import free_port_base
    port = free_port_base(1)
    line = one_error_line(run(*args, "--node", f"http://127.0.0.1:{port}"))
    assert line == f"error: cannot reach node at http://127.0.0.1:{port}: connection refused"


def test_unreachable_node_for_submit(run, key_file):
    from cli.ports import free_port_base
    port = free_port_base(1)
    line = one_error_line(run("tx", "submit", "--node", f"127.0.0.1:{port}", "--key", key_file, "kv", "put"))
    assert line == f"error: cannot reach node at http://127.0.0.1:{port}: connection refused"


@pytest.mark.parametrize("url", ["ftp://x:1", "http://", "http://h:port"])
def test_invalid_node_url(run, url):
    assert "invalid node URL" in one_error_line(run("status", "--node", url))
