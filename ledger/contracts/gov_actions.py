"""What a governance proposal can change, each action described once.

An `Action` is the description of its target and parameters (schema fields:
the same text becomes /openapi.json and the CLI's `gov propose ACTION`
options) and a pure function `apply(config, target, params, height, time_ms)`
returning the changed ledger.consortium.ChainConfig, or raising ContractError
with a code and a message that names the thing and what to do.  `carry_out`
runs one and checks the invariants every change keeps
(ledger.consortium.config_problem), then reschedules the epochs, so a
validator-set or consensus-parameter change takes effect at its boundary.
The same checks run when a proposal is made and again when it passes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from ..consortium import (ACCOUNT_KEY, ACTIVE, MAX_DISPLAY_NAME, MAX_LIFETIME, MAX_THRESHOLD_DEN,
                          MAX_TIME_MS, NODE_KEY, OBSERVER, PARAM_LIMITS, REMOVED, REVOKED, ROLES,
                          VALIDATOR, Account, ChainConfig, ConsensusParams, GovernancePolicy, Node,
                          Organisation, RetiredKey, config_problem, consensus_problem, parse_utc,
                          policy_problem, split_address)
from ..errors import ContractError
from ..receipt import ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND
from .schema import (HASH_HEX_PATTERN, ORG_PATTERN, Bool, Enum, Field, Int, List, Record, Str,
                     organisation)

NEVER = "never"


def _address_problem(text: str) -> str | None:
    if split_address(text) is None:
        return f"expected HOST:PORT with a port in 1-65535, got {text[:40]!r}"
    return None


def _time_problem(text: str) -> str | None:
    if text == NEVER:
        return None
    ms = parse_utc(text)
    if ms is None or ms > MAX_TIME_MS:
        return f"expected an ISO-8601 UTC time like 2027-06-30T00:00:00Z, a date, or never; got {text[:40]!r}"
    return None


NAME = Str("a name", "node5", max_len=64, pattern=ORG_PATTERN,
           pattern_help="1..64 letters, digits, '_', '.', '-', not starting with '_', '.' or '-'")
ORG = organisation("the organisation it belongs to", "dianchi-bank")
PUBLIC_KEY = Str("an ed25519 public key", "3b" * 32, min_len=64, max_len=64, pattern=HASH_HEX_PATTERN,
                 pattern_help="64 lowercase hex digits (an ed25519 public key)")
ADDRESS = Str("HOST:PORT", "10.0.0.15:26656", max_len=260, extra=_address_problem)
ROLE_LIST = List("the account's roles", Enum("a role", ROLES), min_items=0, max_items=len(ROLES),
                 example=["writer"])
VALID_UNTIL = Str("the block time from which the key signs nothing: ISO-8601 UTC, a date "
                  "(midnight UTC), or never", "2027-06-30T00:00:00Z", max_len=20, extra=_time_problem)
NO_PARAMS = Record("no parameters", {})


@dataclass(frozen=True, slots=True)
class Action:
    summary: str
    target: Field
    params: Record
    apply: Callable[[ChainConfig, str, dict, int, int], ChainConfig]


def _refuse(message: str, code: int = ERR_CONFLICT) -> ContractError:
    return ContractError(code, message)


def _key_free(config: ChainConfig, hex_key: str, where: str) -> bytes:
    key = bytes.fromhex(hex_key)
    user = config.key_user(key)
    if user is not None:
        raise _refuse(f"{where}: key {hex_key[:16]}... is already used by {user}; "
                      "every key is used once, generate a new one")
    return key


def _active_org(config: ChainConfig, name: str, where: str = "params.org") -> str:
    if config.organisation(name) is None:
        state = "was removed" if name in config.organisations else "does not exist"
        raise _refuse(f"{where}: organisation {name} {state}", ERR_NOT_FOUND)
    return name


def _account(config: ChainConfig, name: str) -> Account:
    account = config.accounts.get(name)
    if account is None:
        raise _refuse(f"no account {name}", ERR_NOT_FOUND)
    if account.status != ACTIVE:
        raise _refuse(f"account {name} is revoked; a revoked account stays revoked")
    return account


def _node(config: ChainConfig, name: str) -> Node:
    node = config.nodes.get(name)
    if node is None:
        raise _refuse(f"no node {name}", ERR_NOT_FOUND)
    return node


def _roles(params: dict) -> tuple[str, ...]:
    roles = params["roles"]
    if len(set(roles)) != len(roles):
        raise _refuse("params.roles: a role is given twice", ERR_BAD_ARGS)
    return tuple(roles)


def _valid_until(text: str, time_ms: int) -> int | None:
    if text == NEVER:
        return None
    ms = parse_utc(text)
    assert ms is not None          # the schema checked it
    if ms <= time_ms:
        raise _refuse(f"params.valid_until: {text} is not after this block's time; "
                      "a validity must end in the future")
    return ms


def _replace_in(items, old, new) -> list:
    return [new if item is old else item for item in items]


def _without(items, old) -> list:
    return [item for item in items if item is not old]


# -- organisations ------------------------------------------------------------------------

def add_org(config: ChainConfig, target: str, params: dict, height: int, time_ms: int) -> ChainConfig:
    if target in config.organisations:
        state = "was removed (names are not reused)" if config.organisations[target].status == REMOVED \
            else "exists"
        raise _refuse(f"organisation {target} {state}")
    org = Organisation(target, params.get("display_name", target))
    return config.changed(organisations=[*config.organisations.values(), org])


def remove_org(config: ChainConfig, target: str, params: dict, height: int, time_ms: int) -> ChainConfig:
    org = config.organisations.get(target)
    if org is None:
        raise _refuse(f"no organisation {target}", ERR_NOT_FOUND)
    if org.status != ACTIVE:
        raise _refuse(f"organisation {target} was removed already")
    nodes = [n.name for n in config.nodes.values() if n.org == target]
    if nodes:
        raise _refuse(f"organisation {target} still runs node(s) {', '.join(nodes)}; remove them first")
    accounts = [replace(a, status=REVOKED) if a.org == target and a.status == ACTIVE else a
                for a in config.accounts.values()]
    return config.changed(organisations=_replace_in(config.organisations.values(), org,
                                                    replace(org, status=REMOVED)),
                          accounts=accounts)


# -- accounts -----------------------------------------------------------------------------

def add_account(config: ChainConfig, target: str, params: dict, height: int, time_ms: int) -> ChainConfig:
    if target in config.accounts:
        raise _refuse(f"account {target} exists" + (" (revoked; names are not reused)"
                                                    if config.accounts[target].status != ACTIVE else ""))
    org = _active_org(config, params["org"])
    key = _key_free(config, params["public_key"], "params.public_key")
    valid_until = _valid_until(params["valid_until"], time_ms) if "valid_until" in params else None
    account = Account(target, org, key, _roles(params), valid_until)
    return config.changed(accounts=[*config.accounts.values(), account])


def update_account(config: ChainConfig, target: str, params: dict, height: int, time_ms: int) -> ChainConfig:
    account = _account(config, target)
    if not params:
        raise _refuse("params: give roles, valid_until or both", ERR_BAD_ARGS)
    updated = account
    if "roles" in params:
        updated = replace(updated, roles=_roles(params))
    if "valid_until" in params:
        updated = replace(updated, valid_until_ms=_valid_until(params["valid_until"], time_ms))
    if updated == account:
        raise _refuse(f"account {target} has these roles and this validity already")
    return config.changed(accounts=_replace_in(config.accounts.values(), account, updated))


def revoke_account(config: ChainConfig, target: str, params: dict, height: int, time_ms: int) -> ChainConfig:
    account = _account(config, target)
    return config.changed(accounts=_replace_in(config.accounts.values(), account,
                                               replace(account, status=REVOKED)))


def rotate_account_key(config: ChainConfig, account: Account, new_key_hex: str, height: int,
                       where: str) -> ChainConfig:
    """`account` signs with the new key from the next tx on; the old one is retired."""
    key = _key_free(config, new_key_hex, where)
    return config.changed(
        accounts=_replace_in(config.accounts.values(), account, replace(account, public_key=key)),
        retired_keys=[*config.retired_keys.values(),
                      RetiredKey(account.public_key, ACCOUNT_KEY, account.name, height)])


# -- nodes --------------------------------------------------------------------------------

def _address(text: str) -> tuple[str, int]:
    address = split_address(text)
    assert address is not None           # the schema checked it
    return address


def _p2p_free(config: ChainConfig, text: str, node: str | None = None) -> tuple[str, int]:
    address = _address(text)
    for other in config.nodes.values():
        if other.p2p == address and other.name != node:
            raise _refuse(f"params.p2p: {text} is node {other.name}'s p2p address")
    return address


def add_node(config: ChainConfig, target: str, params: dict, height: int, time_ms: int) -> ChainConfig:
    if target in config.nodes:
        raise _refuse(f"node {target} exists")
    org = _active_org(config, params["org"])
    key = _key_free(config, params["public_key"], "params.public_key")
    node = Node(target, org, key, _p2p_free(config, params["p2p"]), _address(params["api"]), OBSERVER)
    return config.changed(nodes=[*config.nodes.values(), node])


def _set_role(config: ChainConfig, target: str, role: str) -> ChainConfig:
    node = _node(config, target)
    if node.role == role:
        raise _refuse(f"node {target} is a{'n' if role == OBSERVER else ''} {role} already")
    return config.changed(nodes=_replace_in(config.nodes.values(), node, replace(node, role=role)))


def promote_node(config: ChainConfig, target: str, params: dict, height: int, time_ms: int) -> ChainConfig:
    return _set_role(config, target, VALIDATOR)


def demote_node(config: ChainConfig, target: str, params: dict, height: int, time_ms: int) -> ChainConfig:
    return _set_role(config, target, OBSERVER)


def remove_node(config: ChainConfig, target: str, params: dict, height: int, time_ms: int) -> ChainConfig:
    node = _node(config, target)
    return config.changed(nodes=_without(config.nodes.values(), node),
                          retired_keys=[*config.retired_keys.values(),
                                        RetiredKey(node.public_key, NODE_KEY, node.name, height)])


def update_node_addresses(config: ChainConfig, target: str, params: dict, height: int,
                          time_ms: int) -> ChainConfig:
    node = _node(config, target)
    if not params:
        raise _refuse("params: give p2p, api or both", ERR_BAD_ARGS)
    updated = node
    if "p2p" in params:
        updated = replace(updated, p2p=_p2p_free(config, params["p2p"], target))
    if "api" in params:
        updated = replace(updated, api=_address(params["api"]))
    if updated == node:
        raise _refuse(f"node {target} has these addresses already")
    return config.changed(nodes=_replace_in(config.nodes.values(), node, updated))


def rotate_node_key(config: ChainConfig, target: str, params: dict, height: int, time_ms: int) -> ChainConfig:
    node = _node(config, target)
    key = _key_free(config, params["public_key"], "params.public_key")
    return config.changed(nodes=_replace_in(config.nodes.values(), node, replace(node, public_key=key)),
                          retired_keys=[*config.retired_keys.values(),
                                        RetiredKey(node.public_key, NODE_KEY, node.name, height)])


# -- parameters ---------------------------------------------------------------------------

def set_consensus_params(config: ChainConfig, target: str, params: dict, height: int,
                         time_ms: int) -> ChainConfig:
    if not params:
        raise _refuse("params: give at least one parameter to change", ERR_BAD_ARGS)
    current = config.consensus
    wanted = replace(current, **params)
    if wanted == current:
        raise _refuse("these are the consensus parameters already")
    problem = consensus_problem(wanted)
    if problem:
        raise _refuse(f"params.{problem[0]}: {problem[1]}")
    return config.rescheduled(height, wanted)


def set_governance_policy(config: ChainConfig, target: str, params: dict, height: int,
                          time_ms: int) -> ChainConfig:
    if not params:
        raise _refuse("params: give at least one of threshold_num, threshold_den, strict, "
                      "proposal_lifetime_blocks", ERR_BAD_ARGS)
    current = config.governance
    wanted = GovernancePolicy(params.get("threshold_num", current.num), params.get("threshold_den", current.den),
                              params.get("strict", current.strict),
                              params.get("proposal_lifetime_blocks", current.proposal_lifetime_blocks))
    if wanted == current:
        raise _refuse("this is the governance policy already")
    problem = policy_problem(wanted)
    if problem:
        raise _refuse(f"params.{problem[0].replace('threshold.', 'threshold_')}: {problem[1]}")
    return config.changed(governance=wanted)


# -- the table ----------------------------------------------------------------------------

def _params(description: str, fields: dict[str, Field], optional: tuple[str, ...] = ()) -> Record:
    return Record(description, fields, optional)


ACTIONS: dict[str, Action] = {
    "add_org": Action(
        "Add an organisation (then add its admin account with add_account)",
        NAME, _params("add_org parameters", {
            "display_name": Str("the organisation's full name", "Dianchi Commercial Bank",
                                max_len=MAX_DISPLAY_NAME)}, ("display_name",)), add_org),
    "remove_org": Action(
        "Remove an organisation that runs no node; its accounts are revoked", NAME, NO_PARAMS, remove_org),
    "add_account": Action(
        "Add an account to an organisation", NAME, _params("add_account parameters", {
            "org": ORG, "public_key": PUBLIC_KEY, "roles": ROLE_LIST, "valid_until": VALID_UNTIL},
            ("valid_until",)), add_account),
    "update_account": Action(
        "Change an account's roles or validity", NAME, _params("update_account parameters", {
            "roles": ROLE_LIST, "valid_until": VALID_UNTIL}, ("roles", "valid_until")), update_account),
    "revoke_account": Action(
        "Revoke an account for good: its key signs nothing any more", NAME, NO_PARAMS, revoke_account),
    "add_node": Action(
        "Add a node as an observer (it syncs and serves the API, it does not vote)", NAME,
        _params("add_node parameters", {"org": ORG, "public_key": PUBLIC_KEY, "p2p": ADDRESS,
                                        "api": ADDRESS}), add_node),
    "promote_node": Action(
        "Make an observer a validator (from the next epoch boundary)", NAME, NO_PARAMS, promote_node),
    "demote_node": Action(
        "Make a validator an observer (from the next epoch boundary)", NAME, NO_PARAMS, demote_node),
    "remove_node": Action(
        "Remove a node; a validator stops voting at the next epoch boundary", NAME, NO_PARAMS, remove_node),
    "update_node_addresses": Action(
        "Change a node's p2p or API address", NAME, _params("update_node_addresses parameters", {
            "p2p": ADDRESS, "api": ADDRESS}, ("p2p", "api")), update_node_addresses),
    "rotate_node_key": Action(
        "Give a node a new key (a validator's takes effect at the next epoch boundary)", NAME,
        _params("rotate_node_key parameters", {"public_key": PUBLIC_KEY}), rotate_node_key),
    "set_consensus_params": Action(
        "Change consensus parameters (from the next epoch boundary)",
        Enum("the consensus parameters", ("consensus",)),
        _params("set_consensus_params parameters",
                {name: Int(name.replace("_", " "), getattr(ConsensusParams(), name), minimum=low,
                           maximum=high)
                 for name, (low, high) in PARAM_LIMITS.items()},
                tuple(PARAM_LIMITS)), set_consensus_params),
    "set_governance_policy": Action(
        "Change the approval threshold or the proposals' lifetime",
        Enum("the governance policy", ("governance",)),
        _params("set_governance_policy parameters", {
            "threshold_num": Int("numerator of the fraction of organisations", 2, minimum=1,
                                 maximum=MAX_THRESHOLD_DEN),
            "threshold_den": Int("denominator of the fraction of organisations", 3, minimum=1,
                                 maximum=MAX_THRESHOLD_DEN),
            "strict": Bool("true: more than the fraction; false: at least the fraction", True),
            "proposal_lifetime_blocks": Int("blocks a proposal can be voted on", 10_000, minimum=1,
                                            maximum=MAX_LIFETIME)},
                ("threshold_num", "threshold_den", "strict", "proposal_lifetime_blocks")),
        set_governance_policy),
}

# What `propose` takes: the action, its target and its parameters (described per action).
PROPOSAL_ARGS = {
    name: Record(f"propose {name}: {action.summary}", {"target": action.target, "params": action.params},
                 () if set(action.params.fields) - action.params.optional else ("params",))
    for name, action in ACTIONS.items()
}


def carry_out(config: ChainConfig, action: str, target: str, params: dict, height: int,
              time_ms: int) -> ChainConfig:
    """The configuration after `action` on `target` in block `height`, with the
    epochs rescheduled; ContractError if it cannot be done or breaks an invariant."""
    after = ACTIONS[action].apply(config, target, params, height, time_ms)
    problem = config_problem(config, after)
    if problem:
        raise _refuse(f"{action} {target} refused: {problem}")
    return after.rescheduled(height)


def describe(action: str, target: str, params: Any) -> str:
    """A one-line account of a proposal, e.g. "add_account bank-clerk (org=dianchi-bank, ...)"."""
    if not isinstance(params, dict) or not params:
        return f"{action} {target}"
    shown = ", ".join(f"{k}={v[:16] + '...' if isinstance(v, str) and len(v) > 24 else v}"
                      for k, v in params.items())
    return f"{action} {target} ({shown})"
