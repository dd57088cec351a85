"""python -m consensus.sim --seeds N [--start S] [--nodes 4] [--twins K] [--reconfig] [--json]

Runs seeds start .. start+N-1 and prints one summary line (or one JSON
object).  Exits 1 if any seed broke an invariant or lost liveness, printing
the command that replays each failing seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .run import run_seed

MAX_REPORTED = 10


def main(argv: list[str] | None = None, prog: str = "python -m consensus.sim") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[2])
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--nodes", type=int, default=4, help="validators per run")
    parser.add_argument("--twins", type=int, default=0,
                        help="force this many split twin pairs (more than f must fork)")
    parser.add_argument("--reconfig", action="store_true",
                        help="blocks change the validator set 4 -> 5 -> 7 -> 4 (--nodes ignored)")
    parser.add_argument("--broken-boundary", action="store_true",
                        help="self-check: replicas ignore the epoch boundary (must fail)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.nodes < 1 or args.start < 0 or not 0 <= args.twins <= args.nodes:
        parser.error("need --seeds >= 1, --nodes >= 1, --start >= 0, 0 <= --twins <= --nodes")

    started = time.perf_counter()
    violations, liveness, blocks = [], [], []
    totals: dict[str, int] = {}
    for seed in range(args.start, args.start + args.seeds):
        result = run_seed(seed, args.nodes, args.twins, reconfig=args.reconfig,
                          broken_boundary=args.broken_boundary)
        blocks.append(result.blocks_committed)
        for key, value in result.stats.items():
            totals[key] = totals.get(key, 0) + value
        if result.violation:
            violations.append((seed, result.violation))
        elif result.liveness_failure:
            liveness.append((seed, result.liveness_failure))
    elapsed = time.perf_counter() - started
    summary = {
        "seeds": args.seeds, "start": args.start, "nodes": args.nodes, "twins": args.twins,
        "violations": len(violations), "liveness_failures": len(liveness),
        "blocks_committed_min": min(blocks), "blocks_committed_mean": round(sum(blocks) / len(blocks), 1),
        **totals, "seconds": round(elapsed, 2), "seeds_per_second": round(args.seeds / elapsed, 2),
    }
    failing = violations + liveness
    if args.json:
        summary["failures"] = [{"seed": s, "problem": p, "replay": _replay(args, s)}
                               for s, p in failing[:MAX_REPORTED]]
        print(json.dumps(summary))
    else:
        print(" ".join(f"{k}={v}" for k, v in summary.items()))
        for seed, problem in failing[:MAX_REPORTED]:
            print(f"seed {seed}: {problem}\n  replay: {_replay(args, seed)}")
    return 1 if failing else 0


def _replay(args: argparse.Namespace, seed: int) -> str:
    flags = (f" --twins {args.twins}" if args.twins else "") + \
        (" --reconfig" if args.reconfig else "") + \
        (" --broken-boundary" if args.broken_boundary else "")
    return f"python -m consensus.sim --seeds 1 --start {seed} --nodes {args.nodes}{flags}"


if __name__ == "__main__":
    sys.exit(main())
