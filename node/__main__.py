"""`python -m node --home DIR [--log-format text|json]`: the daemon without the CLI
(what `ynchain node start` runs)."""

import argparse
import sys
from pathlib import Path

from node.main import run_node

parser = argparse.ArgumentParser(prog="python -m node")
parser.add_argument("--home", required=True, type=Path)
parser.add_argument("--log-format", choices=("text", "json"))
args = parser.parse_args()
sys.exit(run_node(args.home, args.log_format))
