"""What a stranger or a careless client can send: p2p garbage and connection floods
against the validators' listen ports, malformed API requests, and a schemathesis
run against /openapi.json.

Strangers connect from other loopback addresses (127.0.0.66, 127.0.0.67) than the
validators' proxies (127.0.0.1), as they would come from other hosts: a node may
tell them apart by source.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import trio

from ledger.admission import REASONS
from ledger.crypto import KeyPair
from node.transport.handshake import handshake
from node.transport.wire import HandshakeError

from .load import TxBook
from .testbed import Testbed, spawn

STRANGERS = ("127.0.0.66", "127.0.0.67")
CLOSE_WAIT_S = 8.0            # a node must drop a garbage connection within this (handshake: 5 s)


# -- p2p --------------------------------------------------------------------------------

async def _connect(port: int, source: str) -> trio.SocketStream | None:
    try:
        with trio.fail_after(3):
            return await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    except (OSError, trio.TooSlowError):
        return None


async def _closed_by_peer(stream: trio.SocketStream) -> bool:
    """Whether the node closed the connection within CLOSE_WAIT_S (reading what it sends)."""
    with trio.move_on_after(CLOSE_WAIT_S):
        try:
            while await stream.receive_some(4096):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        return True
    return False


async def p2p_garbage(port: int, rng: random.Random, chain_id: str, genesis_hash: bytes) -> Counter:
    """One hostile connection of each kind; counts how each ended."""
    outcome: Counter = Counter()
    kinds = {
        "random_bytes": lambda: rng.randbytes(rng.randrange(1, 4096)),
        "oversized_prefix": lambda: b"\xff\xff\xff\xff" + rng.randbytes(64),
        "huge_frame_prefix": lambda: (64 * 1024 * 1024).to_bytes(4, "big") + rng.randbytes(1024),
        "zero_length_frame": lambda: b"\x00\x00\x00\x00" * 4,
        "truncated_frame": lambda: (900).to_bytes(4, "big") + rng.randbytes(10),
    }
    for kind, payload in kinds.items():
        stream = await _connect(port, rng.choice(STRANGERS))
        if stream is None:
            outcome["connect_failed"] += 1
            continue
        try:
            try:
                await stream.send_all(payload())
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            outcome[f"{kind}:{'closed' if await _closed_by_peer(stream) else 'left_open'}"] += 1
        finally:
            await trio.aclose_forcefully(stream)
    # A well-formed handshake from keys and chains the node does not know.
    for kind, chain, ghash in (("unknown_key", chain_id, genesis_hash),
                               ("wrong_chain", chain_id + "-x", genesis_hash),
                               ("wrong_genesis", chain_id, os.urandom(32))):
        stream = await _connect(port, rng.choice(STRANGERS))
        if stream is None:
            outcome["connect_failed"] += 1
            continue
        try:
            await handshake(stream, initiator=True, key=KeyPair.generate(), chain_id=chain,
                            genesis_hash=ghash, is_allowed=lambda key: True, timeout_s=CLOSE_WAIT_S)
            outcome[f"{kind}:accepted"] += 1
        except HandshakeError:
            outcome[f"{kind}:refused"] += 1
        finally:
            await trio.aclose_forcefully(stream)
    return outcome


async def connection_flood(ports: list[int], per_port: int, duration_s: float, stats: Counter) -> None:
    """Hold `per_port` idle connections to each port for `duration_s`, reopening
    each one the node closes (at most every 0.1 s per slot) as an attacker would."""
    async def slot(port: int, k: int) -> None:
        source = STRANGERS[k % len(STRANGERS)]
        while True:
            stream = await _connect(port, source)
            if stream is None:
                stats["connect_failed"] += 1
                await trio.sleep(0.1)
                continue
            stats["opened"] += 1
            try:
                await _closed_by_peer(stream)
            finally:
                await trio.aclose_forcefully(stream)
            await trio.sleep(0.1)

    with trio.move_on_after(duration_s):
        async with trio.open_nursery() as nursery:
            for port in ports:
                for k in range(per_port):
                    nursery.start_soon(slot, port, k)


# -- API ----------------------------------------------------------------------------------

def _raw(url: str, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 20.0) -> tuple[int | None, Any]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read(1024 * 1024)
    except (OSError, http.client.HTTPException):
        return None, None
    finally:
        conn.close()
    try:
        return resp.status, json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return resp.status, None


def _abuse_cases(rng: random.Random) -> list[tuple[str, str, bytes | None, dict[str, str], str]]:
    """(method, path, body, headers, expect): expect "refuse" (a 4xx JSON error with a
    code) or "per_item" (200 with a reason for each refused tx)."""
    js = {"Content-Type": "application/json"}
    mp = {"Content-Type": "application/msgpack"}
    long_key = "k" * 5000
    return [
        ("POST", "/txs", b"{not json", js, "refuse"),
        ("POST", "/txs", b"[1, 2, 3]", js, "refuse"),
        ("POST", "/txs", b'{"txs": "00"}', js, "refuse"),
        ("POST", "/txs", b'{"tx": "00", "txs": []}', js, "refuse"),
        ("POST", "/txs", b'{"txs": [1, null, {}, "zz", "00", "' + b"ab" * 70000 + b'"]}', js, "per_item"),
        ("POST", "/txs", json.dumps({"txs": ["00"] * 10_001}).encode(), js, "refuse"),
        ("POST", "/txs", b"\x92\x01\x02", mp, "per_item"),
        ("POST", "/txs", rng.randbytes(2048), mp, "refuse"),
        ("POST", "/txs", b"\x81\xa1a\x01", mp, "refuse"),
        ("POST", "/txs", b"x" * (9 * 1024 * 1024), js, "refuse"),
        ("POST", "/txs", b'{"txs": []}', {"Content-Type": "text/plain"}, "refuse"),
        ("POST", "/txs?wait=maybe", b'{"txs": []}', js, "refuse"),
        ("POST", "/txs?wait=true&timeout=nan", b'{"txs": []}', js, "refuse"),
        ("POST", "/txs?wait=true&timeout=1e9", b'{"txs": []}', js, "refuse"),
        ("GET", "/txs/xyz", None, {}, "refuse"),
        ("GET", "/txs/" + "a" * 63, None, {}, "refuse"),
        ("GET", "/txs/" + "0" * 64, None, {}, "refuse"),
        ("GET", "/blocks/0", None, {}, "refuse"),
        ("GET", "/blocks/-1", None, {}, "refuse"),
        ("GET", "/blocks/abc", None, {}, "refuse"),
        ("GET", "/blocks/" + "9" * 30, None, {}, "refuse"),
        ("GET", "/blocks/99999999", None, {}, "refuse"),
        ("GET", f"/state/kv/{long_key}", None, {}, "refuse"),
        ("GET", "/state/kv/no-such-key", None, {}, "refuse"),
        ("GET", "/events/blocks?from=abc", None, {}, "refuse"),
        ("GET", "/events/blocks?from=0", None, {}, "refuse"),
        ("GET", "/no/such/endpoint", None, {}, "refuse"),
        ("DELETE", "/status", None, {}, "refuse"),
        ("PUT", "/txs", b"{}", js, "refuse"),
    ]


def api_abuse(urls: list[str], rng: random.Random) -> list[tuple[str, str, int | None, Any]]:
    """Send every abuse case to a random one of `urls` (blocking; run it in a thread);
    (request, expectation, status or None if unanswered, body) for each."""
    answers = []
    for method, path, body, headers, expect in _abuse_cases(rng):
        status, doc = _raw(rng.choice(urls), method, path, body, headers)
        answers.append((f"{method} {path[:60]}", expect, status, doc))
    return answers


def record_abuse(book: TxBook, answers: list[tuple[str, str, int | None, Any]]) -> int:
    """Judge the answers to the abuse cases into the book; how many were answered."""
    answered = 0
    for request, expect, status, doc in answers:
        if status is None:
            continue
        answered += 1
        if 200 <= status < 300:
            results = doc.get("results") if isinstance(doc, dict) else None
            if expect != "per_item" or not isinstance(results, list):
                book.unclear_answer("bad input accepted", request=request, status=status)
                continue
            for result in results:
                reason = result.get("reason") if isinstance(result, dict) else None
                book.tx_refusals[str(reason)] += 1
                if not (isinstance(result, dict) and result.get("accepted") is False):
                    book.unclear_answer("bad tx accepted", request=request)
                elif reason not in REASONS:
                    book.unclear_answer("tx refused without a known reason", request=request,
                                        reason=reason)
        else:
            book.api_refusal(status, doc, request)
    return answered


# -- schemathesis ------------------------------------------------------------------------

SCHEMATHESIS_CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
                       "response_schema_conformance")


async def schemathesis_run(bed: Testbed, node: int, seed: int, max_examples: int, max_time_s: float,
                           workdir: Path) -> dict:
    """Run schemathesis against one node's /openapi.json; its failures by check.

    The SSE stream (endless by design) is left out.  Checks: no server error, and
    every answer conforms to the schema (status, content type, body)."""
    exe = Path(sys.executable).with_name("schemathesis")
    if not exe.exists() and shutil.which("schemathesis") is None:
        return {"ran": False, "error": "schemathesis is not installed (pip install -e '.[test]')"}
    exe_path = str(exe) if exe.exists() else shutil.which("schemathesis")
    report = workdir / "schemathesis.json"
    argv = [exe_path, "run", f"{bed.url(node)}/openapi.json",
            "--checks", ",".join(SCHEMATHESIS_CHECKS), "--max-examples", str(max_examples),
            "--seed", str(seed), "--workers", "1", "--max-time", str(int(max_time_s)),
            "--request-timeout", "20", "--exclude-path", "/events/blocks",
            "--phases", "examples,coverage,fuzzing", "--no-color",
            "--report", "json", "--report-json-path", str(report)]
    proc = spawn(argv, cwd=workdir, log=workdir / "schemathesis.log",
                 env=dict(os.environ, SCHEMATHESIS_TELEMETRY="false"))
    try:
        with trio.move_on_after(max_time_s + 60):
            while proc.poll() is None:
                await trio.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return _schemathesis_outcome(proc.returncode, report, workdir / "schemathesis.log")


def _schemathesis_outcome(code: int | None, report: Path, log: Path) -> dict:
    out: dict[str, Any] = {"ran": True, "exit_code": code}
    try:
        doc = json.loads(report.read_text())
    except (OSError, ValueError):
        doc = None
    if isinstance(doc, dict):
        out["report"] = _summarise_report(doc)
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    out["log_tail"] = [line for line in lines if line.strip()][-12:]
    return out


def _summarise_report(doc: dict) -> dict:
    """The parts of schemathesis's JSON report that matter here."""
    failures = doc.get("failures") if isinstance(doc.get("failures"), list) else []
    warnings = doc.get("warnings") if isinstance(doc.get("warnings"), dict) else {}
    return {
        "test_cases": doc.get("test_cases"),
        "failures": [json.dumps(f)[:400] for f in failures[:3]],
        "errors": len(doc.get("errors") or []),
        "schema_mismatch_warnings": warnings.get("validation_mismatch"),
        "running_s": round(doc["running_time"], 1) if isinstance(doc.get("running_time"), (int, float)) else None,
    }
