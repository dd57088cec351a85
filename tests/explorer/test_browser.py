"""The explorer in a real browser: headless Chromium (Debian's `chromium`,
driven by Playwright with executable_path; no browser is ever downloaded)
against one live 4-node testnet that has lived through `ynchain demo`'s day.

Checked: every page loads without console errors and without scrolling
sideways on a phone; a tx submitted during the test shows on the overview
within seconds, without a reload; the receipt check (查验) answers a valid
and a tampered check code; the provenance page of the demo's tea cakes,
opened at their GS1 Digital Link, shows the lots they are made from; search
finds a lot, a tx and a receipt; text from the chain (an organisation's
display name, tx args) stays text, however hostile.

Screenshots of every page at desktop and phone width are written to
$YNCHAIN_EXPLORER_ARTIFACTS when set, else to the test's tmp dir; the run's
summary ends with a line naming the directory.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from nacl.signing import SigningKey

from cli.ports import free_port_base
from ledger.crypto import load_key
from ledger.tx import Transaction
from tests.explorer.conftest import SCREENSHOTS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop("YNCHAIN_NODE", None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
INSTALL_HINT = ("headless Chromium is not installed: as root, `apt-get install chromium` (what `make tools` "
                "tries), or set YNCHAIN_CHROMIUM to a Chromium binary")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Markup that would run or create elements if any page parsed chain text as HTML.
HOSTILE = "<img src=x id=pwned onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>\"'&amp;"
HOSTILE_ORG = "cuihu-tea-shop"
OBSERVER = "tax-observer"
LIVE_WITHIN_MS = 5000


def chromium() -> str | None:
    for candidate in (os.environ.get("YNCHAIN_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def ynchain(*args: object, timeout: float = 120) -> str:
    proc = subprocess.run([sys.executable, "-m", "cli.main", *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stdout[-2000:], proc.stderr)
    return proc.stdout


def kill_leftovers(root: Path) -> None:
    for pid_file in root.glob("node*/node.pid"):
        try:
            os.killpg(int(pid_file.read_text()), 9)
        except (ValueError, ProcessLookupError, PermissionError):
            pass


@dataclass
class Chain:
    root: Path
    urls: list[str]
    chain_id: str
    nonce: int = field(default_factory=lambda: secrets.randbits(48))

    def get(self, path: str, node: int = 0):
        with urllib.request.urlopen(self.urls[node] + path, timeout=30) as resp:
            return json.loads(resp.read())

    def submit(self, account: str, contract: str, method: str, args, node: int = 0) -> dict:
        """Sign and submit a tx, waiting for its commit; the committed result."""
        self.nonce += 1
        height = self.get("/status", node)["height"]
        tx = Transaction.create(load_key(self.root / "accounts" / f"{account}.key"), self.chain_id,
                                self.nonce, height + 100, contract, method, args)
        body = json.dumps({"tx": tx.encode().hex()}).encode()
        request = urllib.request.Request(self.urls[node] + "/txs?wait=true&timeout=20", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=40) as resp:
            result = json.loads(resp.read())["results"][0]
        assert result["accepted"] and result["status"] == "committed", result
        return result


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    if chromium() is None:
        pytest.skip(INSTALL_HINT)
    root = tmp_path_factory.mktemp("explorer") / "tn"
    base = free_port_base(10)
    ynchain("testnet", "init", "--dir", root, "--base-port", base)
    # An organisation whose display name is markup: every page that names it must show it as text.
    genesis = json.loads((root / "genesis.json").read_text())
    for org in genesis["organisations"]:
        if org["name"] == HOSTILE_ORG:
            org["display_name"] = HOSTILE
    # An observer node in the configuration (the testnet runs validators only).
    genesis["nodes"].append({"name": OBSERVER, "org": "tax", "role": "observer",
                             "public_key": SigningKey.generate().verify_key.encode().hex(),
                             "p2p": f"127.0.0.1:{base + 8}", "api": f"127.0.0.1:{base + 9}"})
    (root / "genesis.json").write_text(json.dumps(genesis, indent=2))
    try:
        ynchain("demo", "--dir", root, timeout=180)
        urls = [f"http://{v['api']}" for v in genesis["nodes"] if v["role"] == "validator"]
        yield Chain(root, urls, genesis["chain_id"])
    finally:
        subprocess.run([sys.executable, "-m", "cli.main", "testnet", "down", "--dir", str(root), "--grace", "5"],
                       cwd=ROOT, env=ENV, capture_output=True, timeout=60)
        kill_leftovers(root)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    chosen = os.environ.get("YNCHAIN_EXPLORER_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("explorer-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    SCREENSHOTS.append(str(path))
    return path


class Browser:
    """One Chromium, one page per viewport; console errors are collected per visit."""

    def __init__(self, playwright, base: str, artifacts: Path) -> None:
        self.browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        self.base = base
        self.artifacts = artifacts
        self.errors: list[str] = []
        self.pages = {}
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page = self.browser.new_context(viewport=viewport).new_page()
            page.set_default_timeout(15_000)
            page.on("console", lambda msg, name=name: msg.type == "error" and self.errors.append(
                f"[{name}] console: {msg.text}"))
            page.on("pageerror", lambda exc, name=name: self.errors.append(f"[{name}] page error: {exc}"))
            self.pages[name] = page

    def visit(self, path: str, ready: str, shot: str, *, expect_errors: bool = False):
        """Open `path` at both widths, wait for `ready`, screenshot; the desktop page."""
        for name, page in self.pages.items():
            self.errors.clear()
            page.goto(self.base + path)
            page.wait_for_selector(ready)
            page.screenshot(path=self.artifacts / f"{shot}-{name}.png", full_page=True)
            if not expect_errors:
                assert self.errors == [], (path, self.errors)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {name} width"
            assert page.evaluate("window.__pwned") is None and page.locator("#pwned").count() == 0, path
        return self.pages["desktop"]

    def close(self) -> None:
        self.browser.close()


@pytest.fixture(scope="module")
def browser(chain, artifacts):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        driver = Browser(playwright, chain.urls[0], artifacts)
        try:
            yield driver
        finally:
            driver.close()


def text(page, selector: str) -> str:
    return page.locator(selector).inner_text()


# -- the overview, live ----------------------------------------------------------------------

def test_overview_shows_a_new_tx_within_seconds_without_reload(chain, browser):
    page = browser.visit("/", "#recent-blocks tbody tr[data-height]", "overview")
    assert text(page, "#chain-id") == chain.chain_id
    nodes = page.locator("table.validators tbody tr").all_inner_texts()
    assert len(nodes) == 5 and sum("connected" in row for row in nodes) == 4, nodes
    assert OBSERVER in nodes[4] and "Tax Bureau" in nodes[4] and "observer" in nodes[4], nodes
    page.wait_for_selector("#live-state >> text=live")
    page.evaluate("window.__sameDocument = true")
    browser.errors.clear()
    committed = chain.submit("finance", "kv", "put", {"key": "explorer/live", "value": 1}, node=2)
    height = committed["height"]
    started = time.monotonic()
    page.wait_for_selector(f'#recent-blocks tbody tr[data-height="{height}"]', timeout=LIVE_WITHIN_MS)
    seconds = time.monotonic() - started
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    page.wait_for_function("h => Number(document.querySelector('#stat-height').textContent.replaceAll(',', '')) >= h",
                           arg=height, timeout=LIVE_WITHIN_MS)
    assert browser.errors == []
    print(f"block {height} appeared on the overview {seconds:.2f} s after its commit was answered")


# -- blocks and transactions --------------------------------------------------------------------

def test_block_and_transaction_pages(chain, browser):
    committed = chain.submit("finance", "kv", "put", {"key": HOSTILE, "value": {"note": HOSTILE}})
    height, tx_id = committed["height"], committed["id"]
    page = browser.visit(f"/explorer/blocks/{height}", "table.signers tbody tr", "block")
    signers = page.locator("table.signers tbody tr").all_inner_texts()
    assert len(signers) >= 3 and all(re.match(r"node\d", row) for row in signers), signers
    assert tx_id[:12] in text(page, "table.txs")
    assert "kv.put" in text(page, "table.txs") and "Department of Finance" in text(page, "table.txs")

    page = browser.visit(f"/explorer/txs/{tx_id}", "text=Arguments", "transaction")
    summary = text(page, "main")
    assert "finance of Department of Finance" in summary and "kv.put" in summary
    assert f"block {height}" in summary and "ok: committed and executed" in summary
    assert HOSTILE in summary                                    # the args, shown as text

    page = browser.visit(f"/explorer/state?contract=kv&key={quote(HOSTILE)}", "#state-result pre", "state")
    assert json.loads(text(page, "#state-result pre")) == {"note": HOSTILE}

    page = browser.visit("/explorer/blocks", "main table tbody tr", "blocks")
    assert page.locator("main table tbody tr").count() >= min(50, height)


# -- fiscal receipt check (查验) ------------------------------------------------------------------

def test_receipt_check_answers_a_valid_and_a_tampered_check_code(chain, browser):
    receipt = chain.get("/fiscal/issuers/kunming-first-hospital/receipts")["receipts"][0]
    code, number, check_code = receipt["code"], receipt["number"], receipt["check_code"]
    tampered = check_code[:-1] + str((int(check_code[-1]) + 1) % 10)
    page = browser.visit("/fiscal/verify", "#verify-code", "verify-form")
    for check, found in ((check_code, "true"), (tampered, "false")):
        page.fill("#verify-code", code)
        page.fill("#verify-number", number)
        page.fill("#verify-check-code", check)
        page.fill("#verify-amount", f"{receipt['total_cents'] // 100}.{receipt['total_cents'] % 100:02d}")
        page.click("form.verify button[type=submit]")
        page.wait_for_selector(f'#verify-result[data-found="{found}"]')
        result = text(page, "#verify-result")
        if found == "true":
            assert "查验通过" in result and "已报销" in result and "¥426.50" in result, result
            assert page.locator("#verify-result").get_attribute("data-status") == "reimbursed"
        else:
            assert "查无此票" in result and "已报销" not in result, result
        assert f"check_code={check}" in page.url and "amount_cents=42650" in page.url
    assert browser.errors == []
    # The same check as a link (what a QR code on the receipt would carry), at both widths.
    link = f"/fiscal/verify?code={code}&number={number}&check_code={check_code}&amount_cents=42650"
    browser.visit(link, '#verify-result[data-found="true"]', "verify-valid")
    browser.visit(link.replace(check_code, tampered), '#verify-result[data-found="false"]', "verify-tampered")
    page = browser.visit(f"/fiscal/receipts/{code}/{number}", "table.items", "receipt")
    assert "Li Wei" in text(page, "main") and "Kunming Medical Insurance Bureau" in text(page, "main")


# -- provenance (the consumer's QR target) and receivables ----------------------------------------

def test_the_tea_cakes_digital_link_shows_their_upstream_lots(chain, browser):
    cakes = chain.get("/trace/products/puer-cake-357g/lots")["lots"][0]
    lot, gtin = cakes["lot"], cakes["gtin"]
    maocha, leaf = lot.replace("-CAKE", "-MAO"), lot.replace("-CAKE", "-LEAF")
    page = browser.visit(f"/01/{gtin}/10/{lot}", "#provenance-tree", "provenance")
    tree = page.locator("#provenance-tree")
    assert tree.locator(f'li[data-lot="{lot}"] li[data-lot="{maocha}"] li[data-lot="{leaf}"]').count() == 1
    timeline = text(page, "ol.timeline")
    assert "Harvested / made at origin" in timeline and "Inspected" in timeline and "Sold" in timeline
    assert "No failed inspection" in text(page, "main")
    assert HOSTILE in text(page, "main")                    # the shop's display name, as text
    # The same URL asked for JSON still answers JSON.
    request = urllib.request.Request(chain.urls[1] + f"/01/{gtin}/10/{lot}", headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert [u["lot"] for u in json.loads(resp.read())["upstream"]] == [maocha, leaf]


def test_receivable_history(chain, browser):
    held = chain.get("/receivables/holdings/dianchi-bank")["receivables"][0]
    page = browser.visit(f"/receivables/{held['id']}", "ol.timeline li", "receivable")
    history = text(page, "ol.timeline")
    assert "Split from" in history and "Financed" in history and "Dianchi Commercial Bank" in history


# -- governance ----------------------------------------------------------------------------------------

def test_a_governance_proposal_with_its_votes(chain, browser):
    proposed = chain.submit("finance", "gov", "propose", {
        "action": "add_org", "target": "yunnan-rural-credit", "params": {"display_name": HOSTILE}})
    pid = proposed["receipt"]["result"]["id"]
    chain.submit("tax", "gov", "reject", {"id": pid}, node=1)
    page = browser.visit("/gov/proposals?status=open", "table.proposals tbody tr a", "proposals")
    listed = text(page, "table.proposals")
    assert f"#{pid}" in listed and "add_org yunnan-rural-credit" in listed and "Department of Finance" in listed
    page.click(f'table.proposals a[href="/gov/proposals/{pid}"] >> nth=0')
    page.wait_for_url(f"**/gov/proposals/{pid}")
    page.wait_for_selector("table.votes tbody tr:nth-child(2)")
    votes = page.locator("table.votes tbody tr").all_inner_texts()
    assert "Department of Finance" in votes[0] and "approve" in votes[0], votes
    assert "Tax Bureau" in votes[1] and "reject" in votes[1], votes
    needed = chain.get("/config")["governance"]["needed"]
    assert text(page, "#proposal-tally") == f"1 of {needed} needed"
    assert json.dumps(HOSTILE) in text(page, "main")        # the proposed display name, as JSON text
    browser.visit(f"/gov/proposals/{pid}", "table.votes tbody tr", "proposal")
    assert browser.errors == []


def test_a_tx_signed_before_a_key_rotation_still_names_its_account(chain, browser):
    before = chain.submit("tourism", "kv", "put", {"key": "explorer/rotation", "value": 1})
    chain.submit("tourism", "gov", "rotate_key",
                 {"new_public_key": SigningKey.generate().verify_key.encode().hex()})
    page = browser.visit(f"/explorer/txs/{before['id']}", "text=Arguments", "transaction-rotated-key")
    summary = text(page, "main")
    assert "tourism of Tourism Board" in summary and "key since rotated" in summary, summary


# -- search, errors, formatting ------------------------------------------------------------------------

def test_search_box_finds_a_lot_a_tx_and_a_receipt(chain, browser):
    page = browser.visit("/", "#recent-blocks tbody tr[data-height]", "overview-again")
    lot = chain.get("/trace/products/puer-maocha/lots")["lots"][0]["lot"]
    receipt = chain.get("/fiscal/issuers/kunming-first-hospital/receipts")["receipts"][0]
    first_tx = chain.get("/blocks/1/txs")["txs"][0]["id"]
    for query, lands_on, ready in (
            (lot, f"/trace/{lot}", "#provenance-tree"),
            (first_tx, f"/explorer/txs/{first_tx}", "text=Arguments"),
            (f"{receipt['code']} {receipt['number']}", f"/fiscal/receipts/{receipt['code']}/{receipt['number']}",
             "table.items"),
            ("2", "/explorer/blocks/2", "table.signers")):
        page.fill("#search-q", query)
        page.press("#search-q", "Enter")
        page.wait_for_url(f"**{lands_on}")
        page.wait_for_selector(ready)
    page.fill("#search-q", "no such thing anywhere")
    page.press("#search-q", "Enter")
    page.wait_for_selector("text=Nothing on this chain matches")
    page.screenshot(path=browser.artifacts / "search-nothing-desktop.png", full_page=True)
    assert browser.errors == []


def test_a_missing_block_says_so(chain, browser):
    page = browser.visit("/explorer/blocks/99999999", "text=Not found", "not-found", expect_errors=True)
    assert "block 99999999 not found" in text(page, "main")


def test_amount_formatting_in_the_browser(browser):
    page = browser.pages["desktop"]
    results = page.evaluate("""async () => {
        const f = await import('/explorer/assets/format.js');
        return [f.parseYuan('426.50'), f.parseYuan('¥1,200'), f.parseYuan('0.5'), f.parseYuan('12.345'),
                f.parseYuan('abc'), f.parseYuan('99999999999'), f.yuan(4265012), f.yuan(5), f.yuan(10 ** 12)];
    }""")
    assert results == [42650, 120000, 50, None, None, None, "¥42,650.12", "¥0.05", "¥10,000,000,000.00"]
