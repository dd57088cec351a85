"""Test helpers shared by every test package: a ready-made consortium genesis
with its keys, and signed transactions.

Keys are derived from names (not random) so a failing test is reproducible
and two calls with the same arguments build the very same chain.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from ledger.crypto import KeyPair, hash256
from ledger.genesis import Genesis, parse_genesis
from ledger.tx import Transaction

DEFAULT_ACCOUNTS = ("finance", "tax", "agriculture", "tourism")
CHAIN_ID = "ynchain-test"
_KV_PUT = object()      # make_tx's default args (None is a legitimate args value)


def key_for(kind: str, name: str) -> KeyPair:
    """The deterministic key pair of validator/account `name`."""
    return KeyPair.from_seed(hash256(f"ynchain-test/{kind}/{name}".encode()))


def genesis_dict(n_validators: int = 4, accounts: Sequence[str] = DEFAULT_ACCOUNTS, *,
                 chain_id: str = CHAIN_ID, roles: Mapping[str, Sequence[str]] | None = None,
                 orgs: Mapping[str, str] | None = None,
                 contract_versions: Mapping[str, Mapping[str, int]] | None = None,
                 governance: Mapping[str, Any] | None = None,
                 valid_until: Mapping[str, str] | None = None,
                 **params: int) -> dict:
    """The JSON-like genesis document `make_genesis` parses (for tests that
    want to break or extend it first).

    Each account belongs to the organisation of its own name unless `orgs`
    maps it elsewhere, and has role "writer" unless `roles` says otherwise.
    Validators node0..node{n-1} are spread round-robin over the organisations.
    `params` are ConsensusParams fields (e.g. tx_validity_window=10);
    `contract_versions` and `governance` are the genesis fields of those names;
    `valid_until` maps account names to their validity end (ISO-8601 UTC).
    """
    roles = roles or {}
    orgs = orgs or {}
    account_orgs = {name: orgs.get(name, name) for name in accounts}
    org_names = list(dict.fromkeys([*account_orgs.values(), *DEFAULT_ACCOUNTS]))
    validators = []
    for i in range(n_validators):
        name = f"node{i}"
        validators.append({
            "name": name,
            "org": org_names[i % len(org_names)],
            "public_key": key_for("validator", name).public_key.hex(),
            "p2p": f"127.0.0.1:{2 * i + 1}",
            "api": f"127.0.0.1:{2 * i + 2}",
        })
    doc = {
        "chain_id": chain_id,
        "organisations": [{"name": o, "display_name": o.title()} for o in org_names],
        "validators": validators,
        "accounts": [{"name": name, "org": org,
                      "public_key": key_for("account", name).public_key.hex(),
                      "roles": list(roles.get(name, ("writer",))),
                      **({"valid_until": valid_until[name]} if name in (valid_until or {}) else {})}
                     for name, org in account_orgs.items()],
        "consensus": dict(params),
    }
    if contract_versions is not None:
        doc["contract_versions"] = {name: dict(steps) for name, steps in contract_versions.items()}
    if governance is not None:
        doc["governance"] = dict(governance)
    return doc


def make_genesis(n_validators: int = 4, accounts: Sequence[str] = DEFAULT_ACCOUNTS,
                 **params: Any) -> tuple[Genesis, dict[str, KeyPair], dict[str, KeyPair]]:
    """(genesis, validator KeyPairs by name, account KeyPairs by name).

    Keyword arguments are those of `genesis_dict` (chain_id, roles, orgs and
    consensus parameters)."""
    data = genesis_dict(n_validators, accounts, **params)
    genesis = parse_genesis(data, json.dumps(data, sort_keys=True).encode())
    validator_keys = {v["name"]: key_for("validator", v["name"]) for v in data["validators"]}
    account_keys = {a["name"]: key_for("account", a["name"]) for a in data["accounts"]}
    return genesis, validator_keys, account_keys


def make_store(genesis: Genesis):
    """A MemoryStore created for `genesis` the way a node creates its store:
    holding the genesis state (the consortium configuration)."""
    from ledger.execution import genesis_state
    from storage.memory_store import MemoryStore
    return MemoryStore(genesis.hash, initial_state=genesis_state(genesis.config)[0])


def make_tx(key: KeyPair, genesis: Genesis, contract: str = "kv", method: str = "put",
            args: Any = _KV_PUT, *, nonce: int = 0, valid_until: int = 100,
            chain_id: str | None = None) -> Transaction:
    """A signed transaction; by default a kv put of {"key": "k", "value": 1}."""
    if args is _KV_PUT:
        args = {"key": "k", "value": 1}
    return Transaction.create(key, chain_id if chain_id is not None else genesis.chain_id,
                              nonce, valid_until, contract, method, args)
