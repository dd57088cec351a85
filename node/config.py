"""A node's config.toml: where its key, data and genesis live and what it listens on.

    [node]
    name = "node0"                # must match a validator name in genesis
    key_file = "node.key"         # paths are relative to the home directory
    data_dir = "data"
    genesis = "../genesis.json"
    verify_workers = 2            # optional: threads checking tx signatures (default: cores)
    [p2p]
    listen = "127.0.0.1:26656"
    dial = { node2 = "10.0.0.7:4000" }   # optional: reach these validators at another
                                          # address than genesis lists (NAT, tunnel, proxy)
    [api]
    listen = "127.0.0.1:8545"
    [mempool]
    max_txs = 50000
    max_bytes = 67108864
    [log]
    level = "info"                # debug | info | warning | error
    format = "text"               # text | json
    [keys]
    expiry_warning_days = 30      # warn this long before a key of this node's organisation expires
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ledger.errors import GenesisError
from ledger.genesis import NAME_RE, parse_address


# Module constants, not NodeConfig.<field>: on a slots dataclass that attribute is a
# member descriptor, not the default value.
DEFAULT_MEMPOOL_MAX_TXS = 50_000
DEFAULT_MEMPOOL_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_WARNING_DAYS = 30           # keys.expiry_warning_days (node.key_expiry)


class ConfigError(Exception):
    """A config.toml that cannot be used; the message says what and where."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    home: Path
    name: str
    key_file: Path
    data_dir: Path
    genesis: Path
    p2p_listen: tuple[str, int]
    api_listen: tuple[str, int]
    mempool_max_txs: int = DEFAULT_MEMPOOL_MAX_TXS
    mempool_max_bytes: int = DEFAULT_MEMPOOL_MAX_BYTES
    log_level: str = "info"
    log_format: str = "text"
    verify_workers: int = 0       # 0: one per core of the host (node.core.verify_pool)
    key_expiry_warning_days: int = DEFAULT_WARNING_DAYS
    # Validator name -> the address this node dials it at instead of the one in
    # genesis (the peer is still authenticated by its genesis key).
    p2p_dial: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def safety_dir(self) -> Path:
        """Where the copy of the safety record lives (storage.safety_copy): in
        the home, off the data directory, so losing one does not lose both."""
        return self.home / "safety"


_SCHEMA = {
    "node": {"name": str, "key_file": str, "data_dir": str, "genesis": str, "verify_workers": int},
    "p2p": {"listen": str, "dial": dict},
    "api": {"listen": str},
    "mempool": {"max_txs": int, "max_bytes": int},
    "log": {"level": str, "format": str},
    "keys": {"expiry_warning_days": int},
}
_REQUIRED = {("node", "name"), ("node", "key_file"), ("node", "data_dir"), ("node", "genesis"),
             ("p2p", "listen"), ("api", "listen")}


def load_config(home: str | Path) -> NodeConfig:
    home = Path(home).resolve()
    path = home / "config.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (is {home} a node home directory?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for section, body in data.items():
        if section not in _SCHEMA or not isinstance(body, dict):
            raise ConfigError(f"{path}: unknown section [{section}]")
        for key, value in body.items():
            want = _SCHEMA[section].get(key)
            if want is None:
                raise ConfigError(f"{path}: unknown key {section}.{key}")
            if type(value) is not want:
                raise ConfigError(f"{path}: {section}.{key} must be a {want.__name__}")
    for section, key in sorted(_REQUIRED):
        if key not in data.get(section, {}):
            raise ConfigError(f"{path}: missing {section}.{key}")
    get = lambda s, k, d=None: data.get(s, {}).get(k, d)  # noqa: E731
    try:
        p2p = parse_address(get("p2p", "listen"), "p2p.listen")
        api = parse_address(get("api", "listen"), "api.listen")
    except Exception as exc:
        raise ConfigError(f"{path}: {str(exc).removeprefix('genesis.')}") from None
    dial = _parse_dial(path, get("p2p", "dial", {}), get("node", "name"))
    level = get("log", "level", "info")
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"{path}: log.level must be debug, info, warning or error")
    fmt = get("log", "format", "text")
    if fmt not in ("text", "json"):
        raise ConfigError(f"{path}: log.format must be text or json")
    verify_workers = get("node", "verify_workers", 0)
    if not 0 <= verify_workers <= 256:
        raise ConfigError(f"{path}: node.verify_workers must be from 0 (one per core) to 256")
    max_txs = get("mempool", "max_txs", DEFAULT_MEMPOOL_MAX_TXS)
    max_bytes = get("mempool", "max_bytes", DEFAULT_MEMPOOL_MAX_BYTES)
    if max_txs < 1 or max_bytes < 1024:
        raise ConfigError(f"{path}: mempool.max_txs must be >= 1 and mempool.max_bytes >= 1024")
    warning_days = get("keys", "expiry_warning_days", DEFAULT_WARNING_DAYS)
    if not 0 <= warning_days <= 3650:
        raise ConfigError(f"{path}: keys.expiry_warning_days must be in 0..3650")
    return NodeConfig(
        home=home, name=get("node", "name"),
        key_file=(home / get("node", "key_file")).resolve(),
        data_dir=(home / get("node", "data_dir")).resolve(),
        genesis=(home / get("node", "genesis")).resolve(),
        p2p_listen=p2p, api_listen=api, mempool_max_txs=max_txs, mempool_max_bytes=max_bytes,
        log_level=level, log_format=fmt, p2p_dial=dial, verify_workers=verify_workers,
        key_expiry_warning_days=warning_days,
    )


def _parse_dial(path: Path, table: dict, own_name: str) -> dict[str, tuple[str, int]]:
    """p2p.dial: validator name -> HOST:PORT.  Whether each name is a validator is
    checked against genesis when the node starts (node.app)."""
    dial = {}
    for name, value in table.items():
        if not NAME_RE.match(name):
            raise ConfigError(f"{path}: p2p.dial: {name!r} is not a validator name")
        if name == own_name:
            raise ConfigError(f"{path}: p2p.dial.{name}: a node does not dial itself")
        try:
            dial[name] = parse_address(value, f"p2p.dial.{name}")
        except GenesisError as exc:
            raise ConfigError(f"{path}: {str(exc).removeprefix('genesis.')}") from None
    return dial


def render_config(name: str, p2p: tuple[str, int], api: tuple[str, int], *,
                  genesis: str = "../genesis.json", key_file: str = "node.key",
                  data_dir: str = "data", dial: Mapping[str, tuple[str, int]] | None = None,
                  mempool_max_txs: int = DEFAULT_MEMPOOL_MAX_TXS) -> str:
    """The text of a config.toml (what `ynchain testnet init` writes)."""
    dial_line = ""
    if dial:
        entries = ", ".join(f'{peer} = "{host}:{port}"' for peer, (host, port) in dial.items())
        dial_line = f"dial = {{ {entries} }}\n"
    return (
        f'[node]\nname = "{name}"\nkey_file = "{key_file}"\ndata_dir = "{data_dir}"\n'
        f'genesis = "{genesis}"\n\n'
        f'[p2p]\nlisten = "{p2p[0]}:{p2p[1]}"\n{dial_line}\n'
        f'[api]\nlisten = "{api[0]}:{api[1]}"\n\n'
        f'[mempool]\nmax_txs = {mempool_max_txs}\nmax_bytes = {DEFAULT_MEMPOOL_MAX_BYTES}\n\n'
        f'[log]\nlevel = "info"\nformat = "text"\n'
    )
