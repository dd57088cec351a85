"""A stand-in for a node's HTTP API (stdlib http.server in a thread), enough to drive
the CLI's client commands and check what they send."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from ledger.tx import Transaction

CHAIN_ID = "fake-chain"


class FakeNode:
    def __init__(self):
        self.height = 7
        self.received: list[Transaction] = []
        self.queries: list[str] = []
        self.refuse_reason: str | None = None
        self.receipt = {"status": "ok", "code": 0, "message": "", "result": None}
        self.commit = True
        self.sync: dict | None = None       # block sync progress /status reports
        self.docs: dict[str, tuple[int, object]] = {}    # GET path (no query) -> (status, JSON)
        self.events = [{"height": h, "hash": f"{h:064x}", "txs": h % 3, "proposer": "node0",
                        "timestamp_ms": 1_700_000_000_000 + h} for h in (8, 9, 10)]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> "FakeNode":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def status(self) -> dict:
        return {"chain_id": CHAIN_ID, "node": "node0", "height": self.height,
                "last_block_hash": "ab" * 32, "view": 0, "primary": "node0",
                "peers": ["node1", "node2", "node3"], "mempool": 0, "syncing": self.sync is not None,
                "sync": self.sync}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code: int, doc, content_type="application/json"):
                body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                parts = urlsplit(self.path)
                fake.queries.append(self.path)
                path = parts.path
                if unquote(path) in fake.docs:
                    return self._send(*fake.docs[unquote(path)])
                if path == "/status":
                    return self._send(200, fake.status())
                if path == "/validators":
                    return self._send(200, {"validators": [
                        {"name": f"node{i}", "org": "finance", "public_key": "00" * 32,
                         "p2p": f"127.0.0.1:{i}", "api": f"127.0.0.1:{i}", "connected": True,
                         "primary": i == 0} for i in range(4)]})
                if path.startswith("/blocks/"):
                    ref = path.removeprefix("/blocks/")
                    if ref not in ("latest", "7"):
                        return self._send(404, {"error": f"block {ref} not found", "code": "not_found"})
                    return self._send(200, {
                        "height": 7, "hash": "cd" * 32, "txs": ["ef" * 32],
                        "header": {"chain_id": CHAIN_ID, "height": 7, "view": 0, "prev_hash": "00" * 32,
                                   "tx_root": "11" * 32, "state_root": "22" * 32, "proposer": "node0",
                                   "timestamp_ms": 1_700_000_000_000},
                        "certificate": {"view": 0, "height": 7, "digest": "33" * 32, "votes": [
                            {"validator": 0, "name": "node0", "signature": "44" * 64}]}})
                if path.startswith("/state/"):
                    contract, _, key = path.removeprefix("/state/").partition("/")
                    return self._send(200, {"contract": unquote(contract), "key": unquote(key),
                                            "value": {"n": 1}, "height": 7})
                if path.startswith("/txs/"):
                    return self._send(404, {"error": f"transaction {path[5:]} not found",
                                            "code": "not_found"})
                if path == "/events/blocks":
                    lines = [": heartbeat\n\n"] + [f"event: block\ndata: {json.dumps(e)}\n\n"
                                                   for e in fake.events]
                    body = "".join(lines).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if path == "/broken":
                    return self._send(500, b"<html>oops</html>", "text/html")
                return self._send(404, {"error": "no such route", "code": "not_found"})

            def do_POST(self):
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if parts.path != "/txs":
                    return self._send(404, {"error": "no such route", "code": "not_found"})
                (tx_hex,) = json.loads(body)["txs"]      # the SDK sends batches (of one)
                tx = Transaction.decode(bytes.fromhex(tx_hex))
                fake.received.append(tx)
                result = {"id": tx.id.hex(), "accepted": fake.refuse_reason is None,
                          "reason": fake.refuse_reason}
                if query.get("wait") == ["true"] and result["accepted"]:
                    result["committed"] = fake.commit
                    result["status"] = "committed" if fake.commit else "pending"
                    if fake.commit:
                        result.update(height=fake.height + 1, index=0, receipt=fake.receipt)
                return self._send(200, {"results": [result]})

        return Handler
