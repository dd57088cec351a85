"""Which node a command talks to, and the options every data command shares."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .errors import CliError
from .client import NodeClient
from .layout import first_api_url

NODE_HELP = ("Node API URL, e.g. http://127.0.0.1:26651. Default: $YNCHAIN_NODE, else the "
             "first validator of a testnet in the current directory (./genesis.json or "
             "./testnet/genesis.json); without either, pass --node URL or set YNCHAIN_NODE.")
NO_NODE = "no node given: pass --node URL or set YNCHAIN_NODE"


def resolve_node_url(explicit: str | None, cwd: Path | None = None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("YNCHAIN_NODE", "").strip()
    if env:
        return env
    cwd = cwd or Path.cwd()
    for candidate in (cwd / "genesis.json", cwd / "testnet" / "genesis.json"):
        if candidate.is_file():
            url = first_api_url(candidate)
            if url:
                return url
    raise CliError(NO_NODE)


def node_option(fn: Callable) -> Callable:
    return click.option("--node", "node_url", metavar="URL", default=None, help=NODE_HELP)(fn)


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


def client_for(node_url: str | None, timeout: float | None = None) -> NodeClient:
    url = resolve_node_url(node_url)
    return NodeClient(url) if timeout is None else NodeClient(url, timeout)


def print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=False))


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [headers] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def print_fields(pairs: list[tuple[str, Any]]) -> None:
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        click.echo(f"{key + ':':<{width + 1}} {'-' if value is None else value}")


def sync_text(sync: dict[str, Any]) -> str:
    """A node's block sync progress (its /status "sync") in words."""
    text = f"height {sync.get('height')} of {sync.get('target')}"
    if isinstance(sync.get("rate"), (int, float)):
        text += f", {sync['rate']:g} blocks/s"
    if isinstance(sync.get("eta_s"), (int, float)):
        text += f", about {sync['eta_s']:.0f}s left"
    return text
