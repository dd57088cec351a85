"""`ynchain trace`: farm-product lots from their base to the shop (GS1 EPCIS events)."""

from __future__ import annotations

from typing import Any

import click

from ledger.contracts.paging import DEFAULT_PAGE, MAX_PAGE

from .client import path_segment
from .contract_cli import event_details, method_command, page_query, print_next, short_time
from .target import client_for, json_option, node_option, print_json, print_table

@click.group()
def trace():
    """Trace lots: commission, inspect, transform, aggregate, ship, receive, sell; show provenance.

    Only an organisation holding a quantity of a lot may ship, transform, pack
    or sell it, and never more than it holds; a failed inspection stops the lot
    and everything made from it.
    """


def _made(result: dict) -> None:
    click.echo(f"lot {result.get('lot')}: {result.get('quantity')} {result.get('unit')}")


def _fields(result: dict) -> None:
    click.echo(", ".join(f"{k} {v}" for k, v in result.items()))


method_command(trace, "trace", "commission", render=_made)
method_command(trace, "trace", "inspect", render=_fields)
method_command(trace, "trace", "transform", render=_made)
method_command(trace, "trace", "aggregate", render=_fields)
method_command(trace, "trace", "disaggregate", render=_fields)
method_command(trace, "trace", "ship", render=_fields)
method_command(trace, "trace", "receive", render=_fields)
method_command(trace, "trace", "sell", render=_fields)
method_command(trace, "trace", "retire", render=_fields)


def _org(name: Any, orgs: dict[str, str]) -> str:
    return orgs.get(name) or str(name)


def render_lot(lot: dict, orgs: dict[str, str], indent: str = "") -> None:
    gtin = f" · GTIN {lot['gtin']}" if lot.get("gtin") else ""
    click.echo(f"{indent}lot {lot.get('lot')} · {lot.get('product')}{gtin} · {lot.get('quantity')} "
               f"{lot.get('unit')} · {lot.get('kind')}")
    failed = lot.get("failed_inspection")
    if failed:
        source = "it" if failed.get("lot") == lot.get("lot") else f"lot {failed.get('lot')} it is made from"
        click.echo(f"{indent}  !! FAILED INSPECTION: {source}, by {_org(failed.get('lab'), orgs)} at height "
                   f"{failed.get('height')} ({short_time(failed.get('time'))}); not for sale")
    origin = lot.get("origin")
    if origin:
        click.echo(f"{indent}  origin: {origin.get('base')}, {origin.get('plot')}, harvested "
                   f"{origin.get('harvest_date')}")
    click.echo(f"{indent}  made by {_org(lot.get('creator'), orgs)} at height {lot.get('created_height')}, "
               f"{short_time(lot.get('created_time'))}")
    held = ", ".join(f"{_org(h.get('org'), orgs)} {h.get('quantity')}" for h in lot.get("holdings") or [])
    click.echo(f"{indent}  now: held by {held or 'nobody'}; in transit {lot.get('in_transit')}, "
               f"sold {lot.get('sold')}, used {lot.get('used')}, packed {lot.get('packed')}, "
               f"retired {lot.get('retired')}")
    for event in lot.get("events") or []:
        click.echo(f"{indent}  {short_time(event.get('time'))}  height {event.get('height'):<5} "
                   f"{event.get('event'):<12} {_org(event.get('org'), orgs)}: {event_details(event)}  "
                   f"[tx {str(event.get('tx_id'))[:16]}]")
    if lot.get("event_count", 0) > len(lot.get("events") or []):
        click.echo(f"{indent}  ... {lot['event_count'] - len(lot['events'])} more events")


def render_summary(doc: dict, orgs: dict[str, str]) -> None:
    """The few lines a consumer reads first: where it grew, who checked it, is it safe."""
    lots = [doc.get("lot") or {}, *(doc.get("upstream") or [])]
    top = lots[0]
    click.secho(f"{top.get('product')} · lot {top.get('lot')}", bold=True)
    for lot in lots:
        origin = lot.get("origin")
        if origin:
            click.echo(f"  grown at {origin.get('base')} ({origin.get('plot')}) by "
                       f"{_org(lot.get('creator'), orgs)}, harvested {origin.get('harvest_date')}")
    for lot in lots:
        for event in lot.get("events") or []:
            if event.get("event") == "inspect":
                report = f", report {event['report_id']}" if event.get("report_id") else ""
                click.echo(f"  inspected: {event.get('result')} (lot {lot.get('lot')}, "
                           f"{_org(event.get('org'), orgs)}{report}, {short_time(event.get('time'))})")
    failed = top.get("failed_inspection")
    click.echo("  status: FAILED INSPECTION, do not consume" if failed else "  status: ok")
    click.echo(f"  steps on the chain: {sum(len(lot.get('events') or []) for lot in lots)} events over "
               f"{len(lots)} lots\n")


@trace.command("show")
@click.argument("lot")
@click.option("--gtin", default=None, help="Ask through the GS1 Digital Link /01/GTIN/10/LOT (checks the GTIN).")
@node_option
@json_option
def trace_show(lot, gtin, node_url, as_json):
    """The consumer's view of LOT: every event of it and of every lot it is made from."""
    path = (f"/trace/{path_segment(lot)}" if gtin is None
            else f"/01/{path_segment(gtin)}/10/{path_segment(lot)}")
    doc = client_for(node_url).get(path)
    if as_json:
        print_json(doc)
        return
    orgs = doc.get("organisations") or {}
    render_summary(doc, orgs)
    render_lot(doc.get("lot") or {}, orgs)
    upstream = doc.get("upstream") or []
    if upstream:
        click.echo("\nmade from:")
        for item in upstream:
            render_lot(item, orgs, "  ")
    if doc.get("truncated"):
        click.echo("(provenance cut short: too many lots or events; see --json and the lots themselves)")


@trace.command("list")
@click.option("--product", default=None, help="Lots of this product code.")
@click.option("--origin", default=None, help="Lots from this production base (and lots made from them).")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=DEFAULT_PAGE, show_default=True)
@click.option("--after", default=None, help="Continue after this cursor (printed below a full page).")
@node_option
@json_option
def trace_list(product, origin, limit, after, node_url, as_json):
    """List lots by product or by origin base, oldest first."""
    if (product is None) == (origin is None):
        raise click.UsageError("give exactly one of --product, --origin")
    path = (f"/trace/products/{path_segment(product)}/lots" if product is not None
            else f"/trace/origins/{path_segment(origin)}/lots")
    doc = client_for(node_url).get(f"{path}?{page_query(limit, after)}")
    if as_json:
        print_json(doc)
        return
    print_table(["LOT", "PRODUCT", "QUANTITY", "UNIT", "STATUS", "CREATOR", "HEIGHT"],
                [[v.get("lot"), v.get("product"), v.get("quantity"), v.get("unit"), v.get("status"),
                  v.get("creator"), v.get("created_height")] for v in doc.get("lots") or []])
    print_next(doc)
