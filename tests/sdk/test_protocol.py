"""The SDK against scripted answers (httpx.MockTransport): typed errors for
every refusal, safe retries, the event stream's parsing and reconnection."""

from __future__ import annotations

import json

import httpx
import pytest

import ynchain
from ledger import admission
from tests.factories import make_genesis, make_tx
from ynchain import protocol

GENESIS, _, ACCOUNTS = make_genesis()
URL = "http://node.test:1"


def tx(n=1):
    return make_tx(ACCOUNTS["finance"], GENESIS, args={"key": f"k{n}", "value": n}, nonce=n)


def answer(status, doc, headers=None):
    return httpx.Response(status, content=json.dumps(doc).encode(), headers=headers)


def client(handler, **kw):
    kw.setdefault("retries", 2)
    return ynchain.Client(URL, transport=httpx.MockTransport(handler), **kw)


def committed(tx_id, status="ok", code=0, message=""):
    return {"id": tx_id, "accepted": True, "reason": None, "committed": True, "status": "committed",
            "height": 7, "index": 0,
            "receipt": {"status": status, "code": code, "message": message, "result": {"n": 1}}}


def test_every_admission_reason_has_its_own_exception():
    assert set(ynchain.REFUSALS) == set(admission.REASONS)
    assert len(set(ynchain.REFUSALS.values())) == len(admission.REASONS)


@pytest.mark.parametrize("reason", admission.REASONS)
def test_a_refusal_raises_the_class_of_its_reason(reason):
    t = tx()

    def handler(request):
        return answer(200, {"results": [{"id": t.id.hex(), "accepted": False, "reason": reason}]})

    with client(handler) as node, pytest.raises(ynchain.REFUSALS[reason]) as info:
        node.submit(t)
    assert info.value.reason == reason and info.value.tx_id == t.id.hex()
    assert isinstance(info.value, ynchain.TxRefused) and "\n" not in str(info.value)


def test_an_unknown_reason_from_a_newer_node_is_still_a_refusal():
    def handler(request):
        return answer(200, {"results": [{"id": "ab", "accepted": False, "reason": "quota"}]})

    with client(handler) as node, pytest.raises(ynchain.TxRefused) as info:
        node.submit(tx())
    assert type(info.value) is ynchain.TxRefused and info.value.reason == "quota"


def test_waiting_returns_the_receipt_and_an_error_receipt_raises():
    t = tx()
    receipts = iter([("ok", 0, ""), ("conflict", 3, "receipt already reimbursed")])

    def handler(request):
        assert request.url.params["wait"] == "true" and request.url.params["timeout"] == "5"
        assert json.loads(request.content) == {"txs": [t.encode().hex()]}
        return answer(200, {"results": [committed(t.id.hex(), *next(receipts))]})

    with client(handler) as node:
        result = node.submit(t, wait=True, timeout=5)
        assert (result.height, result.receipt.ok, result.receipt.result) == (7, True, {"n": 1})
        with pytest.raises(ynchain.TxFailed) as info:
            node.submit(t, wait=True, timeout=5)
    assert info.value.receipt.status == "conflict" and "already reimbursed" in str(info.value)


def test_a_busy_node_is_retried_after_its_retry_after(monkeypatch):
    t, calls, slept = tx(), [], []
    monkeypatch.setattr("ynchain.client.time.sleep", slept.append)

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            return answer(429, {"error": "the mempool is full", "code": "mempool_full"},
                          {"Retry-After": "1"})
        return answer(200, {"results": [{"id": t.id.hex(), "accepted": True, "reason": None}]})

    with client(handler) as node:
        assert node.submit(t).accepted
    assert len(calls) == 2 and slept == [1.0]
    assert calls[0].content == calls[1].content          # the same signed bytes


def test_a_retry_whose_first_attempt_got_through_is_not_a_refusal(monkeypatch):
    # The answer to the first POST was lost; the node had admitted the tx, so
    # the retry hears "duplicate": that is our own tx, accepted.
    t, calls = tx(), []
    monkeypatch.setattr("ynchain.client.time.sleep", lambda s: None)

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadTimeout("lost", request=request)
        return answer(200, {"results": [{"id": t.id.hex(), "accepted": False, "reason": "duplicate"}]})

    with client(handler) as node:
        assert node.submit(t).accepted
    assert len(calls) == 2


def test_retries_are_bounded_and_end_in_one_clear_error(monkeypatch):
    monkeypatch.setattr("ynchain.client.time.sleep", lambda s: None)
    calls = []

    def handler(request):
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    with client(handler, retries=2) as node, pytest.raises(ynchain.NodeUnavailable) as info:
        node.status()
    assert len(calls) == 3 and str(info.value) == f"cannot reach node at {URL}: connection refused"


@pytest.mark.parametrize("status, doc, error", [
    (404, {"error": "transaction ab not found", "code": "not_found"}, ynchain.NotFound),
    (400, {"error": "bad height", "code": "bad_request"}, ynchain.ApiError),
    (500, "<html>", ynchain.ApiError),
])
def test_error_answers_become_api_errors(status, doc, error):
    with client(lambda r: answer(status, doc)) as node, pytest.raises(error) as info:
        node.tx("ab")
    assert info.value.status == status and URL in str(info.value)


@pytest.mark.parametrize("body", [b"not json", b'{"id": 5, "status": "committed"}', b"[]"])
def test_an_answer_the_api_does_not_promise_is_a_protocol_violation(body):
    with client(lambda r: httpx.Response(200, content=body)) as node, \
            pytest.raises(ynchain.ProtocolViolation):
        node.tx("ab")


def test_call_signs_for_the_nodes_chain_and_height():
    sent = []

    def handler(request):
        if request.url.path == "/status":
            return answer(200, {"chain_id": GENESIS.chain_id, "height": 40, "view": 0, "node": "node0"})
        sent.append(json.loads(request.content)["txs"][0])
        return answer(200, {"results": [{"id": "ff", "accepted": True, "reason": None}]})

    with client(handler, key=ACCOUNTS["finance"], valid_for=7) as node:
        assert node.call("kv", "put", {"key": "a", "value": 1}, wait=False).accepted
    from ledger.tx import Transaction
    signed = Transaction.decode(bytes.fromhex(sent[0]))
    assert signed.chain_id == GENESIS.chain_id and signed.valid_until == 47
    assert signed.sender == ACCOUNTS["finance"].public_key and signed.verify_signature()


def sse(*events):
    return "".join(f"id: {e['height']}\nevent: block\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def block(h):
    return {"height": h, "hash": f"{h:064x}", "txs": 1, "proposer": "node0", "timestamp_ms": h}


def test_the_block_stream_resumes_where_it_broke(monkeypatch):
    monkeypatch.setattr("ynchain.client.time.sleep", lambda s: None)
    seen = []

    def handler(request):
        seen.append((request.url.params.get("from"), request.headers.get("last-event-id")))
        if len(seen) == 1:        # two blocks, a heartbeat, then the connection ends
            return httpx.Response(200, content=sse(block(3), block(4)) + b": heartbeat\n\n")
        return httpx.Response(200, content=sse(block(5)))

    with client(handler) as node:
        stream = node.blocks(from_height=3)
        heights = [next(stream).height for _ in range(3)]
    assert heights == [3, 4, 5]
    assert seen == [("3", None), (None, "4")]


def test_an_endless_event_line_is_refused_not_buffered():
    splitter = protocol.LineSplitter()
    with pytest.raises(ynchain.ProtocolViolation):
        for _ in range(protocol.MAX_SSE_LINE // 65536 + 2):
            splitter.feed(URL, b"x" * 65536)


def test_node_urls_are_normalised_or_refused():
    assert protocol.base_url("127.0.0.1:26651/") == "http://127.0.0.1:26651"
    for bad in ("ftp://x:1", "http://:1", "http://h:port"):
        with pytest.raises(ValueError):
            protocol.base_url(bad)
