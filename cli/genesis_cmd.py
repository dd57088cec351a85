"""`ynchain genesis`: assemble a genesis file from public material only.

Each organisation creates its keys on its own host (`ynchain keys gen`) and
sends the coordinator only public keys and addresses; the coordinator builds
the file step by step and everyone checks the result:

    ynchain genesis init --chain-id yunnan-gov
    ynchain genesis add-org finance --display-name "Department of Finance"
    ynchain genesis add-node node0 --org finance --public-key HEX|FILE --p2p HOST:PORT --api HOST:PORT
    ynchain genesis add-account finance-admin --org finance --public-key HEX|FILE --role admin
    ynchain genesis set-policy --threshold 2/3 --proposal-lifetime 10000
    ynchain genesis verify            (prints the genesis hash every node must see)

Every entry is checked with the same rules as loading a genesis (ledger.genesis),
naming the field of a mistake; a private key file is refused where a public key
is asked for.  `--file` (default ./genesis.json) is the draft being built.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ledger.consortium import ConsensusParams, GovernancePolicy, bft_warning
from ledger.errors import GenesisError
from ledger.genesis import (Genesis, load_genesis, parse_account, parse_chain_id, parse_consensus,
                            parse_governance, parse_node, parse_organisation)

from .errors import CliError
from .public_keys import public_key_hex
from .target import json_option, print_fields, print_json, print_table

MAX_DRAFT_BYTES = 16 * 1024 * 1024

file_option = click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path),
                           default=Path("genesis.json"), show_default=True, help="The genesis file being built.")


def _read(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file; start one with `ynchain genesis init --file {path}`") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_DRAFT_BYTES:
        raise CliError(f"{path}: larger than {MAX_DRAFT_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list)
                                            for k in ("organisations", "nodes", "accounts")):
        raise CliError(f"{path}: not a genesis draft (organisations, nodes and accounts lists); "
                       "`ynchain genesis init` writes one")
    return doc


def _write(path: Path, doc: dict) -> None:
    """Replace the file in one step (a crash leaves the old or the new one)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise CliError(f"{path}: cannot write: {exc.strerror}") from None


def _checked(parse, *args) -> Any:
    try:
        return parse(*args)
    except GenesisError as exc:
        raise CliError(str(exc)) from None


def _add(path: Path, doc: dict, kind: str, entry: dict) -> None:
    """Append a checked entry to `kind` and write the file; refuse a name already
    used by an entry of `kind`, and a key (or p2p address) used by any entry."""
    if any(other.get("name") == entry["name"] for other in doc[kind]):
        raise CliError(f"{kind}: {entry['name']} is already in the file")
    key = entry.get("public_key")
    for other_kind in ("nodes", "accounts"):
        for other in doc[other_kind]:
            if key is not None and str(other.get("public_key", "")).lower() == key:
                raise CliError(f"public key {key[:16]}... is already used by {other_kind[:-1]} "
                               f"{other.get('name')}; every key is used once")
    if "p2p" in entry and any(n.get("p2p") == entry["p2p"] for n in doc["nodes"]):
        raise CliError(f"nodes: p2p address {entry['p2p']} is already another node's")
    doc[kind].append(entry)
    _write(path, doc)


def _orgs(doc: dict) -> frozenset[str]:
    return frozenset(o.get("name") for o in doc["organisations"] if isinstance(o, dict))


@click.group()
def genesis():
    """Assemble a genesis file from public keys and addresses, and check it."""


@genesis.command("init")
@click.option("--chain-id", required=True, help="The chain's name (1-64 letters, digits, '_', '.', '-').")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@file_option
def genesis_init(chain_id, force, path):
    """Start a genesis file with default consensus parameters and governance policy."""
    if path.exists() and not force:
        raise CliError(f"{path} exists; pass --force to start over")
    policy = GovernancePolicy()
    doc = {"chain_id": chain_id, "organisations": [], "nodes": [], "accounts": [],
           "consensus": {name: getattr(ConsensusParams(), name) for name in ConsensusParams.__dataclass_fields__},
           "governance": {"threshold": {"num": policy.num, "den": policy.den, "strict": policy.strict},
                          "proposal_lifetime_blocks": policy.proposal_lifetime_blocks}}
    _checked(parse_chain_id, chain_id)
    _write(path, doc)
    click.echo(f"started {path} for chain {chain_id}")


@genesis.command("add-org")
@click.argument("name")
@click.option("--display-name", default=None, help="The organisation's full name.")
@file_option
def genesis_add_org(name, display_name, path):
    """Add organisation NAME."""
    doc = _read(path)
    entry = {"name": name, "display_name": display_name or name}
    _checked(parse_organisation, entry, f"organisations[{len(doc['organisations'])}]")
    _add(path, doc, "organisations", entry)
    click.echo(f"added organisation {name}")


@genesis.command("add-node")
@click.argument("name")
@click.option("--org", required=True, help="The organisation that runs it.")
@click.option("--public-key", required=True, metavar="HEX|FILE",
              help="The node's public key (printed by `ynchain keys gen` on its host), or a public key file.")
@click.option("--p2p", required=True, metavar="HOST:PORT", help="Where the other nodes reach it.")
@click.option("--api", required=True, metavar="HOST:PORT", help="Where clients reach its API.")
@click.option("--role", type=click.Choice(["validator", "observer"]), default="validator", show_default=True)
@file_option
def genesis_add_node(name, org, public_key, p2p, api, role, path):
    """Add node NAME (a validator votes in consensus; an observer only follows)."""
    doc = _read(path)
    entry = {"name": name, "org": org, "public_key": public_key_hex(public_key), "p2p": p2p, "api": api,
             "role": role}
    node = _checked(parse_node, entry, f"nodes[{len(doc['nodes'])}]", _orgs(doc))
    _add(path, doc, "nodes", entry)
    click.echo(f"added {node.role} {name} of {org}")


@genesis.command("add-account")
@click.argument("name")
@click.option("--org", required=True, help="The organisation it belongs to.")
@click.option("--public-key", required=True, metavar="HEX|FILE", help="The account's public key, or a public key file.")
@click.option("--role", "roles", multiple=True, help="A role (repeat): writer, admin, issuer, ... "
                                                       "An organisation's admin votes in governance.")
@click.option("--valid-until", default=None, metavar="TIME",
              help="ISO-8601 UTC (2027-06-30T00:00:00Z) or a date: the key signs nothing from then on.")
@file_option
def genesis_add_account(name, org, public_key, roles, valid_until, path):
    """Add account NAME."""
    doc = _read(path)
    entry: dict[str, Any] = {"name": name, "org": org, "public_key": public_key_hex(public_key),
                             "roles": list(roles)}
    if valid_until is not None:
        entry["valid_until"] = valid_until
    _checked(parse_account, entry, f"accounts[{len(doc['accounts'])}]", _orgs(doc))
    _add(path, doc, "accounts", entry)
    click.echo(f"added account {name} of {org}" + (f" ({', '.join(roles)})" if roles else ""))


def _threshold(ctx, param, value):
    if value is None:
        return None
    num, sep, den = value.partition("/")
    if not sep or not num.isdigit() or not den.isdigit():
        raise click.BadParameter("expected a fraction like 2/3")
    return int(num), int(den)


def _consensus_pairs(ctx, param, values):
    out = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or key not in ConsensusParams.__dataclass_fields__ or not value.isdigit():
            raise click.BadParameter(f"expected NAME=INTEGER with NAME one of "
                                     f"{', '.join(ConsensusParams.__dataclass_fields__)}, got {text!r}")
        out[key] = int(value)
    return out


@genesis.command("set-policy")
@click.option("--threshold", callback=_threshold, default=None, metavar="NUM/DEN",
              help="Fraction of the voting organisations a proposal needs, e.g. 2/3.")
@click.option("--strict/--at-least", default=None,
              help="More than the fraction (default) or at least it.")
@click.option("--proposal-lifetime", type=int, default=None, metavar="BLOCKS",
              help="Blocks a proposal can be voted on.")
@click.option("--consensus", "consensus", multiple=True, callback=_consensus_pairs, metavar="NAME=VALUE",
              help="A consensus parameter (repeat), e.g. checkpoint_interval=16.")
@file_option
def genesis_set_policy(threshold, strict, proposal_lifetime, consensus, path):
    """Set the governance policy and consensus parameters."""
    doc = _read(path)
    governance = doc.get("governance") or {}
    rule = dict(governance.get("threshold") or {})
    if threshold is not None:
        rule["num"], rule["den"] = threshold
    if strict is not None:
        rule["strict"] = strict
    if rule:
        governance["threshold"] = rule
    if proposal_lifetime is not None:
        governance["proposal_lifetime_blocks"] = proposal_lifetime
    policy = _checked(parse_governance, governance)
    params = _checked(parse_consensus, {**(doc.get("consensus") or {}), **consensus})
    doc["governance"], doc["consensus"] = governance, {**(doc.get("consensus") or {}), **consensus}
    _write(path, doc)
    click.echo(f"proposals pass with {policy.describe()} and live {policy.proposal_lifetime_blocks} blocks; "
               f"checkpoint every {params.checkpoint_interval} blocks, window {params.window}")


def _warnings(g: Genesis) -> list[str]:
    out = []
    config = g.config
    for org in g.organisations:
        if not config.admins(org.name):
            out.append(f"organisation {org.name} has no admin account: it cannot vote in governance")
    if not config.voting_orgs:
        out.append("no organisation has an admin: the configuration can never change")
    warning = bft_warning(config)
    if warning:
        out.append(warning)
    return out


def _summary(g: Genesis) -> dict[str, Any]:
    config = g.config
    return {"file_hash": g.hash.hex(), "chain_id": g.chain_id,
            "organisations": len(g.organisations), "voting_organisations": list(config.voting_orgs),
            "validators": [v.name for v in g.validators],
            "observers": [n.name for n in g.nodes if n.role == "observer"],
            "accounts": len(g.accounts), "threshold": g.governance.describe(),
            "needed": g.governance.needed(len(config.voting_orgs)), "warnings": _warnings(g)}


@genesis.command("verify")
@file_option
@json_option
def genesis_verify(path, as_json):
    """Check the file as a node would load it; print its hash (every organisation
    compares it) and warnings.  Exit 1 if a node would refuse it."""
    try:
        g = load_genesis(path)
    except GenesisError as exc:
        raise CliError(str(exc)) from None
    summary = _summary(g)
    if as_json:
        print_json({"ok": True, **summary})
        return
    click.echo(f"ok: {path} is a valid genesis for chain {g.chain_id}")
    print_fields([("genesis hash", summary["file_hash"]),
                  ("validators", ", ".join(summary["validators"])),
                  ("voting organisations", ", ".join(summary["voting_organisations"]) or None),
                  ("proposals pass with", f"{summary['threshold']} ({summary['needed']} now)")])
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}")


@genesis.command("show")
@file_option
@json_option
def genesis_show(path, as_json):
    """Show what the file holds (also while it is being built)."""
    doc = _read(path)
    if as_json:
        print_json(doc)
        return
    click.echo(f"chain {doc.get('chain_id')}")
    print_table(["ORGANISATION", "NAME"], [[o.get("name"), o.get("display_name")] for o in doc["organisations"]])
    click.echo("")
    print_table(["NODE", "ORG", "ROLE", "P2P", "API", "PUBLIC KEY"],
                [[n.get("name"), n.get("org"), n.get("role", "validator"), n.get("p2p"), n.get("api"),
                  str(n.get("public_key", ""))[:16] + "..."] for n in doc["nodes"]])
    click.echo("")
    print_table(["ACCOUNT", "ORG", "ROLES", "VALID UNTIL", "PUBLIC KEY"],
                [[a.get("name"), a.get("org"), ",".join(a.get("roles") or []), a.get("valid_until"),
                  str(a.get("public_key", ""))[:16] + "..."] for a in doc["accounts"]])
    try:
        g = load_genesis(path)
    except GenesisError as exc:
        click.echo(f"\nnot complete yet: {exc}")
        return
    click.echo(f"\ngenesis hash {g.hash.hex()}")
    for warning in _warnings(g):
        click.echo(f"warning: {warning}")
