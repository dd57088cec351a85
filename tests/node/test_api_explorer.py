"""The explorer's routes and the browsing routes against a fake node, over
real hypercorn: the shell and its files (every module app.js imports is
shipped and served), content negotiation on the domain URLs, block lists,
a block's transactions, accounts, organisations and search.  Every JSON
answer is checked against /openapi.json.  The pages themselves run in a
real browser in tests/explorer/."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
import trio

from ledger.receipt import ERR_CONFLICT, Receipt
from node.api.explorer import PAGE_ROUTES, prefers_html
from tests.factories import make_tx
from tests.ledger.gov_world import GovWorld
from tests.node.fake_node import FakeNode
from tests.node.test_api import Api, check, check_error, start
from tests.node.test_api_contracts import business_node

REPO = Path(__file__).resolve().parents[2]
EXPLORER = REPO / "node" / "explorer"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
IMPORT = re.compile(r'^import .* from "(\./[^"]+|\.\./[^"]+)";$', re.M)


@pytest.fixture
async def api(nursery) -> Api:
    return await start(nursery, business_node())


def tx_for(node: FakeNode, account: str, nonce: int, **kw):
    return make_tx(node.account_keys[account], node.genesis, nonce=nonce, **kw)


# -- the shell and its files -------------------------------------------------------------

async def test_the_shell_is_served_at_every_explorer_path(api: Api) -> None:
    with trio.fail_after(10):
        shell = (EXPLORER / "index.html").read_bytes()
        for path in ("/", "/explorer", "/explorer/", "/explorer/blocks/7", "/explorer/no/such/page"):
            resp = await api.get(path)
            assert resp.status == 200 and resp.body == shell, path
            assert resp.headers["content-type"] == "text/html; charset=utf-8"
            csp = resp.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
            assert resp.headers["x-content-type-options"] == "nosniff"
        assert b'<script type="module" src="/explorer/assets/app.js">' in shell


def _modules(name: str, seen: set[str]) -> None:
    """app.js and every module it imports, transitively (paths under node/explorer)."""
    if name in seen:
        return
    seen.add(name)
    folder = Path(name).parent
    for target in IMPORT.findall((EXPLORER / name).read_text()):
        _modules(str((folder / target).as_posix()).replace("pages/../", ""), seen)


async def test_every_module_and_file_the_shell_needs_is_served(api: Api) -> None:
    modules: set[str] = set()
    _modules("app.js", modules)
    assert {"app.js", "api.js", "dom.js", "format.js", "pages/overview.js", "pages/lot.js"} <= modules
    shell = (EXPLORER / "index.html").read_text()
    files = modules | set(re.findall(r'"/explorer/assets/([^"]+)"', shell))
    with trio.fail_after(10):
        for name in sorted(files):
            resp = await api.get(f"/explorer/assets/{name}")
            assert resp.status == 200, name
            assert resp.body == (EXPLORER / name).read_bytes()
            kind = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}[name.rpartition(".")[2]]
            assert resp.headers["content-type"].startswith(kind), name
            again = await api.get(f"/explorer/assets/{name}", headers={"If-None-Match": resp.headers["etag"]})
            assert again.status == 304 and again.body == b""


async def test_only_the_explorers_own_files_are_served(api: Api) -> None:
    with trio.fail_after(10):
        for name in ("nope.js", "index.html", "../server.py", "..%2Fserver.py", "pages", "pages/"):
            resp = await api.get(f"/explorer/assets/{name}")
            check_error(resp, "GET", "/explorer/assets/{name}", 404, "not_found")


def test_the_package_data_carries_every_explorer_file() -> None:
    """An installed wheel has the explorer: each file matches a package-data glob."""
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["node"]
    files = [p.relative_to(REPO / "node").as_posix() for p in EXPLORER.rglob("*") if p.is_file()]
    assert "explorer/index.html" in files
    for name in files:
        assert any(fnmatch.fnmatch(name, g) for g in globs), f"{name} is not package data"


# -- content negotiation ----------------------------------------------------------------

@pytest.mark.parametrize("accept, html", [
    (BROWSER, True),                                            # Chromium, Firefox
    ("text/html", True),
    ("application/xhtml+xml", True),
    ("text/html;q=0.9, application/json", False),
    ("application/json", False),
    ("application/json, text/html;q=0.5", False),
    ("text/html, application/json", False),                     # a tie keeps the API's JSON
    ("*/*", False),                                             # curl, httpx, requests
    ("", False), (None, False),
    ("text/*", False),
    ("text/html;q=0", False),
    ("text/html;q=abc", False),
    ("TEXT/HTML; Q=1", True),
])
def test_prefers_html(accept: str | None, html: bool) -> None:
    assert prefers_html(accept) is html


async def test_domain_urls_open_the_page_in_a_browser_and_answer_json_to_clients(api: Api, nursery) -> None:
    code = api.node.check_code
    business = {
        "/fiscal/verify": f"/fiscal/verify?code=53010126&number=0000001234&check_code={code}&amount_cents=42650",
        "/fiscal/receipts/{code}/{number}": "/fiscal/receipts/53010126/0000001234",
        "/trace/{lot}": "/trace/MAO-1",
        "/01/{gtin}/10/{lot}": "/01/06901234567892/10/LEAF-1",
        "/receivables/{id}": "/receivables/R1-B",
    }
    governance = {"/gov/proposals": "/gov/proposals?status=open", "/gov/proposals/{id}": "/gov/proposals/1"}
    assert set(business) | set(governance) == PAGE_ROUTES
    world = GovWorld()
    assert world.propose("finance-admin", "add_org", "bank", {"display_name": "Dianchi Commercial Bank"}).ok
    shell = (EXPLORER / "index.html").read_bytes()
    with trio.fail_after(10):
        gov_api = await start(nursery, FakeNode(world=world))
        for client, urls in ((api, business), (gov_api, governance)):
            for template, url in urls.items():
                page = await client.get(url, headers={"Accept": BROWSER})
                assert page.status == 200 and page.body == shell, url
                assert page.headers["vary"] == "Accept"
                for accept in ({"Accept": "application/json"}, {"Accept": "*/*"}, {}):
                    resp = await client.get(url, headers=accept)
                    check(resp, "GET", template, 200)
                    assert resp.headers["vary"] == "Accept"
        # What is missing is the page's business: a browser gets the shell, which says so.
        missing = await api.get("/trace/NO-SUCH-LOT", headers={"Accept": BROWSER})
        assert missing.status == 200 and missing.body == shell
        resp = await api.get("/trace/NO-SUCH-LOT")
        check_error(resp, "GET", "/trace/{lot}", 404, "not_found")
        assert resp.headers["vary"] == "Accept"
        # Routes that are not page routes stay JSON for everyone.
        check(await api.get("/trace/products/puer-maocha/lots", headers={"Accept": BROWSER}),
              "GET", "/trace/products/{product}/lots", 200)
        check(await api.get("/status", headers={"Accept": BROWSER}), "GET", "/status", 200)


# -- block lists ----------------------------------------------------------------------------

async def test_blocks_are_listed_newest_first_in_pages(api: Api) -> None:
    node = api.node
    with trio.fail_after(10):
        empty = check(await api.get("/blocks"), "GET", "/blocks", 200)
        assert empty == {"height": 0, "blocks": [], "next": None}
        for i in range(5):
            node.commit([tx_for(node, "finance", n) for n in range(i)])
        page = check(await api.get("/blocks?limit=2"), "GET", "/blocks", 200)
        assert [b["height"] for b in page["blocks"]] == [5, 4] and page["next"] == 4 and page["height"] == 5
        top = page["blocks"][0]
        block = node.get_block(5).block
        assert top == {"height": 5, "hash": block.hash.hex(), "txs": 4, "proposer": "node0",
                       "timestamp_ms": block.header.timestamp_ms}
        page = check(await api.get("/blocks?limit=2&before=4"), "GET", "/blocks", 200)
        assert [b["height"] for b in page["blocks"]] == [3, 2] and page["next"] == 2
        page = check(await api.get("/blocks?before=2"), "GET", "/blocks", 200)
        assert [b["height"] for b in page["blocks"]] == [1] and page["next"] is None
        page = check(await api.get("/blocks?before=1000"), "GET", "/blocks", 200)
        assert [b["height"] for b in page["blocks"]] == [5, 4, 3, 2, 1] and page["next"] is None
        for query, message in (("limit=0", "limit: expected an integer in 1..100, got '0'"),
                               ("limit=101", "limit: expected an integer in 1..100, got '101'"),
                               ("before=0", "before: expected an integer in 1.."),
                               ("before=x", "before: expected an integer in 1..")):
            error = check_error(await api.get(f"/blocks?{query}"), "GET", "/blocks", 400, "bad_request")
            assert error.startswith(message), error


async def test_a_blocks_txs_name_their_senders_and_outcomes(api: Api) -> None:
    node = api.node
    txs = [tx_for(node, "finance", 1), tx_for(node, "tax", 2), tx_for(node, "agriculture", 3)]
    receipts = [Receipt(0), Receipt(ERR_CONFLICT, "key owned by tax"), Receipt(0)]
    template = "/blocks/{height}/txs"
    with trio.fail_after(10):
        node.commit(txs, receipts)
        page = check(await api.get("/blocks/1/txs"), "GET", template, 200)
        assert page["count"] == 3 and page["next"] is None and page["height"] == 1
        assert [t["index"] for t in page["txs"]] == [0, 1, 2]
        assert [t["id"] for t in page["txs"]] == [tx.id.hex() for tx in txs]
        assert [t["status"] for t in page["txs"]] == ["ok", "conflict", "ok"]
        assert page["txs"][1] == {
            "index": 1, "id": txs[1].id.hex(), "sender": txs[1].sender.hex(), "account": "tax",
            "org": "tax", "org_name": "Tax", "contract": "kv", "method": "put", "status": "conflict"}
        first = check(await api.get("/blocks/1/txs?limit=2"), "GET", template, 200)
        assert [t["index"] for t in first["txs"]] == [0, 1] and first["next"] == 1
        rest = check(await api.get("/blocks/1/txs?limit=2&after=1"), "GET", template, 200)
        assert [t["index"] for t in rest["txs"]] == [2] and rest["next"] is None
        beyond = check(await api.get("/blocks/1/txs?after=7"), "GET", template, 200)
        assert beyond["txs"] == [] and beyond["next"] is None
        # A repeat of a committed tx (only a faulty primary proposes one) ran as a duplicate,
        # and a sender outside the directory is named by its key alone.
        stranger = make_tx(node.validator_keys["node1"], node.genesis, nonce=9)
        node.commit([txs[0], stranger])
        again = check(await api.get("/blocks/2/txs"), "GET", template, 200)
        assert [t["status"] for t in again["txs"]] == ["duplicate", "ok"]
        assert again["txs"][1]["account"] is None and again["txs"][1]["org_name"] is None
        check_error(await api.get("/blocks/3/txs"), "GET", template, 404, "not_found")
        check_error(await api.get("/blocks/0/txs"), "GET", template, 400, "bad_request")
        check_error(await api.get("/blocks/1/txs?limit=101"), "GET", template, 400, "bad_request")


# -- the directory ------------------------------------------------------------------------------

async def test_accounts_and_organisations(api: Api) -> None:
    node = api.node
    key = node.account_keys["finance"].public_key.hex()
    with trio.fail_after(10):
        account = check(await api.get(f"/accounts/{key}"), "GET", "/accounts/{public_key}", 200)
        assert account == {"public_key": key, "name": "finance", "org": "finance", "org_name": "Finance",
                           "roles": ["writer"]}
        for text in ("ab" * 32, "not-a-key", key[:-2]):
            check_error(await api.get(f"/accounts/{text}"), "GET", "/accounts/{public_key}", 404, "not_found")
        orgs = check(await api.get("/organisations"), "GET", "/organisations", 200)["organisations"]
        assert {"name": "tax", "display_name": "Tax"} in orgs
        assert [o["name"] for o in orgs] == [o.name for o in node.genesis.organisations]


# -- search -----------------------------------------------------------------------------------------

async def test_search_names_what_the_text_names(api: Api) -> None:
    node = api.node
    committed, pending = tx_for(node, "finance", 1), tx_for(node, "tax", 2)

    async def search(q: str) -> list[tuple[str, str]]:
        from urllib.parse import quote
        found = check(await api.get(f"/search?q={quote(q)}"), "GET", "/search", 200)
        assert found["query"] == q.strip()
        return [(r["kind"], r["id"]) for r in found["results"]]

    with trio.fail_after(10):
        node.commit([committed])
        node.admit([pending])
        assert await search("1") == [("block", "1")]
        assert await search("2") == []                           # beyond the tip, no lot or receivable "2"
        assert await search(committed.id.hex()) == [("tx", committed.id.hex())]
        assert await search(committed.id.hex().upper()) == [("tx", committed.id.hex())]
        assert await search(pending.id.hex()) == [("tx", pending.id.hex())]
        key = node.account_keys["finance"].public_key.hex()
        assert await search(key) == [("account", key)]
        for text in ("53010126 0000001234", "53010126-0000001234", " 530101260000001234 ", "53010126/0000001234"):
            assert await search(text) == [("receipt", "53010126-0000001234")], text
        assert await search("53010126 0000009999") == []
        assert await search("MAO-1") == [("lot", "MAO-1")]
        assert await search("https://example.org/01/06901234567892/10/LEAF-1?s=1") == [("lot", "LEAF-1")]
        assert await search("/01/6901234567892/10/LEAF-1") == [("lot", "LEAF-1")]
        assert await search("/01/06901234567893/10/LEAF-1") == []        # another GTIN
        assert await search("R1-B") == [("receivable", "R1-B")]
        assert await search("<script>alert(1)</script>") == []
        for q in ("", "%20%20", "x" * 201):
            resp = await api.get(f"/search?q={q}")
            check_error(resp, "GET", "/search", 400, "bad_request")
        check_error(await api.get("/search"), "GET", "/search", 400, "bad_request")
