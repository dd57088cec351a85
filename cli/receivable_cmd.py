"""`ynchain receivable`: supply-chain receivables, split, transferred, financed once, settled."""

from __future__ import annotations

import click

from ledger.contracts.paging import DEFAULT_PAGE, MAX_PAGE

from .client import path_segment
from .contract_cli import event_details, method_command, page_query, print_next, short_time, yuan
from .target import client_for, json_option, node_option, print_fields, print_json, print_table


@click.group()
def receivable():
    """Receivables a core enterprise owes: issue, split, transfer, finance (once), settle.

    Amounts are integer cents; dates are YYYY-MM-DD (UTC+8). Nothing changes
    hands on or after the maturity date, or after settlement.
    """


def _issued(result: dict) -> None:
    click.echo(f"receivable {result.get('id')} of {yuan(result.get('amount_cents'))} now held by "
               f"{result.get('holder')}")


def _split(result: dict) -> None:
    click.echo(f"receivable {result.get('id')} split into {', '.join(result.get('parts') or [])}")


def _moved(result: dict) -> None:
    advance = f" (advance {yuan(result['advance_cents'])})" if "advance_cents" in result else ""
    click.echo(f"receivable {result.get('id')} now held by {result.get('holder')}{advance}")


def _settled(result: dict) -> None:
    click.echo(f"receivable {result.get('id')} settled: {yuan(result.get('amount_cents'))} paid to "
               f"{result.get('paid_to')}")


method_command(receivable, "receivable", "issue", render=_issued)
method_command(receivable, "receivable", "split", render=_split)
method_command(receivable, "receivable", "transfer", render=_moved)
method_command(receivable, "receivable", "finance", render=_moved)
method_command(receivable, "receivable", "settle", render=_settled)


@receivable.command("show")
@click.argument("rid", metavar="ID")
@node_option
@json_option
def receivable_show(rid, node_url, as_json):
    """Show receivable ID and its history."""
    doc = client_for(node_url).get(f"/receivables/{path_segment(rid)}")
    if as_json:
        print_json(doc)
        return
    financed = doc.get("financed")
    settled = doc.get("settled")
    print_fields([
        ("receivable", doc.get("id")), ("debtor", doc.get("debtor")), ("holder", doc.get("holder")),
        ("amount", yuan(doc.get("amount_cents"))), ("matures", doc.get("maturity_date")),
        ("status", doc.get("status")), ("split from", doc.get("parent")),
        ("parts", ", ".join(doc.get("parts") or []) or None),
        ("financed", None if not financed else
         f"by {financed.get('bank')}, advance {yuan(financed.get('advance_cents'))}, height "
         f"{financed.get('height')}" + ("" if financed.get("receivable") == doc.get("id")
                                        else f" (as part of {financed.get('receivable')})")),
        ("settled", None if not settled else
         f"paid to {settled.get('paid_to')} at height {settled.get('height')} ({settled.get('time')})"),
    ])
    for event in doc.get("events") or []:
        click.echo(f"  {short_time(event.get('time'))}  height {event.get('height')}  "
                   f"{event.get('event'):<10} {event.get('org')}: {event_details(event)}")


@receivable.command("holdings")
@click.argument("org")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=DEFAULT_PAGE, show_default=True)
@click.option("--after", default=None, help="Continue after this cursor (printed below a full page).")
@node_option
@json_option
def receivable_holdings(org, limit, after, node_url, as_json):
    """What ORG holds: the count and total of its open receivables, and the receivables."""
    doc = client_for(node_url).get(f"/receivables/holdings/{path_segment(org)}?" + page_query(limit, after))
    if as_json:
        print_json(doc)
        return
    click.echo(f"{org} holds {doc.get('count')} open receivable(s), {yuan(doc.get('total_cents'))} in all")
    print_table(["ID", "DEBTOR", "AMOUNT", "MATURES", "FINANCED BY"],
                [[r.get("id"), r.get("debtor"), yuan(r.get("amount_cents")), r.get("maturity_date"),
                  (r.get("financed") or {}).get("bank")] for r in doc.get("receivables") or []])
    print_next(doc)
