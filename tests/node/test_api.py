"""The HTTP API against a fake node, over real hypercorn on 127.0.0.1 port 0.

Requests go over raw trio sockets (HTTP/1.1, Connection: close), so every
test is cancellable and bounded by trio.fail_after.  Every JSON answer is
checked against the schema node/api/openapi.py documents for it.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from ledger.receipt import ERR_PERMISSION, Receipt
from node.api.server import create_app, serve_api
from node.api.jsonview import plain_to_json
from node.metrics import NodeMetrics
from node.api.openapi import openapi_document
from tests.factories import make_tx
from tests.node.fake_node import SUBSCRIBER_BUFFER, FakeNode

DOC = openapi_document()
SMALL_LIMIT = 1024


# -- a minimal HTTP client ------------------------------------------------------------

@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _dechunk(data: bytes) -> bytes:
    out, pos = [], 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2:end + 2 + size])
        pos = end + 2 + size + 2


async def http(port: int, method: str, path: str, body: bytes | None = None,
               headers: dict[str, str] | None = None, *, chunks: list[bytes] | None = None) -> Resp:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if chunks is not None:
        head.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    else:
        payload = body or b""
        if body is not None and not any(k.lower() == "content-length" for k in headers or {}):
            head.append(f"Content-Length: {len(body)}")
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all("\r\n".join(head).encode() + b"\r\n\r\n" + payload)
        data = bytearray()
        while chunk := await stream.receive_some(65536):
            data += chunk
    raw_head, _, raw_body = bytes(data).partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    if hdrs.get("transfer-encoding") == "chunked":
        raw_body = _dechunk(raw_body)
    return Resp(status, hdrs, raw_body)


# -- checking answers against the OpenAPI document -------------------------------------

def _matches(schema: dict, value: Any) -> str | None:
    """None if `value` fits `schema` (the JSON Schema subset the document uses), else why not."""
    if "$ref" in schema:
        schema = DOC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "oneOf" in schema:
        fits = [s for s in schema["oneOf"] if _matches(s, value) is None]
        return None if len(fits) == 1 else f"{value!r} matches {len(fits)} of oneOf"
    if "const" in schema and value != schema["const"]:
        return f"{value!r} != {schema['const']!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{value!r} not in {schema['enum']}"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        py = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
              "integer": int, "number": (int, float)}
        if not any(isinstance(value, py[k]) and not (k in ("integer", "number") and isinstance(value, bool))
                   for k in kinds):
            return f"{value!r} is not {kinds}"
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        return f"{value!r} does not match {schema['pattern']}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{value} < {schema['minimum']}"
    if isinstance(value, dict):
        missing = [k for k in schema.get("required", []) if k not in value]
        if missing:
            return f"missing {missing} in {value!r}"
        for key, sub in schema.get("properties", {}).items():
            if key in value and (why := _matches(sub, value[key])):
                return f"{key}: {why}"
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            if why := _matches(schema["items"], item):
                return f"[{i}]: {why}"
    return None


def check(resp: Resp, method: str, template: str, status: int) -> Any:
    """Assert the status, and that the JSON body fits what the document says."""
    assert resp.status == status, (resp.status, resp.body[:300])
    documented = DOC["paths"][template][method.lower()]["responses"][str(status)]
    schema = documented["content"]["application/json"]["schema"]
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert _matches(schema, body) is None, _matches(schema, body)
    return body


def check_error(resp: Resp, method: str, template: str, status: int, code: str) -> str:
    body = check(resp, method, template, status)
    assert body["code"] == code
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


# -- fixtures ----------------------------------------------------------------------------

@dataclass
class Api:
    node: FakeNode
    port: int

    async def get(self, path: str, **kw: Any) -> Resp:
        return await http(self.port, "GET", path, **kw)

    async def post_json(self, path: str, doc: Any) -> Resp:
        return await http(self.port, "POST", path, json.dumps(doc).encode(),
                          {"Content-Type": "application/json"})


async def start(nursery: trio.Nursery, node: FakeNode, **kw: Any) -> Api:
    port = await nursery.start(partial(serve_api, node, "127.0.0.1", 0, **kw))
    return Api(node, port)


@pytest.fixture
async def api(nursery) -> Api:
    return await start(nursery, FakeNode())


def tx_for(node: FakeNode, nonce: int, account: str = "finance", **kw: Any):
    return make_tx(node.account_keys[account], node.genesis, nonce=nonce, **kw)


# -- status, validators, metrics, routing ---------------------------------------------

async def test_status_and_validators(api: Api) -> None:
    with trio.fail_after(10):
        status = check(await api.get("/status"), "GET", "/status", 200)
        assert status["chain_id"] == api.node.chain_id and status["height"] == 0
        validators = check(await api.get("/validators"), "GET", "/validators", 200)["validators"]
        assert [v["name"] for v in validators] == ["node0", "node1", "node2", "node3"]


async def test_metrics_text_parses(api: Api) -> None:
    with trio.fail_after(10):
        api.node.commit([tx_for(api.node, 1), tx_for(api.node, 2)])
        api.node.metrics.frame_sent(100)
        for i in range(100):   # past the label bound: extra reasons fold into "other"
            api.node.metrics.mempool_rejected(f"reason{i}")
        resp = await api.get("/metrics")
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(resp.body.decode())
                   for s in family.samples}
        assert samples[("ynchain_height", ())] == 1
        assert samples[("ynchain_committed_txs_total", ())] == 2
        assert samples[("ynchain_block_txs_count", ())] == 1
        assert samples[("ynchain_transport_bytes_total", (("direction", "out"),))] == 100
        reasons = {dict(labels)["reason"] for name, labels in samples
                   if name == "ynchain_mempool_rejections_total"}
        assert len(reasons) == 32 and "other" in reasons
        assert samples[("ynchain_mempool_rejections_total", (("reason", "other"),))] == 100 - 31
        names = {name for name, _ in samples}
        assert samples[("ynchain_transport_frames_total", (("direction", "out"),))] == 1
        for family in ("ynchain_view", "ynchain_view_changes_total", "ynchain_committed_blocks_total",
                       "ynchain_mempool_size", "ynchain_mempool_bytes", "ynchain_peers_connected",
                       "ynchain_commit_latency_seconds_count", "ynchain_sync_target_height",
                       "ynchain_sync_blocks_total"):
            assert family in names


def test_metrics_track_the_transports_totals() -> None:
    metrics = NodeMetrics()
    stats = SimpleNamespace(frames_in=5, frames_out=7, bytes_in=500, bytes_out=700,
                            handshake_failures={f"r{i:02}": 1 for i in range(40)})
    metrics.track_transport(stats)
    stats.frames_in += 1            # read at scrape time, not copied
    samples = {(s.name, tuple(s.labels.values())): s.value
               for family in text_string_to_metric_families(metrics.render().decode())
               for s in family.samples}
    assert samples[("ynchain_transport_frames_total", ("in",))] == 6
    assert samples[("ynchain_transport_bytes_total", ("out",))] == 700
    failures = {labels[0]: v for (name, labels), v in samples.items()
                if name == "ynchain_handshake_failures_total"}
    assert len(failures) == 32 and failures["other"] == 40 - 31 and failures["r00"] == 1


async def test_unknown_route_and_wrong_method(api: Api) -> None:
    with trio.fail_after(10):
        for path in ("/nope", "/status/", "/blocks/", "/state/kv"):
            resp = await api.get(path)
            assert resp.status == 404 and resp.json()["code"] == "not_found", path
        resp = await http(api.port, "POST", "/status", b"{}")
        check_error(resp, "GET", "/status", 405, "method_not_allowed")
        assert "GET" in resp.headers["allow"]
        check_error(await api.get("/txs"), "POST", "/txs", 405, "method_not_allowed")


async def test_unexpected_exception_is_logged_and_answered_500(api: Api, caplog) -> None:
    with trio.fail_after(10):
        api.node.fail_next = RuntimeError("disk on fire\nsecret detail")
        with caplog.at_level(logging.ERROR, logger="node.api.server"):
            resp = await api.get("/status")
        message = check_error(resp, "GET", "/status", 500, "internal")
        assert "disk on fire" not in message
        assert any("disk on fire" in (r.exc_text or "") for r in caplog.records)
        check(await api.get("/status"), "GET", "/status", 200)   # and it keeps serving


async def test_openapi_document_matches_the_routes(api: Api) -> None:
    with trio.fail_after(10):
        served = check(await api.get("/openapi.json"), "GET", "/openapi.json", 200)
        assert served == json.loads(json.dumps(DOC)) and served["openapi"].startswith("3.1")
    routes = set()
    for route in create_app(FakeNode()).routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)   # {key:path} -> {key}
        routes |= {(path, m.lower()) for m in route.methods if m != "HEAD"}
    documented = {(path, method) for path, ops in DOC["paths"].items() for method in ops}
    assert routes == documented
    for path, ops in DOC["paths"].items():
        for op in ops.values():
            named = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert named == set(re.findall(r"\{(\w+)\}", path)), path
            for status, response in op["responses"].items():
                if status != "200":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


# -- submitting transactions ------------------------------------------------------------

async def test_submit_one_then_pending_then_committed(api: Api) -> None:
    with trio.fail_after(10):
        tx = tx_for(api.node, 1, args={"key": "k", "value": b"\x01\x02"})
        results = check(await api.post_json("/txs", {"tx": tx.encode().hex()}), "POST", "/txs", 200)["results"]
        assert results == [{"id": tx.id.hex(), "accepted": True, "reason": None}]

        pending = check(await api.get(f"/txs/{tx.id.hex()}"), "GET", "/txs/{tx_id}", 200)
        assert pending == {"id": tx.id.hex(), "status": "pending"}

        api.node.commit()
        got = check(await api.get(f"/txs/{tx.id.hex().upper()}"), "GET", "/txs/{tx_id}", 200)
        assert got["status"] == "committed" and (got["height"], got["index"]) == (1, 0)
        assert got["receipt"] == {"status": "ok", "code": 0, "message": "", "result": {"n": 0}}
        assert got["tx"] == {"chain_id": tx.chain_id, "sender": tx.sender.hex(), "nonce": 1,
                             "valid_until": tx.valid_until, "contract": "kv", "method": "put",
                             "args": {"key": "k", "value": {"hex": "0102"}},
                             "signature": tx.signature.hex()}


async def test_json_batch_with_malformed_elements(api: Api) -> None:
    with trio.fail_after(10):
        good, dup = tx_for(api.node, 1), tx_for(api.node, 2)
        api.node.admit([dup])
        forged = tx_for(api.node, 3).__class__.from_record([*tx_for(api.node, 3).to_record()[:7], bytes(64)])
        batch = [good.encode().hex(), "zz", 7, "abcd", dup.encode().hex(), forged.encode().hex(),
                 " " + good.encode().hex()]
        results = check(await api.post_json("/txs", {"txs": batch}), "POST", "/txs", 200)["results"]
        assert [(r["accepted"], r["reason"]) for r in results] == [
            (True, None), (False, "malformed"), (False, "malformed"), (False, "malformed"),
            (False, "duplicate"), (False, "bad_signature"), (False, "malformed")]
        assert [r["id"] for r in results] == [good.id.hex(), None, None, None, dup.id.hex(),
                                              forged.id.hex(), None]
        assert "hex" in results[1]["detail"]
        assert good.id in api.node.mempool


async def test_msgpack_bulk_submission(api: Api) -> None:
    with trio.fail_after(20):
        txs = [tx_for(api.node, n) for n in range(300)]
        records = [tx.to_record() for tx in txs]
        records.insert(5, ["not", "a", "tx"])
        records.insert(9, [*txs[0].to_record()[:7], b"short-signature"])
        body = msgpack.packb(records, use_bin_type=True)
        resp = await http(api.port, "POST", "/txs", body, {"Content-Type": "application/msgpack"})
        results = check(resp, "POST", "/txs", 200)["results"]
        assert len(results) == 302
        assert [i for i, r in enumerate(results) if r["reason"] == "malformed"] == [5, 9]
        assert [r["id"] for r in results if r["accepted"]] == [tx.id.hex() for tx in txs]
        assert len(api.node.mempool) == 300


async def test_submit_wait_true_reports_commits(api: Api) -> None:
    with trio.fail_after(10):
        tx1, tx2 = tx_for(api.node, 1), tx_for(api.node, 2)
        answer: list[Resp] = []

        async def submit() -> None:
            answer.append(await api.post_json("/txs?wait=true&timeout=30", {"txs": [tx1.encode().hex(), "00"]}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(submit)
            await api.node.waiting.wait()
            api.node.commit([tx1], [Receipt(ERR_PERMISSION, "finance may not write here")])
        first, malformed = check(answer[0], "POST", "/txs", 200)["results"]
        assert first == {"id": tx1.id.hex(), "accepted": True, "reason": None, "committed": True,
                         "status": "committed", "height": 1, "index": 0,
                         "receipt": {"status": "permission_denied", "code": ERR_PERMISSION,
                                     "message": "finance may not write here", "result": None}}
        assert "committed" not in malformed

        # Not committed within the timeout: answered with committed=false.
        resp = await api.post_json("/txs?wait=1&timeout=0.05", {"tx": tx2.encode().hex()})
        (result,) = check(resp, "POST", "/txs", 200)["results"]
        assert result["accepted"] and result["committed"] is False and "height" not in result
        assert result["status"] == "pending"


async def test_wait_true_ends_when_a_tx_is_dropped_and_says_why(api: Api) -> None:
    with trio.fail_after(10):
        tx1, tx2 = tx_for(api.node, 1), tx_for(api.node, 2)
        answer: list[Resp] = []

        async def submit() -> None:
            body = {"txs": [tx1.encode().hex(), tx2.encode().hex()]}
            answer.append(await api.post_json("/txs?wait=true&timeout=60", body))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(submit)
            await api.node.waiting.wait()
            api.node.commit([tx1])
            api.node.drop(tx2, "expired")       # the chain passed its valid_until
        # Answered at once, not after the 60 s timeout (fail_after would fire first).
        committed, expired = check(answer[0], "POST", "/txs", 200)["results"]
        assert committed["committed"] and committed["status"] == "committed"
        assert expired["accepted"] and expired["committed"] is False and expired["status"] == "expired"
        dropped = check(await api.get(f"/txs/{tx2.id.hex()}"), "GET", "/txs/{tx_id}", 200)
        assert dropped == {"id": tx2.id.hex(), "status": "expired"}


async def test_a_batch_refused_whole_for_a_full_mempool_is_429_with_retry_after(api: Api) -> None:
    with trio.fail_after(10):
        api.node.mempool_capacity = 1
        first, second, third = (tx_for(api.node, n) for n in range(3))
        both = {"txs": [first.encode().hex(), second.encode().hex()]}
        mixed = check(await api.post_json("/txs", both), "POST", "/txs", 200)["results"]
        assert [(r["accepted"], r["reason"]) for r in mixed] == [(True, None), (False, "mempool_full")]
        for body in ({"tx": third.encode().hex()},
                     {"txs": [second.encode().hex(), third.encode().hex()]}):
            resp = await api.post_json("/txs", body)
            assert "full" in check_error(resp, "POST", "/txs", 429, "mempool_full")
            assert int(resp.headers["retry-after"]) >= 1
        # A malformed element is not transient: that batch keeps its per-item results.
        resp = await api.post_json("/txs", {"txs": ["zz", third.encode().hex()]})
        assert [r["reason"] for r in check(resp, "POST", "/txs", 200)["results"]] == [
            "malformed", "mempool_full"]
        doc = DOC["paths"]["/txs"]["post"]["responses"]["429"]
        assert "Retry-After" in doc["headers"]


@pytest.mark.parametrize("body, content_type, fragment", [
    (b"{not json", "application/json", "not valid JSON"),
    (b"\xff\xfe", "application/json", "not valid JSON"),
    (b"[" * 100_000, "application/json", "not valid JSON"),
    (b'["00"]', "application/json", "expected"),
    (b'{"tx": "00", "txs": []}', "application/json", "expected"),
    (b'{"other": "00"}', "application/json", "expected"),
    (b'{"txs": "00"}', "application/json", "array"),
    (json.dumps({"txs": ["00"] * 10_001}).encode(), "application/json", "at most 10000"),
    (b"\xc1", "application/msgpack", "not valid msgpack"),
    (msgpack.packb({"a": 1}), "application/msgpack", "expected an array"),
    (msgpack.packb([[1]] * 10_001), "application/msgpack; charset=binary", "at most 10000"),
])
async def test_submit_bad_bodies(api: Api, body: bytes, content_type: str, fragment: str) -> None:
    with trio.fail_after(10):
        resp = await http(api.port, "POST", "/txs", body, {"Content-Type": content_type})
        assert fragment in check_error(resp, "POST", "/txs", 400, "bad_request")
        assert not api.node.mempool


async def test_submit_bad_query_and_content_type(api: Api) -> None:
    with trio.fail_after(10):
        body = json.dumps({"tx": tx_for(api.node, 1).encode().hex()}).encode()
        for query in ("wait=maybe", "timeout=61", "timeout=-1", "timeout=nan", "timeout=soon"):
            resp = await http(api.port, "POST", f"/txs?{query}", body, {"Content-Type": "application/json"})
            check_error(resp, "POST", "/txs", 400, "bad_request")
        resp = await http(api.port, "POST", "/txs", body, {"Content-Type": "text/plain"})
        check_error(resp, "POST", "/txs", 415, "unsupported_media_type")
        assert not api.node.mempool


async def test_oversized_bodies_get_413(nursery) -> None:
    with trio.fail_after(10):
        small = await start(nursery, FakeNode(), max_body_bytes=SMALL_LIMIT)
        big = b'{"txs": ["' + b"00" * SMALL_LIMIT + b'"]}'
        resp = await http(small.port, "POST", "/txs", big, {"Content-Type": "application/json"})
        check_error(resp, "POST", "/txs", 413, "payload_too_large")
        # No Content-Length: counted while reading.
        resp = await http(small.port, "POST", "/txs", chunks=[big[:600], big[600:]],
                          headers={"Content-Type": "application/json"})
        check_error(resp, "POST", "/txs", 413, "payload_too_large")
        # The default 8 MiB limit refuses a declared size before reading anything.
        default = await start(nursery, FakeNode())
        resp = await http(default.port, "POST", "/txs", b"",
                          {"Content-Type": "application/json", "Content-Length": str(9 * 1024 * 1024)})
        check_error(resp, "POST", "/txs", 413, "payload_too_large")


async def test_get_tx_errors(api: Api) -> None:
    with trio.fail_after(10):
        # Any text is a valid path segment (as documented): what is not an id names no tx.
        for bad in ("xyz", "null", "ab" * 31, "ab" * 33, "g" * 64, "%20" + "ab" * 31 + "a"):
            message = check_error(await api.get(f"/txs/{bad}"), "GET", "/txs/{tx_id}", 404, "not_found")
            assert "64 hex digits" in message
        missing = "ab" * 32
        message = check_error(await api.get(f"/txs/{missing}"), "GET", "/txs/{tx_id}", 404, "not_found")
        assert message == f"transaction {missing} not found"


# -- blocks and state -------------------------------------------------------------------

async def test_blocks(api: Api) -> None:
    with trio.fail_after(10):
        check_error(await api.get("/blocks/latest"), "GET", "/blocks/latest", 404, "not_found")
        txs = [tx_for(api.node, n) for n in range(3)]
        first = api.node.commit(txs)
        second = api.node.commit([])
        block = check(await api.get("/blocks/1"), "GET", "/blocks/{height}", 200)
        assert block["hash"] == first.block.hash.hex() and block["height"] == 1
        assert block["txs"] == [tx.id.hex() for tx in txs]
        assert block["header"]["tx_root"] == first.block.header.tx_root.hex()
        cert = block["certificate"]
        assert cert["digest"] == first.certificate.digest.hex()
        assert [(v["validator"], v["name"]) for v in cert["votes"]] == [(0, "node0"), (1, "node1"), (2, "node2")]
        latest = check(await api.get("/blocks/latest"), "GET", "/blocks/latest", 200)
        assert latest["hash"] == second.block.hash.hex()
        assert latest["header"]["prev_hash"] == first.block.hash.hex()
        check_error(await api.get("/blocks/3"), "GET", "/blocks/{height}", 404, "not_found")
        for bad in ("0", "-1", "1.5", "abc", "%C2%B2", "9" * 30):
            check_error(await api.get(f"/blocks/{bad}"), "GET", "/blocks/{height}", 400, "bad_request")


async def test_state(api: Api) -> None:
    with trio.fail_after(10):
        api.node.commit([tx_for(api.node, 1, args={"key": "a/b", "value": {"x": b"\xff", "n": 1}})])
        entry = check(await api.get("/state/kv/a/b"), "GET", "/state/{contract}/{key}", 200)
        assert entry == {"contract": "kv", "key": "a/b", "value": {"x": {"hex": "ff"}, "n": 1}, "height": 1}
        message = check_error(await api.get("/state/kv/missing"), "GET", "/state/{contract}/{key}", 404,
                              "not_found")
        assert "missing" in message
        check_error(await api.get("/state/kv/" + "k" * 2000), "GET", "/state/{contract}/{key}", 400,
                    "bad_request")


def test_plain_values_render_as_documented() -> None:
    value = {b"\x01": [b"", 1.5, math.nan, -math.inf, None, True], 7: "s"}
    assert plain_to_json(value) == {"01": [{"hex": ""}, 1.5, "NaN", "-Infinity", None, True], "7": "s"}
    json.dumps(plain_to_json(value), allow_nan=False)


# -- the block event stream -------------------------------------------------------------

class SseClient:
    """Reads server-sent events from a raw HTTP/1.0 connection (no chunking)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.status = 0

    @classmethod
    async def connect(cls, port: int, path: str, headers: dict[str, str] | None = None) -> "SseClient":
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        await stream.send_all(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
        client = cls(stream)
        head = await client._until(b"\r\n\r\n")
        client.status = int(head.split()[1])
        assert b"text/event-stream" in head.lower()
        return client

    async def _until(self, separator: bytes) -> bytes:
        while separator not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        item, self.buffer = self.buffer.split(separator, 1)
        return item

    async def message(self) -> str:
        return (await self._until(b"\n\n")).decode()

    async def block(self) -> dict[str, Any]:
        """The next block event, skipping comments."""
        while (text := await self.message()).startswith(":"):
            pass
        fields = dict(line.split(": ", 1) for line in text.split("\n"))
        assert fields["event"] == "block"
        data = json.loads(fields["data"])
        assert _matches({"$ref": "#/components/schemas/BlockEvent"}, data) is None
        assert fields["id"] == str(data["height"])
        return data

    async def until_comment(self, comment: str) -> list[dict]:
        """Blocks received before the comment line `: <comment>`."""
        blocks = []
        while (text := await self.message()) != f": {comment}":
            assert not text.startswith(":"), text
            self.buffer = text.encode() + b"\n\n" + self.buffer
            blocks.append(await self.block())
        return blocks


async def test_events_live_blocks(api: Api) -> None:
    with trio.fail_after(10):
        client = await SseClient.connect(api.port, "/events/blocks")
        async with client.stream:
            assert await client.until_comment("subscribed") == []
            committed = api.node.commit([tx_for(api.node, 1), tx_for(api.node, 2)])
            event = await client.block()
            assert event == {"height": 1, "hash": committed.block.hash.hex(), "txs": 2,
                             "proposer": "node0", "timestamp_ms": committed.block.header.timestamp_ms}
            api.node.commit([])
            assert (await client.block())["height"] == 2


async def test_events_with_tx_ids(api: Api) -> None:
    """?tx_ids=true: each event lists its block's tx ids, replayed and live
    (a client following its txs needs no GET per block)."""
    with trio.fail_after(10):
        first = api.node.commit([tx_for(api.node, 1), tx_for(api.node, 2)])
        client = await SseClient.connect(api.port, "/events/blocks?from=1&tx_ids=true")
        async with client.stream:
            [replayed] = await client.until_comment("subscribed")
            assert replayed["tx_ids"] == [tx.id.hex() for tx in first.block.txs]
            api.node.commit([])
            assert (await client.block())["tx_ids"] == []
        resp = await api.get("/events/blocks?tx_ids=maybe")
        check_error(resp, "GET", "/events/blocks", 400, "bad_request")


async def test_events_replay_then_live_without_gap_or_repeat(api: Api) -> None:
    with trio.fail_after(10):
        for _ in range(3):
            api.node.commit([])
        client = await SseClient.connect(api.port, "/events/blocks?from=2")
        async with client.stream:
            assert [b["height"] for b in await client.until_comment("subscribed")] == [2, 3]
            api.node.commit([])
            assert (await client.block())["height"] == 4
        # Resuming after event 3 with Last-Event-ID.
        client = await SseClient.connect(api.port, "/events/blocks", {"Last-Event-ID": "3"})
        async with client.stream:
            assert [b["height"] for b in await client.until_comment("subscribed")] == [4]


async def test_events_fill_a_gap_from_the_store(api: Api) -> None:
    with trio.fail_after(10):
        client = await SseClient.connect(api.port, "/events/blocks?from=1")
        async with client.stream:
            await client.until_comment("subscribed")
            # Committed without being published (as if between two looks at the store).
            api.node.commit([], publish=False)
            api.node.commit([])
            assert [(await client.block())["height"] for _ in range(2)] == [1, 2]


async def test_events_heartbeat_and_bad_start(nursery) -> None:
    with trio.fail_after(10):
        api = await start(nursery, FakeNode(), heartbeat_s=0.05)
        client = await SseClient.connect(api.port, "/events/blocks")
        async with client.stream:
            await client.until_comment("subscribed")
            assert await client.message() == ": heartbeat"
        for bad in ("0", "x"):
            resp = await api.get(f"/events/blocks?from={bad}")
            check_error(resp, "GET", "/events/blocks", 400, "bad_request")
        resp = await api.get("/events/blocks", headers={"Last-Event-ID": "nope"})
        check_error(resp, "GET", "/events/blocks", 400, "bad_request")
        head = await http(api.port, "HEAD", "/events/blocks")   # answered, not streamed forever
        assert head.status == 200 and head.headers["content-type"].startswith("text/event-stream")


async def test_events_are_refused_beyond_the_subscriber_limit(api: Api) -> None:
    with trio.fail_after(10):
        api.node.subscribers.limit = 1
        client = await SseClient.connect(api.port, "/events/blocks")
        async with client.stream:
            await client.until_comment("subscribed")
            resp = await api.get("/events/blocks")
            check_error(resp, "GET", "/events/blocks", 503, "unavailable")


async def test_concurrent_clients_never_get_more_streams_than_the_cap(api: Api) -> None:
    # Places are reserved when the request is routed, not when the stream
    # starts: a burst of clients all passing a "room left?" check used to get
    # one stream more than the cap (300 clients: 257 streams of 256).
    limit, clients = 8, 40
    api.node.subscribers.limit = limit
    opened: list[SseClient] = []
    refused = 0

    async def one() -> None:
        nonlocal refused
        stream = await trio.open_tcp_stream("127.0.0.1", api.port)
        await stream.send_all(b"GET /events/blocks HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(4096)
        if head.startswith(b"HTTP/1.1 200"):
            opened.append(stream)
        else:
            assert head.startswith(b"HTTP/1.1 503"), head[:100]
            refused += 1
            await stream.aclose()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(one)
        assert (len(opened), refused) == (limit, clients - limit)
        assert len(api.node.subscribers) == limit
        for stream in opened:
            changed = api.node.subscribers_changed
            await stream.aclose()
            await changed.wait()
        assert len(api.node.subscribers) == 0


async def test_events_end_when_client_leaves_or_lags(api: Api) -> None:
    with trio.fail_after(10):
        client = await SseClient.connect(api.port, "/events/blocks")
        await client.until_comment("subscribed")
        assert len(api.node.subscribers) == 1
        changed = api.node.subscribers_changed
        await client.stream.aclose()
        await changed.wait()
        assert not api.node.subscribers

        # A reader that lags past the node's buffer is dropped and its stream ends.
        client = await SseClient.connect(api.port, "/events/blocks")
        async with client.stream:
            await client.until_comment("subscribed")
            for _ in range(SUBSCRIBER_BUFFER + 2):
                api.node.commit([])
            changed = api.node.subscribers_changed
            received = []
            with pytest.raises(EOFError):
                while True:
                    received.append((await client.block())["height"])
            assert received == list(range(1, len(received) + 1))
            await changed.wait()        # the stream ended and gave its place back
            assert not api.node.subscribers


# -- lifecycle ----------------------------------------------------------------------------

async def test_cancellation_stops_promptly_and_frees_the_port() -> None:
    with trio.fail_after(10):
        node = FakeNode()
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve_api, node, "127.0.0.1", 0))
            client = await SseClient.connect(port, "/events/blocks")
            await client.until_comment("subscribed")
            with trio.fail_after(3):
                nursery.cancel_scope.cancel()
        assert not node.subscribers
        await client.stream.aclose()
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", port)


async def test_listen_failure_is_a_clear_error(nursery) -> None:
    with trio.fail_after(10):
        api = await start(nursery, FakeNode())
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{api.port}"):
            await nursery.start(partial(serve_api, FakeNode(), "127.0.0.1", api.port))
