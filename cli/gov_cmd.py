"""`ynchain gov`: govern the consortium's configuration on chain.

    ynchain gov propose ACTION [TARGET] [options] --key ADMIN.key
    ynchain gov list [--status S] | gov show ID
    ynchain gov approve ID | reject ID | withdraw ID --key ADMIN.key
    ynchain gov rotate-key --key CURRENT.key --new-key NEW.key
    ynchain gov replace-key ACCOUNT --new-public-key HEX|FILE --key ADMIN.key

`propose` has one subcommand per action (ledger.contracts.gov_actions), its
options made from the action's parameter description, so help and checks
are the chain's own.  Calls are signed and submitted like every contract
command (cli/contract_cli.py): they wait for the receipt and exit 1 with the
contract's message when refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import click

from ledger.contracts.gov import STATUSES
from ledger.contracts.gov_actions import ACTIONS, Action
from ledger.contracts.paging import DEFAULT_PAGE, MAX_PAGE
from ledger.contracts.schema import Enum

from .chain_cmd import show
from .contract_cli import _assemble, _click_option, _missing, _options, call_options, run_call
from .group import YnGroup
from .public_keys import public_key_hex
from .submit import load_key_file
from .target import client_for, json_option, node_option, print_fields, print_json, print_table


class _ActionGroup(YnGroup):
    """Subcommands named like the actions, with '-' or '_' (add-org or add_org)."""

    def get_command(self, ctx: click.Context, cmd_name: str):
        return super().get_command(ctx, cmd_name.replace("_", "-"))


@click.group()
def gov():
    """Propose, vote on and inspect changes of the consortium (organisations,
    accounts, nodes, consensus parameters, governance policy), and rotate keys.

    One vote per organisation, cast by an account with its admin role; a
    proposal is carried out in the block where it reaches the threshold
    (`ynchain query config` shows it), and expires after the policy's lifetime.
    """


@gov.group(cls=_ActionGroup)
def propose():
    """Propose a change; it counts as your organisation's approval.

    Validator-set and consensus-parameter changes take effect at the next epoch
    boundary (shown in the receipt and in `ynchain query config`).
    """


def _votes(doc: dict) -> str:
    return ", ".join(f"{v.get('org')} {v.get('vote')}" for v in doc.get("votes") or []) or "-"


def print_proposal(doc: dict) -> None:
    print_fields([
        ("proposal", doc.get("id")), ("action", doc.get("summary")), ("status", doc.get("status")),
        ("proposed by", f"{doc.get('proposer')} ({doc.get('org')}) at height {doc.get('created_height')}"),
        ("approvals", f"{doc.get('approvals')} of {doc.get('needed')} needed "
                      f"({doc.get('electorate')} voting organisations)"),
        ("votes", _votes(doc)),
        ("expires", f"after height {doc.get('expires_height')}"),
        ("closed", doc.get("note")),
    ])
    epoch = doc.get("epoch")
    if isinstance(epoch, dict):
        click.echo(f"epoch {epoch.get('number')} starts after height {epoch.get('starts_after')}: "
                   f"validators {', '.join(epoch.get('validators') or [])}")
    if doc.get("warning"):
        click.echo(f"warning: {doc['warning']}")


def _signed(command: click.Command, key_help: str = "Key file of an admin account.") -> click.Command:
    """Add the options of a signed call (call_options) to `command`."""
    for decorate in call_options(key_help):
        command = decorate(command)
    return command


def _action_command(name: str, action: Action) -> click.Command:
    opts = _options(action.params)
    fixed = action.target.values[0] if isinstance(action.target, Enum) else None

    def callback(node_url, key_file, wait, timeout, valid_for, as_json, target=None, **values):
        params = _assemble(opts, values)
        missing = _missing(opts, params, set())
        if missing:
            raise click.UsageError(f"missing option(s) {', '.join(missing)}")
        if "public_key" in params:
            params["public_key"] = public_key_hex(params["public_key"])
        args: dict[str, Any] = {"action": name, "target": fixed or target}
        if params or action.params.fields:
            args["params"] = params
        run_call(node_url, key_file, "gov", "propose", args, wait, timeout, valid_for, as_json,
                 render=print_proposal)

    command = click.Command(
        name.replace("_", "-"), callback=callback,
        help=f"{action.summary} (gov.propose action {name}). Needs an account with the admin role."
             + ("" if fixed else f"\n\nTARGET: {action.target.help()}."))
    if not fixed:
        command = click.argument("target")(command)
    for opt in opts:
        command = _click_option(opt)(command)
    for param in command.params:
        if param.name == "public_key":
            param.help = f"{param.help}; or a public key file (ynchain keys show FILE --json)"
    return _signed(command)


for _name, _action in ACTIONS.items():
    propose.add_command(_action_command(_name, _action))


def _vote_command(method: str, verb: str) -> None:
    def callback(pid, node_url, key_file, wait, timeout, valid_for, as_json):
        run_call(node_url, key_file, "gov", method, {"id": pid}, wait, timeout, valid_for, as_json,
                 render=print_proposal)

    command = click.Command(method, callback=callback,
                            help=f"{verb} open proposal ID for your organisation (an admin's key).")
    command = click.argument("pid", metavar="ID", type=click.IntRange(1))(command)
    gov.add_command(_signed(command))


_vote_command("approve", "Approve")
_vote_command("reject", "Reject")
_vote_command("withdraw", "Withdraw (your organisation made it)")


@gov.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only proposals with this status.")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=DEFAULT_PAGE, show_default=True)
@click.option("--after", type=click.IntRange(0), default=None, help="Continue after this proposal number.")
@node_option
@json_option
def gov_list(status, limit, after, node_url, as_json):
    """List proposals (open, executed, rejected, withdrawn, expired)."""
    query = {"limit": limit, **({"status": status} if status else {}), **({"after": after} if after else {})}
    doc = client_for(node_url).get("/gov/proposals?" + urlencode(query))
    if as_json:
        print_json(doc)
        return
    print_table(["ID", "STATUS", "ACTION", "BY", "APPROVALS", "EXPIRES"],
                [[p.get("id"), p.get("status"), p.get("summary"), p.get("org"),
                  f"{p.get('approvals')}/{p.get('needed')}", p.get("expires_height")]
                 for p in doc.get("proposals") or []])
    if doc.get("next"):
        click.echo(f"more: --after {doc['next']}")


@gov.command("show")
@click.argument("pid", metavar="ID", type=click.IntRange(1))
@node_option
@json_option
def gov_show(pid, node_url, as_json):
    """Show proposal ID: what it changes, its votes and its outcome."""
    show(node_url, f"/gov/proposals/{pid}", as_json, print_proposal)


def _rotated(doc: dict) -> None:
    click.echo(f"account {doc.get('account')} now signs with key {doc.get('public_key')}; "
               f"key {doc.get('retired_key')} is retired")


@click.command("rotate-key")
@click.option("--new-key", "new_key_file", required=True, type=click.Path(dir_okay=False),
              help="Key file of the new key (ynchain keys gen --out NEW.key).")
def gov_rotate_key(new_key_file, node_url, key_file, wait, timeout, valid_for, as_json):
    """Move the account of --key to the key in --new-key (signed with the current
    key; no vote).  From the next transaction on, only the new key signs for it."""
    new_key = load_key_file(new_key_file)
    run_call(node_url, key_file, "gov", "rotate_key", {"new_public_key": new_key.public_key.hex()},
             wait, timeout, valid_for, as_json, render=_rotated)


@click.command("replace-key")
@click.argument("account")
@click.option("--new-public-key", required=True, metavar="HEX|FILE",
              help="The account's new public key, or a public key file.")
def gov_replace_key(account, new_public_key, node_url, key_file, wait, timeout, valid_for, as_json):
    """Give ACCOUNT of your organisation a new key (its old one was lost); an admin's key."""
    run_call(node_url, key_file, "gov", "replace_key",
             {"account": account, "new_public_key": public_key_hex(new_public_key, "--new-public-key")},
             wait, timeout, valid_for, as_json, render=_rotated)


gov.add_command(_signed(gov_rotate_key, "Key file of the account (its current key)."))
gov.add_command(_signed(gov_replace_key, "Key file of an admin of the account's organisation."))
