"""A stand-in HTTP server run on a thread, for tests that fake a node's API."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ServedOnThread:
    """Serves `handler` on `address` from a daemon thread while used as a context manager."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(address, handler)
        self._server.daemon_threads = True
        self.url = f"http://{address[0]}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
