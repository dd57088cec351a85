"""What the doctor tests stand on: node APIs played by small HTTP servers on
the addresses genesis gives, and certified blocks for a real store."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from ledger.merkle import EMPTY_ROOT as MERKLE_EMPTY_ROOT
from ledger.state_tree import EMPTY_ROOT
from ledger.block import GENESIS_HASH, Block, BlockHeader, tx_root
from ledger.certificate import PHASE_COMMIT, CommitCertificate, Vote, vote_bytes
from ledger.crypto import KeyPair
from ledger.genesis import Genesis

Answer = Callable[[], Any]


class FakeApi:
    """A node API on host:port answering GET paths from `routes` (a value, or a
    callable returning one; bytes are sent as text, anything else as JSON)."""

    def __init__(self, address: tuple[str, int], routes: dict[str, Any]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        self._server = ThreadingHTTPServer(address, self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeApi":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.hits.append(self.path)
                answer = fake.routes.get(self.path)
                if answer is None:
                    code, body, kind = 404, b'{"error": "not found", "code": "not_found"}', "application/json"
                else:
                    value = answer() if callable(answer) else answer
                    code = 200
                    if isinstance(value, bytes):
                        body, kind = value, "text/plain; version=0.0.4"
                    else:
                        body, kind = json.dumps(value).encode(), "application/json"
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def status_doc(genesis: Genesis, name: str, **fields: Any) -> dict[str, Any]:
    """A /status answer as a node of `genesis` gives it (fields override)."""
    others = [v.name for v in genesis.validators if v.name != name]
    doc = {"chain_id": genesis.chain_id, "node": name, "height": 0, "last_block_hash": "00" * 32,
           "view": 0, "primary": genesis.validators[0].name, "peers": others, "mempool": 0,
           "syncing": False, "genesis_hash": genesis.hash.hex(), "time": time.time(), "sync": None}
    doc.update(fields)
    return doc


def certified_blocks(genesis: Genesis, keys: list[KeyPair], count: int,
                     signers: int | None = None) -> list[tuple[Block, CommitCertificate]]:
    """`count` empty blocks over an empty state (the state tree's EMPTY_ROOT),
    each with a commit certificate signed by the first `signers` (default: a
    quorum) of `keys`, the validators' keys in genesis order."""
    signers = genesis.quorum if signers is None else signers
    out, prev = [], GENESIS_HASH
    for height in range(1, count + 1):
        header = BlockHeader(genesis.chain_id, height, 0, prev, tx_root(()),
                             EMPTY_ROOT, MERKLE_EMPTY_ROOT, genesis.validators[0].name,
                             1_700_000_000_000 + height)
        digest = header.proposal_digest()
        message = vote_bytes(PHASE_COMMIT, genesis.chain_id, 0, height, digest)
        votes = tuple(Vote(i, keys[i].sign(message)) for i in range(signers))
        out.append((Block(header, ()), CommitCertificate(0, height, digest, votes)))
        prev = header.hash
    return out
