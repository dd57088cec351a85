"""The `ynchain` command."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import click

from .bench import bench
from .demo import demo
from .chaos.command import chaos
from .sim_cmd import sim
from .chain_cmd import query, status, tx, watch
from .genesis_cmd import genesis
from .gov_cmd import gov
from .group import YnGroup
from .keys_cmd import keys
from .node_cmd import node
from .proof_cmd import proof, verify_cmd
from .receipt_cmd import receipt
from .receivable_cmd import receivable
from .testnet_cmd import testnet
from .trace_cmd import trace


def _version() -> str:
    try:
        return metadata.version("ynchain")
    except metadata.PackageNotFoundError:   # run from a checkout without `pip install`
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


@click.group(cls=YnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="ynchain")
def cli():
    """ynchain: a permissioned consortium blockchain node and its tools.

    Commands that talk to a node take --node URL (default: $YNCHAIN_NODE, else the
    first validator of ./genesis.json or ./testnet/genesis.json).
    """


for command in (keys, genesis, testnet, node, status, tx, query, watch, gov, receipt, trace, receivable,
                proof, verify_cmd, demo, bench, chaos, sim):
    cli.add_command(command)


def main() -> None:
    cli.main(prog_name="ynchain")


if __name__ == "__main__":
    main()
