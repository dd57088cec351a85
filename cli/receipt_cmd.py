"""`ynchain receipt`: fiscal electronic receipts (财政电子票据)."""

from __future__ import annotations

from urllib.parse import urlencode

import click

from ledger.contracts.fiscal import payer_id_hash
from ledger.contracts.paging import DEFAULT_PAGE, MAX_PAGE

from .client import path_segment
from .contract_cli import method_command, page_query, print_next, yuan
from .errors import CliError
from .submit import chain_head
from .target import client_for, json_option, node_option, print_fields, print_json, print_table

CODE_ARG = click.argument("code")
NUMBER_ARG = click.argument("number")


@click.group()
def receipt():
    """Fiscal electronic receipts: issue, void (冲红), reimburse (报销), verify (查验).

    Amounts are integer cents. Identity numbers never leave this machine: only
    their salted hash is sent (see `ynchain receipt issue --help`).
    """


def _hash_payer(chain_id: str, id_number: str, option: str) -> str:
    try:
        return payer_id_hash(chain_id, id_number)
    except ValueError as exc:
        raise CliError(f"{option}: {exc}") from None


def _build_issue(args: dict, extra: dict, chain_id: str) -> dict:
    """Hash the payer's identity number; fill in line amounts and the total when left out."""
    args = dict(args)
    if extra.get("payer_id") is not None:
        args["payer_id_hash"] = _hash_payer(chain_id, extra["payer_id"], "--payer-id")
    elif "payer_id_hash" not in args:
        raise CliError("missing --payer-id (the payer's identity number; only its salted hash is sent)")
    items = args.get("items")
    if isinstance(items, list) and all(isinstance(i, dict) for i in items):
        for item in items:
            if "amount_cents" not in item and type(item.get("quantity")) is int \
                    and type(item.get("unit_price_cents")) is int:
                item["amount_cents"] = item["quantity"] * item["unit_price_cents"]
        if "total_cents" not in args and all(type(i.get("amount_cents")) is int for i in items):
            args["total_cents"] = sum(i["amount_cents"] for i in items)
    return args


def _issued(result: dict) -> None:
    click.echo(f"receipt {result.get('receipt')} issued: total {yuan(result.get('total_cents'))}, "
               f"check code {result.get('check_code')}")


def _voided(result: dict) -> None:
    click.echo(f"receipt {result.get('receipt')} voided by red receipt {result.get('red_receipt')} "
               f"(check code {result.get('red_check_code')})")


def _claimed(result: dict) -> None:
    click.echo(f"locked {yuan(result.get('locked_cents'))} of receipt {result.get('receipt')}; "
               f"{yuan(result.get('available_cents'))} left to claim")


def _completed(result: dict) -> None:
    click.echo(f"reimbursed {yuan(result.get('reimbursed_cents'))} of receipt {result.get('receipt')} "
               f"(all claims: {yuan(result.get('total_reimbursed_cents'))})")


def _released(result: dict) -> None:
    click.echo(f"released {yuan(result.get('released_cents'))} of receipt {result.get('receipt')}")


method_command(receipt, "fiscal", "issue", hidden=("payer_id_hash",), optional=("total_cents",),
               extra_options=(click.option("--payer-id", "payer_id", default=None,
                                           help="The payer's identity number (身份证号). Only its salted "
                                                "hash is sent: scrypt over the number with the chain id "
                                                "as salt (ledger/contracts/fiscal.py)."),),
               build=_build_issue, render=_issued,
               epilog="Example: ynchain receipt issue --key testnet/accounts/kunming-first-hospital.key "
                      "--code 53010126 --number 0000001234 --payer-name 'Li Wei' --payer-id "
                      "53010219900101123X --item 'name=CT scan,quantity=1,unit=次,unit_price_cents=38000' "
                      "(amount_cents and --total-cents default to quantity x price and their sum)")
method_command(receipt, "fiscal", "void", render=_voided)
method_command(receipt, "fiscal", "claim", render=_claimed)
method_command(receipt, "fiscal", "complete", render=_completed)
method_command(receipt, "fiscal", "release", render=_released)


# -- queries --------------------------------------------------------------------------------

def _status_line(doc: dict) -> str:
    parts = [f"total {yuan(doc.get('total_cents'))}", f"reimbursed {yuan(doc.get('reimbursed_cents'))}",
             f"locked {yuan(doc.get('locked_cents'))}", f"available {yuan(doc.get('available_cents'))}"]
    return ", ".join(parts)


@receipt.command("verify")
@CODE_ARG
@NUMBER_ARG
@click.option("--check-code", required=True, help="校验码, the 10-digit check code on the receipt.")
@click.option("--amount-cents", type=click.IntRange(0), required=True, help="The receipt's total, in cents.")
@node_option
@json_option
def receipt_verify(code, number, check_code, amount_cents, node_url, as_json):
    """查验: is there a receipt CODE NUMBER with this check code and amount, and what is its status?

    Needs no key and no role. Exits 1 when no such receipt exists.
    """
    doc = client_for(node_url).get("/fiscal/verify?" + urlencode(
        {"code": code, "number": number, "check_code": check_code, "amount_cents": amount_cents}))
    if as_json:
        print_json(doc)
    if not doc.get("found"):
        raise CliError(f"no receipt {code}-{number} with check code {check_code} and amount "
                       f"{yuan(amount_cents)} on this chain")
    if not as_json:
        click.echo(f"receipt {doc.get('receipt')} is {doc.get('status')}: issued by {doc.get('issuer_org')} "
                   f"at height {doc.get('issued_height')} ({doc.get('issued_time')})")
        click.echo(_status_line(doc))
        if doc.get("voided_by"):
            click.echo(f"voided by red receipt {doc['voided_by']}")
        if doc.get("red_of"):
            click.echo(f"red receipt voiding {doc['red_of']}")


@receipt.command("show")
@CODE_ARG
@NUMBER_ARG
@node_option
@json_option
def receipt_show(code, number, node_url, as_json):
    """Show receipt CODE NUMBER: items, payer, status, claims."""
    doc = client_for(node_url).get(f"/fiscal/receipts/{path_segment(code)}/{path_segment(number)}")
    if as_json:
        print_json(doc)
        return
    print_fields([("receipt", doc.get("receipt")), ("kind", doc.get("kind")), ("status", doc.get("status")),
                  ("issuer", f"{doc.get('issuer_org')} ({doc.get('issuer_account')})"),
                  ("payer", doc.get("payer_name")), ("payer id hash", doc.get("payer_id_hash")),
                  ("issued", f"height {doc.get('issued_height')}, {doc.get('issued_time')}"),
                  ("check code", doc.get("check_code")), ("amounts", _status_line(doc)),
                  ("voided by", doc.get("voided_by")), ("red receipt of", doc.get("red_of"))])
    print_table(["ITEM", "QUANTITY", "UNIT", "UNIT PRICE", "AMOUNT"],
                [[i.get("name"), i.get("quantity"), i.get("unit"), yuan(i.get("unit_price_cents")),
                  yuan(i.get("amount_cents"))] for i in doc.get("items") or []])
    claims = doc.get("claims") or []
    if claims:
        click.echo("")
        print_table(["REIMBURSER", "AMOUNT", "STATE", "HEIGHT"],
                    [[c.get("org"), yuan(c.get("amount_cents")), c.get("state"),
                      c.get("done_height") or c.get("height")] for c in claims])


@receipt.command("list")
@click.option("--issuer", default=None, help="List the receipts this organisation issued.")
@click.option("--payer-id", default=None, help="List the receipts of this identity number (hashed here).")
@click.option("--payer-hash", default=None, help="List the receipts of this payer id hash.")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=DEFAULT_PAGE, show_default=True)
@click.option("--after", default=None, help="Continue after this cursor (printed below a full page).")
@node_option
@json_option
def receipt_list(issuer, payer_id, payer_hash, limit, after, node_url, as_json):
    """List receipts by issuing unit or by payer, in issue order."""
    if sum(x is not None for x in (issuer, payer_id, payer_hash)) != 1:
        raise click.UsageError("give exactly one of --issuer, --payer-id, --payer-hash")
    client = client_for(node_url)
    if payer_id is not None:
        payer_hash = _hash_payer(chain_head(client)[0], payer_id, "--payer-id")
    path = (f"/fiscal/issuers/{path_segment(issuer)}/receipts" if issuer is not None
            else f"/fiscal/payers/{path_segment(payer_hash)}/receipts")
    doc = client.get(f"{path}?{page_query(limit, after)}")
    if as_json:
        print_json(doc)
        return
    print_table(["RECEIPT", "STATUS", "TOTAL", "ISSUER", "PAYER", "HEIGHT"],
                [[r.get("receipt"), r.get("status"), yuan(r.get("total_cents")), r.get("issuer_org"),
                  r.get("payer_name"), r.get("issued_height")] for r in doc.get("receipts") or []])
    print_next(doc)
