"""`ynchain sim`: the deterministic PBFT fault simulator (consensus.sim) from the CLI."""

from __future__ import annotations

import click


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sim(args: tuple[str, ...]) -> None:
    """Run PBFT under loss, partitions, crashes and Byzantine replicas.

    Same options as `python -m consensus.sim`: --seeds N [--start S] [--nodes 4]
    [--twins K] [--json]; `ynchain sim --help` lists them. Exits 1 on any
    violation, printing the command that replays the failing seed.
    """
    from consensus.sim.__main__ import main   # the simulator only loads when asked for
    raise SystemExit(main(list(args), prog="ynchain sim"))
