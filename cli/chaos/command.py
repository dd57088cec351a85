"""The `ynchain chaos` command."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import click

from ..errors import CliError
from ..group import YnCommand
from .plan import PROFILES, episodes, first_pass_length


def _env_number(name: str, kind):
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise CliError(f"${name}: expected a number, got {text!r}") from None


@click.command(cls=YnCommand)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="Seed of the schedule (default: $CHAOS_SEED, else random; printed at start).")
@click.option("--minutes", type=click.FloatRange(0, 24 * 60), default=None,
              help="Length of the fault phase (default: $CHAOS_MINUTES, else 5). The first pass, "
                   "every kind of fault once, always runs whole; 0 runs only that.")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default="full", show_default=True,
              help="Sizes of floods, batches and the RSS limit; `ci` is the short CI run.")
@click.option("--nodes", type=click.IntRange(4, 7), default=4, show_default=True,
              help="Validators of the campaign's testnet.")
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the run here (testnet, node logs, reports). Default: a temporary "
                   "directory, removed after a passing run and kept after a failing one.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the JSON summary to this file.")
def chaos(seed, minutes, profile, nodes, root, out):
    """Run a seeded fault campaign against a fresh local testnet.

    Real node processes on 127.0.0.1 under steady signed load: kill -9 of random
    nodes and of all at once, SIGSTOP of the primary, partitions and delays through
    a fault proxy per validator pair, p2p garbage and connection floods, API abuse
    and schemathesis, a mempool flood, near-expiry txs, large wait=true batches and
    SIGTERM under load. Prints one JSON summary on stdout (progress on stderr) and
    exits 1 if any check failed. The same --seed replays the same schedule.
    """
    if seed is None:
        seed = _env_number("CHAOS_SEED", int)
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    if minutes is None:
        minutes = _env_number("CHAOS_MINUTES", float)
    if minutes is None:
        minutes = 5.0
    if minutes < 0:
        raise CliError("--minutes must be >= 0")
    chosen = PROFILES[profile]
    say = lambda text: click.echo(text, err=True)   # noqa: E731
    say(f"chaos: seed {seed}, profile {profile}, {minutes:g} min of faults, {nodes} nodes "
        f"(replay: python -m cli.chaos --seed {seed} --profile {profile} --minutes {minutes:g})")
    plan = episodes(seed, chosen, nodes)
    first = [next(plan).describe() for _ in range(first_pass_length(chosen))]
    say("first pass: " + "; ".join(first))

    import trio                                   # the campaign loads only when asked for
    from .campaign import Campaign, Interrupted

    keep = root is not None
    run_dir = Path(root) if keep else Path(tempfile.mkdtemp(prefix="ynchain-chaos-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / "testnet").exists():
        raise CliError(f"{run_dir} already holds a campaign's testnet; give an empty --dir")
    campaign = Campaign(run_dir, seed, chosen, minutes, nodes, say)
    try:
        summary = trio.run(campaign.run)
    except* (KeyboardInterrupt, Interrupted):
        say(f"chaos: interrupted; every node stopped; the run is in {run_dir}")
        sys.exit(130)
    summary["run_dir"] = str(run_dir) if keep or not summary["ok"] else None
    text = json.dumps(summary, indent=2)
    if out is not None:
        out.write_text(text + "\n")
    click.echo(text)
    if summary["ok"]:
        say(f"chaos: every check passed (seed {seed})")
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    else:
        say(f"chaos: FAILED {', '.join(summary['failed'])} (seed {seed}); logs in {run_dir}")
        sys.exit(1)
