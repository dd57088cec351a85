"""`ynchain demo --dir DIR` (what `make testnet` runs): one day on the chain.

Creates the testnet if DIR has none, brings it up (or notes that it is
running), then tells the day's story through the real CLI commands, each
sent to another of the four nodes:

  * a hospital issues a fiscal receipt; medical insurance and the patient's
    employer reimburse it between them; the employer's second attempt is
    refused, with the reason;
  * a tea lot from a Menghai base is made into maocha and pressed cakes at the
    first-processing workshop, inspected by the lab, shipped to Kunming and
    sold in a shop, where a consumer scans the cake's QR code (a GS1 Digital
    Link) and sees its whole provenance;
  * a core enterprise's receivable is split along its supply chain and one
    part is financed at a bank, once;
and finally shows that every node holds the same chain.  The testnet is left
running.
"""

from __future__ import annotations

import os
import shlex
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import click

from ledger.contracts.blocktime import CHINA
from ledger.crypto import hash256

from . import procs
from .client import NodeClient
from .errors import CliError, NodeError
from .group import YnCommand
from .launch import bring_up
from .layout import DEFAULT_BASE_PORT, STORY_ORGANISATIONS, Testnet, init_testnet, load_testnet
from .target import print_table

CATCH_UP_S = 15.0
RECEIPT_CODE = "53010126"
GTIN = "06901234567892"


class Story:
    """Runs `ynchain` commands in this process, rotating over the nodes."""

    def __init__(self, net: Testnet) -> None:
        self.net = net
        self.turn = 0
        missing = [name for name, _, _ in STORY_ORGANISATIONS
                   if not (net.accounts_dir / f"{name}.key").is_file()]
        if missing:
            raise CliError(f"the testnet in {net.dir} has no account {missing[0]} (it predates the "
                           f"business contracts); recreate it: ynchain testnet down --dir {net.dir} && "
                           f"ynchain testnet init --dir {net.dir} --force")

    def key(self, account: str) -> str:
        path = self.net.accounts_dir / f"{account}.key"
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def run(self, *args: object, key: str | None = None) -> None:
        """`ynchain ARGS --key accounts/KEY.key` via the next node; raises CliError on failure."""
        from .main import cli      # the full command tree (it imports this module)
        node = self.net.nodes[self.turn % len(self.net.nodes)]
        self.turn += 1
        words = [str(a) for a in args] + (["--key", self.key(key)] if key else [])
        click.secho(f"  $ ynchain {' '.join(shlex.quote(w) for w in words)}   [via {node.name}]", dim=True)
        with cli.make_context("ynchain", [*words, "--node", node.api_url]) as ctx:
            cli.invoke(ctx)

    def refused(self, *args: object, key: str) -> None:
        """A call that must fail: show its reason."""
        try:
            self.run(*args, key=key)
        except CliError as exc:
            click.secho(f"  refused, as it must be: {exc.message}", fg="yellow")
            return
        raise CliError(f"`ynchain {' '.join(map(str, args))}` was accepted but had to be refused")


def heading(text: str) -> None:
    click.echo("")
    click.secho(text, bold=True)


def track(text: str) -> None:
    click.echo("")
    click.secho(f"=== {text} ===", bold=True, fg="cyan")


def fiscal_morning(story: Story, number: str) -> None:
    r = ["--code", RECEIPT_CODE, "--number", number]
    track("Fiscal e-receipts: a hospital visit, reimbursed once")
    heading("08:30  Kunming First People's Hospital: Li Wei pays for a CT scan and medicine")
    story.run("receipt", "issue", *r, "--payer-name", "Li Wei", "--payer-id", "53010219900101123X",
              "--item", "name=CT scan,quantity=1,unit=次,unit_price_cents=38000",
              "--item", "name=Ibuprofen 0.3g,quantity=3,unit=盒,unit_price_cents=1550",
              key="kunming-first-hospital")
    heading("10:00  Kunming Medical Insurance Bureau reimburses its share (lock, then pay)")
    story.run("receipt", "claim", *r, "--amount-cents", 30000, key="kunming-medical-insurance")
    story.run("receipt", "complete", *r, key="kunming-medical-insurance")
    heading("11:15  Li Wei's employer, Dianchi Logistics, reimburses the rest")
    story.run("receipt", "claim", *r, "--amount-cents", 12650, key="dianchi-logistics")
    story.run("receipt", "complete", *r, key="dianchi-logistics")
    heading("11:20  ...and a second reimbursement of the same receipt is refused by the ledger")
    story.refused("receipt", "claim", *r, "--amount-cents", 12650, key="dianchi-logistics")
    story.refused("receipt", "claim", *r, "--amount-cents", 100, key="yunnan-life-insurance")
    heading("11:30  Anyone holding the receipt can check it (查验) with its check code and amount")
    with NodeClient(story.net.nodes[0].api_url) as client:
        check_code = client.get(f"/fiscal/receipts/{RECEIPT_CODE}/{number}")["check_code"]
    story.run("receipt", "verify", RECEIPT_CODE, number, "--check-code", check_code, "--amount-cents", 42650)


def tea_day(story: Story, tag: str, today: date) -> str:
    leaf, maocha, cakes = f"MH-{tag}-LEAF", f"MH-{tag}-MAO", f"MH-{tag}-CAKE"
    pallet, ship1, ship2, ship3 = f"SSCC-{tag}", f"WB-{tag}-1", f"WB-{tag}-2", f"WB-{tag}-3"
    track("Traceability: a Pu'er tea lot from Menghai to a Kunming shop")
    heading("07:00  Menghai Bulang Mountain Tea Cooperative picks 500 kg of fresh leaf")
    story.run("trace", "commission", "--lot", leaf, "--product", "puer-fresh-leaf", "--quantity", 500,
              "--unit", "kg", "--origin-base", "menghai-bulang", "--origin-plot", "Laobanzhang plot 7",
              "--origin-harvest-date", (today - timedelta(days=1)).isoformat(), key="menghai-tea-coop")
    story.run("trace", "ship", "--shipment", ship1, "--lot", leaf, "--quantity", 500, "--to",
              "bulang-workshop", key="menghai-tea-coop")
    story.run("trace", "receive", "--shipment", ship1, key="bulang-workshop")
    heading("09:00  The first-processing workshop (初制所) makes maocha, then presses cakes")
    story.run("trace", "transform", "--input", f"lot={leaf},quantity=500", "--output-lot", maocha,
              "--output-product", "puer-maocha", "--output-quantity", 120, "--output-unit", "kg",
              key="bulang-workshop")
    story.run("trace", "transform", "--input", f"lot={maocha},quantity=120", "--output-lot", cakes,
              "--output-product", "puer-cake-357g", "--output-gtin", GTIN, "--output-quantity", 300,
              "--output-unit", "cake", key="bulang-workshop")
    heading("13:00  Yunnan Tea Quality Inspection Center tests the cakes")
    report = hash256(f"pesticide residue and heavy metals report for {cakes}: pass".encode()).hex()
    story.run("trace", "inspect", "--lot", cakes, "--report-hash", report, "--result", "pass",
              "--report-id", f"YN-QC-{tag}", key="yunnan-tea-lab")
    heading("15:00  A pallet of 200 cakes goes to Kunming Tea Trading; 50 go on to the Cuihu Lake shop")
    story.run("trace", "aggregate", "--package", pallet, "--lot", f"lot={cakes},quantity=200",
              key="bulang-workshop")
    story.run("trace", "ship", "--shipment", ship2, "--lot", pallet, "--quantity", 1, "--to",
              "kunming-tea-trading", key="bulang-workshop")
    story.run("trace", "receive", "--shipment", ship2, key="kunming-tea-trading")
    story.run("trace", "disaggregate", "--package", pallet, key="kunming-tea-trading")
    story.run("trace", "ship", "--shipment", ship3, "--lot", cakes, "--quantity", 50, "--to",
              "cuihu-tea-shop", key="kunming-tea-trading")
    story.run("trace", "receive", "--shipment", ship3, key="cuihu-tea-shop")
    story.run("trace", "sell", "--lot", cakes, "--quantity", 1, key="cuihu-tea-shop")
    story.refused("trace", "sell", "--lot", cakes, "--quantity", 51, key="cuihu-tea-shop")
    heading(f"18:00  A customer scans the cake's QR code: https://<node>/01/{GTIN}/10/{cakes}")
    story.run("trace", "show", cakes, "--gtin", GTIN)
    return cakes


def receivable_day(story: Story, tag: str, today: date) -> None:
    rid = f"KHM-{tag}"
    due = (today + timedelta(days=120)).isoformat()
    track("Receivables finance: a core enterprise's debt along its supply chain")
    heading("09:30  Kunming Heavy Machinery owes Dianchi Steel 500,000.00 yuan, due in 120 days")
    story.run("receivable", "issue", "--id", rid, "--to", "dianchi-steel", "--amount-cents", 50_000_000,
              "--maturity-date", due, key="kunming-heavy-machinery")
    heading("14:00  Dianchi Steel pays its bearings supplier with 200,000.00 yuan of it")
    story.run("receivable", "split", "--id", rid, "--part", f"id={rid}-1,amount_cents=30000000",
              "--part", f"id={rid}-2,amount_cents=20000000,to=xishan-bearings", key="dianchi-steel")
    heading("16:00  Xishan Bearings needs cash now: Dianchi Commercial Bank finances its part")
    story.run("receivable", "finance", "--id", f"{rid}-2", "--bank", "dianchi-bank", "--advance-cents",
              19_400_000, key="xishan-bearings")
    story.refused("receivable", "finance", "--id", f"{rid}-2", "--bank", "dianchi-bank",
                  "--advance-cents", 19_000_000, key="dianchi-bank")
    story.run("receivable", "show", f"{rid}-2")
    story.run("receivable", "holdings", "dianchi-bank")


def _block_on(url: str, height: int) -> dict:
    """The block at `height` from one node, waiting briefly for it to catch up."""
    deadline = time.monotonic() + CATCH_UP_S
    with NodeClient(url) as client:
        while True:
            try:
                return client.get(f"/blocks/{height}")
            except NodeError as exc:
                if exc.status != 404 or time.monotonic() >= deadline:
                    raise
            time.sleep(0.1)


def same_chain_everywhere(net: Testnet) -> None:
    with NodeClient(net.nodes[0].api_url) as client:
        height = client.get("/status")["height"]
    rows, hashes = [], set()
    for node in net.nodes:
        block = _block_on(node.api_url, height)
        hashes.add(block.get("hash"))
        rows.append([node.name, height, block.get("hash"), (block.get("header") or {}).get("state_root")])
    track("Evening: every department's node holds the same chain")
    print_table(["NODE", "HEIGHT", "BLOCK HASH", "STATE ROOT"], rows)
    if len(hashes) != 1:
        raise CliError(f"the nodes disagree on block {height}: {sorted(map(str, hashes))}")


@click.command(cls=YnCommand)
@click.option("--dir", "root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Testnet directory (created if it holds no testnet).")
@click.option("--base-port", type=int, default=DEFAULT_BASE_PORT, show_default=True,
              help="First port of a new testnet.")
def demo(root, base_port):
    """Start a local 4-node testnet and run one day of the departments' business on it."""
    if (root / "genesis.json").is_file():
        net = load_testnet(root)
        click.echo(f"using the testnet in {net.dir}")
    else:
        net = init_testnet(root, 4, base_port)
        click.echo(f"created a {len(net.nodes)}-node testnet in {net.dir}")
    if all(procs.running_pid(n) for n in net.nodes):
        click.echo("it is already running")
    else:
        started, _ = bring_up(net, timeout_s=60.0)
        click.echo(f"started {', '.join(started)}")
    story = Story(net)
    now = datetime.now(CHINA)
    tag = f"{now:%m%d%H%M%S}{os.urandom(1).hex()}"
    fiscal_morning(story, f"{now:%d%H%M%S}{os.urandom(1)[0] % 100:02d}")
    cakes = tea_day(story, tag, now.date())
    receivable_day(story, tag, now.date())
    same_chain_everywhere(net)

    ynchain = "ynchain" if os.environ.get("VIRTUAL_ENV") else ".venv/bin/ynchain"
    click.echo(f"""
the testnet keeps running. Open the chain explorer in a browser: {net.nodes[0].api_url}/
(any node's API address; the cakes' QR code: {net.nodes[0].api_url}/01/{GTIN}/10/{cakes}). Try:
  {ynchain} testnet status --dir {root}
  {ynchain} receipt list --issuer kunming-first-hospital --node {net.nodes[0].api_url}
  {ynchain} trace list --origin menghai-bulang --node {net.nodes[1].api_url}
  {ynchain} receivable holdings dianchi-steel --node {net.nodes[2].api_url}
  {ynchain} receipt --help; {ynchain} trace --help; {ynchain} receivable --help
  curl {net.nodes[3].api_url}/openapi.json
stop it with:
  {ynchain} testnet down --dir {root}""")


if __name__ == "__main__":
    demo.main(prog_name="python -m cli.demo")
