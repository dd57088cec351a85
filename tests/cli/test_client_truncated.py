"""NodeClient and an answer cut short (the node stopped while sending it)."""

from __future__ import annotations

import socket
import threading

import pytest

from cli.client import NodeClient
from cli.errors import NodeError


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def _serve_once(answer: bytes) -> tuple[str, threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def run() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                _read_request(conn)     # all of it: unread bytes would turn our close into a reset
                conn.sendall(answer)
                conn.shutdown(socket.SHUT_WR)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.getsockname()[1]}", thread


@pytest.mark.parametrize("body", [b"", b'{"results": ['])
def test_an_answer_shorter_than_its_content_length_is_an_error(body):
    url, thread = _serve_once(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 100\r\n\r\n" + body)
    with NodeClient(url, timeout=5) as client, pytest.raises(NodeError) as info:
        client.request_raw("POST", "/txs", b"{}", "application/json")
    assert "broke the connection in the middle of its answer to POST /txs" in str(info.value)
    thread.join(5)


def test_a_whole_answer_is_read():
    url, thread = _serve_once(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 2\r\n\r\n{}")
    with NodeClient(url, timeout=5) as client:
        assert client.request_raw("GET", "/status") == (200, b"{}")
    thread.join(5)
