"""A local testnet on disk: what `ynchain testnet init` writes and how it is read back.

    DIR/genesis.json                 the consortium (organisations, validators, accounts)
    DIR/node{i}/config.toml          node.config.render_config
    DIR/node{i}/node.key             the validator's ed25519 key (0600)
    DIR/node{i}/data/                created by the node
    DIR/node{i}/node.log, node.pid   written by `testnet up`
    DIR/.last-up-seconds             how long the last `testnet up` took (its estimate)
    DIR/accounts/<account>.key       one account per organisation (0600), named
                                     like it: the departments (and partner banks)
                                     run the nodes, write kv and are the admins
                                     that vote in governance; the story
                                     organisations of STORY_ORGANISATIONS carry
                                     the roles the business contracts need

Node i listens on 127.0.0.1: p2p BASE+2i, API BASE+2i+1.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ledger.certificate import MAX_VALIDATORS
from ledger.crypto import KeyPair, save_key
from ledger.errors import GenesisError, KeyFileError
from ledger.genesis import NAME_RE, Genesis, genesis_to_json, load_genesis, parse_genesis
from node.config import render_config

from .errors import CliError

DEPARTMENTS = (("finance", "Department of Finance"), ("tax", "Tax Bureau"),
               ("agriculture", "Department of Agriculture"), ("tourism", "Tourism Board"))
# Organisations without a node that the demo's day needs: (name, display name, roles).
STORY_ORGANISATIONS = (
    ("kunming-first-hospital", "Kunming First People's Hospital", ("issuer",)),
    ("dianchi-logistics", "Dianchi Logistics Co., Ltd. (employer)", ("reimburser",)),
    ("kunming-medical-insurance", "Kunming Medical Insurance Bureau", ("reimburser",)),
    ("yunnan-life-insurance", "Yunnan Life Insurance Co., Ltd.", ("reimburser",)),
    ("menghai-tea-coop", "Menghai Bulang Mountain Tea Cooperative", ("producer",)),
    ("bulang-workshop", "Bulang Mountain First-Processing Workshop (初制所)", ()),
    ("yunnan-tea-lab", "Yunnan Tea Quality Inspection Center", ("lab",)),
    ("kunming-tea-trading", "Kunming Tea Trading Co., Ltd.", ()),
    ("cuihu-tea-shop", "Cuihu Lake Tea Shop", ()),
    ("kunming-heavy-machinery", "Kunming Heavy Machinery Group (core enterprise)", ()),
    ("dianchi-steel", "Dianchi Steel Components Co., Ltd.", ()),
    ("xishan-bearings", "Xishan Bearings Co., Ltd.", ()),
    ("dianchi-bank", "Dianchi Commercial Bank", ("bank",)),
    ("provincial-audit", "Yunnan Provincial Audit Office", ("auditor",)),
)
DEFAULT_CHAIN_ID = "ynchain-testnet"
DEFAULT_BASE_PORT = 26650
HOST = "127.0.0.1"
_NODE_DIR = re.compile(r"node\d+")


@dataclass(frozen=True, slots=True)
class NodeHome:
    name: str
    org: str
    home: Path
    p2p: tuple[str, int]
    api: tuple[str, int]

    @property
    def api_url(self) -> str:
        return f"http://{self.api[0]}:{self.api[1]}"

    @property
    def pid_file(self) -> Path:
        return self.home / "node.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "node.log"


@dataclass(frozen=True, slots=True)
class Testnet:
    dir: Path
    genesis: Genesis
    nodes: tuple[NodeHome, ...]

    @property
    def accounts_dir(self) -> Path:
        return self.dir / "accounts"

    def node(self, name: str) -> NodeHome:
        for node in self.nodes:
            if node.name == name:
                return node
        raise CliError(f"no node {name!r} in the testnet at {self.dir} "
                       f"(nodes: {', '.join(n.name for n in self.nodes)})")

    def account_key_files(self, role: str | None = None) -> list[Path]:
        """Key files of the genesis accounts (with `role`, if given) present in
        DIR/accounts, in genesis order."""
        paths = [self.accounts_dir / f"{a.name}.key" for a in self.genesis.accounts
                 if role is None or role in a.roles]
        return [p for p in paths if p.is_file()]


def organisations(count: int) -> list[tuple[str, str]]:
    """The four departments, then partner banks for validators beyond four."""
    extra = [(f"bank{i}", f"Partner Bank {i}") for i in range(1, count - len(DEPARTMENTS) + 1)]
    return list(DEPARTMENTS) + extra


def account_roles(count: int) -> dict[str, tuple[str, ...]]:
    """Account name (= its organisation) -> roles: departments and partner banks
    (for validators beyond four) run the nodes, write and govern (admin);
    partner banks also finance receivables."""
    roles = {name: ("writer", "admin", "bank") if name.startswith("bank") else ("writer", "admin")
             for name, _ in organisations(count)}
    roles.update({name: story_roles for name, _, story_roles in STORY_ORGANISATIONS})
    return roles


def build_genesis(chain_id: str, validator_keys: list[KeyPair], account_keys: dict[str, KeyPair],
                  base_port: int, empty_blocks_ms: int = 0, tx_validity_window: int | None = None) -> Genesis:
    """A testnet's genesis; `tx_validity_window` None keeps the default (ledger.consortium)."""
    orgs = organisations(len(validator_keys))
    roles = account_roles(len(validator_keys))
    doc = {
        "chain_id": chain_id,
        "organisations": [{"name": n, "display_name": d} for n, d in orgs]
                         + [{"name": n, "display_name": d} for n, d, _ in STORY_ORGANISATIONS],
        "nodes": [{"name": f"node{i}", "org": orgs[i][0], "public_key": k.public_key.hex(),
                   "p2p": f"{HOST}:{base_port + 2 * i}", "api": f"{HOST}:{base_port + 2 * i + 1}",
                   "role": "validator"}
                  for i, k in enumerate(validator_keys)],
        "accounts": [{"name": org, "org": org, "public_key": k.public_key.hex(),
                      "roles": list(roles[org])} for org, k in account_keys.items()],
        "consensus": {"empty_blocks_interval_ms": empty_blocks_ms},
    }
    if tx_validity_window is not None:
        doc["consensus"]["tx_validity_window"] = tx_validity_window
    return parse_genesis(doc)


def _existing_parts(root: Path) -> list[Path]:
    parts = [root / "genesis.json", root / "accounts"]
    if root.is_dir():
        parts += sorted(p for p in root.iterdir() if _NODE_DIR.fullmatch(p.name) and p.is_dir())
    return [p for p in parts if p.exists()]


def init_testnet(root: Path, nodes: int = 4, base_port: int = DEFAULT_BASE_PORT,
                 chain_id: str = DEFAULT_CHAIN_ID, force: bool = False, *,
                 empty_blocks_ms: int = 0, tx_validity_window: int | None = None) -> Testnet:
    """Write a fresh testnet into `root`; with `force`, replace an existing one
    (the caller makes sure none of its nodes is running)."""
    if not 1 <= nodes <= MAX_VALIDATORS:
        raise CliError(f"--nodes must be between 1 and {MAX_VALIDATORS}, got {nodes}")
    if not 1 <= base_port <= 65536 - 2 * nodes:
        raise CliError(f"--base-port {base_port} leaves no room for {2 * nodes} ports "
                       f"(must be 1..{65536 - 2 * nodes})")
    if not NAME_RE.match(chain_id):
        raise CliError(f"--chain-id {chain_id!r}: expected 1-64 letters, digits, '_', '.', '-'")
    if root.exists() and not root.is_dir():
        raise CliError(f"{root} exists and is not a directory")
    existing = _existing_parts(root)
    if existing and not force:
        raise CliError(f"{root} already holds a testnet ({existing[0].name} exists); "
                       "pass --force to replace it (its chain data is deleted)")
    for part in existing:
        if part.is_dir():
            shutil.rmtree(part)
        else:
            part.unlink()

    validator_keys = [KeyPair.generate() for _ in range(nodes)]
    account_keys = {org: KeyPair.generate() for org in account_roles(nodes)}
    genesis = build_genesis(chain_id, validator_keys, account_keys, base_port, empty_blocks_ms,
                            tx_validity_window)
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "accounts").mkdir()
        for org, key in account_keys.items():
            save_key(root / "accounts" / f"{org}.key", key)
        for v, key in zip(genesis.validators, validator_keys):
            home = root / v.name
            home.mkdir()
            save_key(home / "node.key", key)
            (home / "config.toml").write_text(render_config(v.name, v.p2p, v.api))
        # Written last: a directory with genesis.json is a complete testnet.
        (root / "genesis.json").write_text(json.dumps(genesis_to_json(genesis), indent=2) + "\n")
    except (OSError, KeyFileError) as exc:
        raise CliError(f"cannot write the testnet into {root}: {exc}") from None
    return load_testnet(root)


def load_testnet(root: Path) -> Testnet:
    path = root / "genesis.json"
    if not path.is_file():
        raise CliError(f"no testnet in {root} ({path} not found; create one with "
                       f"`ynchain testnet init --dir {root}`)")
    try:
        genesis = load_genesis(path)
    except GenesisError as exc:
        raise CliError(str(exc)) from None
    root = root.resolve()
    nodes = tuple(NodeHome(v.name, v.org, root / v.name, v.p2p, v.api) for v in genesis.validators)
    return Testnet(root, genesis, nodes)


def first_api_url(genesis_path: Path) -> str | None:
    """The first validator's API URL of a genesis file, None if it is not one."""
    try:
        genesis = load_genesis(genesis_path)
    except GenesisError:
        return None
    host, port = genesis.validators[0].api
    return f"http://{host}:{port}"
