"""The API against its own OpenAPI document, with schemathesis, on a real
single-validator node: every response conforms to the document, no request
the document allows is refused, none it forbids is accepted, no 5xx.

Left out of the run, and why:
- GET /events/blocks: a stream that never ends (each request would run into
  the client timeout); its parameters and answers are tested in test_api.py.
- the "created resource" checks (ensure_resource_availability,
  use_after_free): schemathesis takes POST /txs's 200 as the creation of
  every id in its results, but a batch answers one result per element and a
  refused element (malformed: id null; duplicate, bad signature...) names no
  stored tx, so GET /txs/{id} rightly answers 404.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


async def test_the_api_conforms_to_its_openapi_document(make_cluster):
    cluster = make_cluster(1)
    with trio.fail_after(150):
        cluster.start_all()
        await cluster.wait_ready()
        run = await trio.run_process(
            [str(SCHEMATHESIS), "run", cluster.url(0) + "/openapi.json", "--no-color",
             "--max-examples", "20", "--seed", "8", "--request-timeout", "10",
             "--exclude-path", "/events/blocks",
             "--exclude-checks", "ensure_resource_availability,use_after_free"],
            capture_stdout=True, capture_stderr=True, check=False)
        output = (run.stdout + run.stderr).decode(errors="replace")
        assert run.returncode == 0, output[-6000:]
        assert " passed" in output and "failed" not in output, output[-3000:]
